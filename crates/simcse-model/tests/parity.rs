//! Parity with PyTorch/transformers on fixtures written by `fixtures/make_fixtures.py`, checkpoint
//! I/O (both weight formats, legacy names, bad files), and the tokenizer. One test binary on purpose:
//! each binary monomorphises the model again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use simcse_testkit::shared_data as shared;
use simcse_testkit::{max_abs_diff, minilm, read_tensors};

use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;
use simcse_model::backend::{Cpu, CpuTrain};
use simcse_model::bert::BertInput;
use simcse_model::tokenizer::{Padding, Tokenizer, WordPieceSettings};
use simcse_model::{BertConfig, Encoder, ModelError, Pooler, checkpoint};

fn fixtures() -> PathBuf {
    simcse_testkit::repo().join("crates/simcse-model/tests/fixtures")
}

fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn tiny_input<B: burn::tensor::backend::Backend>(
    expected: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    device: &B::Device,
) -> BertInput<B> {
    let int = |name: &str| {
        let (shape, v) = &expected[name];
        let data = TensorData::new(
            v.iter().map(|&x| x as i32).collect::<Vec<_>>(),
            [shape[0], shape[1]],
        );
        Tensor::<B, 2, Int>::from_data(data, device)
    };
    let ids = int("input_ids");
    BertInput {
        token_type_ids: ids.zeros_like(),
        input_ids: ids,
        attention_mask: int("attention_mask"),
    }
}

/// Loads a tiny fixture folder and checks every hidden state, the pooler output and every SimCSE
/// pooler against PyTorch's, within `tol` (1e-4; CUDA: [`simcse_testkit::TF32_TOLERANCE`]).
fn check_tiny<B: burn::tensor::backend::Backend>(
    dir: &Path,
    config: &BertConfig,
    tol: f32,
    device: &B::Device,
) -> f32 {
    let expected = read_tensors(&fixtures().join("tiny/expected.safetensors"));
    let (model, report) = checkpoint::load::<B>(dir, config, device).unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    assert!(!report.no_pooler, "{report:?}");
    let input = tiny_input::<B>(&expected, device);
    let mask = input.attention_mask.clone();
    let hidden = model.forward(input);
    assert_eq!(hidden.len(), 3);
    let mut worst = 0.0f32;
    for (i, h) in hidden.iter().enumerate() {
        let d = max_abs_diff(
            &values(h.clone()),
            &expected[&format!("hidden_states.{i}")].1,
        );
        assert!(
            d <= tol,
            "{}: hidden_states.{i} differs by {d}",
            dir.display()
        );
        worst = worst.max(d);
    }
    // `poolers` on hidden states `hidden` (masked by `mask`) against PyTorch's; `what` names the run.
    let check_poolers =
        |poolers: &[Pooler], hidden: &[Tensor<B, 3>], mask: &Tensor<B, 2, Int>, what: &str| {
            let mut worst = 0.0f32;
            for &p in poolers {
                let got = values(p.pool(&model, hidden, mask.clone()).unwrap());
                let d = max_abs_diff(&got, &expected[&format!("pooler.{p}")].1);
                assert!(d <= tol, "{}: {what}{p} differs by {d}", dir.display());
                worst = worst.max(d);
            }
            worst
        };
    worst = worst.max(check_poolers(&Pooler::ALL, &hidden, &mask, "pooler "));
    // The `cls` poolers' shortcut, only [CLS] through the last layer, gives the same embeddings.
    let short = model.forward_cls(tiny_input::<B>(&expected, device));
    let rows = simcse_model::bert::cls_rows::<B>(device);
    assert_eq!(short[2].dims(), [3, rows, 32]);
    let cls = [Pooler::Cls, Pooler::ClsBeforePooler];
    worst = worst.max(check_poolers(&cls, &short, &mask, "forward_cls + "));
    let d = max_abs_diff(
        &values(
            model
                .pooler
                .as_ref()
                .unwrap()
                .forward(hidden[2].clone().slice([0..3, 0..1]).reshape([3, 32])),
        ),
        &expected["pooler_output"].1,
    );
    assert!(d <= tol, "pooler_output differs by {d}");
    // Padding past the longest row, as `backend::padding` does on the cubecl backends, changes no
    // pooler's output beyond rounding: the masks keep the extra positions out.
    let [batch, seq] = mask.dims();
    let padded_seq = Padding {
        multiple: 16,
        max_seq: config.max_position_embeddings,
    }
    .seq(seq);
    assert!(
        padded_seq > seq,
        "the fixture's {seq} tokens are already a multiple of 16"
    );
    let pad = |t: Tensor<B, 2, Int>| {
        Tensor::cat(vec![t, Tensor::zeros([batch, padded_seq - seq], device)], 1)
    };
    let input = tiny_input::<B>(&expected, device);
    let padded = BertInput {
        input_ids: pad(input.input_ids),
        token_type_ids: pad(input.token_type_ids),
        attention_mask: pad(input.attention_mask),
    };
    let padded_mask = padded.attention_mask.clone();
    let padded_hidden = model.forward(padded);
    let what = format!("padded to {padded_seq}, pooler ");
    worst.max(check_poolers(
        &Pooler::ALL,
        &padded_hidden,
        &padded_mask,
        &what,
    ))
}

fn tiny_config() -> BertConfig {
    BertConfig::from_file(&fixtures().join("tiny/config.json")).unwrap()
}

#[test]
fn tiny_bert_matches_pytorch_from_safetensors_bin_and_legacy_names() {
    let c = tiny_config();
    let worst = [
        check_tiny::<Cpu>(&fixtures().join("tiny"), &c, 1e-4, &Default::default()),
        check_tiny::<Cpu>(&fixtures().join("tiny-bin"), &c, 1e-4, &Default::default()),
        check_tiny::<Cpu>(
            &fixtures().join("tiny-legacy"),
            &c,
            1e-4,
            &Default::default(),
        ),
    ];
    println!("max abs diff vs PyTorch (safetensors, bin, legacy): {worst:?}");
}

#[test]
fn training_attention_path_matches_with_dropout_off() {
    // Under autodiff the attention probabilities are computed explicitly (for dropout); with dropout
    // set to 0 that path must give PyTorch's numbers too.
    let mut c = tiny_config();
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    check_tiny::<CpuTrain>(&fixtures().join("tiny"), &c, 1e-4, &Default::default());
}

/// The GPU code path (burn's cubecl kernels through wgpu; Mesa lavapipe in CI): the same fixtures
/// and tolerance (1e-4) as on the CPU, inference and training attention paths.
#[cfg(feature = "wgpu")]
#[test]
fn tiny_bert_matches_pytorch_on_wgpu() {
    use burn::backend::wgpu::WgpuDevice;
    use simcse_model::backend::{Wgpu, WgpuTrain};
    if simcse_testkit::gpu_ready::<Wgpu>("tiny_bert_matches_pytorch_on_wgpu") {
        // cubecl compiles a device's kernels one after the other on that device's thread, and on
        // lavapipe that compilation is most of this test: half the checks run on a second device of
        // the same driver where there is one (lavapipe answers as `Cpu` too), on a second core.
        let second = match simcse_model::backend::check_device::<Wgpu>(&WgpuDevice::Cpu, "Cpu") {
            Ok(()) => WgpuDevice::Cpu,
            Err(_) => WgpuDevice::DefaultDevice,
        };
        tiny_bert_matches_pytorch_on::<Wgpu, WgpuTrain>("wgpu", 1e-4, [Default::default(), second]);
    }
}

/// The same on CUDA (built only by `cargo xtask gpu-kit`; run by `scripts/gpu-check.sh`), where f32
/// matrix products run in TF32 (see `TF32_TOLERANCE`).
#[cfg(feature = "cuda")]
#[test]
fn tiny_bert_matches_pytorch_on_cuda() {
    use simcse_model::backend::{Gpu, GpuTrain};
    simcse_testkit::cuda_ready::<Gpu>();
    let tol = simcse_testkit::TF32_TOLERANCE;
    tiny_bert_matches_pytorch_on::<Gpu, GpuTrain>("cuda", tol, Default::default());
}

/// Two halves side by side: the tiny BERT (both paths) and every other of the BERT-layered
/// architectures on `devices[0]`; DeBERTa (both paths: its relative terms) and the rest of
/// [`ARCHS`] on `devices[1]`.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn tiny_bert_matches_pytorch_on<B, T>(name: &str, tol: f32, devices: [B::Device; 2])
where
    B: burn::tensor::backend::Backend,
    T: burn::tensor::backend::AutodiffBackend<InnerBackend = B, Device = B::Device>,
{
    let (deberta, bert_like): (Vec<&str>, Vec<&str>) =
        ARCHS.iter().partition(|a| a.starts_with("tiny-deberta"));
    let [first, second] = devices;
    let check = |arch: &str, device: &B::Device| {
        let worst = check_arch::<B>(arch, tol, device);
        println!("{name}: {arch} max abs diff vs PyTorch {worst:.2e}");
    };
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            for &arch in &deberta {
                check(arch, &second);
                let worst = check_arch::<T>(arch, tol, &second);
                println!("{name}: {arch} under autodiff {worst:.2e}");
            }
            bert_like
                .iter()
                .skip(1)
                .step_by(2)
                .for_each(|a| check(a, &second));
        });
        let mut c = tiny_config();
        let inference = check_tiny::<B>(&fixtures().join("tiny"), &c, tol, &first);
        c.hidden_dropout_prob = 0.0;
        c.attention_probs_dropout_prob = 0.0;
        let training = check_tiny::<T>(&fixtures().join("tiny"), &c, tol, &first);
        println!(
            "{name}: max abs diff vs PyTorch {inference:.2e} (inference), {training:.2e} (autodiff)"
        );
        bert_like.iter().step_by(2).for_each(|a| check(a, &first));
        if let Err(panic) = other.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

#[test]
fn save_then_load_is_lossless_and_keeps_hf_key_names() {
    let device = Default::default();
    let c = tiny_config();
    let (model, _) = checkpoint::load::<Cpu>(&fixtures().join("tiny"), &c, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    checkpoint::save(&model, &c, out.path()).unwrap();
    let original = read_tensors(&fixtures().join("tiny/model.safetensors"));
    let saved = read_tensors(&out.path().join("model.safetensors"));
    let mut keys: Vec<_> = saved.keys().cloned().collect();
    keys.sort();
    let mut want: Vec<_> = original.keys().cloned().collect();
    want.sort();
    assert_eq!(keys, want, "saved keys are transformers' BertModel keys");
    for (k, (shape, v)) in &original {
        assert_eq!(&saved[k].0, shape, "{k} shape");
        assert_eq!(&saved[k].1, v, "{k} values must round-trip bit for bit");
    }
    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt"),
        "transformers requires format=pt"
    );
    assert_eq!(
        BertConfig::from_file(&out.path().join("config.json"))
            .unwrap()
            .hidden_size,
        32
    );
    check_tiny::<Cpu>(out.path(), &c, 1e-4, &Default::default());
}

/// Copies the tiny safetensors without the tensors for which `drop` is true.
fn tiny_without(drop: impl Fn(&str) -> bool) -> tempfile::TempDir {
    let bytes = std::fs::read(fixtures().join("tiny/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<_> = st.tensors().into_iter().filter(|(k, _)| !drop(k)).collect();
    let dir = tempfile::tempdir().unwrap();
    safetensors::serialize_to_file(kept, None, &dir.path().join("model.safetensors")).unwrap();
    std::fs::copy(
        fixtures().join("tiny/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    dir
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let device = Default::default();
    // A missing tensor is named with its Hugging Face key.
    let dir = tiny_without(|k| k == "encoder.layer.1.output.LayerNorm.weight");
    let err = checkpoint::load::<Cpu>(dir.path(), &tiny_config(), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing 1 tensor(s)")
            && err.contains("encoder.layer.1.output.LayerNorm.weight"),
        "{err}"
    );

    // A shape mismatch names the key and both shapes.
    let mut c = tiny_config();
    c.intermediate_size = 40;
    let err = checkpoint::load::<Cpu>(&fixtures().join("tiny"), &c, &device).unwrap_err();
    assert!(matches!(err, ModelError::Tensor { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("intermediate.dense") && msg.contains("37") && msg.contains("40"),
        "{msg}"
    );

    // No weights at all.
    let empty = tempfile::tempdir().unwrap();
    let msg = checkpoint::load::<Cpu>(empty.path(), &tiny_config(), &device)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("model.safetensors or pytorch_model.bin"),
        "{msg}"
    );

    // No pooler in the file: the model has none, and `cls` says why it cannot work.
    let dir = tiny_without(|k| k.starts_with("pooler."));
    let (model, report) = checkpoint::load::<Cpu>(dir.path(), &tiny_config(), &device).unwrap();
    assert!(report.no_pooler && model.pooler.is_none());
    let expected = read_tensors(&fixtures().join("tiny/expected.safetensors"));
    let input = tiny_input::<Cpu>(&expected, &device);
    let mask = input.attention_mask.clone();
    let hidden = model.forward(input);
    let msg = Pooler::Cls
        .pool(&model, &hidden, mask.clone())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cls_before_pooler"), "{msg}");
    assert!(Pooler::ClsBeforePooler.pool(&model, &hidden, mask).is_ok());
}

fn korsts_dev_sentence1(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(shared().join("kor-nlu/sts-dev.tsv")).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| l.split('\t').nth(5).unwrap().to_string())
        .collect()
}

#[test]
fn krbert_char_tokenizer_matches_bert_tokenizer_fast() {
    let tok = Tokenizer::from_vocab(
        &shared().join("kr-bert/vocab_snu_char16424.txt"),
        &WordPieceSettings::default(),
    )
    .unwrap();
    assert_eq!(tok.vocab_size(), 16_424);
    assert_eq!(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(|t| tok.token_to_id(t).unwrap()),
        [0, 1, 2, 3, 4]
    );
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("krbert_tokens.json")).unwrap(),
    )
    .unwrap();
    let expected: Vec<Vec<u32>> = serde_json::from_value(expected["ids"].clone()).unwrap();
    let sents = korsts_dev_sentence1(300);
    let refs: Vec<&str> = sents.iter().map(String::as_str).collect();
    let got = tok.encode(&refs, 512).unwrap();
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "sentence {i}: {:?}", sents[i]);
    }
    assert_eq!(got.len(), 300);

    // Truncation keeps [SEP]; padding pads with [PAD] and masks it.
    let short = tok.encode(&[&sents[0], "가"], 8).unwrap();
    assert_eq!((short[0].len(), short[0][0], short[0][7]), (8, 2, 3));
    let batch = tok.pad(&[&short[0], &short[1]], Padding::LONGEST);
    assert_eq!((batch.batch, batch.seq), (2, 8));
    assert_eq!(
        &batch.input_ids[8..],
        &[2, tok.token_to_id("가").unwrap() as i32, 3, 0, 0, 0, 0, 0]
    );
    assert_eq!(&batch.attention_mask[8..], &[1, 1, 1, 0, 0, 0, 0, 0]);
}

#[test]
fn minilm_embeddings_match_pytorch() {
    let device = Default::default();
    let sents = korsts_dev_sentence1(32);
    let refs: Vec<&str> = sents.iter().map(String::as_str).collect();
    let expected = read_tensors(&fixtures().join("minilm_expected.safetensors"));
    for (pooler, name) in [(Pooler::Cls, "cls"), (Pooler::Avg, "avg")] {
        let mut enc =
            Encoder::<Cpu>::from_dir(&minilm(), Some(pooler), Some(128), &device).unwrap();
        enc.batch_size = 7; // uneven batches exercise the length sort and the reordering
        let got: Vec<f32> = enc.encode(&refs).unwrap().concat();
        let d = max_abs_diff(&got, &expected[name].1);
        println!("all-MiniLM-L6-v2 {name}: max abs diff vs PyTorch {d:e}");
        assert!(d <= 1e-4, "{name}: max abs diff {d}");
    }
}

#[test]
fn encoder_refuses_a_tokenizer_larger_than_the_embedding() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        shared().join("kr-bert/vocab_snu_char16424.txt"),
        dir.path().join("vocab.txt"),
    )
    .unwrap();
    let err = Encoder::<Cpu>::from_dir(dir.path(), None, None, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("16424 tokens") && err.contains("99 rows"),
        "{err}"
    );
}

#[test]
fn mlm_head_and_loss_match_pytorch() {
    use burn::module::Param;
    use simcse_model::mlm::{LmHead, MaskedBatch, mlm_loss};
    let device = Default::default();
    let f = read_tensors(&fixtures().join("mlm.safetensors"));
    let config = tiny_config();
    let (model, _) = checkpoint::load::<Cpu>(&fixtures().join("tiny"), &config, &device).unwrap();
    // transformers' Linear weights are [out, in]; burn's are [in, out].
    let linear = |name: &str| {
        let (shape, w) = &f[&format!("lm_head.{name}.weight")];
        let w =
            Tensor::<Cpu, 2>::from_data(TensorData::new(w.clone(), [shape[0], shape[1]]), &device);
        let b = &f[&format!("lm_head.{name}.bias")].1;
        let mut l = burn::nn::LinearConfig::new(shape[1], shape[0]).init::<Cpu>(&device);
        l.weight = Param::from_tensor(w.transpose());
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b.clone(), [b.len()]),
            &device,
        )));
        l
    };
    let vector = |name: &str| {
        let v = &f[&format!("lm_head.transform.LayerNorm.{name}")].1;
        Param::from_tensor(Tensor::<Cpu, 1>::from_data(
            TensorData::new(v.clone(), [v.len()]),
            &device,
        ))
    };
    let mut head = LmHead::<Cpu>::new(&config, &device);
    head.dense = linear("transform.dense");
    head.decoder = linear("decoder");
    head.layer_norm.gamma = vector("weight");
    head.layer_norm.beta = Some(vector("bias"));

    let ints = |name: &str| f[name].1.iter().map(|&x| x as i64).collect::<Vec<_>>();
    let input = tiny_input::<Cpu>(
        &HashMap::from([
            ("input_ids".to_string(), f["masked_ids"].clone()),
            ("attention_mask".to_string(), f["attention_mask"].clone()),
        ]),
        &device,
    );
    let last = model.forward(input).pop().unwrap();
    let masked = MaskedBatch {
        input_ids: vec![],
        positions: ints("positions"),
        targets: ints("targets"),
    };
    let got: f32 = mlm_loss(&head, last, &masked).unwrap().into_scalar();
    let want = f["loss"].1[0];
    println!("MLM loss: ours {got}, PyTorch {want}");
    assert!(
        (got - want).abs() <= 1e-5,
        "MLM loss {got} vs PyTorch {want}"
    );
}

/// GELU's gradient on the GPU code path equals burn-flex's exact one (burn's default backward
/// differentiates the tanh approximation: off by ~2e-3 before `activate` built GELU from erf).
#[cfg(feature = "wgpu")]
#[test]
fn gelu_gradient_is_exact_on_wgpu() {
    use simcse_model::backend::{Wgpu, WgpuTrain};
    if simcse_testkit::gpu_ready::<Wgpu>("gelu_gradient_is_exact_on_wgpu") {
        gelu_gradient_is_exact_on::<WgpuTrain>("wgpu");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn gelu_gradient_is_exact_on_cuda() {
    use simcse_model::backend::{Gpu, GpuTrain};
    simcse_testkit::cuda_ready::<Gpu>();
    gelu_gradient_is_exact_on::<GpuTrain>("cuda");
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gelu_gradient_is_exact_on<T: burn::tensor::backend::AutodiffBackend>(name: &str) {
    use burn::tensor::Distribution;
    use burn::tensor::backend::AutodiffBackend;
    use simcse_model::bert::activate;
    use simcse_model::config::Activation;
    let x = Tensor::<Cpu, 2>::random([8, 64], Distribution::Normal(0.0, 2.0), &Default::default());
    fn grad<B: AutodiffBackend>(x: TensorData) -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::<B, 2>::from_data(x, &Default::default()).require_grad();
        let y = activate(Activation::Gelu, x.clone());
        let w = y.clone().mul_scalar(0.0).add_scalar(1.0).cumsum(1); // distinct weights per column
        let g = x.grad(&(y.clone() * w.detach()).sum().backward()).unwrap();
        (values(y.inner()), values(g))
    }
    let (yf, gf) = grad::<CpuTrain>(x.to_data());
    let (yg, gg) = grad::<T>(x.into_data());
    let (dy, dg) = (max_abs_diff(&yf, &yg), max_abs_diff(&gf, &gg));
    println!("GELU {name} vs flex: forward {dy:.2e}, gradient {dg:.2e}");
    assert!(dy <= 1e-5 && dg <= 1e-4, "forward {dy}, gradient {dg}");
}

/// The checkpoints of `make_arch_fixtures.py`: RobertaModel with a pooler and byte-level BPE,
/// XLMRobertaForMaskedLM (`roberta.` keys, `lm_head`, no pooler) with SentencePiece Unigram,
/// ElectraForPreTraining (`electra.` keys, embedding_size 16 < hidden 32) with WordPiece; and of
/// `make_deberta_fixtures.py`: DebertaV2ForMaskedLM shaped as kf-deberta (shared keys, log
/// buckets, normed relative embeddings, no absolute positions) with WordPiece, and DebertaV2Model
/// with the convolution, own position projections, no buckets, `embed_proj`, and a SentencePiece
/// model converted to tokenizer.json.
const ARCHS: [&str; 5] = [
    "tiny-roberta",
    "tiny-xlmr",
    "tiny-electra",
    "tiny-deberta",
    "tiny-deberta-conv",
];

#[derive(serde::Deserialize)]
struct Tokens {
    max_len: usize,
    sentences: Vec<String>,
    ids: Vec<Vec<u32>>,
    batch: Vec<String>,
}

/// One architecture's folder against transformers: the tokenizer's ids (200 KorSTS sentences,
/// truncation included) and padded batch, every hidden state, every pooler the checkpoint allows,
/// and the same after padding further (RoBERTa's positions count past the padding); returns the
/// largest difference.
fn check_arch<B: burn::tensor::backend::Backend>(name: &str, tol: f32, device: &B::Device) -> f32 {
    let dir = fixtures().join(name);
    let mut md = simcse_model::ModelDir::open(&dir).unwrap();
    // Dropout off, so that the autodiff backends' training path computes the same.
    md.config.hidden_dropout_prob = 0.0;
    md.config.attention_probs_dropout_prob = 0.0;
    let tokens: Tokens =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokens.json")).unwrap()).unwrap();
    let texts: Vec<&str> = tokens.sentences.iter().map(String::as_str).collect();
    let ids = md.tokenizer.encode(&texts, tokens.max_len).unwrap();
    for (i, (got, want)) in ids.iter().zip(&tokens.ids).enumerate() {
        assert_eq!(got, want, "{name}: sentence {i} {:?}", texts[i]);
    }
    let expected = read_tensors(&dir.join("expected.safetensors"));
    let batch_texts: Vec<&str> = tokens.batch.iter().map(String::as_str).collect();
    let rows = md.tokenizer.encode(&batch_texts, tokens.max_len).unwrap();
    let refs: Vec<&Vec<u32>> = rows.iter().collect();
    let batch = md.tokenizer.pad(&refs, Padding::LONGEST);
    let as_f32 = |v: &[i32]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    assert_eq!(as_f32(&batch.input_ids), expected["input_ids"].1, "{name}");
    assert_eq!(
        as_f32(&batch.attention_mask),
        expected["attention_mask"].1,
        "{name}"
    );

    let model = md.load::<B>(device).unwrap();
    let layers = md.config.num_hidden_layers;
    let mut worst = 0.0f32;
    // Where a batch is padded further than transformers' was, only the tokens' states are
    // comparable: a DeBERTa padding row attends to every position, so it sees the extra padding.
    let tokens = &expected["attention_mask"].1;
    let width = md.config.hidden_size;
    let only_tokens = |v: Vec<f32>| -> Vec<f32> {
        v.chunks(width)
            .zip(tokens)
            .flat_map(|(row, &m)| row.iter().map(move |x| x * m))
            .collect()
    };
    let mut compare = |batch: &simcse_model::tokenizer::Batch, what: &str, further: bool| {
        let input = BertInput::<B>::new(batch, device);
        let mask = input.attention_mask.clone();
        let hidden = model.forward(input);
        assert_eq!(hidden.len(), layers + 1);
        let seq = expected["input_ids"].0[1];
        for (i, h) in hidden.iter().enumerate() {
            let [b, _, d] = h.dims();
            let h = values(h.clone().slice([0..b, 0..seq, 0..d]));
            let want = &expected[&format!("hidden_states.{i}")].1;
            let diff = match further {
                true => max_abs_diff(&only_tokens(h), &only_tokens(want.clone())),
                false => max_abs_diff(&h, want),
            };
            assert!(
                diff <= tol,
                "{name}{what}: hidden_states.{i} differs by {diff}"
            );
            worst = worst.max(diff);
        }
        for p in Pooler::ALL {
            let got = p.pool(&model, &hidden, mask.clone());
            match expected.get(&format!("pooler.{p}")) {
                Some((_, want)) => {
                    let diff = max_abs_diff(&values(got.unwrap()), want);
                    assert!(diff <= tol, "{name}{what}: pooler {p} differs by {diff}");
                    // As `encode` computes it: the `cls` poolers' last layer on `[CLS]` alone.
                    let embedded = p.embed(&model, BertInput::<B>::new(batch, device));
                    let diff = diff.max(max_abs_diff(&values(embedded.unwrap()), want));
                    assert!(diff <= tol, "{name}{what}: embed {p} differs by {diff}");
                    worst = worst.max(diff);
                }
                // No pooler in the checkpoint: `cls` says what to do instead.
                None => assert!(got.unwrap_err().to_string().contains("cls_before_pooler")),
            }
        }
    };
    compare(&batch, "", false);
    let padded = Padding {
        multiple: 16,
        max_seq: md.config.max_tokens(),
    };
    if padded.seq(batch.seq) > batch.seq {
        let more = md.tokenizer.pad(&refs, padded);
        compare(&more, " padded further", true);
    }
    worst
}

#[test]
fn roberta_xlmr_electra_and_deberta_match_transformers_tokens_and_states() {
    for arch in ARCHS {
        let worst = check_arch::<Cpu>(arch, 1e-4, &Default::default());
        println!("{arch}: max abs diff vs PyTorch {worst:.2e}");
    }
    // The training attention path (autodiff, dropout off) on the architectures' own parts.
    for arch in ["tiny-roberta", "tiny-deberta", "tiny-deberta-conv"] {
        let worst = check_arch::<CpuTrain>(arch, 1e-4, &Default::default());
        println!("{arch} under autodiff: {worst:.2e}");
    }
}

#[test]
fn deberta_buckets_match_transformers() {
    #[derive(serde::Deserialize)]
    struct Table {
        from: i64,
        buckets: HashMap<String, Vec<i64>>,
    }
    let t: Table =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("buckets.json")).unwrap())
            .unwrap();
    assert!(t.buckets.len() >= 5);
    for (key, want) in &t.buckets {
        let (b, m) = key.split_once(',').unwrap();
        let (b, m): (i64, i64) = (b.parse().unwrap(), m.parse().unwrap());
        for (i, w) in want.iter().enumerate() {
            let rel = t.from + i as i64;
            let got = simcse_model::deberta::log_bucket(rel, b, m);
            assert_eq!(got, *w, "buckets {b}, max {m}, relative position {rel}");
        }
    }
}

#[test]
fn a_sentencepiece_model_alone_says_how_to_convert_it() {
    let dir = tempfile::tempdir().unwrap();
    let from = fixtures().join("tiny-deberta-conv");
    for f in ["config.json", "model.safetensors", "spm.model"] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    let err = simcse_model::ModelDir::open(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spm.model") && err.contains("scripts/spm-to-tokenizer-json.py"),
        "{err}"
    );
}

#[test]
fn config_types_are_read_written_and_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |json: &str| {
        let p = dir.path().join("config.json");
        std::fs::write(&p, json).unwrap();
        BertConfig::from_file(&p)
    };
    let base = r#""vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16"#;
    let err = write(&format!(r#"{{{base},"model_type":"deberta"}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"deberta\"")
            && err.contains("bert, roberta, xlm-roberta, electra, deberta-v2"),
        "{err}"
    );
    // A config without model_type is BERT (older checkpoints, KR-BERT's).
    assert_eq!(
        write(&format!("{{{base}}}")).unwrap().model_type,
        simcse_model::ModelType::Bert
    );
    for arch in ARCHS {
        let c = BertConfig::from_file(&fixtures().join(arch).join("config.json")).unwrap();
        let back: serde_json::Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
        let want = serde_json::Value::from(c.model_type.name());
        assert_eq!(back["model_type"], want, "{arch}");
        assert_eq!(back["architectures"][0], c.model_type.class(), "{arch}");
    }
    let electra = BertConfig::from_file(&fixtures().join("tiny-electra/config.json")).unwrap();
    assert_eq!((electra.embedding_width(), electra.hidden_size), (16, 32));
    let xlmr = BertConfig::from_file(&fixtures().join("tiny-xlmr/config.json")).unwrap();
    assert_eq!(xlmr.max_tokens(), xlmr.max_position_embeddings - 2);
    // DeBERTa-v2's own defaults where a config leaves keys out, and its refusals.
    let deberta = format!(r#"{base},"model_type":"deberta-v2""#);
    let c = write(&format!("{{{deberta}}}")).unwrap();
    assert_eq!((c.type_vocab_size, c.layer_norm_eps), (0, 1e-7));
    let bad = [
        (r#""conv_kernel_size":2"#, "conv_kernel_size 2 is even"),
        (
            r#""attention_head_size":8"#,
            "attention_head_size 8 is not supported",
        ),
        // Sizes from a damaged file are refused before anything is allocated.
        (r#""conv_kernel_size":3000000001"#, "parameters"),
        (
            r#""relative_attention":true,"position_buckets":9000000000000000000"#,
            "parameters",
        ),
        (
            r#""conv_kernel_size":3,"conv_groups":3"#,
            "not a multiple of conv_groups 3",
        ),
        (
            r#""relative_attention":true,"position_buckets":256,"max_relative_positions":100"#,
            "position_buckets 256 needs max_relative_positions above 129",
        ),
    ];
    for (keys, want) in bad {
        let err = write(&format!("{{{deberta},{keys}}}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{keys}: {err}");
    }
}

#[test]
fn every_architecture_saves_and_reloads_to_the_same_outputs() {
    let device = Default::default();
    for arch in ARCHS {
        let md = simcse_model::ModelDir::open(&fixtures().join(arch)).unwrap();
        let model = md.load::<Cpu>(&device).unwrap();
        let out = tempfile::tempdir().unwrap();
        checkpoint::save(&model, &md.config, out.path()).unwrap();
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(fixtures().join(arch).join(f), out.path().join(f)).unwrap();
        }
        // The same tensor names as the checkpoint's encoder (heads and `*For*` prefixes dropped).
        let names = |p: &Path| {
            let mut k: Vec<String> = read_tensors(p).into_keys().collect();
            k.sort();
            k
        };
        let prefixes: Vec<String> = simcse_model::ModelType::ALL
            .iter()
            .map(|m| format!("{}.", m.prefix()))
            .collect();
        let encoder: Vec<String> = names(&md.weights)
            .into_iter()
            .filter(|k| {
                !k.starts_with("cls.")
                    && !k.starts_with("lm_head.")
                    && !k.starts_with("discriminator_")
            })
            .map(|k| {
                prefixes.iter().fold(k, |k, p| {
                    k.strip_prefix(p).map_or(k.clone(), str::to_string)
                })
            })
            .collect();
        assert_eq!(
            names(&out.path().join("model.safetensors")),
            encoder,
            "{arch}"
        );
        let again = simcse_model::ModelDir::open(out.path()).unwrap();
        assert_eq!(again.config.model_type, md.config.model_type);
        let reloaded = again.load::<Cpu>(&device).unwrap();
        let texts = ["한국어 문장 임베딩", "두 번째 문장입니다."];
        let rows = md.tokenizer.encode(&texts, 16).unwrap();
        let refs: Vec<&Vec<u32>> = rows.iter().collect();
        let batch = md.tokenizer.pad(&refs, Padding::LONGEST);
        let a = model
            .forward(BertInput::new(&batch, &device))
            .pop()
            .unwrap();
        let b = reloaded
            .forward(BertInput::new(&batch, &device))
            .pop()
            .unwrap();
        assert_eq!(values(a), values(b), "{arch}");
        // The file has the bare encoder's keys, as transformers' `*Model.save_pretrained` writes them.
        let keys = read_tensors(&out.path().join("model.safetensors"));
        assert!(
            keys.keys()
                .all(|k| !k.starts_with("roberta.") && !k.starts_with("electra."))
        );
        assert_eq!(
            keys.contains_key("embeddings_project.weight"),
            md.config.model_type == simcse_model::ModelType::Electra,
            "{arch}"
        );
    }
}

// The patched burn-flex (vendor/README.md): each change against the arithmetic it replaced, on
// tensors larger than one parallel chunk (16 Ki elements) and of a length that is not a multiple
// of it, so that the rayon split, the SIMD loop and its remainder all run.

/// [-6, 6] in steps of 6e-5: 200,001 values.
fn erf_grid() -> Vec<f32> {
    (-100_000..=100_000).map(|i| i as f32 * 6e-5).collect()
}

#[test]
fn flex_erf_and_gelu_are_within_5e_7_of_libm() {
    let device = Default::default();
    let xs = erf_grid();
    let x = Tensor::<Cpu, 1>::from_floats(xs.as_slice(), &device);
    let erf = values(x.clone().erf());
    let gelu = values(burn::tensor::activation::gelu(x));
    let (mut worst_erf, mut worst_gelu) = (0f64, 0f64);
    for ((&x, &e), &g) in xs.iter().zip(&erf).zip(&gelu) {
        let want = libm::erf(x as f64);
        worst_erf = worst_erf.max((e as f64 - want).abs());
        let want = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
        worst_gelu = worst_gelu.max((g as f64 - want).abs());
    }
    // libm's erff: 6e-8. GELU's error is erf's times |x|/2, plus its own rounding near |x| = 6.
    assert!(worst_erf <= 5e-7, "erf: max abs error {worst_erf}");
    assert!(worst_gelu <= 2e-6, "gelu: max abs error {worst_gelu}");
    let special = values(
        Tensor::<Cpu, 1>::from_floats([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0], &device)
            .erf(),
    );
    assert!(special[0].is_nan(), "erf(NaN) = {}", special[0]);
    assert!((special[1] - 1.0).abs() <= 5e-7 && (special[2] + 1.0).abs() <= 5e-7);
    assert_eq!(special[3], 0.0);
}

#[test]
fn flex_gelu_gradient_is_within_1e_6_of_the_exact_one() {
    let device = Default::default();
    let xs = erf_grid();
    let x = Tensor::<CpuTrain, 1>::from_floats(xs.as_slice(), &device).require_grad();
    let grads = burn::tensor::activation::gelu(x.clone()).sum().backward();
    let got = values(x.grad(&grads).unwrap());
    let worst = xs
        .iter()
        .zip(&got)
        .map(|(&x, &g)| {
            let x = x as f64;
            let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (g as f64 - (cdf + x * pdf)).abs()
        })
        .fold(0f64, f64::max);
    assert!(worst <= 1e-6, "gelu gradient: max abs error {worst}");
}

#[test]
fn flex_parallel_element_wise_ops_equal_the_scalar_loop() {
    let device = Default::default();
    let n: usize = 100_003;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 * 0.01 - 5.0)
        .collect();
    let ys: Vec<f32> = (0..n)
        .map(|i| ((i * 104729) % 997) as f32 * 0.002)
        .collect();
    let x = Tensor::<Cpu, 1>::from_floats(xs.as_slice(), &device);
    let y = Tensor::<Cpu, 1>::from_floats(ys.as_slice(), &device);
    let exp: Vec<f32> = xs.iter().map(|x| x.exp()).collect();
    // In place (the only handle), allocating (another handle alive), and a view at an offset.
    assert_eq!(values(x.clone().exp()), exp, "shared");
    assert_eq!(
        values(x.clone().slice(3..n).exp()),
        exp[3..],
        "view at an offset"
    );
    let pow: Vec<f32> = ys.iter().zip(&xs).map(|(y, x)| y.powf(*x)).collect();
    assert_eq!(values(y.clone().powf(x.clone())), pow, "binary, shared");
    assert_eq!(values(y.powf(x.clone())), pow, "binary, in place");
    assert_eq!(values(x.exp()), exp, "in place");
}

#[test]
fn flex_copies_permuted_tensors_in_order() {
    let device = Default::default();
    let shape = [3, 4, 5, 6];
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let x = Tensor::<Cpu, 1>::from_floats(data.as_slice(), &device).reshape(shape);
    // Element [b, h, s, d] of `x` is its index; read in [b, s, h, d] order.
    let want = |bs: std::ops::Range<usize>, ds: std::ops::Range<usize>| {
        let mut out = Vec::new();
        for b in bs {
            for s in 0..5 {
                for h in 0..4 {
                    out.extend(ds.clone().map(|d| (((b * 4 + h) * 5 + s) * 6 + d) as f32));
                }
            }
        }
        out
    };
    // Attention's [batch, heads, seq, d] -> [batch, seq, heads, d], then a reshape that copies.
    let got = values(x.clone().swap_dims(1, 2).reshape([3, 5, 24]));
    assert_eq!(got, want(0..3, 0..6));
    // The same from a view at an offset with a shorter inner run.
    let got = values(
        x.slice([1..3, 0..4, 0..5, 2..5])
            .swap_dims(1, 2)
            .reshape([2 * 5 * 4 * 3]),
    );
    assert_eq!(got, want(1..3, 2..5));
}
