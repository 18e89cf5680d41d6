//! A Hugging Face model folder, read once with every check: `config.json`, the tokenizer, the
//! weights file and our `simcse.json`. The encoder, the trainer and the exporters all load and write
//! models through here, so the file names and the checks live in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::bert::BertModel;
use crate::checkpoint;
use crate::config::BertConfig;
use crate::error::{ModelError, Result};
use crate::export;
use crate::pooler::Pooler;
use crate::tokenizer::Tokenizer;

/// Weight files looked for in a model folder, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
/// Tokenizer files a model folder may carry (one of the first two is needed); copied on export
/// (DeBERTa's `spm.model` too, for tools that read it).
pub const TOKENIZER_FILES: [&str; 5] = [
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "spm.model",
];
/// Our settings file: how the model is meant to be read.
pub const SETTINGS_FILE: &str = "simcse.json";

/// `simcse.json`: the pooler and length the model was trained to be read with, and the SHA-256 of
/// every other file of the folder ([`save`] fills them in; [`ModelDir::open`] checks them); other
/// keys (how it was trained) are kept as they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimcseSettings {
    pub pooler: Pooler,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A model folder whose config, tokenizer and settings are read and checked; the weights are
/// loaded onto a device by [`ModelDir::load`].
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub config: BertConfig,
    pub tokenizer: Tokenizer,
    pub settings: Option<SimcseSettings>,
    pub weights: PathBuf,
}

impl ModelDir {
    /// Reads `config.json`, the tokenizer and `simcse.json` (if any), finds the weights file, and
    /// checks that the tokenizer's ids fit the embedding matrix.
    pub fn open(path: &Path) -> Result<Self> {
        let config = BertConfig::from_file(&path.join("config.json"))?;
        let tokenizer = Tokenizer::from_dir(path)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(ModelError::Invalid(format!(
                "{}: the tokenizer has {} tokens but the model's embedding has {} rows: tokenizer and weights do not belong together",
                path.display(),
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let settings_path = path.join(SETTINGS_FILE);
        let settings: Option<SimcseSettings> = if settings_path.is_file() {
            let text =
                std::fs::read_to_string(&settings_path).map_err(ModelError::io(&settings_path))?;
            Some(serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: settings_path.clone(),
                message: e.to_string(),
            })?)
        } else {
            None
        };
        if let Some(s) = &settings {
            checkpoint::verify_files(path, &s.files).map_err(|e| {
                ModelError::Invalid(format!(
                    "{}: {e}: the folder changed after it was written (see {SETTINGS_FILE})",
                    path.display()
                ))
            })?;
        }
        Ok(ModelDir {
            weights: weights_path(path)?,
            path: path.to_path_buf(),
            config,
            tokenizer,
            settings,
        })
    }

    /// The weights on `device`, as a model of `self.config` (which a caller may have changed, e.g.
    /// the dropout rates).
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<BertModel<B>> {
        Ok(checkpoint::load::<B>(&self.weights, &self.config, device)?.0)
    }
}

/// The weight file of a model folder (or the file itself).
pub fn weights_path(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    WEIGHT_FILES
        .iter()
        .map(|f| path.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::Missing {
            what: format!("weights: {} in the model folder", WEIGHT_FILES.join(" or ")),
            path: path.to_path_buf(),
        })
}

/// Writes a model folder: weights and `config.json` (Hugging Face layout), the tokenizer files of
/// `tokenizer_from`, and `simcse.json`. Each file is written atomically.
pub fn save<B: Backend>(
    model: &BertModel<B>,
    config: &BertConfig,
    tokenizer_from: &Path,
    settings: &SimcseSettings,
    dir: &Path,
) -> Result<()> {
    checkpoint::save(model, config, dir)?;
    let mut settings = settings.clone();
    settings.files.clear();
    for f in TOKENIZER_FILES {
        let src = tokenizer_from.join(f);
        if src.is_file() {
            std::fs::copy(&src, dir.join(f)).map_err(ModelError::io(&src))?;
        }
    }
    let written = TOKENIZER_FILES
        .iter()
        .chain(&["model.safetensors", "config.json"]);
    for f in written.filter(|f| dir.join(f).is_file()) {
        let hash = checkpoint::sha256_file(&dir.join(f)).map_err(ModelError::io(dir.join(f)))?;
        settings.files.insert(f.to_string(), hash);
    }
    let json = serde_json::to_string_pretty(&settings).map_err(|e| ModelError::Config {
        path: dir.join(SETTINGS_FILE),
        message: e.to_string(),
    })?;
    checkpoint::write_atomic(&dir.join(SETTINGS_FILE), &(json + "\n"))?;
    // The folder also loads with `SentenceTransformer(dir)`, where the pooler has an equivalent.
    let max_len = settings.max_len.unwrap_or(128).min(config.max_tokens());
    match export::write(dir, settings.pooler, max_len, config.hidden_size) {
        Err(ModelError::Invalid(why)) => {
            tracing::info!("{}: no sentence-transformers files: {why}", dir.display());
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved folder opens; a changed file in it is an error naming the file.
    #[test]
    fn a_saved_folder_checks_its_files() {
        type B = burn::backend::Flex;
        let src = tempfile::tempdir().unwrap();
        simcse_testkit::tiny_init(src.path(), &["가나다".to_string()]);
        let dir = ModelDir::open(src.path()).unwrap();
        let model = dir.load::<B>(&Default::default()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let settings = SimcseSettings {
            pooler: Pooler::Cls,
            max_len: Some(32),
            files: BTreeMap::new(),
            extra: Default::default(),
        };
        save(&model, &dir.config, src.path(), &settings, out.path()).unwrap();
        let saved = ModelDir::open(out.path()).unwrap().settings.unwrap();
        let names: Vec<&str> = saved.files.keys().map(String::as_str).collect();
        assert_eq!(names, ["config.json", "model.safetensors", "vocab.txt"]);
        let vocab = out.path().join("vocab.txt");
        let text = std::fs::read_to_string(&vocab).unwrap();
        std::fs::write(&vocab, text.replace("[UNK]", "[UNX]")).unwrap();
        let err = ModelDir::open(out.path()).unwrap_err().to_string();
        assert!(err.contains("vocab.txt is damaged"), "{err}");
    }
}
