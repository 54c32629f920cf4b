"""The benchmark suite (same as `qwen3tts-realtime bench`), writing into benchmarks/results/ by default and
building random checkpoints under benchmarks/.cache/.

    python benchmarks/run.py --model tiny --streams 1 2 3 4 --long-speech-s 30 --name bench-smoke-tiny
    python benchmarks/run.py --model 0.6B --threads 2 --streams 1 2 4 8 --frames 24
(`make bench-smoke`, `make bench`).

Writes <name>.json (settings, machine, every figure), <name>.png (latency and throughput vs streams) and <name>.md.
See `qwen3tts_realtime.bench` for what each figure measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qwen3tts_realtime.bench.options import add_bench_arguments
from qwen3tts_realtime.bench.runner import run_from_args

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bench_arguments(parser)
    parser.set_defaults(out_dir=str(HERE / "results"), cache_dir=str(HERE / ".cache"))
    paths = run_from_args(parser.parse_args(argv))
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
