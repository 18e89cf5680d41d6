#!/usr/bin/env python3
"""Every stage on checkpoints this project never saw, against transformers and sentence-transformers.

For each supported architecture, a random checkpoint is made here by transformers, with sizes,
vocabularies (tokenizers trained here on KorSTS train: byte-level BPE, Unigram with <s> or [CLS],
WordPiece) and
options unlike the committed test fixtures. Each goes through our binaries:
  simcse-train (a few sup updates on KorNLI triples), simcse-eval (KorSTS dev),
  simcse-embed embed / export / mine, simcse-embed serve (POST /embed),
and the results are read back by the reference libraries:
  - transformers' AutoTokenizer + AutoModel on the trained folder: [CLS] hidden state vs ours;
  - sentence-transformers on the exported folder: the trained pooler's embedding vs ours;
  - the server's /embed vs ours (unit vectors);
  - scipy's Spearman on transformers' cosines vs eval.json's.
Any difference above --tolerance (embeddings, cosines; Spearman x100 above 0.01) fails the run.

Run by hand (needs torch, transformers, sentence-transformers, tokenizers, pyarrow, scipy; CI has none):
    cargo build --release -p simcse-cli
    python3 scripts/check_architectures.py [--bin target/release]
"""
import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (AutoModel, AutoTokenizer, BertConfig, BertModel, DebertaV2Config, DebertaV2ForMaskedLM,
                          DebertaV2Model, ElectraConfig, ElectraForPreTraining, PreTrainedTokenizerFast,
                          RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel)

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release")
ap.add_argument("--shared", default="../shared/data")
ap.add_argument("--tolerance", type=float, default=1e-5)
ap.add_argument("--keep", help="keep the work folder here")
args = ap.parse_args()
BIN = Path(args.bin).resolve()
SHARED = Path(args.shared).resolve()
torch.manual_seed(7)


def korsts(name):
    rows = [l.split("\t") for l in (SHARED / "kor-nlu" / name).read_text(encoding="utf-8").splitlines()[1:]]
    return [r for r in rows if len(r) >= 7]


train_text = [s for r in korsts("sts-train.tsv")[:3000] for s in (r[5], r[6])]
dev = korsts("sts-dev.tsv")
sample = [r[5] for r in dev[:120]] + ["짧은 문장", "아주 " * 60 + "긴 문장"]  # one past max_len


def specials(kind):
    if kind in ("wordpiece", "spm"):
        return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], dict(
            pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]", cls_token="[CLS]", sep_token="[SEP]")
    return ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], dict(
        bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
        cls_token="<s>", sep_token="</s>")


def tokenizer(kind, vocab):
    names, special = specials(kind)
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=names,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind in ("unigram", "spm"):
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab, special_tokens=names, unk_token=special["unk_token"])
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=names)
    tok.train_from_iterator(train_text, trainer)
    cls, sep = special["cls_token"], special["sep_token"]
    if kind in ("wordpiece", "spm"):  # DeBERTa-v3's SentencePiece model has [CLS] ... [SEP] too
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    else:
        tok.post_processor = processors.RobertaProcessing((sep, tok.token_to_id(sep)), (cls, tok.token_to_id(cls)))
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **special)


def make(folder, kind, vocab, build):
    tok = tokenizer(kind, vocab)
    model = build(tok)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "LayerNorm.weight" in name else 0.0))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model.config


def ids(tok):
    return dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)


ARCHS = {
    # name: (tokenizer, vocab, checkpoint class + config)
    "roberta": ("bpe", 900, lambda t: RobertaModel(RobertaConfig(
        hidden_size=48, num_hidden_layers=3, num_attention_heads=6, intermediate_size=80, layer_norm_eps=1e-6,
        max_position_embeddings=70, type_vocab_size=1, bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
        **ids(t)))),
    "xlm-roberta": ("unigram", 2000, lambda t: XLMRobertaModel(XLMRobertaConfig(
        hidden_size=40, num_hidden_layers=2, num_attention_heads=5, intermediate_size=64, hidden_act="gelu_new",
        max_position_embeddings=60, type_vocab_size=1, layer_norm_eps=1e-5, bos_token_id=t.bos_token_id,
        eos_token_id=t.eos_token_id, **ids(t)), add_pooling_layer=False)),
    "electra": ("wordpiece", 1800, lambda t: ElectraForPreTraining(ElectraConfig(
        embedding_size=24, hidden_size=40, num_hidden_layers=3, num_attention_heads=4, intermediate_size=72,
        hidden_act="relu", max_position_embeddings=80, **ids(t)))),
    "bert": ("wordpiece", 1200, lambda t: BertModel(BertConfig(
        hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=50, hidden_act="gelu_new",
        max_position_embeddings=64, layer_norm_eps=1e-7, **ids(t)))),
    # DeBERTa-v3 as mdeberta / kf-deberta are built (shared keys, buckets over max_position_embeddings,
    # normed relative embeddings, no absolute positions, no token types), and an older v2 (c2p only, own projection, no buckets but a
    # clamp at 12 positions, absolute positions, the convolution with tanh, an MLM head in the file).
    "deberta-v3": ("spm", 1500, lambda t: DebertaV2Model(DebertaV2Config(
        hidden_size=48, num_hidden_layers=3, num_attention_heads=6, intermediate_size=80, relative_attention=True,
        pos_att_type=["p2c", "c2p"], share_att_key=True, position_buckets=16, max_relative_positions=-1,
        norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0, max_position_embeddings=64,
        layer_norm_eps=1e-7, **ids(t)))),
    "deberta-v2": ("wordpiece", 1400, lambda t: DebertaV2ForMaskedLM(DebertaV2Config(
        hidden_size=40, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, hidden_act="gelu_new",
        relative_attention=True, pos_att_type="c2p", share_att_key=False, position_buckets=-1,
        max_relative_positions=12, position_biased_input=True, type_vocab_size=2, conv_kernel_size=5,
        conv_act="tanh", max_position_embeddings=64, layer_norm_eps=1e-7, **ids(t)))),
    # Relative attention off: absolute positions only, yet `pos_att_type` still counts in the scale.
    "deberta-v2-absolute": ("wordpiece", 1000, lambda t: DebertaV2Model(DebertaV2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, relative_attention=False,
        pos_att_type=["c2p", "p2c"], position_biased_input=True, type_vocab_size=0, max_position_embeddings=40,
        layer_norm_eps=1e-7, **ids(t)))),
}


def run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def embeddings(path):
    return np.stack(pq.read_table(path).column("embedding").to_numpy(zero_copy_only=False))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served(model, texts):
    port = free_port()
    server = subprocess.Popen([BIN / "simcse-embed", "serve", "--model", model, "--addr", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        out = []
        for i in range(0, len(texts), 50):  # the server takes at most 64 texts a request
            req = urllib.request.Request(f"http://127.0.0.1:{port}/embed",
                                         data=json.dumps({"inputs": texts[i:i + 50]}).encode(),
                                         headers={"Content-Type": "application/json"})
            out += json.load(urllib.request.urlopen(req, timeout=120))
        return np.array(out, dtype=np.float32)
    finally:
        server.kill()


def check(name, diff, limit):
    print(f"  {name:<44} max abs diff {diff:.2e}")
    return diff <= limit


work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp())
work.mkdir(parents=True, exist_ok=True)
data = work / "data"
run(BIN / "simcse-prepare", "run", "--raw-dir", SHARED, "--out-dir", data)
(work / "sample.txt").write_text("\n".join(sample) + "\n", encoding="utf-8")
ok = True
for arch, (kind, vocab, build) in ARCHS.items():
    init, out = work / f"{arch}-init", work / f"{arch}-run"
    shutil.rmtree(init, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    config = make(init, kind, vocab, build)
    print(f"{arch}: {kind} vocab {config.vocab_size}, hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, {config.hidden_act}")
    run(BIN / "simcse-train", "--mode", "sup", "--init", init, "--out", out, "--dev-file", "",
        "--train-file", data / "kornli_triples.parquet", "--max-steps", 3, "--batch-size", 8, "--max-len", 32,
        "--learning-rate", 1e-4)
    model = out / "model"
    # transformers on the trained folder: its tokenizer and weights, the [CLS] hidden state.
    run(BIN / "simcse-embed", "embed", "--model", model, "--input", work / "sample.txt", "--pooler",
        "cls_before_pooler", "--max-len", 32, "--no-normalize", "--out", work / f"{arch}-cls.parquet")
    tok, hf = AutoTokenizer.from_pretrained(model), AutoModel.from_pretrained(model).eval()
    enc = tok(sample, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**enc).last_hidden_state[:, 0].numpy()
    ok &= check("trained weights: transformers AutoModel", np.abs(embeddings(work / f"{arch}-cls.parquet") - theirs).max(),
                args.tolerance)
    # The trained pooler (simcse.json's) through sentence-transformers.
    run(BIN / "simcse-embed", "embed", "--model", model, "--input", work / "sample.txt", "--no-normalize",
        "--out", work / f"{arch}.parquet")
    ours = embeddings(work / f"{arch}.parquet")
    run(BIN / "simcse-embed", "export", "--model", model, "--out", work / f"{arch}-st")
    st = SentenceTransformer(str(work / f"{arch}-st"), device="cpu")
    ok &= check(f"export: sentence-transformers {[type(m).__name__ for m in st]}",
                np.abs(st.encode(sample, convert_to_numpy=True) - ours).max(), args.tolerance)
    ok &= check("serve: POST /embed", np.abs(served(model, sample) - unit(ours)).max(), args.tolerance)
    # eval on KorSTS dev: the pairs' cosines of sentence-transformers' embeddings vs ours (`embed`),
    # and eval.json's Spearman vs scipy's on sentence-transformers' cosines. Random models put
    # nearly every cosine within a hair of the others, so 1e-7 of rounding can swap ranks: the
    # Spearman check allows 0.01 points; the cosines are held to the tolerance.
    run(BIN / "simcse-eval", "--model", model, "--data-dir", data, "--sets", "korsts_dev", "--out", work / f"{arch}-eval")
    ours_rho = json.loads((work / f"{arch}-eval" / "eval.json").read_text())["models"][0]["sets"][0]["score"]["spearman"]
    pairs = pq.read_table(data / "sts" / "korsts_dev.parquet").to_pydict()
    (work / "dev.txt").write_text("\n".join(pairs["sentence1"] + pairs["sentence2"]) + "\n", encoding="utf-8")
    run(BIN / "simcse-embed", "embed", "--model", model, "--input", work / "dev.txt", "--out", work / f"{arch}-dev.parquet")
    n = len(pairs["score"])
    ours = embeddings(work / f"{arch}-dev.parquet")
    theirs = st.encode(pairs["sentence1"] + pairs["sentence2"], convert_to_numpy=True, normalize_embeddings=True)
    cos_ours, cos_theirs = (ours[:n] * ours[n:]).sum(1), (theirs[:n] * theirs[n:]).sum(1)
    ok &= check(f"eval: {n} KorSTS dev cosines", np.abs(cos_ours - cos_theirs).max(), args.tolerance)
    rho = 100 * spearmanr(cos_theirs, pairs["score"]).statistic
    ok &= check(f"eval: Spearman {ours_rho:.4f} vs scipy's {rho:.4f}", abs(ours_rho - rho), 0.01)
    run(BIN / "simcse-embed", "mine", "--model", model, "--triples", data / "kornli_triples.parquet",
        "--margin", 0, "--out", work / f"{arch}-mined.parquet")
    mined = pq.read_table(work / f"{arch}-mined.parquet").num_rows
    print(f"  mine: {mined} triples")
    ok &= mined > 0
print("all within tolerance" if ok else "FAILED")
sys.exit(0 if ok else 1)
