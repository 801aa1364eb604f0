"""One table of every system under the three protocols, with the confidence figures: GenreViT models and anchors.

    python scripts/protocol_table.py --gtzan ../shared/data/gtzan \
        --cross-dataset ../shared/data/unlabelled-music/emotify \
        --teacher-targets runs/teacher/protocol-msd.npz --model bundled=checkpoints/genre-vit-gtzan \
        --output runs/protocols

Protocols, each scored by track (a track's answer is the mean of its window probabilities, as the product decides):

1. **5-fold CV**: stratified folds by track of the GTZAN clips (`split_tracks_for_fold`, seed 42). Neighbouring
   GTZAN ids share artists, so this flatters every system. A GenreViT model's figure is its own
   `cross_validation.json` ("–" where it has none); the anchors are fitted and scored here on the same folds.
2. **Artist-disjoint**: the fault-filtered partitions of `--gtzan`/splits (train against valid + test), two folds,
   fitted on one partition and scored on the other, both ways. A GenreViT model keeps its encoder and refits its
   linear probe per fold (`train.py --init-from MODEL --classifier-only`, the bundled recipe's last step, with the
   probe options its `calibration.json` records, e.g. the teacher-labelled unlabelled music).
3. **Cross-dataset**: fitted on every GTZAN clip, scored on the `--cross-dataset` folders named after GTZAN genres
   (labels from folder names: a test only, never fitted on); folders of other genres (electronic) count only for how
   often they get a confident answer. A model whose probe learnt from those tracks' audio (`--probe-unlabelled-data`
   over the folder; never their labels) gets a second, cross-fitted row: each track answered by the recipe refitted
   without that track's audio (`cross_fitted_answers`), the figure that holds for music the probe never heard.

Confidence is the product's rule (`GenreAnalysis.is_confident`): an answer is confident when its top genre has at
least 45% and leads the second by 15 points, and, for a model with a "none of these genres" threshold, the song lies
within it (the fold models answer with the evaluated model's temperature and threshold). Reported: the share of
confident cross-dataset answers that are right, the share of artist-disjoint GTZAN tracks answered confidently, and
the share of out-of-genre excerpts answered confidently. A second table counts the cross-dataset answers whose top
genre is at least 0.30, 0.45, 0.60 or 0.75 probable and how many of them are right: whether a stricter threshold
would make confident answers right more often.

Anchors (`--teacher-targets`: musicnn MSD outputs for every GTZAN and cross-dataset track, from
`scripts/musicnn_teacher.py`): musicnn zero-shot (fixed tag mapping; it cannot name classical or reggae), hand-made
librosa clip features + logistic regression, and the teacher probe (musicnn `max_pool` and tag means + logistic
regression), also on musicnn's penultimate layer alone (the teacher of `--probe-unlabelled-data`).
"""

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from genre_vit import GTZAN_GENRES, GenreClassifier
from genre_vit.audio import SAMPLING_RATE, load_audio
from genre_vit.files import write_atomic, write_text_atomic
from genre_vit.model_folder import CALIBRATION_FILE, PROTOCOLS_FILE
from genre_vit.results import CLEAR_LEAD_MIN_MARGIN, CLEAR_LEAD_MIN_PROBABILITY
from genre_vit.training.anchors import handmade_features, musicnn_zero_shot_scores, probe
from genre_vit.training.calibration import artist_disjoint_partitions, fit_probe_folder, gtzan_clips
from genre_vit.training.data import load_tracks, load_tracks_from_folder, split_tracks_for_fold
from genre_vit.training.distillation import TeacherTargets

TOP_PROBABILITY_STEPS = (0.3, 0.45, 0.6, 0.75)
"""The cross-dataset answers are also counted by their top genre's probability (at least each of these), to show
whether a stricter threshold would make the confident answers right more often."""


def confident(probabilities: np.ndarray) -> np.ndarray:
    """`(n,)` bool: the product's confidence rule on `(n, C)` track probabilities."""
    ranked = np.sort(probabilities, axis=1)[:, ::-1]
    return (ranked[:, 0] >= CLEAR_LEAD_MIN_PROBABILITY) & (ranked[:, 0] - ranked[:, 1] >= CLEAR_LEAD_MIN_MARGIN)


def cross_dataset_tracks(root: Path) -> tuple[list[Path], list[int | None], list[str]]:
    """Files of the cross-dataset folders, their GTZAN label id (None for folders of other genres), and their track
    ids (`data.load_tracks_from_folder`: the file name, with the folder as prefix where names repeat across folders,
    as `scripts/musicnn_teacher.py` keys them)."""
    tracks = load_tracks_from_folder(root)
    files = [Path(path) for path in tracks["audio_path"]]
    labels = [GTZAN_GENRES.index(p.parent.name) if p.parent.name in GTZAN_GENRES else None for p in files]
    return files, labels, list(tracks["track_id"])


def gtzan_splits(gtzan: Path, ids: list[str], labels: np.ndarray):
    """`{protocol: [(train indices, test indices), ...]}` over the GTZAN tracks `ids`: the 5 CV folds and the two
    artist-disjoint folds (`calibration.artist_disjoint_partitions`, both ways)."""
    tracks = load_tracks(gtzan)
    order = {track: index for index, track in enumerate(ids)}
    folds = []
    for fold in range(5):
        split = split_tracks_for_fold(tracks, 5, fold, 0.15, 42)
        test = [order[t] for t in split["test"]["track_id"]]
        folds.append((np.setdiff1d(np.arange(len(ids)), test), np.array(test)))
    first, second = (np.array([order[t] for t in part]) for part in artist_disjoint_partitions(gtzan))
    return {"cv": folds, "artist": [(first, second), (second, first)]}


def fit_probe(train_x, train_y, test_x) -> np.ndarray:
    """The anchors' logistic regression (`anchors.probe`); `(n, 10)` probabilities of `test_x` in GTZAN order."""
    fitted, classes = probe(train_x, train_y, test_x)
    probabilities = np.zeros((len(test_x), len(GTZAN_GENRES)))
    probabilities[:, classes] = fitted
    return probabilities


def clip_features(path: Path) -> np.ndarray:
    """The hand-made features (`anchors.handmade_features`) of a whole clip."""
    return handmade_features(load_audio(path), SAMPLING_RATE)


def score(
    rows: dict,
    name: str,
    probabilities_by_protocol: dict,
    labels: dict,
    out_of_genre=None,
    confident_by_protocol: dict | None = None,
) -> None:
    """Accuracy and confidence figures of one system into `rows[name]`. Which answers are confident is
    `confident_by_protocol[protocol]` (`(n,)` bool, for "artist", "cross" and "out_of_genre") where given (the
    product's own answer, with its "none of these genres"), else the probabilities' rule (`confident`)."""
    given = confident_by_protocol or {}

    def sure_of(protocol: str, probabilities: np.ndarray) -> np.ndarray:
        return given[protocol] if protocol in given else confident(probabilities)

    row = {}
    for protocol in ("cv", "artist", "cross"):
        if protocol not in probabilities_by_protocol:
            continue
        probabilities, truth = probabilities_by_protocol[protocol], labels[protocol]
        right = probabilities.argmax(axis=1) == truth
        row[protocol] = {"right": int(right.sum()), "tracks": int(len(truth))}
        if protocol == "cross":
            sure = sure_of("cross", probabilities)
            row["confident_right"] = {"right": int((sure & right).sum()), "confident": int(sure.sum())}
            row["cross_by_top_probability"] = right_by_top_probability(probabilities, right)
        if protocol == "artist":
            sure = sure_of("artist", probabilities)
            row["artist_confident"] = {
                "confident": int(sure.sum()),
                "tracks": len(truth),
                "right": int((sure & right).sum()),
            }
    if out_of_genre is not None:
        sure = sure_of("out_of_genre", out_of_genre)
        row["out_of_genre_confident"] = {"confident": int(sure.sum()), "tracks": len(out_of_genre)}
    rows[name] = row


def right_by_top_probability(probabilities: np.ndarray, right: np.ndarray) -> list[dict]:
    """For each of `TOP_PROBABILITY_STEPS`, how many answers have a top genre at least that probable and how many of
    those are right (`probabilities` `(n, C)`, `right` `(n,)` bool); "uncertain" and "none of these" play no part."""
    top = probabilities.max(axis=1)
    counts = []
    for step in TOP_PROBABILITY_STEPS:
        sure = top >= step
        counts.append({"at_least": step, "answers": int(sure.sum()), "right": int((right & sure).sum())})
    return counts


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


def model_fingerprint(folder: Path) -> str:
    """A digest of what decides a model's answers: its config and its weights, and how its fold models are fitted
    (`probe_options`)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")) + [Path(folder) / "config.json"]:
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(" ".join(probe_options(folder)).encode())
    return digest.hexdigest()


def probe_options(folder: Path) -> list[str]:
    """The `train.py` options its calibration fitted the model's probe with (its `calibration.json`), which the
    artist-disjoint fold models are fitted with too: the same recipe, on one partition."""
    calibration = Path(folder) / CALIBRATION_FILE
    return list(json.loads(calibration.read_text()).get("probe_options", [])) if calibration.is_file() else []


def answers_of(results) -> dict:
    """What the table needs of each analysed track: its mean probabilities and the product's answer."""
    return {
        "probabilities": np.stack([r.mean_probabilities for r in results]),
        "confident": np.array([r.is_confident for r in results]),
        "none_of_these": np.array([r.fits_none_of_these for r in results]),
    }


def genre_vit_answers(name, folder, gtzan, gtzan_paths, gtzan_labels, splits, cross, output) -> dict:
    """The answers of a GenreViT model on the artist-disjoint folds' held-out tracks and on the cross-dataset tracks
    (module docstring), kept in `output` with the model's fingerprint so that a rerun reuses them. The fold models
    answer with the evaluated model's temperature and "none of these genres" threshold, so that every figure
    follows the product's rule for that model."""
    return cached_arrays(
        output / f"{name}-answers.npz",
        model_fingerprint(folder),
        lambda: compute_genre_vit_answers(name, folder, gtzan, gtzan_paths, gtzan_labels, splits, cross, output),
    )


def answering_as(refitted_model: Path, evaluated: GenreClassifier) -> GenreClassifier:
    """A model refitted by the evaluated model's recipe, answering with the evaluated model's temperature and "none
    of these genres" threshold, so that its answers follow the product's rule for that model."""
    refitted = GenreClassifier.from_pretrained(refitted_model, device="cpu")
    for key, default in (("temperature", 1.0), ("none_of_these_distance", None)):
        setattr(refitted.model.config, key, getattr(evaluated.model.config, key, default))
    return refitted


def compute_genre_vit_answers(name, folder, gtzan, gtzan_paths, gtzan_labels, splits, cross, output) -> dict:
    """`genre_vit_answers`, computed."""
    classifier = GenreClassifier.from_pretrained(folder, device="cpu")
    artist_results, artist_truth = [], []
    for index, (train, test) in enumerate(splits["artist"]):
        train_ids = [gtzan_paths[i].stem for i in train]
        test_ids = [gtzan_paths[i].stem for i in test]
        fold_model = fit_probe_folder(
            Path(folder), gtzan, train_ids, test_ids, output / f"{name}-artist-{index}", probe_options(folder)
        )
        fold_classifier = answering_as(fold_model, classifier)
        artist_results += [fold_classifier.analyze(gtzan_paths[i]) for i in test]
        artist_truth += [gtzan_labels[i] for i in test]
    cross_results = [classifier.analyze(path) for path in cross[0]]
    answers = {f"artist_{key}": value for key, value in answers_of(artist_results).items()}
    answers |= {f"cross_{key}": value for key, value in answers_of(cross_results).items()}
    answers["artist_truth"] = np.array(artist_truth)
    return answers


UNLABELLED_OPTION = "--probe-unlabelled-data"


def unlabelled_music(options: list[str]) -> str | None:
    """The folder of unlabelled music that probe options (`probe_options`) teach the probe on, or None."""
    return options[options.index(UNLABELLED_OPTION) + 1] if UNLABELLED_OPTION in options else None


def heard_cross_dataset_tracks(folder: Path, cross_paths: list[Path]) -> bool:
    """Whether the model's probe learnt from some of the cross-dataset tracks' audio (without their labels): its
    probe options name an unlabelled-music folder that holds them, as files or through links (a folder of links to
    several collections). Its cross-dataset figure is then transductive."""
    music = unlabelled_music(probe_options(folder))
    if music is None:
        return False
    heard = {Path(path) for path in load_tracks_from_folder(music)["audio_path"]}  # resolved paths
    return any(path.resolve() in heard for path in cross_paths)


def cross_fitted_answers(name, folder, gtzan, cross, output) -> dict:
    """The answers on the cross-dataset tracks of probes that never heard the track they answer, for a model whose
    probe learnt from those tracks' audio (`heard_cross_dataset_tracks`). The tracks are split in two halves without
    their labels (every other track in file order); each half is answered by the model's recipe refitted on every
    listed GTZAN clip with the unlabelled music less that half, with the model's temperature and threshold."""
    return cached_arrays(
        output / f"{name}-cross-fitted-answers.npz",
        model_fingerprint(folder),
        lambda: compute_cross_fitted_answers(name, folder, gtzan, cross, output),
    )


def compute_cross_fitted_answers(name, folder, gtzan, cross, output) -> dict:
    """`cross_fitted_answers`, computed."""
    classifier = GenreClassifier.from_pretrained(folder, device="cpu")
    options = probe_options(folder)
    unlabelled = load_tracks_from_folder(unlabelled_music(options))
    first, second = artist_disjoint_partitions(gtzan)
    cross_paths = [path.resolve() for path in cross[0]]
    results = [None] * len(cross_paths)
    for half in range(2):
        answered = set(cross_paths[half::2])
        work = output / f"{name}-cross-fitted-{half}"
        music = work / "unlabelled-music"
        for path, track in zip(map(Path, unlabelled["audio_path"]), unlabelled["track_id"]):
            if path.resolve() not in answered:
                # named by its track id, so that it keeps the id its teacher targets are keyed by
                link = music / path.parent.name / f"{track}{path.suffix}"
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(path.resolve())
        at = options.index(UNLABELLED_OPTION) + 1
        half_options = [*options[:at], str(music), *options[at + 1 :]]
        half_model = fit_probe_folder(Path(folder), gtzan, first + second, [], work, half_options)
        half_classifier = answering_as(half_model, classifier)
        for index in range(half, len(cross_paths), 2):
            results[index] = half_classifier.analyze(cross_paths[index])
    return {f"cross_{key}": value for key, value in answers_of(results).items()}


def genre_vit_rows(rows, name, folder, gtzan, gtzan_paths, gtzan_labels, splits, cross, output) -> None:
    """A GenreViT model under the three protocols (module docstring), with the product's own answers."""
    answers = genre_vit_answers(name, folder, gtzan, gtzan_paths, gtzan_labels, splits, cross, output)
    labels = cross[1]
    in_genre = np.array([label is not None for label in labels])
    truth = {"artist": answers["artist_truth"], "cross": np.array([label for label in labels if label is not None])}
    score_answers(rows, name, answers, truth, in_genre)
    cross_validation = Path(folder) / "cross_validation.json"
    if cross_validation.is_file():  # a candidate may go without its cross-validation: "–" in the table
        record = json.loads(cross_validation.read_text())
        rows[name]["cv"] = {
            "right": sum(round(f["track_accuracy"] * f["test_tracks"]) for f in record["per_fold"]),
            "tracks": sum(f["test_tracks"] for f in record["per_fold"]),
        }
    if heard_cross_dataset_tracks(folder, cross[0]):
        fitted = cross_fitted_answers(name, folder, gtzan, cross, output)
        score_answers(rows, cross_fitted_name(name), fitted, truth, in_genre)


def score_answers(rows: dict, name: str, answers: dict, truth: dict, in_genre: np.ndarray) -> None:
    """`score` a GenreViT model's answers (`answers_of`'s, prefixed `cross_` and, where it has artist-disjoint
    answers, `artist_`) with its "none of these" counts; `in_genre` marks the cross-dataset tracks of GTZAN genres."""
    parts = {"cross": ("cross", in_genre), "out_of_genre": ("cross", ~in_genre)}
    if "artist_probabilities" in answers:
        parts["artist"] = ("artist", slice(None))

    def of(kind: str) -> dict:
        return {protocol: answers[f"{prefix}_{kind}"][chosen] for protocol, (prefix, chosen) in parts.items()}

    probabilities = of("probabilities")
    out_of_genre = probabilities.pop("out_of_genre")
    score(rows, name, probabilities, truth, out_of_genre=out_of_genre, confident_by_protocol=of("confident"))
    flagged = of("none_of_these")
    rows[name]["none_of_these"] = {
        part: int(flagged[part].sum()) if part in flagged else None for part in ("artist", "cross", "out_of_genre")
    }


def cross_fitted_name(name: str) -> str:
    """The table's row of a transductive model's cross-fitted answers (`cross_fitted_answers`)."""
    return f"{name}, cross-fitted (no probe heard the excerpt it answers)"


def handmade_features_of(gtzan_paths, cross_paths, cache: Path) -> dict:
    """The hand-made features of every GTZAN and cross-dataset clip, kept in `cache` (keyed by the file list)."""
    return cached_arrays(
        cache,
        "\n".join(str(p) for p in [*gtzan_paths, *cross_paths]),
        lambda: {
            "gtzan": np.stack([clip_features(p) for p in gtzan_paths]),
            "cross": np.stack([clip_features(p) for p in cross_paths]),
        },
    )


def anchor_rows(rows, teacher_path, gtzan_keys, gtzan_labels, gtzan_paths, splits, cross, output) -> None:
    """musicnn zero-shot, hand-made features + LR and the teacher probe under the three protocols."""
    files, labels, keys = cross
    in_genre = np.array([label is not None for label in labels])
    cross_truth = np.array([label for label in labels if label is not None])
    pooled = TeacherTargets.load(teacher_path, "max_pool")
    tags = TeacherTargets.load(teacher_path, "tag_probabilities")

    def musicnn(keys_):
        return np.stack([np.concatenate([pooled.track_target(k), tags.track_target(k)]) for k in keys_])

    teacher = {"gtzan": musicnn(gtzan_keys), "cross": musicnn(keys)}
    penultimate = TeacherTargets.load(teacher_path, "penultimate")
    teacher_penultimate = {
        part: np.stack([penultimate.track_target(k) for k in keys_])
        for part, keys_ in (("gtzan", gtzan_keys), ("cross", keys))
    }
    handmade = handmade_features_of(gtzan_paths, files, output / "handmade-features.npz")
    y = np.asarray(gtzan_labels)
    for name, features in (
        ("hand-made features + LR", handmade),
        ("teacher probe (musicnn + LR)", teacher),
        ("teacher probe, penultimate layer (musicnn penultimate + LR)", teacher_penultimate),
    ):
        probabilities = {}
        for protocol in ("cv", "artist"):
            pieces = np.zeros((len(y), len(GTZAN_GENRES)))
            scored = []
            for train, test in splits[protocol]:
                pieces[test] = fit_probe(features["gtzan"][train], y[train], features["gtzan"][test])
                scored += list(test)
            probabilities[protocol] = pieces[np.array(scored)]
            splits_truth = y[np.array(scored)]
            probabilities[f"{protocol}_truth"] = splits_truth
        everything = fit_probe(features["gtzan"], y, features["cross"])
        probabilities["cross"] = everything[in_genre]
        truth = {"cv": probabilities.pop("cv_truth"), "artist": probabilities.pop("artist_truth"), "cross": cross_truth}
        score(rows, name, probabilities, truth, out_of_genre=everything[~in_genre])
    # zero-shot: scores, not probabilities, so no confidence figures
    zero = {}
    for part, keys_ in (("gtzan", gtzan_keys), ("cross", keys)):
        mean_tags = np.stack([tags.track_target(k) for k in keys_])
        zero[part] = musicnn_zero_shot_scores(mean_tags, list(tags.tags), list(GTZAN_GENRES)).argmax(axis=1)
    artist_test = np.concatenate([test for _, test in splits["artist"]])
    cv_test = np.concatenate([test for _, test in splits["cv"]])
    rows["musicnn zero-shot"] = {
        "cv": {"right": int((zero["gtzan"][cv_test] == y[cv_test]).sum()), "tracks": len(cv_test)},
        "artist": {"right": int((zero["gtzan"][artist_test] == y[artist_test]).sum()), "tracks": len(artist_test)},
        "cross": {"right": int((zero["cross"][in_genre] == cross_truth).sum()), "tracks": len(cross_truth)},
    }


def protocols_record(row: dict, command: str, cross_tracks: int, cross_fitted: dict | None = None) -> dict:
    """A model's row as its folder's `PROTOCOLS_FILE`: what the page's accuracy line and the model card read. With
    `cross_fitted` (the row of `cross_fitted_answers`, for a model whose probe heard the cross-dataset tracks), the
    cross-dataset entry says so and carries those figures too."""
    artist, cross, out_of_genre = row["artist"], row["cross"], row["out_of_genre_confident"]
    record = {
        "command": command,
        "artist_disjoint": {
            "data": "GTZAN clips",
            "folds": 2,
            "tracks": artist["tracks"],
            "correct": artist["right"],
            "track_accuracy": artist["right"] / artist["tracks"],
            "answered_confidently": row["artist_confident"]["confident"],
            "confident_answers_right": row["artist_confident"]["right"],
            "note": "the fault-filtered partitions (train against valid + test) of the listed clips; the probe "
            "refitted per fold on the frozen encoder. Neither partition holds every genre (no blues or classical in "
            "the first, no reggae or rock in the second).",
        },
        "cross_dataset": {
            "data": "Emotify excerpts of classical, pop and rock",
            "tracks": cross["tracks"],
            "correct": cross["right"],
            "track_accuracy": cross["right"] / cross["tracks"],
            "confident_answers": row["confident_right"]["confident"],
            "confident_answers_right": row["confident_right"]["right"],
            "out_of_genre_tracks": out_of_genre["tracks"],
            "out_of_genre_answered_confidently": out_of_genre["confident"],
            "none_of_these": row.get("none_of_these"),
        },
    }
    if cross_fitted is not None:
        record["cross_dataset"]["probe_heard_the_tracks"] = True
        record["cross_dataset"]["cross_fitted"] = {
            "note": "each track answered by the probe refitted without that track's audio (the tracks split in two "
            "halves without their labels)",
            "correct": cross_fitted["cross"]["right"],
            "track_accuracy": cross_fitted["cross"]["right"] / cross_fitted["cross"]["tracks"],
            "confident_answers": cross_fitted["confident_right"]["confident"],
            "confident_answers_right": cross_fitted["confident_right"]["right"],
            "out_of_genre_answered_confidently": cross_fitted["out_of_genre_confident"]["confident"],
        }
    return record


def markdown(rows: dict) -> str:
    def cell(entry, numerator="right", denominator="tracks"):
        if entry is None:
            return "–"
        n, d = entry[numerator], entry[denominator]
        return f"{n / d:.2f} ({n}/{d})" if d else "– (0/0)"

    lines = [
        "| system | 5-fold CV (leaky) | artist-disjoint | cross-dataset | confident answers right (cross-dataset) "
        "| GTZAN tracks answered confidently, and how many of those right (artist-disjoint) "
        "| out-of-genre excerpts answered confidently "
        '| "none of these" (artist-disjoint / cross-dataset / out-of-genre) |',
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        cells = [
            cell(row.get("cv")),
            cell(row.get("artist")),
            cell(row.get("cross")),
            cell(row.get("confident_right"), "right", "confident"),
            cell(row.get("artist_confident"), "confident", "tracks")
            + (f", {row['artist_confident']['right']} right" if "artist_confident" in row else ""),
            cell(row.get("out_of_genre_confident"), "confident", "tracks"),
            " / ".join(
                "–" if row["none_of_these"][part] is None else str(row["none_of_these"][part])
                for part in ("artist", "cross", "out_of_genre")
            )
            if "none_of_these" in row
            else "–",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cross-dataset answers whose top genre is at least this probable, and the share of them right (the top "
        'probability alone: neither "uncertain" nor "none of these" plays a part):',
        "",
        "| system | " + " | ".join(f"≥ {step:.2f}" for step in TOP_PROBABILITY_STEPS) + " |",
        "| --- |" + " ---: |" * len(TOP_PROBABILITY_STEPS),
    ]
    for name, row in rows.items():
        if "cross_by_top_probability" in row:
            cells = [cell(entry, "right", "answers") for entry in row["cross_by_top_probability"]]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gtzan", type=Path, required=True, help="genre folders of GTZAN clips, with splits/")
    parser.add_argument("--cross-dataset", type=Path, required=True, help="genre folders of music from elsewhere")
    parser.add_argument("--teacher-targets", type=Path, help="musicnn outputs of every track, for the anchors")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER", help="GenreViT models")
    parser.add_argument("--output", type=Path, required=True, help="folder for the table and the fold models")
    parser.add_argument(
        "--write-record",
        metavar="NAME",
        help=f"write the row of the model NAME into its folder's {PROTOCOLS_FILE} (the page's accuracy line)",
    )
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    clips = gtzan_clips(args.gtzan)
    gtzan_paths, gtzan_keys = list(clips.values()), list(clips)
    gtzan_labels = [GTZAN_GENRES.index(p.parent.name) for p in gtzan_paths]
    splits = gtzan_splits(args.gtzan, gtzan_keys, np.asarray(gtzan_labels))
    cross = cross_dataset_tracks(args.cross_dataset)
    rows = {}
    for spec in args.model:
        name, _, folder = spec.partition("=")
        print(f"{name}: fitting the artist-disjoint folds and analysing the cross-dataset tracks", file=sys.stderr)
        genre_vit_rows(rows, name, Path(folder), args.gtzan, gtzan_paths, gtzan_labels, splits, cross, args.output)
    if args.teacher_targets:
        print("anchors", file=sys.stderr)
        anchor_rows(rows, args.teacher_targets, gtzan_keys, gtzan_labels, gtzan_paths, splits, cross, args.output)
    table = markdown(rows)
    write_text_atomic(args.output / "protocols.json", json.dumps(rows, indent=2))
    if args.write_record:
        folder = Path(dict(spec.partition("=")[::2] for spec in args.model)[args.write_record])
        command = "python scripts/protocol_table.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        record = protocols_record(
            rows[args.write_record], command, len(cross[0]), rows.get(cross_fitted_name(args.write_record))
        )
        write_text_atomic(folder / PROTOCOLS_FILE, json.dumps(record, indent=2) + "\n")
    write_text_atomic(args.output / "protocols.md", table)
    print(table)


if __name__ == "__main__":
    main()
