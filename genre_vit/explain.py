"""Why this genre? Attention rollout over the patch grid of one window.

Method (Abnar & Zuidema, 2020, "Quantifying Attention Flow in Transformers"): average each block's attention over
its heads, add the identity for the residual path and renormalise the rows (`0.5 * A + 0.5 * I`), multiply the
blocks' matrices from the first to the last, and read the class token's row: how much each patch token flowed into
the class token that the classifier reads. The patch part is normalised to sum to 1 and laid out on the
`(frequency rows, time columns)` patch grid (13 x 9 for the seed architecture; row 0 is the lowest frequencies).

Limits: rollout shows where the model looked, not how each region pushed towards one genre rather than another
(it is the same map whatever genre is asked about), and it ignores what the feed-forward layers do.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

METHOD_SENTENCE = (
    "Attention rollout (Abnar & Zuidema, 2020): how much each 16x16 patch of the window's log-Mel image flowed into "
    "the class token through the model's attention; it shows where the model looked, not which genre each region "
    "argued for."
)


def attention_rollout(attentions: Sequence[torch.Tensor], patch_grid: tuple[int, int]) -> np.ndarray:
    """Relevance `(N, rows, columns)` of every patch, each map summing to 1, from per-block attention weights.

    Args:
        attentions: one `(N, heads, S, S)` tensor per block, rows summing to 1 over the keys, with `S = 1 +
            rows * columns` tokens, the class token first and the patches in row-major order.
        patch_grid: `(rows, columns)` of the patch grid (`GenreViTConfig.patch_grid`).
    """
    rows, columns = patch_grid
    if not attentions:
        raise ValueError("Attention rollout needs the attention weights of at least one block.")
    batch, _, tokens, _ = attentions[0].shape
    if tokens != 1 + rows * columns:
        raise ValueError(f"{tokens} tokens do not match a class token plus a {rows}x{columns} patch grid.")
    identity = torch.eye(tokens, dtype=torch.float64)
    rollout = identity.expand(batch, tokens, tokens)
    for weights in attentions:
        mixed = 0.5 * weights.detach().to(torch.float64).mean(dim=1) + 0.5 * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout
    relevance = rollout[:, 0, 1:].clamp_min(0)
    totals = relevance.sum(dim=-1, keepdim=True)
    relevance = torch.where(totals > 0, relevance / totals.clamp_min(1e-300), 1.0 / (rows * columns))
    return relevance.reshape(batch, rows, columns).float().numpy()


@dataclass(frozen=True)
class WindowExplanation:
    """Why one window got its genres.

    Attributes:
        start_seconds: where the window starts in the song, in seconds.
        image: `(F, W)` the window's log-Mel image in [0, 1] (frequency bins low to high, time frames).
        relevance: `(rows, columns)` attention-rollout relevance on the patch grid; sums to 1.
        probabilities: `(C,)` the window's genre probabilities.
        genres: genre names in label-id order.
        patch_size: side of a square patch, in image pixels.
        window_seconds: the window's length, in seconds.
    """

    start_seconds: float
    image: np.ndarray
    relevance: np.ndarray
    probabilities: np.ndarray
    genres: tuple[str, ...]
    patch_size: int
    window_seconds: float

    @property
    def top_genre(self) -> str:
        return self.genres[int(np.argmax(self.probabilities))]

    def relevance_image(self) -> np.ndarray:
        """The relevance spread over the image's pixels `(F, W)` (each patch's value on its pixels; pixels beyond
        the last whole patch, which the model does not see, are 0)."""
        expanded = np.kron(self.relevance, np.ones((self.patch_size, self.patch_size), dtype=np.float32))
        full = np.zeros(self.image.shape, dtype=np.float32)
        rows, columns = min(expanded.shape[0], full.shape[0]), min(expanded.shape[1], full.shape[1])
        full[:rows, :columns] = expanded[:rows, :columns]
        return full


__all__ = ["METHOD_SENTENCE", "WindowExplanation", "attention_rollout"]
