"""The linear probe's strength grid: plain L-BFGS with each strength fitted from zero (the baseline, written here),
and the probe's own fit (`fit_standardised_probes`: preconditioned, warm-started path), same data, same run.

    python -m benchmarks.bench_probe [--embeddings FILE.npy] [--labelled 3000] [--teacher-labelled 9000]
                                     [--strengths 0.1 0.3 1 3 10 30 100]

The windows are split into labelled windows and teacher-labelled windows (soft targets), as the probe's are with
`--probe-unlabelled-data`. Their embeddings are real pooled embeddings where `--embeddings` names a saved `(n, 512)`
array (the window cache keeps them as `embeddings-<encoder>-<windows>.npy`), otherwise synthetic ones in ten genre
clusters near a 64-dimensional subspace (pooled embeddings are strongly correlated, which is what makes the fit
ill-conditioned). Their targets come from a random linear teacher on the embeddings: the labelled windows get its top
genre, the others its probabilities. Prints each way's time and speed-up over the baseline, the objective each
reached at every strength (lower is closer to the minimum; all stop at the same iteration budget or tolerance), and
the largest difference from the baseline's probabilities on held-out windows.
"""

import argparse
import time

import numpy as np
import torch

from genre_vit.training.linear_probe import (
    DEFAULT_PROBE_STRENGTHS,
    StandardisedFit,
    TeacherLabelledWindows,
    fit_standardised_probes,
    lbfgs,
    logistic_regression_objective,
)

GENRES = 10
LATENT = 64


def synthetic_embeddings(windows: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(0, 0.8, (GENRES, LATENT))
    latent = centres[rng.integers(0, GENRES, windows)] + rng.normal(0, 1, (windows, LATENT))
    return (latent @ rng.normal(0, 1, (LATENT, dimension)) + 0.1 * rng.normal(0, 1, (windows, dimension))).astype(
        np.float32
    )


def teacher_probabilities(embeddings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Softmax of a random linear map of the standardised embeddings, scaled so that the logits spread by about 2."""
    standardised = (embeddings - embeddings.mean(0)) / (embeddings.std(0) + 1e-6)
    logits = standardised @ rng.normal(0, 1, (embeddings.shape[1], GENRES))
    return torch.softmax(torch.from_numpy(2 * logits / logits.std()), 1).numpy()


def plain_lbfgs(fit: StandardisedFit, strength: float, max_iterations: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: L-BFGS on the weights themselves, from zero, on the probe's objective (same tolerances and
    history as the probe's fit); `(weight, bias)` of the standardised features."""
    x = torch.as_tensor(fit.features, dtype=torch.float64)
    targets = np.asarray(fit.targets)
    y = torch.as_tensor(targets, dtype=torch.long if targets.ndim == 1 else torch.float64)
    window_weight = torch.as_tensor(
        np.ones(len(x)) if fit.sample_weight is None else fit.sample_weight, dtype=torch.float64
    )
    window_weight = window_weight / window_weight.sum()
    weight = torch.zeros((GENRES, x.shape[1]), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(GENRES, dtype=torch.float64, requires_grad=True)
    optimizer = lbfgs(weight, bias, max_iterations=max_iterations)

    def closure():
        optimizer.zero_grad()
        per_window = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (window_weight * per_window).sum() + (weight**2).sum() / (2 * strength * len(x))
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().float().numpy(), bias.detach().float().numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", help="saved (n, D) pooled embeddings; synthetic ones if not given")
    parser.add_argument("--labelled", type=int, default=3000)
    parser.add_argument("--teacher-labelled", type=int, default=9000)
    parser.add_argument("--strengths", type=float, nargs="+", default=list(DEFAULT_PROBE_STRENGTHS))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    wanted = args.labelled + args.teacher_labelled + 1000
    if args.embeddings:
        embeddings = np.load(args.embeddings).astype(np.float32)
        embeddings = embeddings[rng.permutation(len(embeddings))[:wanted]]
        if len(embeddings) < wanted:
            raise SystemExit(f"{args.embeddings} holds {len(embeddings)} windows; {wanted} are needed.")
    else:
        embeddings = synthetic_embeddings(wanted, 512, rng)
    targets = teacher_probabilities(embeddings, rng)
    features, labels = embeddings[: args.labelled], targets[: args.labelled].argmax(axis=1)
    unlabelled = slice(args.labelled, args.labelled + args.teacher_labelled)
    teacher = TeacherLabelledWindows(embeddings[unlabelled], targets[unlabelled], 1.0)
    held_out = embeddings[-1000:]

    fit = StandardisedFit.of(features, labels, GENRES, teacher)
    started = time.perf_counter()
    baseline_fits = {s: fit.in_embedding_units(*plain_lbfgs(fit, s)) for s in args.strengths}
    baseline_time = time.perf_counter() - started
    started = time.perf_counter()
    probe_fits = fit_standardised_probes(features, labels, GENRES, args.strengths, teacher)
    probe_time = time.perf_counter() - started
    fits = {
        "baseline": ("plain L-BFGS, each strength from zero", baseline_fits, baseline_time),
        "probe": ("preconditioned, warm-started path (the probe's fit)", probe_fits, probe_time),
    }

    def objective(probe, strength):
        weight, bias = probe  # in embedding units: back to the standardised features'
        weight, bias = weight * fit.std, bias + weight @ fit.mean
        return logistic_regression_objective(fit.features, fit.targets, strength, weight, bias, fit.sample_weight)

    def probabilities(probe):
        return torch.softmax(torch.from_numpy(held_out @ probe[0].T + probe[1]), 1).numpy()

    source = args.embeddings or "synthetic embeddings"
    print(
        f"{len(args.strengths)} strengths; {args.labelled} labelled + {args.teacher_labelled} teacher-labelled windows"
    )
    print(f"of {source} ({embeddings.shape[1]} wide); {torch.get_num_threads()} threads")
    _, baseline, baseline_seconds = fits["baseline"]
    for strength in sorted(args.strengths):
        reached = ", ".join(
            f"{name} {objective(probes[strength], strength):.6f}" for name, (_, probes, _) in fits.items()
        )
        print(f"  C = {strength:g}: objective reached: {reached}")
    for name, probes, seconds in fits.values():
        largest = max(float(np.abs(probabilities(probes[s]) - probabilities(baseline[s])).max()) for s in probes)
        print(
            f"{name:52s} {seconds:8.1f} s  speed-up {baseline_seconds / seconds:5.2f}x"
            f"  largest held-out probability difference from the baseline {largest:.1e}"
        )


if __name__ == "__main__":
    main()
