"""One failing stream never harms another: a step that fails for one stream of a batch (an exception, or logits
that turn non-finite) fails that stream alone, with an error naming the cause; the others finish with the
audio they would have had alone, and the failed stream's slot serves the next stream cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwen3tts_realtime import GenerationError, Qwen3TTS, SamplingParams
from qwen3tts_realtime.engine.engine import Engine

TEXTS = ["Hello there, how can I help you today?", "Your order number is four two seven.",
         "Please hold while I transfer your call."]


@pytest.fixture()
def tts(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    yield tts
    tts.close()


def request(tts, i: int) -> dict:
    return dict(text=TEXTS[i], voice=tts.speaker(["ryan", "eric", "ryan"][i]), language="English",
                sampling=SamplingParams.greedy(), max_new_frames=14)


def inject(monkeypatch, culprit, fault) -> None:
    """Run `fault(engine, job)` before each code-predictor pass that includes the culprit stream's 4th frame."""
    original = Engine._predict

    def predict(self, jobs):
        for job in jobs:
            if job.channel is culprit._channel and job.gen.num_frames == 3:
                fault(self, job)
        return original(self, jobs)

    monkeypatch.setattr(Engine, "_predict", predict)


def raise_for_the_row(engine, job):
    raise RuntimeError("injected fault in this stream's row")


def make_its_state_nan(engine, job):
    engine._slots.last_hidden[job.gen.slot] = float("nan")


@pytest.mark.parametrize("fault, cause", [(raise_for_the_row, "injected fault"), (make_its_state_nan, "non-finite")])
def test_a_stream_failing_inside_the_step_fails_alone(tts, monkeypatch, fault, cause):
    alone = [tts.generate(**request(tts, i)) for i in range(3)]
    streams = [tts.open_stream(**request(tts, i), chunk_frames=(1, 2)) for i in range(3)]
    inject(monkeypatch, streams[1], fault)

    good = [list(streams[0]), None, list(streams[2])]
    with pytest.raises(Exception) as failure:
        list(streams[1])

    assert cause in str(failure.value)
    if cause == "non-finite":
        assert isinstance(failure.value, GenerationError)
    assert streams[1].state.value == "failed"
    for i in (0, 2):
        assert torch.equal(torch.cat([c.codes for c in good[i]]), alone[i].codes)
        # float32: the codes are exact; the batched decoder rounds differently from a one-row decode
        assert np.abs(np.concatenate([c.audio for c in good[i]]) - alone[i].audio).max() <= 1e-4
    stats = tts.stats()
    assert max(stats["batch_sizes"]) == 3  # the three ran in one batch
    assert stats["active_streams"] == 0
    # The failed stream's slot is clean for the next stream.
    monkeypatch.undo()
    with tts.open_stream(**request(tts, 1)) as again:
        assert torch.equal(torch.cat([c.codes for c in again]), alone[1].codes)
