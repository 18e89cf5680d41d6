//! The sentence-transformers layout of a model folder, so that `SentenceTransformer(DIR)` loads
//! it and computes our embeddings: `modules.json`, `sentence_bert_config.json`,
//! `config_sentence_transformers.json`, `1_Pooling/config.json`, and for the `cls` pooler the MLP
//! as `2_Dense` (dense + tanh, sentence-transformers' `Dense` module).

use std::path::Path;

use safetensors::tensor::{SafeTensors, TensorView, serialize};
use serde_json::json;

use crate::checkpoint::write_atomic;
use crate::error::{ModelError, Result};
use crate::pooler::Pooler;

/// The files written, relative to the folder.
pub const FILES: [&str; 5] = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Dense/config.json",
];

/// What sentence-transformers' `Pooling` module does for `pooler`, and whether the `Dense` MLP
/// follows; an error saying why where sentence-transformers has no equivalent.
pub fn pooling_mode(pooler: Pooler) -> Result<(&'static str, bool)> {
    match pooler {
        Pooler::Cls => Ok(("cls", true)),
        Pooler::ClsBeforePooler => Ok(("cls", false)),
        Pooler::Avg => Ok(("mean", false)),
        Pooler::AvgTop2 | Pooler::AvgFirstLast => Err(ModelError::Invalid(format!(
            "the {} pooler has no sentence-transformers equivalent (it averages two layers' \
             hidden states; sentence-transformers' Pooling reads only the last): export with \
             --pooler cls, cls_before_pooler or avg",
            pooler.name()
        ))),
    }
}

/// Writes the sentence-transformers files into `dir`, a model folder with `model.safetensors` (the
/// `cls` pooler's MLP is read from it). `Err` names the pooler when it has no equivalent.
pub fn write(dir: &Path, pooler: Pooler, max_len: usize, hidden: usize) -> Result<()> {
    let (mode, dense) = pooling_mode(pooler)?;
    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    let pooling = json!({
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false,
        "pooling_mode_weightedmean_tokens": false,
        "pooling_mode_lasttoken": false,
        "include_prompt": true,
    });
    std::fs::create_dir_all(dir.join("1_Pooling")).map_err(ModelError::io(dir))?;
    write_json(&dir.join("1_Pooling/config.json"), &pooling)?;
    let dense_dir = dir.join("2_Dense");
    if dense {
        modules.push(json!({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}));
        std::fs::create_dir_all(&dense_dir).map_err(ModelError::io(&dense_dir))?;
        write_dense(&dir.join("model.safetensors"), &dense_dir)?;
        let config = json!({
            "in_features": hidden,
            "out_features": hidden,
            "bias": true,
            "activation_function": "torch.nn.modules.activation.Tanh",
        });
        write_json(&dense_dir.join("config.json"), &config)?;
    } else if dense_dir.exists() {
        // An earlier export with the `cls` pooler: modules.json no longer names it.
        std::fs::remove_dir_all(&dense_dir).map_err(ModelError::io(&dense_dir))?;
    }
    write_json(&dir.join("modules.json"), &json!(modules))?;
    write_json(
        &dir.join("sentence_bert_config.json"),
        &json!({"max_seq_length": max_len, "do_lower_case": false}),
    )?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &json!({"similarity_fn_name": "cosine", "prompts": {}, "default_prompt_name": null}),
    )
}

/// `pooler.dense.{weight,bias}` of the checkpoint as `Dense`'s `linear.{weight,bias}` (both are
/// `torch.nn.Linear`, so the layout is the same).
fn write_dense(weights: &Path, dense_dir: &Path) -> Result<()> {
    let bytes = std::fs::read(weights).map_err(ModelError::io(weights))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Weights {
        path: weights.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut tensors = Vec::new();
    for (from, to) in [
        ("pooler.dense.weight", "linear.weight"),
        ("pooler.dense.bias", "linear.bias"),
    ] {
        let t = st.tensor(from).map_err(|e| ModelError::Tensor {
            path: weights.to_path_buf(),
            key: from.into(),
            message: format!("{e}: the cls pooler needs the checkpoint's pooler MLP"),
        })?;
        tensors.push((to, t));
    }
    let views: Vec<(&str, TensorView<'_>)> = tensors;
    let out = dense_dir.join("model.safetensors");
    let data = serialize(views, None).map_err(|e| ModelError::Weights {
        path: out.clone(),
        message: e.to_string(),
    })?;
    let tmp = dense_dir.join(".model.safetensors.tmp");
    std::fs::write(&tmp, data).map_err(ModelError::io(&tmp))?;
    std::fs::rename(&tmp, &out).map_err(ModelError::io(&out))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &(text + "\n"))
}

#[cfg(test)]
mod tests {
    //! The files' contents (the Python parity check is scripts/check_st_export.py).

    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::export;
    use crate::model_dir::{ModelDir, SimcseSettings, save};
    use crate::pooler::Pooler;

    type B = burn::backend::Flex;

    fn json(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn saved(pooler: Pooler, out: &Path) {
        let src = tempfile::tempdir().unwrap();
        simcse_testkit::tiny_init(src.path(), &["가나다라".to_string()]);
        let dir = ModelDir::open(src.path()).unwrap();
        let model = dir.load::<B>(&Default::default()).unwrap();
        let settings = SimcseSettings {
            pooler,
            max_len: Some(32),
            files: BTreeMap::new(),
            extra: Default::default(),
        };
        save(&model, &dir.config, src.path(), &settings, out).unwrap();
    }

    #[test]
    fn a_saved_folder_carries_the_sentence_transformers_modules_of_its_pooler() {
        let out = tempfile::tempdir().unwrap();
        let o = out.path();
        saved(Pooler::Cls, o);
        let modules = json(&o.join("modules.json"));
        let types: Vec<&str> = modules
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "sentence_transformers.models.Transformer",
                "sentence_transformers.models.Pooling",
                "sentence_transformers.models.Dense"
            ]
        );
        assert_eq!(modules[2]["path"], "2_Dense");
        assert_eq!(
            json(&o.join("sentence_bert_config.json"))["max_seq_length"],
            32
        );
        let pooling = json(&o.join("1_Pooling/config.json"));
        let hidden = json(&o.join("config.json"))["hidden_size"].clone();
        assert_eq!(pooling["word_embedding_dimension"], hidden);
        assert_eq!(
            (
                pooling["pooling_mode_cls_token"].as_bool(),
                pooling["pooling_mode_mean_tokens"].as_bool()
            ),
            (Some(true), Some(false))
        );
        let dense = json(&o.join("2_Dense/config.json"));
        assert_eq!(
            dense["activation_function"],
            "torch.nn.modules.activation.Tanh"
        );
        assert_eq!(
            (dense["in_features"].clone(), dense["bias"].as_bool()),
            (hidden, Some(true))
        );
        // The Dense weights are the checkpoint's pooler MLP, in torch.nn.Linear's layout.
        let model = simcse_testkit::read_tensors(&o.join("model.safetensors"));
        let mlp = simcse_testkit::read_tensors(&o.join("2_Dense/model.safetensors"));
        assert_eq!(mlp["linear.weight"], model["pooler.dense.weight"]);
        assert_eq!(mlp["linear.bias"], model["pooler.dense.bias"]);

        // Saved again with the mean pooler: no Dense module any more.
        saved(Pooler::Avg, o);
        assert_eq!(json(&o.join("modules.json")).as_array().unwrap().len(), 2);
        assert!(!o.join("2_Dense").exists());
        assert_eq!(
            json(&o.join("1_Pooling/config.json"))["pooling_mode_mean_tokens"],
            true
        );

        // Poolers without an equivalent say so.
        for p in [Pooler::AvgTop2, Pooler::AvgFirstLast] {
            let err = export::write(o, p, 32, 8).unwrap_err().to_string();
            assert!(err.contains("no sentence-transformers equivalent"), "{err}");
        }
    }
}
