"""The talker and its code predictor (spec §2, §3): module tree and weight keys exactly as the checkpoint's
`talker.*` tensors, plus the embedding primitives the prompt builder and the generation loop use.

No loop and no sampling here: `forward_rows` is a single forward over a caller-owned cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TalkerConfig, TransformerConfig
from .transformer import KVCache, Qwen3DecoderStack

__all__ = ["Talker", "CodePredictor"]


class _TalkerModel(Qwen3DecoderStack):
    """`talker.model.*`: the decoder stack plus the text and codec embedding tables."""

    def __init__(self, c: TalkerConfig) -> None:
        super().__init__(c.transformer)
        self.codec_embedding = nn.Embedding(c.transformer.vocab_size, c.transformer.hidden_size)
        self.text_embedding = nn.Embedding(c.text_vocab_size, c.text_hidden_size)


TEXT_BLOCK = 32
"""Rows per text-projection call (see `Talker.text_rows`)."""


class _TextProjection(nn.Module):
    """`talker.text_projection`: fc2(silu(fc1(e))), both with bias."""

    def __init__(self, c: TalkerConfig) -> None:
        super().__init__()
        self.linear_fc1 = nn.Linear(c.text_hidden_size, c.text_hidden_size, bias=True)
        self.linear_fc2 = nn.Linear(c.text_hidden_size, c.transformer.hidden_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_fc2(F.silu(self.linear_fc1(x)))


class _PredictorModel(Qwen3DecoderStack):
    def __init__(self, c: TransformerConfig, embedding_dim: int) -> None:
        super().__init__(c)
        self.codec_embedding = nn.ModuleList(
            nn.Embedding(c.vocab_size, embedding_dim) for _ in range(c.num_code_groups - 1)
        )


class CodePredictor(nn.Module):
    """`talker.code_predictor.*`: predicts codebook groups 1..15 of a frame from the talker's hidden state.

    Group j (1..15) is predicted by `lm_head[j-1]` and embedded by `model.codec_embedding[j-1]`.
    """

    def __init__(self, c: TransformerConfig, talker_hidden: int) -> None:
        super().__init__()
        self.config = c
        self.model = _PredictorModel(c, talker_hidden)
        self.lm_head = nn.ModuleList(
            nn.Linear(c.hidden_size, c.vocab_size, bias=False) for _ in range(c.num_code_groups - 1)
        )
        # Present only when the widths differ (1.7B), as in the official module; 0.6B has no such tensors.
        self.small_to_mtp_projection: nn.Module = (
            nn.Linear(talker_hidden, c.hidden_size, bias=True) if c.hidden_size != talker_hidden else nn.Identity()
        )

    def forward_rows(self, rows: Tensor, cache: KVCache, start: int | Tensor, kv_len: int | None = None) -> Tensor:
        """Rows in talker width [B, T, D_talker] → final-normed hidden [B, T, D_predictor] (see
        `Qwen3DecoderStack.forward` for `start` and `kv_len`)."""
        return self.model(self.small_to_mtp_projection(rows), cache, start, kv_len)

    def embed_group(self, group: int, codes: Tensor) -> Tensor:
        """Embedding (talker width) of codebook `group` (1..15) codes, in the compute dtype."""
        return self.model.codec_embedding[group - 1](codes).to(self.model.norm.weight.dtype)

    def logits(self, group: int, hidden: Tensor) -> Tensor:
        """Logits over 2048 codes for codebook `group` (1..15)."""
        return self.lm_head[group - 1](hidden)


class Talker(nn.Module):
    """`talker.*`: text/codec embeddings, the 28-layer (real) decoder, `codec_head` and the code predictor."""

    def __init__(self, config: TalkerConfig) -> None:
        super().__init__()
        self.config = config
        self.model = _TalkerModel(config)
        self.text_projection = _TextProjection(config)
        self.codec_head = nn.Linear(config.transformer.hidden_size, config.transformer.vocab_size, bias=False)
        self.code_predictor = CodePredictor(config.code_predictor, config.transformer.hidden_size)

    @property
    def hidden_size(self) -> int:
        return self.config.transformer.hidden_size

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (embedding tables may be stored narrower; see `lookup_tables`)."""
        return self.model.norm.weight.dtype

    def lookup_tables(self) -> list[str]:
        """The keys of tables that are only looked up (the text embedding is 151,936 x 2,048 on real checkpoints):
        the loader keeps them in the checkpoint's narrower dtype, memory-mapped (see `load_module_weights`), and
        their rows are cast to the compute dtype after lookup, which is exact for the official bfloat16 values."""
        return [f"{name}.weight" for name, m in self.named_modules() if isinstance(m, nn.Embedding)]

    def text_rows(self, ids: Tensor) -> Tensor:
        """P(ids): projected text-token rows, [N, D] for ids [N].

        Projected in zero-padded blocks of `TEXT_BLOCK` rows, whatever N is, so a token's row is bit-identical
        however the text was grouped (whole text, or fragments arriving from an LLM): matrix kernels may round
        differently per batch shape, but one shape gives each row the same arithmetic wherever it sits
        (`tests/model/test_text_rows.py` checks this). One block reads the weights once, where one call per
        token read them per token.
        """
        emb = self.model.text_embedding(ids.reshape(-1)).to(self.dtype)  # [N, text_hidden]
        n = emb.shape[0]
        if n == 0:
            return emb.new_zeros(0, self.hidden_size)
        out = []
        for start in range(0, n, TEXT_BLOCK):
            part = emb[start : start + TEXT_BLOCK]
            block = part.new_zeros(TEXT_BLOCK, part.shape[1])
            block[: part.shape[0]] = part
            out.append(self.text_projection(block)[: part.shape[0]])
        return torch.cat(out) if len(out) > 1 else out[0]

    def codec_rows(self, ids: Tensor) -> Tensor:
        """C(ids): codec/control/speaker rows, [..., D]."""
        return self.model.codec_embedding(ids).to(self.dtype)

    def frame_rows(self, codes: Tensor) -> Tensor:
        """F(frame) = C(c0) + sum_j G_j(c_j) for codes [..., 16] → [..., D].

        Summed as one reduction over a stacked group axis, the same op order as the official code, so
        float32 results match it bit for bit.
        """
        parts = [self.codec_rows(codes[..., 0])]
        parts += [self.code_predictor.embed_group(j, codes[..., j]) for j in range(1, codes.shape[-1])]
        return torch.stack(parts, dim=-2).sum(-2)

    def forward_rows(self, rows: Tensor, cache: KVCache, start: int | Tensor, kv_len: int | None = None) -> Tensor:
        """Prompt or frame rows [B, T, D] → final-normed hidden states [B, T, D] (see `Qwen3DecoderStack`)."""
        return self.model(rows, cache, start, kv_len)

    def logits(self, hidden: Tensor) -> Tensor:
        """Group-0 logits over the 3072-entry codec vocabulary."""
        return self.codec_head(hidden)
