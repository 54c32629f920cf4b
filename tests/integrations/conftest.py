"""Fixtures for driving the integrations through the speech server: a real server (uvicorn on a free
localhost port, in a background thread, as `tests/server` runs it) around the tiny golden CustomVoice
checkpoint, started once per test module, and a `RemoteEngine` on it. Tests that use them skip when the
server extra (fastapi, uvicorn, websockets) is not installed; the others do not need it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3tts_realtime import Qwen3TTS


@pytest.fixture(scope="module")
def remote_server(golden: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A `RunningServer` (tests/server/conftest.py) around its own tiny CustomVoice model (speakers ryan,
    eric; default limits, no API key). `remote_server.tts` is that model: the in-process engine doing the
    remote engine's work."""
    for module in ("fastapi", "uvicorn", "websockets"):
        pytest.importorskip(module)
    from qwen3tts_realtime.server import ServerConfig
    from tests.server.conftest import running_server

    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    config = ServerConfig(model="tiny-custom-voice", voice_dir=str(tmp_path_factory.mktemp("voices")))
    try:
        with running_server(tts, config) as running:
            yield running
    finally:
        tts.close()


@pytest.fixture(scope="module")
def remote_engine(remote_server) -> Iterator:
    """A `RemoteEngine` on `remote_server`, shared by the module's tests (as services share one engine)."""
    from qwen3tts_realtime.client import RemoteEngine

    engine = RemoteEngine(remote_server.url)
    yield engine
    engine.close()


@pytest.fixture
def engines(monkeypatch):
    """A fresh process-wide engine table, closed afterwards."""
    from qwen3tts_realtime.integrations.livekit import _engines

    table: dict = {}
    monkeypatch.setattr(_engines, "_ENGINES", table)
    yield table
    for engine in table.values():
        engine.close()


@pytest.fixture
def anna_library(golden: Path, tmp_path: Path) -> Path:
    """A voice library folder holding "anna", cloned on the tiny Base model."""
    from qwen3tts_realtime import VoiceLibrary

    base = Qwen3TTS.from_pretrained(golden / "tiny" / "base")
    try:
        VoiceLibrary(base, tmp_path / "voices").clone("anna", str(golden / "inputs" / "ref_24k.wav"),
                                                      x_vector_only=True)
    finally:
        base.close()
    return tmp_path / "voices"
