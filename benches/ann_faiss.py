#!/usr/bin/env python3
"""The reference for `cargo xtask bench-ann`: faiss's IndexHNSWFlat on the files the Rust side
wrote (vectors.parquet, queries.f32, truth.u32), with the same M, ef_construction, ef and threads,
measured the same way. Prints one JSON line with the Rust side's keys.

    python3 benches/ann_faiss.py --data target/bench-ann/100000x384 [--m 16]
        [--ef-construction 128] [--ef 64] [--threads 2]

Needs `pip install faiss-cpu pyarrow numpy`. The vectors are added a row group at a time (not
held twice), as our `index` reads them.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=128)
    p.add_argument("--ef", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    try:
        import faiss
        import numpy as np
        import pyarrow.parquet as pq
    except ImportError as e:
        sys.exit(f"ann_faiss.py needs faiss-cpu, numpy and pyarrow ({e}): pip install faiss-cpu pyarrow")

    faiss.omp_set_num_threads(a.threads)
    parquet = pq.ParquetFile(a.data / "vectors.parquet")
    n = parquet.metadata.num_rows
    dim = parquet.schema_arrow.field("embedding").type.list_size
    queries = np.fromfile(a.data / "queries.f32", dtype="<f4").reshape(-1, dim)
    truth = np.fromfile(a.data / "truth.u32", dtype="<u4").reshape(-1, 10)

    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_mib("VmRSS")
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(dim, a.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = a.ef_construction
    for batch in parquet.iter_batches(columns=["embedding"]):
        flat = batch.column(0).flatten().to_numpy(zero_copy_only=False)
        index.add(np.ascontiguousarray(flat.reshape(-1, dim), dtype=np.float32))
    build_s = time.perf_counter() - start
    peak_rss = status_mib("VmHWM")
    path = a.data / "faiss.index"
    faiss.write_index(index, str(path))
    del index
    index_bytes = path.stat().st_size

    rss_closed = status_mib("VmRSS")
    start = time.perf_counter()
    index = faiss.read_index(str(path))
    open_s = time.perf_counter() - start
    rss_open = status_mib("VmRSS")

    def measure(ef):
        index.hnsw.efSearch = ef
        faiss.omp_set_num_threads(1)
        start = time.perf_counter()
        _, found = index.search(queries, 10)
        one = len(queries) / (time.perf_counter() - start)
        faiss.omp_set_num_threads(a.threads)
        start = time.perf_counter()
        index.search(queries, 10)
        all_ = len(queries) / (time.perf_counter() - start)
        hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
        return hits / truth.size, round(one), round(all_)

    measure(a.ef)  # untimed, as on the Rust side
    results = {ef: measure(ef) for ef in sorted({16, 24, 32, 48, 64, 96, 128, a.ef})}
    sweep = [{"ef": ef, "recall_at_10": r, "qps_1_thread": one, "qps_all_threads": all_}
             for ef, (r, one, all_) in results.items()]
    recall, qps_one, qps_all = results[a.ef]

    def mib(b):
        return round(b / 2**20, 1)

    print(json.dumps({
        "system": f"faiss {faiss.__version__} IndexHNSWFlat",
        "n": n,
        "dim": dim,
        "queries": len(queries),
        "m": a.m,
        "ef_construction": a.ef_construction,
        "ef": a.ef,
        "quantize": "f32",
        "threads": a.threads,
        "build_s": round(build_s, 1),
        "peak_rss_mib": round(peak_rss, 1),
        "rss_before_build_mib": round(rss_before, 1),
        "index_mib": mib(index_bytes),
        "raw_vectors_mib": mib(n * dim * 4),
        "open_s": round(open_s, 3),
        "open_rss_mib": round(max(rss_open - rss_closed, 0.0), 1),
        "recall_at_10": recall,
        "qps_1_thread": qps_one,
        "qps_all_threads": qps_all,
        "ef_sweep": sweep,
    }))


if __name__ == "__main__":
    main()
