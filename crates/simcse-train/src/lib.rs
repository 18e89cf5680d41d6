//! The training stage: a Hugging Face BERT checkpoint and a prepared corpus in, a SimCSE sentence
//! encoder out (`runs/<name>/model/`, Hugging Face layout), checked on KorSTS dev while it trains.

pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod data;
#[cfg(debug_assertions)]
#[doc(hidden)]
pub mod instances;
pub mod parallel;
pub mod run_dir;
pub mod schedule;
pub mod trainer;

pub use config::{Mode, TrainConfig};
pub use trainer::{StepOutput, TrainError, Trainer};
