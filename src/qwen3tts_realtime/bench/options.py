"""What `qwen3tts-realtime bench` measures: its settings and command-line flags (no torch import)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["MODEL_ALIASES", "BenchSettings", "add_bench_arguments", "settings_from_args"]

MODEL_ALIASES = {"tiny": "tiny-0.6B-CustomVoice", "0.6B": "0.6B-CustomVoice", "1.7B": "1.7B-CustomVoice"}
"""Short names: "tiny" (tiny widths, the 0.6B CustomVoice layout), "0.6B", "1.7B" (full-size CustomVoice)."""


@dataclass(frozen=True)
class BenchSettings:
    """What to measure. `long_speech_s=None`: 600 s on tiny models, 120 s otherwise."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    quantize: str | None = None
    linear_backend: str = "auto"
    threads: int | None = None
    streams: tuple[int, ...] = (1, 2, 4, 8, 16)
    frames: int = 24
    repeats: int = 1
    llm_rate: float | None = None
    long_speech_s: float | None = None
    barge_in_trials: int = 5
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.streams or any(int(n) != n or n < 1 for n in self.streams):
            raise InvalidInputError(f"streams={self.streams!r}; give stream counts >= 1, e.g. 1 2 4 8")
        for name, low in (("frames", 2), ("repeats", 1), ("barge_in_trials", 1)):
            if getattr(self, name) < low:
                raise InvalidInputError(f"{name}={getattr(self, name)!r}; it must be at least {low}")
        if self.llm_rate is not None and not self.llm_rate > 0:
            raise InvalidInputError(f"llm_rate={self.llm_rate!r}; tokens per second must be > 0 (or None)")
        if self.long_speech_s is not None and not self.long_speech_s > 0:
            raise InvalidInputError(f"long_speech_s={self.long_speech_s!r}; it must be > 0 seconds")



def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    models = ", ".join(MODEL_ALIASES)
    parser.add_argument("--model", default="tiny",
                        help=f"{models}, a shipped config name (e.g. 0.6B-Base, tiny-0.6B-Base) or a checkpoint folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--quantize", choices=["fp16", "int8", "int4", "w8a8"], default=None,
                        help="opt-in CPU weight format of the talker (see Qwen3TTS.from_pretrained)")
    parser.add_argument("--linear-backend", default="auto",
                        help="the kernel: float32 onednn or torch; quantized, a kernel name of "
                             "model.quantized_linear.KERNELS; auto: measured here")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="concurrency sweep")
    parser.add_argument("--frames", type=int, default=24, help="80 ms frames per stream in the sweep")
    parser.add_argument("--repeats", type=int, default=1, help="waves per sweep point")
    parser.add_argument("--llm-rate", type=float, default=None, metavar="TOKENS_PER_S",
                        help="feed the sweep's text word by word at this rate (default: whole text at open)")
    parser.add_argument("--long-speech-s", type=float, default=None,
                        help="seconds of speech for the memory test (default 600 on tiny, 120 otherwise)")
    parser.add_argument("--barge-in-trials", type=int, default=5)
    parser.add_argument("--cache-dir", default=None,
                        help="where random checkpoints are built (default: $QWEN3TTS_BENCH_CACHE or the user cache)")
    parser.add_argument("--out-dir", default="bench-results", help="folder for the JSON, PNG and markdown files")
    parser.add_argument("--name", default=None, help="file stem (default: bench-<model>-<device>-<dtype>)")


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    return BenchSettings(
        model=args.model, device=args.device, dtype=args.dtype, quantize=args.quantize,
        linear_backend=args.linear_backend, threads=args.threads,
        streams=tuple(args.streams),
        frames=args.frames, repeats=args.repeats, llm_rate=args.llm_rate, long_speech_s=args.long_speech_s,
        barge_in_trials=args.barge_in_trials, cache_dir=args.cache_dir,
    )
