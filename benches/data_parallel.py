#!/usr/bin/env python3
"""What training on several devices or machines costs over one, on the CPU (README: "Several
devices").

Trains all-MiniLM-L6-v2 in the sup mode for a few updates with `--device cpu`, then with
`--devices cpu,cpu` (two trainers on the same cores: each embeds half the batch, the embeddings are
gathered and the gradients summed through burn's collective layer), then as two machines (two
processes of one device each on this machine, `--nodes 2` through an orchestrator: every all-reduce
also crosses burn's WebSocket ring), and prints the median examples/s of the updates after the first,
the ratios, and the machine's CPU flags. The runs see the same batches and, with dropout off, the
same losses: the script checks that too.

  python3 benches/data_parallel.py --bin target/release --data data/processed [--updates 8]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path


def command(binary, data, init, devices, out, args):
    return [
        str(Path(binary) / "simcse-train"),
        "--mode", "sup", "--init", str(init), "--out", str(out),
        "--train-file", str(Path(data) / "kornli_triples.parquet"), "--dev-file", "",
        "--batch-size", str(args.batch_size), "--max-len", "32", "--max-steps", str(args.updates),
        "--log-steps", "1", "--dropout", "0", "--mlp-init", "checkpoint", "--devices", devices,
    ]


def logged(out):
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [l for l in lines if "loss" in l]
    return [s["loss"] for s in steps], statistics.median(s["examples_per_s"] for s in steps[1:])


def train(binary, data, init, devices, out, args):
    cmd = command(binary, data, init, devices, out, args)
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "RUST_LOG": "warn"})
    return logged(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_machines(binary, data, init, out, args):
    """Two processes of one CPU device each, as machines 0 and 1 of `--nodes 2`."""
    env = {**os.environ, "RUST_LOG": "warn"}
    port = free_port()
    orchestrator = subprocess.Popen(
        [str(Path(binary) / "simcse-train"), "orchestrator", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        nodes = []
        for rank in range(2):
            cmd = command(binary, data, init, "cpu", out / str(rank), args) + [
                "--nodes", "2", "--node-rank", str(rank),
                "--orchestrator", f"ws://127.0.0.1:{port}",
                "--node-address", f"ws://127.0.0.1:{free_port()}"]
            nodes.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE))
        for node in nodes:
            _, err = node.communicate()
            if node.returncode != 0:
                raise SystemExit(err.decode())
    finally:
        orchestrator.kill()
    return logged(out / "0")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="target/release")
    p.add_argument("--data", default="data/processed")
    p.add_argument("--init", default=".cache/all-MiniLM-L6-v2")
    p.add_argument("--updates", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
    print(f"cpus {os.cpu_count()}, flags: {' '.join(f for f in wanted if f in flags)}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for devices in ["cpu", "cpu,cpu"]:
            out = Path(tmp) / devices.replace(",", "_")
            runs[devices] = train(args.bin, args.data, args.init, devices, out, args)
            print(f"{devices:12} {runs[devices][1]:7.2f} examples/s  losses {runs[devices][0]}")
        runs["2 machines"] = two_machines(args.bin, args.data, args.init, Path(tmp) / "nodes", args)
        print(f"{'2 machines':12} {runs['2 machines'][1]:7.2f} examples/s  losses {runs['2 machines'][0]}")
    one, one_rate = runs["cpu"]
    for name in ["cpu,cpu", "2 machines"]:
        losses, rate = runs[name]
        worst = max(abs(a - b) for a, b in zip(one, losses))
        print(f"{name} / cpu: {rate / one_rate:.3f}x; losses within {worst:.1e}")
        assert worst < 1e-4, f"{name} must train as one device"


if __name__ == "__main__":
    main()
