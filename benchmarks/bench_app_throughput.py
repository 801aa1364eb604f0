"""Throughput of the demo server under concurrent uploads, against a float32 baseline in the same run.

    python -m benchmarks.bench_app_throughput [--model DIR] [--clients 8] [--rounds 4] [--seconds 30]

Starts `python app.py` on a free localhost port: with `--baseline-checkout DIR`, first the app of an older checkout of
this repository (e.g. `git worktree add /tmp/before 0ed57a6`, with its own bundled model: the "before"); then this app
with `GENRE_VIT_DTYPE=float32` (the float32 path); then this app with its defaults (the fast path). Each time,
`--clients` threads send `--rounds` rounds of simultaneous `--seconds`-s 44.1-kHz stereo WAV uploads through the API
(`/analyze`, as the page does) and the benchmark reports requests per minute, median and worst latency, failures, the
server's resident memory after each round and at its peak (VmHWM), and the CPU seconds per request of the server and
of the benchmark's own clients (which share the machine's cores with the server).
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.bench_app import start_app
from benchmarks.common import write_song
from genre_vit.analysis import default_model_source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(model: str, settings: dict, songs: list[Path], rounds: int, repository: Path | None = None) -> dict:
    from gradio_client import Client, handle_file

    port = free_port()
    process = start_app(model, port, settings, **({"repository": repository} if repository else {}))
    url = f"http://127.0.0.1:{port}/"
    try:
        clients = [Client(url, verbose=False) for _ in songs]

        def request(pair):
            client, song = pair
            started = time.perf_counter()
            try:
                outputs = client.predict(handle_file(str(song)), api_name="/analyze")
            except Exception:  # an older app raises for bad input; this one returns a message
                return time.perf_counter() - started, False
            ok = not (isinstance(outputs[0], str) and "bad-input" in outputs[0])
            return time.perf_counter() - started, ok

        request((clients[0], songs[0]))  # warm-up
        latencies, failures, memory = [], 0, []
        started, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(process.pid), time.process_time()
        with ThreadPoolExecutor(max_workers=len(songs)) as pool:
            for _ in range(rounds):
                for seconds, ok in pool.map(request, zip(clients, songs)):
                    latencies.append(seconds)
                    failures += not ok
                memory.append(memory_mb(process.pid)[0])
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(process.pid) - server_cpu, time.process_time() - client_cpu
        peak = memory_mb(process.pid)[1]
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "requests": len(latencies),
        "per_minute": 60 * len(latencies) / elapsed,
        "median": statistics.median(latencies),
        "worst": max(latencies),
        "failures": failures,
        "memory_by_round": memory,
        "peak_memory": peak,
        "server_cpu_per_request": server_cpu / len(latencies),
        "client_cpu_per_request": client_cpu / len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source())
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-checkout", type=Path, help="an older checkout whose app is the baseline")
    args = parser.parse_args()
    if not args.model:
        sys.exit("No model: pass --model or set GENRE_VIT_MODEL.")
    with tempfile.TemporaryDirectory() as folder:
        songs = [write_song(Path(folder) / f"song{i}.wav", args.seconds) for i in range(args.clients)]
        rows = {}
        if args.baseline_checkout:
            before = args.baseline_checkout.resolve()
            rows["before"] = serve(
                str(before / "checkpoints" / "genre-vit-gtzan"), {}, songs, args.rounds, repository=before
            )
        rows["float32"] = serve(args.model, {"GENRE_VIT_DTYPE": "float32"}, songs, args.rounds)
        rows["default (fast path)"] = serve(args.model, {}, songs, args.rounds)
    print(f"{args.clients} concurrent {args.seconds:.0f}-s uploads x {args.rounds} rounds; model {args.model}")
    for name, row in rows.items():
        memory = ", ".join(f"{value:.0f}" for value in row["memory_by_round"])
        print(
            f"{name:>20}: {row['per_minute']:.1f} requests/min, median {row['median']:.1f} s, worst "
            f"{row['worst']:.1f} s, {row['failures']} failed of {row['requests']}; memory by round {memory} MB, "
            f"peak {row['peak_memory']:.0f} MB; CPU per request: server {row['server_cpu_per_request']:.2f} s, "
            f"clients {row['client_cpu_per_request']:.2f} s"
        )
    fast = rows["default (fast path)"]
    for name, row in rows.items():
        if name != "default (fast path)":
            print(f"throughput, fast path against {name}: {fast['per_minute'] / row['per_minute']:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
