"""Training speed of a RoBERTa next to a BERT of the same size: random base-size checkpoints
(hidden 768, 12 layers, KR-BERT's char vocabulary of 16,424 as WordPiece; klue/roberta-base also
pairs RoBERTa weights with a WordPiece tokenizer), each trained by our `simcse-train` for a few sup
updates on XNLI-ko triples; the median examples/s of the updates after the first two, from
metrics.jsonl. The two differ only in position ids (RoBERTa counts them from the pad id) and
token types (one), so they should train at the same speed.

    cargo build --release -p simcse-cli --bin simcse-train --bin simcse-prepare
    python3 crates/simcse-train/benches/arch_speed.py [--bin target/release] [--updates 8]

Needs torch and transformers (not in CI)."""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast, RobertaConfig, RobertaModel

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(repo / "target/release"))
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--updates", type=int, default=8)
ap.add_argument("--batch-size", type=int, default=16)
args = ap.parse_args()

work = pathlib.Path(tempfile.mkdtemp())
subprocess.run([f"{args.bin}/simcse-prepare", "run", "--raw-dir", args.shared, "--out-dir", work / "data"],
               check=True, capture_output=True)
# from_pretrained(folder) with a vocab.txt (transformers 5 ignores BertTokenizerFast(vocab_file=...)).
(work / "vocab").mkdir()
(work / "vocab/vocab.txt").write_bytes((pathlib.Path(args.shared) / "kr-bert/vocab_snu_char16424.txt").read_bytes())
tok = BertTokenizerFast.from_pretrained(work / "vocab", do_lower_case=False)
sizes = dict(vocab_size=len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
             intermediate_size=3072, pad_token_id=tok.pad_token_id)
models = {
    "bert": BertModel(BertConfig(max_position_embeddings=512, **sizes)),
    "roberta": RobertaModel(RobertaConfig(max_position_embeddings=514, type_vocab_size=1, **sizes)),
}
print(f"{args.updates} sup updates, batch {args.batch_size} triples, max_len 32; examples/s (median of updates 3..)")
for name, model in models.items():
    d = work / name
    torch.manual_seed(0)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    out = work / f"run-{name}"
    subprocess.run([f"{args.bin}/simcse-train", "--mode", "sup", "--init", d, "--out", out,
                    "--train-file", work / "data/kornli_triples.parquet", "--dev-file", "",
                    "--max-steps", str(args.updates), "--batch-size", str(args.batch_size), "--max-len", "32",
                    "--log-steps", "1"],
                   check=True, capture_output=True)
    rates = [json.loads(l)["examples_per_s"] for l in (out / "metrics.jsonl").read_text().splitlines()
             if '"examples_per_s"' in l]
    print(f"  {name:<8} {statistics.median(rates[2:]):7.2f} examples/s  (each update: "
          f"{', '.join(f'{r:.1f}' for r in rates)})")
