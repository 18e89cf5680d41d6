"""Training speed per architecture, ours against transformers on the same machine, one after the
other: random base-size checkpoints (hidden 768, 12 layers, KR-BERT's char vocabulary of 16,424 as
WordPiece; klue/roberta-base also pairs RoBERTa weights with a WordPiece tokenizer) of BERT, RoBERTa
and DeBERTa-v2 shaped as kakaobank/kf-deberta-base (shared keys, 256 log buckets over 512 positions,
c2p+p2c, LayerNorm on the relative embeddings, no absolute positions, no token types; its 130k
vocabulary would make the embedding update weigh on both sides alike), each trained a few sup SimCSE
updates on XNLI-ko triples, max_len 32, mean pooling:
  - ours: `simcse-train --mode sup --pooler avg`, examples/s of each update from metrics.jsonl;
  - transformers: the same loss (in-batch + hard negatives, temperature 0.05), AdamW and clipping on the
    same triples in the same batches, torch's threads set to the machine's cores as ours.
Prints the median examples/s of the updates after the first two, and the ratio.

    cargo build --release -p simcse-cli --bin simcse-train --bin simcse-prepare
    python3 crates/simcse-train/benches/arch_speed.py [--bin target/release] [--updates 8] [--only deberta-v2]

Needs torch, transformers and pyarrow (not in CI)."""
import argparse
import atexit
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time

import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from transformers import (BertConfig, BertModel, BertTokenizerFast, DebertaV2Config, DebertaV2Model, RobertaConfig,
                          RobertaModel)

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(repo / "target/release"))
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--updates", type=int, default=8)
ap.add_argument("--batch-size", type=int, default=16)
ap.add_argument("--only", help="one architecture: bert, roberta or deberta-v2")
args = ap.parse_args()
torch.set_num_threads(os.cpu_count())

work = pathlib.Path(tempfile.mkdtemp())
# Checkpoints and runs of several GB: removed on exit (they filled the disk after a few runs).
atexit.register(shutil.rmtree, work, ignore_errors=True)
subprocess.run([f"{args.bin}/simcse-prepare", "run", "--raw-dir", args.shared, "--out-dir", work / "data"],
               check=True, capture_output=True)
# from_pretrained(folder) with a vocab.txt (transformers 5 ignores BertTokenizerFast(vocab_file=...)).
(work / "vocab").mkdir()
(work / "vocab/vocab.txt").write_bytes((pathlib.Path(args.shared) / "kr-bert/vocab_snu_char16424.txt").read_bytes())
tok = BertTokenizerFast.from_pretrained(work / "vocab", do_lower_case=False)
sizes = dict(vocab_size=len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
             intermediate_size=3072, pad_token_id=tok.pad_token_id)
models = {
    "bert": lambda: BertModel(BertConfig(max_position_embeddings=512, **sizes), add_pooling_layer=False),
    "roberta": lambda: RobertaModel(RobertaConfig(max_position_embeddings=514, type_vocab_size=1, **sizes),
                                    add_pooling_layer=False),
    "deberta-v2": lambda: DebertaV2Model(DebertaV2Config(
        max_position_embeddings=512, type_vocab_size=0, relative_attention=True, pos_att_type=["p2c", "c2p"],
        share_att_key=True, position_buckets=256, max_relative_positions=512, norm_rel_ebd="layer_norm",
        position_biased_input=False, layer_norm_eps=1e-7, **sizes)),
}
triples = pq.read_table(work / "data/kornli_triples.parquet").to_pydict()
columns = [c for c in triples if c != "row"][:3]


def transformers_rates(model):
    """The same sup objective as ours, timed per update (tokenization included, as ours)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
    n, rates = args.batch_size, []
    for u in range(args.updates):
        texts = sum((triples[c][u * n:(u + 1) * n] for c in columns), [])
        t = time.perf_counter()
        enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        e = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        a, p, neg = e[:n], e[n:2 * n], e[2 * n:]
        loss = F.cross_entropy(torch.cat([a @ p.T, a @ neg.T], 1) / 0.05, torch.arange(n))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rates.append(n / (time.perf_counter() - t))
    return rates


def show(label, rates):
    print(f"    {label:<13} {statistics.median(rates[2:]):7.2f} examples/s  (each update: "
          f"{', '.join(f'{r:.1f}' for r in rates)})")
    return statistics.median(rates[2:])


print(f"{args.updates} sup updates, batch {args.batch_size} triples, max_len 32, mean pooling, "
      f"{os.cpu_count()} threads; examples/s (median of updates 3..); torch {torch.__version__}")
for name, make in models.items():
    if args.only and name != args.only:
        continue
    d = work / name
    torch.manual_seed(0)
    model = make()
    model.save_pretrained(d)
    tok.save_pretrained(d)
    out = work / f"run-{name}"
    subprocess.run([f"{args.bin}/simcse-train", "--mode", "sup", "--init", d, "--out", out, "--pooler", "avg",
                    "--train-file", work / "data/kornli_triples.parquet", "--dev-file", "",
                    "--max-steps", str(args.updates), "--batch-size", str(args.batch_size), "--max-len", "32",
                    "--log-steps", "1"],
                   check=True, capture_output=True)
    ours = [json.loads(l)["examples_per_s"] for l in (out / "metrics.jsonl").read_text().splitlines()
            if '"examples_per_s"' in l]
    print(f"  {name}")
    o = show("ours", ours)
    p = show("transformers", transformers_rates(model))
    print(f"    ratio {o / p:.2f}x transformers")
