//! The sentence-transformers files of a saved model folder (their contents; the Python parity
//! check is scripts/check_st_export.py).

use std::collections::BTreeMap;
use std::path::Path;

use simcse_model::model_dir::{SimcseSettings, save};
use simcse_model::{ModelDir, Pooler, export};

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
