"""/v1/voices on a Base checkpoint: clone by upload (multipart), list, get, use in speech, remove, stats; bad
uploads and names are 4xx; a cloned voice is warm from its second request on."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwen3tts_realtime import Qwen3TTS, VoiceLibrary
from qwen3tts_realtime.audio import to_pcm16
from qwen3tts_realtime.server import ServerConfig

from .conftest import GREEDY, reference_audio, running_server

pytest.importorskip("qwen3tts_realtime.voices.library")

REF_TEXT = "This is the reference voice."


@pytest.fixture(scope="module")
def base(golden, tmp_path_factory):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "base")
    config = ServerConfig(model="tiny-base", warmup_text="", max_upload_s=5.0,
                          voice_dir=str(tmp_path_factory.mktemp("voices")))
    with running_server(tts, config) as running:
        yield running
    tts.close()


@pytest.fixture(scope="module")
def ref_wav(golden) -> bytes:
    return (golden / "inputs" / "ref_24k.wav").read_bytes()


def upload(server, name: str, wav: bytes, **form):
    with server.client() as c:
        return c.post("/v1/voices", files={"file": ("ref.wav", wav, "audio/wav")},
                      data={"name": name, **form})


def test_clone_list_use_and_remove(base, ref_wav):
    r = upload(base, "anna", ref_wav, ref_text=REF_TEXT)
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "anna", "kind": "clone_icl", "model_type": "base", "speaker": None,
                        "instruct": None, "source": "library"}
    with base.client() as c:
        listed = c.get("/v1/voices").json()["voices"]
        assert [(v["name"], v["kind"], v["usable"]) for v in listed] == [("anna", "clone_icl", True)]
        assert c.get("/v1/voices/anna").json()["kind"] == "clone_icl"

        body = {"input": "Hello there.", "voice": "anna", "response_format": "pcm", "max_frames": 8, **GREEDY}
        warm_before = c.get("/v1/voices/stats").json()["warm_voices"]
        first = c.post("/v1/audio/speech", json={**body, "stream": False})
        second = c.post("/v1/audio/speech", json={**body, "stream": False})
        assert (first.headers["x-voice-cache"], second.headers["x-voice-cache"]) == ("miss", "hit")
        stats = c.get("/v1/voices/stats").json()
        warm = stats["warm_voices"]  # the engine's warm-voice LRU: one miss (first), one hit (second)
        assert stats["library"]["entries"] == 1 and warm["size"] == warm_before["size"] + 1
        assert (warm["misses"] - warm_before["misses"], warm["hits"] - warm_before["hits"]) == (1, 1)
        profile = VoiceLibrary(base.tts, base.config.voice_dir).get("anna")
        expected = to_pcm16(reference_audio(base.tts, "Hello there.", max_frames=8, profile=profile))
        assert np.array_equal(np.frombuffer(second.content, "<i2"), expected)

        styled = c.post("/v1/audio/speech", json={**body, "instructions": "Whisper."})
        assert styled.status_code == 400 and styled.json()["error"]["param"] == "instructions"
        assert "a clone takes its style from its reference audio" in styled.json()["error"]["message"]

        assert c.delete("/v1/voices/anna").json() == {"deleted": "anna"}
        assert c.get("/v1/voices/anna").status_code == 404
        assert c.delete("/v1/voices/anna").status_code == 404
        r = c.post("/v1/audio/speech", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_voice"


def test_x_vector_clone_needs_no_transcript(base, ref_wav):
    r = upload(base, "bob.x", ref_wav, x_vector_only="true")
    assert r.status_code == 201 and r.json()["kind"] == "clone_xvector"
    with base.client() as c:
        assert c.delete("/v1/voices/bob.x").status_code == 200


@pytest.mark.parametrize(("name", "form", "status", "needle"), [
    ("../evil", {"ref_text": REF_TEXT}, 400, "invalid voice name"),
    ("anna", {}, 400, "ref_text"),
    ("anna", {"ref_text": REF_TEXT, "x_vector_only": "maybe"}, 400, "true or false"),
    ("anna", {"ref_text": REF_TEXT, "colour": "blue"}, 400, "unknown form field 'colour'"),
])
def test_bad_uploads(base, ref_wav, name, form, status, needle):
    r = upload(base, name, ref_wav, **form)
    assert r.status_code == status and needle in r.json()["error"]["message"]


def test_bad_audio(base):
    r = upload(base, "anna", b"RIFF not really a wav", ref_text=REF_TEXT)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_audio"
    long = io.BytesIO()
    sf.write(long, np.zeros(24000 * 6, np.float32) + 0.1, 24000, format="WAV")
    r = upload(base, "anna", long.getvalue(), ref_text=REF_TEXT)
    assert r.status_code == 413 and "at most 5 s" in r.json()["error"]["message"]
    with base.client() as c:
        r = c.post("/v1/voices", content=b"name=anna", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert c.get("/v1/voices/..evil").status_code == 400
        assert c.delete("/v1/voices/nobody").status_code == 404


def test_a_malformed_multipart_body_is_a_clear_400(base):
    cut = b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nanna'  # ends inside its only part
    with base.client() as c:
        for body, ctype, message in [
            (cut, "multipart/form-data; boundary=b", "missing form field 'name'"),
            (b"no parts", "multipart/form-data", "malformed multipart/form-data body: Missing boundary in multipart."),
        ]:
            r = c.post("/v1/voices", content=body, headers={"Content-Type": ctype})
            assert r.status_code == 400 and r.json()["error"]["message"] == message


def test_custom_voice_stores_speakers_by_json(server):
    with server.client() as c:
        warm = {"name": "warm-ryan", "speaker": "ryan", "instructions": "Speak warmly."}
        r = c.post("/v1/voices", json=warm)
        assert r.status_code == 201 and r.json()["instruct"] == "Speak warmly."
        assert {v["name"] for v in c.get("/v1/voices").json()["voices"]} >= {"ryan", "eric", "warm-ryan"}
        r = c.post("/v1/audio/speech", json={"input": "Hi.", "voice": "warm-ryan", "max_frames": 3,
                                            "response_format": "pcm"})
        assert r.status_code == 200 and len(r.content) > 0
        # The same voice asked for by speaker and instructions is the same content: warm from the stored one.
        again = {"input": "Hi.", "voice": "ryan", "instructions": "Speak warmly.", "max_frames": 3}
        assert c.post("/v1/audio/speech", json=again).headers["x-voice-cache"] == "hit"
        r = c.post("/v1/voices", files={"file": ("a.wav", b"x")}, data={"name": "clone", "ref_text": "x"})
        assert r.status_code == 400 and "needs a Base checkpoint" in r.json()["error"]["message"]
        assert c.delete("/v1/voices/ryan").status_code == 400  # built-in
        assert c.delete("/v1/voices/warm-ryan").status_code == 200


def test_an_overlong_transcript_is_refused_before_anything_is_stored(base, ref_wav):
    r = upload(base, "long", ref_wav, ref_text="word " * 200_000)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "ref_text" and error["code"] == "text_too_long"
    assert "ref_text has 999999 characters; at most 4096 are accepted (--max-text-chars)" in error["message"]
    voice_dir = Path(base.config.voice_dir)
    assert not (voice_dir / "names" / "long.json").exists()
    assert list((voice_dir / "entries").iterdir()) == []  # nothing written, not even a temporary file


def test_replicas_sharing_a_redis_store_share_voices(golden, redis_url, ref_wav):
    """Two servers (replicas, each with its own model) on one Redis voice store: a voice cloned through one is
    listed and spoken by the other, exactly as by the first; removed through the second, it is gone from both."""
    models = [Qwen3TTS.from_pretrained(golden / "tiny" / "base") for _ in range(2)]
    config = ServerConfig(model="tiny-base", warmup_text="", voice_dir=redis_url)
    with running_server(models[0], config) as one, running_server(models[1], config) as two:
        r = upload(one, "anna", ref_wav, ref_text=REF_TEXT)
        assert r.status_code == 201, r.text
        body = {"input": "Hello there.", "voice": "anna", "response_format": "pcm", "max_frames": 8, "stream": False,
                **GREEDY}
        with one.client() as c1, two.client() as c2:
            assert [v["name"] for v in c2.get("/v1/voices").json()["voices"]] == ["anna"]
            spoken = [c.post("/v1/audio/speech", json=body) for c in (c1, c2)]
            assert [s.status_code for s in spoken] == [200, 200]
            assert spoken[0].content == spoken[1].content and len(spoken[1].content) == 8 * 1920 * 2
            assert c2.get("/v1/voices/stats").json()["cache_dir"].startswith("redis://127.0.0.1:")
            assert c2.delete("/v1/voices/anna").json() == {"deleted": "anna"}
            assert c1.get("/v1/voices/anna").status_code == 404
    for tts in models:
        tts.close()
