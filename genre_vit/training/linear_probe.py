"""Fit only the classifier of a pre-trained GenreViT: a linear probe of its frozen encoder.

With few labelled tracks (tens per genre), fine-tuning 25M parameters overfits or underfits, while the pooled
embedding of an encoder pre-trained by distillation (`train.py --classification-weight 0 --teacher-targets ...`)
already separates genres. `train.py --init-from MODEL --classifier-only` then:

1. embeds every training and validation window once with the frozen encoder (`(windows, hidden_size)`, the
   pooled, final-LayerNorm'd embedding that the classifier reads);
2. standardises the embeddings with the training windows' mean and standard deviation;
3. fits the classifier as an L2-regularised multinomial logistic regression (full-batch L-BFGS, deterministic) on
   the training windows, for each strength in `--probe-strengths` (sklearn's `C`: larger is less regularised), and
   keeps the fit with the best validation window accuracy (ties: the stronger regularisation), so the validation
   tracks choose the model and are never trained on, as in `train.py`'s other mode;
4. folds the standardisation into the weights, so the shipped model is the seed architecture, `Linear(hidden, labels)`
   on the pooled embedding, with no extra layer.

The test split is never embedded.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_PROBE_STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
"""Inverse L2 strengths tried (sklearn's `C`, per window)."""


@torch.inference_mode()
def embed_windows(model, input_values: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pooled embeddings `(windows, hidden_size)` float32 of `(windows, 1, F, T)` log-Mel windows."""
    model.eval()
    parameter = next(model.parameters())
    parts = []
    for start in range(0, len(input_values), batch_size):
        batch = torch.as_tensor(input_values[start : start + batch_size], device=parameter.device)
        tokens = model.forward_features(batch.to(parameter.dtype))
        parts.append(model.forward_head(tokens, pre_logits=True).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, model.config.hidden_size), np.float32)


def fit_logistic_regression(
    features: np.ndarray, labels: np.ndarray, num_labels: int, strength: float, max_iterations: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch L-BFGS, minimising the mean cross-entropy plus
    `||W||^2 / (2 * strength * n)` (sklearn's objective divided by n; the bias is not penalised).

    Args:
        features: `(n, d)` float features (already standardised).
        labels: `(n,)` label ids in `[0, num_labels)`.
    Returns:
        weight `(num_labels, d)` and bias `(num_labels,)`, float32.
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    weight = torch.zeros(num_labels, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_labels, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * strength * len(x))
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iterations,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach().float().numpy(), bias.detach().float().numpy()


@dataclass
class LinearProbe:
    """A fitted probe, already in the embedding's units: `logits = embedding @ weight.T + bias`."""

    weight: np.ndarray
    bias: np.ndarray
    strength: float
    validation_accuracy_by_strength: dict[float, float]

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.weight.T + self.bias


def _fit_folded(embeddings, labels, num_labels, strength, mean, std):
    weight, bias = fit_logistic_regression((embeddings - mean) / std, labels, num_labels, strength)
    return weight / std, bias - (weight / std) @ mean


def fit_linear_probe(
    train_embeddings: np.ndarray,
    train_labels: np.ndarray,
    validation_embeddings: np.ndarray,
    validation_labels: np.ndarray,
    num_labels: int,
    strengths=DEFAULT_PROBE_STRENGTHS,
) -> LinearProbe:
    """Fit on the training windows for each strength and keep the fit with the best validation window accuracy
    (module docstring, steps 2-4)."""
    if not strengths:
        raise ValueError("The linear probe needs at least one regularisation strength.")
    mean = train_embeddings.mean(axis=0)
    std = train_embeddings.std(axis=0) + 1e-6
    accuracy, fits = {}, {}
    for strength in sorted(strengths):  # ascending: a tie keeps the stronger regularisation
        weight, bias = _fit_folded(train_embeddings, train_labels, num_labels, strength, mean, std)
        predictions = (validation_embeddings @ weight.T + bias).argmax(axis=1)
        accuracy[float(strength)] = float((predictions == validation_labels).mean())
        fits[float(strength)] = (weight, bias)
    chosen = max(accuracy, key=lambda s: (accuracy[s], -s))
    weight, bias = fits[chosen]
    return LinearProbe(weight=weight, bias=bias, strength=chosen, validation_accuracy_by_strength=accuracy)


def run_linear_probe(model, windows: dict, strengths=DEFAULT_PROBE_STRENGTHS, batch_size: int = 64) -> dict:
    """Embed `windows["train"]` and `windows["validation"]` (datasets with `input_values`, `labels`), fit the probe,
    write it into `model.classifier`, and return what happened (for the run record)."""
    started = time.perf_counter()
    embeddings, labels = {}, {}
    for name in ("train", "validation"):
        data = windows[name].with_format("numpy", columns=["input_values", "labels"])
        embeddings[name] = embed_windows(model, data["input_values"], batch_size)
        labels[name] = np.asarray(data["labels"])
    embed_seconds = time.perf_counter() - started
    probe = fit_linear_probe(
        embeddings["train"],
        labels["train"],
        embeddings["validation"],
        labels["validation"],
        model.config.num_labels,
        strengths,
    )
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(probe.weight))
        model.classifier.bias.copy_(torch.from_numpy(probe.bias))
    return {
        "strength": probe.strength,
        "validation_accuracy_by_strength": {f"{s:g}": a for s, a in probe.validation_accuracy_by_strength.items()},
        "validation_accuracy": probe.validation_accuracy_by_strength[probe.strength],
        "embed_seconds": embed_seconds,
        "fit_seconds": time.perf_counter() - started - embed_seconds,
    }


__all__ = [
    "DEFAULT_PROBE_STRENGTHS",
    "LinearProbe",
    "embed_windows",
    "fit_linear_probe",
    "fit_logistic_regression",
    "run_linear_probe",
]
