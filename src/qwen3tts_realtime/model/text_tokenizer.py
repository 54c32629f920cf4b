"""Text tokenization with the checkpoint's own Qwen2 byte-level BPE files and the official templates (spec §4.1).

The stock Qwen2 pre-tokenizer regex is used (what the official processor does for the checkpoints'
`transformers_version` 4.57.1 and for hub ids). Each template is tokenized whole, as the official wrapper does,
so a text that merges with the template's newline behaves exactly as it does there.
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
        except Exception as e:  # transformers raises many types for a broken tokenizer folder
            raise CheckpointError(f"cannot load the text tokenizer from {folder}: {e}") from e

    @property
    def hf_tokenizer(self):  # noqa: ANN201 - a transformers fast tokenizer
        """The underlying Hugging Face fast tokenizer (for incremental tokenization)."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens such as <|im_start|> recognised; no BOS/EOS added)."""
        return self._tok(text, add_special_tokens=False)["input_ids"]

    def assistant_ids(self, text: str) -> Tensor:
        """The target-text template "<|im_start|>assistant\\n{text}<|im_end|>\\n<|im_start|>assistant\\n"."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"text must be a non-empty string, got {text!r}")
        return self._tensor(f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n")

    def ref_ids(self, ref_text: str) -> Tensor:
        """The ICL reference-text template "<|im_start|>assistant\\n{ref_text}<|im_end|>\\n"."""
        if not isinstance(ref_text, str) or not ref_text.strip():
            raise InvalidInputError(
                f"ref_text must be the non-empty transcript of the reference clip, got {ref_text!r} "
                "(or clone with x_vector_only=True, which needs no transcript)"
            )
        return self._tensor(f"<|im_start|>assistant\n{ref_text}<|im_end|>\n")

    def instruct_ids(self, instruct: str) -> Tensor:
        """The instruction template "<|im_start|>user\\n{instruct}<|im_end|>\\n" (used whole)."""
        return self._tensor(f"<|im_start|>user\n{instruct}<|im_end|>\n")

    def _tensor(self, s: str) -> Tensor:
        return torch.tensor(self.encode(s), dtype=torch.long)
