"""The official side of `benchmarks/peers.py`: one CustomVoice request through the official `qwen-tts` package.

Runs INSIDE the official virtualenv (torch 2.13.0 + qwen-tts 0.1.1, see `make bench-peers`), never in ours:

    benchmarks/.cache/official-venv/bin/python benchmarks/peers/official_run.py FOLDER OUT.json \
        --text "..." --speaker ryan --frames 16 --threads 2

Measures, per request: the wall time of `Qwen3TTSModel.generate_custom_voice` (it returns audio only when done, so
this is its time to first audio), the time inside the talker's `generate` (talker + code predictor, prefill
included) and inside the codec `decode`, xRT, and the process's peak RSS. Writes them with the generated codes
(greedy: compared with ours by the caller) as JSON.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import platform
import resource
import sys
import time
import types


def _stub(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = module
    return module


def install_stand_ins() -> list[str]:
    """Empty stand-ins for modules only the 25 Hz tokenizer uses, imported by `import qwen_tts`.

    torchaudio's wheel does not match torch 2.13; no 12 Hz path calls it. sox and onnxruntime are stubbed only when
    they are not installed. Returns the stubbed names."""
    stubbed = []
    audio = _stub("torchaudio")
    compliance = _stub("torchaudio.compliance")
    kaldi = _stub("torchaudio.compliance.kaldi")
    audio.compliance, compliance.kaldi = compliance, kaldi
    stubbed += ["torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"]
    for name in ("sox", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            _stub(name)
            stubbed.append(name)
    return stubbed


class Timer:
    """Wraps a callable and adds up the time spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def rss_bytes(field: str = "VmRSS") -> int | None:
    """A /proc/self/status memory figure in bytes (VmRSS: now; VmHWM: peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's peak RSS: VmHWM (per address space, so reset by exec; ru_maxrss would inherit the peak of
    the process that spawned us, as Linux keeps it across fork + exec)."""
    peak = rss_bytes("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="checkpoint folder in the official layout")
    parser.add_argument("out", help="JSON result path")
    parser.add_argument("--text", required=True)
    parser.add_argument("--speaker", required=True)
    parser.add_argument("--language", default="English")
    parser.add_argument("--frames", type=int, default=16, help="frames to generate (max_new_tokens = frames + 1)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-warmup", action="store_true", help="skip the 2-frame warm-up request")
    args = parser.parse_args()

    stubbed = install_stand_ins()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from importlib.metadata import version

    import transformers
    from qwen_tts import Qwen3TTSModel

    rss_before_load = peak_rss_bytes()
    t = time.perf_counter()
    tts = Qwen3TTSModel.from_pretrained(args.folder, dtype=torch.float32)
    load_s = time.perf_counter() - t
    model = tts.model
    generate = Timer(model.generate)
    model.generate = generate  # generate_custom_voice calls self.model.generate(...)
    decode = Timer(model.speech_tokenizer.decode)
    model.speech_tokenizer.decode = decode  # ... then self.model.speech_tokenizer.decode(...)

    kwargs = dict(
        language=args.language, non_streaming_mode=False, do_sample=False, subtalker_dosample=False,
    )
    if not args.no_warmup:
        with torch.inference_mode():
            tts.generate_custom_voice("Hello.", args.speaker, max_new_tokens=3, **kwargs)
        generate.take(), decode.take()

    # capture the codes of each request: wrap once more to keep the talker's output
    captured: list = []
    inner = generate.fn

    def keep(*a, **k):
        out = inner(*a, **k)
        captured.append(out[0][0].detach().cpu())
        return out

    generate.fn = keep

    runs = []
    for _ in range(args.repeats):
        captured.clear()
        t = time.perf_counter()
        with torch.inference_mode():
            wavs, sr = tts.generate_custom_voice(args.text, args.speaker, max_new_tokens=args.frames + 1, **kwargs)
        wall_s = time.perf_counter() - t
        gen_s, dec_s = generate.take(), decode.take()
        codes = captured[-1]
        frames = int(codes.shape[0])
        audio_s = len(wavs[0]) / sr
        runs.append({
            "frames": frames,
            "wall_s": wall_s,
            "time_to_first_audio_s": wall_s,
            "talker_generate_s": gen_s,
            "codec_decode_s": dec_s,
            "other_s": wall_s - gen_s - dec_s,
            "per_frame_ms": {
                "talker_and_code_predictor": 1000 * gen_s / frames,
                "decoder": 1000 * dec_s / frames,
            },
            "audio_s": audio_s,
            "xrt_audio_s_per_wall_s": audio_s / wall_s,
            "codes": codes.tolist(),
        })
        print({k: v for k, v in runs[-1].items() if k != "codes"}, file=sys.stderr, flush=True)

    result = {
        "implementation": "official qwen-tts",
        "versions": {
            "qwen_tts": version("qwen-tts"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "stand_ins": stubbed,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "call": {
            "method": "Qwen3TTSModel.generate_custom_voice",
            "speaker": args.speaker,
            "max_new_tokens": args.frames + 1,
            **kwargs,
        },
        "load_s": load_s,
        "peak_rss_before_load_bytes": rss_before_load,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_runs_bytes": rss_bytes(),
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
