"""PyTorch reference for the evaluation time (BENCHMARKS.md): what `simcse-eval --model DIR` computes
for all-MiniLM-L6-v2 on KorSTS dev + test and KLUE STS dev, done with transformers + scipy the
usual way: load the model, embed each set's distinct sentences in length-sorted batches of 64
(`cls_before_pooler`, max_len 128, tokenization included), cosine, Spearman and Pearson x100.
Prints the scores and the wall time from start to finish, model load included.

  python3 crates/simcse-eval/benches/eval_reference.py [--threads 2]
"""
import argparse, json, os, pathlib, time

start = time.perf_counter()
import torch
from scipy.stats import pearsonr, spearmanr
from transformers import AutoModel, AutoTokenizer

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--model", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
args = ap.parse_args()
torch.set_num_threads(args.threads)
tok, model = AutoTokenizer.from_pretrained(args.model), AutoModel.from_pretrained(args.model).eval()


def korsts(name):
    rows = [l.split("\t") for l in open(os.path.join(args.shared, "kor-nlu", name), encoding="utf-8").read().split("\n")[1:] if l]
    return [r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows]


klue = json.load(open(os.path.join(args.shared, "klue-sts", "klue-sts-v1.1_dev.json"), encoding="utf-8"))
sets = {"korsts_dev": korsts("sts-dev.tsv"), "korsts_test": korsts("sts-test.tsv"),
        "klue_sts_dev": ([x["sentence1"] for x in klue], [x["sentence2"] for x in klue], [x["labels"]["label"] for x in klue])}


def embed(sents):
    distinct = sorted(set(sents))
    lengths = [len(x) for x in tok(distinct, truncation=True, max_length=128)["input_ids"]]
    order = sorted(range(len(distinct)), key=lambda i: -lengths[i])
    emb = {}
    with torch.inference_mode():
        for k in range(0, len(order), 64):
            batch = [distinct[i] for i in order[k:k + 64]]
            enc = tok(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
            out = torch.nn.functional.normalize(model(**enc).last_hidden_state[:, 0], dim=-1)
            emb.update(zip(batch, out))
    return emb


sentences = 0
for name, (a, b, gold) in sets.items():
    emb = embed(a + b)
    sentences += len(emb)
    cos = [float(emb[x] @ emb[y]) for x, y in zip(a, b)]
    print(f"{name}: Spearman {100 * spearmanr(cos, gold).statistic:.2f} Pearson {100 * pearsonr(cos, gold).statistic:.2f}")
print(f"pytorch eval all-MiniLM-L6-v2: {sentences} sentences embedded, {time.perf_counter() - start:.1f} s wall "
      f"(threads {torch.get_num_threads()}, torch {torch.__version__})")
