//! Encode throughput (sentences/s, tokenization included) on KorSTS test sentences:
//! all-MiniLM-L6-v2 at max_len 128, and a random BERT-base, RoBERTa-base and DeBERTa-v2-base
//! (kf-deberta's settings, mean pooling) with KR-BERT's char vocab at max_len 64.
//! Run `encode_reference.py` beside this file for PyTorch on the same sentences and batching.
//!
//!     cargo bench -p simcse-model --bench encode [--features ndarray]

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::Backend;
use simcse_model::bert::BertModel;
use simcse_model::tokenizer::{Tokenizer, WordPieceSettings};
use simcse_model::{BertConfig, Encoder, Pooler};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn korsts_test_sentences() -> Vec<String> {
    let shared = std::env::var_os("SIMCSE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let text = std::fs::read_to_string(shared.join("kor-nlu/sts-test.tsv")).expect("KorSTS test");
    text.lines()
        .skip(1)
        .flat_map(|l| {
            l.split('\t')
                .skip(5)
                .take(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn measure<B: Backend>(label: &str, enc: &Encoder<B>, sents: &[&str]) {
    enc.encode(&sents[..64]).expect("warm-up");
    let runs = 3;
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let t = Instant::now();
        let out = enc.encode(sents).expect("encode");
        assert_eq!(out.len(), sents.len());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{label:<44} {:>6} sentences  best of {runs}: {best:>7.3} s  {:>8.1} sentences/s",
        sents.len(),
        sents.len() as f64 / best
    );
}

fn minilm<B: Backend>(name: &str, sents: &[&str]) {
    let dir = std::env::var_os("SIMCSE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/all-MiniLM-L6-v2"));
    let enc = Encoder::<B>::from_dir(&dir, Some(Pooler::Cls), Some(128), &Default::default())
        .expect("run scripts/fetch-minilm.sh");
    measure(&format!("{name} all-MiniLM-L6-v2 max_len 128"), &enc, sents);
}

/// kf-deberta-base's DeBERTa-v2 settings (its vocabulary aside).
const KF_DEBERTA: &str = r#","type_vocab_size":0,"relative_attention":true,"pos_att_type":["p2c","c2p"],"share_att_key":true,"position_buckets":256,"max_relative_positions":512,"norm_rel_ebd":"layer_norm","position_biased_input":false,"layer_norm_eps":1e-7"#;

/// A random base-size encoder with KR-BERT's char vocabulary: `bert`, or `roberta` of the same
/// sizes (its position ids count from the pad id; klue/roberta-base also pairs RoBERTa weights
/// with a WordPiece vocabulary), to show the architectures cost the same; or `deberta-v2` as
/// kf-deberta-base, read with mean pooling (it has no pooler).
fn base<B: Backend>(name: &str, model_type: &str, sents: &[&str]) {
    let shared = std::env::var_os("SIMCSE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let (extra, pooler) = match model_type {
        "deberta-v2" => (KF_DEBERTA, Pooler::Avg),
        _ => ("", Pooler::Cls),
    };
    let config: BertConfig = serde_json::from_str(&format!(
        r#"{{"model_type":"{model_type}","vocab_size":16424,"hidden_size":768,"num_hidden_layers":12,"num_attention_heads":12,"intermediate_size":3072,"max_position_embeddings":514,"pad_token_id":0{extra}}}"#,
    ))
    .expect("config");
    let device = Default::default();
    let tokenizer = Tokenizer::from_vocab(
        &shared.join("kr-bert/vocab_snu_char16424.txt"),
        &WordPieceSettings::default(),
    )
    .expect("vocab");
    let enc = Encoder::new(
        BertModel::<B>::new(&config, &device),
        config,
        tokenizer,
        pooler,
        64,
        &device,
    );
    measure(
        &format!("{name} random {model_type}-base (KR-BERT vocab) max_len 64"),
        &enc,
        sents,
    );
}

fn main() {
    let sents = korsts_test_sentences();
    let all: Vec<&str> = sents.iter().map(String::as_str).collect();
    println!("threads: {} (rayon)", rayon::current_num_threads());
    // SIMCSE_BENCH=bert-base or minilm runs one model only.
    let only = std::env::var("SIMCSE_BENCH").unwrap_or_default();
    if only == "bert-base" {
        base::<simcse_model::backend::Cpu>("flex", "bert", &all[..512]);
        base::<simcse_model::backend::Cpu>("flex", "roberta", &all[..512]);
        return;
    }
    if only == "deberta-base" {
        base::<simcse_model::backend::Cpu>("flex", "deberta-v2", &all[..512]);
        return;
    }
    minilm::<simcse_model::backend::Cpu>("flex", &all);
    #[cfg(feature = "ndarray")]
    minilm::<burn::backend::NdArray>("ndarray", &all);
    if only == "minilm" {
        return;
    }
    base::<simcse_model::backend::Cpu>("flex", "bert", &all[..512]);
    base::<simcse_model::backend::Cpu>("flex", "roberta", &all[..512]);
    base::<simcse_model::backend::Cpu>("flex", "deberta-v2", &all[..512]);
    #[cfg(feature = "ndarray")]
    base::<burn::backend::NdArray>("ndarray", "bert", &all[..512]);
}
