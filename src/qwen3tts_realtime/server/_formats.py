"""Response formats: which ones the installed libsndfile writes, and encoders turning float audio into bytes.

    pcm    raw samples in `encoding` (pcm16 little-endian, float32 little-endian, G.711 u-law or A-law)
    wav    a RIFF header then the same samples; streamed with data and RIFF sizes 0xFFFFFFFF (unknown length)
    flac   16-bit FLAC (libsndfile); streamed it is sent whole at the end: FLAC states its length in a header
           written last, and a FLAC without it is not readable by libsndfile
    mp3    MP3 (libsndfile/LAME); streamed it is encoded as it comes, at a constant bit rate so decoders can
           judge its length without the info frame LAME writes last (that frame is left out of the stream)
    opus   Ogg/Opus (libsndfile), encoded as it comes; Ogg pages leave the encoder about once a second

Every PCM conversion goes through `audio.to_pcm16`, so all formats carry the same 16-bit samples.
Does not: resample or change speed (`_render.py`), or know HTTP.
"""

from __future__ import annotations

import abc
import io
import logging
import struct

import numpy as np
import soundfile as sf

from ..audio import encode_g711, to_pcm16

__all__ = [
    "ENCODINGS", "FORMATS", "SAMPLE_RATES", "Encoder", "available_formats", "content_type", "make_encoder",
]

log = logging.getLogger("qwen3tts_realtime.server")

FORMATS: tuple[str, ...] = ("pcm", "wav", "flac", "mp3", "opus")
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 24000, 48000)
ENCODINGS: tuple[str, ...] = ("pcm16", "ulaw", "alaw", "float32")
RAW_ENCODINGS = {"pcm": ENCODINGS, "wav": ENCODINGS, **{f: ("pcm16",) for f in ("flac", "mp3", "opus")}}
_SOUNDFILE = {"flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}
_STREAMED_INCREMENTALLY = ("mp3", "opus")
_MP3_STREAM_OPTIONS = {"bitrate_mode": "CONSTANT", "compression_level": 0.5}  # CBR, about 64-128 kbit/s
_WAV_FORMAT = {"pcm16": (1, 16), "float32": (3, 32), "alaw": (6, 8), "ulaw": (7, 8)}  # WAVE format tag, bits
_UNKNOWN_SIZE = 0xFFFFFFFF


def available_formats() -> tuple[str, ...]:
    """The formats this process can write: pcm and wav always, flac/mp3/opus where libsndfile writes them
    (checked by encoding a few samples at every sample rate: some builds list formats they cannot write)."""
    out = ["pcm", "wav"]
    formats = sf.available_formats()
    for name, (fmt, subtype) in _SOUNDFILE.items():
        if fmt not in formats or subtype not in sf.available_subtypes(fmt):
            continue
        try:
            for rate in SAMPLE_RATES:
                buf = io.BytesIO()
                sf.write(buf, np.zeros(rate // 10, dtype=np.int16), rate, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            log.info("libsndfile lists %s but cannot write it (%s): %s responses are off", fmt, e, name)
            continue
        out.append(name)
    return tuple(out)


def content_type(response_format: str, encoding: str, sample_rate: int) -> str:
    """The Content-Type of a response."""
    if response_format == "pcm":
        if encoding in ("ulaw", "alaw"):
            return f"audio/{'PCMU' if encoding == 'ulaw' else 'PCMA'}; rate={sample_rate}"
        return f"audio/pcm; rate={sample_rate}; encoding={encoding}"  # little-endian, as OpenAI's pcm
    return {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg; codecs=opus"}[
        response_format
    ]


class Encoder(abc.ABC):
    """Float32 mono audio at the output rate in, bytes out. `encode` as audio comes, `finish` once."""

    @abc.abstractmethod
    def encode(self, audio: np.ndarray) -> bytes: ...

    @abc.abstractmethod
    def finish(self) -> bytes: ...


def make_encoder(response_format: str, encoding: str, sample_rate: int, *, streamed: bool) -> Encoder:
    """The encoder of one response. `streamed`: bytes should leave as early as the format allows."""
    if response_format == "pcm":
        return _RawEncoder(encoding)
    if response_format == "wav":
        return _WavEncoder(encoding, sample_rate, streamed=streamed)
    incremental = streamed and response_format in _STREAMED_INCREMENTALLY
    return _SoundfileEncoder(response_format, sample_rate, incremental=incremental)


def _raw(audio: np.ndarray, encoding: str) -> bytes:
    if encoding == "float32":
        return audio.astype("<f4", copy=False).tobytes()
    pcm = to_pcm16(audio)
    if encoding == "pcm16":
        return pcm.astype("<i2", copy=False).tobytes()
    return encode_g711(pcm, encoding)


class _RawEncoder(Encoder):
    def __init__(self, encoding: str) -> None:
        self._encoding = encoding

    def encode(self, audio: np.ndarray) -> bytes:
        return _raw(audio, self._encoding)

    def finish(self) -> bytes:
        return b""


class _WavEncoder(Encoder):
    """RIFF/WAVE: streamed, the header goes first with unknown sizes; whole, it carries the real ones."""

    def __init__(self, encoding: str, sample_rate: int, *, streamed: bool) -> None:
        self._encoding, self._rate, self._streamed = encoding, sample_rate, streamed
        self._header_sent = False
        self._data = bytearray()

    def encode(self, audio: np.ndarray) -> bytes:
        data = _raw(audio, self._encoding)
        if not self._streamed:
            self._data += data
            return b""
        if not self._header_sent:
            self._header_sent = True
            return self._header(None) + data
        return data

    def finish(self) -> bytes:
        if self._streamed:
            return b"" if self._header_sent else self._header(None)
        return self._header(len(self._data)) + bytes(self._data)

    def _header(self, data_bytes: int | None) -> bytes:
        tag, bits = _WAV_FORMAT[self._encoding]
        block = bits // 8
        fmt = struct.pack("<HHIIHH", tag, 1, self._rate, self._rate * block, block, bits)
        if tag != 1:
            fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry the extension size
        data_size = _UNKNOWN_SIZE if data_bytes is None else data_bytes
        riff_size = _UNKNOWN_SIZE if data_bytes is None else 4 + 8 + len(fmt) + 8 + data_bytes
        return (
            b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", data_size)
        )


class _SoundfileEncoder(Encoder):
    """flac/mp3/opus through libsndfile. Incremental: into a `_Sink`, whose new bytes leave after every write;
    otherwise into memory, the whole file leaving at `finish`."""

    def __init__(self, response_format: str, sample_rate: int, *, incremental: bool) -> None:
        fmt, subtype = _SOUNDFILE[response_format]
        options = _MP3_STREAM_OPTIONS if incremental and response_format == "mp3" else {}
        self._sink = _Sink(skip_lame_tag=response_format == "mp3") if incremental else None
        self._memory = io.BytesIO()
        self._file = sf.SoundFile(self._sink or self._memory, "w", samplerate=sample_rate, channels=1,
                                  format=fmt, subtype=subtype, **options)

    def encode(self, audio: np.ndarray) -> bytes:
        if audio.size:
            self._file.write(to_pcm16(audio))
        return self._sink.drain() if self._sink is not None else b""

    def finish(self) -> bytes:
        self._file.close()
        return self._sink.drain() if self._sink is not None else self._memory.getvalue()


class _Sink:
    """A write-only file for libsndfile that hands out what was written. Bytes already handed out cannot
    change: a later write into them (a header fixed up at close) is dropped; formats that need one are not
    sent incrementally, except MP3, whose LAME info frame (a placeholder of zeros until close) is skipped."""

    def __init__(self, *, skip_lame_tag: bool = False) -> None:
        self._skip_lame_tag = skip_lame_tag
        self._buf = bytearray()
        self._base = 0  # file offset of _buf[0]; everything before it has been handed out
        self._pos = 0

    def write(self, data: bytes) -> int:
        data = bytes(data)
        offset = self._pos - self._base
        if offset < 0:
            log.debug("dropped a %d-byte rewrite at offset %d of a streamed file", len(data), self._pos)
        else:
            if offset > len(self._buf):
                self._buf.extend(bytes(offset - len(self._buf)))
            self._buf[offset : offset + len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._base + len(self._buf) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        return b""  # write-only: libsndfile does not read back what it encodes

    def drain(self) -> bytes:
        """The bytes written since the last drain, up to the write position (they can no longer change)."""
        end = max(0, min(len(self._buf), self._pos - self._base))
        out = bytes(self._buf[:end])
        del self._buf[:end]
        if self._base == 0 and self._skip_lame_tag and out:
            out = out[_placeholder_frame_bytes(out):]
        self._base += end
        return out


_MP3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 Layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5 Layer III
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _placeholder_frame_bytes(data: bytes) -> int:
    """Length of a leading MP3 frame that is all zeros after its header (LAME's info-frame placeholder),
    else 0."""
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0 or ((data[1] >> 1) & 3) != 1:
        return 0
    version = (data[1] >> 3) & 3
    bitrate_index, rate_index, padding = data[2] >> 4, (data[2] >> 2) & 3, (data[2] >> 1) & 1
    if version not in _MP3_RATES or rate_index == 3 or not 0 < bitrate_index < 15:
        return 0
    kbps = _MP3_KBPS[1 if version == 3 else 2][bitrate_index]
    length = (144 if version == 3 else 72) * kbps * 1000 // _MP3_RATES[version][rate_index] + padding
    if len(data) < length or any(data[4:length]):
        return 0
    return length
