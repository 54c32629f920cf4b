"""The README's commands: `random-checkpoint` then `speak` writes a WAV (and/or plays it) and reports frames and xRT."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import soundfile as sf

from qwen3tts_realtime.cli import main


def test_speak_with_a_random_custom_voice_checkpoint(tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["random-checkpoint", str(model), "--config", "0.6B-CustomVoice", "--tiny"]) == 0
    assert "text tokenizer:" in capsys.readouterr().out

    out = tmp_path / "hello.wav"
    code = main(["speak", "Hello there.", "--model", str(model), "--speaker", "ryan", "--out", str(out),
                 "--max-frames", "6", "--seed", "1"])

    assert code == 0
    printed = capsys.readouterr().out
    for field in ("frames=", "audio_s=", "wall_s=", "xRT="):
        assert field in printed
    audio, sample_rate = sf.read(out)
    assert sample_rate == 24000 and 0 < len(audio) <= 6 * 1920


def test_speak_clone_and_errors(tmp_path, capsys, golden):
    model = tmp_path / "model"
    main(["random-checkpoint", str(model), "--config", "0.6B-Base", "--tiny"])
    out = tmp_path / "clone.wav"
    ref = str(golden / "inputs" / "ref_16k.wav")
    assert main(["speak", "Hi.", "--model", str(model), "--ref-audio", ref, "--x-vector-only", "--out", str(out),
                 "--max-frames", "3"]) == 0
    assert sf.info(out).samplerate == 24000

    assert main(["speak", "Hi.", "--model", str(model), "--speaker", "ryan", "--out", str(out)]) == 2
    assert "CustomVoice checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cv_model(tmp_path_factory):
    model = tmp_path_factory.mktemp("cli") / "model"
    assert main(["random-checkpoint", str(model), "--config", "0.6B-CustomVoice", "--tiny"]) == 0
    return str(model)


class FakePortAudioError(Exception):
    pass


def fake_sounddevice(*, devices_error: Exception | None = None) -> types.ModuleType:
    """A stand-in for `sounddevice` that records `play`/`wait` calls instead of touching a device."""
    sd = types.ModuleType("sounddevice")
    sd.calls = []
    sd.PortAudioError = FakePortAudioError

    def query_devices(device=None, kind=None):
        if devices_error is not None:
            raise devices_error
        return {"name": "fake output", "max_output_channels": 2}

    sd.query_devices = query_devices
    sd.play = lambda data, samplerate: sd.calls.append(("play", np.array(data), samplerate))
    sd.wait = lambda: sd.calls.append(("wait",))
    sd.stop = lambda: sd.calls.append(("stop",))
    return sd


def speak(model, *extra):
    return main(["speak", "Hello there.", "--model", model, "--speaker", "ryan", "--max-frames", "4", "--seed", "1",
                 "--greedy", *extra])


def test_speak_play_and_out_plays_the_written_samples(cv_model, tmp_path, capsys, monkeypatch):
    sd = fake_sounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    out = tmp_path / "hello.wav"

    assert speak(cv_model, "--out", str(out), "--play") == 0

    assert [c[0] for c in sd.calls] == ["play", "wait"]
    _, played, rate = sd.calls[0]
    written, written_rate = sf.read(out, dtype="float32")
    assert rate == written_rate == 24000
    assert played.dtype == np.float32 and played.ndim == 1 and 0 < len(played) <= 4 * 1920
    assert len(played) == len(written)
    np.testing.assert_allclose(played, written, atol=1 / 32767)  # the WAV is PCM_16
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out and "xRT=" in captured.out
    assert f"loading {cv_model}" in captured.err and "playing" in captured.err


def test_speak_play_without_out_writes_nothing(cv_model, tmp_path, capsys, monkeypatch):
    sd = fake_sounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    monkeypatch.chdir(tmp_path)

    assert speak(cv_model, "--play") == 0

    assert [c[0] for c in sd.calls] == ["play", "wait"] and sd.calls[0][2] == 24000
    assert list(tmp_path.iterdir()) == []
    assert "synthesized: frames=" in capsys.readouterr().out


def test_speak_play_without_sounddevice_says_which_extra(cv_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # `import sounddevice` raises ImportError

    assert speak(cv_model, "--play", "--out", str(tmp_path / "x.wav")) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ") and 'pip install "qwen3tts-realtime[play]"' in err
    assert "loading" not in err  # checked before the model is loaded
    assert not (tmp_path / "x.wav").exists()


def test_speak_play_without_portaudio_names_the_system_package(cv_model, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_portaudio)

    assert speak(cv_model, "--play") == 2

    err = capsys.readouterr().err
    assert "PortAudio library not found" in err and "libportaudio2" in err and "brew install portaudio" in err


def test_speak_play_without_an_output_device(cv_model, capsys, monkeypatch):
    sd = fake_sounddevice(devices_error=FakePortAudioError("Error querying device -1"))
    monkeypatch.setitem(sys.modules, "sounddevice", sd)

    assert speak(cv_model, "--play") == 2

    assert "no audio output device" in capsys.readouterr().err
    assert sd.calls == []


def test_speak_playback_failure_is_a_clear_error(cv_model, capsys, monkeypatch):
    sd = fake_sounddevice()

    def refuse(data, samplerate):
        raise FakePortAudioError("Invalid sample rate [PaErrorCode -9997]")

    sd.play = refuse
    monkeypatch.setitem(sys.modules, "sounddevice", sd)

    assert speak(cv_model, "--play") == 2

    assert "audio playback failed at 24000 Hz" in capsys.readouterr().err


def test_speak_needs_out_or_play(cv_model, capsys):
    assert speak(cv_model) == 2

    err = capsys.readouterr().err
    assert "--out" in err and "--play" in err
    assert "loading" not in err


def test_speak_out_in_a_missing_folder_fails_before_loading(cv_model, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "out.wav"
    assert speak(cv_model, "--out", str(out)) == 2

    err = capsys.readouterr().err
    assert err == f"error: --out {out}: the folder {out.parent} does not exist; create it or choose another path\n"
    assert not out.parent.exists()


@pytest.mark.parametrize("name", ["x.mp3", "x"])
def test_speak_out_in_a_format_without_16_bit_pcm_fails_before_loading(cv_model, tmp_path, capsys, name):
    out = tmp_path / name
    assert speak(cv_model, "--out", str(out)) == 2

    err = capsys.readouterr().err
    what = ".mp3" if name == "x.mp3" else "a file without an extension"
    assert err.startswith(f"error: --out {out}: cannot write {what} as 16-bit PCM; accepted extensions: ")
    assert ".flac" in err and ".wav" in err and ".mp3" not in err.partition("accepted")[2]
    assert "loading" not in err and not out.exists()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--language", "Klingon"], "error: --language Klingon: language 'Klingon' is not supported by Qwen3-TTS; "
                                 "accepted: Auto, Chinese, English"),
     (["--device", "cuda:7"], "error: --device cuda:7: "),
     (["--device", "tpu9"], "error: --device tpu9: device='tpu9' is not a torch device")],
)
def test_speak_bad_device_or_language_fails_before_loading(cv_model, tmp_path, capsys, flags, needle):
    out = tmp_path / "out.wav"
    assert speak(cv_model, "--out", str(out), *flags) == 2

    err = capsys.readouterr().err
    assert err.startswith(needle) and "loading" not in err and not out.exists()


def test_speak_empty_text_fails_before_loading(cv_model, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["speak", " ", "--model", cv_model, "--speaker", "ryan", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TEXT is empty") and "loading" not in err


def test_speak_takes_language_codes(cv_model, tmp_path, capsys):
    assert speak(cv_model, "--out", str(tmp_path / "out.wav"), "--language", "en-US") == 0


@pytest.mark.parametrize("args", [["--help"], ["speak", "--help"], ["serve", "--help"], ["bench", "--help"],
                                  ["random-checkpoint", "--help"]])
def test_help_loads_neither_torch_nor_transformers(args):
    """Help must come at once: the parser is built without importing the model stack (checked by the modules a fresh
    interpreter holds afterwards, not by timing)."""
    import subprocess

    script = (
        "import sys\nfrom qwen3tts_realtime.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'soundfile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
