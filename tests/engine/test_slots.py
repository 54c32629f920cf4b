"""Slots go to streams that generate: a stream waiting for its first text holds none, and a cancelled queued
stream leaves the queue at once."""

from __future__ import annotations

import threading
import time

import pytest

from qwen3tts_realtime import Qwen3TTS


@pytest.fixture()
def one_slot(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    tts.max_streams = 1
    yield tts
    tts.close()


def within(seconds: float, fn):
    """fn() in a thread; its result, or a failure if it has not returned in time (never a hung test)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still waiting after {seconds} s"
    return out[0]


def test_a_stream_waiting_for_text_holds_no_slot(one_slot):
    tts = one_slot
    voice = tts.speaker("ryan")
    idle = tts.open_stream(voice=voice, language="English")  # an open websocket that has sent nothing yet

    chunks = within(120, lambda: list(tts.open_stream("Hello there.", voice=voice, max_new_frames=6, seed=0)))

    assert sum(c.num_frames for c in chunks) == 6
    idle.push_text("Now I have something to say.")
    idle.end_input()
    assert within(120, lambda: list(idle))[-1].is_last


def test_cancelled_queued_streams_leave_the_queue_at_once(one_slot):
    tts = one_slot
    voice = tts.speaker("ryan")
    busy = tts.open_stream("A long answer that keeps the only slot busy for a while.", voice=voice, max_new_frames=400)
    next(busy)
    queued = [tts.open_stream("Hello.", voice=voice, max_new_frames=4) for _ in range(5)]
    assert tts.stats()["queued_streams"] == 5

    for stream in queued:
        stream.cancel()

    deadline = time.monotonic() + 30
    while tts.stats()["queued_streams"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tts.stats()["queued_streams"] == 0
    assert tts.stats()["active_streams"] == 1  # the busy stream goes on
    busy.cancel()
