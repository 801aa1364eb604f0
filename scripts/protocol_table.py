"""One table of every system under the project's protocols: GenreViT models, the teachers and their ensembles, and
the anchors.

    python scripts/protocol_table.py --gtzan ../shared/data/gtzan \
        --emotify ../shared/data/unlabelled-music/emotify \
        --efficientat runs/teacher/efficientat-gtzan.npz runs/teacher/efficientat-emotify.npz \
        --musicnn runs/teacher/msd-gtzan.npz runs/teacher/msd-emotify.npz \
        --model shipped=checkpoints/genre-vit-gtzan [--model NAME=FOLDER ...] \
        --output runs/protocols [--write-record shipped]

Protocols, each scored by track (a track's answer is the mean of its music windows' probabilities, as the product
decides):

1. **Emotify validation half**: the excerpts with odd numeric names in `--emotify`'s classical, pop and rock
   folders. Every choice is made here: the teachers' probe strengths and prior weights here, a model's temperature
   and "none of these" distance in `scripts/calibrate.py`.
2. **Emotify test half**: the excerpts with even names. Reported, never used for a choice.
   Electronic excerpts (none of the ten genres) of each half count only for how often they get a confident genre.
3. **GTZAN 5-fold CV by track** (neighbouring clips share artists, so it flatters): a GenreViT model's own
   `cross_validation.json` ("–" without one); the teachers' and anchors' probes cross-validated here.
4. **GTZAN zero-shot**, for systems that fitted no GTZAN label (EfficientAT's genre classes, musicnn's tag
   mapping): every clip.

Only the GTZAN clips' labels are fitted. Confidence is the product's own answer for a GenreViT model
(`GenreAnalysis.is_confident`: a clear lead, within the "none of these" distance where the model has one); for the
teachers and anchors, the clear-lead rule on their probabilities (`results.has_clear_lead`).

Rows: each `--model`; the teachers (`teacher_ensemble.teacher_systems`: EfficientAT zero-shot, each teacher's probe
and its product with EfficientAT's zero-shot genres, a probe on both teachers' features); musicnn's zero-shot tag
mapping; hand-made librosa clip features + logistic regression.
"""

import argparse
import hashlib
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_vit import GTZAN_GENRES, GenreClassifier
from genre_vit.audio import SAMPLING_RATE, load_audio
from genre_vit.files import write_atomic, write_text_atomic
from genre_vit.model_folder import CROSS_VALIDATION_FILE, PROTOCOLS_FILE
from genre_vit.results import has_clear_lead
from genre_vit.training.anchors import handmade_features, musicnn_zero_shot_scores
from genre_vit.training.calibration import gtzan_clips
from genre_vit.training.distillation import TeacherTargets
from genre_vit.training.emotify import HALVES, OUT_OF_GENRE, SCORED_GENRES, EmotifyTrack, emotify_tracks
from genre_vit.training.teacher_ensemble import TeacherSystem, probe_systems, teacher_systems, track_means


@dataclass(frozen=True)
class Answers:
    """A system's answers on the Emotify tracks: `(n, C)` probabilities, and where the system is a product, which
    answers were confident and which were "none of these" (`(n,)` bool each; None for the probabilities' rule)."""

    probabilities: np.ndarray
    confident: np.ndarray | None = None
    none_of_these: np.ndarray | None = None


def half_scores(answers: Answers, tracks: list[EmotifyTrack], half: str, has_confidence: bool = True) -> dict:
    """One half's figures: accuracy over its classical, pop and rock excerpts (and per genre), how many of those
    answers were confident and right, how many electronic excerpts got a confident genre, and "none of these"
    counts where the system has that answer. Confidence figures are left out for scores that are not
    probabilities (`has_confidence` False)."""
    genres = np.array([t.genre for t in tracks])
    in_half = np.array([t.half == half for t in tracks])
    scored = in_half & np.isin(genres, SCORED_GENRES)
    electronic = in_half & (genres == OUT_OF_GENRE)
    named = np.array(GTZAN_GENRES)[answers.probabilities.argmax(axis=1)]
    right = named == genres
    result = {
        "tracks": int(scored.sum()),
        "right": int((right & scored).sum()),
        "per_genre": {genre: int((right & scored & (genres == genre)).sum()) for genre in SCORED_GENRES},
        "electronic_tracks": int(electronic.sum()),
    }
    if has_confidence:
        confident = answers.confident if answers.confident is not None else has_clear_lead(answers.probabilities)
        result |= {
            "confident": int((confident & scored).sum()),
            "confident_right": int((confident & scored & right).sum()),
            "electronic_confident": int((confident & electronic).sum()),
        }
    if answers.none_of_these is not None:
        result["none_of_these"] = {
            "scored": int((answers.none_of_these & scored).sum()),
            "electronic": int((answers.none_of_these & electronic).sum()),
        }
    return result


def system_row(answers: Answers, tracks, chosen: dict, gtzan: dict | None, has_confidence: bool = True) -> dict:
    """A row: what was chosen on validation, both halves' figures and the GTZAN figure (`gtzan_figure`)."""
    return (
        {"chosen": chosen}
        | {half: half_scores(answers, tracks, half, has_confidence) for half in HALVES}
        | {"gtzan": gtzan}
    )


def gtzan_figure(probabilities: np.ndarray, labels: np.ndarray, protocol: str) -> dict:
    return {"protocol": protocol, "right": int((probabilities.argmax(axis=1) == labels).sum()), "tracks": len(labels)}


def cached_arrays(path: Path, key: str, compute) -> dict:
    """The arrays `compute()` returns, kept in `path` (written atomically) with `key`; a later call with the same
    key reads them back instead."""
    if path.is_file():
        with np.load(path) as stored:
            if str(stored["cache_key"]) == key:
                return {name: stored[name] for name in stored.files if name != "cache_key"}
    arrays = compute()
    write_atomic(path, lambda temporary: np.savez(temporary, cache_key=key, **arrays))
    return arrays


def model_fingerprint(folder: Path, tracks: list[EmotifyTrack]) -> str:
    """A digest of what decides a model's answers on these tracks: its config, its weights and the track list."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")) + [Path(folder) / "config.json"]:
        digest.update(path.name.encode() + path.read_bytes())
    digest.update("\n".join(str(t.path) for t in tracks).encode())
    return digest.hexdigest()


def genre_vit_row(name: str, folder: Path, tracks: list[EmotifyTrack], output: Path) -> dict:
    """A GenreViT model's row: the product's answers on every Emotify excerpt (kept in `output` with the model's
    fingerprint, so that a rerun reuses them) and its own 5-fold cross-validation on GTZAN."""

    def analyse() -> dict:
        classifier = GenreClassifier.from_pretrained(folder, device="cpu")
        results = [classifier.analyze(track.path) for track in tracks]
        return {
            "probabilities": np.stack([r.mean_probabilities for r in results]),
            "confident": np.array([r.is_confident for r in results]),
            "none_of_these": np.array([r.fits_none_of_these for r in results]),
        }

    stored = cached_arrays(output / f"{name}-answers.npz", model_fingerprint(folder, tracks), analyse)
    gtzan = None
    record = Path(folder) / CROSS_VALIDATION_FILE
    if record.is_file():  # a candidate may go without its cross-validation: "–" in the table
        folds = json.loads(record.read_text())["per_fold"]
        gtzan = {
            "protocol": "5-fold CV",
            "right": sum(round(f["track_accuracy"] * f["test_tracks"]) for f in folds),
            "tracks": sum(f["test_tracks"] for f in folds),
        }
    return system_row(Answers(**stored), tracks, {}, gtzan)


def handmade_features_of(paths: list[Path], cache: Path) -> np.ndarray:
    """The hand-made features (`anchors.handmade_features`) of every clip in `paths`, kept in `cache`."""
    return cached_arrays(
        cache,
        "\n".join(map(str, paths)),
        lambda: {"features": np.stack([handmade_features(load_audio(p), SAMPLING_RATE) for p in paths])},
    )["features"]


def anchor_systems(args, gtzan_keys, gtzan_paths, gtzan_labels, tracks, choose_on, choose_labels) -> list:
    """Hand-made features + LR (strength chosen like a teacher probe's) and, with musicnn's targets, its zero-shot
    tag mapping (scores, not probabilities: no confidence figures)."""
    features = handmade_features_of([*gtzan_paths, *(t.path for t in tracks)], args.output / "handmade-features.npz")
    systems = [
        (system, True)
        for system in probe_systems(
            "hand-made features",
            features[: len(gtzan_paths)],
            gtzan_labels,
            features[len(gtzan_paths) :],
            choose_on,
            choose_labels,
            len(GTZAN_GENRES),
        )
    ]
    if args.musicnn:
        tags = [TeacherTargets.load(path, "tag_probabilities") for path in args.musicnn]

        def zero_shot(targets, keys):
            return musicnn_zero_shot_scores(track_means([targets], keys), list(targets.tags), list(GTZAN_GENRES))

        zero = TeacherSystem(
            "musicnn zero-shot (tag mapping)",
            {},
            zero_shot(tags[1], [t.key for t in tracks]),
            zero_shot(tags[0], gtzan_keys),
            "zero-shot",
        )
        systems.append((zero, False))
    return systems


def markdown(rows: dict) -> str:
    def count(entry: dict | None, numerator: str, denominator: str) -> str:
        if entry is None or numerator not in entry:
            return "–"
        n, d = entry[numerator], entry[denominator]
        return f"{n}/{d} ({n / d:.2f})" if d else "0/0"

    lines = [
        "| system | chosen on validation | Emotify validation | Emotify test | test: classical / pop / rock "
        "| test: confident answers, of them right | test: electronic answered confidently | GTZAN |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        test = row["test"]
        chosen = ", ".join(f"{key} {value:g}" for key, value in row["chosen"].items()) or "–"
        confident = "–"
        if "confident" in test:
            confident = f"{test['confident']}/{test['tracks']}, {count(test, 'confident_right', 'confident')}"
        gtzan = row.get("gtzan")
        gtzan_text = f"{count(gtzan, 'right', 'tracks')} {gtzan['protocol']}" if gtzan else "–"
        cells = [
            chosen,
            count(row["validation"], "right", "tracks"),
            count(test, "right", "tracks"),
            " / ".join(str(test["per_genre"][genre]) for genre in SCORED_GENRES),
            confident,
            count(test, "electronic_confident", "electronic_tracks"),
            gtzan_text,
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def protocols_record(row: dict, command: str) -> dict:
    """A model's row as its folder's `PROTOCOLS_FILE`: what the page's accuracy line and the model card read."""

    def half(name: str, scores: dict) -> dict:
        return {
            "data": f"Emotify {name} half ({'odd' if name == 'validation' else 'even'}-numbered excerpts) of "
            "classical, pop and rock",
            "tracks": scores["tracks"],
            "correct": scores["right"],
            "track_accuracy": scores["right"] / scores["tracks"],
            "per_genre": scores["per_genre"],
            "confident_answers": scores["confident"],
            "confident_answers_right": scores["confident_right"],
            "electronic_tracks": scores["electronic_tracks"],
            "electronic_answered_confidently": scores["electronic_confident"],
            "none_of_these": scores.get("none_of_these"),
        }

    return {
        "command": command,
        "emotify_test": half("test", row["test"]),
        "emotify_validation": half("validation", row["validation"]),
        "gtzan": row["gtzan"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gtzan", type=Path, required=True, help="genre folders of the labelled GTZAN clips")
    parser.add_argument("--emotify", type=Path, required=True, help="Emotify's genre folders of numbered excerpts")
    parser.add_argument("--efficientat", nargs=2, metavar=("GTZAN_NPZ", "EMOTIFY_NPZ"), help="EfficientAT targets")
    parser.add_argument("--musicnn", nargs=2, metavar=("GTZAN_NPZ", "EMOTIFY_NPZ"), help="musicnn MSD targets")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER", help="GenreViT models")
    parser.add_argument("--output", type=Path, required=True, help="folder for the table and the cached answers")
    parser.add_argument(
        "--write-record",
        metavar="NAME",
        help=f"write the row of the model NAME into its folder's {PROTOCOLS_FILE} (the page's accuracy line)",
    )
    args = parser.parse_args(argv)
    models = dict(spec.partition("=")[::2] for spec in args.model)
    if args.write_record and args.write_record not in models:
        parser.error(f"--write-record {args.write_record}: no --model of that name.")
    if args.musicnn and not args.efficientat:
        parser.error("--musicnn rows are products with EfficientAT's zero-shot genres: give --efficientat too.")
    args.output.mkdir(parents=True, exist_ok=True)
    clips = gtzan_clips(args.gtzan)
    gtzan_keys, gtzan_paths = list(clips), list(clips.values())
    gtzan_labels = np.array([GTZAN_GENRES.index(p.parent.name) for p in gtzan_paths])
    tracks = emotify_tracks(args.emotify)
    choose_on = np.array([i for i, t in enumerate(tracks) if t.half == "validation" and t.genre in SCORED_GENRES])
    choose_labels = np.array([GTZAN_GENRES.index(tracks[i].genre) for i in choose_on])

    rows = {}
    for name, folder in models.items():
        print(f"{name}: analysing {len(tracks)} Emotify excerpts", file=sys.stderr)
        rows[name] = genre_vit_row(name, Path(folder), tracks, args.output)
    systems = []
    if args.efficientat:
        print("teachers", file=sys.stderr)
        systems += [
            (system, True)
            for system in teacher_systems(
                args.efficientat,
                args.musicnn,
                gtzan_keys,
                gtzan_labels,
                [t.key for t in tracks],
                choose_on,
                choose_labels,
                len(GTZAN_GENRES),
            )
        ]
    print("anchors", file=sys.stderr)
    systems += anchor_systems(args, gtzan_keys, gtzan_paths, gtzan_labels, tracks, choose_on, choose_labels)
    for system, has_confidence in systems:
        gtzan = gtzan_figure(system.gtzan_probabilities, gtzan_labels, system.gtzan_protocol)
        rows[system.name] = system_row(Answers(system.probabilities), tracks, system.chosen, gtzan, has_confidence)

    table = markdown(rows)
    write_text_atomic(args.output / "protocols.json", json.dumps(rows, indent=2))
    write_text_atomic(args.output / "protocols.md", table)
    if args.write_record:
        command = "python scripts/protocol_table.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        record = protocols_record(rows[args.write_record], command)
        write_text_atomic(Path(models[args.write_record]) / PROTOCOLS_FILE, json.dumps(record, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
