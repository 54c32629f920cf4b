"""/metrics parses with prometheus_client's own parser, and its counters move as requests are served;
/health, /ready and /v1/stats report the server's state. With an API key /metrics needs it too, unless
`--metrics-public` opens it (for a scraper that cannot send it)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qwen3tts_realtime.server import ServerConfig

from .conftest import GREEDY, running_server


def scrape(server) -> dict[tuple[str, tuple], float]:
    with server.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_as_requests_are_served(server):
    before = scrape(server)
    with server.client() as c:
        ok = c.post("/v1/audio/speech", json={"input": "Hi.", "voice": "ryan", "max_frames": 3,
                                              "response_format": "pcm", **GREEDY})
        assert ok.status_code == 200
        assert c.post("/v1/audio/speech", json={"input": "", "voice": "ryan"}).status_code == 400
        assert c.post("/v1/audio/speech", json={"input": "Hi.", "voice": "nobody"}).status_code == 400
        assert c.get("/no/such/route").status_code == 404
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qwen3tts_streams_total", endpoint="speech", status="finished") == 1
    assert moved("qwen3tts_first_audio_seconds_count", endpoint="speech") == 1
    assert moved("qwen3tts_xrt_count", endpoint="speech") == 1
    audio_s = len(ok.content) / 2 / 24000
    assert moved("qwen3tts_audio_seconds_total", endpoint="speech") == pytest.approx(audio_s)
    assert moved("qwen3tts_voice_cache_total", result="hit") == 1  # ryan is warm since the warm-up
    assert moved("qwen3tts_errors_total", kind="invalid_request") == 2
    assert moved("qwen3tts_errors_total", kind="not_found") == 1
    assert value(after, "qwen3tts_active_streams") == 0 and value(after, "qwen3tts_queued_streams") == 0
    assert value(after, "qwen3tts_ready") == 1
    assert ("qwen3tts_underruns_total", (("endpoint", "speech"),)) in after


def test_health_ready_and_stats(server):
    with server.client() as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json() == {"ready": True}
        stats = c.get("/v1/stats").json()
        models = c.get("/v1/models").json()
    assert stats["model"]["type"] == "custom_voice" and stats["model"]["speakers"] == ["ryan", "eric"]
    assert stats["engine"]["max_streams"] == 16 and stats["server"]["max_queue"] == 64
    assert [m["id"] for m in models["data"]] == ["qwen3-tts", "tiny-custom-voice"]


def test_metrics_public_opens_metrics_only(custom_voice_tts, tmp_path):
    config = ServerConfig(model="tiny-custom-voice", api_key="k3y", metrics_public=True, warmup_text="",
                          voice_dir=str(tmp_path / "voices"))
    with running_server(custom_voice_tts, config) as public, public.client() as c:
        assert c.get("/metrics").status_code == 200  # no key
        assert c.get("/v1/stats").status_code == 401  # the rest still needs it
