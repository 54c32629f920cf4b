"""Request validation shared by `POST /v1/audio/speech` and the websocket's `start` message, and `ApiError`.

Every bad field becomes an `ApiError` (a 4xx) whose message names the field, the value and the accepted
values; nothing here raises anything else. Unknown fields are refused too, so a misspelt option never goes
silently unused. JSON the standard parser would choke on, or that no later step can handle, is refused while
parsing, naming the field: a lone surrogate in a string (it cannot be encoded as UTF-8), an integer of more
than 4300 digits (Python refuses to convert it), nesting deeper than the parser's recursion allows. Those
refusals are `fatal`: a client sending them is broken, so the websocket ends its connection after them.
Does not: resolve voices (`_voices.py`) or touch the engine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..audio import G711_ENCODINGS
from ..engine.sampling import SamplingParams, check_sampling_value
from ..errors import InvalidInputError
from ..text.languages import language_name
from ._formats import ENCODINGS, RAW_ENCODINGS, SAMPLE_RATES

__all__ = [
    "ApiError", "SpeechRequest", "RequestRules", "OPENAI_MODELS", "parse_json", "parse_speech", "parse_stream_start",
]

MIN_SPEED, MAX_SPEED = 0.5, 2.0
MAX_INT_DIGITS = 4300  # Python's own limit on int(str) (sys.get_int_max_str_digits' default)
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # accepted as `model`: the loaded model answers
MAX_CHUNK_SCHEDULE = 16
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_SAMPLING = (  # checked as SamplingParams checks them (engine/sampling.py), do_sample as JSON booleans
    "do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "subtalker_dosample",
    "subtalker_temperature", "subtalker_top_k", "subtalker_top_p", "min_new_frames",
)
_COMMON = (
    "voice", "instructions", "language", "sample_rate", "encoding", "speed", "seed", "max_frames",
    "chunk_frames", "non_streaming_layout", *_SAMPLING,
)
SPEECH_FIELDS = ("model", "input", "response_format", "stream", "stream_format", *_COMMON)
START_FIELDS = ("type", "text", *_COMMON)


class ApiError(Exception):
    """A request the server refuses: HTTP status, message, and the field at fault (OpenAI's error shape)."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None, fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.code = code or "invalid_request"
        self.headers = headers or {}
        self.fatal = fatal  # malformed beyond a refusal: the websocket closes after it

    def body(self) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}

    def event(self) -> dict[str, Any]:
        """The websocket's form: {"type": "error", "status", "message", "param", "code"}."""
        return {"type": "error", "status": self.status, "message": self.message, "param": self.param,
                "code": self.code}


@dataclass(frozen=True)
class RequestRules:
    """What the loaded model and the server's settings accept."""

    model_names: tuple[str, ...]
    languages: tuple[str, ...]
    formats: tuple[str, ...]
    default_format: str
    max_text_chars: int
    max_frames: int


@dataclass(frozen=True)
class SpeechRequest:
    """A validated request. `text` is None for an incremental websocket stream (text comes in messages)."""

    text: str | None
    voice: str
    instructions: str | None
    language: str
    response_format: str
    sample_rate: int
    encoding: str
    speed: float
    sampling: SamplingParams
    seed: int | None
    stream: bool
    max_frames: int | None
    chunk_frames: tuple[int, ...] | None
    non_streaming_layout: bool | None

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `Qwen3TTS.open_stream` (the voice aside)."""
        kwargs: dict[str, Any] = {
            "language": self.language, "sampling": self.sampling, "seed": self.seed, "text": self.text,
            "max_new_frames": self.max_frames, "non_streaming_layout": self.non_streaming_layout,
        }
        if self.chunk_frames is not None:
            kwargs["chunk_frames"] = self.chunk_frames
        return kwargs


def parse_json(raw: bytes | str) -> dict[str, Any]:
    """A JSON object, or a 400 saying why not (naming the field for a lone surrogate or a huge integer)."""
    try:
        value = json.loads(raw, parse_int=_parse_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"malformed JSON: {e}", code="malformed_json") from None
    except RecursionError:
        raise ApiError(400, "the JSON is nested too deeply for the parser; requests nest at most 2 levels "
                       "(e.g. {\"chunk_frames\": [1, 2]})", code="json_too_deep", fatal=True) from None
    if not isinstance(value, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(value).__name__}",
                       code="malformed_json")
    _check_values(value)
    return value


class _HugeInt:
    """An integer literal too long for `int()`: kept as its length, so the field holding it can be named."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _HugeInt:
    digits = len(text.lstrip("-"))
    return _HugeInt(digits) if digits > MAX_INT_DIGITS else int(text)


def _check_values(body: dict[str, Any]) -> None:
    """Refuse any string (key or value) with a lone surrogate and any integer past `MAX_INT_DIGITS`, naming
    the field. Iterative: the parser has already bounded the depth, this walk adds no recursion."""
    stack: list[tuple[object, str, str]] = [(body, "", "")]
    while stack:
        value, path, field = stack.pop()
        if isinstance(value, str) and not _is_utf8(value):
            raise _not_unicode(path or "the body", field, value)
        if isinstance(value, _HugeInt):
            raise ApiError(400, f"{path} is an integer of {value.digits} digits; numbers are accepted with at "
                           f"most {MAX_INT_DIGITS} digits", param=field, code="number_too_long", fatal=True)
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else key
                if not _is_utf8(key):
                    raise _not_unicode(f"a field name in {path or 'the body'}", field or key, key)
                stack.append((item, child, field or key))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", field) for i, item in enumerate(value))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_unicode(where: str, field: str, text: str) -> ApiError:
    bad = next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)
    return ApiError(400, f"{ascii(where)[1:-1]} holds a lone surrogate (\\u{ord(text[bad]):04x} at character "
                    f"{bad}), which is not Unicode text; send valid UTF-8 (a surrogate pair escapes one "
                    "character beyond U+FFFF)", param=ascii(field)[1:-1], code="invalid_unicode", fatal=True)


def parse_speech(body: dict[str, Any], rules: RequestRules) -> SpeechRequest:
    """`POST /v1/audio/speech`: an OpenAI-compatible body plus this server's extensions."""
    _refuse_unknown(body, SPEECH_FIELDS)
    model = body.get("model")
    if model is not None and model not in rules.model_names and model not in OPENAI_MODELS:
        raise ApiError(400, f"unknown model {model!r}; this server has: {_names(rules.model_names)} (and "
                       f"answers OpenAI's {_names(OPENAI_MODELS)} with it)", param="model",
                       code="model_not_found")
    if body.get("stream_format", "audio") != "audio":
        raise ApiError(400, f"stream_format={body['stream_format']!r} is not supported; accepted: 'audio'",
                       param="stream_format")
    text = _text(body.get("input"), "input", rules.max_text_chars)
    fmt = body.get("response_format", rules.default_format)
    if fmt not in rules.formats:
        raise ApiError(400, f"response_format={fmt!r} is not available; accepted: {_names(rules.formats)}",
                       param="response_format")
    return _common(body, rules, text=text, response_format=fmt, stream=_bool(body, "stream", True))


def parse_stream_start(message: dict[str, Any], rules: RequestRules) -> SpeechRequest:
    """The websocket's `start` message: the same options; audio is raw samples in `encoding`. With `text`,
    that whole text is spoken; without, text comes in `text` messages until `end`."""
    _refuse_unknown(message, START_FIELDS)
    text = None if message.get("text") is None else _text(message["text"], "text", rules.max_text_chars)
    return _common(message, rules, text=text, response_format="pcm", stream=True)


def _common(body: dict[str, Any], rules: RequestRules, *, text: str | None, response_format: str,
            stream: bool) -> SpeechRequest:
    voice = body.get("voice")
    if isinstance(voice, dict) and set(voice) == {"id"}:
        voice = voice["id"]  # OpenAI's custom-voice form {"id": "..."}
    if not isinstance(voice, str) or not voice:
        raise ApiError(400, f"voice={voice!r}; give a voice name (a built-in speaker or a voice-library "
                       "name, see GET /v1/voices)", param="voice")
    instructions = body.get("instructions")
    if instructions is not None:
        instructions = _text(instructions, "instructions", rules.max_text_chars) if instructions else None
    language = body.get("language", "Auto")
    try:
        language = language_name(language)  # names in any case, ISO 639 codes, BCP-47 tags: the one rule
    except InvalidInputError as e:
        raise ApiError(400, str(e), param="language") from None
    if language.lower() not in rules.languages:
        raise ApiError(400, f"language={language!r}: this checkpoint speaks (any case) {_names(rules.languages)}",
                       param="language")
    rate = body.get("sample_rate", 24000)
    if isinstance(rate, bool) or rate not in SAMPLE_RATES:
        raise ApiError(400, f"sample_rate={rate!r} is not supported; accepted: {_names(SAMPLE_RATES)}",
                       param="sample_rate")
    encoding = _encoding(body.get("encoding", "pcm16"), response_format)
    speed = body.get("speed", 1.0)
    if not _is_number(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ApiError(400, f"speed={speed!r} is out of range; accepted: {MIN_SPEED} to {MAX_SPEED}",
                       param="speed")
    max_frames = body.get("max_frames")
    if max_frames is not None and not (_is_int(max_frames) and 1 <= max_frames <= rules.max_frames):
        raise ApiError(400, f"max_frames={max_frames!r}; accepted: an int from 1 to {rules.max_frames} "
                       "(80 ms codec frames), or null for the default", param="max_frames")
    seed = body.get("seed")
    if seed is not None and not (_is_int(seed) and 0 <= seed < 2**63):
        raise ApiError(400, f"seed={seed!r}; accepted: an int from 0 to 2**63-1, or null", param="seed")
    return SpeechRequest(
        text=text, voice=voice, instructions=instructions, language=language, response_format=response_format,
        sample_rate=int(rate), encoding=encoding, speed=float(speed), sampling=_sampling(body), seed=seed,
        stream=stream, max_frames=max_frames, chunk_frames=_chunk_frames(body.get("chunk_frames")),
        non_streaming_layout=_bool(body, "non_streaming_layout", None),
    )


def _refuse_unknown(body: dict[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted fields: {_names(accepted)}",
                       param=unknown[0], code="unknown_field")


def _text(value: object, name: str, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name}={value!r}; give a non-empty string", param=name)
    if len(value) > max_chars:
        raise ApiError(400, f"{name} has {len(value)} characters; at most {max_chars} are accepted "
                       "(split longer text into several requests)", param=name, code="text_too_long")
    return value


def _encoding(value: object, response_format: str) -> str:
    name = value.lower() if isinstance(value, str) else value
    name = G711_ENCODINGS.get(name, name) if isinstance(name, str) else name
    allowed = RAW_ENCODINGS[response_format]
    if name not in ENCODINGS:
        raise ApiError(400, f"encoding={value!r} is not supported; accepted: {_names(ENCODINGS)}",
                       param="encoding")
    if name not in allowed:
        raise ApiError(400, f"encoding={value!r} is not available with response_format={response_format!r}; "
                       f"accepted there: {_names(allowed)}", param="encoding")
    return name


def _sampling(body: dict[str, Any]) -> SamplingParams:
    values: dict[str, Any] = {}
    for name in _SAMPLING:
        value = body.get(name)
        if value is None:
            continue
        if name in ("do_sample", "subtalker_dosample"):
            accepted = None if isinstance(value, bool) else "true or false"
        else:
            accepted = check_sampling_value(name, value)
        if accepted is not None:
            raise ApiError(400, f"{name}={value!r}; accepted: {accepted}", param=name)
        values[name] = value
    if "do_sample" in values and "subtalker_dosample" not in values:
        values["subtalker_dosample"] = values["do_sample"]  # do_sample=false: fully greedy
    return SamplingParams(**values)


def _chunk_frames(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list) or not 0 < len(value) <= MAX_CHUNK_SCHEDULE
        or not all(_is_int(n) and 1 <= n <= 64 for n in value)
    ):
        raise ApiError(400, f"chunk_frames={value!r}; accepted: a list of 1 to {MAX_CHUNK_SCHEDULE} ints "
                       "from 1 to 64, frames per chunk with the last repeating, e.g. [1, 2, 4, 8]",
                       param="chunk_frames")
    return tuple(value)


def _bool(body: dict[str, Any], name: str, default: bool | None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"{name}={value!r}; accepted: true or false", param=name)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _names(values: tuple[object, ...]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
