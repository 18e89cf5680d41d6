"""What a 250k-token vocabulary (XLM-R, multilingual-e5, bge-m3) costs in training memory: peak
resident memory of 3 sup updates (batch 32 triples, max_len 32) of a random XLM-R of
multilingual-e5-small's shape (hidden 384, 12 layers, vocabulary 250,002) against the same encoder
with a 2,000-token vocabulary, for our trainer and for PyTorch (AdamW, the same loss), side by side.

    cargo build -p simcse-cli --bin simcse-train      # or --release, then --bin target/release
    python3 crates/simcse-train/benches/vocab_memory.py [--bin target/debug] [--threads 2]

Needs torch, transformers and tokenizers (not in CI). The sentences are KorSTS train's, tokenized
by a small Unigram tokenizer trained here, so the batches touch a few thousand rows of the
embedding: the gradient is dense in both libraries (PyTorch's nn.Embedding defaults to
sparse=False), and AdamW keeps two moments for every row."""
import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(repo / "target/debug"))
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--torch-run", nargs=2, help=argparse.SUPPRESS)  # internal: MODEL_DIR TRIPLES
args = ap.parse_args()
STEPS, BATCH, MAX_LEN = 3, 32, 32


def torch_run(model_dir, triples):
    """3 sup updates in PyTorch; prints the peak RSS in MiB (this process only)."""
    import pyarrow.parquet as pq
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.0)
    t = pq.read_table(triples).to_pydict()
    for step in range(STEPS):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        text = t["anchor"][rows] + t["positive"][rows] + t["negative"][rows]
        enc = tok(text, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        z = model(**enc).last_hidden_state[:, 0]
        a, p, n = z[:BATCH], z[BATCH:2 * BATCH], z[2 * BATCH:]
        cos = F.cosine_similarity(a.unsqueeze(1), torch.cat([p, n]).unsqueeze(0), dim=-1) / 0.05
        loss = F.cross_entropy(cos, torch.arange(BATCH))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if args.torch_run:
    torch_run(*args.torch_run)
    sys.exit(0)

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel  # noqa: E402

rows = [l.split("\t") for l in (pathlib.Path(args.shared) / "kor-nlu/sts-train.tsv").read_text().splitlines()[1:]]
text = [r[c] for r in rows if len(r) >= 7 for c in (5, 6)]
specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
raw = Tokenizer(models.Unigram())
raw.normalizer = normalizers.NFKC()
raw.pre_tokenizer = pre_tokenizers.Metaspace()
raw.decoder = decoders.Metaspace()
raw.train_from_iterator(text, trainers.UnigramTrainer(vocab_size=2000, special_tokens=specials, unk_token="<unk>"))
raw.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                              unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
work = pathlib.Path(tempfile.mkdtemp())
subprocess.run([f"{args.bin}/simcse-prepare", "run", "--raw-dir", args.shared, "--out-dir", work / "data"],
               check=True, capture_output=True)
triples = work / "data/kornli_triples.parquet"
print(f"{STEPS} sup updates, batch {BATCH} triples, max_len {MAX_LEN}, {args.threads} threads; peak RSS (MiB)")
print("| vocabulary | parameters | ours | PyTorch |")
print("|---:|---:|---:|---:|")
for vocab in [2000, 250002]:
    d = work / f"xlmr-{vocab}"
    torch.manual_seed(0)
    model = XLMRobertaModel(XLMRobertaConfig(vocab_size=vocab, hidden_size=384, num_hidden_layers=12,
                                             num_attention_heads=12, intermediate_size=1536, max_position_embeddings=514,
                                             type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2),
                           add_pooling_layer=False)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    params = sum(p.numel() for p in model.parameters())
    del model
    r = subprocess.run(["/usr/bin/time", "-f", "%M", f"{args.bin}/simcse-train", "--mode", "sup", "--init", d,
                        "--train-file", triples, "--dev-file", "", "--out", work / f"run-{vocab}",
                        "--max-steps", str(STEPS), "--batch-size", str(BATCH), "--max-len", str(MAX_LEN),
                        "--pooler", "cls_before_pooler", "--learning-rate", "5e-5"],
                       capture_output=True, text=True, env={"RAYON_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"})
    if r.returncode:
        sys.exit(r.stderr[-2000:])
    ours = int(r.stderr.strip().splitlines()[-1]) / 1024
    theirs = float(subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--torch-run", d, triples],
                                  check=True, capture_output=True, text=True).stdout.split()[-1])
    print(f"| {vocab:,} | {params / 1e6:.1f}M | {ours:,.0f} | {theirs:,.0f} |")
print(json.dumps({"work": str(work)}))
