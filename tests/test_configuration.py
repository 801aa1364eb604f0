import pytest

from genre_vit import GTZAN_GENRES, GenreViTConfig


def test_defaults_are_the_seed_architecture():
    config = GenreViTConfig()
    assert (config.num_frequency_bins, config.num_time_frames, config.patch_size) == (216, 144, 16)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (512, 8, 8)
    assert config.intermediate_size == 2048 and config.hidden_act == "gelu"
    assert config.hidden_dropout_prob == 0.3 and config.drop_path_rate == 0.2
    assert config.loss_type == "focal" and config.focal_loss_gamma == 2.5


def test_patch_grid_and_sequence_length_are_derived():
    config = GenreViTConfig()
    assert config.patch_grid == (13, 9)
    assert config.num_patches == 117
    assert config.sequence_length == 118
    other = GenreViTConfig(num_frequency_bins=128, num_time_frames=64, patch_size=32)
    assert other.patch_grid == (4, 2) and other.sequence_length == 9


def test_labels_follow_gtzan_order():
    config = GenreViTConfig()
    assert GTZAN_GENRES == (
        "blues",
        "classical",
        "country",
        "disco",
        "hiphop",
        "jazz",
        "metal",
        "pop",
        "reggae",
        "rock",
    )
    assert [config.id2label[i] for i in range(10)] == list(GTZAN_GENRES)
    assert config.label2id == {genre: i for i, genre in enumerate(GTZAN_GENRES)}
    assert config.num_labels == 10


def test_custom_labels_are_kept():
    config = GenreViTConfig(id2label={0: "a", 1: "b"})
    assert config.num_labels == 2 and config.label2id == {"a": 0, "b": 1}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_size=100), "multiple of num_attention_heads"),
        (dict(patch_size=300), "patch grid would be empty"),
        (dict(drop_path_rate=1.5), "drop_path_rate"),
        (dict(window_chunk_size=0), "window_chunk_size"),
    ],
)
def test_invalid_configs_raise_clear_errors(overrides, message):
    with pytest.raises(Exception, match=message):
        GenreViTConfig(**overrides)


def test_round_trip(tmp_path):
    config = GenreViTConfig.tiny(spec_augment_num_time_masks=3)
    config.save_pretrained(tmp_path)
    loaded = GenreViTConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.hidden_size == 64 and loaded.spec_augment_num_time_masks == 3
