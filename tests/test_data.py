"""Loading tracks from a Hub-style dataset (audio as undecoded bytes, genre as a ClassLabel), offline."""

import io

import soundfile
from datasets import ClassLabel, Dataset, Features, Value

from genre_vit import GenreViTFeatureExtractor
from genre_vit.data import load_tracks, make_windows
from genre_vit.testing import synthetic_track


def test_hub_style_dataset_with_audio_bytes(tmp_path):
    """The layout of Hub audio datasets: an `audio` struct of bytes and path, and a `genre` ClassLabel. It is
    loaded with `datasets.load_dataset`, the same call that reads a Hub id online."""
    names = ["rock", "blues"]
    rows = {"audio": [], "genre": []}
    for label, genre in enumerate(names):
        for index in range(2):
            buffer = io.BytesIO()
            soundfile.write(buffer, synthetic_track(label, 5.0, seed=index), 22050, format="WAV")
            rows["audio"].append({"bytes": buffer.getvalue(), "path": f"{genre}.{index:05d}.wav"})
            rows["genre"].append(label)
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "genre": ClassLabel(names=names)})
    (tmp_path / "dataset" / "data").mkdir(parents=True)
    Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "dataset" / "data" / "train-00000-of-00001.parquet")

    tracks = load_tracks(str(tmp_path / "dataset"))  # a path that is a Hub-style dataset repository
    assert tracks.features["label"].names == ["blues", "rock"]  # not GTZAN's full set: alphabetical
    assert list(tracks["track_id"]) == ["rock.00000", "rock.00001", "blues.00000", "blues.00001"]
    assert list(tracks["label"]) == [1, 1, 0, 0]
    windows = make_windows(tracks, GenreViTFeatureExtractor())
    assert len(windows) == 8 and sorted(windows.unique("track_id")) == sorted(tracks["track_id"])
