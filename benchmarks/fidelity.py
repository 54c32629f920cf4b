"""Fidelity of every fast mode against float32, teacher-forced (see `qwen3tts_realtime.bench.fidelity`).

    python benchmarks/fidelity.py --model 0.6B-CustomVoice --modes fp16 int8 int4 w8a8 --threads 2
    python benchmarks/fidelity.py --model tiny-custom_voice            # the golden tiny checkpoint

A mode is a `quantize` value, optionally with its kernel ("int8:int8pack-float32"), or "bfloat16" (the dtype).
Writes benchmarks/results/fidelity-<model>-<mode>.json per mode: agreement per group 0..15, logits cosines
(talker, code predictor: mean and min), decoder SNR (null: the mode decodes exactly as float32), the kernel and
the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import checkpoint, machine, save  # noqa: E402

from qwen3tts_realtime import Qwen3TTS  # noqa: E402
from qwen3tts_realtime.bench.fidelity import default_cases, fidelity, reference_frames  # noqa: E402


def load(folder: Path, mode: str) -> Qwen3TTS:
    if mode == "bfloat16":
        return Qwen3TTS.from_pretrained(folder, dtype="bfloat16")
    quantize, _, kernel = mode.partition(":")
    return Qwen3TTS.from_pretrained(folder, quantize=quantize, linear_backend=kernel or "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-custom_voice", help="tiny-<type> (golden) or a shipped config name")
    parser.add_argument("--modes", nargs="+", default=["fp16", "int8", "int4", "w8a8", "bfloat16"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = checkpoint(args.model)
    reference = Qwen3TTS.from_pretrained(folder)
    cases = default_cases(reference, frames=args.frames)
    t0 = time.perf_counter()
    frames = reference_frames(reference, cases)
    print(f"float32 reference: {len(cases)} cases x {args.frames} frames in {time.perf_counter() - t0:.0f} s")
    for mode in args.modes:
        candidate = load(folder, mode)
        result = {"mode": mode.partition(":")[0], "kernel": candidate.linear_backend, "checkpoint": args.model,
                  **fidelity(reference, candidate, cases, frames), "machine": machine()}
        agree = result["agreement_per_group"]
        print(f"{mode} ({candidate.linear_backend}): group 0 {agree[0]:.3f}, groups 1-15 min {min(agree[1:]):.3f}, "
              f"cosine talker {result['logits_cosine']['talker']}, predictor {result['logits_cosine']['predictor']}")
        save(f"fidelity-{args.model}-{mode.replace(':', '-')}", result)
        candidate.close()
        del candidate


if __name__ == "__main__":
    main()
