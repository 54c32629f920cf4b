"""Fixtures: the real server (uvicorn on a free localhost port, in a background thread) around the tiny golden
checkpoints, and what tests compare its audio with."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn  # noqa: E402

from qwen3tts_realtime import Qwen3TTS, SamplingParams  # noqa: E402
from qwen3tts_realtime.audio import StreamResampler  # noqa: E402
from qwen3tts_realtime.server import ServerConfig, create_app  # noqa: E402
from tests.serving import serve_in_thread  # noqa: E402


@dataclass
class RunningServer:
    """A server on 127.0.0.1 with its model (for reference audio and engine statistics)."""

    url: str
    tts: Qwen3TTS
    config: ServerConfig

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    @property
    def formats(self) -> list[str]:
        with self.client() as c:
            return c.get("/v1/stats", headers=self.auth()).json()["server"]["formats"]

    def wait_idle(self, timeout_s: float = 10.0) -> dict:
        """Engine stats once no stream is active, queued or admitted."""
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while True:
                stats = c.get("/v1/stats", headers=self.auth()).json()
                idle = stats["engine"]["active_streams"] == 0 and stats["engine"]["queued_streams"] == 0
                if idle and stats["server"]["admitted_streams"] == 0:
                    return stats
                assert time.monotonic() < deadline, f"streams still held: {stats}"
                time.sleep(0.02)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}


def start_server(tts: Qwen3TTS, config: ServerConfig,
                 port: int = 0) -> tuple[RunningServer, uvicorn.Server, threading.Thread]:
    port, server, thread = serve_in_thread(create_app(tts, config), "/ready", port, ws_max_size=config.max_body_bytes)
    return RunningServer(f"http://127.0.0.1:{port}", tts, config), server, thread


@contextlib.contextmanager
def running_server(tts: Qwen3TTS, config: ServerConfig, port: int = 0) -> Iterator[RunningServer]:
    """A real server on a free localhost port (or `port`), stopped when the block is left."""
    running, server, thread = start_server(tts, config, port)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def custom_voice_tts(golden: Path) -> Iterator[Qwen3TTS]:
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    yield tts
    tts.close()


@pytest.fixture(scope="session")
def server(custom_voice_tts: Qwen3TTS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The shared server: CustomVoice (speakers ryan, eric), default limits, no API key; OpenAI's voice
    `alloy` speaks as ryan."""
    config = ServerConfig(model="tiny-custom-voice", voice_dir=str(tmp_path_factory.mktemp("voices")),
                          voice_aliases={"alloy": "ryan"})
    with running_server(custom_voice_tts, config) as running:
        yield running


@pytest.fixture(scope="session")
def strict(golden, tmp_path_factory):
    """A server with an API key, 4 streams + 4 queued, a small body and text limit."""
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    config = ServerConfig(model="tiny-custom-voice", api_key="s3cret-key", max_streams=4, max_queue=4,
                          max_body_bytes=2048, max_text_chars=300, warmup_text="",
                          voice_dir=str(tmp_path_factory.mktemp("voices")))
    with running_server(tts, config) as running:
        yield running
    tts.close()


GREEDY = {"do_sample": False}


def reference_audio(tts: Qwen3TTS, text: str, voice: str = "ryan", *, max_frames: int, language: str = "Auto",
                    non_streaming_layout: bool | None = None, profile=None) -> np.ndarray:
    """The engine's greedy output for a request (streamed in-process, alone), float32 at 24 kHz."""
    profile = profile if profile is not None else tts.speaker(voice)
    with tts.open_stream(
        text,
        voice=profile,
        language=language,
        sampling=SamplingParams.greedy(),
        max_new_frames=max_frames,
        non_streaming_layout=non_streaming_layout,
    ) as stream:
        return np.concatenate([chunk.audio for chunk in stream])


def resampled(audio: np.ndarray, rate: int) -> np.ndarray:
    r = StreamResampler(24000, rate)
    return np.concatenate([r.process(audio), r.flush()])


def assert_pcm_close(got: np.ndarray, expected: np.ndarray, *, lsb: int = 1) -> None:
    """16-bit samples equal up to `lsb` (float rounding of batched/streamed vs offline computation)."""
    assert got.dtype == np.int16 and expected.dtype == np.int16
    assert got.shape == expected.shape, (got.shape, expected.shape)
    diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
    assert diff.max() <= lsb, f"max difference {diff.max()} LSB"
