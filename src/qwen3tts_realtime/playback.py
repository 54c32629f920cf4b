"""Play synthesized audio on the default output device through `sounddevice` (the `play` extra).

Used by `qwen3tts-realtime speak --play`. A convenience for trying voices, not a streaming player: the whole clip
is handed to the device at once and the call blocks until it has been played. `sounddevice` is imported only here,
on first use, so the package does not need it otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidInputError

__all__ = ["play", "require_output_device"]

PIP_HINT = 'pip install "qwen3tts-realtime[play]"'
PORTAUDIO_HINT = (
    "install the PortAudio system library: `libportaudio2` on Debian/Ubuntu (sudo apt install libportaudio2), "
    "`portaudio` on macOS Homebrew (brew install portaudio)"
)


def require_output_device() -> Any:
    """The `sounddevice` module once it imports and the system has a default audio output device.

    Raises:
        InvalidInputError: `sounddevice` is not installed, PortAudio is missing, or there is no output device;
            the message says what to install or check.
    """
    try:
        import sounddevice as sd
    except ImportError as e:
        raise InvalidInputError(f"audio playback needs the sounddevice package: {PIP_HINT}") from e
    except OSError as e:  # sounddevice raises OSError("PortAudio library not found") at import
        raise InvalidInputError(f"audio playback cannot load PortAudio ({e}): {PORTAUDIO_HINT}") from e
    try:
        sd.query_devices(kind="output")
    except Exception as e:  # sd.PortAudioError (no default output device), or a device query that fails
        raise InvalidInputError(
            f"no audio output device ({type(e).__name__}: {e}); connect or enable one, or write a file with --out"
        ) from e
    return sd


def play(audio: np.ndarray, sample_rate: int) -> None:
    """Play `audio` (float samples in [-1, 1], mono or frames × channels) at `sample_rate` Hz and wait for the end.

    Blocks until the clip has been played; Ctrl-C stops playback. Does not resample: the device (or its driver)
    must accept `sample_rate` (24 kHz for Qwen3-TTS), which the usual default devices do.

    Raises:
        InvalidInputError: as `require_output_device`, or the output device refused the stream
            (e.g. the sample rate).
    """
    sd = require_output_device()
    port_audio_error = getattr(sd, "PortAudioError", OSError)
    try:
        sd.play(np.asarray(audio, dtype=np.float32), sample_rate)
        sd.wait()
    except KeyboardInterrupt:
        sd.stop()
        raise
    except port_audio_error as e:
        raise InvalidInputError(f"audio playback failed at {sample_rate} Hz on the default output device: {e}") from e
