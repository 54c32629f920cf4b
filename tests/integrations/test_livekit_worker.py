"""The LiveKit worker side: one shared engine per process, the plugin in LiveKit's namespace, the example.

- `load_engine` returns one engine per (model, device, dtype) for the whole process, so jobs running as
  threads (each with its own event loop) share it and their streams batch in the same engine steps.
- `livekit.plugins.qwen3tts` is found where `python -m livekit.agents download-files` looks, next to
  livekit-agents' own namespace; its `download_files` hook fetches hub weights and leaves folders alone.
- `CaptureAudio`, the audio sink the example's test (`test_livekit_voice_agent.py`) plays into.
"""

from __future__ import annotations

import asyncio
import pkgutil
import threading
import time
from pathlib import Path

import pytest
from livekit.agents import Plugin
from livekit.agents.voice import io

import qwen3tts_realtime.livekit as lk
from qwen3tts_realtime import InvalidInputError, SamplingParams

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "livekit_agent.py"


def test_load_engine_is_one_engine_per_model_device_and_dtype(golden, engines):
    folder = golden / "tiny" / "custom_voice"
    first = lk.load_engine(folder, device="cpu", warmup=False)
    assert lk.load_engine(str(folder), device="cpu", dtype="float32") is first  # same key, spelled otherwise
    assert lk.load_engine(folder, device="cpu", dtype="float64", warmup=False) is not first
    assert lk.TTS(engine=first, voice="ryan").model == "custom_voice"  # the model name LiveKit's metrics get


def test_jobs_on_threads_share_the_engine_and_their_streams_batch(golden, engines):
    engine = lk.load_engine(golden / "tiny" / "custom_voice", device="cpu")
    barrier = threading.Barrier(2)
    finals = []

    async def job() -> None:  # one LiveKit job: its own thread, event loop and TTS, the process's engine
        tts = lk.TTS(engine=lk.load_engine(golden / "tiny" / "custom_voice", device="cpu"), voice="ryan",
                     language="en", sampling=SamplingParams.greedy(), max_new_frames=24)
        barrier.wait()
        async with tts.stream() as stream:
            stream.push_text("Hello there, how can I help you today?")
            stream.end_input()
            finals.append([ev async for ev in stream][-1].is_final)
        await tts.aclose()

    threads = [threading.Thread(target=asyncio.run, args=(job(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert finals == [True, True]
    assert list(engines.values()) == [engine]
    assert 2 in engine.stats()["batch_sizes"]


def test_the_worker_load_is_the_engines_occupancy(golden, engines):
    """LiveKit's `load_fnc`: (generating + queued streams) / capacity. With capacity 2 and three streams open the
    worker reports itself full (at least the threshold: LiveKit sends it no new job); the load falls as they end."""
    assert lk.engine_load() == 0.0  # no engine loaded yet
    engine = lk.load_engine(golden / "tiny" / "custom_voice", device="cpu", max_streams=2)
    assert engine.stats()["max_streams"] == 2 and lk.engine_load(object()) == 0.0  # LiveKit passes the server
    voice = engine.speaker("ryan")
    streams = [engine.open_stream("Hello there, how are you today?", voice=voice, max_new_frames=400 + 200 * i,
                                  sampling=SamplingParams.greedy()) for i in range(3)]
    for stream in streams[:2]:
        next(iter(stream))  # speaking; the third waits in the engine's queue for a slot
    assert (engine.stats()["active_streams"], engine.stats()["queued_streams"]) == (2, 1)
    assert lk.engine_load() == 1.0 >= lk.DEFAULT_LOAD_THRESHOLD  # (2 + 1) / 2, capped at 1
    for stream in streams:
        stream.cancel()
    deadline = time.monotonic() + 30
    while lk.engine_load() > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lk.engine_load() == 0.0
    with pytest.raises(InvalidInputError, match="max_streams=0"):
        lk.load_engine(golden / "tiny" / "custom_voice", device="cpu", max_streams=0)


def test_the_plugin_lives_in_livekits_namespace_and_is_registered():
    import livekit
    import livekit.plugins
    from livekit.plugins import qwen3tts

    assert livekit.__file__ is None and livekit.plugins.__file__ is None  # namespaces, not shadowed
    found = [m.name for m in pkgutil.iter_modules(livekit.plugins.__path__, "livekit.plugins.")]
    assert "livekit.plugins.qwen3tts" in found  # what `python -m livekit.agents download-files` imports
    assert qwen3tts.TTS is lk.TTS and qwen3tts.load_engine is lk.load_engine
    [plugin] = [p for p in Plugin.registered_plugins if isinstance(p, lk.Qwen3TTSPlugin)]
    assert plugin.title == "livekit.plugins.qwen3tts" and plugin.version == lk.__version__


def test_download_files_fetches_hub_weights_and_leaves_folders_alone(golden, monkeypatch, tmp_path):
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, revision=None):
        calls.append((repo_id, revision))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    folder = golden / "tiny" / "custom_voice"
    assert lk.download_files(folder) == folder and calls == []
    assert lk.download_files("Qwen/Qwen3-TTS-12Hz-1.7B-Base", revision="main") == tmp_path
    monkeypatch.delenv(lk.MODEL_ENV, raising=False)
    lk.Qwen3TTSPlugin().download_files()  # the `download-files` hook: $QWEN3TTS_MODEL, else the default
    monkeypatch.setenv(lk.MODEL_ENV, "Qwen/Qwen3-TTS-12Hz-0.6B-Base")
    lk.Qwen3TTSPlugin().download_files()
    assert calls == [("Qwen/Qwen3-TTS-12Hz-1.7B-Base", "main"), (lk.DEFAULT_MODEL, None),
                     ("Qwen/Qwen3-TTS-12Hz-0.6B-Base", None)]


class CaptureAudio(io.AudioOutput):
    """An audio sink that keeps the frames and reports each segment played at once."""

    def __init__(self) -> None:
        super().__init__(label="capture", capabilities=io.AudioOutputCapabilities(pause=False))
        self.frames = []
        self.played = asyncio.Event()
        self._position_s = 0.0
        self._playing = False

    async def capture_frame(self, frame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._position_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._playing:
            self._playing, position_s, self._position_s = False, self._position_s, 0.0
            self.on_playback_finished(playback_position=position_s, interrupted=False)
            self.played.set()

    def clear_buffer(self) -> None:
        pass
