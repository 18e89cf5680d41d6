"""Does `precision = "bf16"` hold quality? Trains one recipe in f32 and in bf16 with the same seeds
(same batches, same dropout masks: the runs of a seed differ only in the matrix products' precision),
scores each final model with simcse-eval, and prints, per seed and on average, the KorSTS dev/test
Spearman of both, the per-update loss difference, and the steady speed. The f32 runs of different
seeds give the noise that a bf16 difference is compared with.

burn-flex's bf16 product rounds its inputs to bf16, accumulates in f32 and rounds the output to
bf16: the numerics of a GPU's bf16 tensor cores under `torch.autocast`, so the quality answer
carries over to CUDA; the speed does not (on the CPU bf16 only adds conversions).

  python3 crates/simcse-train/benches/precision_quality.py [--work DIR] [--seeds 42 43 44]
      [--config configs/sup-xnli-minilm.toml] [--epochs N] [--init .cache/all-MiniLM-L6-v2] [--device cpu]

Runs target/debug/simcse-train and simcse-eval (build them with `cargo build -p simcse-cli`);
a seed and precision whose report exists in DIR is not run again. Standard library only.
"""
import argparse, json, pathlib, statistics, subprocess

repo = pathlib.Path(__file__).resolve().parents[3]
ap = argparse.ArgumentParser()
ap.add_argument("--work", default=str(repo / "runs" / "precision-quality"))
ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
ap.add_argument("--config", default=str(repo / "configs" / "sup-xnli-minilm.toml"))
ap.add_argument("--init", default=str(repo / ".cache" / "all-MiniLM-L6-v2"))
ap.add_argument("--device", default="cpu")
ap.add_argument("--epochs", type=int, help="instead of the config's")
args = ap.parse_args()
work = pathlib.Path(args.work)
work.mkdir(parents=True, exist_ok=True)
PRECISIONS = ("f32", "bf16")


def run(seed, precision):
    out, report = work / f"s{seed}-{precision}", work / f"eval-s{seed}-{precision}"
    if (report / "eval.json").exists():
        return out, report
    train = [str(repo / "target/debug/simcse-train"), "--config", args.config, "--init", args.init,
             "--out", str(out), "--seed", str(seed), "--precision", precision, "--log-steps", "1",
             "--device", args.device] + (["--epochs", str(args.epochs)] if args.epochs else [])
    with open(work / f"s{seed}-{precision}.log", "w") as log:
        subprocess.run(train, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=repo)
    evaluate = [str(repo / "target/debug/simcse-eval"), "--model", str(out / "model"), "--out",
                str(report), "--device", args.device]
    with open(work / f"eval-s{seed}-{precision}.log", "w") as log:
        subprocess.run(evaluate, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=repo)
    return out, report


def summary(out, report):
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    losses = {r["step"]: r["loss"] for r in rows if "loss" in r}
    dev = [r["eval"]["spearman"] for r in rows if "eval" in r]
    sets = json.load(open(report / "eval.json"))["models"][0]["sets"]
    score = {s["name"]: s["score"]["spearman"] for s in sets}
    rate = statistics.median(r["examples_per_s"] for r in rows if "examples_per_s" in r)
    return {"losses": losses, "dev_curve": dev, "dev": score["korsts_dev"],
            "test": score["korsts_test"], "rate": rate}


results = {(s, p): summary(*run(s, p)) for s in args.seeds for p in PRECISIONS}
epochs = f", {args.epochs} epochs" if args.epochs else ""
print(f"{args.config}{epochs}, seeds {args.seeds}; KorSTS Spearman x100 of the final (best dev) model")
print("| seed | f32 dev | bf16 dev | f32 test | bf16 test | max loss diff (rel.) | bf16/f32 speed |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for s in args.seeds:
    f, b = results[(s, "f32")], results[(s, "bf16")]
    diff = max(abs(b["losses"][k] - v) / abs(v) for k, v in f["losses"].items())
    print(f"| {s} | {f['dev']:.2f} | {b['dev']:.2f} | {f['test']:.2f} | {b['test']:.2f} | "
          f"{diff:.2e} | {b['rate'] / f['rate']:.2f} |")
for s in args.seeds:
    curves = [" ".join(f"{x:.2f}" for x in results[(s, p)]["dev_curve"]) for p in PRECISIONS]
    print(f"seed {s}: dev Spearman at each evaluation, f32 {curves[0]}; bf16 {curves[1]}")
for key in ("dev", "test"):
    f = [results[(s, "f32")][key] for s in args.seeds]
    b = [results[(s, "bf16")][key] for s in args.seeds]
    d = [y - x for x, y in zip(f, b)]
    spread = statistics.stdev(f) if len(f) > 1 else float("nan")
    print(f"{key}: f32 mean {statistics.mean(f):.2f} (sd over seeds {spread:.2f}), bf16 mean "
          f"{statistics.mean(b):.2f}; bf16 - f32 per seed {' '.join(f'{x:+.2f}' for x in d)}")
