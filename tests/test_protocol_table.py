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
