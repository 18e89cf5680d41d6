"""sentence-transformers reference for configs/sts-minilm.toml: all-MiniLM-L6-v2 fine-tuned on KorSTS
train with sentence-transformers' own `CoSENTLoss` (scale 20) on a `SentenceTransformer` of
Transformer(max_seq_length 64) + Pooling("cls") (the [CLS] vector, no MLP): 1 epoch, batch 32, lr 2e-5
with 10% linear warmup then linear decay (transformers' schedule), AdamW (eps 1e-8, no weight decay),
global grad-norm clip 1.0, shuffled batches (seeded `random`). KorSTS dev Spearman (cls, max_len 128)
every 60 updates and at the end; the best dev model is scored on KorSTS test, as our trainer keeps
and exports its best dev model. Prints numbers and wall time.

  python3 crates/simcse-train/benches/sts_reference.py [--threads 2] [--init DIR]

Needs torch, transformers, sentence-transformers and scipy (not in CI).
"""
import argparse, copy, os, pathlib, random, time

import torch
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer, models
from sentence_transformers.sentence_transformer.losses import CoSENTLoss
from transformers import get_linear_schedule_with_warmup

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--init", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
ap.add_argument("--eval-steps", type=int, default=60)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(42)
random.seed(42)


def korsts(name):
    path = os.path.join(args.shared, "kor-nlu", f"sts-{name}.tsv")
    rows = [l.split("\t") for l in open(path, encoding="utf-8").read().split("\n")[1:] if l]
    return [(r[5], r[6], float(r[4])) for r in rows]


train, dev, test = korsts("train"), korsts("dev"), korsts("test")
word = models.Transformer(args.init, max_seq_length=64)
model = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "cls")])
loss_fn = CoSENTLoss(model, scale=20.0)


def spearman(pairs):
    model.eval()
    word.max_seq_length = 128
    with torch.inference_mode():
        a = model.encode([p[0] for p in pairs], batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
        b = model.encode([p[1] for p in pairs], batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    word.max_seq_length = 64
    model.train()
    return 100 * spearmanr((a * b).sum(-1).numpy(), [p[2] for p in pairs]).statistic


before = (spearman(dev), spearman(test))
random.shuffle(train)
batches = [train[k:k + 32] for k in range(0, len(train), 32)]
opt = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-8, weight_decay=0.0)
warmup = -(-len(batches) // 10)  # ceil(10%), as transformers' get_warmup_steps
sched = get_linear_schedule_with_warmup(opt, warmup, len(batches))
best, best_state, evals, train_s = -1.0, None, [], 0.0
model.train()
for k, b in enumerate(batches, 1):
    t0 = time.perf_counter()
    features = [model.tokenize([p[0] for p in b]), model.tokenize([p[1] for p in b])]
    loss = loss_fn(features, torch.tensor([p[2] for p in b]))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
    train_s += time.perf_counter() - t0
    if k % args.eval_steps == 0 or k == len(batches):
        s = spearman(dev)
        evals.append((k, round(s, 2)))
        if s > best:
            best, best_state = s, copy.deepcopy(model.state_dict())
last = (evals[-1][1], spearman(test))
model.load_state_dict(best_state)
print(f"sentence-transformers CoSENT sts-minilm: {len(batches)} updates in {train_s:.1f} s "
      f"({2 * len(train) / train_s:.1f} sentences/s, threads {torch.get_num_threads()})")
print(f"  before: KorSTS dev {before[0]:.2f} test {before[1]:.2f}")
print(f"  dev evals {evals}")
print(f"  last model: dev {last[0]:.2f} test {last[1]:.2f}")
print(f"  best dev model: dev {best:.2f} test {spearman(test):.2f}")
