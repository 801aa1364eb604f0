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
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from .configuration_genre_vit import GenreViTConfig
from .network import GenreViTClassifierParts, GenreViTEmbeddings, GenreViTEncoderParts, focal_loss


class GenreViTPreTrainedModel(PreTrainedModel):
    config_class = GenreViTConfig
    config: GenreViTConfig
    base_model_prefix = "genre_vit"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["GenreViTEmbeddings", "GenreViTLayer"]
    # GenreViTAttention takes its kernel from `network.attention_function`: eager, SDPA, or any kernel registered
    # in transformers' ALL_ATTENTION_FUNCTIONS that needs no attention mask.
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
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


class GenreViTModel(GenreViTEncoderParts, GenreViTPreTrainedModel):
    """SpecAugment (training only), embeddings, encoder blocks and the final LayerNorm: the parts and forward pass
    of `network.GenreViTEncoderParts`.

    `input_values` `(N, 1, F, W)` -> `last_hidden_state` `(N, S, D)` and `pooler_output` `(N, D)`, the class token
    after the final LayerNorm.
    """

    def __init__(self, config: GenreViTConfig):
        super().__init__(config)
        self._build_encoder(config)
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
        last_hidden_state, all_hidden_states, all_attentions = self.encode(
            input_values, bool(output_hidden_states), bool(output_attentions)
        )
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
        genre_distance: for a model with a genre distance (`config.genre_distance`), each window's distance to the
            nearest genre it learnt, `(N,)`, or each song's mean over its real windows, `(B,)`; else None.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    window_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    genre_distance: torch.FloatTensor | None = None


class GenreViTForAudioClassification(GenreViTClassifierParts, GenreViTPreTrainedModel):
    """GenreViT with a linear genre head on the pooled embedding (`network.GenreViTClassifierParts`: the head,
    `forward_features`, `forward_head` and `encode_with_attentions`). See the module docstring for the two input
    layouts."""

    def __init__(self, config: GenreViTConfig):
        super().__init__(config)
        self.genre_vit = GenreViTModel(config)
        self._build_head(config)
        self.post_init()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma = self.config.focal_loss_gamma if self.config.loss_type == "focal" else 0.0
        return focal_loss(logits, labels, gamma)

    def _song_logits(
        self, input_values: torch.Tensor, window_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Whole songs `(B, T, 1, F, W)` -> (log mean probabilities `(B, C)`, window logits `(B, T, C)`, mean genre
        distance `(B,)` or None)."""
        songs, windows = input_values.shape[:2]
        if window_mask is None:
            window_mask = torch.ones(songs, windows, dtype=torch.bool, device=input_values.device)
        window_mask = window_mask.to(device=input_values.device, dtype=torch.bool)
        if window_mask.shape != (songs, windows):
            raise ValueError(f"window_mask must have shape {(songs, windows)}, got {tuple(window_mask.shape)}.")
        if not bool(window_mask.any(dim=1).all()):
            raise ValueError("Every song needs at least one real window (window_mask is all False for a song).")
        real_windows = input_values[window_mask]
        chunk_logits, chunk_distances = [], []
        for chunk in real_windows.split(self.config.window_chunk_size):
            tokens = self.forward_features(chunk)
            chunk_logits.append(self.forward_head(tokens))
            chunk_distances.append(self.window_genre_distances(tokens))
        flat_logits = torch.cat(chunk_logits).float()
        window_logits = flat_logits.new_zeros(songs, windows, flat_logits.shape[-1])
        window_logits[window_mask] = flat_logits
        probabilities = window_logits.softmax(-1) * window_mask.unsqueeze(-1)
        real_counts = window_mask.sum(1, keepdim=True)
        mean_probabilities = probabilities.sum(1) / real_counts
        song_distance = None
        if self.genre_distance is not None:
            window_distances = flat_logits.new_zeros(songs, windows)
            window_distances[window_mask] = torch.cat(chunk_distances)
            song_distance = window_distances.sum(1) / real_counts[:, 0]
        return mean_probabilities.clamp_min(torch.finfo(torch.float32).tiny).log(), window_logits, song_distance

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
        window_logits = hidden_states = attentions = genre_distance = None
        if input_values.ndim == 5:
            if output_hidden_states or output_attentions:
                raise ValueError(
                    "output_hidden_states and output_attentions are only available for window input (N, 1, F, W); "
                    "pass a song's windows, e.g. from GenreViTFeatureExtractor.extract_windows."
                )
            logits, window_logits, genre_distance = self._song_logits(input_values, window_mask)
        else:
            outputs = self.genre_vit(
                input_values,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
                return_dict=True,
            )
            logits = self.forward_head(outputs.last_hidden_state)
            genre_distance = self.window_genre_distances(outputs.last_hidden_state)
            hidden_states, attentions = outputs.hidden_states, outputs.attentions
        loss = self._loss(logits, labels) if labels is not None else None
        output = GenreViTClassifierOutput(
            loss=loss,
            logits=logits,
            window_logits=window_logits,
            hidden_states=hidden_states,
            attentions=attentions,
            genre_distance=genre_distance,
        )
        return output if return_dict else output.to_tuple()


# save_pretrained writes this source file next to the weights, for `trust_remote_code=True` loading.
GenreViTModel.register_for_auto_class("AutoModel")
GenreViTForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = [
    "GenreViTForAudioClassification",
    "GenreViTModel",
    "GenreViTPreTrainedModel",
    "focal_loss",
]
