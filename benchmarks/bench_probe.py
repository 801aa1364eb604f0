"""The linear probe's strength grid: plain L-BFGS with each strength fitted from zero (the baseline), plain L-BFGS
along a warm-started path, and the probe's own fit (`fit_standardised_probes`: preconditioned, warm-started path),
same data, same run.

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

    def timed(strength_groups, precondition: bool) -> tuple[dict, float]:
        """`fit_standardised_probes` once per group of strengths: each strength alone fits from zero, all together
        fit the warm-started path."""
        started, probes = time.perf_counter(), {}
        for strengths in strength_groups:
            probes.update(fit_standardised_probes(features, labels, GENRES, strengths, teacher, precondition))
        return probes, time.perf_counter() - started

    fits = {
        "baseline": ("plain L-BFGS, each strength from zero", *timed([[s] for s in args.strengths], False)),
        "plain path": ("plain L-BFGS, warm-started path", *timed([args.strengths], False)),
        "preconditioned path": ("preconditioned, warm-started path (the probe's fit)", *timed([args.strengths], True)),
    }
    fit = StandardisedFit.of(features, labels, GENRES, teacher)

    def objective(probe, strength):
        weight, bias = fit.in_standardised_units(*probe)
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
