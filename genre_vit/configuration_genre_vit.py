"""GenreViT model configuration.

The defaults describe the seed architecture: a 216x144 (frequency x time) log-Mel image cut into 16x16
patches (a 13x9 grid, 117 patch tokens plus a class token), 8 pre-LayerNorm encoder blocks of width 512,
and a 10-way GTZAN head.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .network import ACTIVATION_NAMES, patch_grid, sequence_length

GTZAN_GENRES: tuple[str, ...] = (
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
"""The GTZAN genres; their order is the label-id order."""


@strict
class GenreViTConfig(PreTrainedConfig):
    r"""
    Configuration of a [`GenreViTModel`] / [`GenreViTForAudioClassification`].

    Args:
        num_frequency_bins (`int`, defaults to 216):
            Height of the input spectrogram image: Mel bins after the bilinear resize (rows, low to high
            frequency).
        num_time_frames (`int`, defaults to 144):
            Width of the input spectrogram image: STFT frames after the bilinear resize (columns, in time order).
        patch_size (`int`, defaults to 16):
            Side of the square patches, which is also the stride of the patch convolution. The patch grid is
            `(num_frequency_bins // patch_size, num_time_frames // patch_size)`; rows or columns left over by
            that floor division are not seen by the convolution (with the defaults, the top 8 of 216 rows, as
            in the reference model).
        hidden_size (`int`, defaults to 512):
            Width of the patch embeddings and of the encoder.
        num_hidden_layers (`int`, defaults to 8):
            Number of pre-LayerNorm encoder blocks.
        num_attention_heads (`int`, defaults to 8):
            Attention heads per block; must divide `hidden_size`.
        intermediate_size (`int`, defaults to 2048):
            Hidden width of each block's feed-forward network.
        hidden_act (`str`, defaults to `"gelu"`):
            Activation of the feed-forward network (one of `genre_vit.network.ACTIVATION_NAMES`).
        hidden_dropout_prob (`float`, defaults to 0.3):
            Dropout on the embeddings, inside the feed-forward network and after the attention projection.
        attention_probs_dropout_prob (`float`, defaults to 0.0):
            Dropout on the attention weights.
        drop_path_rate (`float`, defaults to 0.2):
            Stochastic-depth rate of the last block; block `i` uses `drop_path_rate * i / (num_hidden_layers - 1)`.
        layer_norm_eps (`float`, defaults to 1e-6):
            Epsilon of every LayerNorm.
        qkv_bias (`bool`, defaults to `True`):
            Whether the query/key/value projection has a bias.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the (truncated) normal initialisation of weights, class token and positions.
        spec_augment_num_frequency_masks (`int`, defaults to 2):
            SpecAugment frequency masks per training example (0 disables them). Only active in training mode.
        spec_augment_frequency_mask_width (`int`, defaults to 24):
            Largest width, in rows of the 216-row input, of one frequency mask; each width is drawn uniformly
            from `[0, spec_augment_frequency_mask_width]`.
        spec_augment_num_time_masks (`int`, defaults to 2):
            SpecAugment time masks per training example (0 disables them). Only active in training mode.
        spec_augment_time_mask_width (`int`, defaults to 16):
            Largest width, in columns of the 144-column input, of one time mask.
        patchout_frequency_rows (`int`, defaults to 0), patchout_time_columns (`int`, defaults to 0):
            Structured patchout (Koutini et al., 2022, PaSST): in training, this many random rows (frequency) and
            columns (time) of the patch grid are dropped for the whole batch, which regularises and shortens the
            sequence (fewer tokens, less compute per step). Inference always sees every patch.
        loss_type (`str`, defaults to `"focal"`):
            `"focal"` (focal loss with `focal_loss_gamma`) or `"cross_entropy"`.
        focal_loss_gamma (`float`, defaults to 2.5):
            Focusing parameter of the focal loss; 0 gives plain cross-entropy.
        window_chunk_size (`int`, defaults to 64):
            When the model is given whole songs, `(batch, windows, 1, H, W)`, it runs the windows through the
            encoder this many at a time, so memory stays bounded for long songs.
        temperature (`float`, defaults to 1.0):
            The classifier's logits are divided by this before the softmax. Fitted on held-out tracks of new
            artists (`genre_vit.training.calibration`: the least negative log-likelihood of their answers), it
            brings the probabilities nearer to how often the answers are right there; 1.0 leaves the logits as
            trained.
        genre_distance (`bool`, defaults to `False`):
            Whether the model carries a `GenreViTGenreDistance`: each genre's mean pooled embedding and a whitening
            of the embedding space (buffers `genre_distance.*`, fitted with the classifier on its training windows),
            from which each window gets its distance to the nearest genre it learnt.
        none_of_these_distance (`float`, *optional*):
            A song whose windows lie on average farther than this from the nearest genre (`genre_distance`) is
            answered "none of these genres": it looks like none of the music the classifier learnt. Fitted on
            held-out tracks of new artists (`genre_vit.training.calibration`); None never answers so.
    """

    model_type = "genre_vit"

    num_frequency_bins: int = 216
    num_time_frames: int = 144
    patch_size: int = 16
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.3
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.2
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    initializer_range: float = 0.02
    spec_augment_num_frequency_masks: int = 2
    spec_augment_frequency_mask_width: int = 24
    spec_augment_num_time_masks: int = 2
    spec_augment_time_mask_width: int = 16
    patchout_frequency_rows: int = 0
    patchout_time_columns: int = 0
    loss_type: Literal["focal", "cross_entropy"] = "focal"
    focal_loss_gamma: float | int = 2.5
    window_chunk_size: int = 64
    temperature: float | int = 1.0
    genre_distance: bool = False
    none_of_these_distance: float | int | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            self.id2label = dict(enumerate(GTZAN_GENRES))
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: int(index) for index, label in self.id2label.items()}
        super().__post_init__(**kwargs)

    @property
    def patch_grid(self) -> tuple[int, int]:
        """Patch tokens along (frequency, time): `(13, 9)` with the defaults."""
        return patch_grid(self)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens: 117 with the defaults."""
        rows, columns = self.patch_grid
        return rows * columns

    @property
    def sequence_length(self) -> int:
        """Tokens the encoder sees, the class token included: 118 with the defaults."""
        return sequence_length(self)

    def validate_architecture(self):
        """Part of `@strict` validation: the shapes must fit together."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be positive, got {self.patch_size}.")
        if self.patch_size > min(self.num_frequency_bins, self.num_time_frames):
            raise ValueError(
                f"patch_size ({self.patch_size}) does not fit the {self.num_frequency_bins}x{self.num_time_frames} "
                "input: the patch grid would be empty."
            )
        if self.loss_type not in ("focal", "cross_entropy"):
            raise ValueError(f"loss_type must be 'focal' or 'cross_entropy', got {self.loss_type!r}.")
        if self.hidden_act not in ACTIVATION_NAMES:
            raise ValueError(f"hidden_act must be one of {', '.join(ACTIVATION_NAMES)}, got {self.hidden_act!r}.")
        if self.window_chunk_size < 1:
            raise ValueError(f"window_chunk_size must be positive, got {self.window_chunk_size}.")
        rows, columns = self.patch_grid
        if not (0 <= self.patchout_frequency_rows < rows and 0 <= self.patchout_time_columns < columns):
            raise ValueError(
                f"Patchout must leave patches: at most {rows - 1} of {rows} rows and {columns - 1} of {columns} "
                f"columns, got {self.patchout_frequency_rows} and {self.patchout_time_columns}."
            )
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}.")
        if self.none_of_these_distance is not None and not self.genre_distance:
            raise ValueError("none_of_these_distance needs a model with a genre distance (genre_distance=True).")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")

    @classmethod
    def tiny(cls, **overrides) -> "GenreViTConfig":
        """A small configuration with the product's input size and labels, for tests and quick CPU runs.

        It keeps the 216x144 input and 16x16 patches, so it works with the same feature extractor, but has
        2 blocks of width 64: about 0.2 M parameters instead of 25 M. Regularisation is scaled down with the
        model (no dropout or drop path, one SpecAugment mask per axis): the seed model's dropout 0.3 and drop
        path 0.2 keep a 64-wide model from learning even clearly separable classes in a few epochs.
        """
        settings = dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            hidden_dropout_prob=0.0,
            drop_path_rate=0.0,
            spec_augment_num_frequency_masks=1,
            spec_augment_num_time_masks=1,
        )
        settings.update(overrides)
        return cls(**settings)


# save_pretrained writes this source file next to the weights, for `trust_remote_code=True` loading.
GenreViTConfig.register_for_auto_class()

__all__ = ["GTZAN_GENRES", "GenreViTConfig"]
