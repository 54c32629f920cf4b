"""`qwen3tts-realtime bench` (and `make bench-smoke`, `benchmarks/run.py`) on a reduced setting: every figure is
measured and written as JSON, a PNG plot and a markdown summary."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.bench.options import BenchSettings
from qwen3tts_realtime.bench.workloads import StreamRecord, jitter_playout
from qwen3tts_realtime.cli import main
from qwen3tts_realtime.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[1]


def leaves(value, path="result"):
    """Every scalar in a JSON tree, with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def test_bench_command_writes_json_png_and_summary_with_every_field_filled(tmp_path, capsys):
    code = main(["bench", "--model", "tiny", "--streams", "1", "2", "--frames", "6", "--long-speech-s", "3",
                 "--barge-in-trials", "2", "--threads", "1", "--cache-dir", str(tmp_path / "cache"),
                 "--out-dir", str(tmp_path / "out"), "--name", "smoke"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "smoke.json").read_text())
    for path, value in leaves(result):
        assert value is not None and value != "", path
        assert not (isinstance(value, float) and math.isnan(value)), path

    assert [w["streams"] for w in result["sweep"]["waves"]] == [1, 2]
    for wave in result["sweep"]["waves"]:
        assert wave["audio_s_per_stream"] == pytest.approx(6 * 0.08)
        assert 0 < wave["first_audio_p50_s"] <= wave["first_audio_p95_s"] < wave["wall_s"]
    assert result["sweep"]["waves"][0]["aggregate_vs_one_stream"] == 1.0
    assert result["settings"]["long_speech_s"] == 3 and result["memory"]["audio_s"] == pytest.approx(3.04)
    assert result["settings"]["linear_backend"] in ("onednn", "torch")
    assert result["streaming_vs_offline"]["frames"] == 6
    assert result["barge_in"]["trials"] == 2 and result["barge_in"]["background_streams"] == 1
    assert result["barge_in"]["chunks_after_cancel"] == 0
    assert result["jitter"]["streams"] == 2
    assert result["machine"]["torch_threads"] == 1 and result["machine"]["accelerator"] == "none"

    png = (tmp_path / "out" / "smoke.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    summary = (tmp_path / "out" / "smoke.md").read_text()
    assert "| 2 |" in summary and "cancel to slot free" in summary and "streaming / offline" in summary
    assert str(tmp_path / "out" / "smoke.md") in capsys.readouterr().out


def test_random_bench_checkpoints_are_built_once_and_reused(tmp_path):
    folder, name = bench_checkpoint("tiny", tmp_path)
    assert name == "tiny-0.6B-CustomVoice" and (folder / "model.safetensors").exists()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert bench_checkpoint("tiny-0.6B-CustomVoice", tmp_path) == (folder, name)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert bench_checkpoint(str(folder)) == (folder, folder.name)  # a folder is used as it is


def test_bad_settings_are_named():
    with pytest.raises(InvalidInputError, match="unknown benchmark model '2B'.*tiny, 0.6B, 1.7B"):
        bench_checkpoint("2B")
    with pytest.raises(InvalidInputError, match="streams"):
        BenchSettings(streams=(0,))
    with pytest.raises(InvalidInputError, match="llm_rate"):
        BenchSettings(llm_rate=-1.0)
    with pytest.raises(InvalidInputError, match="frames"):
        BenchSettings(frames=1)


def test_playout_of_a_slower_than_real_time_trace_counts_gaps_and_learns_a_start_target():
    # 80 ms of audio every 100 ms: a naive listener hears a 20 ms gap at every chunk after the first.
    record = StreamRecord(arrivals=[(0.1 * k, 1920) for k in range(10)], sample_rate=24000)
    result = jitter_playout([record], 24000)
    assert result["naive_underruns"] == 9 and result["naive_underrun_ms"] == pytest.approx(180)
    assert result["cold_underruns"] > 0
    assert result["warm_underruns"] == 0 and result["warm_added_latency_ms_max"] >= 180


def test_benchmarks_run_py_is_the_same_command():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    for flag in ("--model", "--streams", "--llm-rate", "--long-speech-s", "--threads", "--dtype", "--device"):
        assert flag in out
