"""Incremental tokenization of text that arrives in fragments (LLM tokens), committing only stable tokens.

A token is committed once no text still to come can change it. The Qwen2 tokenizer normalises (NFC), splits
the text into pre-tokens with a left-to-right regex (no look-behind), and runs BPE inside each pre-token.
Appending text can change only the last pre-token (it may extend, merge with what follows, or gain a combining
mark), so every token of the earlier pre-tokens is final: the committed ids are always a prefix of the ids of
the whole text, and after `end()` they are exactly those ids (property-tested).

Work is proportional to the new text: only the tail that is not yet committed is normalised, pre-tokenized and
tokenized again (a pre-token boundary is a place where tokenizing from scratch gives the same tokens, since the
regex looks only forward), so 4,096 one-character pushes cost what one push of the same text does, give or take
the last word. `tokenized_chars` counts the characters handed to the tokenizer.

User text is text: the tokenizer knows no added tokens (`TextTokenizer.backend`), so `<|im_end|>` written in it
is characters.

No torch here: this works on a `tokenizers.Tokenizer`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IncrementalTokenizer", "CLAUSE_END"]

CLAUSE_END = frozenset(".,;:!?。，、；：！？…\n")


class IncrementalTokenizer:
    """Feed fragments with `push`, close with `end`; each returns the newly committed token ids.

    Args:
        tokenizer: a `tokenizers.Tokenizer` that knows no added tokens (`TextTokenizer.backend`).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._normalizer = tokenizer.normalizer
        self._pre_tokenizer = tokenizer.pre_tokenizer
        self._done: list[str] = []  # raw text whose ids are all committed
        self._tail = ""  # raw text after it
        self._tail_committed = 0  # ids of the tail already committed (when its start could not move)
        self._tail_covered = 0  # normalised characters of the tail those ids cover
        self._committed: list[int] = []
        self._committed_text: list[str] = []  # normalised text the committed ids cover
        self._clause_end = False
        self._ended = False
        self.tokenized_chars = 0

    @property
    def text(self) -> str:
        """All text received so far."""
        return "".join(self._done) + self._tail

    @property
    def committed(self) -> list[int]:
        """Every id committed so far (a prefix of the whole text's ids)."""
        return list(self._committed)

    @property
    def committed_text(self) -> str:
        """The normalised text the committed ids cover."""
        return "".join(self._committed_text)

    @property
    def clause_ended(self) -> bool:
        """The committed text holds a clause end (`CLAUSE_END`)."""
        return self._clause_end

    @property
    def ended(self) -> bool:
        return self._ended

    def push(self, fragment: str) -> list[int]:
        """Add text; returns the ids that became stable (possibly none)."""
        if self._ended:
            raise RuntimeError("push() after end(): the text is complete")
        if not isinstance(fragment, str):
            raise TypeError(f"text fragments must be str, got {type(fragment).__name__}")
        self._tail += fragment
        return self._commit(final=False)

    def end(self) -> list[int]:
        """No more text: commit the rest."""
        if self._ended:
            return []
        self._ended = True
        return self._commit(final=True)

    def _normalize(self, text: str) -> str:
        return self._normalizer.normalize_str(text) if self._normalizer is not None else text

    def _commit(self, *, final: bool) -> list[int]:
        norm = self._normalize(self._tail)
        if final:
            cut = len(norm)
        else:
            pieces = self._pre_tokenizer.pre_tokenize_str(norm)
            if len(pieces) < 2:
                return []
            cut = pieces[-1][1][0]  # start of the last pre-token: everything before it is final
        if cut == 0:
            return []
        self.tokenized_chars += len(norm)
        enc = self._tok.encode(norm, add_special_tokens=False)
        stable = [(i, end) for i, (_, end) in zip(enc.ids, enc.offsets, strict=True) if end <= cut]
        new = [i for i, _ in stable[self._tail_committed :]]
        if not new:
            return []
        covered = stable[-1][1]
        self._committed.extend(new)
        piece = norm[self._tail_covered : covered]
        self._committed_text.append(piece)
        self._clause_end = self._clause_end or any(ch in CLAUSE_END for ch in piece)
        self._tail_committed = len(stable)
        self._tail_covered = covered
        # Move the tail's start past the committed text when the raw text there is already normal (then it is
        # the same characters, and tokenizing from this pre-token boundary gives the same tokens).
        if self._tail[:covered] == norm[:covered]:
            self._done.append(self._tail[:covered])
            self._tail = self._tail[covered:]
            self._tail_committed = 0
            self._tail_covered = 0
        return new
