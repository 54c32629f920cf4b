"""Split a long text into consecutive generations at sentence boundaries (no torch).

One generation has a frame budget (the checkpoint's `max_new_tokens`); a text beyond it is spoken as several
generations with the same voice, streamed seamlessly (the codec decoder state carries across them).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["split_sentences", "group_segments"]

_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing punctuation; whitespace between them is dropped."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def group_segments(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Consecutive groups of whole sentences of at most `max_tokens` tokens each (a longer sentence is cut at
    word boundaries). A text within the limit is returned unchanged, as one segment."""
    if count_tokens(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    for sentence in split_sentences(text):
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
            continue
        words, current = sentence.split(), ""
        for word in words:
            candidate = f"{current} {word}".strip()
            if current and count_tokens(candidate) > max_tokens:
                pieces.append(current)
                candidate = word
            current = candidate
        if current:
            pieces.append(current)
    segments: list[str] = []
    for piece in pieces:
        candidate = f"{segments[-1]} {piece}" if segments else piece
        if segments and count_tokens(candidate) <= max_tokens:
            segments[-1] = candidate
        else:
            segments.append(piece)
    return segments
