"""`serve` settings: flags over environment variables over the built-in defaults; the API key only from the
environment; bad settings are clear errors."""

from __future__ import annotations

import argparse

import pytest

from qwen3tts_realtime import InvalidInputError
from qwen3tts_realtime.server import ServerConfig
from qwen3tts_realtime.server._config import add_serve_arguments, config_from_args


def parse(argv: list[str], environ: dict[str, str]) -> ServerConfig:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, environ)
    return config_from_args(parser.parse_args(argv), environ)


def test_flags_environment_and_defaults():
    config = parse([], {})
    assert (config.host, config.port, config.max_streams, config.max_queue) == ("127.0.0.1", 8000, 16, 64)
    assert config.api_key is None
    assert config.model_names == ("qwen3-tts", "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice")
    env = {"QWEN3TTS_PORT": "9000", "QWEN3TTS_MAX_STREAMS": "4", "QWEN3TTS_API_KEY": "k1", "OTHER_KEY": "k2"}
    config = parse(["--max-streams", "8"], env)
    assert (config.port, config.max_streams, config.api_key) == (9000, 8, "k1")
    assert parse(["--api-key-env", "OTHER_KEY"], env).api_key == "k2"
    assert "k1" not in repr(parse([], env))


def test_bad_settings():
    with pytest.raises(SystemExit):
        parse([], {"QWEN3TTS_PORT": "eighty"})
    with pytest.raises(InvalidInputError, match="max_streams=0"):
        parse(["--max-streams", "0"], {})
    with pytest.raises(InvalidInputError, match="max_queue=-1"):
        ServerConfig(max_queue=-1)


def test_websocket_idle_timeout():
    assert parse([], {}).ws_idle_timeout_s == 30.0
    assert parse([], {"QWEN3TTS_WS_IDLE_TIMEOUT": "5"}).ws_idle_timeout_s == 5.0
    assert parse(["--ws-idle-timeout", "0"], {"QWEN3TTS_WS_IDLE_TIMEOUT": "5"}).ws_idle_timeout_s == 0  # never
    with pytest.raises(InvalidInputError, match="ws_idle_timeout_s=-1.0; it must be a number of seconds >= 0"):
        parse(["--ws-idle-timeout", "-1"], {})


def test_voice_aliases_from_flags_or_the_environment():
    assert parse([], {}).voice_aliases == ()
    env = {"QWEN3TTS_VOICE_ALIAS": "alloy=ryan, echo=eric"}
    assert parse([], env).voice_aliases == (("alloy", "ryan"), ("echo", "eric"))
    assert parse(["--voice-alias", "nova=eric", "--voice-alias", "onyx=ryan"], env).voice_aliases == (
        ("nova", "eric"), ("onyx", "ryan"))  # the flags replace the variable
    assert ServerConfig(voice_aliases={"alloy": "ryan"}).voice_aliases == (("alloy", "ryan"),)
    with pytest.raises(SystemExit):
        parse(["--voice-alias", "alloy"], {})
    with pytest.raises(InvalidInputError, match="voice alias 'alloy'; give alias=voice"):
        parse([], {"QWEN3TTS_VOICE_ALIAS": "alloy"})
    with pytest.raises(InvalidInputError, match="an alias is given twice"):
        parse([], {"QWEN3TTS_VOICE_ALIAS": "alloy=ryan,alloy=eric"})


def test_metrics_are_behind_the_key_unless_made_public():
    assert parse([], {}).metrics_public is False
    assert parse(["--metrics-public"], {}).metrics_public is True
    assert parse([], {"QWEN3TTS_METRICS_PUBLIC": "1"}).metrics_public is True
    assert parse([], {"QWEN3TTS_METRICS_PUBLIC": "false"}).metrics_public is False
    with pytest.raises(InvalidInputError, match=r"\$QWEN3TTS_METRICS_PUBLIC='maybe'; accepted: 1, true"):
        parse([], {"QWEN3TTS_METRICS_PUBLIC": "maybe"})
