"""Page faults and time of a forward pass with and without `genre_vit.allocator.tune_malloc`, in the same run.

    python -m benchmarks.bench_allocator [--passes 5] [--processes 3]

Each mode runs in processes of its own (a glibc setting is process-wide): the seed architecture over 32 windows,
a first pass to warm up, then `--passes` timed passes, each counting the minor page faults it caused. Reported: the
median faults and seconds per pass over every process, and the ratios of the default to the tuned mode. A single pass
varies several-fold between runs (a default pass took 15,000 to 148,000 faults), so medians are compared.
"""

import argparse
import statistics
import subprocess
import sys

PROGRAM = """
import resource, sys, time
import torch
from genre_vit.allocator import tune_malloc
taken = tune_malloc() if sys.argv[1] == "tuned" else None
from genre_vit import GenreViTConfig
from genre_vit.network import GenreViTNetwork
torch.manual_seed(0)
model = GenreViTNetwork(GenreViTConfig()).eval()
windows = torch.rand(32, 1, 216, 144)
with torch.inference_mode():
    model.forward_features(windows)
    for _ in range(int(sys.argv[2])):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        model.forward_features(windows)
        print(taken, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, time.perf_counter() - start)
"""


def measure(mode: str, passes: int, processes: int) -> tuple[bool, list[int], list[float]]:
    """Whether the settings were taken, and the faults and seconds of every timed pass of every process."""
    faults, seconds, taken = [], [], False
    for _ in range(processes):
        output = subprocess.run(
            [sys.executable, "-c", PROGRAM, mode, str(passes)], capture_output=True, text=True, check=True
        )
        for line in output.stdout.splitlines():
            flag, count, elapsed = line.split()
            taken = flag == "True"
            faults.append(int(count))
            seconds.append(float(elapsed))
    return taken, faults, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for mode in ("default", "tuned"):
        taken, faults, seconds = measure(mode, args.passes, args.processes)
        if mode == "tuned" and not taken:
            print("tune_malloc took no effect here (no glibc mallopt): nothing to compare.")
            return
        results[mode] = (statistics.median(faults), statistics.median(seconds))
        print(f"{mode:8s}: median {results[mode][0]:>9,.0f} page faults, {results[mode][1] * 1000:6.1f} ms per pass")
    (default_faults, default_seconds), (tuned_faults, tuned_seconds) = results["default"], results["tuned"]
    print(
        f"default / tuned: {default_faults / max(tuned_faults, 1):.1f}x the page faults, "
        f"{default_seconds / tuned_seconds:.2f}x the time of a pass"
    )


if __name__ == "__main__":
    main()
