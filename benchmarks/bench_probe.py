"""The linear probe's strength grid: each strength fitted from zero (the baseline) against the warm-started path of
`fit_standardised_probes`, same data, same run.

    python -m benchmarks.bench_probe [--embeddings FILE.npy] [--labelled 3000] [--teacher-labelled 9000]
                                     [--strengths 0.1 0.3 1 3 10 30 100]

The windows are split into labelled windows and teacher-labelled windows (soft targets), as the probe's are with
`--probe-unlabelled-data`. Their embeddings are real pooled embeddings where `--embeddings` names a saved `(n, 512)`
array (the window cache keeps them as `embeddings-<encoder>-<windows>.npy`), otherwise synthetic ones in ten genre
clusters near a 64-dimensional subspace (pooled embeddings are strongly correlated, which is what makes the fit
ill-conditioned). Their targets come from a random linear teacher on the embeddings: the labelled windows get its top
genre, the others its probabilities. The baseline calls `fit_standardised_probes` once per strength (a fit from zero
each time); the path calls it once with every strength. Prints both times, their ratio, the objective each reached
at every strength (lower is closer to the minimum; both stop at the same iteration budget or tolerance), and the
largest difference between the two fits' probabilities on held-out windows.
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

    start = time.perf_counter()
    from_zero = {}
    for strength in args.strengths:
        from_zero.update(fit_standardised_probes(features, labels, GENRES, [strength], teacher))
    from_zero_seconds = time.perf_counter() - start

    start = time.perf_counter()
    path = fit_standardised_probes(features, labels, GENRES, args.strengths, teacher)
    path_seconds = time.perf_counter() - start

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
    for strength in sorted(from_zero):
        cold, warm = objective(from_zero[strength], strength), objective(path[strength], strength)
        print(f"  C = {strength:g}: objective from zero {cold:.6f}, warm-started {warm:.6f}")
    largest = max(float(np.abs(probabilities(path[s]) - probabilities(from_zero[s])).max()) for s in from_zero)
    print(f"each strength from zero (baseline): {from_zero_seconds:8.1f} s")
    print(f"warm-started path:                  {path_seconds:8.1f} s")
    print(f"speed-up: {from_zero_seconds / path_seconds:.2f}x; largest held-out probability difference {largest:.1e}")


if __name__ == "__main__":
    main()
