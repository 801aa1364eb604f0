"""The linear probe's strength grid: each strength fitted from zero (the baseline) against the warm-started path of
`fit_standardised_probes`, same data, same run.

    python -m benchmarks.bench_probe [--labelled 3000] [--teacher-labelled 9000] [--dimension 512]
                                     [--strengths 0.1 0.3 1 3 10 30 100]

The data are shaped like a probe's on the bundled encoder: labelled windows and teacher-labelled windows (soft
targets) of `--dimension`-wide pooled embeddings in ten overlapping genre clusters, so that weak regularisation needs
many L-BFGS iterations, as on real embeddings. The baseline calls `fit_standardised_probes` once per strength (a fit
from zero each time); the path calls it once with every strength. Prints both times, their ratio, and the largest
difference between the two fits' probabilities on held-out windows (the objective is strictly convex, so both reach
one minimum).
"""

import argparse
import time

import numpy as np
import torch

from genre_vit.training.linear_probe import DEFAULT_PROBE_STRENGTHS, TeacherLabelledWindows, fit_standardised_probes

GENRES = 10


def genre_clusters(windows: int, dimension: int, rng: np.random.Generator, centres: np.ndarray):
    labels = rng.integers(0, GENRES, windows)
    return (centres[labels] + rng.normal(0, 1, (windows, dimension))).astype(np.float32), labels


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled", type=int, default=3000)
    parser.add_argument("--teacher-labelled", type=int, default=9000)
    parser.add_argument("--dimension", type=int, default=512)
    parser.add_argument("--strengths", type=float, nargs="+", default=list(DEFAULT_PROBE_STRENGTHS))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (GENRES, args.dimension)) * 3 / np.sqrt(args.dimension)
    features, labels = genre_clusters(args.labelled, args.dimension, rng, centres)
    unlabelled, their_genres = genre_clusters(args.teacher_labelled, args.dimension, rng, centres)
    teacher = TeacherLabelledWindows(
        unlabelled, 0.6 * np.eye(GENRES)[their_genres] + 0.4 * rng.dirichlet(np.ones(GENRES), len(unlabelled)), 1.0
    )
    held_out, _ = genre_clusters(1000, args.dimension, rng, centres)

    start = time.perf_counter()
    from_zero = {}
    for strength in args.strengths:
        from_zero.update(fit_standardised_probes(features, labels, GENRES, [strength], teacher))
    from_zero_seconds = time.perf_counter() - start

    start = time.perf_counter()
    path = fit_standardised_probes(features, labels, GENRES, args.strengths, teacher)
    path_seconds = time.perf_counter() - start

    def probabilities(probe):
        return torch.softmax(torch.from_numpy(held_out @ probe[0].T + probe[1]), 1).numpy()

    largest = max(float(np.abs(probabilities(path[s]) - probabilities(from_zero[s])).max()) for s in from_zero)
    print(
        f"{len(args.strengths)} strengths; {args.labelled} labelled + {args.teacher_labelled} teacher-labelled "
        f"windows x {args.dimension}; {torch.get_num_threads()} threads"
    )
    print(f"each strength from zero (baseline): {from_zero_seconds:8.1f} s")
    print(f"warm-started path:                  {path_seconds:8.1f} s")
    print(f"speed-up: {from_zero_seconds / path_seconds:.2f}x; largest held-out probability difference {largest:.1e}")


if __name__ == "__main__":
    main()
