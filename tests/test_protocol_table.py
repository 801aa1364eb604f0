"""scripts/protocol_table.py: the confidence rule is the product's, and cross-dataset tracks get the teacher's keys."""

import importlib.util

import numpy as np
import pytest
from conftest import REPOSITORY
from test_results import make_analysis

from genre_vit import GTZAN_GENRES


def load_script():
    spec = importlib.util.spec_from_file_location("protocol_table", REPOSITORY / "scripts" / "protocol_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_confidence_is_the_pages_rule():
    script = load_script()
    probabilities = np.random.default_rng(0).dirichlet(np.full(10, 0.3), size=200)
    expected = [not make_analysis(row[None, :]).is_uncertain for row in probabilities]
    assert script.confident(probabilities).tolist() == expected


def test_cross_dataset_tracks_are_keyed_as_the_teacher_keys_them(tmp_path):
    script = load_script()
    for folder, names in {"rock": ["1", "2"], "electronic": ["1", "7"], "classical": ["9"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.opus").write_bytes(b"")
    files, labels, keys = script.cross_dataset_tracks(tmp_path)
    assert keys == ["9", "electronic.1", "7", "rock.1", "2"]  # a folder prefix only where names repeat
    by_key = dict(zip(keys, labels))
    assert by_key["rock.1"] == GTZAN_GENRES.index("rock") and by_key["electronic.1"] is None
    assert by_key["9"] == GTZAN_GENRES.index("classical") and by_key["2"] == GTZAN_GENRES.index("rock")


def test_a_row_scored_with_the_products_answers_and_its_record():
    script = load_script()
    probabilities = np.eye(10)[[0, 1, 2, 3]] * 0.9 + 0.01  # every answer clear by the probabilities' rule
    truth = {"artist": np.array([0, 1, 2, 0]), "cross": np.array([0, 1, 2, 3])}
    rows = {}
    script.score(
        rows,
        "model",
        {"artist": probabilities, "cross": probabilities},
        truth,
        out_of_genre=probabilities[:2],
        confident_by_protocol={  # the product held back some: "uncertain" or "none of these"
            "artist": np.array([True, False, True, True]),
            "cross": np.array([True, True, False, False]),
            "out_of_genre": np.array([False, False]),
        },
    )
    rows["model"] |= {"cv": {"right": 8, "tracks": 10}, "none_of_these": {"artist": 1, "cross": 2, "out_of_genre": 2}}
    row = rows["model"]
    assert row["artist"] == {"right": 3, "tracks": 4}
    assert row["artist_confident"] == {"confident": 3, "tracks": 4, "right": 2}  # the fourth track: confident, wrong
    assert row["confident_right"] == {"right": 2, "confident": 2}
    assert row["out_of_genre_confident"] == {"confident": 0, "tracks": 2}
    line = script.markdown(rows).splitlines()[2]
    cells = "0.80 (8/10) | 0.75 (3/4) | 1.00 (4/4) | 1.00 (2/2) | 0.75 (3/4), 2 right | 0.00 (0/2) | 1 / 2 / 2"
    assert line == f"| model | {cells} |"
    record = script.protocols_record(row, "python scripts/protocol_table.py ...", 6)
    assert record["artist_disjoint"]["track_accuracy"] == 0.75 and record["cross_dataset"]["confident_answers"] == 2
    assert record["artist_disjoint"]["confident_answers_right"] == 2
    assert record["cross_dataset"]["none_of_these"] == {"artist": 1, "cross": 2, "out_of_genre": 2}


def test_cross_dataset_answers_are_counted_by_their_top_probability():
    """Each step counts the answers at least that sure and the right ones among them, whatever the product's verdict;
    a step no answer reaches is shown as such, not divided by zero."""
    script = load_script()
    top = np.array([0.35, 0.5, 0.65, 0.7])
    probabilities = np.repeat(((1 - top) / 9)[:, None], 10, axis=1)  # the rest spread evenly
    probabilities[np.arange(4), [0, 1, 2, 3]] = top
    truth = np.array([0, 1, 5, 3])  # the third answer is wrong
    rows = {}
    script.score(rows, "model", {"cross": probabilities}, {"cross": truth})
    counts = [
        (entry["at_least"], entry["answers"], entry["right"]) for entry in rows["model"]["cross_by_top_probability"]
    ]
    assert counts == [(0.3, 4, 3), (0.45, 3, 2), (0.6, 2, 1), (0.75, 0, 0)]
    table = script.markdown(rows)
    assert "| model | 0.75 (3/4) | 0.67 (2/3) | 0.50 (1/2) | – (0/0) |" in table.splitlines()


def test_fold_models_follow_the_probe_options_the_calibration_records(tmp_path):
    """A model calibrated with `--probe-options` has its artist-disjoint fold models fitted the same way, and a
    change of those options is a different model to the table's cache."""
    import json

    script = load_script()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert script.probe_options(tmp_path) == []
    plain = script.model_fingerprint(tmp_path)
    options = ["--teacher-targets", "t.npz", "--probe-unlabelled-data", "music"]
    (tmp_path / "calibration.json").write_text(json.dumps({"probe_options": options}))
    assert script.probe_options(tmp_path) == options
    assert script.model_fingerprint(tmp_path) != plain


def test_a_probe_heard_the_excerpts_through_a_folder_of_links(tmp_path):
    """Unlabelled music gathered as a folder of links to several collections: a probe taught on it heard the
    cross-dataset excerpts its links reach, and one taught on the other collection alone did not."""
    import json

    script = load_script()
    cross, other = tmp_path / "cross", tmp_path / "other"
    for folder in (cross / "rock", cross / "pop", other / "game"):
        folder.mkdir(parents=True)
        (folder / "1.opus").write_bytes(b"")
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    (gathered / "rock").symlink_to(cross / "rock")
    (gathered / "game").symlink_to(other / "game")
    cross_paths = script.cross_dataset_tracks(cross)[0]
    for music, heard in ((gathered, True), (other, False), (cross, True)):
        model = tmp_path / f"model-{music.name}"
        model.mkdir()
        (model / "calibration.json").write_text(json.dumps({"probe_options": ["--probe-unlabelled-data", str(music)]}))
        assert script.heard_cross_dataset_tracks(model, cross_paths) is heard


def test_a_model_that_heard_the_excerpts_gets_a_cross_fitted_record():
    script = load_script()
    row = {
        "artist": {"right": 3, "tracks": 4},
        "artist_confident": {"confident": 2, "tracks": 4, "right": 2},
        "cross": {"right": 6, "tracks": 8},
        "confident_right": {"right": 3, "confident": 4},
        "out_of_genre_confident": {"confident": 1, "tracks": 2},
        "none_of_these": {"artist": 0, "cross": 1, "out_of_genre": 1},
    }
    fitted = {
        "cross": {"right": 4, "tracks": 8},
        "confident_right": {"right": 1, "confident": 2},
        "out_of_genre_confident": {"confident": 0, "tracks": 2},
        "none_of_these": {"artist": None, "cross": 1, "out_of_genre": 2},
    }
    record = script.protocols_record(row, "python scripts/protocol_table.py ...", 10, fitted)["cross_dataset"]
    assert record["track_accuracy"] == 0.75 and record["probe_heard_the_tracks"] is True
    assert record["cross_fitted"]["track_accuracy"] == 0.5
    assert (record["cross_fitted"]["confident_answers"], record["cross_fitted"]["confident_answers_right"]) == (2, 1)
    line = script.markdown({"fitted": fitted}).splitlines()[2]
    assert line == "| fitted | – | – | 0.50 (4/8) | 0.50 (1/2) | – | 0.00 (0/2) | – / 1 / 2 |"


@pytest.mark.slow
def test_cross_fitted_answers_come_from_probes_that_never_heard_the_excerpt(tmp_path, tiny_model_dir):
    """A model whose probe learnt from the cross-dataset folder's audio: each excerpt is answered by the recipe
    refitted on the other half of that folder, whose excerpts keep the track ids their teacher targets have."""
    import json
    import shutil

    import soundfile
    from test_linear_probe import write_genre_teacher_targets

    from genre_vit.testing import synthetic_track, write_synthetic_genre_dataset

    gtzan = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=2, seconds=8.0) / "genres"
    (gtzan / "splits").mkdir()
    (gtzan / "splits" / "train_filtered.txt").write_text("".join(f"{g}.00000\n" for g in GTZAN_GENRES))
    (gtzan / "splits" / "valid_filtered.txt").write_text("".join(f"{g}.00001\n" for g in GTZAN_GENRES))
    (gtzan / "splits" / "test_filtered.txt").write_text("")
    cross = tmp_path / "cross"
    for folder, genre in (("rock", 9), ("electronic", 3)):
        (cross / folder).mkdir(parents=True)
        for name in ("1", "2"):  # "1" repeats across folders: its track id is "rock.1", "electronic.1"
            soundfile.write(cross / folder / f"{name}.wav", synthetic_track(genre, 8.0, seed=int(name) + genre), 22050)
    tracks = load_script().cross_dataset_tracks(cross)
    genre_of_track = {f"{g}.{k:05d}": index for index, g in enumerate(GTZAN_GENRES) for k in (0, 1)}
    genre_of_track |= {track: 9 for track in tracks[2]}
    targets = write_genre_teacher_targets(tmp_path / "teacher.npz", genre_of_track)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    options = ["--teacher-targets", str(targets), "--probe-unlabelled-data", str(cross), "--probe-strengths", "1"]
    (model / "calibration.json").write_text(json.dumps({"probe_options": options}))

    script = load_script()
    assert script.heard_cross_dataset_tracks(model, tracks[0])
    assert not script.heard_cross_dataset_tracks(tiny_model_dir, tracks[0])
    output = tmp_path / "protocols"
    answers = script.cross_fitted_answers("m", model, gtzan, tracks, output)
    assert answers["cross_probabilities"].shape == (4, 10) and answers["cross_confident"].shape == (4,)
    for half in range(2):
        work = output / f"m-cross-fitted-{half}"
        heard = sorted(p.stem for p in (work / "unlabelled-music").rglob("*.wav"))
        assert heard == sorted(set(tracks[2]) - set(tracks[2][half::2]))  # the other half, ids kept
        run = json.loads((work / "model" / "training_run.json").read_text())
        assert run["linear_probe"]["teacher_labelled"]["tracks"] == 2
        assert run["linear_probe"]["fitted_on"]["tracks"] == 20  # every listed GTZAN clip
    again = script.cross_fitted_answers("m", model, gtzan, tracks, output)  # the cache, not a refit
    np.testing.assert_array_equal(again["cross_probabilities"], answers["cross_probabilities"])
