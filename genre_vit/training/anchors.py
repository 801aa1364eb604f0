"""The anchors GenreViT is compared with: musicnn zero-shot, hand-made features + logistic regression, and the
teacher probe (musicnn features + logistic regression). `scripts/baselines.py` and `scripts/protocol_table.py`
score them."""

import numpy as np

MUSICNN_MSD_GENRE_TAGS = {
    "blues": ["blues"],
    "country": ["country"],
    "disco": ["dance", "funk"],
    "hiphop": ["Hip-Hop"],
    "jazz": ["jazz"],
    "metal": ["metal", "heavy metal"],
    "pop": ["pop"],
    "rock": ["rock", "classic rock", "hard rock"],
}
"""The fixed zero-shot mapping of the ablation protocol; classical and reggae have no MSD tag."""


def handmade_features(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Clip statistics of librosa features: MFCC (20), spectral contrast (7) and chroma (12) means and standard
    deviations, zero-crossing rate and spectral centroid mean and deviation, and tempo: 83 values."""
    import librosa

    mfcc = librosa.feature.mfcc(y=waveform, sr=sampling_rate, n_mfcc=20)
    contrast = librosa.feature.spectral_contrast(y=waveform, sr=sampling_rate)
    chroma = librosa.feature.chroma_stft(y=waveform, sr=sampling_rate)
    zcr = librosa.feature.zero_crossing_rate(waveform)
    centroid = librosa.feature.spectral_centroid(y=waveform, sr=sampling_rate) / sampling_rate
    tempo = np.atleast_1d(librosa.feature.tempo(y=waveform, sr=sampling_rate))[:1] / 200.0
    parts = [np.concatenate([f.mean(axis=1), f.std(axis=1)]) for f in (mfcc, contrast, chroma, zcr, centroid)]
    return np.concatenate([*parts, tempo]).astype(np.float32)


def musicnn_zero_shot_scores(tag_probabilities: np.ndarray, tags: list[str], genres: list[str]) -> np.ndarray:
    """`(n, genres)` scores from `(n, tags)` mean tag probabilities; genres without tags score -1."""
    scores = np.full((tag_probabilities.shape[0], len(genres)), -1.0)
    for column, genre in enumerate(genres):
        if genre in MUSICNN_MSD_GENRE_TAGS:
            indices = [tags.index(tag) for tag in MUSICNN_MSD_GENRE_TAGS[genre]]
            scores[:, column] = tag_probabilities[:, indices].max(axis=1)
    return scores


def probe(train_x, train_y, test_x) -> tuple[np.ndarray, np.ndarray]:
    """Standardised logistic regression fitted on `train_x`; returns the class probabilities of `test_x` and the
    label ids of their columns (the labels seen in training)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=0.5))
    model.fit(train_x, train_y)
    return model.predict_proba(test_x), model.classes_


__all__ = ["MUSICNN_MSD_GENRE_TAGS", "handmade_features", "musicnn_zero_shot_scores", "probe"]
