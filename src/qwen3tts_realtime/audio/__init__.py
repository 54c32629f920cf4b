"""Audio plumbing between the TTS model and a transport: pure numpy + soxr, no torch.

Does:
    StreamResampler      stateful streaming resampling (soxr HQ) between 8000/16000/22050/24000/44100/48000 Hz
    to_pcm16             float -> int16 (clip, x32767, round half to even, NaN -> 0)
    encode_g711 / decode_g711   mu-law / A-law, bit-exact with the old stdlib audioop
    JitterBuffer         adaptive playout buffer: start decision and real-time frame pacing, with stats
    simulate_playout     deterministic replay of production traces (steady/slow/bursty/stall) through it
    RateChanger          streaming speaking rate 0.5x-2.0x with the pitch kept (WSOLA)
Does not: load models, import torch, do I/O or sleep; every time is passed in by the caller.

Bad arguments raise `qwen3tts_realtime.errors.InvalidInputError`, a `ValueError`.
"""

from __future__ import annotations

from qwen3tts_realtime.audio._g711 import G711_ENCODINGS, decode_g711, encode_g711
from qwen3tts_realtime.audio._jitter import JitterBuffer, JitterStats, PlayoutMode
from qwen3tts_realtime.audio._pcm import PCM16_SCALE, to_pcm16
from qwen3tts_realtime.audio._rate import MAX_RATE, MIN_RATE, RateChanger
from qwen3tts_realtime.audio._resample import SUPPORTED_SAMPLE_RATES, StreamResampler
from qwen3tts_realtime.audio._simulate import (
    PlayoutResult,
    Trace,
    bursty_trace,
    simulate_playout,
    slow_trace,
    stall_trace,
    steady_trace,
)

__all__ = [
    "G711_ENCODINGS",
    "MAX_RATE",
    "MIN_RATE",
    "PCM16_SCALE",
    "SUPPORTED_SAMPLE_RATES",
    "JitterBuffer",
    "JitterStats",
    "PlayoutMode",
    "PlayoutResult",
    "RateChanger",
    "StreamResampler",
    "Trace",
    "bursty_trace",
    "decode_g711",
    "encode_g711",
    "simulate_playout",
    "slow_trace",
    "stall_trace",
    "steady_trace",
    "to_pcm16",
]
