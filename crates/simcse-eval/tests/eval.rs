//! The evaluator against scipy and PyTorch (fixtures from `fixtures/make_fixtures.py`), its report and
//! plots, and its errors. One test binary: each one monomorphises the model again.

use std::path::{Path, PathBuf};

use simcse_testkit::minilm;
use simcse_testkit::shared_data as shared;
use std::process::Command;

use simcse_data::kornli::TripleRule;
use simcse_data::prepare::{Options, run};
use simcse_eval::metrics::{pearson, spearman};
use simcse_eval::{evaluate_set, score_pairs};
use simcse_model::backend::Cpu;
use simcse_model::{Encoder, Pooler};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The prepare stage's STS artifacts from the public data, in a temp folder.
fn prepared() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    run(&Options {
        raw_dir: shared(),
        out_dir: out.path().into(),
        triples: TripleRule::PerEntailment,
        require_all: false,
        strict: false,
    })
    .unwrap();
    out
}

#[test]
fn correlations_equal_scipy_with_many_ties() {
    let cases: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("correlations.json")).unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 7);
    for (i, c) in cases.iter().enumerate() {
        let v = |k: &str| -> Vec<f64> { serde_json::from_value(c[k].clone()).unwrap() };
        let (x, y) = (v("x"), v("y"));
        let (s, p) = (spearman(&x, &y).unwrap(), pearson(&x, &y).unwrap());
        assert!(
            (s - c["spearman"].as_f64().unwrap()).abs() <= 1e-9,
            "case {i}: spearman {s} vs scipy {}",
            c["spearman"]
        );
        assert!(
            (p - c["pearson"].as_f64().unwrap()).abs() <= 1e-9,
            "case {i}: pearson {p} vs scipy {}",
            c["pearson"]
        );
    }
}

#[test]
fn minilm_scores_equal_pytorch_and_scipy() {
    let data = prepared();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("minilm_sts.json")).unwrap())
            .unwrap();
    let device = Default::default();
    // cls on every set; avg on KorSTS test (a second pooler, at a third of the CPU time).
    for (pooler, sets) in [
        (
            Pooler::Cls,
            &["korsts_dev", "korsts_test", "klue_sts_dev"][..],
        ),
        (Pooler::Avg, &["korsts_test"][..]),
    ] {
        let enc = Encoder::<Cpu>::from_dir(&minilm(), Some(pooler), Some(128), &device).unwrap();
        for &set in sets {
            let r =
                evaluate_set(&enc, set, &data.path().join(format!("sts/{set}.parquet"))).unwrap();
            let e = &expected[format!("{pooler}/{set}")];
            let (ds, dp) = (
                r.score.spearman - e["spearman"].as_f64().unwrap(),
                r.score.pearson - e["pearson"].as_f64().unwrap(),
            );
            println!(
                "{pooler} {set}: Spearman {:.3} (PyTorch+scipy {:+.4}), Pearson {:.3} ({dp:+.4})",
                r.score.spearman, ds, r.score.pearson
            );
            assert!(
                ds.abs() <= 0.05 && dp.abs() <= 0.05,
                "{pooler} {set}: ours {:?}, expected {e}",
                r.score
            );
            assert!(
                r.alignment.is_some_and(|a| a > 0.0 && a < 4.0)
                    && r.uniformity.is_some_and(|u| u < 0.0 && u > -4.0),
                "{r:?}"
            );
        }
    }
    // The trainer's dev-eval entry point gives the same number as the eval stage.
    let enc = Encoder::<Cpu>::from_dir(&minilm(), Some(Pooler::Cls), Some(128), &device).unwrap();
    let pairs =
        simcse_data::artifact::read_sts(&data.path().join("sts/korsts_dev.parquet")).unwrap();
    let s = score_pairs(&enc, &pairs).unwrap();
    assert!((s.spearman - expected["cls/korsts_dev"]["spearman"].as_f64().unwrap()).abs() <= 0.05);
}

#[test]
fn the_binary_writes_report_and_plots() {
    let data = prepared();
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_simcse-eval"))
        .args([
            "--model",
            minilm().to_str().unwrap(),
            "--pooler",
            "cls",
            "--max-len",
            "128",
            "--sets",
            "korsts_test",
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("eval.json")).unwrap())
            .unwrap();
    let m = &json["models"][0];
    assert_eq!(m["pooler"], "cls");
    let rho = m["sets"][0]["score"]["spearman"].as_f64().unwrap();
    assert!((rho - 43.78).abs() < 0.1, "{rho}");
    assert_eq!(
        m["matrix"]["sentences"][0],
        "한 소녀가 머리를 스타일링하고 있다."
    );
    assert_eq!(m["matrix"]["values"].as_array().unwrap().len(), 10);
    assert!(
        json["data"]["korsts_test"]["sources"][0]["sha256"].is_string(),
        "data manifests are in the report"
    );
    let md = std::fs::read_to_string(out.path().join("eval.md")).unwrap();
    assert!(
        md.contains("| KR-BERT SimCSE sup (seed) |") && md.contains("80.72"),
        "{md}"
    );
    assert!(md.contains("9: 한 남자가 키보드를 연주하고 있다."), "{md}");
    if simcse_eval::plots::find_font(None).is_some() {
        for f in ["similarity.png", "density-korsts_test.png"] {
            let bytes = std::fs::read(out.path().join(f)).unwrap_or_else(|_| panic!("{f} missing"));
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
                "{f}: {} bytes",
                bytes.len()
            );
            assert!(md.contains(&format!("]({f})")));
        }
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let data = prepared();
    let device = Default::default();
    // A model folder without weights.
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(minilm().join(f), dir.path().join(f)).unwrap();
    }
    let err = Encoder::<Cpu>::from_dir(dir.path(), None, None, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors or pytorch_model.bin"),
        "{err}"
    );

    let enc = Encoder::<Cpu>::from_dir(&minilm(), Some(Pooler::Avg), Some(32), &device).unwrap();
    // A file that is not Parquet, and a missing set.
    let bad = data.path().join("sts/broken.parquet");
    std::fs::write(&bad, b"not parquet").unwrap();
    let err = evaluate_set(&enc, "broken", &bad).unwrap_err().to_string();
    assert!(
        err.contains("broken.parquet") && err.contains("parquet"),
        "{err}"
    );
    let err = evaluate_set(&enc, "nope", &data.path().join("sts/nope.parquet"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.parquet") && err.contains("run the prepare stage"),
        "{err}"
    );
    // An empty STS file (the schema, no rows).
    let empty = data.path().join("sts/empty.parquet");
    simcse_data::artifact::write_sts(&empty, &[]).unwrap();
    let err = evaluate_set(&enc, "empty", &empty).unwrap_err().to_string();
    assert!(err.contains("empty.parquet: 0 pairs"), "{err}");
}
