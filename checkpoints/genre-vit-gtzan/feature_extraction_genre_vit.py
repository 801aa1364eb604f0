"""GenreViT feature extractor: `genre_vit.spectrogram`'s log-Mel windows as a Hugging Face feature extractor.

The computation, and its exact definition, live in `genre_vit/spectrogram.py` (`LogMelWindowing`); this class adds
what transformers expects of a feature extractor: saving to and loading from `preprocessor_config.json`, the Auto
classes, and batches of whole songs for the model (`__call__`).
"""

from collections.abc import Sequence

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .spectrogram import LogMelWindowing, SpectrogramWindows, parameter_names


class GenreViTFeatureExtractor(LogMelWindowing, SequenceFeatureExtractor):
    r"""
    Turns mono waveforms at `sampling_rate` into GenreViT's log-Mel window images. Saved as
    `preprocessor_config.json`. The arguments are those of [`genre_vit.spectrogram.LogMelWindowing`], plus
    `padding_value` (`float`, defaults to 0.0), the value of the padding windows in a batch of songs.
    """

    model_input_names = ["input_values", "window_mask"]

    def __init__(self, padding_value: float = 0.0, **kwargs):
        windowing = {name: kwargs.pop(name) for name in parameter_names() if name in kwargs}
        kwargs.pop("feature_size", None)  # saved by to_dict, but always n_mels
        # The batch marks real windows with `window_mask`; there is no attention mask to return.
        kwargs["return_attention_mask"] = False
        LogMelWindowing.__init__(self, **windowing)
        SequenceFeatureExtractor.__init__(
            self, feature_size=self.n_mels, sampling_rate=self.sampling_rate, padding_value=padding_value, **kwargs
        )

    def to_dict(self) -> dict:
        """The saved parameters: not the front end, which the parameters rebuild."""
        front_end = self.__dict__.pop("_front_end")
        try:
            return super().to_dict()
        finally:
            self._front_end = front_end

    def __call__(
        self,
        raw_audio: np.ndarray | Sequence[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Featurise one waveform or a list of waveforms (a batch of songs) for the model.

        Returns a `BatchFeature` with
            - `input_values`: `(songs, max_windows, 1, F, W)` float32, padded with `padding_value` windows;
            - `window_mask`: `(songs, max_windows)` bool, True at the windows that count in the song's score: its
              windows with music (`window_has_music`), or all of its windows where none has music.
        A single 1-D waveform is a batch of one. For one song's windows with their times, use `extract_windows`.
        """
        is_batch = isinstance(raw_audio, (list, tuple))
        extracted = [
            self.extract_windows(waveform, sampling_rate) for waveform in (raw_audio if is_batch else [raw_audio])
        ]
        songs = [windows.input_values for windows in extracted]
        if not songs:
            raise ValueError("Got an empty batch of waveforms.")
        longest = max(song.shape[0] for song in songs)
        input_values = np.full((len(songs), longest) + songs[0].shape[1:], self.padding_value, dtype=np.float32)
        window_mask = np.zeros((len(songs), longest), dtype=bool)
        for index, (song, windows) in enumerate(zip(songs, extracted)):
            input_values[index, : song.shape[0]] = song
            window_mask[index, : song.shape[0]] = windows.has_music if windows.has_music.any() else True
        return BatchFeature({"input_values": input_values, "window_mask": window_mask}, tensor_type=return_tensors)


# save_pretrained writes this source file next to the weights, for `trust_remote_code=True` loading.
GenreViTFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = ["GenreViTFeatureExtractor", "SpectrogramWindows"]
