//! The trainer on real data and a real checkpoint (all-MiniLM-L6-v2), shortened to fit CI on 2 cores.
//! One test binary: each one monomorphises the model again.

use std::path::Path;

use simcse_testkit::minilm;
use simcse_testkit::shared_data as shared;

use simcse_data::artifact::{Sentence, read_sts, write_sentences, write_sts};
use simcse_data::kornli::TripleRule;
use simcse_data::prepare::{Options, run};
use simcse_model::backend::CpuTrain;
use simcse_train::trainer::TrainError;
use simcse_train::{Mode, TrainConfig, Trainer};

/// Prepared artifacts from the public data, plus a 400-pair slice of KorSTS dev for quick evaluation.
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
    let dev = read_sts(&out.path().join("sts/korsts_dev.parquet")).unwrap();
    write_sts(&out.path().join("sts/dev400.parquet"), &dev[..400]).unwrap();
    out
}

fn config(data: &Path, mode: Mode) -> TrainConfig {
    TrainConfig {
        mode,
        init: minilm(),
        train_file: data.join(if mode == Mode::Sup {
            "kornli_triples.parquet"
        } else {
            "wiki_sentences.parquet"
        }),
        dev_file: data.join("sts/dev400.parquet"),
        out: data.join("run"),
        batch_size: 32,
        max_len: 32,
        eval_steps: 0,
        log_steps: 1,
        mlp_init: simcse_train::config::MlpInit::Checkpoint,
        ..TrainConfig::default()
    }
}

#[test]
fn sup_training_on_xnli_raises_dev_spearman_and_exports_an_hf_model() {
    let data = prepared();
    let mut c = config(data.path(), Mode::Sup);
    c.max_steps = 12;
    let device = Default::default();
    let mut t = Trainer::<CpuTrain>::new(c.clone(), &device).unwrap();
    let dev = read_sts(&c.dev_file).unwrap();
    let before = t.evaluate(&dev).unwrap().spearman;
    let summary = t.fit().unwrap();
    let (_, best) = summary.best.unwrap();
    println!(
        "dev400 Spearman {before:.2} -> {:.2} after {} updates; losses {:?}",
        best.spearman, summary.updates, summary.losses
    );
    assert_eq!(summary.updates, 12);
    assert!(
        best.spearman > before + 3.0,
        "dev Spearman {before:.2} -> {:.2}",
        best.spearman
    );
    // The run folder: metrics, config, and a model folder our own loader reads back as plain HF.
    let metrics = std::fs::read_to_string(c.out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"loss\"")).count(),
        12
    );
    assert!(metrics.lines().any(|l| l.contains("\"eval\"")));
    let model = c.out.join("model");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "simcse.json",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let enc =
        simcse_model::Encoder::<simcse_model::backend::Cpu>::from_dir(&model, None, None, &device)
            .unwrap();
    assert_eq!((enc.pooler, enc.max_len), (simcse_model::Pooler::Cls, 128));
    let again = simcse_eval::score_pairs(&enc, &dev).unwrap();
    assert!(
        (again.spearman - best.spearman).abs() < 1e-3,
        "exported {} vs in training {}",
        again.spearman,
        best.spearman
    );
}

/// The real Korean Wikipedia sample (one sentence a line) as a `wiki_sentences` corpus.
fn kowiki(data: &Path) {
    let text =
        std::fs::read_to_string(shared().join("kowiki-sample/kss_bench_wikipedia.txt")).unwrap();
    let rows: Vec<Sentence> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Sentence {
            text: l.to_string(),
            doc_id: "kss-bench".into(),
            title: "kowiki sample".into(),
        })
        .collect();
    assert_eq!(rows.len(), 326);
    write_sentences(&data.join("wiki_sentences.parquet"), &rows).unwrap();
}

#[test]
fn unsup_loss_falls_on_korean_wikipedia_sentences() {
    let data = prepared();
    kowiki(data.path());
    let mut c = config(data.path(), Mode::Unsup);
    c.mlp_only_train = true;
    c.learning_rate = 1e-4;
    c.max_steps = 10;
    let mut t = Trainer::<CpuTrain>::new(c, &Default::default()).unwrap();
    let s = t.fit().unwrap();
    let (first, last) = (
        s.losses[..3].iter().sum::<f32>() / 3.0,
        s.losses[s.losses.len() - 3..].iter().sum::<f32>() / 3.0,
    );
    println!("unsup losses {:?}", s.losses);
    assert!(last < first * 0.8, "loss {first:.4} -> {last:.4}");
}

#[test]
fn same_seed_same_losses_and_nan_stops_clearly() {
    let data = prepared();
    let mut c = config(data.path(), Mode::Sup);
    c.batch_size = 8;
    c.max_len = 16;
    let device = Default::default();
    let batches = || {
        let examples = simcse_train::data::load(&c).unwrap();
        let t = simcse_model::Tokenizer::from_dir(&c.init).unwrap();
        simcse_train::data::epoch_batches(examples.len(), &c, 0)
            .into_iter()
            .take(3)
            .map(|idx| {
                let refs: Vec<_> = idx.iter().map(|&i| &examples[i]).collect();
                simcse_train::data::tokenize(&t, &refs, Mode::Sup, c.max_len).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let losses = |c: &TrainConfig| {
        let mut t = Trainer::<CpuTrain>::new(c.clone(), &device).unwrap();
        batches()
            .iter()
            .map(|b| t.step(b, 5e-5).unwrap())
            .collect::<Vec<f32>>()
    };
    let (a, b) = (losses(&c), losses(&c));
    assert_eq!(a, b, "dropout is seeded per update: same seed, same losses");
    let mut other = c.clone();
    other.seed += 1;
    assert_ne!(a, losses(&other));

    let mut bad = c.clone();
    bad.temperature = 0.0; // cosine / 0: the loss is not finite
    let mut t = Trainer::<CpuTrain>::new(bad, &device).unwrap();
    let err = t.step(&batches()[0], 5e-5).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("training stopped"), "{err}");
}
