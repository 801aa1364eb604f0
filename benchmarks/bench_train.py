"""Training throughput: the Hugging Face Trainer loop against a raw PyTorch loop, same data, same run.

    python -m benchmarks.bench_train [--config default|tiny] [--steps 8] [--batch-size 16] [--precision auto|bf16|fp32]

Both loops do the same optimiser steps (AdamW, focal loss from the model) on the same in-memory windows; the
Trainer's overhead is `1 - trainer rate / raw rate`. Precision as in train.py (`auto`: bf16 autocast on a
bf16-capable CUDA GPU, fp32 otherwise); on a GPU both use fused AdamW, with the windows already on the device for
the raw loop. When the precision is bf16, an fp32 raw loop is measured too, as the baseline of the bf16 speed-up.
"""

import argparse
import tempfile
import time

import torch
from torch.utils.data import Dataset

from genre_vit import GenreViTConfig, GenreViTForAudioClassification
from genre_vit.training.options import PRECISIONS, GenreViTTrainingArguments, use_bf16


class InMemoryWindows(Dataset):
    def __init__(self, windows: torch.Tensor, labels: torch.Tensor):
        self.windows, self.labels = windows, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_values": self.windows[index], "labels": self.labels[index]}


def build_model(name: str) -> GenreViTForAudioClassification:
    torch.manual_seed(0)
    return GenreViTForAudioClassification(GenreViTConfig() if name == "default" else GenreViTConfig.tiny())


def raw_loop(model, windows, labels, batch_size: int, steps: int, device: torch.device, bf16: bool) -> float:
    model.to(device).train()
    windows, labels = windows.to(device), labels.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step(index):
        batch = slice((index * batch_size) % len(labels), (index * batch_size) % len(labels) + batch_size)
        with autocast:
            loss = model(input_values=windows[batch], labels=labels[batch]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(steps):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def trainer_loop(model, windows, labels, batch_size: int, steps: int, precision: str) -> float:
    from transformers import Trainer, TrainerCallback

    class StepTimer(TrainerCallback):
        """Times steps 2..N, so the Trainer's set-up and the first (warm-up) step are left out, as in the raw loop."""

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step == 1:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        arguments = GenreViTTrainingArguments(
            output_dir=folder,
            per_device_train_batch_size=batch_size,
            precision=precision,
            max_steps=steps + 1,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            load_best_model_at_end=False,
        )
        timer = StepTimer()
        dataset = InMemoryWindows(windows, labels)
        Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[timer]).train()
    return steps * batch_size / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = use_bf16(args.precision, device.type == "cuda")
    generator = torch.Generator().manual_seed(0)
    count = args.batch_size * (args.steps + 1)
    windows = torch.rand(count, 1, 216, 144, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    raw = raw_loop(build_model(args.config), windows, labels, args.batch_size, args.steps, device, bf16)
    trainer = trainer_loop(build_model(args.config), windows, labels, args.batch_size, args.steps, args.precision)
    precision = "bf16 autocast" if bf16 else "fp32"
    print(f"{args.config} config on {device}, {precision}, batch {args.batch_size}, {args.steps} timed steps")
    print(f"raw PyTorch loop: {raw:8.1f} windows/s")
    print(f"HF Trainer loop:  {trainer:8.1f} windows/s")
    if bf16:
        fp32 = raw_loop(build_model(args.config), windows, labels, args.batch_size, args.steps, device, False)
        print(f"raw loop in fp32: {fp32:8.1f} windows/s; bf16 speed-up {raw / fp32:.2f}x")
    overhead = 1 - trainer / raw
    print(f"Trainer overhead: {overhead:.1%} (goal < 10%: {'met' if overhead < 0.10 else 'MISSED'})")


if __name__ == "__main__":
    main()
