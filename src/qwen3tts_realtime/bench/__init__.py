"""Benchmarks of the engine (`qwen3tts-realtime bench`, `benchmarks/run.py`): random-weight checkpoints built from
the shipped real configs, measured for first audio, throughput under concurrency, streaming vs offline, barge-in,
playout gaps and memory; written as JSON (with the machine), a PNG plot and a markdown summary.

    options      BenchSettings and the command-line flags (no torch)
    checkpoints  the benchmark model: a random checkpoint built once, or a folder
    workloads    the measurements
    report       JSON, PNG (matplotlib: `pip install "qwen3tts-realtime[bench]"`), markdown
    runner       run_bench(settings) -> result; run_from_args
"""
