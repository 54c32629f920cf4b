"""Estimated word times increase, lie within the audio produced, and cover every word once."""

from __future__ import annotations

import pytest

from qwen3tts_realtime.text.word_timing import WordTimer


def test_words_are_released_as_audio_covers_them():
    timer = WordTimer(chars_per_second=10.0)
    timer.add_text("Hello there, how are")
    assert timer.ready() == []  # no audio yet
    timer.add_audio(0.6)  # "Hello" weighs 6 chars = 0.6 s
    words = timer.ready()
    assert [w.word for w in words] == ["Hello"]
    assert (words[0].start_s, words[0].end_s) == (0.0, pytest.approx(0.6))
    timer.add_audio(5.0)
    assert [w.word for w in timer.ready()] == ["there,", "how"]  # "are" may still grow


def test_finish_spreads_the_rest_over_the_remaining_audio():
    timer = WordTimer(chars_per_second=10.0)
    timer.add_text("one two three four")
    timer.add_audio(0.4)
    first = timer.ready()
    timer.finish(total_audio_s=2.0)
    rest = timer.ready()
    words = first + rest
    assert [w.word for w in words] == ["one", "two", "three", "four"]
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(words, words[1:], strict=False))
    assert words[-1].end_s == pytest.approx(2.0)
    assert all(0 <= w.start_s < w.end_s <= 2.0 for w in words)
    assert timer.ready() == []


def test_fragments_split_inside_words():
    timer = WordTimer()
    for piece in ["Hel", "lo the", "re ", "friend"]:
        timer.add_text(piece)
    timer.add_audio(10.0)
    assert [w.word for w in timer.ready()] == ["Hello", "there"]
    timer.finish()
    assert [w.word for w in timer.ready()] == ["friend"]


def test_bad_rate():
    with pytest.raises(ValueError, match="chars_per_second"):
        WordTimer(chars_per_second=0)
