"""StreamResampler: chunking-invariant, continuous, exact lengths, strict arguments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qwen3tts_realtime.audio import SUPPORTED_SAMPLE_RATES, StreamResampler

RATE_PAIRS = [(a, b) for a, b in itertools.permutations(SUPPORTED_SAMPLE_RATES, 2)]


def _random_chunks(x: np.ndarray, rng: np.random.Generator, max_len: int = 3000) -> list[np.ndarray]:
    chunks, i = [], 0
    while i < x.shape[0]:
        n = int(rng.integers(0, max_len))  # empty chunks included
        chunks.append(x[i : i + n])
        i += n
    return chunks


def _resample_stream(resampler: StreamResampler, chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([resampler.process(c) for c in chunks] + [resampler.flush()])


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_random_chunking_equals_one_call(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(in_rate * 7 + out_rate)
    x = (0.3 * rng.standard_normal(in_rate // 2 + 123)).astype(np.float32)

    whole = _resample_stream(StreamResampler(in_rate, out_rate), [x])
    chunked = _resample_stream(StreamResampler(in_rate, out_rate), _random_chunks(x, rng))

    assert whole.dtype == chunked.dtype == np.float32
    assert chunked.shape == whole.shape
    assert np.max(np.abs(chunked - whole)) <= 1e-6


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 8000), (24000, 48000), (22050, 16000)])
def test_sine_has_no_discontinuity_at_chunk_boundaries(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(1)
    freq_hz, amplitude = 440.0, 0.5
    t = np.arange(in_rate) / in_rate
    x = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)

    y = _resample_stream(StreamResampler(in_rate, out_rate), _random_chunks(x, rng, max_len=700))

    # Away from the onset and the end, a sine's sample-to-sample step is bounded by its slope.
    edge = out_rate // 50  # 20 ms
    steepest_step = 2 * np.pi * freq_hz / out_rate * amplitude
    assert np.max(np.abs(np.diff(y[edge:-edge]))) <= steepest_step * 1.02


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_total_output_length_is_round_half_up_of_the_ratio(in_rate: int, out_rate: int) -> None:
    resampler = StreamResampler(in_rate, out_rate)
    # Lengths whose exact output length ends in .5 (where soxr alone can come out one short), and others.
    ties = [n for n in range(1, 4000) if (2 * n * out_rate) % (2 * in_rate) == in_rate][:3]
    for n in [0, 1, 7, 240, 999, 4801, *ties]:
        out = _resample_stream(resampler, [np.zeros(n, dtype=np.float32)])
        assert (
            out.shape[0]
            == (2 * n * out_rate + in_rate) // (2 * in_rate)
            == resampler.expected_output_samples(n)
        )


def test_output_length_is_exact_over_a_long_stream() -> None:
    resampler = StreamResampler(24000, 22050)
    chunk = np.full(480, 0.1, dtype=np.float32)  # 20 ms
    produced = sum(resampler.process(chunk).shape[0] for _ in range(15_000))  # 5 minutes
    produced += resampler.flush().shape[0]

    assert produced == 15_000 * 441  # 7.2e6 * 22050 / 24000, no drift
    assert resampler.samples_in == 0  # flush() reset it for the next stream


def test_soxr_tie_shortfall_is_completed_by_flush() -> None:
    resampler = StreamResampler(24000, 22050)

    out = _resample_stream(resampler, [np.zeros(240, dtype=np.float32)])

    assert out.shape == (221,)  # 240 * 22050 / 24000 = 220.5 -> 221 (soxr alone gives 220)


def test_same_rate_is_an_exact_pass_through_with_the_same_chunking() -> None:
    resampler = StreamResampler(24000, 24000)
    chunks = [np.array([0.25, -1.0, 0.5], dtype=np.float32), np.zeros(0, dtype=np.float32)]

    outs = [resampler.process(c) for c in chunks]

    assert [o.tolist() for o in outs] == [[0.25, -1.0, 0.5], []]
    assert resampler.flush().shape == (0,)


def test_flush_makes_it_ready_for_the_next_stream() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000).astype(np.float32)
    reused = StreamResampler(16000, 24000)
    _resample_stream(reused, [rng.standard_normal(777).astype(np.float32)])

    assert np.array_equal(_resample_stream(reused, [x]), _resample_stream(StreamResampler(16000, 24000), [x]))


@pytest.mark.parametrize("bad_rate", [11025, 0, -8000, 24000.0, "24000", True])
def test_unsupported_rate_is_rejected_with_the_accepted_list(bad_rate: object) -> None:
    with pytest.raises(ValueError, match="8000, 16000, 22050, 24000, 44100, 48000"):
        StreamResampler(bad_rate, 8000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out_rate"):
        StreamResampler(24000, bad_rate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (np.zeros(10, dtype=np.float64), "float32, got float64"),
        (np.zeros(10, dtype=np.int16), "float32, got int16"),
        (np.zeros((10, 2), dtype=np.float32), r"1-D \(mono\).*shape \(10, 2\)"),
        ([0.0, 0.1], "numpy array.*got list"),
    ],
)
def test_wrong_chunk_is_rejected(chunk: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamResampler(24000, 8000).process(chunk)  # type: ignore[arg-type]
