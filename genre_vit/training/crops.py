"""Training on random crops of decoded audio, featurised on the training device (`train.py --random-crops`).

The default training path featurises the windows of the 2-s grid once and caches them (`data.make_windows`). With
random crops, every step instead draws windows anywhere in the training tracks (any start on the 64-sample STFT
hop), and `LogMelFrontEnd`, the one log-Mel front end, computes their images inside the model's forward pass, on
the GPU when training runs on one. What the Trainer sees:

- `RandomCropDataset`: item `i` is a crop of raw audio `(crop_samples,)` drawn by a generator seeded with
  `(seed, i)`, so a resumed run draws the crops it would have drawn; with its label and, for distillation, its
  teachers' standardised targets (the mean of the teacher patches centred in the window);
- `GridCropDataset`: the 2-s grid's windows of the validation tracks as crops, for a steady validation loss;
- `FeaturesOnDevice`: the model behind the front end, `(B, crop_samples)` -> images -> the model's loss.

`TimeBudgetCallback` checkpoints every few minutes of wall time and can stop a run at a budget, so a run on a
machine that may go away loses minutes at most and continues with `--resume`.
"""

import copy
import time
from collections.abc import Sequence

import numpy as np
import torch
from transformers import TrainerCallback

from ..spectrogram import LogMelWindowing, padded_segment
from .distillation import target_standardisation


class TrackAudio:
    """Decoded mono waveforms of tracks, at the windowing's rate, with their ids and labels.

    Attributes:
        track_ids: `(tracks,)` ids; labels: `(tracks,)` label ids; waveforms: `(samples,)` float32 arrays.
    """

    def __init__(
        self, track_ids: Sequence[str], labels: Sequence[int], waveforms: Sequence[np.ndarray], sampling_rate: int
    ):
        self.track_ids, self.labels, self.waveforms = list(track_ids), list(labels), list(waveforms)
        self.sampling_rate = sampling_rate

    @classmethod
    def decode(cls, tracks, sampling_rate: int) -> "TrackAudio":
        """Decode a tracks dataset (`data.load_tracks`); unreadable tracks are skipped with a warning."""
        from .data import readable_tracks

        decoded = list(readable_tracks(tracks, sampling_rate))
        waveforms = [waveform for waveform, _, _ in decoded]
        labels = [int(label) for _, label, _ in decoded]
        return cls([track for _, _, track in decoded], labels, waveforms, sampling_rate)

    @property
    def hours(self) -> float:
        return sum(len(w) for w in self.waveforms) / self.sampling_rate / 3600


class _CropSource:
    """What both crop datasets share: the audio, the window geometry and the teachers' targets."""

    def __init__(self, audio: TrackAudio, windowing: LogMelWindowing, teachers=(), mean=None, std=None):
        self.audio, self.windowing, self.teachers = audio, windowing, list(teachers)
        self.half = windowing.n_fft // 2
        # Samples a window's frames read: frame i is centred on sample i * hop, so the first frame starts half an
        # FFT before the window and the last ends half an FFT after its last centre.
        self.crop_samples = (windowing.frames_per_window - 1) * windowing.hop_length + windowing.n_fft
        self.mean, self.std = mean, std

    def crop(self, track: int, start: int) -> np.ndarray:
        """`(crop_samples,)` of track `track` for the window starting at sample `start` (on the hop grid), with
        zeros outside the track, as the analysis' STFT sees them."""
        return padded_segment(self.audio.waveforms[track], start - self.half, self.crop_samples)

    def targets(self, track: int, start: int) -> np.ndarray:
        """The teachers' standardised targets `(D,)` of the window starting at sample `start` of `track`."""
        seconds = np.array([start / self.windowing.sampling_rate])
        track_id = self.audio.track_ids[track]
        values = np.concatenate(
            [t.window_targets(track_id, seconds, self.windowing.window_seconds)[0] for t in self.teachers]
        )
        return ((values - self.mean) / np.maximum(self.std, 1e-6)).astype(np.float32)

    def item(self, track: int, start: int) -> dict:
        item = {"crops": torch.from_numpy(self.crop(track, start)), "labels": self.audio.labels[track]}
        if self.teachers:
            item["teacher_targets"] = torch.from_numpy(self.targets(track, start))
        return item


def grid_windows(audio: TrackAudio, windowing: LogMelWindowing) -> list[tuple[int, int]]:
    """`(track, start sample)` of every window of the window rule, track by track."""
    return [
        (track, int(start))
        for track, waveform in enumerate(audio.waveforms)
        for start in windowing.window_start_samples(waveform.shape[0])
    ]


def teacher_standardisation(audio: TrackAudio, windowing: LogMelWindowing, teachers) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation `(D,)` of the teachers' targets over the grid windows of `audio` (the training
    tracks), which standardise every target (`distillation.target_standardisation`)."""
    source = _CropSource(audio, windowing, teachers, mean=0.0, std=1.0)
    values = np.stack([source.targets(track, start) for track, start in grid_windows(audio, windowing)])
    return target_standardisation(values, teachers)


class RecordingAugmentation:
    """A random change of recording for one crop: what a different studio, master or playback chain would do to the
    same music, so that a student distilled on its output (with the teachers' targets of the clean audio) learns
    features that survive it. GTZAN's clips are lo-fi, band-limited mono; users' files are not.

    Each crop gets, independently, with the probabilities below:
    - an EQ tilt, uniform in +-`max_tilt_db_per_octave` dB per octave about 1 kHz (always);
    - a low-pass roll-off at a log-uniform cut-off in [`low_pass_hz`], as a band-limited or lossy source has;
    - a high-pass roll-off at a log-uniform cut-off in [`high_pass_hz`], as small speakers or old transfers have;
    - a room: convolution with exponentially decaying noise of a log-uniform RT60 in [`reverb_seconds`];
    - noise at an SNR uniform in [`noise_snr_db`] dB.
    The crop keeps its length; levels do not matter (each image is min-max normalised).
    """

    def __init__(
        self,
        sampling_rate: int,
        max_tilt_db_per_octave: float = 4.0,
        low_pass_hz: tuple[float, float] = (3000.0, 10000.0),
        low_pass_probability: float = 0.5,
        high_pass_hz: tuple[float, float] = (80.0, 400.0),
        high_pass_probability: float = 0.3,
        reverb_seconds: tuple[float, float] = (0.2, 1.2),
        reverb_probability: float = 0.3,
        noise_snr_db: tuple[float, float] = (15.0, 40.0),
        noise_probability: float = 0.3,
    ):
        self.sampling_rate = sampling_rate
        self.max_tilt = max_tilt_db_per_octave
        self.low_pass_hz, self.low_pass_probability = low_pass_hz, low_pass_probability
        self.high_pass_hz, self.high_pass_probability = high_pass_hz, high_pass_probability
        self.reverb_seconds, self.reverb_probability = reverb_seconds, reverb_probability
        self.noise_snr_db, self.noise_probability = noise_snr_db, noise_probability

    def __call__(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`(samples,)` float32 -> `(samples,)` float32."""
        from .data import tilt_gain_db

        samples = crop.shape[0]
        reverb = rng.random() < self.reverb_probability
        size = samples * 2 if reverb else samples  # room for the reverb's tail without wrapping round
        spectrum = np.fft.rfft(crop.astype(np.float64), n=size)
        frequencies = np.maximum(np.fft.rfftfreq(size, 1.0 / self.sampling_rate), 20.0)
        gain_db = tilt_gain_db(frequencies, rng.uniform(-self.max_tilt, self.max_tilt), limit_db=15.0)
        if rng.random() < self.low_pass_probability:
            cutoff = np.exp(rng.uniform(*np.log(self.low_pass_hz)))
            gain_db -= 24.0 * np.maximum(np.log2(frequencies / cutoff), 0.0)  # 24 dB per octave above the cut-off
        if rng.random() < self.high_pass_probability:
            cutoff = np.exp(rng.uniform(*np.log(self.high_pass_hz)))
            gain_db -= 12.0 * np.maximum(np.log2(cutoff / frequencies), 0.0)
        spectrum *= 10.0 ** (np.maximum(gain_db, -90.0) / 20.0)
        if reverb:
            rt60 = np.exp(rng.uniform(*np.log(self.reverb_seconds)))
            length = min(int(rt60 * self.sampling_rate), samples)
            time = np.arange(length) / self.sampling_rate
            response = rng.standard_normal(length) * 10.0 ** (-3.0 * time / rt60)  # -60 dB at rt60
            response[0] = 1.0 / 0.3  # the direct sound, above the room
            spectrum *= np.fft.rfft(response, n=size)
        out = np.fft.irfft(spectrum, n=size)[:samples]
        if rng.random() < self.noise_probability:
            power = float(np.mean(out**2))
            snr = rng.uniform(*self.noise_snr_db)
            out = out + rng.standard_normal(samples) * np.sqrt(power / 10.0 ** (snr / 10.0))
        return out.astype(np.float32)


class RandomCropDataset(torch.utils.data.Dataset):
    """`length` random windows of the tracks, each start uniform over every start on the STFT hop of every track
    (longer tracks give more); item `i` is drawn by a generator seeded with `(seed, i)`, and re-recorded by
    `augmentation` (a `RecordingAugmentation`) with the same generator where one is given, while its teacher targets
    stay those of the clean audio."""

    def __init__(self, source: _CropSource, length: int, seed: int, augmentation: RecordingAugmentation | None = None):
        self.source, self.length, self.seed = source, length, seed
        self.augmentation = augmentation
        windowing = source.windowing
        lengths = np.array([len(w) for w in source.audio.waveforms])
        self.cumulative = np.cumsum(np.maximum((lengths - windowing.window_samples) // windowing.hop_length + 1, 1))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng((self.seed, index))
        slot = int(rng.integers(self.cumulative[-1]))
        track = int(np.searchsorted(self.cumulative, slot, side="right"))
        start = (slot - (self.cumulative[track - 1] if track else 0)) * self.source.windowing.hop_length
        item = self.source.item(track, int(start))
        if self.augmentation is not None:
            item["crops"] = torch.from_numpy(self.augmentation(item["crops"].numpy(), rng))
        return item


class GridCropDataset(torch.utils.data.Dataset):
    """The window rule's windows of the tracks, as crops (validation)."""

    def __init__(self, source: _CropSource):
        self.source = source
        self.windows = grid_windows(source.audio, source.windowing)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        return self.source.item(*self.windows[index])


def crop_datasets(
    train: TrackAudio,
    validation: TrackAudio,
    windowing: LogMelWindowing,
    teachers,
    crops_per_epoch: int,
    seed: int,
    augmentation: RecordingAugmentation | None = None,
):
    """`(train dataset, validation dataset, mean, std)`: random crops of the training tracks (`crops_per_epoch` per
    epoch; 0 for as many as the grid has windows; re-recorded by `augmentation` where given) and the grid's windows of
    the validation tracks, clean; the teachers' targets standardised on the training tracks' grid windows (mean and
    std None without teachers)."""
    mean = std = None
    if teachers:
        mean, std = teacher_standardisation(train, windowing, teachers)
    length = crops_per_epoch or len(grid_windows(train, windowing))
    return (
        RandomCropDataset(_CropSource(train, windowing, teachers, mean, std), length, seed, augmentation),
        GridCropDataset(_CropSource(validation, windowing, teachers, mean, std)),
        mean,
        std,
    )


class FeaturesOnDevice(torch.nn.Module):
    """A model behind the log-Mel front end: `(B, crop_samples)` crops -> `(B, 1, F, W)` images -> `model`. The
    images are computed where the model is (the front end's tensors are buffers that move with it, and are not
    saved: they follow from the windowing's parameters)."""

    # The wrapped losses are means over the batch, as GenreViT's own (see GenreViTPreTrainedModel).
    accepts_loss_kwargs = False

    def __init__(self, model: torch.nn.Module, windowing: LogMelWindowing):
        super().__init__()
        self.model = model
        self.config = model.config
        self.front_end = copy.deepcopy(windowing.front_end)
        for name, buffer in list(self.front_end.named_buffers(recurse=False)):
            self.front_end.register_buffer(name, buffer, persistent=False)

    def forward(
        self, crops: torch.Tensor, labels: torch.Tensor | None = None, teacher_targets: torch.Tensor | None = None
    ):
        with torch.autocast(crops.device.type, enabled=False):  # the features in float32, as at inference
            images = self.front_end(crops.float())
        if teacher_targets is None:
            return self.model(images, labels=labels)
        return self.model(images, labels=labels, teacher_targets=teacher_targets)


class TimeBudgetCallback(TrainerCallback):
    """Checkpoint every `save_every_minutes` of wall time (besides the Trainer's own saving), and stop, with a
    checkpoint, once `budget_minutes` have passed (0: no budget)."""

    def __init__(self, save_every_minutes: float, budget_minutes: float = 0.0):
        self.save_every = save_every_minutes * 60
        self.budget = budget_minutes * 60
        self.started = self.last_save = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last_save = time.monotonic()
        return control

    def on_save(self, args, state, control, **kwargs):
        self.last_save = time.monotonic()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if self.save_every and now - self.last_save >= self.save_every:
            control.should_save = True
        if self.budget and now - self.started >= self.budget:
            control.should_save = True
            control.should_training_stop = True
        return control


__all__ = [
    "FeaturesOnDevice",
    "GridCropDataset",
    "RandomCropDataset",
    "RecordingAugmentation",
    "TimeBudgetCallback",
    "TrackAudio",
    "crop_datasets",
    "grid_windows",
    "teacher_standardisation",
]
