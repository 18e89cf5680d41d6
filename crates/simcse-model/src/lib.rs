//! The model everything else stands on: an encoder in burn that computes what `transformers`'
//! `BertModel`, `RobertaModel`, `XLMRobertaModel`, `ElectraModel` and `DebertaV2Model` compute from
//! the same Hugging Face checkpoint (`model_type` in its config.json), its tokenizer, the SimCSE
//! poolers, and an `encode` API.
//!
//! Generic over burn backends. The CPU backend is burn-flex (see `backend`), CUDA is behind the
//! `cuda` feature.

pub mod backend;
pub mod bert;
pub mod checkpoint;
pub mod config;
pub mod deberta;
pub mod electra;
pub mod encode;
pub mod error;
pub mod export;
#[cfg(debug_assertions)]
#[doc(hidden)]
pub mod instances;
pub mod loss;
pub mod mlm;
pub mod model_dir;
pub mod pooler;
pub mod precision;
pub mod rng;
pub mod roberta;
pub mod tokenizer;
pub mod train_mode;

pub use bert::BertModel;
pub use config::{BertConfig, ModelType};
pub use encode::Encoder;
pub use error::{ModelError, Result};
pub use model_dir::ModelDir;
pub use pooler::Pooler;
pub use precision::Precision;
pub use tokenizer::Tokenizer;
