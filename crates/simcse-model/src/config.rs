//! `BertConfig`: the Hugging Face `config.json` of a model of the BERT family (BERT, RoBERTa,
//! XLM-RoBERTa, ELECTRA, DeBERTa-v2/v3), its architecture named by `model_type`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The hidden activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU (erf), `transformers`' "gelu".
    Gelu,
    /// tanh-approximated GELU: "gelu_new", "gelu_pytorch_tanh", "gelu_fast".
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    Relu,
    /// DeBERTa-v2's `conv_act` default.
    Tanh,
}

fn gelu() -> Activation {
    Activation::Gelu
}
fn dropout() -> f64 {
    0.1
}
fn positions() -> usize {
    512
}
fn type_vocab() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn absolute() -> String {
    "absolute".into()
}

/// The architectures read, by `config.json`'s `model_type`. They share BERT's layers
/// (`crate::bert`), as in text-embeddings-inference; what differs lives in a file each:
/// `crate::roberta` (position ids, RoBERTa and XLM-RoBERTa alike), `crate::electra` (embeddings
/// smaller than the hidden size, projected up) and `crate::deberta` (disentangled relative
/// attention, DeBERTa-v2 and v3 alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ModelType {
    #[default]
    #[serde(rename = "bert")]
    Bert,
    #[serde(rename = "roberta")]
    Roberta,
    #[serde(rename = "xlm-roberta")]
    XlmRoberta,
    #[serde(rename = "electra")]
    Electra,
    #[serde(rename = "deberta-v2")]
    DebertaV2,
}

impl ModelType {
    pub const ALL: [ModelType; 5] = [
        ModelType::Bert,
        ModelType::Roberta,
        ModelType::XlmRoberta,
        ModelType::Electra,
        ModelType::DebertaV2,
    ];

    /// The `model_type` string of `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Bert => "bert",
            ModelType::Roberta => "roberta",
            ModelType::XlmRoberta => "xlm-roberta",
            ModelType::Electra => "electra",
            ModelType::DebertaV2 => "deberta-v2",
        }
    }

    /// The `transformers` class of the bare encoder, written to `architectures`.
    pub fn class(self) -> &'static str {
        match self {
            ModelType::Bert => "BertModel",
            ModelType::Roberta => "RobertaModel",
            ModelType::XlmRoberta => "XLMRobertaModel",
            ModelType::Electra => "ElectraModel",
            ModelType::DebertaV2 => "DebertaV2Model",
        }
    }

    /// The prefix of the encoder's weights in `*For*` checkpoints (`RobertaForMaskedLM`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            ModelType::Bert => "bert",
            ModelType::Roberta | ModelType::XlmRoberta => "roberta",
            ModelType::Electra => "electra",
            ModelType::DebertaV2 => "deberta",
        }
    }

    /// Position ids count from `padding_idx + 1` (`create_position_ids_from_input_ids`).
    pub fn offset_positions(self) -> bool {
        matches!(self, ModelType::Roberta | ModelType::XlmRoberta)
    }
}

/// `pos_att_type` as configs write it: a list (`["p2c", "c2p"]`) or older `"p2c|c2p"`; written back
/// as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PosAttType {
    List(Vec<String>),
    Joined(String),
}

impl PosAttType {
    /// The names, trimmed and lower-cased as `transformers` reads them.
    pub fn names(&self) -> Vec<String> {
        match self {
            PosAttType::List(v) => v.iter().map(|x| x.trim().to_lowercase()).collect(),
            PosAttType::Joined(s) => s.split('|').map(|x| x.trim().to_lowercase()).collect(),
        }
    }
}

/// DeBERTa-v2's `config.json` keys, `None` where absent (each with `transformers`' default in
/// `crate::deberta::Relative`'s reading of them); serialized only where present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DebertaKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_attention: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_positions: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_buckets: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_att_type: Option<PosAttType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_att_key: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_rel_ebd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_biased_input: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_kernel_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_groups: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_act: Option<Activation>,
}

/// The largest model a config may describe: 20 billion parameters (80 GB in f32), far above any BERT.
pub const MAX_PARAMETERS: usize = 20_000_000_000;

/// The keys of a Hugging Face BERT `config.json` this model uses, with `transformers`' defaults.
/// Keys it does not use are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// `bert` where a config has no `model_type` (older BERT checkpoints, KR-BERT's among them).
    #[serde(default)]
    pub model_type: ModelType,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: Activation,
    #[serde(default = "dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
    /// ELECTRA's embedding width, projected to `hidden_size` when it differs (read for ELECTRA
    /// only, as `transformers` does; its default there is 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
    /// DeBERTa-v2's keys (`crate::deberta`), absent for the other types.
    #[serde(flatten)]
    pub deberta: DebertaKeys,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing {
                what: "a Hugging Face config.json".into(),
                path: path.into(),
            },
            _ => ModelError::Io {
                path: path.into(),
                source,
            },
        })?;
        let config_error = |message: String| ModelError::Config {
            path: path.into(),
            message,
        };
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| config_error(e.to_string()))?;
        if let Some(t) = value.get("model_type") {
            let known = ModelType::ALL.iter().any(|m| t == m.name());
            if !known {
                let names: Vec<&str> = ModelType::ALL.iter().map(|m| m.name()).collect();
                return Err(config_error(format!(
                    "model_type {t} is not supported; supported: {}",
                    names.join(", ")
                )));
            }
        }
        if value["model_type"] == ModelType::DebertaV2.name()
            && let Some(keys) = value.as_object_mut()
        {
            // DeBERTa-v2's defaults where they differ from BERT's (`DebertaV2Config`).
            keys.entry("type_vocab_size").or_insert(0.into());
            keys.entry("layer_norm_eps").or_insert(1e-7.into());
        }
        let config: BertConfig =
            serde_json::from_value(value).map_err(|e| config_error(e.to_string()))?;
        config.check().map_err(|message| ModelError::Config {
            path: path.into(),
            message,
        })?;
        Ok(config)
    }

    /// The width of the embeddings: `embedding_size` for ELECTRA (default 128) and DeBERTa-v2
    /// (default `hidden_size`), else `hidden_size`.
    pub fn embedding_width(&self) -> usize {
        match self.model_type {
            ModelType::Electra => self.embedding_size.unwrap_or(128),
            ModelType::DebertaV2 => self.embedding_size.unwrap_or(self.hidden_size),
            _ => self.hidden_size,
        }
    }

    /// The most tokens a sequence may have: the position embeddings' rows, less RoBERTa's
    /// `padding_idx + 1` offset (512 of klue/roberta-base's 514).
    pub fn max_tokens(&self) -> usize {
        if self.model_type.offset_positions() {
            self.max_position_embeddings
                .saturating_sub(self.pad_token_id.saturating_add(1))
        } else {
            self.max_position_embeddings
        }
    }

    /// Parameters the config asks for (embeddings, layers, pooler), saturating.
    pub fn parameters(&self) -> usize {
        let h = self.hidden_size;
        let rows = self
            .vocab_size
            .saturating_add(self.max_position_embeddings)
            .saturating_add(self.type_vocab_size)
            .saturating_mul(self.embedding_width());
        let projection = match self.embedding_width() {
            e if e == h => 0,
            e => e.saturating_mul(h),
        };
        let layer = h
            .saturating_mul(h)
            .saturating_mul(4)
            .saturating_add(h.saturating_mul(self.intermediate_size).saturating_mul(2));
        let relative = match self.model_type {
            ModelType::DebertaV2 => crate::deberta::extra_parameters(self),
            _ => 0,
        };
        rows.saturating_add(projection)
            .saturating_add(relative)
            .saturating_add(layer.saturating_mul(self.num_hidden_layers))
            .saturating_add(h.saturating_mul(h))
    }

    fn check(&self) -> std::result::Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("embedding_size", self.embedding_width()),
        ];
        if let Some((key, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} is 0"));
        }
        // DeBERTa-v2 has no token type embeddings when it is 0 (kf-deberta, mDeBERTa-v3).
        if self.type_vocab_size == 0 && self.model_type != ModelType::DebertaV2 {
            return Err("type_vocab_size is 0".into());
        }
        // A size from a damaged or hostile file must be an error, not an allocation attempt.
        if self.parameters() > MAX_PARAMETERS {
            return Err(format!(
                "the sizes ask for {} parameters (vocab_size {}, hidden_size {}, {} layers, \
                 intermediate_size {}); more than {MAX_PARAMETERS} is refused as a damaged config",
                self.parameters(),
                self.vocab_size,
                self.hidden_size,
                self.num_hidden_layers,
                self.intermediate_size
            ));
        }
        if !(0.0..1.0).contains(&self.hidden_dropout_prob)
            || !(0.0..1.0).contains(&self.attention_probs_dropout_prob)
        {
            return Err("dropout probabilities must be in [0, 1)".into());
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(format!(
                "pad_token_id {} is outside the vocabulary of {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        if self.model_type == ModelType::DebertaV2 {
            crate::deberta::check(self)?;
        }
        if self.max_tokens() == 0 {
            return Err(format!(
                "max_position_embeddings {} leaves no position after the padding_idx {} offset",
                self.max_position_embeddings, self.pad_token_id
            ));
        }
        Ok(())
    }

    /// Writes the config as `transformers` expects it (`model_type` and `architectures`, e.g.
    /// `roberta` and `[RobertaModel]`).
    pub fn to_json(&self) -> Result<String> {
        let mut c = self.clone();
        c.extra.insert(
            "architectures".into(),
            serde_json::json!([self.model_type.class()]),
        );
        if c.model_type == ModelType::Electra {
            c.embedding_size = Some(self.embedding_width());
        }
        serde_json::to_string_pretty(&c)
            .map_err(|e| ModelError::Invalid(format!("config.json: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_and_keeps_unknown_keys() {
        let c: BertConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
                "intermediate_size":16,"hidden_act":"gelu_pytorch_tanh","_name_or_path":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.hidden_act, c.layer_norm_eps, c.max_position_embeddings),
            (Activation::GeluNew, 1e-12, 512)
        );
        let back: serde_json::Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
        assert_eq!(back["_name_or_path"], "x");
        assert_eq!(back["model_type"], "bert");
    }

    #[test]
    fn rejects_bad_head_count() {
        let dir = std::env::temp_dir().join(format!("simcse-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.json");
        std::fs::write(&p, r#"{"vocab_size":10,"hidden_size":10,"num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":16}"#).unwrap();
        let msg = BertConfig::from_file(&p).unwrap_err().to_string();
        assert!(
            msg.contains("config.json: hidden_size 10 is not a multiple of num_attention_heads 3"),
            "{msg}"
        );
    }

    #[test]
    fn absurd_sizes_are_errors_not_allocations() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let read = |json: &str| {
            std::fs::write(&p, json).unwrap();
            BertConfig::from_file(&p)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let base = r#""vocab_size":30522,"num_hidden_layers":12,"num_attention_heads":12,"intermediate_size":3072"#;
        assert!(read(&format!(r#"{{{base},"hidden_size":768}}"#)).is_ok());
        let err = read(&format!(r#"{{{base},"hidden_size":1000000008}}"#)).unwrap_err();
        assert!(
            err.contains("parameters") && err.contains("hidden_size 1000000008"),
            "{err}"
        );
        let err = read(&format!(r#"{{{base},"hidden_size":0}}"#)).unwrap_err();
        assert!(err.contains("hidden_size is 0"), "{err}");
        let huge = format!(
            r#"{{{base},"hidden_size":768,"max_position_embeddings":{}}}"#,
            usize::MAX
        );
        assert!(read(&huge).unwrap_err().contains("parameters"));
    }
}
