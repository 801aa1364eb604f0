"""Attention rollout (`genre_vit.explain`) on hand-made attention maps, and the model's attention output."""

import numpy as np
import pytest
import torch

from genre_vit import GenreViTConfig, GenreViTForAudioClassification
from genre_vit.explain import attention_rollout

GRID = (13, 9)
TOKENS = 1 + 13 * 9


def uniform(batch=1, heads=2):
    return torch.full((batch, heads, TOKENS, TOKENS), 1.0 / TOKENS)


def test_uniform_attention_gives_a_uniform_map():
    relevance = attention_rollout([uniform(), uniform()], GRID)
    assert relevance.shape == (1, 13, 9)
    np.testing.assert_allclose(relevance, 1.0 / 117, rtol=1e-6)


def test_the_class_token_reading_one_patch_puts_the_weight_there():
    weights = torch.eye(TOKENS).expand(1, 2, TOKENS, TOKENS).clone()
    weights[0, :, 0] = 0
    weights[0, :, 0, 1 + 4 * 9 + 7] = 1.0  # the class token attends only to patch (row 4, column 7)
    relevance = attention_rollout([weights] * 3, GRID)[0]
    assert relevance.sum() == pytest.approx(1.0) and np.unravel_index(relevance.argmax(), GRID) == (4, 7)
    assert relevance[4, 7] == pytest.approx(1.0)


def test_heads_are_averaged_and_rows_renormalised():
    weights = uniform(heads=2).clone()
    weights[0, 0, 0] = 0
    weights[0, 0, 0, 1] = 1.0  # head 0 of the class token reads patch (0, 0) only; head 1 reads everything
    relevance = attention_rollout([weights], GRID)[0]
    # mixed row of the class token: 0.5 * mean of heads + 0.5 * identity; patch part renormalised to sum to 1
    expected = np.full(117, 0.5 * 0.5 / TOKENS)
    expected[0] += 0.5 * 0.5
    np.testing.assert_allclose(relevance.ravel(), expected / expected.sum(), rtol=1e-6)


def test_a_class_token_that_only_reads_itself_falls_back_to_uniform():
    relevance = attention_rollout([torch.eye(TOKENS).expand(1, 1, TOKENS, TOKENS)], GRID)
    np.testing.assert_allclose(relevance, 1.0 / 117)


def test_wrong_token_count_is_an_error():
    with pytest.raises(ValueError, match="patch grid"):
        attention_rollout([torch.ones(1, 1, 10, 10) / 10], GRID)


def test_the_model_returns_one_attention_map_per_block_rows_summing_to_one():
    model = GenreViTForAudioClassification(GenreViTConfig.tiny()).eval()
    windows = torch.rand(2, 1, 216, 144)
    with torch.inference_mode():
        output = model(input_values=windows, output_attentions=True)
        plain = model(input_values=windows)
    assert len(output.attentions) == model.config.num_hidden_layers
    for weights in output.attentions:
        assert weights.shape == (2, model.config.num_attention_heads, TOKENS, TOKENS)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    torch.testing.assert_close(output.logits, plain.logits)  # asking for the maps does not change the answer
    relevance = attention_rollout(output.attentions, model.config.patch_grid)
    assert relevance.shape == (2, 13, 9) and np.allclose(relevance.sum(axis=(1, 2)), 1.0)
