"""`ServerConfig`: every setting of the speech server, from flags, environment variables or code.

Each setting has a flag of `qwen3tts-realtime serve` and an environment variable (the flag wins); the API key
is only ever read from the environment (a variable named by `--api-key-env`), so it never shows in a process
list or a shell history. Nothing here imports FastAPI: the CLI builds its parser from this module alone.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import InvalidInputError

__all__ = [
    "ServerConfig", "add_serve_arguments", "config_from_args", "parse_voice_aliases", "SETTINGS", "DEFAULT_MODEL",
]

DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
API_KEY_ENV = "QWEN3TTS_API_KEY"
METRICS_PUBLIC_ENV = "QWEN3TTS_METRICS_PUBLIC"
NO_UI_ENV = "QWEN3TTS_NO_UI"
VOICE_ALIAS_ENV = "QWEN3TTS_VOICE_ALIAS"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server.

    Attributes:
        model: Hugging Face id or local folder `serve()` loads (`create_app` takes a loaded model instead).
        model_id: the name clients may pass as `model` besides "qwen3-tts" (default: `model`, or the folder).
        device, dtype, quantize: as `Qwen3TTS.from_pretrained` takes them (None: its defaults).
        host, port: where to listen; 127.0.0.1 unless told otherwise.
        api_key: when set, every /v1 request needs `Authorization: Bearer <key>` (a websocket may offer it as
            the subprotocol `bearer.<key>` instead), and so does /metrics unless `metrics_public`.
        metrics_public: serve /metrics without the API key (for a scraper that cannot send one).
        ui: serve the playground page at `/` (a static page using the public routes; its calls need the key).
        voice_dir: the voice library: a folder, or a Redis URL shared by replicas ("redis://host:6379/0"); None:
            $QWEN3TTS_VOICE_DIR or the user cache.
        max_streams: streams generating at once (the engine's batch).
        max_queue: admitted streams waiting beyond `max_streams`; further requests get 429.
        max_body_bytes: largest JSON body, and largest websocket message.
        max_text_chars: longest `input` (and longest text of one websocket stream).
        max_upload_bytes: largest voice upload (multipart body).
        max_upload_s: longest reference clip accepted for cloning, in seconds.
        warmup_text: spoken once at start-up (then /ready turns true); "" skips the warm-up.
        default_response_format: None: "mp3" where the installed libsndfile writes MP3, else "wav".
        ws_idle_timeout_s: a websocket stream waiting for text that gets no `text` message for this long is
            ended (done status "idle_timeout") and its slot freed; 0 never ends one.
        ws_max_messages_per_s: messages one websocket connection may send per second, on average (bursts of up
            to a second's worth pass at once); beyond it the server reads that connection's messages more
            slowly (TCP backpressure, nothing is dropped), so no client can flood the event loop and the engine
            at the cost of others. 0: no bound.
        voice_aliases: (alias, voice) pairs, e.g. (("alloy", "ryan"),): a request's voice `alias` speaks as
            `voice` (OpenAI's voice names onto this server's voices); a mapping is accepted too.
    """

    model: str = DEFAULT_MODEL
    model_id: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)
    voice_dir: str | None = None
    max_streams: int = 16
    max_queue: int = 64
    max_body_bytes: int = 1 << 20
    max_text_chars: int = 4096
    max_upload_bytes: int = 32 << 20
    max_upload_s: float = 60.0
    warmup_text: str = "Hello."
    default_response_format: str | None = None
    metrics_public: bool = False
    ui: bool = True
    ws_idle_timeout_s: float = 30.0
    ws_max_messages_per_s: float = 200.0
    voice_aliases: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_body_bytes", "max_text_chars", "max_upload_bytes", "port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "port" else 1):
                raise InvalidInputError(f"server setting {name}={value!r}; it must be a positive int")
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise InvalidInputError(f"server setting max_queue={self.max_queue!r}; it must be an int >= 0")
        if not self.max_upload_s > 0:
            raise InvalidInputError(f"server setting max_upload_s={self.max_upload_s!r}; it must be > 0")
        timeout = self.ws_idle_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < math.inf:
            raise InvalidInputError(f"server setting ws_idle_timeout_s={timeout!r}; it must be a number of "
                                    "seconds >= 0 (0: never)")
        rate = self.ws_max_messages_per_s
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < math.inf:
            raise InvalidInputError(f"server setting ws_max_messages_per_s={rate!r}; it must be a number >= 0 "
                                    "(0: no bound)")
        pairs = self.voice_aliases.items() if isinstance(self.voice_aliases, Mapping) else self.voice_aliases
        object.__setattr__(self, "voice_aliases", _check_aliases(pairs))

    @property
    def model_names(self) -> tuple[str, ...]:
        """What a request's `model` may be."""
        names = ["qwen3-tts", self.model_id or self.model]
        return tuple(dict.fromkeys(n for n in names if n))


def parse_voice_aliases(text: str) -> tuple[tuple[str, str], ...]:
    """`alias=voice` pairs separated by commas ("alloy=ryan,echo=eric"), as `--voice-alias` and
    $QWEN3TTS_VOICE_ALIAS take them.

    Raises:
        InvalidInputError: an item that is not `alias=voice`.
    """
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        alias, sep, voice = (x.strip() for x in item.partition("="))
        if not sep:
            raise InvalidInputError(f"voice alias {item!r}; give alias=voice, e.g. alloy=ryan")
        pairs.append((alias, voice))
    return _check_aliases(pairs)


def _check_aliases(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        alias, voice = pair if isinstance(pair, tuple) and len(pair) == 2 else (None, None)
        if not all(isinstance(x, str) and x and not any(c.isspace() or c in ",=" for c in x)
                   for x in (alias, voice)):
            raise InvalidInputError(f"voice alias {pair!r}; give (alias, voice) names without spaces, ',' or "
                                    "'=', e.g. ('alloy', 'ryan')")
        out.append((alias, voice))
    aliases = [alias for alias, _ in out]
    if len(set(aliases)) != len(aliases):
        raise InvalidInputError(f"voice aliases {aliases}: an alias is given twice")
    return tuple(out)


# (flag, field, environment variable, type, help). The order is the order of `serve --help`.
SETTINGS: tuple[tuple[str, str, str, type, str], ...] = (
    ("--model", "model", "QWEN3TTS_MODEL", str, "Hugging Face id or local checkpoint folder"),
    ("--model-id", "model_id", "QWEN3TTS_MODEL_ID", str,
     "name clients may send as `model` besides qwen3-tts (default: --model)"),
    ("--device", "device", "QWEN3TTS_DEVICE", str, "cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)"),
    ("--dtype", "dtype", "QWEN3TTS_DTYPE", str, "float32, bfloat16, ... (default: per device)"),
    ("--quantize", "quantize", "QWEN3TTS_QUANTIZE", str, "CPU weight format: fp16, int8, int4 or w8a8 (default: none)"),
    ("--host", "host", "QWEN3TTS_HOST", str, "address to bind; 0.0.0.0 exposes the server to the network"),
    ("--port", "port", "QWEN3TTS_PORT", int, "port to listen on"),
    ("--voice-dir", "voice_dir", "QWEN3TTS_VOICE_DIR", str,
     "voice library: a folder, or redis://host:port/db shared by replicas (default: the user cache)"),
    ("--max-streams", "max_streams", "QWEN3TTS_MAX_STREAMS", int, "streams generating at once"),
    ("--max-queue", "max_queue", "QWEN3TTS_MAX_QUEUE", int,
     "streams waiting beyond --max-streams; more requests get 429"),
    ("--max-body-bytes", "max_body_bytes", "QWEN3TTS_MAX_BODY_BYTES", int,
     "largest JSON body / websocket message"),
    ("--max-text-chars", "max_text_chars", "QWEN3TTS_MAX_TEXT_CHARS", int, "longest text of one request"),
    ("--max-upload-bytes", "max_upload_bytes", "QWEN3TTS_MAX_UPLOAD_BYTES", int, "largest voice upload"),
    ("--max-upload-seconds", "max_upload_s", "QWEN3TTS_MAX_UPLOAD_SECONDS", float,
     "longest reference clip for cloning"),
    ("--warmup-text", "warmup_text", "QWEN3TTS_WARMUP_TEXT", str, "spoken once at start-up; '' skips it"),
    ("--default-format", "default_response_format", "QWEN3TTS_DEFAULT_FORMAT", str,
     "response_format when a request names none (default: mp3 if libsndfile writes it, else wav)"),
    ("--ws-idle-timeout", "ws_idle_timeout_s", "QWEN3TTS_WS_IDLE_TIMEOUT", float,
     "seconds a websocket stream may wait for a text message before it is ended; 0: never"),
    ("--ws-max-messages-per-s", "ws_max_messages_per_s", "QWEN3TTS_WS_MAX_MESSAGES_PER_S", float,
     "messages per second one websocket connection may send; beyond it the server reads it more slowly; 0: no bound"),
)


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """Add the server's flags to `parser`, their defaults taken from the environment (then the built-ins)."""
    env = os.environ if environ is None else environ
    defaults = ServerConfig()
    for flag, name, var, kind, help_text in SETTINGS:
        default = getattr(defaults, name)
        if env.get(var):
            default = env[var]  # a string default goes through `type` (and its error) like a flag's value
        shown = "" if default is None else f" (default: {default})"
        metavar = flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, dest=name, type=kind, default=default, metavar=metavar,
                            help=f"{help_text}; ${var}{shown}")
    parser.add_argument(
        "--voice-alias", dest="voice_aliases", action="append", type=_alias_argument, metavar="ALIAS=VOICE",
        help=f"a request's voice ALIAS speaks as VOICE, e.g. alloy=ryan (OpenAI's voice names); repeatable; "
             f"${VOICE_ALIAS_ENV} takes them comma-separated (the flags replace it)",
    )
    parser.add_argument(
        "--api-key-env", default=API_KEY_ENV, metavar="VAR",
        help=f"environment variable holding the API key; when it is set, /v1 requests and /metrics need "
             f"'Authorization: Bearer <key>' (default: {API_KEY_ENV})",
    )
    parser.add_argument(
        "--metrics-public", action="store_true", default=None,
        help=f"serve /metrics without the API key (for scrapers that cannot send it); ${METRICS_PUBLIC_ENV}=1",
    )
    parser.add_argument(
        "--no-ui", action="store_true", default=None,
        help=f"do not serve the playground page at / (the API only); ${NO_UI_ENV}=1",
    )


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """The `ServerConfig` of parsed `serve` arguments (the API key from the variable `--api-key-env`
    names).

    Raises:
        InvalidInputError: a malformed $QWEN3TTS_VOICE_ALIAS or $QWEN3TTS_METRICS_PUBLIC.
    """
    env = os.environ if environ is None else environ
    values = {name: getattr(args, name) for _, name, _, _, _ in SETTINGS}
    aliases = args.voice_aliases
    if aliases is None:
        aliases = parse_voice_aliases(env.get(VOICE_ALIAS_ENV, ""))
    metrics_public = args.metrics_public or _env_flag(env, METRICS_PUBLIC_ENV)
    ui = not (args.no_ui or _env_flag(env, NO_UI_ENV))
    return ServerConfig(**values, api_key=env.get(args.api_key_env) or None, metrics_public=metrics_public, ui=ui,
                        voice_aliases=tuple(aliases))


def _alias_argument(text: str) -> tuple[str, str]:
    try:
        (pair,) = parse_voice_aliases(text)
    except (InvalidInputError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"{text!r}: give one alias=voice, e.g. alloy=ryan") from e
    return pair


def _env_flag(env: Mapping[str, str], var: str) -> bool:
    value = env.get(var, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise InvalidInputError(f"${var}={env[var]!r}; accepted: 1, true, yes, on or 0, false, no, off")
    return value in _TRUE

