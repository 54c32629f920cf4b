"""POST /v1/audio/speech against the real server: the streamed audio is the engine's greedy output for the
same request, resampled and encoded as asked; WAV and FLAC decode (soundfile) to the same samples; mp3/opus
decode; `stream: false` returns the whole file with its figures in headers; the official OpenAI client streams
from it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from qwen3tts_realtime.audio import decode_g711, encode_g711, to_pcm16

from .conftest import GREEDY, assert_pcm_close, reference_audio, resampled

TEXT = "Hello there."
FRAMES = 10


@pytest.fixture(scope="module")
def expected(server) -> np.ndarray:
    return reference_audio(server.tts, TEXT, max_frames=FRAMES)


def speak(server, **fields):
    body = {"model": "qwen3-tts", "input": TEXT, "voice": "ryan", "max_frames": FRAMES, **GREEDY, **fields}
    with server.client() as c:
        r = c.post("/v1/audio/speech", json=body)
    assert r.status_code == 200, r.text
    return r


def test_streamed_pcm16_is_the_greedy_output(server, expected):
    chunks = []
    body = {"input": TEXT, "voice": "ryan", "response_format": "pcm", "max_frames": FRAMES, **GREEDY}
    with server.client() as c, c.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
        assert r.headers["content-type"] == "audio/pcm; rate=24000; encoding=pcm16"
        chunks = list(r.iter_raw())
    assert len(chunks) > 1  # audio left as it was produced, not as one body
    assert np.array_equal(np.frombuffer(b"".join(chunks), "<i2"), to_pcm16(expected))


@pytest.mark.parametrize(("rate", "encoding"), [(8000, "ulaw"), (16000, "alaw"), (48000, "pcm16")])
def test_resampled_and_encoded_as_asked(server, expected, rate, encoding):
    got = speak(server, response_format="pcm", sample_rate=rate, encoding=encoding).content
    want = to_pcm16(resampled(expected, rate))
    if encoding == "pcm16":
        assert_pcm_close(np.frombuffer(got, "<i2"), want)
    else:
        codes = np.frombuffer(encode_g711(want, encoding), np.uint8)
        got_codes = np.frombuffer(got, np.uint8)
        assert got_codes.shape == codes.shape
        assert np.mean(got_codes == codes) > 0.99  # a 1-LSB difference may cross a companding step
        assert np.abs(decode_g711(got, encoding).astype(int) - decode_g711(codes, encoding)).mean() < 2


def test_float32_pcm_carries_the_engine_samples(server, expected):
    got = np.frombuffer(speak(server, response_format="pcm", encoding="float32").content, "<f4")
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("stream", [True, False])
def test_wav_and_flac_decode_to_the_same_samples(server, expected, stream):
    for fmt in ("wav", "flac"):
        r = speak(server, response_format=fmt, stream=stream)
        if fmt == "wav" and stream:
            assert r.content[4:8] == b"\xff\xff\xff\xff"  # streaming header: length unknown
        samples, rate = sf.read(io.BytesIO(r.content), dtype="int16")
        assert rate == 24000
        assert_pcm_close(samples, to_pcm16(expected))


def test_whole_file_has_its_figures_in_headers(server, expected):
    r = speak(server, response_format="wav", stream=False)
    assert int(r.headers["content-length"]) == len(r.content)
    assert float(r.headers["x-audio-seconds"]) == pytest.approx(expected.size / 24000)
    assert float(r.headers["x-generation-seconds"]) > 0 and float(r.headers["x-xrt"]) > 0
    assert 0 < float(r.headers["x-first-audio-seconds"]) <= float(r.headers["x-generation-seconds"])
    assert r.headers["x-voice-cache"] == "hit"  # the warm-up spoke with ryan


def aligned(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 2400) -> tuple[int, float]:
    """The codec delay (lag of `decoded` behind `reference`, in samples) and the waveform correlation there."""
    best = (0, -1.0)
    for lag in range(min(max_lag, decoded.size - reference.size + 1)):
        seg = decoded[lag : lag + reference.size]
        corr = float(seg @ reference / (np.linalg.norm(seg) * np.linalg.norm(reference) + 1e-12))
        if corr > best[1]:
            best = (lag, corr)
    return best


def band_energies_db(x: np.ndarray, frame: int = 480, bands: int = 16) -> np.ndarray:
    """Energy in log-spaced frequency bands per 20 ms frame, in dB: what a listener's ear weighs."""
    n = x.size // frame
    spec = np.abs(np.fft.rfft(x[: n * frame].reshape(n, frame) * np.hanning(frame), axis=1)) ** 2
    edges = np.unique(np.geomspace(4, spec.shape[1], bands + 1).astype(int))
    energies = [spec[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return 10 * np.log10(np.stack(energies, 1) + 1e-12)


# Measured here on the tiny model's (noise-like) greedy output: MP3 correlation 0.91 (whole) / 0.96 (streamed), band
# energies within 0.7 dB on average; Opus 0.65 and 1.6 dB. Other speech of this model: correlation up to 0.55 (0.28
# through Opus), band energies 2.4 dB or more apart: it passes neither bound.
LOSSY = {"mp3": (0.85, 1.0), "opus": (0.5, 2.0)}


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_compressed_formats_decode_to_the_speech(server, expected, fmt):
    """Decoded, an MP3 or Opus response is the PCM response up to the codec: after its delay, the waveforms
    correlate and the band energies agree (a lossy codec keeps neither samples nor exact lengths)."""
    if fmt not in server.formats:
        pytest.skip(f"this libsndfile does not write {fmt}")
    reference = expected.astype(np.float64)
    other = reference_audio(server.tts, "Something else entirely.", max_frames=FRAMES).astype(np.float64)
    min_corr, max_db = LOSSY[fmt]
    for stream in (True, False):
        decoded, rate = sf.read(io.BytesIO(speak(server, response_format=fmt, stream=stream).content))
        assert rate == 24000
        lag, corr = aligned(reference, decoded)
        # the whole file trims the encoder delay (its LAME header says how much); a stream cannot: 1105 samples
        assert lag <= 1152 + 576 and decoded.size - lag >= reference.size
        assert corr >= min_corr, (stream, corr)
        part = decoded[lag : lag + reference.size]
        ref_db = band_energies_db(reference)
        audible = ref_db > ref_db.max() - 50
        assert np.abs(band_energies_db(part) - ref_db)[audible].mean() <= max_db
        # the measures tell speech apart: other speech passes neither
        assert aligned(other, decoded)[1] < min_corr
        assert np.abs(band_energies_db(other) - ref_db)[audible].mean() > max_db


def test_speed_changes_the_duration(server, expected):
    got = np.frombuffer(speak(server, response_format="pcm", speed=2.0).content, "<i2")
    assert got.size == round(expected.size / 2.0)


def test_default_format_is_openais_where_available(server):
    r = speak(server)
    fmt = "mp3" if "mp3" in server.formats else "wav"
    assert r.headers["content-type"] == {"mp3": "audio/mpeg", "wav": "audio/wav"}[fmt]


def test_the_official_openai_client_streams_from_it(server, expected):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0)
    with client.audio.speech.with_streaming_response.create(
        model="qwen3-tts", voice="ryan", input=TEXT, response_format="pcm",
        extra_body={"max_frames": FRAMES, **GREEDY},
    ) as response:
        data = b"".join(response.iter_bytes())
    assert_pcm_close(np.frombuffer(data, "<i2"), to_pcm16(expected))
    with pytest.raises(openai.BadRequestError, match="unknown voice 'nobody'"):
        client.audio.speech.create(model="qwen3-tts", voice="nobody", input=TEXT)
