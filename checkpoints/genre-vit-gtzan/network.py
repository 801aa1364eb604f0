"""GenreViT's network in plain PyTorch: the one implementation of its layers, forward pass and genre head.

`modeling_genre_vit` gives these same modules the Hugging Face `PreTrainedModel` around them (saving, loading, the
Auto classes, the Trainer, gradient checkpointing, `output_attentions` / `output_hidden_states`); `GenreViTNetwork`
is the same network for inference alone, read straight from a model folder (`GenreViTNetwork.from_folder`). Why two
doors to one network: importing `transformers.modeling_utils` costs about 3 s of a cold command-line start on a
2-core CPU, longer than analysing a 3-minute song, so analysis imports only torch, numpy and huggingface_hub.

Every module takes the configuration: a `GenreViTConfig`, or the `StoredConfig` that `from_folder` reads. Shapes:
`N` windows, `F x W` the input image (216x144 by default), `D` = `hidden_size`, `S` = `sequence_length(config)`
tokens (118 by default), `C` = `num_labels`.
"""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"


def patch_grid(config) -> tuple[int, int]:
    """Patch tokens along (frequency, time): `(13, 9)` with the defaults. Rows or columns left over by the floor
    division are not seen by the patch convolution."""
    return (config.num_frequency_bins // config.patch_size, config.num_time_frames // config.patch_size)


def sequence_length(config) -> int:
    """Tokens the encoder sees, the class token included: 118 with the defaults."""
    rows, columns = patch_grid(config)
    return rows * columns + 1


# transformers' ACT2FN holds the same functions under these names; importing `transformers.activations` costs about
# 1.8 s of a cold start, so the few the config accepts are named here.
_ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
    "silu": lambda: nn.SiLU(),
    "swish": lambda: nn.SiLU(),
}
ACTIVATION_NAMES = tuple(_ACTIVATIONS)
"""The values `hidden_act` may take (names as in `transformers.activations.ACT2FN`, with the same functions)."""


def activation(name: str) -> nn.Module:
    """The feed-forward activation called `name` (one of `ACTIVATION_NAMES`)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown hidden_act {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}.")
    return _ACTIVATIONS[name]()


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean focal loss `-(1 - p_t)^gamma * log(p_t)` (Lin et al., 2017); `gamma = 0` is cross-entropy.

    Args:
        logits: `(N, C)` unnormalised scores (log-probabilities are fine too).
        labels: `(N,)` class ids.
        gamma: focusing parameter, >= 0.
    """
    log_probabilities = F.log_softmax(logits.float(), dim=-1)
    log_true = log_probabilities.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return (-((1.0 - log_true.exp()) ** gamma) * log_true).mean()


class GenreViTSpecAugment(nn.Module):
    """SpecAugment masking (Park et al., 2019) of frequency rows and time columns; identity outside training.

    Each example gets `spec_augment_num_frequency_masks` bands of rows and `spec_augment_num_time_masks` bands of
    columns set to 0 (the minimum of the [0, 1]-normalised input). Widths are uniform in `[0, max width]`, positions
    uniform over the image, drawn independently per example from torch's global generator (seeded by the trainer).
    """

    def __init__(self, config):
        super().__init__()
        self.num_frequency_masks = config.spec_augment_num_frequency_masks
        self.frequency_mask_width = min(config.spec_augment_frequency_mask_width, config.num_frequency_bins)
        self.num_time_masks = config.spec_augment_num_time_masks
        self.time_mask_width = min(config.spec_augment_time_mask_width, config.num_time_frames)

    @staticmethod
    def _band_mask(batch: int, size: int, num_masks: int, max_width: int, device: torch.device) -> torch.Tensor:
        """`(batch, size)` boolean mask, True inside any of `num_masks` random bands."""
        widths = torch.randint(0, max_width + 1, (batch, num_masks, 1), device=device)
        starts = (torch.rand(batch, num_masks, 1, device=device) * (size - widths + 1)).long()
        positions = torch.arange(size, device=device).view(1, 1, size)
        return ((positions >= starts) & (positions < starts + widths)).any(dim=1)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """`(N, 1, F, W)` -> `(N, 1, F, W)`, masked in training mode only."""
        if not self.training:
            return input_values
        batch, _, height, width = input_values.shape
        masked = torch.zeros(batch, height, width, dtype=torch.bool, device=input_values.device)
        if self.num_frequency_masks > 0 and self.frequency_mask_width > 0:
            rows = self._band_mask(batch, height, self.num_frequency_masks, self.frequency_mask_width, masked.device)
            masked |= rows.unsqueeze(2)
        if self.num_time_masks > 0 and self.time_mask_width > 0:
            columns = self._band_mask(batch, width, self.num_time_masks, self.time_mask_width, masked.device)
            masked |= columns.unsqueeze(1)
        return input_values.masked_fill(masked.unsqueeze(1), 0.0)


class GenreViTEmbeddings(nn.Module):
    """Patch embedding (a `patch_size`-strided convolution), class token and learnable position table.

    `(N, 1, F, W)` -> `(N, S, D)`.
    """

    def __init__(self, config):
        super().__init__()
        self.expected_size = (config.num_frequency_bins, config.num_time_frames)
        self.patch_grid = patch_grid(config)
        self.patchout = (config.patchout_frequency_rows, config.patchout_time_columns)
        self.patch_embeddings = nn.Conv2d(
            1, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, sequence_length(config), config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def _patch_out(self, patches: torch.Tensor) -> torch.Tensor:
        """Training only: drop `patchout` random rows and columns of the `(N, rows, columns, D)` grid, the same for
        the whole batch, so the sequence gets shorter. `(N, rows, columns, D)` -> `(N, kept tokens, D)`."""
        rows, columns = self.patch_grid
        drop_rows, drop_columns = self.patchout
        kept_rows = torch.randperm(rows, device=patches.device)[: rows - drop_rows].sort().values
        kept_columns = torch.randperm(columns, device=patches.device)[: columns - drop_columns].sort().values
        return patches[:, kept_rows][:, :, kept_columns].flatten(1, 2)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        if input_values.ndim != 4 or input_values.shape[1] != 1 or tuple(input_values.shape[2:]) != self.expected_size:
            raise ValueError(
                f"GenreViT expects windows of shape (N, 1, {self.expected_size[0]}, {self.expected_size[1]}), "
                f"got {tuple(input_values.shape)}. Use the model's GenreViTFeatureExtractor to make them."
            )
        # float32 features work whatever the parameters' dtype (e.g. a float16 checkpoint loaded as stored).
        patches = self.patch_embeddings(input_values.to(self.patch_embeddings.weight.dtype)).flatten(2).transpose(1, 2)
        patches = patches + self.position_embeddings[:, 1:]
        if self.training and any(self.patchout):
            patches = self._patch_out(patches.unflatten(1, self.patch_grid))
        cls_tokens = (self.cls_token + self.position_embeddings[:, :1]).expand(patches.shape[0], -1, -1)
        return self.dropout(torch.cat([cls_tokens, patches], dim=1))


class GenreViTDropPath(nn.Module):
    """Stochastic depth: drops a residual branch for whole examples, scaling the kept ones by `1 / keep`."""

    def __init__(self, drop_probability: float):
        super().__init__()
        self.drop_probability = drop_probability

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_probability == 0.0:
            return hidden_states
        keep = 1.0 - self.drop_probability
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        mask = hidden_states.new_empty(shape).bernoulli_(keep)
        return hidden_states * mask / keep


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, as transformers' model files define it: query, key and value `(N, heads, S,
    head_dim)` -> output `(N, S, heads, head_dim)` and weights `(N, heads, S, S)` (rows sum to 1 over the keys)."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(F.dropout(weights, p=dropout, training=module.training), value)
    return output.transpose(1, 2).contiguous(), weights


def sdpa_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """`torch.nn.functional.scaled_dot_product_attention` with the interface of `eager_attention_forward`; it never
    forms the weights, so it returns None for them."""
    output = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling
    )
    return output.transpose(1, 2).contiguous(), None


def attention_function(implementation: str | None) -> Callable:
    """The attention kernel that `config._attn_implementation` names: `"sdpa"` (the default) and `"eager"` are
    defined here, any other name (e.g. `"flex_attention"`, or one registered with `AttentionInterface.register`) is
    looked up in transformers' `ALL_ATTENTION_FUNCTIONS`, imported only then."""
    if implementation in (None, "sdpa"):
        return sdpa_attention_forward
    if implementation == "eager":
        return eager_attention_forward
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)


class GenreViTAttention(nn.Module):
    """Multi-head self-attention. `(N, S, D)` -> `(N, S, D)`, and the attention weights `(N, heads, S, S)` when asked.

    `config._attn_implementation` chooses the kernel (`attention_function`). Asking for the weights computes them
    the eager way whatever the choice, since the fused kernels never form them.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.attention_dropout = config.attention_probs_dropout_prob
        self.projection = nn.Linear(config.hidden_size, config.hidden_size)
        self.projection_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, tokens, width = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)
        implementation = "eager" if output_attentions else getattr(self.config, "_attn_implementation", None)
        attended, weights = attention_function(implementation)(
            self,
            query,
            key,
            value,
            None,
            scaling=self.scaling,
            dropout=self.attention_dropout if self.training else 0.0,
        )
        attended = attended.reshape(batch, tokens, width)
        return self.projection_dropout(self.projection(attended)), weights if output_attentions else None


class GenreViTFeedForward(nn.Module):
    """`D -> intermediate_size -> D` with the configured activation and dropout after each layer."""

    def __init__(self, config):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = activation(config.hidden_act)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class GenreViTLayer(nn.Module):
    """Pre-LayerNorm encoder block: `x + DropPath(Attn(LN(x)))`, then `x + DropPath(FFN(LN(x)))`."""

    def __init__(self, config, drop_path_rate: float):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GenreViTAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = GenreViTFeedForward(config)
        self.drop_path = GenreViTDropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(self.layernorm_before(hidden_states), output_attentions)
        hidden_states = hidden_states + self.drop_path(attended)
        return hidden_states + self.drop_path(self.feed_forward(self.layernorm_after(hidden_states))), weights


class GenreViTEncoderParts:
    """The encoder's parts and its forward pass, for the module that holds them: the plain `GenreViTEncoder`, or the
    Hugging Face `GenreViTModel`, so that both hold the same parts under the same names (`embeddings.*`, `layers.N.*`,
    ...) and run the same code.

    Gradient checkpointing: `PreTrainedModel.gradient_checkpointing_enable` sets `gradient_checkpointing` and
    `_gradient_checkpointing_func` on every module that has the flag, as on this one; the plain encoder uses
    `torch.utils.checkpoint` when its flag is set by hand.
    """

    gradient_checkpointing = False

    def _build_encoder(self, config) -> None:
        self.spec_augment = GenreViTSpecAugment(config)
        self.embeddings = GenreViTEmbeddings(config)
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList([GenreViTLayer(config, rate) for rate in rates])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def _checkpointed(self, layer: nn.Module, *arguments):
        function = getattr(self, "_gradient_checkpointing_func", None)
        if function is None:
            from functools import partial

            from torch.utils.checkpoint import checkpoint

            function = partial(checkpoint, use_reentrant=False)
        return function(layer.__call__, *arguments)

    def encode(
        self, input_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """SpecAugment (training only), embeddings, the encoder blocks and the final LayerNorm.

        `(N, 1, F, W)` -> `(last_hidden_state (N, S, D), hidden_states, attentions)`: `hidden_states` holds the
        states entering each block and the last block's output (`num_hidden_layers + 1` tensors `(N, S, D)`) when
        asked for, `attentions` each block's weights `(N, heads, S, S)` when asked for; else they are None.
        """
        hidden_states = self.embeddings(self.spec_augment(input_values))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if checkpointing:
                hidden_states, weights = self._checkpointed(layer, hidden_states, output_attentions)
            else:
                hidden_states, weights = layer(hidden_states, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        return self.layernorm(hidden_states), all_hidden_states, all_attentions


class GenreViTEncoder(GenreViTEncoderParts, nn.Module):
    """The encoder as a plain module: `GenreViTEncoderParts.encode` is its forward pass."""

    def __init__(self, config):
        super().__init__()
        self._build_encoder(config)

    def forward(
        self, input_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        return self.encode(input_values, output_hidden_states, output_attentions)


class GenreViTGenreDistance(nn.Module):
    """How far a pooled embedding lies from every genre the classifier learnt: the Mahalanobis distance to the
    nearest genre's mean embedding, under one covariance shared by the genres, divided by `sqrt(hidden_size)`
    (so that an embedding as typical as the training windows is about 1 away, whatever the width).

    A classifier answers every input with some genre; this says whether the input looks like any of them. The
    buffers are fitted with the classifier on its training windows (`genre_vit.training.linear_probe`):
    `whitening` `(D, D)` is the inverse square root of the shared within-genre covariance, and `whitened_means`
    `(C, D)` are the genres' mean embeddings times it. They are buffers, not parameters: nothing trains them.
    """

    def __init__(self, config):
        super().__init__()
        self.register_buffer("whitening", torch.eye(config.hidden_size))
        self.register_buffer("whitened_means", torch.zeros(config.num_labels, config.hidden_size))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled embeddings `(N, D)` -> distances `(N,)` to the nearest genre, float32."""
        whitened = pooled.float() @ self.whitening.float().T
        distances = torch.cdist(whitened, self.whitened_means.float())
        return distances.min(dim=-1).values / pooled.shape[-1] ** 0.5


class GenreViTClassifierParts:
    """The genre head on the encoder held as `genre_vit`, for `GenreViTNetwork` and the Hugging Face
    `GenreViTForAudioClassification` alike (the same names: `genre_vit.*`, `classifier.*`, `genre_distance.*`).

    The logits are the classifier's divided by `config.temperature` (fitted on held-out tracks, so that the
    probabilities mean what they say). With `config.genre_distance`, the model also carries a
    `GenreViTGenreDistance` (None otherwise), which says how far a window lies from every genre it learnt."""

    def _build_head(self, config) -> None:
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.genre_distance = GenreViTGenreDistance(config) if getattr(config, "genre_distance", False) else None

    def set_genre_distance(self, whitening: torch.Tensor, whitened_means: torch.Tensor) -> None:
        """Give the model its genre distance (`(D, D)` and `(C, D)` tensors, see `GenreViTGenreDistance`), creating
        the module if it has none, and say so in its config."""
        if self.genre_distance is None:
            self.genre_distance = GenreViTGenreDistance(self.config).to(self.classifier.weight.device)
        with torch.no_grad():
            self.genre_distance.whitening.copy_(whitening)
            self.genre_distance.whitened_means.copy_(whitened_means)
        self.config.genre_distance = True

    def forward_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """Tokens `(N, S, D)` after the final LayerNorm, for windows `(N, 1, F, W)` (as timm's `forward_features`).
        The encoder is called as a module, so its hooks run; the first item of its output is the last hidden state
        for both encoders."""
        return self.genre_vit(input_values)[0]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens `(N, S, D)` -> the pooled embedding `(N, D)` (the class token) with `pre_logits`, else logits
        `(N, C)` (as timm's `forward_head`)."""
        pooled = tokens[:, 0]
        return pooled if pre_logits else self.classifier(pooled) / getattr(self.config, "temperature", 1.0)

    def window_genre_distances(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """Tokens `(N, S, D)` -> each window's distance to the nearest genre `(N,)` (`GenreViTGenreDistance`), or
        None for a model without a genre distance."""
        if self.genre_distance is None:
            return None
        return self.genre_distance(self.forward_head(tokens, pre_logits=True))

    def encode_with_attentions(self, input_values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Tokens `(N, S, D)` and every block's attention weights `(N, heads, S, S)`."""
        tokens, _, attentions = self.genre_vit.encode(input_values, output_attentions=True)
        return tokens, attentions


def read_json(path: Path) -> dict:
    """A model folder's JSON file; any failure to read or parse it is an `OSError` that names the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OSError(f"Cannot read {path}: {error}") from error


class StoredConfig:
    """A saved `config.json`, read without transformers: its values as read-only attributes, label ids as ints.

    It is a reader, not a second configuration class: `GenreViTConfig` (which needs transformers'
    `configuration_utils`, about 0.8 s of a cold start) defines and checks the fields and writes the file; this
    reads back what it wrote, enough to build a `GenreViTNetwork`.
    """

    def __init__(self, values: Mapping):
        values = dict(values)
        id2label = {int(index): label for index, label in values.get("id2label", {}).items()}
        values["id2label"] = MappingProxyType(id2label)
        values["num_labels"] = len(id2label)
        self._values = MappingProxyType(values)

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"The stored config has no {name!r}.") from None

    def __setattr__(self, name: str, value) -> None:
        if name != "_values" or "_values" in self.__dict__:
            raise AttributeError(f"The stored config is read-only; replace(...) makes a changed copy, not {name!r}.")
        super().__setattr__(name, value)

    def replace(self, **changes) -> "StoredConfig":
        """A copy with some values changed (e.g. `temperature=1.0`), the original untouched."""
        values = dict(self._values) | changes
        values["id2label"] = dict(values["id2label"])
        return StoredConfig(values)

    @property
    def patch_grid(self) -> tuple[int, int]:
        return patch_grid(self)

    @classmethod
    def from_folder(cls, folder: str | Path) -> "StoredConfig":
        path = Path(folder) / CONFIG_FILE
        values = read_json(path)
        if values.get("model_type") != "genre_vit":
            raise ValueError(f"{path} describes a {values.get('model_type')!r} model, not a genre_vit one.")
        return cls(values)


class GenreViTNetwork(GenreViTClassifierParts, nn.Module):
    """The encoder and the linear genre head on the pooled embedding (the class token after the final LayerNorm):
    the parameters, names and code of `GenreViTForAudioClassification`, without transformers. For windows
    `(N, 1, F, W)`, `forward` gives logits `(N, C)`."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.genre_vit = GenreViTEncoder(config)
        self._build_head(config)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(input_values))

    @classmethod
    def from_folder(cls, folder: str | Path) -> "GenreViTNetwork":
        """Build the network of a saved GenreViT model folder and load its weights (one safetensors file, or the
        shards its index names, each read by `huggingface_hub.load_state_dict_from_file`) as float32, whatever
        dtype they were stored in. Raises `OSError` for missing or unreadable files, `ValueError` for weights that
        do not fit."""
        from huggingface_hub import load_state_dict_from_file

        folder = Path(folder)
        config = StoredConfig.from_folder(folder)
        # Built on the meta device and given the stored tensors (`assign`): random initialisation of 25M weights,
        # or `to_empty` (whose first call imports sympy), would cost a cold start 0.2-0.4 s.
        with torch.device("meta"):
            network = cls(config)
        state = {}
        for path in _weight_files(folder):
            try:
                state.update(load_state_dict_from_file(path))
            except Exception as error:  # safetensors raises its own error types for damaged files
                raise OSError(f"Cannot read the weights in {path}: {error}") from error
        expected = network.state_dict()
        missing = sorted(set(expected) - set(state))
        if missing:
            raise ValueError(f"The weights in {folder} lack {len(missing)} tensors, e.g. {missing[0]}.")
        for name, parameter in expected.items():
            if state[name].shape != parameter.shape:
                raise ValueError(
                    f"The weights in {folder} do not fit the config: {name} is {tuple(state[name].shape)}, "
                    f"expected {tuple(parameter.shape)}."
                )
        network.load_state_dict({name: state[name].float() for name in expected}, assign=True)
        return network.eval()


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a saved model: the shards its index names, or the single file."""
    index = folder / SAFETENSORS_INDEX_FILE
    if index.is_file():
        return [folder / name for name in sorted(set(read_json(index)["weight_map"].values()))]
    if (folder / SAFETENSORS_FILE).is_file():
        return [folder / SAFETENSORS_FILE]
    raise OSError(f"{folder} has no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}.")


__all__ = [
    "ACTIVATION_NAMES",
    "GenreViTAttention",
    "GenreViTClassifierParts",
    "GenreViTDropPath",
    "GenreViTEmbeddings",
    "GenreViTEncoder",
    "GenreViTEncoderParts",
    "GenreViTFeedForward",
    "GenreViTGenreDistance",
    "GenreViTLayer",
    "GenreViTNetwork",
    "GenreViTSpecAugment",
    "StoredConfig",
    "activation",
    "attention_function",
    "eager_attention_forward",
    "focal_loss",
    "patch_grid",
    "read_json",
    "sdpa_attention_forward",
    "sequence_length",
]
