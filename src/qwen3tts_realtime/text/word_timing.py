"""Word timestamps estimated from the text and the audio actually produced (no aligner, no torch).

The model gives no alignment, so a word's time is estimated from its share of the characters: words are laid
out at a speaking rate (characters per second) and a word is released only once the audio produced so far
covers its estimated end. When the stream ends, the words not yet released are spread over the audio that
remains. So released times always increase and lie within audio that really exists: after an interruption,
the released words are what was (approximately) spoken, which is what an agent's context should hold.

    timer = WordTimer()
    timer.add_text("Hello there, how are")          # as text arrives (any fragments)
    timer.add_audio(0.48)                            # seconds of audio produced
    for w in timer.ready(): ...                      # WordTime(word, start_s, end_s)
    timer.add_text(" you?"); timer.finish(total_audio_s=1.9); timer.ready()
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WordTime", "WordTimer", "DEFAULT_CHARS_PER_SECOND"]

DEFAULT_CHARS_PER_SECOND = 14.0  # conversational English; CJK characters count double (see _weight)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class WordTime:
    """One word and its estimated span in the stream's audio, in seconds from the stream's start."""

    word: str
    start_s: float
    end_s: float


def _weight(word: str) -> float:
    """Speaking weight in "characters": CJK ideographs/kana/hangul take about as long as two Latin letters."""
    wide = sum(1 for ch in word if "\u2e80" <= ch <= "\ufaff" or "\uac00" <= ch <= "\ud7af")
    return len(word) + wide + 1.0  # +1: the pause/space after the word


class WordTimer:
    """Estimated word times for one stream.

    Args:
        chars_per_second: the speaking rate assumed until the stream's real length is known.
    """

    def __init__(self, chars_per_second: float = DEFAULT_CHARS_PER_SECOND) -> None:
        if not chars_per_second > 0:
            raise ValueError(f"chars_per_second={chars_per_second!r}; it must be > 0")
        self._rate = chars_per_second
        self._text = ""
        self._released = 0  # words handed out
        self._released_end_s = 0.0
        self._audio_s = 0.0
        self._finished_total_s: float | None = None
        self._text_complete = False

    @property
    def audio_s(self) -> float:
        return self._audio_s

    def add_text(self, fragment: str) -> None:
        """Append text as it arrives (a word is complete once whitespace follows it, or at `finish`)."""
        self._text += fragment

    def add_audio(self, seconds: float) -> None:
        """Record that `seconds` more audio were produced."""
        self._audio_s += max(0.0, seconds)

    def finish(self, total_audio_s: float | None = None) -> None:
        """The text is complete and the audio has ended (`total_audio_s` defaults to all audio added)."""
        self._text_complete = True
        self._finished_total_s = self._audio_s if total_audio_s is None else total_audio_s

    def ready(self) -> list[WordTime]:
        """Words whose estimated end lies within the audio produced so far (all of them after `finish`)."""
        words = _WORD.findall(self._text)
        if not self._text_complete and self._text and not self._text[-1].isspace():
            words = words[:-1]  # the last word may still grow
        out: list[WordTime] = []
        if self._finished_total_s is not None:
            rest = words[self._released :]
            span = max(0.0, self._finished_total_s - self._released_end_s)
            total = sum(_weight(w) for w in rest) or 1.0
            t = self._released_end_s
            for w in rest:
                d = span * _weight(w) / total
                out.append(WordTime(w, t, t + d))
                t += d
        else:
            t = self._released_end_s
            for w in words[self._released :]:
                end = t + _weight(w) / self._rate
                if end > self._audio_s:
                    break
                out.append(WordTime(w, t, end))
                t = end
        if out:
            self._released += len(out)
            self._released_end_s = out[-1].end_s
        return out
