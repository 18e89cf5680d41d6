//! Hugging Face checkpoints: `model.safetensors` or `pytorch_model.bin` in, `model.safetensors` +
//! `config.json` out, through burn-store with a key mapping (not a tensor reader of our own).

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use crate::bert::BertModel;
use crate::config::{BertConfig, ModelType};
use crate::error::{ModelError, Result};
use crate::model_dir::weights_path;

/// HF key -> our module path. Each type's `ModelType::prefix` (`bert.`, `roberta.`, `electra.`,
/// `deberta.`) is dropped: the `*For*` checkpoints (KR-BERT's `BertForPreTraining`,
/// `RobertaForMaskedLM`, ...) hold the encoder under it. DeBERTa's `query_proj` is our `query`.
fn hf_to_burn() -> KeyRemapper {
    let mut prefixes: Vec<&str> = ModelType::ALL.iter().map(|m| m.prefix()).collect();
    prefixes.dedup(); // RoBERTa and XLM-RoBERTa share `roberta.`
    KeyRemapper::from_patterns(vec![
        (format!(r"^({})\.", prefixes.join("|")), ""),
        (r"\.LayerNorm\.".into(), ".layer_norm."),
        (DEBERTA_PROJ.into(), ".attention.self.${1}."),
        (r"\.attention\.self\.".into(), ".attention.self_attention."),
    ])
    .expect("static patterns")
}

/// DeBERTa-v2's names of the attention projections.
const DEBERTA_PROJ: &str = r"\.attention\.self\.(query|key|value)_proj\.";

fn burn_to_hf(model_type: ModelType) -> KeyRemapper {
    let mut patterns = vec![
        (r"\.layer_norm\.", ".LayerNorm."),
        (r"\.attention\.self_attention\.", ".attention.self."),
    ];
    if model_type == ModelType::DebertaV2 {
        patterns.push((
            r"\.attention\.self\.(query|key|value)\.",
            ".attention.self.${1}_proj.",
        ));
    }
    KeyRemapper::from_patterns(patterns).expect("static patterns")
}

/// Our module path -> the HF key a user would look for in the file.
fn hf_name(path: &str, model_type: ModelType) -> String {
    let remapped = burn_to_hf(model_type)
        .to_regex_pairs()
        .iter()
        .fold(path.to_string(), |k, (re, to)| {
            re.replace_all(&k, to.as_str()).into_owned()
        });
    remapped
        .replace(".gamma", ".weight")
        .replace(".beta", ".bias")
}

/// Keys that checkpoints carry beside the encoder's parameters and that are safe to ignore: the
/// position- and token-type-id buffers and the pre-training heads (`BertForPreTraining`'s `cls.`,
/// which KR-BERT ships and legacy DeBERTa-v2 MLM heads use; RoBERTa's `lm_head.`; DeBERTa-v2's
/// `lm_predictions.`; ELECTRA's discriminator and generator heads).
fn ignorable(key: &str) -> bool {
    const HEADS: [&str; 5] = [
        "cls.",
        "lm_head.",
        "lm_predictions.",
        "discriminator_predictions.",
        "generator_",
    ];
    key.ends_with("position_ids")
        || key.ends_with("token_type_ids")
        || HEADS.iter().any(|h| key.starts_with(h))
}

/// What loading found besides the parameters it set.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub weights: PathBuf,
    pub applied: usize,
    /// Keys in the file that the model has no place for (HF names), excluding `ignorable` ones.
    pub unexpected: Vec<String>,
    /// The file had no `pooler.*`: the model has no pooler.
    pub no_pooler: bool,
}

/// Loads a BERT checkpoint (HF key names, with or without `bert.`, legacy `gamma`/`beta` too) into a
/// model built from `config`. Missing parameters and shape mismatches are errors naming the key; a
/// missing pooler leaves the model without one; unexpected keys are reported.
pub fn load<B: Backend>(
    path: &Path,
    config: &BertConfig,
    device: &B::Device,
) -> Result<(BertModel<B>, LoadReport)> {
    let weights = weights_path(path)?;
    let mut model = BertModel::<B>::new(config, device);
    let werr = |message: String| ModelError::Weights {
        path: weights.clone(),
        message,
    };
    let pickle = weights
        .extension()
        .is_some_and(|e| e == "bin" || e == "pt" || e == "pth");
    let applied = if pickle {
        let store = PytorchStore::from_file(&weights).remap(hf_to_burn());
        model
            .load_from(&mut store.allow_partial(true).validate(false))
            .map_err(|e| e.to_string())
    } else {
        let store = SafetensorsStore::from_file(&weights)
            .with_from_adapter(PyTorchToBurnAdapter)
            .remap(hf_to_burn());
        model
            .load_from(&mut store.allow_partial(true).validate(false))
            .map_err(|e| e.to_string())
    };
    let result: ApplyResult = applied.map_err(werr)?;
    if let Some(e) = result.errors.first() {
        let (key, message) = match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => (
                path,
                format!(
                    "shape {:?} in the file, the config wants {:?}",
                    found, expected
                ),
            ),
            ApplyError::DTypeMismatch {
                path,
                expected,
                found,
            } => (
                path,
                format!("dtype {found:?} in the file, expected {expected:?}"),
            ),
            ApplyError::AdapterError { path, message }
            | ApplyError::LoadError { path, message } => (path, message.clone()),
        };
        return Err(ModelError::Tensor {
            path: weights,
            key: hf_name(key.as_str(), config.model_type),
            message,
        });
    }
    let (pooler, missing): (Vec<&str>, Vec<&str>) = result
        .missing
        .iter()
        .map(|(p, _)| p.as_str())
        .partition(|p| p.starts_with("pooler."));
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|p| hf_name(p, config.model_type))
            .collect();
        return Err(werr(format!(
            "missing {} tensor(s) the config needs: {}",
            names.len(),
            names.join(", ")
        )));
    }
    let no_pooler = !pooler.is_empty();
    if no_pooler {
        model.pooler = None;
        tracing::info!(
            "{}: no pooler weights; the model has no pooler",
            weights.display()
        );
    }
    // burn-store lists a LayerNorm `weight`/`bias` as unused even when it was applied under its
    // alternative name `gamma`/`beta`: those were used.
    let applied_as = |k: &str| {
        let alt = k
            .strip_suffix(".weight")
            .map(|p| format!("{p}.gamma"))
            .or_else(|| k.strip_suffix(".bias").map(|p| format!("{p}.beta")));
        alt.is_some_and(|a| result.applied.contains(&a))
    };
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !ignorable(k) && !applied_as(k))
        .map(|k| hf_name(k, config.model_type))
        .collect();
    if !unexpected.is_empty() {
        tracing::warn!(
            "{}: {} unexpected tensor(s) ignored: {}",
            weights.display(),
            unexpected.len(),
            unexpected.join(", ")
        );
    }
    Ok((
        model,
        LoadReport {
            weights,
            applied: result.applied.len(),
            unexpected,
            no_pooler,
        },
    ))
}

/// Writes `model.safetensors` (HF `BertModel` key names, `format: pt` as `transformers` requires) and
/// `config.json` into `dir`, each atomically. Equal weights give byte-equal files: the header's
/// metadata is that one key (burn-store's defaults live in a `HashMap`, whose order changes from
/// run to run).
pub fn save<B: Backend>(model: &BertModel<B>, config: &BertConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(ModelError::io(dir))?;
    let target = dir.join("model.safetensors");
    let tmp = dir.join(".model.safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(burn_to_hf(config.model_type))
        .clear_metadata()
        .metadata("format", "pt");
    let saved = model
        .save_into(&mut store)
        .map_err(|e| ModelError::Weights {
            path: target.clone(),
            message: e.to_string(),
        });
    if let Err(e) = saved {
        let _ = std::fs::remove_file(&tmp); // a failed write leaves nothing behind
        return Err(e);
    }
    std::fs::rename(&tmp, &target).map_err(ModelError::io(&target))?;
    write_atomic(&dir.join("config.json"), &(config.to_json()? + "\n"))
}

/// The SHA-256 of a file, hex, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let (mut hasher, mut file) = (sha2::Sha256::new(), std::fs::File::open(path)?);
    let mut block = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut block)? {
            0 => return Ok(hex::encode(hasher.finalize())),
            n => hasher.update(&block[..n]),
        }
    }
}

/// Checks each file of `files` (name -> SHA-256, relative to `dir`): `Err` names the first missing
/// or changed one.
pub fn verify_files(
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<(), String> {
    for (name, want) in files {
        match sha256_file(&dir.join(name)) {
            Ok(got) if &got == want => {}
            Ok(got) => {
                return Err(format!(
                    "{name} is damaged (SHA-256 {got}, recorded {want})"
                ));
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    Ok(())
}

/// Writes `text` to a temp file beside `path`, then renames it into place.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    if let Err(e) = std::fs::write(&tmp, text) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(ModelError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remap(r: &KeyRemapper, key: &str) -> String {
        r.to_regex_pairs()
            .iter()
            .fold(key.to_string(), |k, (re, to)| {
                re.replace_all(&k, to.as_str()).into_owned()
            })
    }

    #[test]
    fn equal_weights_give_byte_equal_files() {
        type B = burn::backend::Flex;
        let config: BertConfig = serde_json::from_str(
            r#"{"vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 16}"#,
        )
        .unwrap();
        let model = BertModel::<B>::new(&config, &Default::default());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        save(&model, &config, a.path()).unwrap();
        save(&model, &config, b.path()).unwrap();
        for f in ["model.safetensors", "config.json"] {
            let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(f)).unwrap();
            assert!(read(&a) == read(&b), "{f} differs");
        }
    }

    #[test]
    fn key_names_map_both_ways() {
        let to = hf_to_burn();
        let k = "bert.encoder.layer.3.attention.self.query.weight";
        assert_eq!(
            remap(&to, k),
            "encoder.layer.3.attention.self_attention.query.weight"
        );
        for k in ["roberta.pooler.dense.bias", "electra.pooler.dense.bias"] {
            assert_eq!(remap(&to, k), "pooler.dense.bias");
        }
        assert_eq!(
            remap(&to, "embeddings.LayerNorm.gamma"),
            "embeddings.layer_norm.gamma"
        );
        assert_eq!(
            remap(
                &burn_to_hf(ModelType::Bert),
                "encoder.layer.0.output.layer_norm.weight"
            ),
            "encoder.layer.0.output.LayerNorm.weight"
        );
        assert_eq!(
            hf_name(
                "encoder.layer.1.attention.output.layer_norm.gamma",
                ModelType::Bert
            ),
            "encoder.layer.1.attention.output.LayerNorm.weight"
        );
        // DeBERTa-v2: `query_proj` both ways; its position projections keep their names.
        let k = "deberta.encoder.layer.0.attention.self.query_proj.weight";
        let ours = remap(&to, k);
        assert_eq!(
            ours,
            "encoder.layer.0.attention.self_attention.query.weight"
        );
        assert_eq!(
            remap(&burn_to_hf(ModelType::DebertaV2), &ours),
            "encoder.layer.0.attention.self.query_proj.weight"
        );
        assert_eq!(
            remap(
                &to,
                "deberta.encoder.layer.1.attention.self.pos_key_proj.bias"
            ),
            "encoder.layer.1.attention.self_attention.pos_key_proj.bias"
        );
        assert_eq!(
            remap(&to, "deberta.encoder.LayerNorm.weight"),
            "encoder.layer_norm.weight"
        );
    }
}
