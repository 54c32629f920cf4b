"""The README's commands: `random-checkpoint` then `speak` writes a WAV and reports frames and xRT."""

from __future__ import annotations

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
