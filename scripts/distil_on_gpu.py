"""Distillation pre-training of GenreViT on one GPU, from inputs small enough to travel to a lent GPU machine.

The CPU recipe (`train.py --teacher-targets ... --classification-weight 0`) reads precomputed windows through
`datasets`. A GPU machine without librosa or datasets, reached through a channel of 64 MiB per call, gets instead what
`prepare` writes here:

- every unlabelled track as `TRACK_ID.opus`, 24 kbit/s mono at 24 kHz (ffmpeg with libopus; 11.5 h make 137 MB),
  in `audio/partN/` folders of at most `--part-megabytes` each, one per call;
- `targets.npz`: the teachers' patch targets, each dimension coded in 8 bits over its range (rms coding error under
  0.013 of a standard deviation), 14 MB for musicnn's `max_pool` and the 84 hand-made descriptors of 11.5 h.

    python scripts/distil_on_gpu.py prepare --teacher-targets runs/teacher/pretrain-all.npz \
        runs/teacher/handcrafted-pretrain-all.npz --teacher-output max_pool handcrafted --output .gpu5

`train`, on the GPU machine, decodes the tracks with soundfile and resamples them to 22,050 Hz with soxr's HQ filter
(as `librosa.load` does). Each step draws random 4-s crops (any start on the 64-sample STFT hop, not only the 2-s
grid) from the GPU-resident audio, computes GenreViT's log-Mel window images on the GPU (`GpuLogMel`: the images of
`LogMelWindowing.windows_at`, to float rounding) and regresses the pooled embedding through `GenreViTWithTeacherHead`
onto the standardised mean of the teacher patches whose centre lies in the crop (`WindowTargets`: the vectorised
`TeacherTargets.window_targets`), each teacher's error weighted. No label and no GTZAN audio is used; 5% of the tracks
are held out to report the distillation loss.

    python scripts/distil_on_gpu.py train --audio .gpu5/audio/part* --targets .gpu5/targets.npz \
        --config runs/pretrain-config --output ENCODER --time-budget 465 --lr 1.5e-4

The run is budgeted in wall time: after `--calibration-steps` it fixes the number of steps that fit `--time-budget`
seconds, and the cosine schedule runs over exactly those. The student is saved in float16 shards of at most 15 MB
(`save_pretrained`), ready for `cross_validate.py --init-from`; the teacher head is not saved.
"""

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch


def decode(path: str) -> np.ndarray:
    """`(samples,)` float32 mono waveform of `path` at 22,050 Hz: the library's channel mix and soxr HQ resampling
    of the whole file at once (`genre_vit.audio`, whose streaming decoder the GPU machine would also run)."""
    import soundfile

    from genre_vit.audio import resample, to_mono

    waveform, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(to_mono(waveform, channel_axis=1), rate)


def load_targets(path: Path, keys: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The teachers of a `prepare`d targets file, in its order, for the tracks `keys`: per teacher, the patch centres
    of each track (a list of `(patches,)` arrays, s) and the decoded targets of all patches `(patches, D)` float32."""
    teachers = {}
    with np.load(path) as data:
        file_keys = [str(k) for k in data["keys"]]
        index = {k: i for i, k in enumerate(file_keys)}
        for name in (str(n) for n in data["teachers"]):
            offsets = data[f"{name}/offsets"]
            values = data[f"{name}/codes"].astype(np.float32) * data[f"{name}/step"] + data[f"{name}/lo"]
            centres = data[f"{name}/starts"].astype(np.float64) + float(data[f"{name}/patch_seconds"]) / 2
            rows = [np.arange(offsets[index[k]], offsets[index[k] + 1]) for k in keys]
            teachers[name] = {
                "centres": [centres[r] for r in rows],
                "values": np.concatenate([values[r] for r in rows]),
            }
    return teachers


class WindowTargets:
    """Vectorised `TeacherTargets.window_targets` for many tracks at once, on the device."""

    SPACING = 1.0e5  # seconds between tracks on one sorted time axis (longer than any track)

    def __init__(self, teacher: dict, window_seconds: float, device):
        centres = np.concatenate([c + t * self.SPACING for t, c in enumerate(teacher["centres"])])
        self.centres = torch.tensor(centres, dtype=torch.float64, device=device)
        values = torch.tensor(teacher["values"], dtype=torch.float64, device=device)
        self.cumulative = torch.cat(
            [torch.zeros(1, values.shape[1], dtype=torch.float64, device=device), values.cumsum(0)]
        )
        self.values = values
        self.window_seconds = window_seconds
        self.dimension = values.shape[1]

    def __call__(self, tracks: torch.Tensor, start_seconds: torch.Tensor) -> torch.Tensor:
        base = tracks.double() * self.SPACING + start_seconds.double()
        first = torch.searchsorted(self.centres, base, side="left")
        end = torch.searchsorted(self.centres, base + self.window_seconds, side="left")
        counts = (end - first).clamp(min=1).unsqueeze(1)
        means = (self.cumulative[end] - self.cumulative[first]) / counts
        # a window with no patch centre inside takes the nearest patch (only at a track's edges)
        middle = base + self.window_seconds / 2
        right = first.clamp(max=len(self.centres) - 1)
        left = (first - 1).clamp(min=0)
        nearest = torch.where((self.centres[left] - middle).abs() <= (self.centres[right] - middle).abs(), left, right)
        return torch.where((end > first).unsqueeze(1), means, self.values[nearest]).float()


class GpuLogMel:
    """GenreViT's window images `(B, 1, F, W)` for crops of a padded, concatenated audio buffer, on the device."""

    def __init__(self, windowing, device):
        self.windowing = windowing
        self.window = torch.tensor(windowing.window, device=device)
        self.filters = torch.tensor(windowing.mel_filters, device=device)  # (bins, n_mels)
        self.pad = windowing.n_fft // 2  # zeros before and after every track in the buffer
        self.span = (windowing.frames_per_window - 1) * windowing.hop_length + windowing.n_fft
        self.offsets = torch.arange(self.span, device=device)

    def __call__(self, buffer: torch.Tensor, first_samples: torch.Tensor) -> torch.Tensor:
        """`first_samples` (B,): buffer index of each window's first frame's centre minus the padding (`pad` zeros
        precede every track in the buffer, so a window starting at track sample `s` reads from `offset + s`)."""
        w = self.windowing
        segments = buffer[first_samples.unsqueeze(1) + self.offsets]
        spectrum = torch.stft(
            segments,
            n_fft=w.n_fft,
            hop_length=w.hop_length,
            win_length=w.n_fft,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (B, bins, frames)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.einsum("bkt,km->bmt", power, self.filters)  # (B, n_mels, frames)
        decibels = 10.0 * torch.log10(mel.clamp(min=w.db_amin))
        top = decibels.amax(dim=(1, 2), keepdim=True)
        floor = torch.maximum(decibels.amin(dim=(1, 2), keepdim=True), top - w.db_top_db)
        span = top - floor
        scaled = torch.where(span > 0, (decibels.clamp(min=floor) - floor) / torch.where(span > 0, span, 1.0), 0.0)
        return torch.nn.functional.interpolate(
            scaled.unsqueeze(1),
            size=(w.num_frequency_bins, w.num_time_frames),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )


def prepare(args) -> None:
    """Write `OUTPUT/targets.npz` and `OUTPUT/audio/partN/TRACK_ID.opus` (see the module docstring); an interrupted
    run resumes, and every file is written atomically."""
    import shutil
    import subprocess

    from genre_vit.files import write_atomic
    from genre_vit.training.distillation import TeacherTargets

    if len(args.teacher_output) != len(args.teacher_targets):
        raise SystemExit("Give one --teacher-output per --teacher-targets file.")
    if shutil.which("ffmpeg") is None:
        raise SystemExit("prepare needs ffmpeg with libopus on the PATH.")
    arrays, keys, sources = {}, None, {}
    for path, output in zip(args.teacher_targets, args.teacher_output):
        try:
            teacher = TeacherTargets.load(path, output)
        except ValueError as error:
            raise SystemExit(str(error)) from error
        if keys is not None and sorted(teacher.values) != keys:
            raise SystemExit(f"{path} holds other tracks than {args.teacher_targets[0]}.")
        keys = sorted(teacher.values)
        with np.load(path) as data:
            sources |= {k: str(data[f"{k}/source"]) for k in keys if f"{k}/source" in data.files}
        values = np.concatenate([teacher.values[k] for k in keys])
        low, high = values.min(axis=0), values.max(axis=0)
        step = np.maximum((high - low) / 255.0, 1e-12).astype(np.float32)
        arrays |= {
            f"{output}/starts": np.concatenate([teacher.patch_starts[k] for k in keys]).astype(np.float32),
            f"{output}/offsets": np.cumsum([0] + [len(teacher.patch_starts[k]) for k in keys]),
            f"{output}/codes": np.clip(np.rint((values - low) / step), 0, 255).astype(np.uint8),
            f"{output}/lo": low.astype(np.float32),
            f"{output}/step": step,
            f"{output}/patch_seconds": np.float32(teacher.patch_seconds),
        }
    missing = [k for k in keys if k not in sources or not Path(sources[k]).is_file()]
    if missing:
        raise SystemExit(
            f"{len(missing)} tracks have no readable source audio (e.g. {missing[0]}): run from the "
            "folder the teacher ran in, where the `KEY/source` paths of the targets file resolve."
        )
    arrays |= {"keys": np.array(keys), "teachers": np.array(args.teacher_output)}
    write_atomic(args.output / "targets.npz", lambda temporary: np.savez_compressed(temporary, **arrays))

    # parts fill in track order; a part is closed when the next track would take it over --part-megabytes
    part, part_bytes, limit = 1, 0, args.part_megabytes * 1e6
    for key in keys:
        done = next(args.output.glob(f"audio/part*/{key}.opus"), None)
        if done is None:
            staged = args.output / "audio" / "staging" / f"{key}.opus"
            staged.parent.mkdir(parents=True, exist_ok=True)
            temporary = staged.with_suffix(".partial.opus")
            command = [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-i",
                sources[key],
                "-ac",
                "1",
                "-ar",
                "24000",
                "-c:a",
                "libopus",
                "-b:a",
                "24k",
                str(temporary),
            ]
            encoded = subprocess.run(command, check=False, capture_output=True, text=True)
            if encoded.returncode != 0:
                temporary.unlink(missing_ok=True)
                reason = (encoded.stderr.strip().splitlines() or ["no message"])[-1]
                raise SystemExit(f"ffmpeg could not encode {sources[key]} ({key}): {reason}")
            temporary.replace(staged)
            if part_bytes and part_bytes + staged.stat().st_size > limit:
                part, part_bytes = part + 1, 0
            done = args.output / "audio" / f"part{part}" / staged.name
            done.parent.mkdir(exist_ok=True)
            staged.replace(done)
        elif done.parent.name != f"part{part}":
            part, part_bytes = int(done.parent.name[len("part") :]), 0
        part_bytes += done.stat().st_size
    if (args.output / "audio" / "staging").is_dir():
        (args.output / "audio" / "staging").rmdir()
    print(f"{len(keys)} tracks in {part} audio parts and targets.npz under {args.output}")


def train(args) -> None:
    """Distil the teachers into a GenreViT encoder from `prepare`d inputs (see the module docstring)."""
    from genre_vit.configuration_genre_vit import GenreViTConfig
    from genre_vit.files import write_text_atomic
    from genre_vit.modeling_genre_vit import GenreViTForAudioClassification
    from genre_vit.spectrogram import LogMelWindowing
    from genre_vit.training.distillation import GenreViTWithTeacherHead

    began = time.time()
    torch.manual_seed(args.seed)
    generator = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    windowing = LogMelWindowing()
    window_samples, hop = windowing.window_samples, windowing.hop_length
    log_lines = []

    def log(message):
        line = f"[{time.time() - began:7.1f} s] {message}"
        print(line, flush=True)
        log_lines.append(line)

    paths = {p.stem: p for folder in args.audio for p in sorted(folder.glob("*.opus"))}
    with np.load(args.targets) as data:
        file_keys = [str(k) for k in data["keys"]]
    keys = [k for k in file_keys if k in paths]
    if not keys:
        raise SystemExit(f"No TRACK_ID.opus file of the tracks in {args.targets} was found in {args.audio}.")
    with ProcessPoolExecutor(args.workers) as pool:
        waveforms = list(pool.map(decode, [str(paths[k]) for k in keys], chunksize=4))
    usable = [i for i, w in enumerate(waveforms) if len(w) >= window_samples]
    keys, waveforms = [keys[i] for i in usable], [waveforms[i] for i in usable]
    hours = sum(len(w) for w in waveforms) / windowing.sampling_rate / 3600
    log(f"decoded {len(keys)} of {len(file_keys)} tracks, {hours:.2f} h")

    teachers = load_targets(args.targets, keys)
    names = list(teachers)
    if len(args.teacher_weights) != len(names):
        raise SystemExit(
            f"{args.targets} holds {len(names)} teachers ({', '.join(names)}) but "
            f"{len(args.teacher_weights)} --teacher-weights were given."
        )
    order = generator.permutation(len(keys))
    validation = np.zeros(len(keys), dtype=bool)
    validation[order[: max(1, round(args.validation_fraction * len(keys)))]] = True

    features = GpuLogMel(windowing, device)
    pad = features.pad
    lengths = np.array([len(w) for w in waveforms])
    offsets = np.cumsum([0] + [len(w) + 2 * pad for w in waveforms])[:-1]
    buffer = torch.zeros(int(offsets[-1] + lengths[-1] + 2 * pad), device=device)
    for offset, waveform in zip(offsets, waveforms):
        buffer[offset + pad : offset + pad + len(waveform)] = torch.from_numpy(waveform).to(device)
    del waveforms
    targets = {name: WindowTargets(teachers[name], windowing.window_seconds, device) for name in names}
    offsets_t, lengths_t = torch.tensor(offsets, device=device), torch.tensor(lengths, device=device)

    # every 2-s grid window of a track, for the standardisation (training tracks) and the validation loss
    def grid(track_ids):
        rows = [(t, s) for t in track_ids for s in windowing.window_start_samples(int(lengths[t]))]
        tracks, starts = zip(*rows)
        return torch.tensor(tracks, device=device), torch.tensor(starts, device=device)

    def window_targets(tracks, starts):
        seconds = starts.double() / windowing.sampling_rate
        return torch.cat([targets[name](tracks, seconds) for name in names], dim=1)

    train_ids, validation_ids = np.flatnonzero(~validation), np.flatnonzero(validation)
    train_grid = grid(train_ids)
    grid_targets = window_targets(*train_grid)
    mean, std = grid_targets.mean(0), grid_targets.std(0).clamp(min=1e-6)
    validation_grid = grid(validation_ids)
    log(
        f"{len(train_ids)} training tracks ({len(train_grid[0])} grid windows), {len(validation_ids)} validation "
        f"tracks ({len(validation_grid[0])} grid windows)"
    )

    # crops are drawn uniformly over every start (on the hop grid) of the training tracks
    train_slots = torch.tensor((lengths[train_ids] - window_samples) // hop + 1, device=device, dtype=torch.float64)
    train_ids_t = torch.tensor(train_ids, device=device)

    def batch(size):
        tracks = train_ids_t[torch.multinomial(train_slots, size, replacement=True)]
        slots = (lengths_t[tracks] - window_samples) // hop + 1
        starts = (torch.rand(size, device=device, dtype=torch.float64) * slots).long().clamp(max=slots - 1) * hop
        return tracks, starts

    def images_and_targets(tracks, starts):
        images = features(buffer, offsets_t[tracks] + starts)
        return images, (window_targets(tracks, starts) - mean) / std

    config = GenreViTConfig.tiny() if args.config == "tiny" else GenreViTConfig.from_pretrained(args.config)
    config.patchout_frequency_rows, config.patchout_time_columns = args.patchout
    student = GenreViTForAudioClassification(config)
    dimensions = [targets[name].dimension for name in names]
    model = GenreViTWithTeacherHead(student, dimensions, list(args.teacher_weights), classification_weight=0.0).to(
        device
    )
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        fused=device.type == "cuda",
    )
    total_steps = None

    def learning_rate(step):
        if step < args.warmup_steps:
            return args.lr * (step + 1) / args.warmup_steps
        if total_steps is None:
            return args.lr
        progress = min(1.0, (step - args.warmup_steps) / max(1, total_steps - args.warmup_steps))
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))

    def evaluate():
        model.eval()
        losses, counts = [], []
        tracks, starts = validation_grid
        with torch.no_grad():
            for first in range(0, len(tracks), args.batch_size):
                chosen = slice(first, first + args.batch_size)
                images, wanted = images_and_targets(tracks[chosen], starts[chosen])
                labels = torch.zeros(len(images), dtype=torch.long, device=device)
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    losses.append(float(model(images, labels=labels, teacher_targets=wanted).loss) * len(images))
                counts.append(len(images))
        model.train()
        return sum(losses) / sum(counts)

    log(f"validation distillation loss before training: {evaluate():.4f}")
    model.train()
    training_began, step, running = time.time(), 0, []
    while total_steps is None or step < total_steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        tracks, starts = batch(args.batch_size)
        images, wanted = images_and_targets(tracks, starts)
        labels = torch.zeros(len(images), dtype=torch.long, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(images, labels=labels, teacher_targets=wanted).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(loss.detach())
        step += 1
        if step in (10, 10 + args.calibration_steps):
            # the first steps pay for kernel selection: the rate is measured after them
            float(loss.detach())
            if step == 10:
                calibration_began = time.time()
                continue
            rate = args.calibration_steps / (time.time() - calibration_began)
            total_steps = max(step + 1, int(rate * args.time_budget))
            log(
                f"{rate:.2f} steps/s ({rate * args.batch_size:.0f} windows/s): {total_steps} steps in the budget, "
                f"{total_steps * args.batch_size / len(train_grid[0]):.1f} passes of the 2-s grid's windows"
            )
        if step % args.log_every == 0:
            log(f"step {step}: lr {learning_rate(step):.2e}, training loss {float(torch.stack(running).mean()):.4f}")
            running = []
    final_loss = evaluate()
    log(f"step {step}: validation distillation loss {final_loss:.4f}; {time.time() - training_began:.0f} s of training")

    args.output.mkdir(parents=True, exist_ok=True)
    student.config.patchout_frequency_rows, student.config.patchout_time_columns = 0, 0
    student.to(torch.float16).save_pretrained(args.output, max_shard_size="15MB")
    summary = {
        "arguments": vars(args),
        "tracks": len(keys),
        "hours": hours,
        "steps": step,
        "validation_loss": final_loss,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
    }
    write_text_atomic(args.output / "distillation.json", json.dumps(summary, indent=2, default=str))
    write_text_atomic(args.output / "distillation.log", "\n".join(log_lines) + "\n")
    log(f"saved to {args.output}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("prepare", help="encode the audio and pack the targets, here")
    packing.add_argument("--teacher-targets", type=Path, nargs="+", required=True, help="teacher-targets files")
    packing.add_argument("--teacher-output", nargs="+", required=True, help="the output read from each file")
    packing.add_argument("--output", type=Path, required=True)
    packing.add_argument("--part-megabytes", type=float, default=55.0, help="audio per part folder (MB)")
    training = commands.add_parser("train", help="distil on the GPU machine")
    training.add_argument("--audio", type=Path, nargs="+", required=True, help="folders of TRACK_ID.opus files")
    training.add_argument("--targets", type=Path, required=True, help="the targets.npz that prepare wrote")
    training.add_argument("--config", required=True, help="a GenreViT model folder whose config is used, or 'tiny'")
    training.add_argument("--output", type=Path, required=True)
    training.add_argument("--teacher-weights", type=float, nargs="+", default=(1.0, 3.0), help="one per teacher")
    training.add_argument("--time-budget", type=float, default=300.0, help="seconds of training")
    training.add_argument("--calibration-steps", type=int, default=40)
    training.add_argument("--batch-size", type=int, default=256)
    training.add_argument("--lr", type=float, default=1.5e-4)
    training.add_argument("--min-lr", type=float, default=1e-6)
    training.add_argument("--weight-decay", type=float, default=0.05)
    training.add_argument("--warmup-steps", type=int, default=300)
    training.add_argument("--patchout", type=int, nargs=2, default=(6, 4), help="rows, columns")
    training.add_argument("--validation-fraction", type=float, default=0.05)
    training.add_argument("--workers", type=int, default=os.cpu_count())
    training.add_argument("--seed", type=int, default=42)
    training.add_argument("--device", default="cuda")
    training.add_argument("--log-every", type=int, default=200)
    args = parser.parse_args(argv)
    (prepare if args.command == "prepare" else train)(args)


if __name__ == "__main__":
    main()
