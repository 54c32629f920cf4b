"""Streaming benchmark: time to first chunk, per-step time split, xRT, streaming vs offline wall time.

    python benchmarks/streaming.py --config 0.6B-CustomVoice --frames 24 --threads 2

One stream on a warm voice (CPU float32 by default). Results: JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import checkpoint, machine, save  # noqa: E402

from qwen3tts_realtime import Qwen3TTS, SamplingParams  # noqa: E402

TEXT = "Hello there, thanks for calling. Your order number is four two seven, and it ships on Monday."


def voice_for(tts: Qwen3TTS):
    if tts.model_type == "custom_voice":
        return tts.speaker(tts.speakers[0])
    if tts.model_type == "voice_design":
        return tts.design_voice("A calm voice.")
    import numpy as np

    rng = np.random.default_rng(0)
    return tts.clone_voice((0.1 * rng.standard_normal(24000 * 3).astype("float32"), 24000), x_vector_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="0.6B-CustomVoice", help="tiny-custom_voice, 0.6B-CustomVoice, ...")
    parser.add_argument("--frames", type=int, default=24, help="frames per request (fixed, greedy)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t = time.perf_counter()
    tts = Qwen3TTS.from_pretrained(checkpoint(args.config), device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t
    voice = voice_for(tts)
    greedy = SamplingParams.greedy()
    kwargs = dict(sampling=greedy, non_streaming_layout=False, max_new_frames=args.frames)
    tts.warmup()
    list(tts.stream_sync(TEXT, voice, **kwargs))  # warm the voice prefix

    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        offline = tts.generate(TEXT, voice, **kwargs)
        offline_s = time.perf_counter() - t

        before = tts.stats()["time_s"]
        t = time.perf_counter()
        first_chunk_s = None
        audio_samples = 0
        for chunk in tts.stream_sync(TEXT, voice, **kwargs):
            if first_chunk_s is None:
                first_chunk_s = time.perf_counter() - t
            audio_samples += len(chunk.audio)
        stream_s = time.perf_counter() - t
        after = tts.stats()["time_s"]
        split = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        frames = offline.codes.shape[0]
        audio_s = audio_samples / tts.sample_rate
        runs.append({
            "frames": frames,
            "time_to_first_chunk_s": first_chunk_s,
            "stream_wall_s": stream_s,
            "offline_wall_s": offline_s,
            "streaming_over_offline": stream_s / offline_s,
            "xrt_audio_s_per_wall_s": audio_s / stream_s,
            "per_frame_ms": {
                "code_predictor": 1000 * split.get("code_predictor", 0.0) / frames,
                "talker": 1000 * split.get("talker", 0.0) / frames,
                "decoder": 1000 * split.get("decoder", 0.0) / frames,
                "other": 1000 * (split.get("step", 0.0) - split.get("code_predictor", 0.0)
                                 - split.get("talker", 0.0) - split.get("decoder", 0.0)) / frames,
            },
            "prefill_s": split.get("prefill", 0.0),
        })
        print(runs[-1])
    result = {
        "benchmark": "streaming",
        "config": args.config,
        "dtype": args.dtype,
        "device": args.device,
        "load_s": load_s,
        "text": TEXT,
        "machine": machine(),
        "runs": runs,
        "note": "random weights: greedy decoding runs to the frame cap; one stream, warm voice",
    }
    save(f"streaming-{args.config}-{args.device}-{args.dtype}", result)
    tts.close()


if __name__ == "__main__":
    main()
