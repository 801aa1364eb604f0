"""scripts/protocol_table.py: the confidence rule is the product's, and cross-dataset tracks get the teacher's keys."""

import importlib.util

import numpy as np
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
    assert row["artist"] == {"right": 3, "tracks": 4} and row["artist_confident"] == {"confident": 3, "tracks": 4}
    assert row["confident_right"] == {"right": 2, "confident": 2}
    assert row["out_of_genre_confident"] == {"confident": 0, "tracks": 2}
    line = script.markdown(rows).splitlines()[2]
    cells = "0.80 (8/10) | 0.75 (3/4) | 1.00 (4/4) | 1.00 (2/2) | 0.75 (3/4) | 0.00 (0/2) | 1 / 2 / 2"
    assert line == f"| model | {cells} |"
    record = script.protocols_record(row, "python scripts/protocol_table.py ...", 6)
    assert record["artist_disjoint"]["track_accuracy"] == 0.75 and record["cross_dataset"]["confident_answers"] == 2
    assert record["cross_dataset"]["none_of_these"] == {"artist": 1, "cross": 2, "out_of_genre": 2}


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
