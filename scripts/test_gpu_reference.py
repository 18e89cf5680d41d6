"""Tests of gpu_reference.py's parts that run without a GPU or torch: the weight conversions the kit
relies on, and the bookkeeping that turns a GPU check's logs into its report. Run by .ci/run:
`python3 -m unittest discover -s scripts -p 'test_*.py'`."""

import json
import os
import struct
import tempfile
import unittest

import gpu_reference as ref

TINY = os.path.join(os.path.dirname(__file__), "..", "crates", "simcse-model", "tests", "fixtures", "tiny")


def floats(path, name):
    header, data = ref.read_safetensors(os.path.join(path, "model.safetensors"))
    h = header[name]
    start, end = h["data_offsets"]
    code = {"F32": "f", "F16": "e"}[h["dtype"]]
    return h, struct.unpack(f"<{(end - start) // struct.calcsize(code)}{code}", data[start:end])


class Conversions(unittest.TestCase):
    def test_half_then_single_is_fp16_rounding_and_keeps_every_tensor(self):
        with tempfile.TemporaryDirectory() as tmp:
            half, single = os.path.join(tmp, "half"), os.path.join(tmp, "single")
            ref.convert(TINY, half, "f", "e")
            ref.convert(half, single, "e", "f")
            original, _ = ref.read_safetensors(os.path.join(TINY, "model.safetensors"))
            back, _ = ref.read_safetensors(os.path.join(single, "model.safetensors"))
            original.pop("__metadata__", None)
            self.assertEqual(sorted(original), sorted(back))
            name = "encoder.layer.0.attention.self.query.weight"
            _, want = floats(TINY, name)
            h, got = floats(single, name)
            self.assertEqual(h["dtype"], "F32")
            self.assertEqual(h["shape"], original[name]["shape"])
            worst = max(abs(a - b) / max(abs(a), 1e-3) for a, b in zip(want, got))
            self.assertLessEqual(worst, 2 ** -11)  # fp16 keeps 11 significant bits
            self.assertGreater(worst, 0.0)  # and it did round
            self.assertTrue(os.path.isfile(os.path.join(single, "config.json")))

    def test_kept_ids_zero_the_other_word_embedding_rows_only(self):
        with tempfile.TemporaryDirectory() as tmp:
            ref.convert(TINY, tmp, "f", "e", keep_ids={0, 5})
            h, rows = floats(tmp, "embeddings.word_embeddings.weight")
            width = h["shape"][1]
            kept = [any(rows[i * width:(i + 1) * width]) for i in range(h["shape"][0])]
            self.assertEqual([i for i, k in enumerate(kept) if k], [0, 5])
            _, other = floats(tmp, "embeddings.position_embeddings.weight")
            self.assertTrue(all(any(other[i:i + width]) for i in range(0, len(other), width)))


class Bookkeeping(unittest.TestCase):
    def test_our_training_log_gives_first_update_and_median(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "metrics.jsonl")
            # 5 warm-up updates (the first one slow: kernels compiled), then 2, 1, 16, 1, 1, 1, 1 s.
            rates = [1.0, 64.0, 128.0, 128.0, 128.0, 64.0, 128.0, 8.0, 128.0, 128.0, 128.0, 128.0]
            with open(path, "w") as f:
                for step, rate in enumerate(rates, 1):
                    f.write(json.dumps({"step": step, "loss": 1.0 / step, "examples_per_s": rate}) + "\n")
            peak = os.path.join(tmp, "ours-train-f32.peak")
            with open(peak, "w") as f:
                f.write("1234\n")
            # What cubecl.toml's loggers write (compilation "basic", autotune "minimal").
            with open(os.path.join(tmp, "ours-train-f32.cubecl.log"), "w") as f:
                f.write("[Compiling kernel] MatmulEntry\n[Compiling kernel] ElemwiseFuse\n"
                        "Fastest result matmul_simple_unit-MatmulAutotuneKey - m: 64. \n Top 3 times: []\n")
            r = ref.ours_train(path, peak, 128, "f32")
            self.assertEqual(r["first_update_seconds"], 128.0)
            self.assertEqual(r["updates"], 7)
            self.assertEqual(r["seconds_per_update"], 1.0)  # the median: one slow update moves it not
            self.assertEqual(r["examples_per_s"], 128.0)
            self.assertEqual(r["peak_mib"], 1234)
            self.assertEqual((r["kernels_compiled"], r["shapes_autotuned"]), (2, 1))
            self.assertIn("error", ref.ours_train(os.path.join(tmp, "none"), "", 128, "bf16"))

    def test_test_logs_pass_only_with_a_test_that_ran(self):
        with tempfile.TemporaryDirectory() as tmp:
            logs = {"test-parity.log": "cuda: max abs diff vs PyTorch 2.0e-3\ntest result: ok. 10 passed; 0 failed\n",
                    "test-eval.log": "test result: ok. 0 passed; 0 failed; 4 filtered out\n",
                    "test-train.log": "test x ... exit 124\n"}
            for name, text in logs.items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            r = ref.tests([os.path.join(tmp, n) for n in logs])
            self.assertEqual({n: t["passed"] for n, t in r.items()}, {"parity": True, "eval": False, "train": False})
            self.assertEqual(r["parity"]["measured"], ["cuda: max abs diff vs PyTorch 2.0e-3"])

    def test_report_tables_put_ours_first_and_compare_to_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            parts = {"machine": {"gpu": "H200", "device": "cuda", "small": "0", "torch_cuda": "1"},
                     "train-torch-bf16": {"precision": "bf16", "examples_per_s": 300.0, "seconds_per_update": 0.4},
                     "train-ours-f32": {"precision": "f32", "examples_per_s": 100.0, "seconds_per_update": 1.2,
                                        "first_update_seconds": 70.0, "losses": [5.0, 4.0], "peak_mib": 9000,
                                        "kernels_compiled": 412, "shapes_autotuned": 40}}
            for name, value in parts.items():
                with open(os.path.join(tmp, name + ".json"), "w") as f:
                    json.dump(value, f)
            ref.report(tmp, tmp)
            md = open(os.path.join(tmp, "gpu-check.md")).read()
            rows = [line for line in md.splitlines() if line.startswith("| ours") or line.startswith("| PyTorch")]
            self.assertEqual(rows[0], "| ours (burn) | f32 | 70.00 | 1.2000 | 100.0 | 9000 | 1.00 | 412 / 40 | 5.0000, 4.0000 |")
            self.assertTrue(rows[1].startswith("| PyTorch | bf16 |") and "| 3.00 |" in rows[1])
            self.assertEqual(json.load(open(os.path.join(tmp, "gpu-check.json")))["machine"]["gpu"], "H200")


if __name__ == "__main__":
    unittest.main()
