"""The shipped model's card: short, its figures from the records, its Hub metadata a model-index of them."""

import json

from huggingface_hub import ModelCard

from genre_vit import GTZAN_GENRES
from genre_vit.training.model_card import shipped_model_card


def half(right: int, confident: int, confident_right: int, electronic_confident: int) -> dict:
    return {
        "tracks": 105,
        "right": right,
        "per_genre": {"classical": 30, "pop": 10, "rock": right - 40},
        "electronic_tracks": 50,
        "confident": confident,
        "confident_right": confident_right,
        "electronic_confident": electronic_confident,
    }


def test_the_shipped_card_is_short_and_its_model_index_holds_the_measured_figures(tmp_path):
    labels = {str(i): genre for i, genre in enumerate(GTZAN_GENRES)}
    (tmp_path / "config.json").write_text(json.dumps({"id2label": labels, "none_of_these_distance": 1.9}))
    (tmp_path / "training_run.json").write_text(
        json.dumps(
            {
                "parameters": 25417738,
                "linear_probe": {"fitted_on": {"tracks": 99}, "teacher_labelled": {"tracks": 140, "windows": 11000}},
            }
        )
    )
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 1.5, "none_of_these_distance": 1.9}))
    record = {
        "emotify_test": {
            "tracks": 105,
            "correct": 66,
            "track_accuracy": 66 / 105,
            "confident_answers": 50,
            "confident_answers_right": 40,
            "electronic_tracks": 50,
            "electronic_answered_confidently": 3,
        },
        "emotify_validation": {"tracks": 105, "correct": 64},
        "gtzan": {"protocol": "5-fold CV", "right": 86, "tracks": 99},
    }
    (tmp_path / "evaluation_protocols.json").write_text(json.dumps(record))
    rows = {
        "candidate": {"validation": half(64, 50, 40, 2), "test": half(66, 50, 40, 3), "gtzan": record["gtzan"]},
        "musicnn zero-shot (tag mapping)": {
            "validation": {"tracks": 105, "right": 32},
            "test": {"tracks": 105, "right": 40, "electronic_tracks": 50},
            "gtzan": {"protocol": "zero-shot", "right": 52, "tracks": 99},
        },
    }
    sources = [
        {"source": "wesnoth", "tracks": 12, "hours": 0.71, "licences": "GPL-2+", "genre_mix": {"classical": 12}},
        {"source": "ultrastar", "tracks": 5, "hours": 0.2, "licences": "CC BY-NC 3.0", "genre_mix": {"pop": 4}},
    ]
    text = shipped_model_card(tmp_path, rows, "candidate", sources, "distilled from scratch.", "me/genre-vit")
    assert len(text.splitlines()) <= 150
    card = ModelCard(text)
    results = card.data.eval_results
    assert [(r.dataset_type, r.metric_value) for r in results] == [("emotify", round(66 / 105, 4)), ("gtzan", 0.8687)]
    assert "| **candidate** | 64/105 | 66/105 | 50, 40 | 3/50 | 86/99 5-fold CV |" in text
    assert "| musicnn zero-shot (tag mapping) | 32/105 | 40/105 | – | – | 52/99 zero-shot |" in text
    assert "| ultrastar | 5 | 0.20 | CC BY-NC 3.0 | pop 4 |" in text
    assert "on 11,000" in text.replace("\n", " ") and 'GenreClassifier.from_pretrained("me/genre-vit")' in text
