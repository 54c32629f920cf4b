"""Text tokenization with the checkpoint's own Qwen2 byte-level BPE files and the official templates (spec §4.1).

The stock Qwen2 pre-tokenizer regex is used (what the official processor does for the checkpoints'
`transformers_version` 4.57.1 and for hub ids). User text is text: special tokens written in it (`<|im_end|>`,
...) are tokenized as plain characters, never as control tokens (the official wrapper parses them, which lets a
user's text close the template). The templates' own control tokens are placed by id, and the text between them
is tokenized in the segments the official wrapper's added-token split makes, so for any text without special
tokens the ids equal the official ones (golden tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError, InvalidInputError

__all__ = ["TextTokenizer"]

log = logging.getLogger("qwen3tts_realtime.model")


class TextTokenizer:
    """Qwen2 BPE tokenizer loaded from `vocab.json`, `merges.txt` and `tokenizer_config.json` of a checkpoint."""

    def __init__(self, folder: str | Path) -> None:
        from transformers import Qwen2TokenizerFast  # the natural building block; loaded lazily (slow import)

        folder = Path(folder)
        for name in ("vocab.json", "merges.txt"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder / name} is missing: the checkpoint has no Qwen2 text tokenizer")
        try:
            # fix_mistral_regex=False: keep the stock Qwen2 regex (and silence transformers' warning about it)
            self._tok = Qwen2TokenizerFast.from_pretrained(str(folder), fix_mistral_regex=False)
            self._im_start, self._im_end = self._tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
            self._backend = _without_added_tokens(self._tok.backend_tokenizer)
        except Exception as e:  # transformers raises many types for a broken tokenizer folder
            raise CheckpointError(f"cannot load the text tokenizer from {folder}: {e}") from e

    @property
    def hf_tokenizer(self):  # noqa: ANN201 - a transformers fast tokenizer
        """The underlying Hugging Face fast tokenizer (it parses added tokens: not for user text)."""
        return self._tok

    @property
    def backend(self):  # noqa: ANN201 - a tokenizers.Tokenizer
        """The `tokenizers.Tokenizer` for user text: the checkpoint's normaliser, pre-tokenizer and BPE, without
        added tokens, so `<|im_end|>` or `<think>` written in a text are characters (incremental tokenization
        uses it too)."""
        return self._backend

    @property
    def role_ids(self) -> list[int]:
        """"<|im_start|>assistant\n": where the target-text template starts (and the voice-only prefix ends)."""
        return [self._im_start, *self.encode("assistant\n")]

    @property
    def end_ids(self) -> list[int]:
        """"<|im_end|>\n<|im_start|>assistant\n": what follows the text in the target-text template."""
        return [self._im_end, *self.encode("\n"), *self.role_ids]

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens written in it are plain text; no BOS/EOS added)."""
        return self._backend.encode(text, add_special_tokens=False).ids

    def assistant_ids(self, text: str) -> Tensor:
        """The target-text template "<|im_start|>assistant\\n{text}<|im_end|>\\n<|im_start|>assistant\\n"."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"text must be a non-empty string, got {text!r}")
        return self._template("assistant\n" + text, next_turn="assistant\n")

    def ref_ids(self, ref_text: str) -> Tensor:
        """The ICL reference-text template "<|im_start|>assistant\\n{ref_text}<|im_end|>\\n"."""
        if not isinstance(ref_text, str) or not ref_text.strip():
            raise InvalidInputError(
                f"ref_text must be the non-empty transcript of the reference clip, got {ref_text!r} "
                "(or clone with x_vector_only=True, which needs no transcript)"
            )
        return self._template("assistant\n" + ref_text)

    def instruct_ids(self, instruct: str) -> Tensor:
        """The instruction template "<|im_start|>user\\n{instruct}<|im_end|>\\n" (used whole)."""
        return self._template("user\n" + instruct)

    def _template(self, turn: str, *, next_turn: str | None = None) -> Tensor:
        """"<|im_start|>{turn}<|im_end|>\n" (+ "<|im_start|>{next_turn}"), control tokens by id."""
        ids = [self._im_start, *self.encode(turn), self._im_end, *self.encode("\n")]
        if next_turn is not None:
            ids += [self._im_start, *self.encode(next_turn)]
        return torch.tensor(ids, dtype=torch.long)


def _without_added_tokens(backend):  # noqa: ANN001, ANN202 - tokenizers.Tokenizer in and out
    """A copy of a `tokenizers.Tokenizer` that knows no added tokens: they exist only as separate ids (never in
    the BPE vocabulary), so for a text that does not spell one the ids are the same."""
    import json

    from tokenizers import Tokenizer

    spec = json.loads(backend.to_str())
    spec["added_tokens"] = []
    return Tokenizer.from_str(json.dumps(spec))
