"""GenreViT: a Vision Transformer over log-Mel spectrogram windows, for music-genre classification.

Shapes use these names: `N` windows, `B` songs, `T` windows per song, `F x W` the input image
(`config.num_frequency_bins x config.num_time_frames`, 216x144 by default), `D` = `config.hidden_size`,
`S` = `config.sequence_length` tokens (118 by default), `C` = `config.num_labels`.

Whole songs: [`GenreViTForAudioClassification`] accepts either independent windows `(N, 1, F, W)`, which gives one
prediction per window (training and the analysis API use this), or whole songs `(B, T, 1, F, W)` with a
`window_mask` `(B, T)` marking real windows. For whole songs it runs the windows through the encoder
`config.window_chunk_size` at a time (bounded memory), averages the window probabilities of each song over its
real windows, and returns `logits = log(mean probability)` of shape `(B, C)`, plus the per-window logits. A softmax
of those logits gives back the mean probabilities exactly, so the stock `pipeline("audio-classification")`, which
takes `logits[0].softmax(-1)`, ranks genres for the whole song, and agrees with `genre_vit.analyze_full_song`,
which averages the same window probabilities.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from .configuration_genre_vit import GenreViTConfig


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

    def __init__(self, config: GenreViTConfig):
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

    def __init__(self, config: GenreViTConfig):
        super().__init__()
        self.expected_size = (config.num_frequency_bins, config.num_time_frames)
        self.patch_grid = config.patch_grid
        self.patchout = (config.patchout_frequency_rows, config.patchout_time_columns)
        self.patch_embeddings = nn.Conv2d(
            1, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.sequence_length, config.hidden_size))
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


class GenreViTAttention(nn.Module):
    """Multi-head self-attention. `(N, S, D)` -> `(N, S, D)`, and the attention weights `(N, heads, S, S)` when asked.

    `config._attn_implementation` chooses the kernel: `"sdpa"` (the default:
    `torch.nn.functional.scaled_dot_product_attention`, which never forms the weights) or `"eager"` (softmax of
    the scaled scores, written out). Asking for the weights computes them the eager way whatever the choice.
    """

    def __init__(self, config: GenreViTConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
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
        dropout = self.attention_dropout if self.training else 0.0
        weights = None
        if output_attentions or self.config._attn_implementation == "eager":
            weights = (query @ key.transpose(-2, -1) * self.head_dim**-0.5).softmax(dim=-1)
            attended = F.dropout(weights, p=dropout, training=self.training) @ value
        else:
            attended = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
        attended = attended.transpose(1, 2).reshape(batch, tokens, width)
        return self.projection_dropout(self.projection(attended)), weights if output_attentions else None


class GenreViTFeedForward(nn.Module):
    """`D -> intermediate_size -> D` with the configured activation and dropout after each layer."""

    def __init__(self, config: GenreViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class GenreViTLayer(nn.Module):
    """Pre-LayerNorm encoder block: `x + DropPath(Attn(LN(x)))`, then `x + DropPath(FFN(LN(x)))`."""

    def __init__(self, config: GenreViTConfig, drop_path_rate: float):
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


class GenreViTPreTrainedModel(PreTrainedModel):
    config_class = GenreViTConfig
    config: GenreViTConfig
    base_model_prefix = "genre_vit"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = False
    _no_split_modules = ["GenreViTEmbeddings", "GenreViTLayer"]
    _supports_sdpa = True  # "eager" is supported too: GenreViTAttention honours both
    # The loss is a mean over the batch and takes no `num_items_in_batch`: the Trainer must then divide it by the
    # gradient-accumulation steps and average it over processes itself. Without this flag it infers from
    # `forward(**kwargs)` that the model scales the loss, and the loss comes out multiplied by the accumulation
    # steps or by the number of processes.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, GenreViTEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.position_embeddings, std=std)


class GenreViTModel(GenreViTPreTrainedModel):
    """SpecAugment (training only), embeddings, encoder blocks and the final LayerNorm.

    `input_values` `(N, 1, F, W)` -> `last_hidden_state` `(N, S, D)` and `pooler_output` `(N, D)`, the class token
    after the final LayerNorm.
    """

    def __init__(self, config: GenreViTConfig):
        super().__init__(config)
        self.spec_augment = GenreViTSpecAugment(config)
        self.embeddings = GenreViTEmbeddings(config)
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList([GenreViTLayer(config, rate) for rate in rates])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        Args:
            input_values: windows `(N, 1, F, W)`.
            output_hidden_states: also return the states entering each block and the last block's output,
                `num_hidden_layers + 1` tensors `(N, S, D)`.
            output_attentions: also return each block's attention weights, `(N, heads, S, S)` per block; each row
                sums to 1 (over the keys).
        """
        if kwargs:
            raise TypeError(f"GenreViTModel.forward got unexpected arguments: {', '.join(sorted(kwargs))}.")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.embeddings(self.spec_augment(input_values))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        last_hidden_state = self.layernorm(hidden_states)
        pooled = last_hidden_state[:, 0]
        if not return_dict:
            return tuple(v for v in (last_hidden_state, pooled, all_hidden_states, all_attentions) if v is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


@dataclass
class GenreViTClassifierOutput(ModelOutput):
    """Output of [`GenreViTForAudioClassification`].

    Args:
        loss: focal or cross-entropy loss, when `labels` were given.
        logits: `(N, C)` for window input; `(B, C)` log mean window probabilities for whole-song input.
        window_logits: `(B, T, C)` per-window logits for whole-song input (zeros at padded windows); else None.
        hidden_states: per-layer `(N, S, D)` states for window input, when asked for.
        attentions: per-layer attention weights `(N, heads, S, S)` for window input, when asked for.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    window_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class GenreViTForAudioClassification(GenreViTPreTrainedModel):
    """GenreViT with a linear genre head on the pooled embedding. See the module docstring for the two input layouts."""

    def __init__(self, config: GenreViTConfig):
        super().__init__(config)
        self.genre_vit = GenreViTModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """Tokens `(N, S, D)` after the final LayerNorm, for windows `(N, 1, F, W)` (as timm's `forward_features`)."""
        return self.genre_vit(input_values, return_dict=True).last_hidden_state

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens `(N, S, D)` -> the pooled embedding `(N, D)` (the class token) with `pre_logits`, else logits
        `(N, C)` (as timm's `forward_head`)."""
        pooled = tokens[:, 0]
        return pooled if pre_logits else self.classifier(pooled)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma = self.config.focal_loss_gamma if self.config.loss_type == "focal" else 0.0
        return focal_loss(logits, labels, gamma)

    def _song_logits(
        self, input_values: torch.Tensor, window_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole songs `(B, T, 1, F, W)` -> (log mean probabilities `(B, C)`, window logits `(B, T, C)`)."""
        songs, windows = input_values.shape[:2]
        if window_mask is None:
            window_mask = torch.ones(songs, windows, dtype=torch.bool, device=input_values.device)
        window_mask = window_mask.to(device=input_values.device, dtype=torch.bool)
        if window_mask.shape != (songs, windows):
            raise ValueError(f"window_mask must have shape {(songs, windows)}, got {tuple(window_mask.shape)}.")
        if not bool(window_mask.any(dim=1).all()):
            raise ValueError("Every song needs at least one real window (window_mask is all False for a song).")
        real_windows = input_values[window_mask]
        chunk_logits = [
            self.forward_head(self.forward_features(chunk))
            for chunk in real_windows.split(self.config.window_chunk_size)
        ]
        flat_logits = torch.cat(chunk_logits).float()
        window_logits = flat_logits.new_zeros(songs, windows, flat_logits.shape[-1])
        window_logits[window_mask] = flat_logits
        probabilities = window_logits.softmax(-1) * window_mask.unsqueeze(-1)
        mean_probabilities = probabilities.sum(1) / window_mask.sum(1, keepdim=True)
        return mean_probabilities.clamp_min(torch.finfo(torch.float32).tiny).log(), window_logits

    def forward(
        self,
        input_values: torch.Tensor,
        window_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> GenreViTClassifierOutput | tuple:
        r"""
        Args:
            input_values: windows `(N, 1, F, W)` or whole songs `(B, T, 1, F, W)`, from [`GenreViTFeatureExtractor`].
            window_mask: `(B, T)`, True at real windows, for whole-song input; all windows are real when omitted.
            labels: `(N,)` window labels or `(B,)` song labels; the loss is focal or cross-entropy per the config.
            output_hidden_states: return the encoder's per-layer states (window input only).
            output_attentions: return every block's attention weights `(N, heads, S, S)` (window input only).
        """
        # `**kwargs` takes what pipelines and the Trainer pass along; the model declares `accepts_loss_kwargs = False`
        # so the Trainer still scales the loss itself.
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        window_logits = hidden_states = attentions = None
        if input_values.ndim == 5:
            if output_hidden_states or output_attentions:
                raise ValueError(
                    "output_hidden_states and output_attentions are only available for window input (N, 1, F, W); "
                    "pass a song's windows, e.g. from GenreViTFeatureExtractor.extract_windows."
                )
            logits, window_logits = self._song_logits(input_values, window_mask)
        else:
            outputs = self.genre_vit(
                input_values,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
                return_dict=True,
            )
            logits = self.forward_head(outputs.last_hidden_state)
            hidden_states, attentions = outputs.hidden_states, outputs.attentions
        loss = self._loss(logits, labels) if labels is not None else None
        output = GenreViTClassifierOutput(
            loss=loss, logits=logits, window_logits=window_logits, hidden_states=hidden_states, attentions=attentions
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "GenreViTForAudioClassification",
    "GenreViTModel",
    "GenreViTPreTrainedModel",
    "focal_loss",
]
