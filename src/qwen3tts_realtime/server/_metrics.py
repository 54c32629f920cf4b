"""Prometheus metrics of one server, in a registry of its own (never the process-global one), so several
apps in one process (tests, embedding) never collide.

    qwen3tts_first_audio_seconds{endpoint}      histogram: request (websocket: first text) to first audio sent
    qwen3tts_xrt{endpoint}                      histogram: audio seconds per wall-clock second of generation
    qwen3tts_audio_seconds_total{endpoint}      audio sent
    qwen3tts_streams_total{endpoint,status}     streams ended: finished, cancelled, disconnected, failed,
                                                idle_timeout (a websocket stream that stopped getting text)
    qwen3tts_underruns_total{endpoint}          gaps a real-time listener would have heard (and their seconds)
    qwen3tts_underrun_seconds_total{endpoint}
    qwen3tts_voice_cache_total{result}          hit: the voice was warm; miss: prepared for the request
    qwen3tts_errors_total{kind}                 refused requests and failures, by kind; "disconnect": the client
                                                left while sending its request (not the server's fault)
    qwen3tts_websocket_connections_total        websocket connections accepted (a pooling client opens few)
    qwen3tts_open_websockets                    websocket connections open now
    qwen3tts_websocket_throttled_seconds_total  time the server waited before reading flooding connections
    qwen3tts_active_streams, qwen3tts_queued_streams   the engine's, at scrape time
    qwen3tts_admitted_streams                   streams the server has admitted (active + queued + starting)
    qwen3tts_ready                              1 after the warm-up
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._render import StreamFigures

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]

_FIRST_AUDIO_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
_XRT_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
ERROR_KINDS = {
    400: "invalid_request", 401: "unauthorized", 404: "not_found", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}


class Metrics:
    """The server's metrics. `engine_stats` is read at scrape time for the stream gauges."""

    def __init__(self, engine_stats: Callable[[], dict[str, Any]], admitted: Callable[[], int]) -> None:
        r = self.registry = CollectorRegistry()
        self.first_audio = Histogram("qwen3tts_first_audio_seconds", "Request to first audio sent",
                                     ["endpoint"], buckets=_FIRST_AUDIO_BUCKETS, registry=r)
        self.xrt = Histogram("qwen3tts_xrt", "Audio seconds per wall-clock second of generation",
                             ["endpoint"], buckets=_XRT_BUCKETS, registry=r)
        self.audio = Counter("qwen3tts_audio_seconds", "Audio sent, seconds", ["endpoint"], registry=r)
        self.streams = Counter("qwen3tts_streams", "Streams ended, by how", ["endpoint", "status"],
                               registry=r)
        self.underruns = Counter("qwen3tts_underruns", "Gaps a real-time listener would hear", ["endpoint"],
                                 registry=r)
        self.underrun_s = Counter("qwen3tts_underrun_seconds", "Total length of those gaps", ["endpoint"],
                                  registry=r)
        self.voice_cache = Counter("qwen3tts_voice_cache", "Voice lookups: warm (hit) or prepared (miss)",
                                   ["result"], registry=r)
        self.errors = Counter("qwen3tts_errors", "Refused requests and failures, by kind", ["kind"],
                              registry=r)
        self.ready = Gauge("qwen3tts_ready", "1 once the warm-up is done", registry=r)
        self.ws_accepted = Counter("qwen3tts_websocket_connections", "Websocket connections accepted",
                                   registry=r)
        self.ws_open = Gauge("qwen3tts_open_websockets", "Websocket connections open now", registry=r)
        self.ws_throttled_s = Counter("qwen3tts_websocket_throttled_seconds",
                                      "Time spent before reading connections over --ws-max-messages-per-s",
                                      registry=r)
        Gauge("qwen3tts_active_streams", "Streams the engine is generating", registry=r).set_function(
            lambda: engine_stats()["active_streams"])
        Gauge("qwen3tts_queued_streams", "Streams waiting in the engine's queue", registry=r).set_function(
            lambda: engine_stats()["queued_streams"])
        Gauge("qwen3tts_admitted_streams", "Streams admitted by the server", registry=r).set_function(
            admitted)
        for result in ("hit", "miss"):
            self.voice_cache.labels(result)
        for kind in (*ERROR_KINDS.values(), "generation", "internal", "disconnect"):
            self.errors.labels(kind)

    def refused(self, status: int) -> None:
        """A request answered with an error status."""
        self.errors.labels(ERROR_KINDS.get(status, "internal" if status >= 500 else "invalid_request")).inc()

    def disconnected(self) -> None:
        """A client hung up before its request was read."""
        self.errors.labels("disconnect").inc()

    def stream_ended(self, endpoint: str, status: str, figures: StreamFigures) -> None:
        self.streams.labels(endpoint, status).inc()
        if figures.first_audio_s is not None:
            self.first_audio.labels(endpoint).observe(figures.first_audio_s)
        if status == "finished" and figures.xrt is not None:
            self.xrt.labels(endpoint).observe(figures.xrt)
        self.audio.labels(endpoint).inc(figures.audio_s)
        self.underruns.labels(endpoint).inc(figures.underruns)
        self.underrun_s.labels(endpoint).inc(figures.underrun_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
