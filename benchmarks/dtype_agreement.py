"""Code agreement of bfloat16 (and float64) with float32 on the golden greedy generation cases.

    python benchmarks/dtype_agreement.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GOLDEN, machine, save  # noqa: E402

from qwen3tts_realtime import Qwen3TTS, SamplingParams  # noqa: E402


def replay(tts: Qwen3TTS, call: dict):
    if call["method"] == "generate_voice_clone":
        voice = tts.clone_voice(str(GOLDEN / call["ref_audio"]), ref_text=call.get("ref_text"),
                                x_vector_only=call.get("x_vector_only_mode", False))
    elif call["method"] == "generate_custom_voice":
        voice = tts.speaker(call["speaker"], instruct=call.get("instruct"))
    else:
        voice = tts.design_voice(call["instruct"])
    return tts.generate(call["text"], voice, call["language"], sampling=SamplingParams.greedy(),
                        non_streaming_layout=call.get("non_streaming_mode"), max_new_frames=47).codes


def main() -> None:
    cases = [c for c in json.loads((GOLDEN / "cases.json").read_text())["cases"]
             if c["kind"] == "generate" and not c["call"]["sampling"]["do_sample"]]
    models: dict[tuple[str, str], Qwen3TTS] = {}
    rows = []
    for case in cases:
        call = case["call"]
        out = {}
        for dtype in ("float32", "bfloat16", "float64"):
            key = (call["model"], dtype)
            if key not in models:
                models[key] = Qwen3TTS.from_pretrained(GOLDEN / "tiny" / call["model"], dtype=dtype)
            out[dtype] = replay(models[key], call)
        ref = out["float32"]
        row = {"case": case["name"], "frames_float32": ref.shape[0]}
        for dtype in ("bfloat16", "float64"):
            codes = out[dtype]
            n = min(len(codes), len(ref))
            first_diff = next((i for i in range(n) if not torch.equal(codes[i], ref[i])), None)
            row[dtype] = {
                "frames": codes.shape[0],
                "identical": bool(codes.shape == ref.shape and torch.equal(codes, ref)),
                "group0_agreement": float((codes[:n, 0] == ref[:n, 0]).float().mean()) if n else 0.0,
                "all_groups_agreement": float((codes[:n] == ref[:n]).float().mean()) if n else 0.0,
                "first_differing_frame": first_diff,
            }
        rows.append(row)
        print(row)
    save("dtype-agreement-golden-tiny", {"benchmark": "dtype_agreement", "machine": machine(), "cases": rows,
                                         "note": "greedy; tiny random-weight golden checkpoints; CPU"})


if __name__ == "__main__":
    main()
