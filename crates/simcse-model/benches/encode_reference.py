"""PyTorch reference for benches/encode.rs: the same sentences, the same length-sorted batches of 64,
tokenization included, torch.inference_mode, the same thread count. Prints sentences/s.

  python3 crates/simcse-model/benches/encode_reference.py [--threads 2] [--only minilm|bert-base|deberta-base]

(`--only` as encode.rs's SIMCSE_BENCH.)
"""
import argparse, os, pathlib, tempfile, time, shutil, json
import torch
from transformers import (AutoModel, AutoTokenizer, BertConfig, BertModel, BertTokenizerFast, DebertaV2Config,
                          DebertaV2Model)

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--shared", default=str(repo.parent / "shared" / "data"))
ap.add_argument("--minilm", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
ap.add_argument("--only", default="")
args = ap.parse_args()
torch.set_num_threads(args.threads)
lines = open(os.path.join(args.shared, "kor-nlu", "sts-test.tsv"), encoding="utf-8").read().split("\n")[1:]
sents = [s for l in lines for s in l.split("\t")[5:7]]


def encode(tok, model, texts, max_len, bs=64, pool=lambda out, mask: out.pooler_output):
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=max_len)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    out = [None] * len(texts)
    with torch.inference_mode():
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            pooled = pool(model(**enc), enc["attention_mask"])
            for j, i in enumerate(idx):
                out[i] = pooled[j]
    return out


def measure(label, tok, model, texts, max_len, **pool):
    encode(tok, model, texts[:64], max_len, **pool)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        encode(tok, model, texts, max_len, **pool)
        best = min(best, time.perf_counter() - t)
    print(f"{label:<44} {len(texts):>6} sentences  best of 3: {best:>7.3f} s  {len(texts) / best:>8.1f} sentences/s")


print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
if args.only in ("", "minilm"):
    tok = AutoTokenizer.from_pretrained(args.minilm)
    measure("pytorch all-MiniLM-L6-v2 max_len 128", tok, AutoModel.from_pretrained(args.minilm).eval(), sents, 128)
kr = tempfile.mkdtemp()
shutil.copy(os.path.join(args.shared, "kr-bert", "vocab_snu_char16424.txt"), os.path.join(kr, "vocab.txt"))
json.dump({"do_lower_case": False}, open(os.path.join(kr, "tokenizer_config.json"), "w"))
if args.only in ("", "bert-base"):
    base = BertModel(BertConfig(vocab_size=16424, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                intermediate_size=3072)).eval()
    measure("pytorch random BERT-base (KR-BERT vocab) max_len 64", BertTokenizerFast.from_pretrained(kr), base,
            sents[:512], 64)


def mean(out, mask):
    m = mask.unsqueeze(-1).float()
    return (out.last_hidden_state * m).sum(1) / m.sum(1)


# kf-deberta-base's DeBERTa-v2 settings with KR-BERT's vocabulary, mean pooling (encode.rs's `base`).
if args.only in ("", "deberta-base"):
    deberta = DebertaV2Model(DebertaV2Config(
        vocab_size=16424, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=0, relative_attention=True, pos_att_type=["p2c", "c2p"],
        share_att_key=True, position_buckets=256, max_relative_positions=512, norm_rel_ebd="layer_norm",
        position_biased_input=False, layer_norm_eps=1e-7)).eval()
    measure("pytorch random deberta-v2-base (KR-BERT vocab) max_len 64", BertTokenizerFast.from_pretrained(kr),
            deberta, sents[:512], 64, pool=mean)
