"""Projected text rows do not depend on how the text is grouped: a token's row is bit-identical whether it is
projected alone, with its neighbours, or at any place in a longer text (what makes LLM fragments give exactly
the speech of the whole text)."""

from __future__ import annotations

import random

import pytest
import torch

from qwen3tts_realtime.model.config import Qwen3TTSConfig
from qwen3tts_realtime.model.random_checkpoint import packaged_config
from qwen3tts_realtime.model.talker import TEXT_BLOCK, Talker


@pytest.fixture(scope="module")
def talker_full_width():
    """A talker with the real 0.6B text-projection widths (2048 -> 2048 -> 1024), random weights, one layer."""
    config = packaged_config("0.6B-CustomVoice")
    config["talker_config"]["num_hidden_layers"] = 1
    config["talker_config"]["code_predictor_config"]["num_hidden_layers"] = 1
    torch.manual_seed(0)
    return Talker(Qwen3TTSConfig.from_dict(config).talker).eval()


@pytest.mark.parametrize("n", [1, 5, TEXT_BLOCK, TEXT_BLOCK + 1, 3 * TEXT_BLOCK + 7])
def test_each_row_equals_the_token_projected_alone(talker_full_width, n):
    ids = torch.randint(0, 150_000, (n,), generator=torch.Generator().manual_seed(n))
    with torch.inference_mode():
        whole = talker_full_width.text_rows(ids)
        alone = torch.cat([talker_full_width.text_rows(ids[i : i + 1]) for i in range(n)])
    assert whole.shape == (n, 1024)
    assert torch.equal(whole, alone)


def test_random_groupings_give_identical_rows(talker_full_width):
    rng = random.Random(0)
    ids = torch.randint(0, 150_000, (80,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = talker_full_width.text_rows(ids)
        for _ in range(5):
            cuts = sorted(rng.sample(range(1, 80), rng.randint(1, 12)))
            parts = [talker_full_width.text_rows(p) for p in torch.tensor_split(ids, cuts)]
            assert torch.equal(torch.cat(parts), whole)
