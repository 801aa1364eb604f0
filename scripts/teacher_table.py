"""The teacher rows of the protocol table: each teacher zero-shot and as a probe on the GTZAN labels, the products of
experts with EfficientAT's zero-shot genres as a prior, and a probe on both teachers' features.

    python scripts/teacher_table.py \
        --efficientat runs/teacher/efficientat-gtzan.npz runs/teacher/efficientat-emotify.npz \
        [--musicnn runs/teacher/msd-gtzan.npz runs/teacher/msd-emotify.npz] --output runs/protocols/teachers.json

Protocols: **Emotify validation half** (excerpts with odd numbers; classical, pop and rock are scored) makes every
choice (probe strength, prior weight, the best row); the **Emotify test half** (even numbers) is reported only;
**GTZAN 5-fold CV by track** on the labelled clips (artist-leaky: a floor); **GTZAN zero-shot** for systems that
fitted no GTZAN label. Electronic excerpts (no GTZAN genre) are counted by where they go. Only the GTZAN clips'
labels are fitted.
"""

import argparse
import json
import sys
from collections import Counter

import numpy as np

from genre_vit import GTZAN_GENRES
from genre_vit.files import write_text_atomic
from genre_vit.training.distillation import TeacherTargets
from genre_vit.training.teacher_ensemble import (
    PRIOR_WEIGHTS,
    PROBE_STRENGTHS,
    cross_validated_probabilities,
    fit_probe,
    product_of_experts,
    track_means,
    tracks_of,
)

GENRES = list(GTZAN_GENRES)
SCORED = ("classical", "pop", "rock")


def load(paths: list[str], output: str) -> tuple[TeacherTargets, TeacherTargets]:
    gtzan, emotify = (TeacherTargets.load(path, output) for path in paths)
    return gtzan, emotify


def accuracy(probabilities: np.ndarray, genres: list[str]) -> tuple[int, int]:
    scored = [i for i, genre in enumerate(genres) if genre in SCORED]
    right = sum(GENRES[int(probabilities[i].argmax())] == genres[i] for i in scored)
    return int(right), len(scored)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--efficientat", nargs=2, required=True, metavar=("GTZAN_NPZ", "EMOTIFY_NPZ"))
    parser.add_argument("--musicnn", nargs=2, metavar=("GTZAN_NPZ", "EMOTIFY_NPZ"))
    parser.add_argument("--musicnn-output", default="penultimate")
    parser.add_argument("--output", required=True, help="JSON file for the rows")
    args = parser.parse_args(argv)

    eat_zero_shot = load(args.efficientat, "genre_probabilities")
    feature_sets = {"EfficientAT": [load(args.efficientat, "embedding")]}
    if args.musicnn:
        feature_sets["musicnn"] = [load(args.musicnn, args.musicnn_output)]
        feature_sets["both"] = feature_sets["EfficientAT"] + feature_sets["musicnn"]

    gtzan_tracks = tracks_of(eat_zero_shot[0])
    emotify_tracks = tracks_of(eat_zero_shot[1])
    labels = np.array([GENRES.index(t.genre) for t in gtzan_tracks])
    halves = {half: [t for t in emotify_tracks if t.half == half] for half in ("validation", "test")}

    def zero_shot(targets, tracks):
        return track_means([targets], [t.key for t in tracks])

    prior = {half: zero_shot(eat_zero_shot[1], tracks) for half, tracks in halves.items()}
    rows = []

    def add_row(name, probabilities, gtzan=None, gtzan_protocol="", chosen=None):
        row = {"system": name, "chosen": chosen or {}}
        for half, tracks in halves.items():
            right, count = accuracy(probabilities[half], [t.genre for t in tracks])
            electronic = [
                GENRES[int(p.argmax())] for p, t in zip(probabilities[half], tracks) if t.genre == "electronic"
            ]
            per_genre = {
                genre: sum(
                    GENRES[int(p.argmax())] == genre for p, t in zip(probabilities[half], tracks) if t.genre == genre
                )
                for genre in SCORED
            }
            row[half] = {"right": right, "count": count, "per_genre": per_genre, "electronic": Counter(electronic)}
        if gtzan is not None:
            row["gtzan"] = {
                "protocol": gtzan_protocol,
                "right": int((gtzan.argmax(1) == labels).sum()),
                "count": len(labels),
            }
        rows.append(row)

    gtzan_prior = zero_shot(eat_zero_shot[0], gtzan_tracks)
    add_row("EfficientAT zero-shot", prior, gtzan_prior, "zero-shot")

    for name, targets in feature_sets.items():
        train = track_means([t[0] for t in targets], [t.key for t in gtzan_tracks])
        test = {half: track_means([t[1] for t in targets], [t.key for t in tracks]) for half, tracks in halves.items()}
        candidates = []  # (validation right, strength, weight, probabilities by half)
        for strength in PROBE_STRENGTHS:
            predict = fit_probe(train, labels, strength, len(GENRES))
            probe = {half: predict(features) for half, features in test.items()}
            for weight in PRIOR_WEIGHTS:
                combined = {half: product_of_experts(probe[half], prior[half], weight) for half in probe}
                right = accuracy(combined["validation"], [t.genre for t in halves["validation"]])[0]
                candidates.append((right, strength, weight, combined))
        # ties go to the stronger regularisation and the lighter prior (first in the loops' order)
        best = {
            "probe": max((c for c in candidates if c[2] == 0), key=lambda c: c[0]),
            "poe": max(candidates, key=lambda c: c[0]),
        }
        for kind, label in (("probe", f"{name} probe"), ("poe", f"{name} probe x EfficientAT zero-shot")):
            _, strength, weight, combined = best[kind]
            cv = cross_validated_probabilities(train, labels, strength, len(GENRES))
            gtzan = cv if kind == "probe" else product_of_experts(cv, gtzan_prior, weight)
            chosen = {"strength": strength} | ({"prior_weight": weight} if kind == "poe" else {})
            add_row(label, combined, gtzan, "5-fold CV by track", chosen)

    write_text_atomic(args.output, json.dumps(rows, indent=2))
    print(
        "| system | chosen on validation | Emotify validation | Emotify test | test: classical / pop / rock | GTZAN |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for row in rows:
        chosen = ", ".join(f"{k} {v:g}" for k, v in row["chosen"].items()) or "–"
        validation, test = row["validation"], row["test"]
        per_genre = " / ".join(str(test["per_genre"][g]) for g in SCORED)
        gtzan = row.get("gtzan")
        gtzan_text = f"{gtzan['right']}/{gtzan['count']} ({gtzan['protocol']})" if gtzan else "–"
        print(
            f"| {row['system']} | {chosen} | {validation['right']}/{validation['count']} | "
            f"{test['right']}/{test['count']} ({test['right'] / test['count']:.2f}) | {per_genre} | {gtzan_text} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
