"""Peers benchmark: the same request on the official `qwen-tts` package and on ours, side by side, in one run.

    python benchmarks/peers.py --config 0.6B-CustomVoice --frames 16 --threads 2     (or: make bench-peers)

Runs in OUR virtualenv. Ours: one warm stream (time to first chunk, per-frame split, xRT) and one offline
`generate` (talker generation vs codec decode), CPU float32, greedy, streaming prompt layout
(`non_streaming_layout=False`), the checkpoint's first speaker, exactly `--frames` frames. The official side runs the
same request (`generate_custom_voice(..., non_streaming_mode=False, do_sample=False, subtalker_dosample=False,
max_new_tokens=frames + 1)`) in a subprocess with the official virtualenv's python (`benchmarks/peers/official_run.py`;
the venv is made by `make bench-peers`). Both load the same checkpoint folder. `--quantize none fp16 int8 int4 w8a8`
runs our side once per weight format, each in its own process (its own peak RSS), beside one official run.

Writes benchmarks/results/peers-<config>-cpu-float32.json (both sides, our figures as ratios to the official ones,
greedy code agreement) and benchmarks/results/peers-<config>.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS, checkpoint, machine, save  # noqa: E402

import qwen3tts_realtime.engine.request as request_module  # noqa: E402 - where offline generation calls generate_frames
from qwen3tts_realtime import Qwen3TTS, SamplingParams  # noqa: E402
from qwen3tts_realtime.bench.machine import load_average, peak_rss_bytes, rss_bytes  # noqa: E402

TEXT = "Hello there, thanks for calling. Your order number is four two seven, and it ships on Monday."
LANGUAGE = "English"
OFFICIAL_RUN = HERE / "peers" / "official_run.py"
OFFICIAL_PYTHON = HERE / ".cache" / "official-venv" / "bin" / "python"


class Timer:
    """Wraps a callable and adds up the time spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def run_ours(folder: Path, frames: int, repeats: int, quantize: str | None = None) -> dict:
    rss_before_load = peak_rss_bytes()
    t = time.perf_counter()
    tts = Qwen3TTS.from_pretrained(folder, device="cpu", dtype="float32", quantize=quantize)
    load_s = time.perf_counter() - t
    speaker = tts.speakers[0]
    voice = tts.speaker(speaker)
    kwargs = dict(sampling=SamplingParams.greedy(), non_streaming_layout=False, max_new_frames=frames)
    tts.warmup()
    list(tts.open_stream(TEXT, voice=voice, language=LANGUAGE, **kwargs))  # warm the voice prefix, as a server would

    # offline generate: time the talker generation and the codec decode separately
    generate_timer = Timer(request_module.generate_frames)
    decode_timer = Timer(tts.requests.offline_audio)
    request_module.generate_frames, tts.requests.offline_audio = generate_timer, decode_timer
    runs = []
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            offline = tts.generate(TEXT, voice=voice, language=LANGUAGE, **kwargs)
            offline_s = time.perf_counter() - t
            gen_s, dec_s = generate_timer.take(), decode_timer.take()
            n = int(offline.codes.shape[0])

            before = tts.stats()["time_s"]
            t = time.perf_counter()
            first_chunk_s, samples, stream_codes = None, 0, []
            for chunk in tts.open_stream(TEXT, voice=voice, language=LANGUAGE, **kwargs):
                if first_chunk_s is None:
                    first_chunk_s = time.perf_counter() - t
                samples += len(chunk.audio)
                stream_codes.append(chunk.codes)
            stream_s = time.perf_counter() - t
            after = tts.stats()["time_s"]
            split = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            stream_codes = torch.cat(stream_codes)
            audio_s = samples / tts.sample_rate
            step_no_decoder = split.get("step", 0.0) - split.get("decoder", 0.0)
            runs.append({
                "frames": n,
                "offline": {
                    "wall_s": offline_s,
                    "talker_generate_s": gen_s,
                    "codec_decode_s": dec_s,
                    "other_s": offline_s - gen_s - dec_s,
                    "per_frame_ms": {"talker_and_code_predictor": 1000 * gen_s / n, "decoder": 1000 * dec_s / n},
                    "audio_s": len(offline.audio) / offline.sample_rate,
                    "xrt_audio_s_per_wall_s": len(offline.audio) / offline.sample_rate / offline_s,
                },
                "stream": {
                    "time_to_first_audio_s": first_chunk_s,
                    "wall_s": stream_s,
                    "prefill_s": split.get("prefill", 0.0),
                    "per_frame_ms": {
                        "talker": 1000 * split.get("talker", 0.0) / n,
                        "code_predictor": 1000 * split.get("code_predictor", 0.0) / n,
                        "decoder": 1000 * split.get("decoder", 0.0) / n,
                        "step_without_decoder": 1000 * step_no_decoder / n,
                    },
                    "audio_s": audio_s,
                    "xrt_audio_s_per_wall_s": audio_s / stream_s,
                    "codes_equal_offline": bool(torch.equal(stream_codes, offline.codes)),
                },
                "codes": offline.codes.tolist(),
            })
            print("ours", {k: v for k, v in runs[-1].items() if k != "codes"}, flush=True)
    finally:
        request_module.generate_frames = generate_timer.fn
    result = {
        "implementation": "qwen3tts_realtime",
        "speaker": speaker,
        "linear_backend": tts.linear_backend,
        "torch_threads": torch.get_num_threads(),
        "load_s": load_s,
        "peak_rss_before_load_bytes": rss_before_load,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_runs_bytes": rss_bytes(),
        "runs": runs,
    }
    tts.close()
    return result


def run_official(python: Path, folder: Path, speaker: str, frames: int, threads: int, repeats: int) -> dict:
    if not python.exists():
        raise SystemExit(f"no official virtualenv at {python}: run `make bench-peers` (it creates it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "official.json"
        cmd = [str(python), str(OFFICIAL_RUN), str(folder), str(out), "--text", TEXT, "--speaker", speaker,
               "--language", LANGUAGE, "--frames", str(frames), "--threads", str(threads), "--repeats", str(repeats)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        noise = ("WARNING", "SoX", "sox", "flash-attn", "*", "-", " ")
        for line in proc.stderr.splitlines():
            if line.startswith("{"):
                print("official", line, flush=True)
        if proc.returncode != 0 or not out.exists():
            print(proc.stdout[-4000:], proc.stderr[-8000:], sep="\n", file=sys.stderr)
            raise SystemExit(f"official run failed (exit {proc.returncode})")
        result = json.loads(out.read_text())
        result["log_tail"] = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith(noise)][-10:]
        return result


def agreement(ours: list, official: list) -> dict:
    a, b = torch.tensor(ours), torch.tensor(official)
    n = min(a.shape[0], b.shape[0])
    same = (a[:n] == b[:n]) if n else torch.zeros(0, 16, dtype=torch.bool)
    frame_ok = same.all(dim=1)
    bad = (~frame_ok).nonzero().flatten().tolist()
    first = bad[0] if bad else None
    return {
        "identical": bool(a.shape == b.shape and torch.equal(a, b)),
        "frames_ours": int(a.shape[0]),
        "frames_official": int(b.shape[0]),
        "frames_compared": n,
        "equal_frames": int(frame_ok.sum()),
        "equal_prefix_frames": n if first is None else first,
        "first_mismatch": None if first is None else {
            "frame": first, "groups": (~same[first]).nonzero().flatten().tolist(),
        },
        "equal_code_fraction": float(same.float().mean()) if n else float("nan"),
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def ratios(ours: dict, official: dict) -> dict:
    o, f = ours["runs"], official["runs"]
    ttfa = mean([r["stream"]["time_to_first_audio_s"] for r in o]) / mean([r["time_to_first_audio_s"] for r in f])
    off_step = mean([r["offline"]["per_frame_ms"]["talker_and_code_predictor"] for r in o])
    stream_step = mean([r["stream"]["per_frame_ms"]["step_without_decoder"] for r in o])
    their_step = mean([r["per_frame_ms"]["talker_and_code_predictor"] for r in f])
    return {
        "note": "ours / official: < 1 is better for times and memory, > 1 is better for xRT",
        "time_to_first_audio": ttfa,
        "per_frame_step_offline": off_step / their_step,
        "per_frame_step_stream": stream_step / their_step,
        "per_frame_decode_offline": mean([r["offline"]["per_frame_ms"]["decoder"] for r in o])
        / mean([r["per_frame_ms"]["decoder"] for r in f]),
        "xrt_stream": mean([r["stream"]["xrt_audio_s_per_wall_s"] for r in o])
        / mean([r["xrt_audio_s_per_wall_s"] for r in f]),
        "xrt_offline": mean([r["offline"]["xrt_audio_s_per_wall_s"] for r in o])
        / mean([r["xrt_audio_s_per_wall_s"] for r in f]),
        "peak_rss": ours["peak_rss_bytes"] / official["peak_rss_bytes"],
        "rss_after_runs": ours["rss_after_runs_bytes"] / official["rss_after_runs_bytes"],
        "peak_rss_above_imports": (ours["peak_rss_bytes"] - ours["peak_rss_before_load_bytes"])
        / (official["peak_rss_bytes"] - official["peak_rss_before_load_bytes"]),
    }


def markdown(result: dict) -> str:
    ours, off, r, agree = result["ours"], result["official"], result["ratios"], result["code_agreement"]
    o, f = ours["runs"], off["runs"]
    m = result["machine"]
    gib = 1024 ** 3

    def avg(side, *path):
        vals = []
        for run in side:
            v = run
            for p in path:
                v = v[p]
            vals.append(v)
        return mean(vals)

    rows = [
        ("load", f"{off['load_s']:.1f} s", f"{ours['load_s']:.1f} s", "—"),
        ("time to first audio", f"{avg(f, 'time_to_first_audio_s'):.2f} s (whole call)",
         f"{avg(o, 'stream', 'time_to_first_audio_s'):.2f} s (first chunk, warm voice)",
         f"{r['time_to_first_audio']:.3f}"),
        ("talker + code predictor per frame (offline)", f"{avg(f, 'per_frame_ms', 'talker_and_code_predictor'):.0f} ms",
         f"{avg(o, 'offline', 'per_frame_ms', 'talker_and_code_predictor'):.0f} ms",
         f"{r['per_frame_step_offline']:.3f}"),
        ("talker + code predictor per frame (our stream)", "—",
         f"{avg(o, 'stream', 'per_frame_ms', 'step_without_decoder'):.0f} ms "
         f"(talker {avg(o, 'stream', 'per_frame_ms', 'talker'):.0f}, "
         f"code predictor {avg(o, 'stream', 'per_frame_ms', 'code_predictor'):.0f})",
         f"{r['per_frame_step_stream']:.3f}"),
        ("codec decode per frame (offline)", f"{avg(f, 'per_frame_ms', 'decoder'):.1f} ms",
         f"{avg(o, 'offline', 'per_frame_ms', 'decoder'):.1f} ms (stream: "
         f"{avg(o, 'stream', 'per_frame_ms', 'decoder'):.1f} ms)", f"{r['per_frame_decode_offline']:.3f}"),
        ("wall, whole request", f"{avg(f, 'wall_s'):.2f} s",
         f"{avg(o, 'offline', 'wall_s'):.2f} s offline, {avg(o, 'stream', 'wall_s'):.2f} s stream", "—"),
        ("xRT (audio s per wall s)", f"{avg(f, 'xrt_audio_s_per_wall_s'):.3f}",
         f"{avg(o, 'stream', 'xrt_audio_s_per_wall_s'):.3f} stream, "
         f"{avg(o, 'offline', 'xrt_audio_s_per_wall_s'):.3f} offline",
         f"{r['xrt_stream']:.3f} stream, {r['xrt_offline']:.3f} offline"),
        ("peak RSS (process)", f"{off['peak_rss_bytes'] / gib:.2f} GiB", f"{ours['peak_rss_bytes'] / gib:.2f} GiB",
         f"{r['peak_rss']:.3f}"),
        ("RSS after the runs", f"{off['rss_after_runs_bytes'] / gib:.2f} GiB",
         f"{ours['rss_after_runs_bytes'] / gib:.2f} GiB", f"{r['rss_after_runs']:.3f}"),
        ("peak RSS above imports", f"{(off['peak_rss_bytes'] - off['peak_rss_before_load_bytes']) / gib:.2f} GiB",
         f"{(ours['peak_rss_bytes'] - ours['peak_rss_before_load_bytes']) / gib:.2f} GiB",
         f"{r['peak_rss_above_imports']:.3f}"),
    ]
    first = agree["first_mismatch"]
    lines = [
        f"# Peers: official qwen-tts vs qwen3tts_realtime — {result['config']}, CPU float32"
        + (f" (ours: `quantize=\"{result['quantize']}\"` weights, kernel {ours['linear_backend']})"
           if result["quantize"] != "none" else ""),
        "",
        f"Measured {m['date']} on {m['cpu']} ({m['logical_cores']} logical cores), {result['threads']} threads, "
        f"our torch {m['torch']}; official: qwen-tts {off['versions']['qwen_tts']}, transformers "
        f"{off['versions']['transformers']}, torch {off['versions']['torch']}.",
        f"One request: {result['frames']} frames ({result['frames'] * 0.08:.2f} s of audio), greedy, streaming prompt "
        f"layout, speaker `{ours['speaker']}`, language {LANGUAGE}, random weights "
        f"({result['repeats']} repeat(s), figures are means). Ours: warm voice; the official call returns audio only "
        "when done, so its wall time is its time to first audio.",
        "",
        "| figure | official | ours | ours / official |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        f"Greedy codes: {'identical' if agree['identical'] else 'NOT identical'} "
        f"({agree['equal_frames']}/{agree['frames_compared']} frames equal, equal prefix "
        f"{agree['equal_prefix_frames']} frames, {100 * agree['equal_code_fraction']:.1f}% of codes"
        + (f"; first mismatch at frame {first['frame']}, groups {first['groups']}" if first else "")
        + f"). Our stream's codes equal our offline codes: {all(x['stream']['codes_equal_offline'] for x in o)}.",
        "",
        "Load average (1 min) at start / after ours / after official: "
        + " / ".join("?" if v is None else f"{v[0]:.2f}" for v in result["load_average"].values())
        + f" on {m['logical_cores']} cores. Noisy shared machine: compare the ratios of one run, not absolute times "
        "across runs: with other work running, 2-thread runs swing widely (the official per-frame step measured "
        "0.6 s to 3 s between runs on a loaded machine); repeat, and try `--threads 1`.",
        "",
    ]
    return "\n".join(lines)


MODES = ["none", "fp16", "int8", "int4", "w8a8"]


def run_ours_in_subprocess(args: argparse.Namespace, quantize: str) -> dict:
    """Our side for one weight format, in its own process, so each format's peak RSS is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ours.json"
        cmd = [sys.executable, __file__, "--config", args.config, "--frames", str(args.frames), "--repeats",
               str(args.repeats), "--quantize", quantize, "--ours-json", str(out)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, timeout=3600)
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"our run with quantize={quantize} failed (exit {proc.returncode})")
        return json.loads(out.read_text())


def modes_markdown(config: str, results: dict[str, dict]) -> str:
    gib = 1024 ** 3
    lines = [f"# Peers, every weight format — {config}, CPU, ours / official in one run", "",
             "| ours: quantize | kernel | first audio | talker + predictor per frame (stream) | decoder per frame | "
             "xRT stream | ours / official per frame | peak RSS | greedy codes equal official |",
             "|---|---|---|---|---|---|---|---|---|"]
    for mode, r in results.items():
        o, ratio = r["ours"]["runs"], r["ratios"]
        lines.append(
            f"| {mode} | {r['ours']['linear_backend']}"
            f" | {mean([x['stream']['time_to_first_audio_s'] for x in o]):.2f} s"
            f" | {mean([x['stream']['per_frame_ms']['step_without_decoder'] for x in o]):.0f} ms"
            f" | {mean([x['stream']['per_frame_ms']['decoder'] for x in o]):.0f} ms"
            f" | {mean([x['stream']['xrt_audio_s_per_wall_s'] for x in o]):.3f}"
            f" | {ratio['per_frame_step_stream']:.3f} | {r['ours']['peak_rss_bytes'] / gib:.2f} GiB"
            f" | {100 * r['code_agreement']['equal_code_fraction']:.1f}% |")
    official = next(iter(results.values()))["official"]
    runs = official["runs"]
    lines += ["", f"Official qwen-tts in the same run: talker + predictor "
              f"{mean([x['per_frame_ms']['talker_and_code_predictor'] for x in runs]):.0f} ms per frame, decoder "
              f"{mean([x['per_frame_ms']['decoder'] for x in runs]):.0f} ms, xRT "
              f"{mean([x['xrt_audio_s_per_wall_s'] for x in runs]):.3f}, peak RSS "
              f"{official['peak_rss_bytes'] / gib:.2f} GiB. Random weights: greedy code equality with the official "
              "package is only meaningful for float32 and fp16; fidelity of the other formats is measured "
              "teacher-forced in fidelity-*.json.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="0.6B-CustomVoice", help="0.6B-CustomVoice, tiny-custom_voice (smoke)")
    parser.add_argument("--frames", type=int, default=16, help="frames per request (fixed, greedy)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tag", default="", help="appended to the result names, e.g. t1 → peers-<config>-t1-...")
    parser.add_argument("--official-python", type=Path, default=OFFICIAL_PYTHON)
    parser.add_argument("--quantize", nargs="+", choices=MODES, default=["none"],
                        help="our weight formats, each run in its own process (none = float32)")
    parser.add_argument("--ours-json", type=Path, default=None, help=argparse.SUPPRESS)  # one format, ours only
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    folder = checkpoint(args.config)
    if args.ours_json is not None:
        quantize = None if args.quantize[0] == "none" else args.quantize[0]
        args.ours_json.write_text(json.dumps(run_ours(folder, args.frames, args.repeats, quantize)))
        return

    load = {"start": load_average()}
    ours_by_mode = {}
    for mode in args.quantize:
        ours_by_mode[mode] = run_ours_in_subprocess(args, mode)
        load[f"after_ours_{mode}"] = load_average()
    gc.collect()
    speaker = next(iter(ours_by_mode.values()))["speaker"]
    official = run_official(args.official_python, folder, speaker, args.frames, threads, args.repeats)
    load["after_official"] = load_average()

    results = {}
    for mode, ours in ours_by_mode.items():
        result = {
            "benchmark": "peers",
            "config": args.config,
            "checkpoint": str(folder),
            "dtype": "float32",
            "quantize": mode,
            "device": "cpu",
            "text": TEXT,
            "language": LANGUAGE,
            "frames": args.frames,
            "threads": threads,
            "repeats": args.repeats,
            "machine": machine(),
            "load_average": load,
            "ours": ours,
            "official": official,
            "ratios": ratios(ours, official),
            "code_agreement": agreement(ours["runs"][0]["codes"], official["runs"][0]["codes"]),
            "note": "random weights; greedy; ours runs first (each format in its own process), then the official "
                    "package in a subprocess (same machine, same thread count); peak RSS is each whole process's "
                    "VmHWM",
        }
        results[mode] = result
        name = "-".join(["peers", args.config, *filter(None, [None if mode == "none" else mode, args.tag])])
        save(f"{name}-cpu-float32", result)
        md = RESULTS / f"{name}.md"
        md.write_text(markdown(result))
        print(f"wrote {md}")
        print(mode, json.dumps({"ratios": result["ratios"], "code_agreement": result["code_agreement"]}, indent=2))
    if len(results) > 1:
        md = RESULTS / f"peers-{args.config}{'-' + args.tag if args.tag else ''}-modes.md"
        md.write_text(modes_markdown(args.config, results))
        print(f"wrote {md}")


if __name__ == "__main__":
    main()
