"""EfficientAT `mn04_as`: an AudioSet tagger (MobileNetV3-Large at width 0.4; Schmid, Koutini & Widmer 2023; MIT
licence) used as a distillation teacher whose 527 classes include all ten GTZAN genres.

Written from the architecture's published description; it loads the released state dict (`mn04_as_mAP_432.pt`,
983,599 parameters) with `strict=True`. The inference library never imports this module: it is a teacher for the
training wing only.

    teacher = EfficientATTagger.from_state_dict("mn04_as_mAP_432.pt")
    outputs = teacher(waveform_32k)          # (batch, samples) float32 at 32 kHz, mono
    outputs.logits, outputs.embedding        # (batch, 527), (batch, 384)
"""

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SAMPLING_RATE = 32_000
"""The tagger's input rate, in Hz."""

GENRE_CLASS_INDICES = {
    "blues": 251,
    "classical": 237,
    "country": 229,
    "disco": 236,
    "hiphop": 217,
    "jazz": 235,
    "metal": 220,
    "pop": 216,
    "reggae": 228,
    "rock": 219,
}
"""The AudioSet output of each GTZAN genre (`class_labels_indices.csv`: Blues, Classical music, Country, Disco, Hip
hop music, Jazz, Heavy metal, Pop music, Reggae, Rock music)."""

WIDTH_MULTIPLIER = 0.4
EMBEDDING_SIZE = 384
NUM_CLASSES = 527

# MobileNetV3-Large's inverted-residual blocks (Howard et al. 2019, table 1), before width scaling:
# (kernel, expanded width, output width, squeeze-excitation, activation, stride).
_BLOCKS = (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
)


def round_channels(value: float, divisor: int = 8) -> int:
    """`value` rounded to the nearest multiple of `divisor`, never below `divisor` nor below 90% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _activation(name: str) -> nn.Module:
    return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish(inplace=True)


def _conv_bn(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1, activation: str | None = None
) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (eps 1e-3) [+ activation]; its children are named 0, 1, 2 as in the state dict."""
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3),
    ]
    if activation is not None:
        layers.append(_activation(activation))
    return nn.Sequential(*layers)


class SqueezeExcitationLayer(nn.Module):
    """Channel gates from the mean over frequency and time: `fc1`, ReLU, `fc2`, sigmoid, times the input."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = round_channels(channels / 4)
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        gates = torch.sigmoid(self.fc2(torch.relu(self.fc1(features.mean(dim=(2, 3))))))
        return features * gates[:, :, None, None]


class SqueezeExcitation(nn.Module):
    """The container the released weights name (`conc_se_layers.0`): one squeeze-excitation layer."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitationLayer(channels)])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](features)


class InvertedResidual(nn.Module):
    """1x1 expansion (left out where the expanded width equals the input's), depthwise kxk, optional
    squeeze-excitation, 1x1 projection without activation; a residual sum where shapes allow."""

    def __init__(
        self,
        in_channels: int,
        expanded: int,
        out_channels: int,
        kernel: int,
        use_se: bool,
        activation: str,
        stride: int,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(_conv_bn(in_channels, expanded, 1, activation=activation))
        layers.append(_conv_bn(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if use_se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(_conv_bn(expanded, out_channels, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        output = self.block(features)
        return output + features if self.use_residual else output


class LogMelFrontEnd(nn.Module):
    """The tagger's log-Mel input: `(batch, samples)` at 32 kHz -> `(batch, 1, 128, frames)`, 100 frames a second.

    Pre-emphasis `y[n] = x[n+1] - 0.97 x[n]`; STFT (n_fft 1024, hop 320, a symmetric Hann window of 800 samples,
    centred with reflect padding), power; 128 Kaldi Mel bands from 0 to 15 kHz; `(ln(mel + 1e-5) + 4.5) / 5`.
    """

    n_fft = 1024
    hop_length = 320
    win_length = 800
    n_mels = 128
    f_min = 0.0
    f_max = 15_000.0

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=False), persistent=False)
        self.register_buffer(
            "mel_filters",
            torch.from_numpy(kaldi_mel_filters(self.n_mels, self.n_fft, SAMPLING_RATE, self.f_min, self.f_max)),
            persistent=False,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        emphasised = waveform[:, 1:] - 0.97 * waveform[:, :-1]
        spectrum = torch.stft(
            emphasised,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()  # (batch, 513, frames)
        mel = torch.matmul(self.mel_filters, power)
        return ((torch.log(mel + 1e-5) + 4.5) / 5).unsqueeze(1)


def kaldi_mel_filters(n_mels: int, n_fft: int, sampling_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """`(n_mels, n_fft // 2 + 1)` float32 triangles on Kaldi's Mel scale `1127 ln(1 + f / 700)`, equally spaced
    from `f_min` to `f_max` Hz over the first `n_fft // 2` FFT bins; the Nyquist bin gets no weight."""

    def mel(frequency):
        return 1127.0 * np.log(1.0 + np.asarray(frequency, dtype=np.float64) / 700.0)

    low, high = mel(f_min), mel(f_max)
    spacing = (high - low) / (n_mels + 1)
    left = low + spacing * np.arange(n_mels)[:, None]
    centre, right = left + spacing, left + 2 * spacing
    bins = mel(sampling_rate / n_fft * np.arange(n_fft // 2))[None, :]
    rising, falling = (bins - left) / (centre - left), (right - bins) / (right - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(filters, ((0, 0), (0, 1))).astype(np.float32)


@dataclass
class TaggerOutput:
    """`logits` `(batch, 527)` (independent sigmoids, AudioSet's classes) and `embedding` `(batch, 384)`, the global
    mean of the last convolution's output."""

    logits: torch.Tensor
    embedding: torch.Tensor


class EfficientATTagger(nn.Module):
    """MobileNetV3-Large at width 0.4 over the log-Mel front end, with AudioSet's 527-class head."""

    def __init__(self):
        super().__init__()
        self.front_end = LogMelFrontEnd()
        stem = round_channels(16 * WIDTH_MULTIPLIER)
        layers: list[nn.Module] = [_conv_bn(1, stem, 3, stride=2, activation="hardswish")]
        channels = stem
        for kernel, expanded, output, use_se, activation, stride in _BLOCKS:
            out_channels = round_channels(output * WIDTH_MULTIPLIER)
            layers.append(
                InvertedResidual(
                    channels,
                    round_channels(expanded * WIDTH_MULTIPLIER),
                    out_channels,
                    kernel,
                    use_se,
                    activation,
                    stride,
                )
            )
            channels = out_channels
        layers.append(_conv_bn(channels, EMBEDDING_SIZE, 1, activation="hardswish"))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(EMBEDDING_SIZE, 512),
            nn.Hardswish(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(512, NUM_CLASSES),
        )

    @classmethod
    def from_state_dict(cls, path: str | os.PathLike) -> "EfficientATTagger":
        """The tagger with the released weights (`strict=True`), in evaluation mode."""
        model = cls()
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def forward_log_mel(self, log_mel: torch.Tensor) -> TaggerOutput:
        """`(batch, 1, 128, frames)` log-Mel -> `TaggerOutput`; any number of frames (global pooling)."""
        features = self.features(log_mel)
        return TaggerOutput(logits=self.classifier(features), embedding=features.mean(dim=(2, 3)))

    def forward(self, waveform: torch.Tensor) -> TaggerOutput:
        """`(batch, samples)` mono float32 at 32 kHz -> `TaggerOutput`."""
        return self.forward_log_mel(self.front_end(waveform))


def class_names(labels_csv: str | os.PathLike) -> list[str]:
    """The 527 AudioSet display names in output order, from `class_labels_indices.csv`."""
    with open(labels_csv, newline="", encoding="utf-8") as file:
        return [row["display_name"] for row in csv.DictReader(file)]


def genre_probabilities(logits: np.ndarray, labels: list[str], temperature: float = 1.0) -> np.ndarray:
    """Zero-shot genre probabilities `(..., len(labels))`: a softmax over the logits of the genres' AudioSet classes.

    The tagger's sigmoids are independent; the softmax over their logits makes the ten a distribution over the
    genres, whose argmax is the argmax of the sigmoids.
    """
    columns = [GENRE_CLASS_INDICES[label] for label in labels]
    selected = np.asarray(logits, dtype=np.float64)[..., columns] / temperature
    selected -= selected.max(axis=-1, keepdims=True)
    exp = np.exp(selected)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


@torch.inference_mode()
def tag_patches(
    tagger: EfficientATTagger,
    waveform_32k: np.ndarray,
    patch_seconds: float,
    patch_hop_seconds: float,
    batch_size: int = 16,
) -> dict[str, np.ndarray]:
    """The tagger on `patch_seconds` patches of a mono 32-kHz waveform every `patch_hop_seconds`: `start_seconds`
    `(P,)`, `logits` `(P, 527)`, `embedding` `(P, 384)` (float32). A waveform shorter than one patch is one patch."""
    patch = int(round(patch_seconds * SAMPLING_RATE))
    hop = int(round(patch_hop_seconds * SAMPLING_RATE))
    waveform = np.asarray(waveform_32k, dtype=np.float32)
    count = 1 if waveform.size <= patch else 1 + math.floor((waveform.size - patch) / hop)
    starts = np.arange(count) * hop
    logits, embeddings = [], []
    device = next(tagger.parameters()).device
    for first in range(0, count, batch_size):
        batch = np.stack([waveform[start : start + patch] for start in starts[first : first + batch_size]])
        output = tagger(torch.from_numpy(batch).to(device))
        logits.append(output.logits.float().cpu().numpy())
        embeddings.append(output.embedding.float().cpu().numpy())
    return {
        "start_seconds": (starts / SAMPLING_RATE).astype(np.float32),
        "logits": np.concatenate(logits),
        "embedding": np.concatenate(embeddings),
    }


__all__ = [
    "EMBEDDING_SIZE",
    "GENRE_CLASS_INDICES",
    "SAMPLING_RATE",
    "EfficientATTagger",
    "LogMelFrontEnd",
    "TaggerOutput",
    "class_names",
    "genre_probabilities",
    "kaldi_mel_filters",
    "round_channels",
    "tag_patches",
]
