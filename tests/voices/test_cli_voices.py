"""The `voices` commands and `speak --voice` on a tiny random Base checkpoint: add (with progress on stderr),
list, speak with the stored voice, add again (reused), remove."""

from __future__ import annotations

import pytest
import soundfile as sf

from qwen3tts_realtime.cli import main
from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint

from .conftest import REF_TEXT


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    model = tmp_path_factory.mktemp("tiny") / "tiny-base"
    write_random_checkpoint(model, "0.6B-Base", tiny=True)
    return model


def test_add_list_speak_and_remove_a_library_voice(tiny_base, tmp_path, ref_wav, capsys):
    lib = ["--voice-dir", str(tmp_path / "voices")]

    assert main(["voices", "add", "anna", "--model", str(tiny_base), "--ref-audio", str(ref_wav),
                 "--ref-text", REF_TEXT, *lib]) == 0
    out, err = capsys.readouterr()
    assert "added 'anna': clone_icl for tiny-base" in out and "reused" not in out
    assert "preparing voice 'anna'" in err  # the progress display

    assert main(["voices", "add", "anna-x", "--model", str(tiny_base), "--ref-audio", str(ref_wav),
                 "--x-vector-only", *lib]) == 0
    assert main(["voices", "list", *lib]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed[-2:]] == [["anna", "clone_icl"], ["anna-x", "clone_xvector"]]

    wav = tmp_path / "anna.wav"
    assert main(["speak", "Hi.", "--model", str(tiny_base), "--voice", "anna", *lib, "--out", str(wav),
                 "--max-frames", "3", "--seed", "0"]) == 0
    assert sf.info(wav).samplerate == 24000
    capsys.readouterr()

    assert main(["voices", "add", "anna", "--model", str(tiny_base), "--ref-audio", str(ref_wav),
                 "--ref-text", REF_TEXT, *lib]) == 2  # a name is never replaced silently
    err = capsys.readouterr().err
    assert "a voice named 'anna' exists in" in err and "pass --replace" in err and "loading" not in err
    assert main(["voices", "add", "anna", "--model", str(tiny_base), "--ref-audio", str(ref_wav),
                 "--ref-text", REF_TEXT, "--replace", *lib]) == 0
    assert "already prepared: reused" in capsys.readouterr().out

    assert main(["voices", "remove", "anna", *lib]) == 0
    assert main(["voices", "remove", "anna-x", *lib]) == 0
    capsys.readouterr()
    assert main(["voices", "list", *lib]) == 0
    assert capsys.readouterr().out.startswith("no voices in")


def test_cli_errors_are_clear(tiny_base, tmp_path, ref_wav, capsys):
    lib = ["--voice-dir", str(tmp_path / "voices")]

    assert main(["voices", "remove", "nobody", *lib]) == 2
    assert "no voice named 'nobody'" in capsys.readouterr().err
    assert main(["voices", "add", "../../etc/x", "--model", str(tiny_base), "--ref-audio", str(ref_wav),
                 "--x-vector-only", *lib]) == 2
    assert "invalid voice name" in capsys.readouterr().err
    assert main(["voices", "add", "anna", "--model", str(tiny_base), "--ref-audio", str(ref_wav), *lib]) == 2
    assert "needs --ref-text" in capsys.readouterr().err
    assert main(["speak", "Hi.", "--model", str(tiny_base), "--voice", "nobody", *lib,
                 "--out", str(tmp_path / "x.wav")]) == 2
    assert "unknown voice 'nobody': the library has no voices" in capsys.readouterr().err


def test_add_a_named_speaker_and_a_designed_voice(golden, tmp_path, capsys):
    lib = ["--voice-dir", str(tmp_path / "voices")]

    assert main(["voices", "add", "helper", "--model", str(golden / "tiny" / "custom_voice"), "--speaker", "ryan",
                 "--instruct", "Speak warmly.", *lib]) == 0
    assert main(["voices", "add", "narrator", "--model", str(golden / "tiny" / "voice_design"),
                 "--design", "A calm, low male voice", *lib]) == 0
    assert main(["voices", "list", *lib]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed[-2:]] == [["helper", "speaker"], ["narrator", "design"]]

    assert main(["speak", "Hi.", "--model", str(golden / "tiny" / "voice_design"), "--voice", "helper", *lib,
                 "--out", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "prepared for another checkpoint (custom_voice)" in err
    assert "voices add helper --replace" in err and "POST /v1/voices" in err  # how, on each surface
