"""PyTorch reference for configs/sup-xnli-minilm.toml: supervised SimCSE from all-MiniLM-L6-v2 on every
XNLI-ko dev+test triple (built like `simcse-prepare run`: per-entailment rule), 1 epoch, batch 64,
lr 5e-5 constant (no warmup, linear decay to 0 as transformers), max_len 64, temperature 0.05, pooler
cls with the MLP from the checkpoint's pooler, AdamW (eps 1e-8, no weight decay), global grad-norm
clip 1.0; KorSTS dev Spearman with cls at max_len 128 before and after. Prints numbers and wall time.

  python3 crates/simcse-train/benches/sup_reference.py [--threads 2]
"""
import argparse, os, pathlib, random, time
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--minilm", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(42)
random.seed(42)


def triples(path):
    groups = {}
    for line in open(path, encoding="utf-8").read().split("\n")[1:]:
        if not line:
            continue
        p, h, l = line.split("\t")
        groups.setdefault(p, {"entailment": [], "contradiction": [], "neutral": []})[l].append(h)
    out = []
    for p, g in groups.items():
        for k, e in enumerate(g["entailment"]):
            if g["contradiction"]:
                out.append((p, e, g["contradiction"][k % len(g["contradiction"])]))
    return out


data = triples(os.path.join(args.shared, "kor-nlu", "xnli.dev.ko.tsv")) + triples(os.path.join(args.shared, "kor-nlu", "xnli.test.ko.tsv"))
rows = [l.split("\t") for l in open(os.path.join(args.shared, "kor-nlu", "sts-dev.tsv"), encoding="utf-8").read().split("\n")[1:] if l]
tok = AutoTokenizer.from_pretrained(args.minilm)
model = AutoModel.from_pretrained(args.minilm)


def dev_spearman():
    model.eval()
    with torch.inference_mode():
        def emb(s):
            out = []
            for k in range(0, len(s), 64):
                enc = tok(s[k:k + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
                out.append(F.normalize(model(**enc).pooler_output, dim=-1))
            return torch.cat(out)
        cos = (emb([r[5] for r in rows]) * emb([r[6] for r in rows])).sum(-1).numpy()
    return 100 * spearmanr(cos, [float(r[4]) for r in rows]).statistic


before = dev_spearman()
random.shuffle(data)
batches = [data[k:k + 64] for k in range(0, len(data), 64)]
opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
sched = get_linear_schedule_with_warmup(opt, 0, len(batches))
start = time.perf_counter()
model.train()
for b in batches:
    enc = tok([t[0] for t in b] + [t[1] for t in b] + [t[2] for t in b], padding=True, truncation=True, max_length=64, return_tensors="pt")
    z = model(**enc).pooler_output
    n = len(b)
    z1, z2, z3 = F.normalize(z[:n], dim=-1), F.normalize(z[n:2 * n], dim=-1), F.normalize(z[2 * n:], dim=-1)
    logits = torch.cat([z1 @ z2.T, z1 @ z3.T], 1) / 0.05
    loss = F.cross_entropy(logits, torch.arange(n))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
train_s = time.perf_counter() - start
after = dev_spearman()
sents = 3 * len(data)
print(f"pytorch sup-xnli-minilm: KorSTS dev Spearman {before:.2f} -> {after:.2f}; {len(batches)} updates in {train_s:.1f} s "
      f"({sents / train_s:.1f} sentences/s, threads {torch.get_num_threads()})")
