"""The speaker encoder's mel front end: 24 kHz waveform → log-mel frames [B, frames, 128] (spec §5.1).

The official code builds its filterbank with `librosa.filters.mel` and its spectrogram with `torch.stft`.
librosa is not a dependency here: `slaney_mel_filterbank` is the closed form of librosa's default
filterbank (Slaney mel scale, `htk=False`, with Slaney area normalisation), evaluated in float64 in librosa's
own order of operations and rounded to float32 where librosa rounds, so it reproduces librosa's float32
matrix (bit for bit, checked against librosa 0.11).

Slaney mel scale: linear below 1 kHz (200/3 Hz per mel, so 1 kHz = 15 mel), logarithmic above (ln(6.4)/27
per mel, i.e. 6.4× per 27 mel). Band m is a triangle over FFT-bin centre frequencies rising from edge f[m] to
a peak at f[m+1] and falling to f[m+2], where f holds `n_mels + 2` edges equally spaced in mel between fmin
and fmax; area normalisation multiplies triangle m by 2 / (f[m+2] − f[m]), so every band has unit area in Hz.

What this module does not do: resample (the input must already be 24 kHz), trim or normalise audio.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

__all__ = [
    "slaney_hz_to_mel",
    "slaney_mel_to_hz",
    "slaney_mel_filterbank",
    "speaker_mel",
    "SPEAKER_MEL_SAMPLE_RATE",
    "SPEAKER_MEL_HOP",
]

# Front-end constants of the official `extract_speaker_embedding` (MOD 1940-1954).
SPEAKER_MEL_SAMPLE_RATE = 24000
SPEAKER_MEL_N_FFT = 1024
SPEAKER_MEL_HOP = 256
SPEAKER_MEL_BINS = 128
SPEAKER_MEL_FMAX = 12000.0
_MAGNITUDE_EPS = 1e-9  # inside the sqrt of the magnitude
_LOG_FLOOR = 1e-5  # mel energies are clamped to this before the log

# Slaney mel scale (librosa `htk=False`).
_LINEAR_HZ_PER_MEL = 200.0 / 3
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _LINEAR_HZ_PER_MEL  # 15.0
_LOG_STEP = math.log(6.4) / 27.0


def slaney_hz_to_mel(hz: Tensor) -> Tensor:
    """Frequencies in Hz → Slaney mels (float64 in, float64 out; librosa `hz_to_mel(htk=False)`)."""
    mel = hz / _LINEAR_HZ_PER_MEL
    log_part = _LOG_START_MEL + torch.log(hz / _LOG_START_HZ) / _LOG_STEP
    return torch.where(hz >= _LOG_START_HZ, log_part, mel)


def slaney_mel_to_hz(mel: Tensor) -> Tensor:
    """Slaney mels → frequencies in Hz (inverse of `slaney_hz_to_mel`; librosa `mel_to_hz(htk=False)`)."""
    hz = _LINEAR_HZ_PER_MEL * mel
    log_part = _LOG_START_HZ * torch.exp(_LOG_STEP * (mel - _LOG_START_MEL))
    return torch.where(mel >= _LOG_START_MEL, log_part, hz)


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> Tensor:
    """The Slaney-normalised triangular mel filterbank of `librosa.filters.mel` (its defaults), float32.

    Args:
        sample_rate: audio sample rate in Hz.
        n_fft: FFT size; the filterbank covers its `n_fft // 2 + 1` one-sided bins.
        n_mels: number of mel bands.
        fmin: lowest band edge in Hz.
        fmax: highest band edge in Hz; `None` → `sample_rate / 2`.

    Returns:
        `[n_mels, n_fft // 2 + 1]` float32 weights on the CPU; `weights @ magnitude_spectrum` gives mel
        energies.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    f64 = torch.float64
    # librosa's `np.fft.rfftfreq(n_fft, 1 / sr)`: bin index times 1 / (n_fft · (1 / sr)).
    fft_hz = torch.arange(n_fft // 2 + 1, dtype=f64) * (1.0 / (n_fft * (1.0 / sample_rate)))
    mel_lo, mel_hi = slaney_hz_to_mel(torch.tensor([float(fmin), float(fmax)], dtype=f64)).tolist()
    # numpy's linspace (start + index · step, last point exactly the stop), as librosa uses it.
    mel_points = torch.arange(n_mels + 2, dtype=f64) * ((mel_hi - mel_lo) / (n_mels + 1)) + mel_lo
    mel_points[-1] = mel_hi
    edges_hz = slaney_mel_to_hz(mel_points)  # [n_mels + 2]
    widths_hz = edges_hz[1:] - edges_hz[:-1]  # [n_mels + 1]
    ramps = edges_hz[:, None] - fft_hz[None, :]  # [n_mels + 2, n_bins]
    rising = -ramps[:-2] / widths_hz[:-1, None]
    falling = ramps[2:] / widths_hz[1:, None]
    triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])  # [n_mels]
    # librosa stores the triangles in a float32 array, then scales that array in place (float64 product,
    # rounded back to float32): round twice, as it does.
    return (triangles.to(torch.float32).to(f64) * area_norm[:, None]).to(torch.float32)


@lru_cache(maxsize=1)
def _speaker_filterbank() -> Tensor:
    """The front end's filterbank, built once and shared (only ever read). Built outside inference mode, so a
    first call made under `torch.inference_mode()` does not leave an inference tensor in the cache."""
    with torch.inference_mode(False):
        return slaney_mel_filterbank(
            SPEAKER_MEL_SAMPLE_RATE, SPEAKER_MEL_N_FFT, SPEAKER_MEL_BINS, 0.0, SPEAKER_MEL_FMAX
        )


def speaker_mel(wav_24k: Tensor) -> Tensor:
    """Log-mel frames for the speaker encoder, as the official `mel_spectrogram` computes them.

    Reflect-pad 384 samples per side, STFT (n_fft 1024, hop 256, periodic Hann window, no centring),
    magnitude sqrt(re² + im² + 1e-9), 128 Slaney mel bands over 0–12 kHz, natural log of max(mel, 1e-5).
    The computation runs in the input's dtype (the official one runs in float32 and casts the result to the
    model dtype afterwards).

    Args:
        wav_24k: `[B, T]` float mono waveform at 24 kHz, with T > 384 (the reflect padding needs it).

    Returns:
        `[B, T // 256, 128]` log-mel frames, same dtype and device as the input.
    """
    pad = (SPEAKER_MEL_N_FFT - SPEAKER_MEL_HOP) // 2
    filterbank = _speaker_filterbank().to(device=wav_24k.device, dtype=wav_24k.dtype)
    window = torch.hann_window(SPEAKER_MEL_N_FFT, device=wav_24k.device, dtype=wav_24k.dtype)
    padded = torch.nn.functional.pad(wav_24k.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        padded,
        SPEAKER_MEL_N_FFT,
        hop_length=SPEAKER_MEL_HOP,
        win_length=SPEAKER_MEL_N_FFT,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # [B, 513, frames]
    magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + _MAGNITUDE_EPS)
    mel = torch.matmul(filterbank, magnitude)  # [B, 128, frames]
    return torch.log(torch.clamp(mel, min=_LOG_FLOOR)).transpose(1, 2)
