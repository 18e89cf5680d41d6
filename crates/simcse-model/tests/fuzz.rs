//! Every reader of a model folder's files, fed mutated copies of real ones
//! (`simcse_testkit::fuzz`): `config.json`, `model.safetensors`, `pytorch_model.bin`, `vocab.txt`,
//! `tokenizer.json`. An error is fine; a panic, or an allocation sized by a damaged header, is not.

use std::path::Path;

use simcse_model::backend::Cpu;
use simcse_model::{BertConfig, ModelDir, Tokenizer, checkpoint};
use simcse_testkit::{fuzz, repo};

fn fixtures() -> std::path::PathBuf {
    repo().join("crates/simcse-model/tests/fixtures")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn config_and_weight_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config_bytes = std::fs::read(fixtures().join("tiny/config.json")).unwrap();
    let config = BertConfig::from_file(&fixtures().join("tiny/config.json")).unwrap();
    fuzz("config-json", &[config_bytes], |b| {
        if let Ok(c) = BertConfig::from_file(&write(dir.path(), "config.json", b)) {
            assert!(c.parameters() <= simcse_model::config::MAX_PARAMETERS);
        }
    });
    let device = Default::default();
    for (name, file) in [
        ("safetensors", "tiny/model.safetensors"),
        ("pytorch-bin", "tiny-bin/pytorch_model.bin"),
    ] {
        let seed = std::fs::read(fixtures().join(file)).unwrap();
        let base = Path::new(file).file_name().unwrap().to_str().unwrap();
        fuzz(name, &[seed], |b| {
            let _ = checkpoint::load::<Cpu>(&write(dir.path(), base, b), &config, &device);
        });
    }
}

#[test]
fn tokenizer_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    simcse_testkit::tiny_init(dir.path(), &["가나다라마바사".to_string()]);
    let vocab = std::fs::read(dir.path().join("vocab.txt")).unwrap();
    fuzz("vocab-txt", &[vocab], |b| {
        write(dir.path(), "vocab.txt", b);
        if let Ok(t) = Tokenizer::from_dir(dir.path()) {
            let _ = t.encode(&["가나다 abc", ""], 16);
        }
        let _ = ModelDir::open(dir.path());
    });
    // MiniLM's tokenizer.json, cut to its first 300 vocabulary entries to keep cases quick.
    let full: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(simcse_testkit::minilm().join("tokenizer.json")).unwrap(),
    )
    .unwrap();
    let mut small = full.clone();
    let vocab = full["model"]["vocab"].as_object().unwrap();
    small["model"]["vocab"] = vocab
        .iter()
        .filter(|(_, id)| id.as_u64().is_some_and(|i| i < 300))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let seed = serde_json::to_vec_pretty(&small).unwrap();
    let tdir = tempfile::tempdir().unwrap();
    fuzz("tokenizer-json", &[seed], |b| {
        let p = write(tdir.path(), "tokenizer.json", b);
        if let Ok(t) = Tokenizer::from_tokenizer_json(&p) {
            let _ = t.encode(&["hello 세계", ""], 16);
        }
    });
}

/// Inputs the longer fuzz run found panicking, kept as regression cases.
#[test]
fn inputs_that_once_panicked_are_errors() {
    let bad = fixtures().join("fuzz/tokenizer-decoder-panic.json");
    let err = Tokenizer::from_tokenizer_json(&bad)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer-decoder-panic.json"), "{err}");
}
