"""The README's quick-start snippets, run as written against tiny random checkpoints.

Each block after a `<!-- quickstart: NAME -->` marker runs with the published model ids replaced by tiny local
checkpoints of the same type and `anna.wav` by a reference clip; nothing else is changed.
"""

from __future__ import annotations

import re
import shlex
import wave
from pathlib import Path

import httpx
import pytest

from tests.golden import GOLDEN

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- quickstart: (\w+) -->\n```(\w+)\n(.*?)```", re.S)


def quickstarts() -> dict[str, str]:
    blocks = {name: code for name, _, code in BLOCK.findall(README.read_text())}
    assert set(blocks) == {"python", "clone", "pipecat", "livekit", "server"}, sorted(blocks)
    return blocks


def local(code: str) -> str:
    """The snippet with hub ids swapped for the tiny golden checkpoints and the reference clip."""
    return (code.replace("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", str(GOLDEN / "tiny" / "custom_voice"))
                .replace("Qwen/Qwen3-TTS-12Hz-0.6B-Base", str(GOLDEN / "tiny" / "base"))
                .replace('"anna.wav"', repr(str(GOLDEN / "inputs" / "ref_24k.wav"))))


@pytest.fixture
def workdir(tmp_path, monkeypatch, golden):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QWEN3TTS_VOICE_DIR", str(tmp_path / "voices"))
    return tmp_path


def run(code: str, **names) -> dict:
    namespace = dict(names)
    exec(compile(local(code), "README.md", "exec"), namespace)
    return namespace


def test_plain_python_quickstart(workdir):
    sent = []
    ns = run(quickstarts()["python"], send_to_caller=sent.append)
    try:
        with wave.open(str(workdir / "hello.wav")) as w:
            assert w.getframerate() == 24000 and w.getnframes() == len(ns["out"].audio) > 0
        assert sent and sent[0].dtype.name == "float32"
    finally:
        ns["tts"].close()


def test_clone_library_and_llm_tokens_quickstart(workdir):
    ns = run(quickstarts()["clone"])
    try:
        assert ns["tts"].voices.get("anna").kind == "clone_icl"
        assert (workdir / "voices").is_dir()
        assert sum(len(a) for a in ns["audio"]) > 0
    finally:
        ns["tts"].close()


def test_pipecat_quickstart(workdir):
    from qwen3tts_realtime.pipecat import Qwen3TTSService

    ns = run(quickstarts()["pipecat"])
    assert isinstance(ns["tts"], Qwen3TTSService)


def test_livekit_quickstart(workdir):
    from qwen3tts_realtime.livekit import TTS

    ns = run(quickstarts()["livekit"])
    assert isinstance(ns["tts"], TTS) and ns["tts"].sample_rate == 24000


def test_server_quickstart(workdir):
    """The `serve` line parses to a server config; the `curl` request, sent to a running server on the tiny
    model, returns a WAV."""
    from qwen3tts_realtime import Qwen3TTS
    from qwen3tts_realtime.cli import _parser
    from qwen3tts_realtime.server._config import config_from_args
    from tests.server.conftest import running_server

    serve_line, curl = local(quickstarts()["server"]).replace("\\\n", " ").strip().split("\n")
    argv = shlex.split(serve_line)
    assert argv[0] == "qwen3tts-realtime"
    config = config_from_args(_parser().parse_args(argv[1:]))
    assert config.port == 8000 and config.model == str(GOLDEN / "tiny" / "custom_voice")

    args = shlex.split(curl.split(">")[0])
    body = args[args.index("-d") + 1]
    tts = Qwen3TTS.from_pretrained(config.model)
    try:
        with running_server(tts, config.__class__(model=config.model, warmup_text="")) as server:
            response = httpx.post(server.url + "/v1/audio/speech", content=body,
                                  headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.content[:4] == b"RIFF" and len(response.content) > 1000
    finally:
        tts.close()
