"""scripts/protocol_table.py: the Emotify halves, the product's confidence rule, the rows and the record."""

import importlib.util
import json

import numpy as np
from conftest import REPOSITORY, make_analysis

from genre_vit import GTZAN_GENRES
from genre_vit.results import has_clear_lead
from genre_vit.training.emotify import EmotifyTrack, emotify_tracks


def load_script():
    spec = importlib.util.spec_from_file_location("protocol_table", REPOSITORY / "scripts" / "protocol_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_clear_lead_rule_is_the_pages():
    probabilities = np.random.default_rng(0).dirichlet(np.full(10, 0.3), size=200)
    expected = [not make_analysis(row[None, :]).is_uncertain for row in probabilities]
    assert has_clear_lead(probabilities).tolist() == expected


def test_emotify_halves_come_from_odd_and_even_numbers_keyed_as_the_teachers_key_them(tmp_path):
    for folder, names in {"rock": ["1", "2"], "electronic": ["1", "7"], "classical": ["9", "notes"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.opus").write_bytes(b"")
    tracks = emotify_tracks(tmp_path)
    by_key = {track.key: (track.genre, track.half) for track in tracks}
    assert by_key == {  # a folder prefix only where names repeat; a name that is no number is in neither half
        "9": ("classical", "validation"),
        "electronic.1": ("electronic", "validation"),
        "7": ("electronic", "validation"),
        "rock.1": ("rock", "validation"),
        "2": ("rock", "test"),
    }
    assert [track.key for track in emotify_tracks(tmp_path, "test")] == ["2"]


def tracks_and_answers():
    """Eight excerpts: per half, a classical, a pop and a rock excerpt and an electronic one; the product answered
    each with a clear genre, except where it held back."""
    genres = ["classical", "pop", "rock", "electronic"] * 2
    halves = ["validation"] * 4 + ["test"] * 4
    tracks = [EmotifyTrack(f"/e/{g}/{i}.opus", str(i), g, h) for i, (g, h) in enumerate(zip(genres, halves))]
    named = ["classical", "pop", "jazz", "disco", "classical", "rock", "rock", "disco"]
    probabilities = np.full((8, 10), 0.01)
    probabilities[np.arange(8), [GTZAN_GENRES.index(g) for g in named]] = 0.91
    return tracks, probabilities


def test_a_row_counts_each_half_with_the_products_answers():
    script = load_script()
    tracks, probabilities = tracks_and_answers()
    confident = np.array([True, True, True, False, True, False, True, True])  # the product held back two
    none_of_these = np.array([False, False, False, True, False, False, False, False])
    answers = script.Answers(probabilities, confident, none_of_these)
    row = script.system_row(answers, tracks, {}, {"protocol": "5-fold CV", "right": 80, "tracks": 99})
    assert row["validation"] == {
        "tracks": 3,
        "right": 2,
        "per_genre": {"classical": 1, "pop": 1, "rock": 0},
        "electronic_tracks": 1,
        "confident": 3,
        "confident_right": 2,
        "electronic_confident": 0,
        "none_of_these": {"scored": 0, "electronic": 1},
    }
    test = row["test"]  # pop called rock (held back), rock right, electronic called disco with confidence
    assert (test["right"], test["confident"], test["confident_right"], test["electronic_confident"]) == (2, 2, 2, 1)
    line = script.markdown({"model": row}).splitlines()[2]
    assert line == (
        "| model | – | 2/3 (0.67) | 2/3 (0.67) | 1 / 0 / 1 | 2/3, 2/2 (1.00) | 1/1 (1.00) | 80/99 (0.81) 5-fold CV |"
    )
    record = script.protocols_record(row, "python scripts/protocol_table.py ...")
    assert record["emotify_test"]["track_accuracy"] == 2 / 3 and record["emotify_test"]["confident_answers"] == 2
    assert record["emotify_validation"]["none_of_these"] == {"scored": 0, "electronic": 1}
    assert record["gtzan"]["right"] == 80 and json.loads(json.dumps(record)) == record


def test_teachers_and_scores_follow_the_clear_lead_rule_or_have_no_confidence():
    script = load_script()
    tracks, probabilities = tracks_and_answers()
    probabilities[4] = np.full(10, 0.1)  # no clear lead: not confident (and blues by argmax: wrong)
    row = script.system_row(script.Answers(probabilities), tracks, {"strength": 0.01}, None)
    assert row["test"]["confident"] == 2 and "none_of_these" not in row["test"]
    scores = script.system_row(script.Answers(probabilities), tracks, {}, None, has_confidence=False)
    assert "confident" not in scores["test"]
    lines = script.markdown({"teacher": row, "zero-shot": scores}).splitlines()
    assert lines[2].startswith("| teacher | strength 0.01 | 2/3 (0.67) | 1/3 (0.33) | 0 / 0 / 1 | 2/3, 1/2 (0.50) |")
    assert lines[3].endswith("| 1/3 (0.33) | 0 / 0 / 1 | – | – | – |")
