//! The trainer on real data and a real checkpoint (all-MiniLM-L6-v2), shortened to fit CI on 2 cores.
//! One test binary: each one monomorphises the model again.

use std::collections::HashMap;
use std::path::Path;

use simcse_testkit::minilm;

use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use simcse_artifact::{read_sts, write_sts};
use simcse_model::backend::CpuTrain;
use simcse_model::tokenizer::Padding;
use simcse_train::config::StsLoss;
use simcse_train::trainer::TrainError;
use simcse_train::{Mode, TrainConfig, Trainer};

/// Each burn backend has one RNG per process (`Backend::seed`), which dropout draws from: tests that
/// train on backend `B` take its lock so that another test's dropout cannot consume a seeded run's
/// numbers. One lock for burn-flex, one for the cubecl backends: a lavapipe test (mostly compiling
/// kernels on one core) runs beside a CPU one.
static RNG: [std::sync::Mutex<()>; 2] = [std::sync::Mutex::new(()), std::sync::Mutex::new(())];

fn serial<B: burn::tensor::backend::Backend>() -> std::sync::MutexGuard<'static, ()> {
    let cubecl = !simcse_model::backend::on_flex::<B>(&Default::default());
    RNG[usize::from(cubecl)]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Prepared artifacts from the public data, plus a 400-pair slice of KorSTS dev for quick evaluation.
fn prepared() -> tempfile::TempDir {
    let out = simcse_testkit::prepared();
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
    let _rng = serial::<CpuTrain>();
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

/// The real Korean Wikipedia sample (one sentence a line) through the Wikipedia stage's plain-text
/// input into a `wiki_sentences` corpus.
fn kowiki(data: &Path) {
    let opts = simcse_data::wiki::Options {
        input: simcse_data::wiki::Input::Wiki {
            path: simcse_testkit::shared_data().join("kowiki-sample/kss_bench_wikipedia.txt"),
            format: simcse_data::wiki::Format::Text,
        },
        out: data.join("wiki_sentences.parquet"),
        threads: 2,
        filters: simcse_data::wiki::Filters::default(),
        splitter: simcse_data::split::Splitter::Wiki,
        sample: None,
        seed: 0,
        strict: true,
    };
    let summary = simcse_data::wiki::run(&opts).unwrap();
    assert!(summary.sentences_written > 300, "{summary:?}");
}

/// Mean of the first and of the last three values.
fn ends(v: &[f32]) -> (f32, f32) {
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    (mean(&v[..3]), mean(&v[v.len() - 3..]))
}

#[test]
fn unsup_loss_falls_on_korean_wikipedia_sentences_with_the_mlm_auxiliary_loss() {
    let _rng = serial::<CpuTrain>();
    let data = prepared();
    kowiki(data.path());
    let mut c = config(data.path(), Mode::Unsup);
    c.mlp_only_train = true;
    c.learning_rate = 1e-4;
    c.max_steps = 10;
    c.do_mlm = true;
    let mut t = Trainer::<CpuTrain>::new(c.clone(), &Default::default()).unwrap();
    let s = t.fit().unwrap();
    // metrics.jsonl has the MLM part of each update's loss; the rest is the contrastive loss.
    let metrics = std::fs::read_to_string(c.out.join("metrics.jsonl")).unwrap();
    let mlm: Vec<f32> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["mlm_loss"].as_f64().map(|x| x as f32))
        .collect();
    assert_eq!(mlm.len(), 10);
    let contrastive: Vec<f32> = s
        .losses
        .iter()
        .zip(&mlm)
        .map(|(total, m)| total - c.mlm_weight as f32 * m)
        .collect();
    println!("unsup contrastive losses {contrastive:?}\nMLM losses {mlm:?}");
    let (first, last) = ends(&contrastive);
    assert!(
        last < first * 0.8,
        "contrastive loss {first:.4} -> {last:.4}"
    );
    // A fresh head over MiniLM's 30,522 tokens starts near ln(30522) = 10.3 and learns (10 updates
    // at 1e-4 take it to ~9.7).
    let (first, last) = ends(&mlm);
    assert!(
        first > 8.0 && last < first - 0.3,
        "MLM loss {first:.4} -> {last:.4}"
    );
    // The head is trained but never exported.
    assert!(t.lm_head.is_some());
    let exported = simcse_testkit::read_tensors(&c.out.join("model/model.safetensors"));
    assert!(
        exported
            .keys()
            .all(|k| !k.contains("lm_head") && !k.contains("predictions"))
    );
}

#[test]
fn same_seed_same_losses_and_nan_stops_clearly() {
    let _rng = serial::<CpuTrain>();
    let data = prepared();
    let mut c = config(data.path(), Mode::Sup);
    c.batch_size = 8;
    c.max_len = 16;
    let device = Default::default();
    let batches = || {
        let corpus = simcse_train::data::Corpus::load(&c).unwrap();
        let t = simcse_model::Tokenizer::from_dir(&c.init).unwrap();
        simcse_train::data::epoch_batches(&corpus, &c, 0)
            .batches
            .into_iter()
            .take(3)
            .map(|idx| corpus.batch(&t, &idx, c.max_len, Padding::LONGEST).unwrap())
            .collect::<Vec<_>>()
    };
    let losses = |c: &TrainConfig| {
        let mut t = Trainer::<CpuTrain>::new(c.clone(), &device).unwrap();
        batches()
            .iter()
            .map(|b| t.step(b, 5e-5).unwrap().loss)
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

#[derive(serde::Deserialize)]
struct ParityBatch {
    input_ids: Vec<Vec<i32>>,
    attention_mask: Vec<Vec<i32>>,
    /// Gold scores (STS modes).
    #[serde(default)]
    scores: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct ParityMode {
    batches: Vec<ParityBatch>,
    losses: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Parity {
    config: serde_json::Value,
    modes: std::collections::HashMap<String, ParityMode>,
}

fn fixtures() -> std::path::PathBuf {
    simcse_testkit::repo().join("crates/simcse-train/tests/fixtures")
}

/// A fixture batch as `t` trains on it: padded further (with the checkpoint's pad id, masked) to
/// the trainer's padding, a multiple of 16 tokens on the cubecl backends as in real training. There
/// every new shape is compiled and autotuned: the fixture's lengths 4-8 were five shapes per mode
/// on lavapipe. Masked positions change neither a loss nor a gradient.
fn parity_batch<B: AutodiffBackend>(
    t: &Trainer<B>,
    b: &ParityBatch,
    examples: usize,
) -> simcse_train::data::TrainBatch {
    let rows = b.input_ids.len();
    let given = b.input_ids[0].len();
    let seq = t.padding().seq(given);
    let pad = t.bert_config.pad_token_id as i32;
    let widen = |m: &[Vec<i32>], fill: i32| -> Vec<i32> {
        m.iter()
            .flat_map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(fill, seq - given))
            })
            .collect()
    };
    simcse_train::data::TrainBatch {
        tokens: simcse_model::tokenizer::Batch {
            input_ids: widen(&b.input_ids, pad),
            attention_mask: widen(&b.attention_mask, 0),
            batch: rows,
            seq,
        },
        examples,
        views: rows / examples,
        scores: b.scores.clone(),
    }
}

/// The fixture's updates on `t`, with its warmup and decay over `total` updates; the losses.
fn fixture_updates<B: AutodiffBackend>(
    t: &mut Trainer<B>,
    batches: &[ParityBatch],
    examples: usize,
    total: usize,
) -> Vec<f32> {
    use simcse_train::schedule::{learning_rate, warmup_steps};
    let warmup = warmup_steps(t.config.warmup_ratio, total);
    let mut losses = Vec::new();
    for (k, b) in batches.iter().enumerate() {
        let lr = learning_rate(t.config.learning_rate, k, warmup, total);
        losses.push(t.step(&parity_batch(t, b, examples), lr).unwrap().loss);
    }
    losses
}

/// The fixture's modes: (name, mode, STS loss).
const PARITY_MODES: [(&str, Mode, StsLoss); 4] = [
    ("sup", Mode::Sup, StsLoss::Cosent),
    ("unsup", Mode::Unsup, StsLoss::Cosent),
    ("sts_cosent", Mode::Sts, StsLoss::Cosent),
    ("sts_cosine_mse", Mode::Sts, StsLoss::CosineMse),
];

/// A trainer on the tiny BERT with the settings `make_train_fixture.py` used.
fn parity_trainer<B: AutodiffBackend>(
    init: &Path,
    mode: Mode,
    sts_loss: StsLoss,
    cfg: &serde_json::Value,
) -> Trainer<B> {
    Trainer::<B>::new(
        parity_config(init, mode, sts_loss, cfg),
        &Default::default(),
    )
    .unwrap()
}

/// The settings of `make_train_fixture.py` (`cfg`: its `config`).
fn parity_config(
    init: &Path,
    mode: Mode,
    sts_loss: StsLoss,
    cfg: &serde_json::Value,
) -> TrainConfig {
    let f = |k: &str| cfg[k].as_f64().unwrap();
    TrainConfig {
        mode,
        init: init.to_path_buf(),
        learning_rate: f("lr"),
        weight_decay: f("weight_decay"),
        warmup_ratio: f("warmup_ratio"),
        max_grad_norm: f("max_grad_norm"),
        temperature: f("temperature"),
        hard_negative_weight: if mode == Mode::Sup {
            f("hard_negative_weight")
        } else {
            0.0
        },
        adam_beta1: cfg["betas"][0].as_f64().unwrap(),
        adam_beta2: cfg["betas"][1].as_f64().unwrap(),
        adam_epsilon: f("eps"),
        dropout: Some(0.0),
        pooler: if mode == Mode::Sts {
            simcse_model::Pooler::ClsBeforePooler
        } else {
            simcse_model::Pooler::Cls
        },
        sts_loss,
        mlp_init: simcse_train::config::MlpInit::Checkpoint,
        ..TrainConfig::default()
    }
}

#[test]
fn twenty_updates_match_pytorch_losses_and_first_gradients_in_every_mode() {
    twenty_updates_match_pytorch::<CpuTrain>(1e-4);
}

/// The GPU code path (burn's cubecl kernels through wgpu; Mesa lavapipe in CI): the PyTorch
/// fixtures of every mode and architecture with the CPU's tolerances, then a checkpoint and resume.
/// One test that runs the three checks in turn: they share the cubecl lock ([`serial`]), and as
/// three tests a second test thread sat waiting on that lock while the CPU tests waited for a thread.
#[cfg(feature = "wgpu")]
#[test]
fn gpu_code_path_on_wgpu_trains_like_pytorch_and_resumes_exactly() {
    use simcse_model::backend::{Wgpu, WgpuTrain};
    if simcse_testkit::gpu_ready::<Wgpu>(
        "gpu_code_path_on_wgpu_trains_like_pytorch_and_resumes_exactly",
    ) {
        architectures_train_like_pytorch::<WgpuTrain>(1e-4);
        twenty_updates_match_pytorch::<WgpuTrain>(1e-4);
        resumed_run_matches::<WgpuTrain>(&[Default::default()]);
        // Several wgpu devices are refused, saying why: burn 0.21 cannot move a tensor between two
        // (its cubecl transfers between devices exist for CUDA alone, through NCCL: a panic), and
        // two trainers sharing lavapipe drifted apart at the third update and then panicked in
        // burn-fusion (BENCHMARKS.md).
        use burn::backend::wgpu::WgpuDevice;
        let (parity, init, _, _) = parity_fixture();
        let config = parity_config(init.path(), Mode::Sup, StsLoss::Cosent, &parity.config);
        for two in [
            [WgpuDevice::DefaultDevice, WgpuDevice::Cpu],
            Default::default(),
        ] {
            let err = Trainer::<WgpuTrain>::on_devices(config.clone(), &two)
                .err()
                .unwrap();
            assert!(err.to_string().contains("several wgpu devices"), "{err}");
        }
        // One wgpu device on each of several machines: as two processes on lavapipe the losses
        // parted from one device's at the second update (burn-collective sums on its own thread).
        let nodes = simcse_train::parallel::Nodes {
            count: 2,
            rank: 0,
            orchestrator: "ws://127.0.0.1:1".into(),
            address: "ws://127.0.0.1:2".into(),
        };
        let one = [WgpuDevice::DefaultDevice];
        let err = Trainer::<WgpuTrain>::on_machines(config, &one, Some(nodes))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("wgpu on several machines"),
            "{err}"
        );
    }
}

#[cfg(feature = "cuda")]
#[test]
fn twenty_updates_match_pytorch_on_cuda() {
    simcse_testkit::cuda_ready::<simcse_model::backend::Gpu>();
    twenty_updates_match_pytorch::<simcse_model::backend::GpuTrain>(simcse_testkit::TF32_TOLERANCE);
}

/// Within `tol` (1e-4; CUDA: `TF32_TOLERANCE`), gradients and losses.
/// The PyTorch training fixture, the tiny model it starts from, and its examples per batch and
/// number of updates.
fn parity_fixture() -> (Parity, tempfile::TempDir, usize, usize) {
    let parity: Parity = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("train_parity.json")).unwrap(),
    )
    .unwrap();
    let init = tempfile::tempdir().unwrap();
    simcse_testkit::tiny_init(init.path(), &["가나다".to_string()]);
    let examples = parity.config["examples"].as_u64().unwrap() as usize;
    let total = parity.config["updates"].as_u64().unwrap() as usize;
    (parity, init, examples, total)
}

fn twenty_updates_match_pytorch<B: AutodiffBackend>(tol: f32) {
    let _rng = serial::<B>();
    let (parity, init, examples, total) = parity_fixture();
    for (name, mode, sts_loss) in PARITY_MODES {
        let expected = &parity.modes[name];
        let mut t = parity_trainer::<B>(init.path(), mode, sts_loss, &parity.config);

        // Gradients of the first update, before clipping, against PyTorch's.
        let first = parity_batch(&t, &expected.batches[0], examples);
        let grads = t.loss(&first).unwrap().backward();
        let torch =
            simcse_testkit::read_tensors(&fixtures().join(format!("{name}_grads.safetensors")));
        let m = &t.model;
        let pooler = m.pooler.as_ref().unwrap();
        type T2<B> = burn::module::Param<burn::tensor::Tensor<B, 2>>;
        type T1<B> = burn::module::Param<burn::tensor::Tensor<B, 1>>;
        // The STS modes pool before the MLP: it gets no gradient (PyTorch's is None too).
        assert_eq!(
            pooler.dense.weight.grad(&grads).is_none(),
            mode == Mode::Sts,
            "{name}"
        );
        let values = |d: burn::tensor::TensorData| d.to_vec::<f32>().unwrap();
        // burn's Linear weights are [in, out]; PyTorch's [out, in].
        let linear = |p: &T2<B>| values(p.grad(&grads).unwrap().transpose().into_data());
        let plain = |p: &T2<B>| values(p.grad(&grads).unwrap().into_data());
        let vector = |p: &T1<B>| values(p.grad(&grads).unwrap().into_data());
        let layer = &m.encoder.layer;
        let mut ours: Vec<(&str, Vec<f32>)> = vec![
            (
                "embeddings.word_embeddings.weight",
                plain(&m.embeddings.word_embeddings.weight),
            ),
            (
                "encoder.layer.0.attention.self.query.weight",
                linear(&layer[0].attention.self_attention.query.weight),
            ),
            (
                "encoder.layer.1.output.LayerNorm.weight",
                vector(&layer[1].output.layer_norm.gamma),
            ),
        ];
        if mode != Mode::Sts {
            ours.push(("pooler.dense.weight", linear(&pooler.dense.weight)));
            let bias = vector(pooler.dense.bias.as_ref().unwrap());
            ours.push(("pooler.dense.bias", bias));
        }
        let diffs: Vec<(&str, f32)> = ours
            .iter()
            .map(|(key, g)| {
                let (_, want) = &torch[*key];
                let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
                let diff = simcse_testkit::max_abs_diff(g, want);
                println!("{name} grad {key}: max abs diff {diff:.2e} (max |grad| {scale:.2e})");
                (*key, diff)
            })
            .collect();
        for (key, diff) in diffs {
            assert!(diff <= tol, "{name} {key}: {diff}");
        }

        // Twenty updates with the same schedule, clipping and AdamW.
        let worst = fixture_updates(&mut t, &expected.batches, examples, total)
            .iter()
            .zip(&expected.losses)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!("{name}: 20 losses, max abs diff vs PyTorch {worst:.2e}");
        assert!(worst <= tol, "{name}: per-update loss differs by {worst}");
    }
}

#[derive(serde::Deserialize)]
struct ArchParity {
    config: serde_json::Value,
    fixtures: std::collections::BTreeMap<String, ArchRun>,
}

#[derive(serde::Deserialize)]
struct ArchRun {
    pooler: simcse_model::Pooler,
    #[serde(flatten)]
    updates: ParityMode,
}

#[test]
fn other_architectures_train_like_pytorch() {
    architectures_train_like_pytorch::<CpuTrain>(1e-4);
}

/// Each tiny fixture of another architecture (RoBERTa with its pooler; XLM-R, ELECTRA and the two
/// DeBERTa-v2 without) trained 20 sup updates as PyTorch trained it (`make_arch_train_fixture.py`): every loss and, at
/// the end, every weight within `tol`.
fn architectures_train_like_pytorch<B: AutodiffBackend>(tol: f32) {
    let _rng = serial::<B>();
    let parity: ArchParity = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("arch_parity.json")).unwrap(),
    )
    .unwrap();
    let examples = parity.config["examples"].as_u64().unwrap() as usize;
    let total = parity.config["updates"].as_u64().unwrap() as usize;
    assert_eq!(parity.fixtures.len(), 5);
    for (name, run) in &parity.fixtures {
        let init = simcse_testkit::repo()
            .join("crates/simcse-model/tests/fixtures")
            .join(name);
        let mut c = parity_config(&init, Mode::Sup, StsLoss::Cosent, &parity.config);
        c.pooler = run.pooler;
        (c.max_len, c.eval_max_len) = (16, 16); // within the fixtures' positions (XLM-R: 24)
        let mut t = Trainer::<B>::new(c, &Default::default()).unwrap();
        let worst = fixture_updates(&mut t, &run.updates.batches, examples, total)
            .iter()
            .zip(&run.updates.losses)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let ours = weights(&t);
        let torch =
            simcse_testkit::read_tensors(&fixtures().join(format!("{name}_final.safetensors")));
        let mut keys: Vec<_> = ours.keys().collect();
        keys.sort();
        let mut torch_keys: Vec<_> = torch.keys().collect();
        torch_keys.sort();
        assert_eq!(keys, torch_keys, "{name}: the saved weights");
        // The key projection's bias adds q.b_k to every score of a query, which softmax ignores:
        // its gradient is zero but for rounding, and AdamW turns rounding of either library into
        // steps of up to the learning rate. So is DeBERTa's own c2p projection's bias (q.b to
        // every c2p term of a query). Every other weight is compared (DeBERTa's `key_proj.bias`
        // too: its p2c term varies over the keys).
        let zero_gradient = [
            "attention.self.key.bias",
            "attention.self.pos_key_proj.bias",
        ];
        let (key, diff) = keys
            .iter()
            .filter(|k| !zero_gradient.iter().any(|z| k.ends_with(z)))
            .map(|k| {
                assert_eq!(ours[*k].0, torch[*k].0, "{name} {k}: shape");
                (k, simcse_testkit::max_abs_diff(&ours[*k].1, &torch[*k].1))
            })
            .fold((&keys[0], 0f32), |a, b| if b.1 > a.1 { b } else { a });
        println!(
            "{name} ({:?}): 20 sup losses within {worst:.2e} of PyTorch, final weights within {diff:.2e} ({key})",
            run.pooler
        );
        assert!(worst <= tol, "{name}: per-update loss differs by {worst}");
        assert!(diff <= tol, "{name}: final weight {key} differs by {diff}");
    }
}

/// bf16 matrix products (`precision = "bf16"`) on the parity fixture: the 20 losses stay near
/// PyTorch's f32 ones, and differ from them (the products really ran in bf16).
#[test]
fn bf16_updates_track_pytorch_f32() {
    bf16_updates_track_pytorch::<CpuTrain>("flex");
}

#[cfg(feature = "cuda")]
#[test]
fn bf16_updates_track_pytorch_on_cuda() {
    simcse_testkit::cuda_ready::<simcse_model::backend::Gpu>();
    bf16_updates_track_pytorch::<simcse_model::backend::GpuTrain>("cuda");
}

fn bf16_updates_track_pytorch<B: AutodiffBackend>(backend: &str) {
    let _rng = serial::<B>();
    let (parity, init, examples, total) = parity_fixture();
    let expected = &parity.modes["sup"];
    let mut t = parity_trainer::<B>(init.path(), Mode::Sup, StsLoss::Cosent, &parity.config);
    t.config.precision = simcse_model::Precision::Bf16;
    let worst = fixture_updates(&mut t, &expected.batches, examples, total)
        .iter()
        .zip(&expected.losses)
        .map(|(a, b)| (a - b).abs() / b)
        .fold(0f32, f32::max);
    println!("bf16 on {backend}: 20 sup losses, max relative diff vs PyTorch f32 {worst:.2e}");
    assert!(
        worst > 1e-5 && worst <= BF16_LOSS_TOLERANCE,
        "relative diff {worst}"
    );
}

/// bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per input); on the tiny fixture the 20
/// losses moved by up to 1.03e-2 (relative, burn-flex): the bound leaves room for another backend's
/// summation order, not for a wrong gradient (which moves them by 1e-1 and more).
const BF16_LOSS_TOLERANCE: f32 = 3e-2;

/// Model weights by Hugging Face name (no parameter ids), for exact comparison.
fn weights<B: AutodiffBackend>(
    t: &Trainer<B>,
) -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    use burn::module::AutodiffModule;
    let dir = tempfile::tempdir().unwrap();
    simcse_model::checkpoint::save(&t.model.valid(), &t.bert_config, dir.path()).unwrap();
    simcse_testkit::read_tensors(&dir.path().join("model.safetensors"))
}

#[test]
fn resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one() {
    resumed_run_matches::<CpuTrain>(&[Default::default()]);
}

/// The same on two devices (without the MLM head, which several devices refuse); a checkpoint of
/// theirs does not resume on one.
#[test]
fn resumed_run_on_two_devices_matches_and_needs_two() {
    resumed_run_matches::<CpuTrain>(&[Default::default(), Default::default()]);
}

#[cfg(feature = "cuda")]
#[test]
fn resumed_run_matches_on_cuda() {
    simcse_testkit::cuda_ready::<simcse_model::backend::Gpu>();
    resumed_run_matches::<simcse_model::backend::GpuTrain>(&[Default::default()]);
}

fn resumed_run_matches<B: AutodiffBackend>(devices: &[B::Device]) {
    let _rng = serial::<B>();
    let data = prepared();
    let all = simcse_artifact::read_triples(&data.path().join("kornli_triples.parquet")).unwrap();
    let corpus: Vec<String> = all[..10]
        .iter()
        .flat_map(|(t, _)| [t.anchor.clone(), t.positive.clone(), t.negative.clone()])
        .collect();
    let init = tempfile::tempdir().unwrap();
    simcse_testkit::tiny_init(init.path(), &corpus);
    // Batches of 4 over two epochs, 6 updates. burn-flex: 10 examples, so 4, 4, 2 (a short last
    // batch). The cubecl backends compile every new shape (a second or more per kernel on
    // lavapipe), so there 12 examples: 4, 4, 4, the 12 rows of 16 tokens of the PyTorch fixture's
    // sup batches, whose kernels the test before this one compiled (5, 5 was 57 s more on lavapipe).
    let device = devices[0].clone();
    let examples = if simcse_model::backend::on_flex::<B>(&device) {
        10
    } else {
        12
    };
    let small = data.path().join("small_triples.parquet");
    let refs: Vec<_> = all[..examples]
        .iter()
        .map(|(t, s)| (t.clone(), s.as_str()))
        .collect();
    simcse_artifact::write_triples(&small, &refs).unwrap();
    let dev = read_sts(&data.path().join("sts/korsts_dev.parquet")).unwrap();
    // 64 sentences: one evaluation batch.
    write_sts(&data.path().join("sts/dev32.parquet"), &dev[..32]).unwrap();
    let config = |out: &str| TrainConfig {
        mode: Mode::Sup,
        init: init.path().to_path_buf(),
        train_file: small.clone(),
        dev_file: data.path().join("sts/dev32.parquet"),
        out: data.path().join(out),
        batch_size: 4,
        epochs: 2,
        max_len: 16,
        eval_max_len: 16,
        warmup_ratio: 0.2,
        learning_rate: 1e-3,
        eval_steps: 2,
        save_steps: 2,
        save_total_limit: 2,
        log_steps: 1,
        // The MLM head and its optimizer state must come back from the checkpoint too.
        do_mlm: devices.len() == 1,
        ..TrainConfig::default()
    };
    let mut straight = Trainer::<B>::on_devices(config("a"), devices).unwrap();
    let s = straight.fit().unwrap();
    assert_eq!(s.updates, 6);
    // Checkpoints at 2, 4 and 6; the newest two are kept.
    let kept = simcse_train::checkpoint::list(&data.path().join("a"));
    let names: Vec<_> = kept
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["step-00000004", "step-00000006"]);

    // A second run that "died" after update 4: its folder holds the step-4 checkpoint only.
    let b = data.path().join("b");
    let mut first = Trainer::<B>::on_devices(config("b"), devices).unwrap();
    first.fit().unwrap();
    std::fs::remove_dir_all(b.join("checkpoints/step-00000006")).unwrap();
    let mut resumed = Trainer::<B>::on_devices(config("b"), devices).unwrap();
    let r = resumed
        .fit_from(Some(&b.join("checkpoints/step-00000004")))
        .unwrap();
    assert_eq!(r.updates, 6);
    assert_eq!(
        r.losses,
        s.losses[4..],
        "updates 5 and 6 see the same batches and dropout"
    );
    // Evaluations before the stop come from the checkpoint (JSON keeps f64 to the last bit or two).
    assert_eq!(r.evals.len(), s.evals.len());
    for ((sa, a), (sb, b)) in r.evals.iter().zip(&s.evals) {
        assert_eq!(sa, sb);
        assert!((a.spearman - b.spearman).abs() < 1e-9 && (a.pearson - b.pearson).abs() < 1e-9);
    }
    let (wa, wb) = (weights(&resumed), weights(&straight));
    assert_eq!(wa.len(), wb.len());
    assert!(wa == wb, "final weights differ");
    let head = |t: &Trainer<B>| {
        let w = t.lm_head.as_ref().map(|h| h.decoder.weight.val());
        w.map(|w| w.into_data().into_vec::<f32>().unwrap())
    };
    assert!(head(&resumed) == head(&straight), "MLM heads differ");
    // Every device of the resumed run holds the weights.
    assert!(
        resumed.replicas().all(|t| weights(t) == wa),
        "a replica differs"
    );
    // metrics.jsonl has each update once.
    let metrics = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"loss\"")).count(),
        6
    );

    // Another configuration may not resume this run.
    let mut other = config("b");
    other.learning_rate = 2e-3;
    let mut t = Trainer::<B>::on_devices(other, devices).unwrap();
    let err = t
        .fit_from(Some(&b.join("checkpoints/step-00000004")))
        .unwrap_err();
    assert!(err.to_string().contains("another configuration"), "{err}");
    // Nor may another number of devices.
    if devices.len() > 1 {
        let mut t = Trainer::<B>::on_devices(config("b"), &devices[..1]).unwrap();
        let err = t
            .fit_from(Some(&b.join("checkpoints/step-00000004")))
            .unwrap_err();
        assert!(
            err.to_string().contains("on 2 device(s); resume it on 2"),
            "{err}"
        );
    }
}

/// A batch of `examples` random token rows per view (lengths 3-10, [CLS] ... [SEP], padded), with
/// gold scores 0-5 for the STS mode.
fn random_batch(examples: usize, views: usize, mut state: u64) -> simcse_train::data::TrainBatch {
    let mut next = |m: u64| simcse_model::rng::splitmix64(&mut state) % m;
    let rows = examples * views;
    let lens: Vec<usize> = (0..rows).map(|_| 3 + next(8) as usize).collect();
    let seq = *lens.iter().max().unwrap();
    let (mut ids, mut mask) = (vec![0; rows * seq], vec![0; rows * seq]);
    for (r, &len) in lens.iter().enumerate() {
        for p in 0..len {
            ids[r * seq + p] = match p {
                0 => 2,
                p if p == len - 1 => 3,
                _ => 5 + next(94) as i32,
            };
            mask[r * seq + p] = 1;
        }
    }
    simcse_train::data::TrainBatch {
        tokens: simcse_model::tokenizer::Batch {
            input_ids: ids,
            attention_mask: mask,
            batch: rows,
            seq,
        },
        examples,
        views,
        scores: (0..examples).map(|_| next(26) as f32 / 5.0).collect(),
    }
}

/// A few parameters' gradients, flattened, by name.
fn some_grads<B: AutodiffBackend>(
    t: &Trainer<B>,
    grads: &burn::optim::GradientsParams,
) -> Vec<(&'static str, Vec<f32>)> {
    let m = &t.model;
    let layer = &m.encoder.layer;
    let flat = |d: Option<burn::tensor::TensorData>| d.unwrap().to_vec::<f32>().unwrap();
    let g2 = |p: &burn::module::Param<burn::tensor::Tensor<B, 2>>| {
        flat(grads.get::<B::InnerBackend, 2>(p.id).map(|g| g.into_data()))
    };
    let g1 = |p: &burn::module::Param<burn::tensor::Tensor<B, 1>>| {
        flat(grads.get::<B::InnerBackend, 1>(p.id).map(|g| g.into_data()))
    };
    vec![
        ("word_embeddings", g2(&m.embeddings.word_embeddings.weight)),
        (
            "layer0.query",
            g2(&layer[0].attention.self_attention.query.weight),
        ),
        ("layer1.output.ln", g1(&layer[1].output.layer_norm.gamma)),
    ]
}

fn worst_diff(a: &[(&str, Vec<f32>)], b: &[(&str, Vec<f32>)]) -> f32 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| simcse_testkit::max_abs_diff(x, y))
        .fold(0.0, f32::max)
}

/// GradCache (`mini_batch_size` 4 on a batch of 16 examples, dropout on): the same loss and
/// gradients as the large-batch step that embeds the same chunks under the same dropout masks with
/// the whole graph kept; with dropout off, the same as the plain one-pass batch.
#[test]
fn grad_cache_step_equals_the_large_batch_step() {
    let _rng = serial::<CpuTrain>();
    let (parity, init, _, _) = parity_fixture();
    for (name, mode, sts_loss) in [PARITY_MODES[0], PARITY_MODES[2]] {
        let batch = random_batch(16, mode.views(), 5);
        let trainer = |dropout: f64, mini_batch_size: usize| {
            let mut t = parity_trainer::<CpuTrain>(init.path(), mode, sts_loss, &parity.config);
            t.config.mini_batch_size = mini_batch_size;
            // Dropout as the checkpoint sets it (parity_trainer turns it off): reload with it.
            let mut c = t.config.clone();
            c.dropout = Some(dropout);
            Trainer::<CpuTrain>::new(c, &Default::default()).unwrap()
        };
        let cached = |t: &Trainer<CpuTrain>| {
            let (loss, _, grads) = t.gradients(&batch).unwrap();
            (loss.into_scalar(), some_grads(t, &grads))
        };
        let graph = |t: &Trainer<CpuTrain>| {
            let loss = t.loss(&batch).unwrap();
            let grads = burn::optim::GradientsParams::from_grads(loss.clone().backward(), &t.model);
            (loss.into_scalar(), some_grads(t, &grads))
        };

        let t = trainer(0.1, 4);
        let (cache_loss, cache) = cached(&t);
        let (graph_loss, whole) = graph(&t);
        let diff = worst_diff(&cache, &whole);
        println!(
            "{name}, dropout 0.1: GradCache vs large-batch graph: loss {cache_loss} vs {graph_loss}, max abs grad diff {diff:.2e}"
        );
        assert!(
            (cache_loss - graph_loss).abs() <= 1e-5 && diff <= 1e-5,
            "{name}: {diff}"
        );
        // Dropout really acts: one pass over the whole batch draws other masks.
        let (_, one_pass) = cached(&trainer(0.1, 0));
        assert!(worst_diff(&cache, &one_pass) > 1e-4, "{name}");

        let (_, cache) = cached(&trainer(0.0, 4));
        let (_, plain) = cached(&trainer(0.0, 0));
        let diff = worst_diff(&cache, &plain);
        println!("{name}, dropout 0: GradCache vs one pass: max abs grad diff {diff:.2e}");
        assert!(diff <= 1e-5, "{name}: {diff}");
    }
}

/// The STS stage (CoSENT, pooling the [CLS] before the MLP) on KorSTS train from all-MiniLM-L6-v2:
/// dev Spearman rises, and the exported model says how it pools.
#[test]
fn sts_stage_on_korsts_raises_dev_spearman() {
    let _rng = serial::<CpuTrain>();
    let data = prepared();
    let mut c = config(data.path(), Mode::Sts);
    c.train_file = data.path().join("sts/korsts_train.parquet");
    c.pooler = simcse_model::Pooler::ClsBeforePooler;
    c.learning_rate = 2e-5;
    c.max_steps = 10;
    let device = Default::default();
    let mut t = Trainer::<CpuTrain>::new(c.clone(), &device).unwrap();
    let before = t
        .evaluate(&read_sts(&c.dev_file).unwrap())
        .unwrap()
        .spearman;
    let summary = t.fit().unwrap();
    let (_, best) = summary.best.unwrap();
    println!(
        "sts stage: dev400 Spearman {before:.2} -> {:.2} after {} updates; losses {:?}",
        best.spearman, summary.updates, summary.losses
    );
    assert!(
        best.spearman > before + 3.0,
        "dev Spearman {before:.2} -> {:.2}",
        best.spearman
    );
    let enc = simcse_model::Encoder::<simcse_model::backend::Cpu>::from_dir(
        &c.out.join("model"),
        None,
        None,
        &device,
    )
    .unwrap();
    assert_eq!(enc.pooler, simcse_model::Pooler::ClsBeforePooler);
}

/// The STS stage with GradCache and duplicate-free batches, stopped after update 4 and resumed:
/// the same losses and bit-identical weights as the run that did not stop.
#[test]
fn sts_stage_with_grad_cache_and_no_duplicates_resumes_exactly() {
    let _rng = serial::<CpuTrain>();
    let data = prepared();
    let mut pairs = read_sts(&data.path().join("sts/korsts_train.parquet")).unwrap();
    pairs.truncate(20);
    // Two pairs that share a sentence with the first one: batches must keep them apart.
    for k in [7, 13] {
        pairs[k].sentence2 = pairs[0].sentence1.clone();
    }
    let train = data.path().join("sts/train20.parquet");
    write_sts(&train, &pairs).unwrap();
    let dev = read_sts(&data.path().join("sts/korsts_dev.parquet")).unwrap();
    write_sts(&data.path().join("sts/dev40.parquet"), &dev[..40]).unwrap();
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.sentence1.clone(), p.sentence2.clone()])
        .collect();
    let init = tempfile::tempdir().unwrap();
    simcse_testkit::tiny_init(init.path(), &texts);
    let config = |out: &str| TrainConfig {
        mode: Mode::Sts,
        init: init.path().to_path_buf(),
        train_file: train.clone(),
        dev_file: data.path().join("sts/dev40.parquet"),
        out: data.path().join(out),
        batch_size: 8,
        mini_batch_size: 5,
        epochs: 2,
        max_len: 16,
        eval_max_len: 16,
        learning_rate: 1e-3,
        pooler: simcse_model::Pooler::ClsBeforePooler,
        dropout: Some(0.1),
        eval_steps: 2,
        save_steps: 2,
        save_total_limit: 0,
        log_steps: 1,
        ..TrainConfig::default()
    };
    let corpus = simcse_train::data::Corpus::load(&config("a")).unwrap();
    let deferred: usize = (0..2)
        .map(|e| simcse_train::data::epoch_batches(&corpus, &config("a"), e).deferred)
        .sum();
    assert!(deferred > 0, "the shared sentence made some pair wait");
    let device = Default::default();
    let mut straight = Trainer::<CpuTrain>::new(config("a"), &device).unwrap();
    let s = straight.fit().unwrap();
    assert!(s.updates >= 6, "20 pairs in batches of 8, two epochs");
    // Run b wrote a checkpoint every 2 updates; a new run resumes from its fourth update.
    Trainer::<CpuTrain>::new(config("b"), &device)
        .unwrap()
        .fit()
        .unwrap();
    let mut resumed = Trainer::<CpuTrain>::new(config("c"), &device).unwrap();
    let ckpt = data.path().join("b/checkpoints/step-00000004");
    let r = resumed.fit_from(Some(&ckpt)).unwrap();
    assert_eq!(r.updates, s.updates);
    assert_eq!(
        r.losses,
        s.losses[4..],
        "the same batches and dropout after the stop"
    );
    assert!(
        weights(&resumed) == weights(&straight),
        "final weights differ"
    );

    // A damaged newest checkpoint: refused by name, and the one before it is the newest good one.
    use simcse_train::checkpoint;
    let all = checkpoint::list(&data.path().join("b"));
    let (newest, previous) = (&all[all.len() - 1], &all[all.len() - 2]);
    let bin = newest.join("model.bin");
    let mut bytes = std::fs::read(&bin).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&bin, bytes).unwrap();
    let err = checkpoint::verify(newest).unwrap_err().to_string();
    assert!(err.contains("model.bin is damaged"), "{err}");
    let mut t = Trainer::<CpuTrain>::new(config("b"), &device).unwrap();
    assert!(t.fit_from(Some(newest)).is_err());
    let good = checkpoint::newest_good(&data.path().join("b")).unwrap();
    assert_eq!(&good, previous);
    for ckpt in &all {
        std::fs::write(ckpt.join("state.json"), "{").unwrap();
    }
    let err = checkpoint::newest_good(&data.path().join("b"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is intact"), "{err}");
}

/// RoBERTa (byte-level BPE, a pooler), XLM-RoBERTa (Unigram, `<mask>`, no pooler: a fresh MLP),
/// ELECTRA (projected embeddings, no pooler) and DeBERTa-v2 (both fixtures) checkpoints of the model crate's fixtures train in the
/// sup mode with the MLM loss, in the unsup mode and in the STS stage, and their exported folders
/// keep their type.
#[test]
fn every_architecture_trains_and_exports_its_type() {
    let _rng = serial::<CpuTrain>();
    let data = prepared();
    kowiki(data.path());
    let models = simcse_testkit::repo().join("crates/simcse-model/tests/fixtures");
    let archs = [
        "tiny-roberta",
        "tiny-xlmr",
        "tiny-electra",
        "tiny-deberta",
        "tiny-deberta-conv",
    ];
    for arch in archs {
        let init = models.join(arch);
        let want = simcse_model::BertConfig::from_file(&init.join("config.json")).unwrap();
        for mode in [Mode::Sup, Mode::Unsup, Mode::Sts] {
            let mut c = config(data.path(), mode);
            if mode == Mode::Sts {
                c.train_file = data.path().join("sts/korsts_train.parquet");
            }
            c.init = init.clone();
            c.out = data.path().join(format!("run-{arch}-{mode:?}"));
            c.batch_size = 8;
            c.max_len = 16;
            c.eval_max_len = 16;
            c.max_steps = 3;
            c.learning_rate = 1e-3;
            c.do_mlm = mode == Mode::Sup;
            let mut t = Trainer::<CpuTrain>::new(c.clone(), &Default::default()).unwrap();
            let s = t.fit().unwrap();
            assert_eq!(s.updates, 3, "{arch} {mode:?}");
            assert!(
                s.losses.iter().all(|l| l.is_finite() && *l > 0.0),
                "{arch} {mode:?}: {:?}",
                s.losses
            );
            let out = simcse_model::ModelDir::open(&c.out.join("model")).unwrap();
            assert_eq!(out.config.model_type, want.model_type, "{arch}");
            assert_eq!(out.config.deberta, want.deberta, "{arch}");
            assert_eq!(
                out.config.embedding_width(),
                want.embedding_width(),
                "{arch}"
            );
            let enc = simcse_model::Encoder::<simcse_model::backend::Cpu>::from_dir(
                &c.out.join("model"),
                None,
                None,
                &Default::default(),
            )
            .unwrap();
            let e = enc.encode(&["문장 하나"]).unwrap();
            assert_eq!((e.len(), e[0].len()), (1, want.hidden_size), "{arch}");
        }
    }
    // A max_len past the positions is refused before any work.
    let mut c = config(data.path(), Mode::Sup);
    c.init = models.join("tiny-xlmr");
    c.max_len = 64;
    let err = Trainer::<CpuTrain>::new(c, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("max_len 64") && err.contains("24 tokens"),
        "{err}"
    );
}

/// Data-parallel training on several devices (`Trainer::on_devices`): with dropout off, the global
/// batch's loss, the gradients and the weights after 5 updates equal one device's on the whole
/// batch, with GradCache on each device too, and all devices end with the same weights; with
/// dropout on, a run repeats itself bit for bit. Sup (three views, hard negatives) and the STS stage
/// (CoSENT over the global batch's scores). burn-flex has one device, so there both are it.
fn devices_train_as_one<B: AutodiffBackend>(devices: &[B::Device]) {
    let n = devices.len();
    let _rng = serial::<B>();
    let (parity, init, _, _) = parity_fixture();
    // 7 examples: the shards are uneven (4 + 3; 3 + 2 + 2).
    let examples = 7;
    for (name, mode, sts_loss) in [PARITY_MODES[0], PARITY_MODES[2]] {
        let config = parity_config(init.path(), mode, sts_loss, &parity.config);
        let batches: Vec<_> = (0..5)
            .map(|k| random_batch(examples, mode.views(), 31 + k))
            .collect();
        let lr = config.learning_rate;
        let run = |t: &mut Trainer<B>| -> Vec<simcse_train::StepOutput> {
            batches.iter().map(|b| t.step(b, lr).unwrap()).collect()
        };
        // The reference: one device, the whole batch.
        let mut one = Trainer::<B>::new(config.clone(), &devices[0]).unwrap();
        let mut two = Trainer::<B>::on_devices(config.clone(), devices).unwrap();
        assert_eq!(two.devices(), n);
        let (l1, _, g1) = one.gradients(&batches[0]).unwrap();
        let (l2, _, g2) = two.gradients(&batches[0]).unwrap();
        let (l1, l2): (f32, f32) = (l1.into_scalar().elem(), l2.into_scalar().elem());
        let diff = worst_diff(&some_grads(&one, &g1), &some_grads(&two, &g2));
        println!("{name}, {n} devices vs 1: loss {l2} vs {l1}, max abs grad diff {diff:.2e}");
        assert!(
            (l1 - l2).abs() <= 1e-5 && diff <= 1e-5,
            "{name}: {l1} {l2} {diff}"
        );
        // The attention key biases are left out of the weights compared below: softmax ignores a
        // shift common to one query's scores, so their true gradient is zero and what they get is
        // rounding noise, which Adam's normalisation scales up to about the learning rate in any
        // framework (here 8e-4 apart after 5 updates). Noise it is: under 1e-6 on both sides.
        let key_bias = |t: &Trainer<B>, g: &burn::optim::GradientsParams| {
            (t.model.encoder.layer.iter())
                .filter_map(|l| {
                    g.get::<B::InnerBackend, 1>(l.attention.self_attention.key.bias.as_ref()?.id)
                })
                .flat_map(|g| g.into_data().to_vec::<f32>().unwrap())
                .fold(0.0f32, |m, x| m.max(x.abs()))
        };
        let noise = key_bias(&one, &g1).max(key_bias(&two, &g2));
        assert!(noise < 1e-6, "{name}: key bias gradient {noise}");

        let (a, b) = (run(&mut one), run(&mut two));
        let worst = |x: &HashMap<String, (Vec<usize>, Vec<f32>)>,
                     y: &HashMap<String, (Vec<usize>, Vec<f32>)>| {
            assert_eq!(x.len(), y.len());
            (x.iter())
                .filter(|(k, _)| !k.ends_with("attention.self.key.bias"))
                .map(|(k, (_, v))| simcse_testkit::max_abs_diff(v, &y[k].1))
                .fold(0.0, f32::max)
        };
        let w1 = weights(&one);
        let replicas: Vec<_> = two.replicas().map(weights).collect();
        let diff = worst(&w1, &replicas[0]);
        println!(
            "{name}, 5 updates on {n} devices vs 1: losses {:?} vs {:?}, max abs weight diff {diff:.2e}",
            b.iter().map(|o| o.loss).collect::<Vec<_>>(),
            a.iter().map(|o| o.loss).collect::<Vec<_>>()
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x.loss - y.loss).abs() <= 1e-5, "{name}: {x:?} {y:?}");
            assert!((x.grad_norm - y.grad_norm).abs() <= 1e-5 * x.grad_norm.max(1.0));
        }
        assert!(diff <= 1e-5, "{name}: weights differ by {diff}");
        assert!(
            replicas.iter().all(|r| *r == replicas[0]),
            "{name}: the devices' weights differ"
        );

        // GradCache on each device (chunks of 2 examples' rows): the same update.
        let mut cached = config.clone();
        cached.mini_batch_size = 2;
        let mut gc = Trainer::<B>::on_devices(cached, devices).unwrap();
        let c = run(&mut gc);
        for (x, y) in a.iter().zip(&c) {
            assert!(
                (x.loss - y.loss).abs() <= 1e-5,
                "{name}, GradCache: {x:?} {y:?}"
            );
        }
        assert!(worst(&w1, &weights(&gc)) <= 1e-5, "{name}, GradCache");

        // bf16 autocast reaches every device's thread: the first update's loss is one device's in
        // bf16, far closer to it than to the f32 one (later updates drift apart, as bf16 rounding
        // amplifies the shards' other summation order).
        let mut bf16 = config.clone();
        bf16.precision = simcse_model::Precision::Bf16;
        let first = |t: &mut Trainer<B>| t.step(&batches[0], lr).unwrap().loss;
        let one_bf16 = first(&mut Trainer::<B>::new(bf16.clone(), &devices[0]).unwrap());
        let many_bf16 = first(&mut Trainer::<B>::on_devices(bf16, devices).unwrap());
        let (same, from_f32) = ((one_bf16 - many_bf16).abs(), (one_bf16 - a[0].loss).abs());
        println!(
            "{name}, bf16 on {n} devices vs 1: first loss within {same:.1e} (f32: {from_f32:.1e})"
        );
        assert!(
            same < from_f32 / 100.0,
            "{name}: bf16 {same} vs f32 {from_f32}"
        );
    }

    // Dropout on: each device draws its own masks, yet two runs agree to the last bit (the devices'
    // threads take turns with the backend's one RNG), and differ from dropout off.
    let mut config = parity_config(init.path(), Mode::Sup, StsLoss::Cosent, &parity.config);
    config.dropout = Some(0.1);
    let batch = random_batch(examples, 3, 41);
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let mut t = Trainer::<B>::on_devices(config.clone(), devices).unwrap();
            let losses: Vec<f32> = (0..2).map(|_| t.step(&batch, 1e-3).unwrap().loss).collect();
            (losses, weights(&t))
        })
        .collect();
    if n == 2 {
        // Three or more: burn sums the gradients in hash-map order, so runs agree to rounding.
        assert!(twice[0] == twice[1], "a dropout run on 2 devices repeats");
    }
    config.dropout = Some(0.0);
    let mut off = Trainer::<B>::on_devices(config, devices).unwrap();
    let loss = off.step(&batch, 1e-3).unwrap().loss;
    assert!((loss - twice[0].0[0]).abs() > 1e-4, "dropout acts: {loss}");
    // A short last batch with fewer examples than devices is refused, saying what to do.
    let err = off.step(&random_batch(n - 1, 3, 43), 1e-3).unwrap_err();
    assert!(err.to_string().contains("drop_last = true"), "{err}");
}

#[test]
fn two_and_three_cpu_devices_train_as_one_on_the_whole_batch() {
    devices_train_as_one::<CpuTrain>(&[Default::default(); 2]);
    devices_train_as_one::<CpuTrain>(&[Default::default(); 3]);
}
