"""Incremental tokenization of text that arrives in fragments (LLM tokens), committing only stable tokens.

A token is committed once no text still to come can change it. The Qwen2 tokenizer normalises (NFC), splits
the text into pre-tokens with a left-to-right regex, and runs BPE inside each pre-token. Appending text can
change only the last pre-token (it may extend, merge with what follows, or gain a combining mark), so every
token of the earlier pre-tokens is final: the committed ids are always a prefix of the ids of the whole text,
and after `end()` they are exactly those ids (property-tested).

Added tokens (`<|im_end|>`, `<think>`, ...) are matched in the text as whole tokens before pre-tokenisation, as
the whole-text tokenizer does; text that ends with the beginning of one (`"<|im_"`) is held back until it is
known whether it completes.

No torch here: this works on a `tokenizers`-backed Hugging Face fast tokenizer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IncrementalTokenizer", "CLAUSE_END"]

CLAUSE_END = frozenset(".,;:!?。，、；：！？…\n")


class IncrementalTokenizer:
    """Feed fragments with `push`, close with `end`; each returns the newly committed token ids.

    Args:
        tokenizer: a Hugging Face fast tokenizer (its `backend_tokenizer` normaliser and pre-tokeniser are used).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        backend = tokenizer.backend_tokenizer
        self._normalizer = backend.normalizer
        self._pre_tokenizer = backend.pre_tokenizer
        self._added = tuple(sorted({t.content for t in tokenizer.added_tokens_decoder.values() if t.content}))
        self._longest_added = max(map(len, self._added), default=0)
        self._text = ""
        self._committed: list[int] = []
        self._committed_chars = 0
        self._ended = False

    @property
    def text(self) -> str:
        """All text received so far."""
        return self._text

    @property
    def committed(self) -> list[int]:
        """Every id committed so far (a prefix of the whole text's ids)."""
        return list(self._committed)

    @property
    def committed_text(self) -> str:
        """The normalised text the committed ids cover."""
        return self._normalize(self._text)[: self._committed_chars]

    @property
    def ended(self) -> bool:
        return self._ended

    def push(self, fragment: str) -> list[int]:
        """Add text; returns the ids that became stable (possibly none)."""
        if self._ended:
            raise RuntimeError("push() after end(): the text is complete")
        if not isinstance(fragment, str):
            raise TypeError(f"text fragments must be str, got {type(fragment).__name__}")
        self._text += fragment
        return self._commit(final=False)

    def end(self) -> list[int]:
        """No more text: commit the rest."""
        if self._ended:
            return []
        self._ended = True
        return self._commit(final=True)

    def _normalize(self, text: str) -> str:
        return self._normalizer.normalize_str(text) if self._normalizer is not None else text

    def _added_token_start(self, norm: str) -> int:
        """Where the text's end may be the beginning of an added token (`len(norm)` if nowhere)."""
        for start in range(max(0, len(norm) - self._longest_added + 1), len(norm)):
            tail = norm[start:]
            if any(t.startswith(tail) and t != tail for t in self._added):
                return start
        return len(norm)

    def _commit(self, *, final: bool) -> list[int]:
        norm = self._normalize(self._text)
        if final:
            cut = len(norm)
        else:
            pieces = self._pre_tokenizer.pre_tokenize_str(norm)
            if len(pieces) < 2:
                return []
            cut = pieces[-1][1][0]  # start of the last pre-token: everything before it is final
            cut = min(cut, self._added_token_start(norm))
        if cut <= self._committed_chars:
            return []
        enc = self._tok(norm, add_special_tokens=False, return_offsets_mapping=True)
        ids = [i for i, (_, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True) if end <= cut]
        done = len(self._committed)
        # Internal invariant: earlier commitments are a prefix of the current tokenization.
        assert ids[:done] == self._committed, "committed tokens changed: unstable commit rule"
        new = ids[done:]
        self._committed.extend(new)
        self._committed_chars = cut
        return new
