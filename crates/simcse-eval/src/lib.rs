//! The evaluation stage: any BERT model folder in the Hugging Face layout against the Korean STS sets,
//! with a report people can read (`eval.md`), the numbers machines can read (`eval.json`) and plots.

pub mod error;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod run;
pub mod sts;

pub use error::{EvalError, Result};
pub use run::{EvalOptions, ModelSpec, evaluate};
pub use sts::{SetResult, StsScore, evaluate_set, score_pairs};
