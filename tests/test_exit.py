"""A script may end while the engine thread is mid-step: the process exits normally (the engine is stopped and
joined before the interpreter tears down, instead of the thread being killed inside torch, which aborted with
"terminate called without an active exception", exit code 134). `Qwen3TTS` is a context manager that closes
its engine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import qwen3tts_realtime
from qwen3tts_realtime import Qwen3TTS, SamplingParams

REPEATS = 3  # before the fix the abort came on nearly every exit; a few runs per scenario show it
SRC = Path(qwen3tts_realtime.__file__).resolve().parents[1]

SCRIPT = """
import asyncio
import sys
from qwen3tts_realtime import Qwen3TTS, SamplingParams

scenario, model = sys.argv[1:3]
TEXT = "Your order number is four two seven, and it ships tomorrow morning."
tts = Qwen3TTS.from_pretrained(model)
voice = tts.speaker(tts.speakers[0])
options = dict(sampling=SamplingParams.greedy(), max_new_frames=40)
if scenario == "leave":
    with tts.open_stream(TEXT, voice=voice, **options) as stream:
        for chunk in stream:
            break
elif scenario == "cancel":
    stream = tts.open_stream(TEXT, voice=voice, **options)
    next(iter(stream))
    stream.cancel()
elif scenario == "leave_async":
    async def leave():
        async with tts.open_stream(TEXT, voice=voice, **options) as stream:
            async for chunk in stream:
                break
    asyncio.run(leave())
elif scenario == "raise":
    with tts.open_stream(TEXT, voice=voice, **options) as stream:
        for chunk in stream:
            raise ValueError("raised by the script")
print("script ended")
"""


def run_script(scenario: str, model: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", SCRIPT, scenario, str(model)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("scenario", ["leave", "leave_async", "cancel"])
def test_a_script_that_ends_with_a_stream_mid_way_exits_cleanly(golden, scenario):
    for _ in range(REPEATS):
        result = run_script(scenario, golden / "tiny" / "custom_voice")

        assert (result.returncode, result.stdout) == (0, "script ended\n"), result.stderr
        assert "terminate called" not in result.stderr


def test_an_exception_inside_the_stream_block_exits_with_the_exception(golden):
    for _ in range(REPEATS):
        result = run_script("raise", golden / "tiny" / "custom_voice")

        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith("Traceback (most recent call last):\n")
        assert result.stderr.endswith("ValueError: raised by the script\n")


def engine_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "qwen3tts-engine"}


def test_leaving_the_with_block_stops_the_engine(golden):
    before = engine_threads()
    with Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice") as tts:
        with tts.open_stream("Hello.", voice=tts.speaker(tts.speakers[0]), sampling=SamplingParams.greedy(),
                             max_new_frames=40) as stream:
            next(iter(stream))
        assert len(engine_threads() - before) == 1

    assert engine_threads() - before == set()


async def test_leaving_the_async_with_block_stops_the_engine(golden):
    before = engine_threads()
    async with Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice") as tts:
        async with tts.open_stream("Hello.", voice=tts.speaker(tts.speakers[0]), sampling=SamplingParams.greedy(),
                              max_new_frames=40) as stream:
            await anext(stream)
        assert len(engine_threads() - before) == 1

    assert engine_threads() - before == set()
