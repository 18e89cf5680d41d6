//! The evaluator against scipy and PyTorch (fixtures from `fixtures/make_fixtures.py`), its report and
//! plots, and its errors. One test binary: each one monomorphises the model again.

use std::path::PathBuf;

use simcse_testkit::minilm;
use simcse_testkit::prepared;

use simcse_eval::metrics::{pearson, spearman};
use simcse_eval::{evaluate_set, score_pairs};
use simcse_model::backend::Cpu;
use simcse_model::{Encoder, Pooler};

fn fixtures() -> PathBuf {
    simcse_testkit::repo().join("crates/simcse-eval/tests/fixtures")
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
    // Both poolers on KLUE STS dev (1,038 sentences: KorSTS's 5,758 took minutes of CPU here; the
    // pipeline tests and `cargo xtask all` read those), each against PyTorch + scipy.
    let set = "klue_sts_dev";
    let path = data.path().join(format!("sts/{set}.parquet"));
    let pairs = simcse_artifact::read_sts(&path).unwrap();
    for pooler in [Pooler::Cls, Pooler::Avg] {
        let enc = Encoder::<Cpu>::from_dir(&minilm(), Some(pooler), Some(128), &device).unwrap();
        let r = evaluate_set(&enc, set, &path).unwrap();
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
        // The trainer's dev-eval entry point gives the same number as the eval stage.
        let s = score_pairs(&enc, &pairs).unwrap();
        assert!(
            (s.spearman - r.score.spearman).abs() < 1e-6,
            "{s:?} vs {r:?}"
        );
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
    simcse_artifact::write_sts(&empty, &[]).unwrap();
    let err = evaluate_set(&enc, "empty", &empty).unwrap_err().to_string();
    assert!(err.contains("empty.parquet: 0 pairs"), "{err}");
}

/// Scoring on the GPU code path (wgpu; Mesa lavapipe in CI) equals burn-flex's: MiniLM on the first
/// 24 pairs of KorSTS dev (lavapipe compiles every kernel, then runs it, on the CPU: 60 pairs took
/// three minutes), every embedding and both correlations.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_scores_equal_flex() {
    use simcse_model::backend::Wgpu;
    if simcse_testkit::gpu_ready::<Wgpu>("wgpu_scores_equal_flex") {
        gpu_scores_equal_flex::<Wgpu>("wgpu", 1e-4);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_scores_equal_flex() {
    use simcse_model::backend::Gpu;
    simcse_testkit::cuda_ready::<Gpu>();
    gpu_scores_equal_flex::<Gpu>("cuda", simcse_testkit::TF32_TOLERANCE);
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
/// Embeddings within `tol` of burn-flex's (CUDA: `TF32_TOLERANCE`), correlations x100 within 100 tol.
fn gpu_scores_equal_flex<B: burn::tensor::backend::Backend>(name: &str, tol: f32) {
    let data = prepared();
    let pairs = simcse_artifact::read_sts(&data.path().join("sts/korsts_dev.parquet")).unwrap();
    let pairs = &pairs[..24];
    let cpu = Encoder::<Cpu>::from_dir(&minilm(), Some(Pooler::Cls), Some(32), &Default::default())
        .unwrap();
    let gpu = Encoder::<B>::from_dir(&minilm(), Some(Pooler::Cls), Some(32), &Default::default())
        .unwrap();
    let sentences: Vec<&str> = pairs.iter().map(|p| p.sentence1.as_str()).collect();
    let (a, b) = (
        cpu.encode(&sentences).unwrap(),
        gpu.encode(&sentences).unwrap(),
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| simcse_testkit::max_abs_diff(x, y))
        .fold(0f32, f32::max);
    let (sa, sb) = (
        score_pairs(&cpu, pairs).unwrap(),
        score_pairs(&gpu, pairs).unwrap(),
    );
    println!(
        "{name} vs flex: embeddings max abs diff {worst:.2e}; Spearman {:.4} vs {:.4}",
        sb.spearman, sa.spearman
    );
    let scores = f64::from(tol) * 100.0;
    assert!(worst <= tol, "embeddings differ by {worst}");
    assert!(
        (sa.spearman - sb.spearman).abs() <= scores && (sa.pearson - sb.pearson).abs() <= scores
    );
}
