"""Benchmark outputs: the JSON result, a PNG plot (latency and throughput vs streams) and a markdown summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["markdown_summary", "plot", "write_reports"]


def write_reports(result: dict[str, Any], out_dir: str | Path, stem: str) -> dict[str, Path]:
    """Write `<stem>.json`, `<stem>.png` and `<stem>.md` into `out_dir`; returns their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "png": out / f"{stem}.png", "md": out / f"{stem}.md"}
    result = {**result, "files": {k: p.name for k, p in paths.items()}}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    plot(result, paths["png"])
    paths["md"].write_text(markdown_summary(result))
    return paths


def plot(result: dict[str, Any], path: Path) -> None:
    """First audio p50/p95 and throughput (aggregate and per stream) against concurrent streams."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError('the benchmark plot needs matplotlib: pip install "qwen3tts-realtime[bench]"') from None
    waves = result["sweep"]["waves"]
    n = [w["streams"] for w in waves]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    left.plot(n, [w["first_audio_p50_s"] for w in waves], "o-", label="p50")
    left.plot(n, [w["first_audio_p95_s"] for w in waves], "s--", label="p95")
    left.set(xlabel="concurrent streams", ylabel="time to first audio (s)", title="First audio", xticks=n)
    left.set_ylim(bottom=0)
    left.legend()
    right.plot(n, [w["aggregate_audio_s_per_s"] for w in waves], "o-", label="aggregate (audio s / s)")
    right.plot(n, [w["per_stream_xrt_mean"] for w in waves], "s--", label="per stream xRT (mean)")
    right.axhline(1.0, color="grey", linewidth=0.8, linestyle=":", label="real time")
    right.set(xlabel="concurrent streams", ylabel="audio seconds per wall second", title="Throughput", xticks=n)
    right.set_ylim(bottom=0)
    right.legend()
    s = result["settings"]
    fig.suptitle(f"qwen3tts-realtime: {s['model']} {s['device']} {s['dtype']} "
                 f"(weights {s['quantize']}, linear {s['linear_backend']}), {s['threads']} threads, "
                 f"{s['text_source']}", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown_summary(result: dict[str, Any]) -> str:
    """A human-readable summary of a benchmark result."""
    s, m = result["settings"], result["machine"]
    lines = [
        f"# Benchmark: {s['model']} ({s['device']}, {s['dtype']}, weights {s['quantize']}, "
        f"linear {s['linear_backend']}, {s['threads']} threads)",
        "",
        f"{m['date']} · {m['cpu']} · {m['logical_cores']} logical cores · accelerator: {m['accelerator']} · "
        f"torch {m['torch']} · load average at start {m['load_average_1_5_15']}",
        "",
        f"Random weights, greedy, {s['frames_per_stream']} frames ({s['frames_per_stream'] * 0.08:.2f} s of audio) "
        f"per stream; text: {s['text_source']}; {s['repeats']} wave(s) per point.",
        "",
        "## Concurrent streams",
        "",
        "| streams | first audio p50 (s) | p95 (s) | per-stream xRT (mean / min) | aggregate audio s/s "
        "| × one stream |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for w in result["sweep"]["waves"]:
        lines.append(
            f"| {w['streams']} | {w['first_audio_p50_s']:.3f} | {w['first_audio_p95_s']:.3f} | "
            f"{w['per_stream_xrt_mean']:.2f} / {w['per_stream_xrt_min']:.2f} | {w['aggregate_audio_s_per_s']:.3f} | "
            f"{w['aggregate_vs_one_stream']:.2f} |"
        )
    so, b, j, mem = result["streaming_vs_offline"], result["barge_in"], result["jitter"], result["memory"]
    lines += [
        "",
        "## One stream",
        "",
        f"- first audio {so['first_audio_s']:.3f} s = prompt {so['prompt_s']:.3f} s + prefill {so['prefill_s']:.3f} s "
        "+ one frame "
        f"(talker {so['per_frame_ms']['talker']:.1f} ms, code predictor {so['per_frame_ms']['code_predictor']:.1f} ms, "
        f"decoder {so['per_frame_ms']['decoder']:.1f} ms) {so['first_audio_over_floor_ms']:+.1f} ms",
        f"- streaming / offline wall time: {so['streaming_over_offline']:.3f} "
        f"({so['stream_wall_s']:.2f} s / {so['offline_wall_s']:.2f} s, {so['frames']} frames, fastest of "
        f"{so['pairs']} alternating runs each); "
        f"stream xRT {so['stream_xrt']:.2f}",
        "",
        f"## Barge-in ({b['trials']} cancels after the second chunk, {b['background_streams']} other streams speaking)",
        "",
        f"- cancel to last chunk: p50 {b['cancel_to_last_chunk_ms_p50']:.2f} ms, max "
        f"{b['cancel_to_last_chunk_ms_max']:.2f} ms; chunks delivered after cancel: {b['chunks_after_cancel']}",
        f"- cancel to slot free: p50 {b['cancel_to_slot_free_ms_p50']:.1f} ms, max "
        f"{b['cancel_to_slot_free_ms_max']:.1f} ms",
        "",
        f"## Playout of the {j['streams']} streams of the {j['trace']} wave (their real chunk arrival times)",
        "",
        f"- adaptive jitter buffer (20 ms frames), first turn (cold): {j['cold_underruns']} underruns, "
        f"{j['cold_underrun_ms']:.0f} ms silent, at most {j['cold_added_latency_ms_max']:.0f} ms added latency",
        f"- the same buffer on the next turn (target learned): {j['warm_underruns']} underruns, "
        f"{j['warm_underrun_ms']:.0f} ms silent, at most {j['warm_added_latency_ms_max']:.0f} ms added latency",
        f"- naive playback from the first chunk: {j['naive_underruns']} underruns, "
        f"{j['naive_underrun_ms']:.0f} ms silent",
        "",
        f"## Memory over one long stream ({mem['audio_s']:.0f} s of speech of {mem['requested_audio_s']:.0f} s asked, "
        f"xRT {mem['xrt']:.2f})",
        "",
        f"- resident memory {mem['rss_start_mib']:.0f} MiB at the start, {mem['rss_end_mib']:.0f} MiB at the end; "
        f"growth after the first 10%: {mem['rss_growth_mib']:.1f} MiB ({mem['rss_growth_mib_per_min']:.2f} MiB per "
        f"minute of speech); process peak {mem['peak_rss_mib']:.0f} MiB",
        "",
    ]
    return "\n".join(lines)
