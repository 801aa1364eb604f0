import pytest
import torch
import torch.nn.functional as F

from genre_vit import GenreViTConfig, GenreViTForAudioClassification, GenreViTModel
from genre_vit.network import GenreViTSpecAugment, focal_loss

REFERENCE_PARAMETERS = 25_356_810  # conv + 8 blocks + final LayerNorm + head, as the reference counts them
POSITION_TABLE_AND_CLASS_TOKEN = 118 * 512 + 512  # 60,928


def test_default_parameter_count_is_exact():
    model = GenreViTForAudioClassification(GenreViTConfig())
    total = sum(p.numel() for p in model.parameters())
    embeddings = model.genre_vit.embeddings
    learned_tokens = embeddings.position_embeddings.numel() + embeddings.cls_token.numel()
    assert learned_tokens == POSITION_TABLE_AND_CLASS_TOKEN == 60_928
    assert total - learned_tokens == REFERENCE_PARAMETERS
    assert total == 25_417_738


def test_window_shapes(tiny_model):
    config = tiny_model.config
    windows = torch.rand(3, 1, 216, 144)
    with torch.inference_mode():
        output = tiny_model(windows, output_hidden_states=True)
        tokens = tiny_model.forward_features(windows)
        pooled = tiny_model.forward_head(tokens, pre_logits=True)
        logits = tiny_model.forward_head(tokens)
    assert output.logits.shape == (3, 10)
    assert tokens.shape == (3, 118, config.hidden_size)  # timm's naming: forward_features returns the tokens
    assert pooled.shape == (3, config.hidden_size) and torch.equal(pooled, tokens[:, 0])
    torch.testing.assert_close(logits, output.logits)
    assert len(output.hidden_states) == config.num_hidden_layers + 1
    assert output.hidden_states[-1].shape == (3, 118, config.hidden_size)
    assert output.window_logits is None


def test_base_model_outputs(tiny_model):
    base = GenreViTModel(tiny_model.config).eval()
    with torch.inference_mode():
        output = base(torch.rand(2, 1, 216, 144))
    assert output.last_hidden_state.shape == (2, 118, 64)
    assert torch.equal(output.pooler_output, output.last_hidden_state[:, 0])


def test_wrong_input_shape_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match=r"\(N, 1, 216, 144\)"):
        tiny_model(torch.rand(2, 1, 128, 144))


def test_song_input_averages_window_probabilities(tiny_model):
    windows = torch.rand(5, 1, 216, 144)
    with torch.inference_mode():
        per_window = tiny_model(windows).logits.softmax(-1)
        songs = torch.zeros(2, 3, 1, 216, 144)
        songs[0, :3], songs[1, :2] = windows[:3], windows[3:]
        mask = torch.tensor([[True, True, True], [True, True, False]])
        output = tiny_model(songs, window_mask=mask)
    assert output.logits.shape == (2, 10) and output.window_logits.shape == (2, 3, 10)
    torch.testing.assert_close(output.logits.softmax(-1)[0], per_window[:3].mean(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.logits.softmax(-1)[1], per_window[3:].mean(0), atol=1e-6, rtol=1e-5)
    assert torch.all(output.window_logits[1, 2] == 0)


def test_song_input_is_chunked(tiny_model):
    config = GenreViTConfig.tiny(window_chunk_size=2)
    chunked = GenreViTForAudioClassification(config).eval()
    chunked.load_state_dict(tiny_model.state_dict())
    songs = torch.rand(1, 5, 1, 216, 144)
    calls = []
    handle = chunked.genre_vit.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    with torch.inference_mode():
        logits = chunked(songs).logits
    handle.remove()
    assert calls == [2, 2, 1]
    with torch.inference_mode():
        torch.testing.assert_close(logits, tiny_model(songs).logits)


def test_empty_song_is_rejected(tiny_model):
    with pytest.raises(ValueError, match="at least one real window"):
        tiny_model(torch.rand(1, 2, 1, 216, 144), window_mask=torch.zeros(1, 2, dtype=torch.bool))


def test_spec_augment_only_in_training():
    augment = GenreViTSpecAugment(GenreViTConfig())
    spectrogram = torch.rand(8, 1, 216, 144) + 0.5
    augment.eval()
    assert torch.equal(augment(spectrogram), spectrogram)
    augment.train()
    torch.manual_seed(0)
    masked = augment(spectrogram)
    zero = masked == 0
    assert zero.any()
    # Masks are whole rows or whole columns of an example.
    for example in zero[:, 0]:
        rows, columns = example.all(dim=1), example.all(dim=0)
        assert torch.equal(example, rows[:, None] | columns[None, :])
        assert rows.sum() <= 2 * 24 and columns.sum() <= 2 * 16


def test_eval_is_deterministic_and_training_is_stochastic(tiny_model):
    windows = torch.rand(4, 1, 216, 144)
    with torch.inference_mode():
        assert torch.equal(tiny_model(windows).logits, tiny_model(windows).logits)
    tiny_model.train()
    try:
        assert not torch.equal(tiny_model(windows).logits, tiny_model(windows).logits)
    finally:
        tiny_model.eval()


def test_focal_loss_matches_formula_and_cross_entropy():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    torch.testing.assert_close(focal_loss(logits, labels, gamma=0.0), F.cross_entropy(logits, labels))
    p_true = logits.softmax(-1)[torch.arange(16), labels]
    expected = (-((1 - p_true) ** 2.5) * p_true.log()).mean()
    torch.testing.assert_close(focal_loss(logits, labels, gamma=2.5), expected)


@pytest.mark.parametrize("loss_type", ["focal", "cross_entropy"])
def test_loss_follows_config(loss_type, tiny_model):
    model = GenreViTForAudioClassification(GenreViTConfig.tiny(loss_type=loss_type)).eval()
    model.load_state_dict(tiny_model.state_dict())
    windows, labels = torch.rand(4, 1, 216, 144), torch.tensor([0, 3, 5, 9])
    output = model(windows, labels=labels)
    gamma = 2.5 if loss_type == "focal" else 0.0
    torch.testing.assert_close(output.loss, focal_loss(output.logits, labels, gamma))
    output.loss.backward()
    assert model.classifier.weight.grad is not None


def test_drop_path_is_identity_when_disabled():
    model = GenreViTModel(GenreViTConfig.tiny(drop_path_rate=0.0))
    assert all(isinstance(layer.drop_path, torch.nn.Identity) for layer in model.layers)
    model = GenreViTModel(GenreViTConfig.tiny(num_hidden_layers=3, drop_path_rate=0.2))
    rates = [layer.drop_path.drop_probability for layer in model.layers[1:]]
    assert rates == pytest.approx([0.1, 0.2])  # linear from 0 in the first block to drop_path_rate in the last


def test_attention_maps_are_returned_when_asked(tiny_model):
    windows = torch.rand(2, 1, 216, 144)
    with torch.inference_mode():
        plain = tiny_model(windows)
        output = tiny_model(windows, output_attentions=True)
    config = tiny_model.config
    assert plain.attentions is None
    assert len(output.attentions) == config.num_hidden_layers
    for weights in output.attentions:
        assert weights.shape == (2, config.num_attention_heads, 118, 118)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, config.num_attention_heads, 118))
    torch.testing.assert_close(output.logits, plain.logits, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="only available for window input"):
        tiny_model(windows.unsqueeze(0), output_attentions=True)


def test_eager_and_sdpa_attention_agree(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    windows = torch.rand(2, 1, 216, 144)
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = GenreViTForAudioClassification.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert model.config._attn_implementation == implementation
        with torch.inference_mode():
            logits[implementation] = model(windows).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], rtol=1e-4, atol=1e-5)


def test_unknown_arguments_of_the_base_model_are_refused(tiny_model):
    with pytest.raises(TypeError, match="unexpected arguments: attn_mask"):
        GenreViTModel(tiny_model.config)(torch.rand(1, 1, 216, 144), attn_mask=None)


def test_gradient_checkpointing_gives_the_same_gradients():
    """`gradient_checkpointing_enable()` recomputes each block in the backward pass instead of keeping its
    activations; the loss and every gradient stay the same."""

    def gradients(checkpointing: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = GenreViTForAudioClassification(GenreViTConfig.tiny()).train()
        if checkpointing:
            # transformers 5.x renamed gradient_checkpointing_enable; both set the same module flags
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
            assert model.genre_vit.gradient_checkpointing
        torch.manual_seed(1)  # the same SpecAugment masks in both runs
        loss = model(torch.rand(4, 1, 216, 144), labels=torch.tensor([0, 1, 2, 3])).loss
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain = gradients(False)
    checkpointed_loss, checkpointed = gradients(True)
    torch.testing.assert_close(checkpointed_loss, plain_loss)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)


def test_attention_kernels_registered_with_transformers_are_used(tiny_model):
    """A name other than eager/sdpa is looked up in transformers' ALL_ATTENTION_FUNCTIONS."""
    from transformers import AttentionInterface

    from genre_vit.network import eager_attention_forward

    calls = []

    def counting_attention(module, query, key, value, attention_mask, **kwargs):
        calls.append(query.shape)
        return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("genre_vit_test_counting", counting_attention)
    windows = torch.rand(2, 1, 216, 144)
    with torch.inference_mode():
        expected = tiny_model(windows).logits
        tiny_model.set_attn_implementation("genre_vit_test_counting")
        try:
            logits = tiny_model(windows).logits
        finally:
            tiny_model.set_attn_implementation("sdpa")
    assert len(calls) == tiny_model.config.num_hidden_layers
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
