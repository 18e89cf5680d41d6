#!/usr/bin/env python3
"""PyTorch side of the GPU check (scripts/gpu-check.sh), and the kit's weight conversions.

Subcommands (the last group only reads and writes JSON: gpu-check.sh's bookkeeping):
  half SRC DST [--texts FILE...]
                        a model folder with fp32 weights -> the same with fp16 weights, and with
                        --texts only the word embeddings of tokens these files use (the rest zero;
                        needs the `tokenizers` package): how `cargo xtask gpu-kit` fits
                        all-MiniLM-L6-v2 into the kit
  single SRC DST        fp16 -> fp32 again (pure Python, on the GPU machine; our loader reads fp32)
  bert-base DST VOCAB   a randomly initialised BERT-base with VOCAB's size (KR-BERT: 16,424), saved as
                        a Hugging Face folder that simcse-train can start from
  encode MODEL DATA     sentences/s of transformers on KorSTS test (distinct sentences, sorted by
                        length and batched as simcse-eval does; KorSTS dev first, as warm-up)
  train MODEL TRIPLES   updates/s and peak memory of one supervised SimCSE update as simcse-train does
                        it (CLS + fresh MLP pooler, in-batch and hard negatives, temperature 0.05,
                        AdamW, global norm clipping 1.0, dropout on)
  tests, ours-train, recipe, ours-encode, merge
                        one step's numbers from our logs and outputs, as JSON
  report PARTS OUT      gpu-check.json and gpu-check.md from the steps' JSON

`encode` and `train` print one JSON object: the numbers for one --precision (fp32, tf32 or bf16
autocast), so that each precision runs in a process of its own and nvidia-smi's peak is its own.
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys
import time

TOKENIZER_FILES = ["config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json", "simcse.json"]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


def write_safetensors(path, header, blobs):
    offset, meta = 0, {}
    for name in sorted(blobs):
        h = dict(header[name])
        h["data_offsets"] = [offset, offset + len(blobs[name])]
        offset += len(blobs[name])
        meta[name] = h
    head = json.dumps(meta, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name in sorted(blobs):
            f.write(blobs[name])
    os.replace(tmp, path)


def used_token_ids(model, texts):
    """The ids that `model`'s tokenizer gives any line of the files `texts`, and the special ones."""
    import tokenizers
    tok = tokenizers.Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    ids = {tok.token_to_id(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]} - {None}
    for path in texts:
        with open(path, encoding="utf-8") as f:
            for enc in tok.encode_batch(f.read().splitlines()):
                ids.update(enc.ids)
    return ids


def convert(src, dst, frm, to, keep_ids=None):
    """Copies a model folder, its floating-point weights from struct code `frm` to `to`. With
    `keep_ids`, the word-embedding rows of other token ids are zeroed: a text made only of kept
    tokens never reads them, so every output on such text is unchanged, and zeros compress away."""
    os.makedirs(dst, exist_ok=True)
    for f in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    header, data = read_safetensors(os.path.join(src, "model.safetensors"))
    header.pop("__metadata__", None)
    names = {"e": "F16", "f": "F32"}
    blobs = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        raw = data[start:end]
        if h["dtype"] == names[frm]:
            n = len(raw) // struct.calcsize(frm)
            values = struct.unpack(f"<{n}{frm}", raw)
            if keep_ids is not None and name.endswith("word_embeddings.weight"):
                rows, width = h["shape"]
                values = [v if i // width in keep_ids else 0.0 for i, v in enumerate(values)]
            raw = struct.pack(f"<{n}{to}", *values)
            h = dict(h, dtype=names[to])
        blobs[name] = raw
        header[name] = h
    write_safetensors(os.path.join(dst, "model.safetensors"), header, blobs)


def bert_base(dst, vocab, small):
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    n = sum(1 for line in open(vocab, encoding="utf-8") if line.strip())
    # BERT-base: 12 layers, 768 hidden, 12 heads, 3072 FFN; --small: a tiny one for dry-runs.
    size = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                intermediate_size=128) if small else {}
    config = BertConfig(vocab_size=n, **size)
    BertModel(config).save_pretrained(dst, safe_serialization=True)
    shutil.copy(vocab, os.path.join(dst, "vocab.txt"))
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": False, "strip_accents": False, "model_max_length": 512}, f)


def precision(name):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    if name == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def device():
    """CUDA; `GPU_REFERENCE_DEVICE=cpu` runs the same code on the CPU (to try the script anywhere)."""
    import torch
    return torch.device(os.environ.get("GPU_REFERENCE_DEVICE", "cuda"))


def sync(dev):
    import torch
    if dev.type == "cuda":
        torch.cuda.synchronize()


def peak_mib(dev, what):
    import torch
    if dev.type != "cuda":
        return None
    return getattr(torch.cuda, f"max_memory_{what}")() / 2**20


def read_column_pairs(path, columns):
    import pyarrow.parquet as pq
    t = pq.read_table(path, columns=columns)
    return list(zip(*(t.column(c).to_pylist() for c in columns)))


def distinct_sentences(path):
    seen = {}
    for a, b in read_column_pairs(path, ["sentence1", "sentence2"]):
        seen.setdefault(a, None)
        seen.setdefault(b, None)
    return list(seen)


def encode(args):
    import torch
    from transformers import AutoModel, AutoTokenizer
    dev = device()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).to(dev).eval()

    def run(sentences):
        # As simcse_model::Encoder: sorted by token count (longest first), padded per batch.
        lengths = [len(x) for x in tok(sentences, truncation=True, max_length=args.max_len)["input_ids"]]
        order = sorted(range(len(sentences)), key=lambda i: -lengths[i])
        out = [None] * len(sentences)
        with torch.inference_mode(), precision(args.precision):
            for k in range(0, len(order), args.batch_size):
                idx = order[k:k + args.batch_size]
                b = tok([sentences[i] for i in idx], padding=True, truncation=True,
                        max_length=args.max_len, return_tensors="pt").to(dev)
                emb = model(**b).last_hidden_state[:, 0].float().cpu()
                for j, i in enumerate(idx):
                    out[i] = emb[j]
        return out

    run(distinct_sentences(os.path.join(args.data, "sts/korsts_dev.parquet")))  # warm-up
    test = distinct_sentences(os.path.join(args.data, "sts/korsts_test.parquet"))
    sync(dev)
    t = time.perf_counter()
    run(test)
    sync(dev)
    seconds = time.perf_counter() - t
    print(json.dumps({"precision": args.precision, "sentences": len(test), "seconds": seconds,
                      "sentences_per_s": len(test) / seconds,
                      "peak_allocated_mib": peak_mib(dev, "allocated")}))


def train(args):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer
    torch.manual_seed(42)
    dev = device()
    tok = AutoTokenizer.from_pretrained(args.model)
    bert = AutoModel.from_pretrained(args.model, add_pooling_layer=False).to(dev).train()
    mlp = torch.nn.Linear(bert.config.hidden_size, bert.config.hidden_size).to(dev)
    params = list(bert.parameters()) + list(mlp.parameters())
    optim = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.0, eps=1e-8)
    triples = read_column_pairs(args.triples, ["anchor", "positive", "negative"])
    # Tokenized ahead of the timing, as simcse-train's prefetch thread does.
    batches = []
    for k in range(args.steps):
        rows = [triples[(k * args.batch_size + i) % len(triples)] for i in range(args.batch_size)]
        views = [r[0] for r in rows] + [r[1] for r in rows] + [r[2] for r in rows]
        batches.append(tok(views, padding=True, truncation=True, max_length=args.max_len,
                           return_tensors="pt").to(dev))
    n = args.batch_size
    labels = torch.arange(n, device=dev)
    losses, times = [], []
    for b in batches:
        sync(dev)
        t = time.perf_counter()
        with precision(args.precision):
            cls = torch.tanh(mlp(bert(**b).last_hidden_state[:, 0]))
            z = F.normalize(cls.float(), dim=-1)
            sim = z[:n] @ z[n:].T / 0.05  # anchors x (positives, hard negatives)
            loss = F.cross_entropy(sim, labels)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        losses.append(loss.item())  # one sync per update, as ours
        times.append(time.perf_counter() - t)
    timed = times[args.warmup:]
    print(json.dumps({
        "precision": args.precision, "batch_size": n, "max_len": args.max_len,
        "updates": len(timed), "first_update_seconds": times[0], "seconds_per_update": median(timed),
        "mean_seconds_per_update": sum(timed) / len(timed),
        "examples_per_s": n / median(timed), "losses": losses,
        "peak_allocated_mib": peak_mib(dev, "allocated"),
        "peak_reserved_mib": peak_mib(dev, "reserved")}))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def peak(path):
    """The nvidia-smi peak (MiB over the idle baseline) that gpu-check.sh wrote, or None."""
    try:
        return json.loads(open(path).read().strip() or "null")
    except (OSError, ValueError):
        return None


def cubecl_counts(peak_file):
    """What cubecl compiled and autotuned in the run whose peak file this is (gpu-check.sh logs
    each run to NAME.cubecl.log beside NAME.peak), or {} without a log."""
    if not peak_file.endswith(".peak"):
        return {}
    log = peak_file[:-len(".peak")] + ".cubecl.log"
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return {}
    return {"kernels_compiled": text.count("[Compiling kernel]"),
            "shapes_autotuned": text.count("Fastest result ")}


def metrics(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except OSError:
        return []


def tests(logs):
    """Each test binary's result lines and the numbers its tests printed."""
    out = {}
    for log in logs:
        text = open(log, errors="replace").read()
        name = os.path.basename(log)[len("test-"):-len(".log")]
        out[name] = {
            "passed": any(int(n) > 0 for n in re.findall(r"test result: ok\. (\d+) passed", text)),
            "results": [line for line in text.splitlines() if line.startswith("test ")],
            "measured": [line for line in text.splitlines()
                         if "diff" in line or " vs " in line or "loss" in line.lower()][:20],
            "failures": [line for line in text.splitlines() if "panicked" in line][:10],
        }
    return out


def median(values):
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def ours_train(path, peak_file, batch, precision, warmup=5):
    """The median update time after `warmup` updates (a new sequence length can cost a kernel
    compilation or an autotune in any update; the median is the steady state)."""
    rows = [m for m in metrics(path) if "examples_per_s" in m]
    timed = [m for m in rows if m["step"] > min(warmup, len(rows) // 2)]
    if not timed:
        return {"precision": precision, "error": "no timed updates in " + path}
    seconds = [batch / m["examples_per_s"] for m in timed]
    return {"precision": precision, "batch_size": batch, "updates": len(timed),
            "first_update_seconds": batch / rows[0]["examples_per_s"],
            "seconds_per_update": median(seconds), "mean_seconds_per_update": sum(seconds) / len(seconds),
            "examples_per_s": batch / median(seconds),
            "losses": [m["loss"] for m in rows], "peak_mib": peak(peak_file), **cubecl_counts(peak_file)}


def recipe(path, peak_file, seconds, precision):
    rows = metrics(path)
    evals = [(m["step"], m["eval"]["spearman"]) for m in rows if "eval" in m]
    best = max(evals, key=lambda e: e[1]) if evals else None
    return {"precision": precision, "evals": evals, "best_step": best and best[0], "best_spearman": best and best[1],
            "updates": max((m["step"] for m in rows if "loss" in m), default=0),
            "seconds": seconds, "peak_mib": peak(peak_file), "cpu_spearman": 61.41, **cubecl_counts(peak_file)}


def ours_encode(path, peak_file):
    try:
        sets = {s["name"]: s for s in read_json(path)["models"][0]["sets"]}
        test = sets["korsts_test"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        return {"precision": "f32", "error": f"{path}: {e}"}
    return {"precision": "f32", "sentences": test["sentences"],
            "seconds": test["encode_seconds"],
            "sentences_per_s": test["sentences"] / test["encode_seconds"],
            "spearman": test["score"]["spearman"], "peak_mib": peak(peak_file), **cubecl_counts(peak_file)}


def merge(path, peak_file):
    try:
        lines = [line for line in open(path) if line.startswith("{")]
        out = json.loads(lines[-1])
    except (OSError, ValueError, IndexError):
        out = {"error": f"no result in {path}"}
    out["peak_mib"] = peak(peak_file)
    return out


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def compiled(v):
    """The "kernels compiled / shapes autotuned" cell of one of our runs."""
    return f"{v['kernels_compiled']} / {v['shapes_autotuned']}" if "kernels_compiled" in v else "–"


def ratio(rate, ours):
    return fmt(rate / ours if rate and ours else None, ".2f")


def table(title, columns, rows):
    """A markdown section: `columns` ending in "#" are numbers (right-aligned); each row is its cells
    and an error (or None) written after the row. No rows: no section."""
    if not rows:
        return []
    lines = [f"\n## {title}\n", "| " + " | ".join(c.rstrip("#") for c in columns) + " |",
             "|" + "|".join("---:" if c.endswith("#") else "---" for c in columns) + "|"]
    for cells, error in rows:
        lines.append("| " + " | ".join(str(c) for c in cells) + " |" + (f" {error}" if error else ""))
    return lines


def report(parts, out):
    """gpu-check.json (every part) and gpu-check.md (the tables) from the parts written so far."""
    data = {os.path.splitext(f)[0]: read_json(os.path.join(parts, f))
            for f in sorted(os.listdir(parts)) if f.endswith(".json")}
    m = data.get("machine", {})
    md = [f"# GPU check\n\nGPU: {m.get('gpu')}; device `{m.get('device')}`; NVRTC {m.get('nvrtc')}; "
          f"PyTorch with CUDA: {m.get('torch_cuda') == '1'}" + ("; SMALL (dry-run sizes)" if m.get("small") == "1" else "")]
    if "parity" in data:
        md.append("\n## 1. Parity tests\n")
        for name, t in data["parity"].items():
            md.append(f"- `{name}`: {'passed' if t['passed'] else 'FAILED'}")
            md += [f"  - {line}" for line in t["results"] + t["measured"] + t["failures"]]
    order = ["ours-f32", "ours-bf16", "ours", "torch-fp32", "torch-tf32", "torch-bf16"]
    rank = lambda kv: next((i for i, o in enumerate(order) if kv[0].endswith(o)), len(order))
    rows = lambda prefix: sorted(((k, v) for k, v in data.items() if k.startswith(prefix)), key=rank)
    ours = data.get("train-ours-f32", {}).get("examples_per_s")
    md += table("2. Supervised SimCSE training throughput",
                ["implementation", "precision", "first update s#", "s/update (median)#", "triples/s#",
                 "peak GPU MiB (nvidia-smi)#", "vs ours f32#", "kernels compiled / shapes autotuned#",
                 "losses (first, last)"],
                [([("ours (burn)" if k.startswith("train-ours") else "PyTorch"), v.get("precision"),
                   fmt(v.get("first_update_seconds"), ".2f"), fmt(v.get("seconds_per_update"), ".4f"),
                   fmt(v.get("examples_per_s"), ".1f"), fmt(v.get("peak_mib"), ""),
                   ratio(v.get("examples_per_s"), ours), compiled(v),
                   f"{fmt((v.get('losses') or [None])[0], '.4f')}, {fmt((v.get('losses') or [None])[-1], '.4f')}"],
                  v.get("error")) for k, v in rows("train-")])
    md += table("3. configs/sup-xnli-minilm.toml (CPU run: best KorSTS dev Spearman 61.41)",
                ["precision", "best dev Spearman#", "at update#", "updates#", "seconds (whole run)#",
                 "peak GPU MiB#", "kernels compiled / shapes autotuned#", "evaluations"],
                [([r.get("precision"), fmt(r.get("best_spearman"), ".2f"), r.get("best_step"), r.get("updates"),
                   r.get("seconds"), fmt(r.get("peak_mib"), ""), compiled(r),
                   ", ".join(f"{s}: {v:.2f}" for s, v in r.get("evals", []))], None)
                 for _, r in rows("recipe-")])
    ours = data.get("encode-ours", {}).get("sentences_per_s")
    md += table("4. Encode throughput (all-MiniLM-L6-v2, KorSTS test, max_len 128, batch 128)",
                ["implementation", "sentences#", "seconds#", "sentences/s#", "peak GPU MiB#", "vs ours#",
                 "kernels compiled / shapes autotuned#"],
                [([("ours (burn) " if k == "encode-ours" else "PyTorch ") + str(v.get("precision")),
                   v.get("sentences"), fmt(v.get("seconds"), ".3f"), fmt(v.get("sentences_per_s"), ".0f"),
                   fmt(v.get("peak_mib"), ""), ratio(v.get("sentences_per_s"), ours), compiled(v)], v.get("error"))
                 for k, v in rows("encode-")])
    for name, text in [("gpu-check.json", json.dumps(data, indent=1)), ("gpu-check.md", "\n".join(md) + "\n")]:
        with open(os.path.join(out, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ["half", "single"]:
        s = sub.add_parser(name)
        s.add_argument("src")
        s.add_argument("dst")
        if name == "half":
            s.add_argument("--texts", nargs="*", help="keep only the word embeddings of their tokens")
    s = sub.add_parser("bert-base")
    s.add_argument("dst")
    s.add_argument("vocab")
    s.add_argument("--small", action="store_true")
    s = sub.add_parser("tests")
    s.add_argument("logs", nargs="+")
    s = sub.add_parser("ours-train")
    s.add_argument("metrics")
    s.add_argument("peak")
    s.add_argument("batch", type=int)
    s.add_argument("precision")
    s = sub.add_parser("recipe")
    s.add_argument("metrics")
    s.add_argument("peak")
    s.add_argument("seconds", type=int)
    s.add_argument("precision")
    s = sub.add_parser("ours-encode")
    s.add_argument("eval_json")
    s.add_argument("peak")
    s = sub.add_parser("merge")
    s.add_argument("json")
    s.add_argument("peak")
    s = sub.add_parser("report")
    s.add_argument("parts")
    s.add_argument("out")
    s = sub.add_parser("encode")
    s.add_argument("model")
    s.add_argument("data")
    s.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--max-len", type=int, default=128)
    s = sub.add_parser("train")
    s.add_argument("model")
    s.add_argument("triples")
    s.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--max-len", type=int, default=32)
    s.add_argument("--steps", type=int, default=25)
    s.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    if a.cmd == "half":
        convert(a.src, a.dst, "f", "e", used_token_ids(a.src, a.texts) if a.texts else None)
    elif a.cmd == "single":
        convert(a.src, a.dst, "e", "f")
    elif a.cmd == "bert-base":
        bert_base(a.dst, a.vocab, a.small)
    elif a.cmd == "encode":
        encode(a)
    elif a.cmd == "train":
        train(a)
    elif a.cmd == "report":
        report(a.parts, a.out)
    else:
        result = {"tests": lambda: tests(a.logs),
                  "ours-train": lambda: ours_train(a.metrics, a.peak, a.batch, a.precision),
                  "recipe": lambda: recipe(a.metrics, a.peak, a.seconds, a.precision),
                  "ours-encode": lambda: ours_encode(a.eval_json, a.peak),
                  "merge": lambda: merge(a.json, a.peak)}[a.cmd]()
        print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
