"""OpenAI drop-in: `model` may be OpenAI's tts-1, tts-1-hd or gpt-4o-mini-tts (the loaded model answers);
`--voice-alias alloy=ryan` lets OpenAI's voice names speak as this server's voices; an OpenAI voice name that
is neither mapped nor a voice here is refused with 400 listing the mappings and the voices, never replaced
silently. The official client works with OpenAI's names unchanged."""

from __future__ import annotations

import openai
import pytest

from .conftest import GREEDY

BODY = {"input": "Hello there.", "response_format": "pcm", "max_frames": 4, **GREEDY}


def speak(server, **fields):
    with server.client() as c:
        return c.post("/v1/audio/speech", json={**BODY, **fields})


@pytest.mark.parametrize("model", ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"])
def test_openai_model_names_are_the_loaded_model(server, model):
    r = speak(server, model=model, voice="ryan")
    assert r.status_code == 200, r.text
    assert r.content == speak(server, model="qwen3-tts", voice="ryan").content


def test_a_mapped_openai_voice_speaks_as_its_voice(server):
    r = speak(server, voice="alloy")
    assert r.status_code == 200, r.text
    assert r.content == speak(server, voice="ryan").content


@pytest.mark.parametrize("voice", ["nova", "shimmer", "verse"])
def test_an_unmapped_openai_voice_is_refused_listing_what_there_is(server, voice):
    r = speak(server, voice=voice)
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["param"], error["code"]) == ("voice", "unknown_voice")
    assert error["message"].startswith(f"unknown voice {voice!r}: an OpenAI voice name this server does not map; "
                                       "mapped voices: alloy=ryan; voices here: ryan, eric")
    assert f"map it with --voice-alias {voice}=VOICE" in error["message"]


def test_the_official_client_with_openai_names(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0)
    audio = client.audio.speech.create(model="tts-1-hd", voice="alloy", input="Hello there.", response_format="pcm",
                                       extra_body={"max_frames": 4, **GREEDY})
    assert audio.content == speak(server, voice="ryan").content
    with pytest.raises(openai.BadRequestError, match="an OpenAI voice name this server does not map"):
        client.audio.speech.create(model="tts-1", voice="onyx", input="Hi.")
