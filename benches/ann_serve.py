#!/usr/bin/env python3
"""`serve` over a big embeddings file: seconds from process start to /health answering, and memory
(RSS, its anonymous and file-backed parts, PSS) after the first /search, with the HNSW index opened
memory-mapped (--ann), with two such servers at once (sharing the index's pages), and with exact
search (every vector read into memory). Prints one JSON line per case.

    cargo xtask bench-ann --n 1000000 --no-faiss          # writes the 1 M vectors and their index
    python3 benches/ann_serve.py --bin target/debug/simcse-embed \\
        --model .cache/all-MiniLM-L6-v2 --index target/bench-ann/1000000x384/vectors.parquet

The model must have the index's dimensions (all-MiniLM-L6-v2: 384, as the synthetic vectors).
"""

import argparse
import json
import subprocess
import time
import urllib.request
from pathlib import Path


def memory(pid):
    """RSS, RssAnon, RssFile and Pss of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in out.items()}


def start(a, port, ann):
    cmd = [a.bin, "serve", "--model", a.model, "--index", a.index, "--addr", f"127.0.0.1:{port}"]
    t = time.perf_counter()
    p = subprocess.Popen(cmd + (["--ann"] if ann else []), stdout=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return p, time.perf_counter() - t
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"serve exited with {p.returncode}")
            time.sleep(0.05)


def search(port):
    body = json.dumps({"query": "라면은 언제 한국에 들어왔나?", "k": 10}).encode()
    t = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/search", data=body, timeout=120).read()
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--index", required=True, help="an embeddings file with its .usearch index")
    p.add_argument("--port", type=int, default=18181)
    a = p.parse_args()
    for case, servers, ann in (("ann", 1, True), ("ann, two servers", 2, True), ("exact", 1, False)):
        procs = []
        for i in range(servers):
            proc, ready = start(a, a.port + i, ann)
            first = search(a.port + i)
            procs.append((proc, ready, first))
        for i, (proc, ready, first) in enumerate(procs):
            print(json.dumps({
                "case": case, "server": i, "ready_s": round(ready, 2),
                "first_search_s": round(first, 3), "second_search_s": round(search(a.port + i), 3),
                "memory_mib": memory(proc.pid),
            }, ensure_ascii=False))
        for proc, _, _ in procs:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
