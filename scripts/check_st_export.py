#!/usr/bin/env python3
"""Checks that an exported model folder gives our embeddings in sentence-transformers.

For each pooler with a sentence-transformers equivalent (cls with its MLP, cls_before_pooler,
avg), exports MODEL with `simcse-embed export --pooler P`, embeds SENTENCES with `simcse-embed
embed` (raw vectors, no normalising), encodes them with SentenceTransformer(DIR), and prints the
largest absolute difference. The poolers without an equivalent must be refused.

Run by hand (needs torch and sentence-transformers; CI does not):
    cargo build --release -p simcse-cli --bin simcse-embed
    python3 scripts/check_st_export.py --model .cache/all-MiniLM-L6-v2
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sentence_transformers import SentenceTransformer

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--bin", default="target/release/simcse-embed")
ap.add_argument("--sts", default="../shared/data/kor-nlu/sts-dev.tsv")
ap.add_argument("--n", type=int, default=200)
ap.add_argument("--tolerance", type=float, default=1e-4)
args = ap.parse_args()

lines = Path(args.sts).read_text(encoding="utf-8").splitlines()[1:]
sentences = [l.split("\t")[5] for l in lines[: args.n]]
worst = 0.0
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    (tmp / "s.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    for pooler in ["cls", "cls_before_pooler", "avg"]:
        out = tmp / pooler
        subprocess.run([args.bin, "export", "--model", args.model, "--pooler", pooler, "--out", out], check=True)
        emb = tmp / f"{pooler}.parquet"
        subprocess.run(
            [args.bin, "embed", "--model", out, "--input", tmp / "s.txt", "--out", emb, "--no-normalize"],
            check=True, stdout=subprocess.DEVNULL,
        )
        ours = np.stack(pq.read_table(emb).column("embedding").to_numpy(zero_copy_only=False))
        st = SentenceTransformer(str(out), device="cpu")
        theirs = st.encode(sentences, batch_size=64, convert_to_numpy=True)
        diff = float(np.abs(ours - theirs).max())
        worst = max(worst, diff)
        print(f"{pooler:>18}: {len(sentences)} sentences, {ours.shape[1]} dims, max abs diff {diff:.2e}"
              f" (modules: {[type(m).__name__ for m in st]})")
    for pooler in ["avg_top2", "avg_first_last"]:
        r = subprocess.run([args.bin, "export", "--model", args.model, "--pooler", pooler, "--out", tmp / pooler],
                           capture_output=True, text=True)
        said = next((l for l in r.stderr.splitlines() if l.startswith("Error")), r.stderr.strip())
        print(f"{pooler:>18}: refused ({said})" if r.returncode else f"{pooler}: NOT refused")
        if r.returncode == 0:
            sys.exit(1)
print(f"worst max abs diff {worst:.2e} (tolerance {args.tolerance})")
sys.exit(0 if worst <= args.tolerance else 1)
