"""Across processes (one child process, to keep the test fast): a later process loads a voice an earlier one
prepared without encoding anything, and two processes cloning the same voice at the same moment both succeed,
with one computation and one intact entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch

from qwen3tts_realtime import VoiceLibrary
from qwen3tts_realtime.voices.store import decode_entry

from .conftest import REF_TEXT

CHILD = """
import json, pathlib, sys, time
from qwen3tts_realtime import Qwen3TTS, VoiceLibrary

model, voice_dir, early_ref, same_ref, ref_text, folder = sys.argv[1:7]
tts = Qwen3TTS.from_pretrained(model)
calls = {"encode": 0, "embed": 0}
encode, embed = tts.codec.encode_samples, tts._embed

def slow_encode(wav):
    calls["encode"] += 1
    time.sleep(0.5)  # long enough for the other process to reach the lock
    return encode(wav)

def counted_embed(wav):
    calls["embed"] += 1
    return embed(wav)

tts.codec.encode_samples, tts._embed = slow_encode, counted_embed
lib = VoiceLibrary(tts, voice_dir)
early = lib.clone("early", early_ref, ref_text=ref_text)
out = {"early_work": dict(calls), "early_codes": early.ref_codes.tolist(),
       "early_embedding": early.speaker_embedding.tolist()}
calls.update(encode=0, embed=0)
pathlib.Path(folder, "ready").touch()
while not pathlib.Path(folder, "go").exists():
    time.sleep(0.005)
same = lib.clone("same", same_ref, ref_text=ref_text)
out |= {"same_work": dict(calls), "same_codes": same.ref_codes.tolist()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def scenario(base_tts, golden, tmp_path_factory):
    """This process prepares "early"; a child process then clones "early" (expected: loaded) and, released at
    the same moment as this process, "same" (expected: computed by exactly one of the two)."""
    folder = tmp_path_factory.mktemp("processes")
    voice_dir = folder / "voices"
    early_ref, same_ref = golden / "inputs" / "ref_16k.wav", golden / "inputs" / "ref_24k.wav"
    early = VoiceLibrary(base_tts, voice_dir).clone("early", early_ref, ref_text=REF_TEXT)
    args = [golden / "tiny" / "base", voice_dir, early_ref, same_ref, REF_TEXT, folder]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while not (folder / "ready").exists():
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)

    work: Counter = Counter()
    encode = base_tts.codec.encode_samples

    def slow_encode(wav):
        work["encode"] += 1
        time.sleep(0.5)
        return encode(wav)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base_tts.codec, "encode_samples", slow_encode)
        (folder / "go").touch()
        same = VoiceLibrary(base_tts, voice_dir).clone("same", same_ref, ref_text=REF_TEXT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    return {"voice_dir": voice_dir, "early": early, "same": same, "parent_work": work,
            "child": json.loads(out.strip().splitlines()[-1])}


def test_a_later_process_loads_the_voice_without_encoding(scenario):
    child, early = scenario["child"], scenario["early"]

    assert child["early_work"] == {"encode": 0, "embed": 0}
    assert torch.equal(torch.tensor(child["early_codes"]), early.ref_codes)
    assert torch.equal(torch.tensor(child["early_embedding"], dtype=torch.float32), early.speaker_embedding)


def test_two_processes_cloning_at_once_both_succeed_with_one_entry(scenario):
    child, same = scenario["child"], scenario["same"]

    assert scenario["parent_work"]["encode"] + child["same_work"]["encode"] == 1
    assert child["same_codes"] == same.ref_codes.tolist()
    entries = list((scenario["voice_dir"] / "entries").glob("*.safetensors"))
    assert len(entries) == 2  # "early" and "same"
    stored = [decode_entry(p.read_bytes())[0] for p in entries]
    assert any(v.ref_codes.tolist() == child["same_codes"] for v in stored)
