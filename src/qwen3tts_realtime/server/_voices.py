"""Voices over HTTP: the resolver every request uses, and `/v1/voices` (list, get, clone by upload, remove,
stats) on the voice library.

    GET    /v1/voices            built-in speakers and library voices
    GET    /v1/voices/stats      library counters and the engine's warm voices (size, hits, misses, evictions)
    GET    /v1/voices/{name}     one voice: kind, speaker, instruct (what `RemoteEngine.resolve_voice` reads)
    POST   /v1/voices            multipart (name, file, ref_text, x_vector_only): clone, Base checkpoints;
                                 JSON {"name", "speaker"?, "instructions"?}: store a speaker (CustomVoice)
                                 or a designed voice (VoiceDesign)
    DELETE /v1/voices/{name}     forget a library voice

Voice aliases (`--voice-alias alloy=ryan`) let OpenAI clients keep their voice names: an alias resolves as
its voice. One of OpenAI's voice names that is neither mapped nor a voice here is refused with the mappings
and the voices there are, never silently replaced.

Warm voices: the engine keeps warm state (prompt prefixes, primed decoder state) in one LRU keyed by a voice's
content, so the resolver memoises nothing: an equal profile is as warm. Whether a request's voice was warm
(`X-Voice-Cache`, the voice-cache metric) is read from that LRU. Multipart
bodies are parsed by Starlette's own parser (python-multipart) once the size limit has read them. Library work
(disk, encoders) runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..errors import AudioInputError, InvalidInputError, UnsupportedError
from ..voices.profile import with_instruct
from ..voices.store import NAME_PATTERN
from ._limits import read_limited
from ._requests import ApiError, parse_json

if TYPE_CHECKING:
    from ..tts import Qwen3TTS
    from ..voices.library import VoiceLibrary
    from ..voices.profile import VoiceProfile
    from ._state import ServerState

__all__ = ["VoiceResolver", "router"]

log = logging.getLogger("qwen3tts_realtime.server")

DESIGN_VOICE = "design"  # VoiceDesign checkpoints: the voice `instructions` describe
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")

router = APIRouter()


class VoiceResolver:
    """Voice names (and instructions) to `VoiceProfile`s through the voice library; `aliases` maps request
    names onto voices first. Thread-safe; `resolve` may read the library's folder, so call it off the
    event loop."""

    def __init__(self, tts: Qwen3TTS, library: VoiceLibrary, aliases: dict[str, str] | None = None) -> None:
        self._tts, self._library = tts, library
        self._aliases = dict(aliases or {})

    def resolve(self, name: str, instructions: str | None = None) -> tuple[VoiceProfile, bool]:
        """The profile for a request, and whether the engine has it warm (its warm-voice LRU, by content).

        Raises:
            ApiError: 400 for an invalid or unknown name (an unmapped OpenAI voice name too), or instructions
                the voice cannot take.
        """
        tts = self._tts
        asked, name = name, self._aliases.get(name, name)
        if name == DESIGN_VOICE and tts.model_type == "voice_design":
            if not instructions:
                raise ApiError(400, "voice 'design' speaks the voice `instructions` describe; give "
                               "instructions", param="instructions")
            profile = tts.design_voice(instructions)
        else:
            if not NAME_PATTERN.fullmatch(name):
                raise ApiError(400, f"invalid voice name {name!r}: use 1-64 letters, digits, '.', '_' or "
                               "'-', starting with a letter or digit", param="voice", code="invalid_voice")
            try:
                base = self._library.resolve(name)
            except InvalidInputError as e:
                if asked in OPENAI_VOICES and asked == name:
                    raise self._unmapped(asked) from None
                raise ApiError(400, str(e), param="voice", code="unknown_voice") from None
            try:
                profile = with_instruct(base, instructions, model_size=tts.model_size, on_ignored=log.debug)
            except InvalidInputError as e:
                raise ApiError(400, str(e), param="instructions") from None
        return profile, tts.engine.is_warm(profile)

    def _unmapped(self, name: str) -> ApiError:
        mapped = ", ".join(f"{a}={v}" for a, v in self._aliases.items()) or "none"
        voices = [*self._tts.speakers, *(i.name for i in self._library.list())]
        return ApiError(400, f"unknown voice {name!r}: an OpenAI voice name this server does not map; mapped "
                        f"voices: {mapped}; voices here: {', '.join(voices) or 'none'}; map it with "
                        f"--voice-alias {name}=VOICE (or $QWEN3TTS_VOICE_ALIAS)", param="voice",
                        code="unknown_voice")


def _state(request: Request) -> ServerState:
    return request.app.state.server


def _describe(profile: VoiceProfile, name: str, source: str) -> dict[str, Any]:
    return {"name": name, "kind": profile.kind, "model_type": profile.model_type, "speaker": profile.speaker,
            "instruct": profile.instruct, "source": source}


@router.get("/v1/voices")
async def list_voices(request: Request) -> dict[str, Any]:
    state = _state(request)
    library = state.library

    def listing() -> list[dict[str, Any]]:
        model_id = library.model_id
        return [{"name": i.name, "kind": i.kind, "source": "library", "model": i.model,
                 "usable": i.model_id == model_id, "created": i.created} for i in library.list()]

    builtin = [{"name": s, "kind": "speaker", "source": "builtin", "model": state.config.model_id or
                state.config.model, "usable": True, "created": None} for s in state.tts.speakers]
    return {"voices": builtin + await asyncio.to_thread(listing)}


@router.get("/v1/voices/stats")
async def voice_stats(request: Request) -> dict[str, Any]:
    state = _state(request)
    stats = await asyncio.to_thread(state.library.stats)
    return {"library": dataclasses.asdict(stats), "cache_dir": str(state.library.cache_dir),
            "warm_voices": state.tts.engine.stats()["warm_voices"]}


@router.get("/v1/voices/{name}")
async def get_voice(name: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    _check_name(name)
    names = await asyncio.to_thread(_library_names, state)
    if name not in names:
        if name.lower() not in state.tts.speakers:
            raise _not_found(name, state)
        return _describe(await asyncio.to_thread(state.library.resolve, name), name, "builtin")
    try:
        profile = await asyncio.to_thread(state.library.get, name)
    except InvalidInputError as e:  # prepared for another checkpoint, or damaged
        raise ApiError(409, str(e), param="name", code="voice_unusable") from None
    return _describe(profile, name, "library")


@router.delete("/v1/voices/{name}")
async def delete_voice(name: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    _check_name(name)
    if name not in await asyncio.to_thread(_library_names, state):
        if name.lower() in state.tts.speakers:
            raise ApiError(400, f"{name!r} is a built-in speaker of the checkpoint; it cannot be removed",
                           param="name")
        raise _not_found(name, state)
    await asyncio.to_thread(state.library.remove, name)
    return {"deleted": name}


@router.post("/v1/voices", status_code=201)
async def add_voice(request: Request) -> dict[str, Any]:
    state = _state(request)
    ctype = request.headers.get("content-type", "")
    limit = state.config.max_upload_bytes
    body = await read_limited(request.headers, request.stream(), limit, "the upload is", "--max-upload-bytes")
    if ctype.startswith("multipart/form-data"):
        fields = await _parse_multipart(request, body)
        profile, name = await asyncio.to_thread(_clone, state, fields)
    elif ctype.startswith("application/json"):
        profile, name = await asyncio.to_thread(_add_from_json, state, parse_json(body))
    else:
        raise ApiError(415, f"Content-Type {ctype!r} is not accepted; send multipart/form-data (fields name, "
                       "file, ref_text, x_vector_only) to clone, or application/json to store a speaker or a "
                       "designed voice", code="unsupported_media_type")
    return _describe(profile, name, "library")


def _clone(state: ServerState, fields: dict[str, tuple[str | None, bytes]]) -> tuple[VoiceProfile, str]:
    if state.tts.model_type != "base":
        raise ApiError(400, "cloning from an upload needs a Base checkpoint; this one is "
                       f"{state.tts.model_type}: store its voices with a JSON body instead",
                       code="unsupported")
    accepted = ("name", "file", "ref_text", "x_vector_only")
    unknown = sorted(set(fields) - set(accepted))
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; accepted: {', '.join(accepted)}",
                       param=unknown[0])
    name = _form_text(fields, "name")
    _check_name(name)
    if "file" not in fields or not fields["file"][1]:
        raise ApiError(400, "no reference audio: send it as the form field 'file'", param="file")
    ref_text = _form_text(fields, "ref_text", required=False)
    limit = state.config.max_text_chars
    if ref_text is not None and len(ref_text) > limit:
        raise ApiError(400, f"ref_text has {len(ref_text)} characters; at most {limit} are accepted "
                       "(--max-text-chars): give the transcript of the reference clip only", param="ref_text",
                       code="text_too_long")
    flag = (_form_text(fields, "x_vector_only", required=False) or "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise ApiError(400, f"x_vector_only={flag!r}; accepted: true or false", param="x_vector_only")
    x_vector_only = flag in ("true", "1")
    if not x_vector_only and not ref_text:
        raise ApiError(400, "ref_text (the clip's transcript) is required for an in-context clone; or send "
                       "x_vector_only=true", param="ref_text")
    audio = _decode_upload(fields["file"][1], state.config.max_upload_s)
    try:
        profile = state.library.clone(name, audio, ref_text, x_vector_only=x_vector_only)
    except (InvalidInputError, UnsupportedError) as e:
        raise ApiError(400, str(e), param="file" if isinstance(e, AudioInputError) else None) from None
    return profile, name


def _add_from_json(state: ServerState, body: dict[str, Any]) -> tuple[VoiceProfile, str]:
    accepted = ("name", "speaker", "instructions")
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted: {', '.join(accepted)}",
                       param=unknown[0])
    name, speaker, instructions = body.get("name"), body.get("speaker"), body.get("instructions")
    _check_name(name)
    limit = state.config.max_text_chars
    if isinstance(instructions, str) and len(instructions) > limit:
        raise ApiError(400, f"instructions has {len(instructions)} characters; at most {limit} are accepted "
                       "(--max-text-chars)", param="instructions", code="text_too_long")
    tts = state.tts
    try:
        if tts.model_type == "custom_voice" and isinstance(speaker, str):
            return state.library.add(name, tts.speaker(speaker, instruct=instructions or None)), name
        if tts.model_type == "voice_design" and speaker is None and isinstance(instructions, str):
            return state.library.design(name, instructions), name
    except (InvalidInputError, UnsupportedError) as e:
        raise ApiError(400, str(e)) from None
    wanted = {"custom_voice": "'speaker' (and optional 'instructions')",
              "voice_design": "'instructions' (the voice described in words)",
              "base": "a multipart upload (clone)"}[tts.model_type]
    raise ApiError(400, f"this {tts.model_type} checkpoint stores voices from {wanted}", param="speaker")


def _decode_upload(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    try:
        info = sf.info(io.BytesIO(data))
        if info.duration > max_seconds:
            raise ApiError(413, f"the reference clip lasts {info.duration:.1f} s; at most {max_seconds:g} s "
                           "are accepted (--max-upload-seconds)", param="file", code="audio_too_long")
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        reason = getattr(e, "error_string", None) or str(e)  # libsndfile's own words, not the buffer's repr
        raise ApiError(400, f"the uploaded file is not audio libsndfile can read ({reason.rstrip('.')}); send WAV, "
                       "FLAC, OGG or MP3", param="file", code="invalid_audio") from None
    return samples.mean(axis=1, dtype=np.float32), int(rate)


async def _parse_multipart(request: Request, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name, bytes)} of a multipart/form-data body, parsed by Starlette's (FastAPI's) own
    parser; file parts arrive as `UploadFile`s, text parts as text (UTF-8, else Latin-1, as Starlette reads them)."""

    async def chunks():
        yield body

    parser = MultiPartParser(request.headers, chunks(), max_files=4, max_fields=16, max_part_size=len(body) + 1)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ApiError(400, f"malformed multipart/form-data body: {e.message}", code="malformed_multipart") from None
    try:
        fields: dict[str, tuple[str | None, bytes]] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                fields[name] = (value.filename, await value.read())
            else:
                fields[name] = (None, value.encode("utf-8"))
        return fields
    finally:
        await form.close()


def _form_text(fields: dict[str, tuple[str | None, bytes]], name: str, *,
               required: bool = True) -> str | None:
    if name not in fields:
        if required:
            raise ApiError(400, f"missing form field {name!r}", param=name)
        return None
    try:
        return fields[name][1].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, f"form field {name!r} is not UTF-8 text", param=name) from None


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ApiError(400, f"invalid voice name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit (e.g. 'agent-anna')", param="name",
                       code="invalid_voice")


def _library_names(state: ServerState) -> set[str]:
    return {info.name for info in state.library.list()}


def _not_found(name: str, state: ServerState) -> ApiError:
    speakers = ", ".join(state.tts.speakers) or "none"
    return ApiError(404, f"no voice named {name!r}: not in the voice library (GET /v1/voices) and not a "
                    f"built-in speaker ({speakers})", param="name", code="voice_not_found")

