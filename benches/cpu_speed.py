"""CPU speed in one run, as ratios to the references users pick (issue: CPU speed).

Embedding (all-MiniLM-L6-v2, the distinct sentences of KorSTS test, batch 32, max_len 128, every
system on the same number of threads, throughput after one warm-up pass, no process start-up):
  - ours: `simcse-embed embed`, `cls_before_pooler` and `avg`, sentences/s as it prints them;
  - sentence-transformers (PyTorch f32), the same two poolings;
  - ONNX Runtime f32 (the model exported with torch.onnx) and int8 (its dynamic quantization), with
    the fast tokenizer's time included, mean pooling; the int8 row also shows its KorSTS test
    Spearman next to f32's, the quality it costs.
Ours must give the same unit vectors as sentence-transformers: the largest difference is printed.
Training: `crates/simcse-train/benches/arch_speed.py --only bert` (a BERT-base-shaped model, ours
against transformers), its lines passed through.

    cargo build -p simcse-cli --bin simcse-embed --bin simcse-train --bin simcse-prepare
    pip install sentence-transformers onnxruntime onnx onnxscript scipy pyarrow
    python3 benches/cpu_speed.py [--bin target/debug] [--threads 2] [--no-train]

(`target/debug`: the dev profile builds the dependencies at opt-level 3, where the hot loops are.)
Not in CI: it needs torch and onnxruntime."""
import argparse
import atexit
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from scipy.stats import spearmanr

repo = pathlib.Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(repo / "target/debug"))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--minilm", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
ap.add_argument("--no-train", action="store_true")
args = ap.parse_args()
torch.set_num_threads(args.threads)
BATCH, MAX_LEN = 32, 128

flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":")[1].split())
        break
wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"]
print(f"CPU: {os.cpu_count()} logical cores, {args.threads} threads; flags: "
      + " ".join(f for f in wanted if f in flags))

rows = [l.split("\t") for l in open(os.path.join(args.shared, "kor-nlu", "sts-test.tsv"), encoding="utf-8")
        .read().split("\n")[1:] if l.strip()]
pairs = [(r[5], r[6], float(r[4])) for r in rows]
sents = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
print(f"{len(sents)} distinct KorSTS test sentences, {len(pairs)} pairs")


index = {s: i for i, s in enumerate(sents)}
gold = [g for _, _, g in pairs]


def spearman(emb):
    cos = [float(emb[index[a]] @ emb[index[b]]) for a, b, _ in pairs]
    return 100 * spearmanr(cos, gold).correlation


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


results = []  # (system, pooling, sentences/s, spearman)
work = pathlib.Path(tempfile.mkdtemp())
# Checkpoints and runs of several GB: removed on exit (they filled the disk after a few runs).
atexit.register(shutil.rmtree, work, ignore_errors=True)
(work / "sents.txt").write_text("\n".join(sents) + "\n", encoding="utf-8")

# Ours.
ours = {}
env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), RUST_LOG="warn")
for pooler in ["cls_before_pooler", "avg"]:
    rate = None
    for _ in range(2):  # the first pass warms the page cache and the allocator
        out = subprocess.run([os.path.join(args.bin, "simcse-embed"), "embed", "--model", args.minilm,
                              "--pooler", pooler, "--max-len", str(MAX_LEN), "--batch-size", str(BATCH),
                              "--input", str(work / "sents.txt"), "--out", str(work / f"{pooler}.parquet")],
                             env=env, capture_output=True, text=True, check=True).stdout
        rate = float(out.split(" sentences/s")[0].rsplit(", ", 1)[1])
    table = pq.read_table(work / f"{pooler}.parquet").to_pydict()
    by_text = dict(zip(table["text"], table["embedding"]))
    ours[pooler] = np.array([by_text[s] for s in sents], dtype=np.float32)
    results.append(("ours", pooler, rate, spearman(ours[pooler])))

# sentence-transformers.
from sentence_transformers import SentenceTransformer, models  # noqa: E402

reference = {}
for pooler, mode in [("cls_before_pooler", "cls"), ("avg", "mean")]:
    word = models.Transformer(args.minilm, max_seq_length=MAX_LEN)
    st = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), mode)],
                             device="cpu")
    st.encode(sents[:256], batch_size=BATCH)
    t = time.perf_counter()
    emb = st.encode(sents, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True)
    rate = len(sents) / (time.perf_counter() - t)
    reference[pooler] = emb
    results.append(("sentence-transformers f32", pooler, rate, spearman(emb)))

# ONNX Runtime, f32 and dynamic int8.
import onnxruntime as ort  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

tok = AutoTokenizer.from_pretrained(args.minilm)
# Eager attention: the graph that ONNX Runtime fuses (the SDPA export runs slower there).
model = AutoModel.from_pretrained(args.minilm, attn_implementation="eager").eval()
f32 = work / "minilm.onnx"
example = tok(["예시 문장"], return_tensors="pt")


class LastHidden(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state


torch.onnx.export(LastHidden(model), (example["input_ids"], example["attention_mask"], example["token_type_ids"]),
                  str(f32),
                  input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                  dynamic_axes={k: {0: "batch", 1: "seq"} for k in ["input_ids", "attention_mask", "token_type_ids",
                                                                     "hidden"]},
                  opset_version=17, dynamo=False)
int8 = work / "minilm-int8.onnx"
quantize_dynamic(str(f32), str(int8), weight_type=QuantType.QInt8)
for name, path in [("ONNX Runtime f32", f32), ("ONNX Runtime int8", int8)]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def encode(texts):
        # Length-sorted batches, as sentence-transformers and ours make them: less padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
        for k in range(0, len(texts), BATCH):
            rows = order[k:k + BATCH]
            enc = tok([texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_LEN,
                      return_tensors="np")
            hidden = sess.run(None, {k2: enc[k2].astype(np.int64) for k2 in
                                     ["input_ids", "attention_mask", "token_type_ids"]})[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            out[rows] = (hidden * mask).sum(1) / mask.sum(1)
        return unit(out)

    encode(sents[:256])
    t = time.perf_counter()
    emb = encode(sents)
    results.append((name, "avg", len(sents) / (time.perf_counter() - t), spearman(emb)))

st_rate = {p: r for s, p, r, _ in results if s.startswith("sentence")}
ort_rate = {s: r for s, p, r, _ in results if s.startswith("ONNX")}
print(f"\n| system | pooling | sentences/s | x sentence-transformers | x ONNX Runtime f32 | KorSTS test Spearman |")
print("|---|---|---:|---:|---:|---:|")
for system, pooler, rate, rho in results:
    print(f"| {system} | {pooler} | {rate:.1f} | {rate / st_rate[pooler]:.2f} | "
          f"{rate / ort_rate['ONNX Runtime f32']:.2f} | {rho:.2f} |")
for pooler in ours:
    diff = np.abs(unit(ours[pooler]) - unit(reference[pooler])).max()
    print(f"ours vs sentence-transformers, {pooler}: largest unit-vector difference {diff:.2e}")

if not args.no_train:
    print("\nTraining, BERT-base shape (arch_speed.py --only bert):", flush=True)
    subprocess.run([sys.executable, str(repo / "crates/simcse-train/benches/arch_speed.py"), "--only", "bert",
                    "--bin", args.bin], check=True)
