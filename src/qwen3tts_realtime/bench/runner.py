"""`qwen3tts-realtime bench`: the run that measures everything and writes its reports.

    qwen3tts-realtime bench --model tiny --streams 1 2 4 --long-speech-s 30 --out-dir bench-results
    qwen3tts-realtime bench --model 0.6B --threads 2 --streams 1 2 4 8 --frames 24 --llm-rate 20
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from qwen3tts_realtime.bench import workloads
from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.bench.machine import describe_machine, peak_rss_bytes, reset_peak_rss
from qwen3tts_realtime.bench.options import BenchSettings, settings_from_args
from qwen3tts_realtime.bench.report import write_reports
from qwen3tts_realtime.tts import Qwen3TTS

__all__ = ["run_bench", "run_from_args"]


def run_bench(settings: BenchSettings) -> dict[str, Any]:
    """Load (or build) the model, warm it, and run every measurement; returns the JSON-ready result."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    folder, name = bench_checkpoint(settings.model, settings.cache_dir)
    reset_peak_rss()  # the peak reported is the engine's, not that of writing a random checkpoint
    machine = describe_machine(settings.device)
    t = time.perf_counter()
    tts = Qwen3TTS.from_pretrained(folder, device=settings.device, dtype=settings.dtype, quantize=settings.quantize,
                                   linear_backend=settings.linear_backend)
    load_s = time.perf_counter() - t
    long_s = settings.long_speech_s or (600.0 if name.startswith("tiny") else 120.0)
    text_source = "fixed text" if settings.llm_rate is None else f"LLM tokens at {settings.llm_rate:g}/s"
    try:
        tts.max_streams = max(settings.streams)
        voice = workloads.bench_voice(tts)
        tts.warmup()
        workloads.run_wave(tts, voice, 1, 4)  # the voice's warm prefix
        waves, records = [], {}
        for n in settings.streams:
            workloads.run_wave(tts, voice, n, 4)  # first calls at a new batch size pay one-time kernel set-up
            per_repeat = [workloads.run_wave(tts, voice, n, settings.frames, settings.llm_rate)
                          for _ in range(settings.repeats)]
            waves.append(workloads.merge_waves(per_repeat))
            records[n] = [r for _, rs in per_repeat for r in rs]
        one = waves[0]["aggregate_audio_s_per_s"]
        for w in waves:
            w["aggregate_vs_one_stream"] = w["aggregate_audio_s_per_s"] / one
        busiest = max(settings.streams)
        jitter = {"trace": f"{busiest}-stream", **workloads.jitter_playout(records[busiest], tts.sample_rate)}
        result = {
            "benchmark": "qwen3tts-realtime bench",
            "settings": {**dataclasses.asdict(settings), "streams": list(settings.streams), "model": name,
                         "threads": torch.get_num_threads(), "text_source": text_source,
                         "frames_per_stream": settings.frames, "long_speech_s": long_s,
                         "llm_rate": settings.llm_rate or 0.0, "quantize": settings.quantize or "none",
                         "linear_backend": tts.linear_backend,
                         "cache_dir": str(folder.parent)},
            "machine": machine,
            "load_s": load_s,
            "sweep": {"note": "the first wave's stream count is the 'one stream' reference", "waves": waves},
            "streaming_vs_offline": workloads.streaming_vs_offline(tts, voice, settings.frames),
            "barge_in": workloads.barge_in(tts, voice, settings.barge_in_trials, min(3, busiest - 1)),
            "jitter": jitter,
            "memory": workloads.memory_over_long_text(tts, voice, long_s),
            "engine_stats": _plain(tts.stats()),
            "peak_rss_mib": peak_rss_bytes() / 2**20,
        }
    finally:
        tts.close()
    return result


def _plain(value: Any) -> Any:
    """JSON-ready engine stats (tuples and dict keys that are not strings made plain)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run_from_args(args: argparse.Namespace) -> dict[str, Path]:
    """Run the benchmark the parsed arguments describe and write its reports; returns their paths."""
    settings = settings_from_args(args)
    result = run_bench(settings)
    weights = f"-{settings.quantize}" if settings.quantize else ""
    stem = args.name or f"bench-{result['settings']['model']}-{settings.device}-{settings.dtype}{weights}"
    return write_reports(result, args.out_dir, stem)
