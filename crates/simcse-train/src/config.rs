//! `TrainConfig`: every setting of a run, read from a TOML file (configs/*.toml) with keys
//! overridden by typed values (the binary's command-line options).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use simcse_model::{Pooler, Precision};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each sentence twice through dropout; the other view is the positive.
    Unsup,
    /// (anchor, entailment, contradiction) triples: entailment positive, contradiction hard negative.
    Sup,
    /// Scored sentence pairs (KorSTS train): a regression on the pair's cosine (`sts_loss`).
    Sts,
}

impl Mode {
    /// Sentences an example puts into a batch: two dropout views of one sentence (unsup), or
    /// anchor, positive and hard negative (sup), the two sentences of a pair (sts).
    pub fn views(self) -> usize {
        match self {
            Mode::Unsup | Mode::Sts => 2,
            Mode::Sup => 3,
        }
    }
}

/// The loss of the `sts` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "clap", value(rename_all = "snake_case"))]
#[serde(rename_all = "snake_case")]
pub enum StsLoss {
    /// CoSENT (Su 2022; sentence-transformers' `CoSENTLoss`): every pair scored higher than another
    /// must get the higher cosine; only the order of the scores matters.
    Cosent,
    /// Sentence-BERT's `CosineSimilarityLoss`: mean squared error of the cosine against
    /// `score / max_score`.
    CosineMse,
}

/// Where the pooler MLP (SimCSE's `mlp`, BERT's `pooler`) starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum MlpInit {
    /// The checkpoint's pooler weights (a fresh MLP if it has none).
    Checkpoint,
    /// Freshly initialised, as SimCSE's own `MLPLayer`.
    Fresh,
}

/// Every setting of a run. Defaults are the official SimCSE supervised settings for one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub mode: Mode,
    /// A Hugging Face model folder (config.json, weights, vocab.txt or tokenizer.json).
    pub init: PathBuf,
    /// The corpus: `kornli_triples.parquet` (sup), `wiki_sentences.parquet` (unsup) or
    /// `sts/korsts_train.parquet` (sts). Empty: the prepare stage's default path for the mode.
    pub train_file: PathBuf,
    /// More files of the same kind, trained on together with `train_file` (e.g. KLUE STS train
    /// next to KorSTS train in the `sts` mode).
    pub extra_train_files: Vec<PathBuf>,
    /// STS set for the periodic evaluation (Spearman picks the best model). Empty: no evaluation
    /// during training, and the last model is exported.
    pub dev_file: PathBuf,
    /// Run folder: `model/` (best), `metrics.jsonl`, `config.toml`.
    pub out: PathBuf,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub max_len: usize,
    pub epochs: usize,
    /// Stop after this many updates (0: run all epochs).
    pub max_steps: usize,
    pub warmup_ratio: f64,
    pub temperature: f64,
    /// Log-weight added to each row's own hard negative (sup); 0 leaves it unweighted.
    pub hard_negative_weight: f64,
    /// Pooler used for the training objective.
    pub pooler: Pooler,
    /// Use the MLP only in training; evaluate and export `cls_before_pooler` (unsup SimCSE).
    pub mlp_only_train: bool,
    pub mlp_init: MlpInit,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    /// Global gradient-norm clipping (0: off). `transformers.Trainer`'s default is 1.0.
    pub max_grad_norm: f64,
    /// Evaluate on `dev_file` every N updates (0: only at the end).
    pub eval_steps: usize,
    pub log_steps: usize,
    pub seed: u64,
    /// Drop the last partial batch of an epoch (else it is trained on as a smaller batch).
    pub drop_last: bool,
    /// Overrides the checkpoint's hidden and attention dropout (unset: keep the checkpoint's).
    pub dropout: Option<f64>,
    /// Batches tokenized ahead of the training step on another thread.
    pub prefetch: usize,
    /// Maximum tokens per sentence when evaluating (sentences are not cut to the training length).
    pub eval_max_len: usize,
    /// Write a resumable checkpoint every N updates (0: only at the end).
    pub save_steps: usize,
    /// Keep the newest N checkpoints (0: keep all).
    pub save_total_limit: usize,
    /// Add SimCSE's masked-language-model auxiliary loss (a fresh, untied MLM head; training only).
    pub do_mlm: bool,
    /// Weight of the MLM loss in the total (official default 0.1).
    pub mlm_weight: f64,
    /// Share of tokens masked for the MLM loss (official default 0.15; 80/10/10 as BERT).
    pub mlm_probability: f64,
    /// The `sts` mode's loss.
    pub sts_loss: StsLoss,
    /// CoSENT's scale (the inverse temperature of its cosines; sentence-transformers' default 20).
    pub cosent_scale: f64,
    /// The gold score that means "the same meaning": `cosine_mse` regresses on `score / max_score`
    /// (5 for KorSTS and KLUE STS).
    pub max_score: f64,
    /// Never put one sentence twice in a batch (where it would be its own false negative), as
    /// sentence-transformers' `NoDuplicatesBatchSampler`: an example that repeats a sentence of
    /// the batch waits for a later batch. Unset: on for `sup` and `sts`, off for `unsup` (whose
    /// corpus is deduplicated).
    pub no_duplicates: Option<bool>,
    /// GradCache (Gao et al. 2021): embed a batch `mini_batch_size` sentences at a time without
    /// keeping their graphs, take the loss's gradient for the embeddings, then re-run each chunk
    /// with the same dropout and backpropagate it. The update is the whole batch's (all its
    /// in-batch negatives) on the memory of one chunk, for about 1.3x the compute. 0: off.
    pub mini_batch_size: usize,
    /// The encoder's matrix products in training: f32, or bf16 with everything else in f32
    /// (`simcse_model::precision`; for CUDA, whose tensor cores run bf16 products far faster).
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            mode: Mode::Sup,
            init: PathBuf::new(),
            train_file: PathBuf::new(),
            extra_train_files: Vec::new(),
            dev_file: PathBuf::from("data/processed/sts/korsts_dev.parquet"),
            out: PathBuf::from("runs/sup"),
            batch_size: 128,
            learning_rate: 5e-5,
            max_len: 32,
            epochs: 3,
            max_steps: 0,
            warmup_ratio: 0.0,
            temperature: 0.05,
            hard_negative_weight: 0.0,
            pooler: Pooler::Cls,
            mlp_only_train: false,
            mlp_init: MlpInit::Fresh,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            eval_steps: 125,
            log_steps: 10,
            seed: 42,
            drop_last: false,
            dropout: None,
            prefetch: 4,
            eval_max_len: 128,
            save_steps: 500,
            save_total_limit: 2,
            do_mlm: false,
            mlm_weight: 0.1,
            mlm_probability: 0.15,
            sts_loss: StsLoss::Cosent,
            cosent_scale: 20.0,
            max_score: 5.0,
            no_duplicates: None,
            mini_batch_size: 0,
            precision: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// Whether a checkpoint made under `self` can be resumed under `other`: everything that decides
    /// the updates must be equal; logging, evaluation, checkpointing and the run folder may differ.
    pub fn same_run(&self, other: &TrainConfig) -> bool {
        self.same_run_key() == other.same_run_key()
    }

    /// This config less the keys that do not change the weights (where it writes, how often it
    /// logs, evaluates and saves).
    pub(crate) fn same_run_key(&self) -> TrainConfig {
        TrainConfig {
            out: PathBuf::new(),
            eval_steps: 0,
            log_steps: 0,
            prefetch: 0,
            save_steps: 0,
            save_total_limit: 0,
            ..self.clone()
        }
    }

    /// Reads a TOML config (`None`: the defaults), then sets the keys of `overrides` (values of
    /// the keys' own types, e.g. the command line's typed options serialised).
    pub fn load(file: Option<&Path>, overrides: toml::Table) -> Result<Self, ConfigError> {
        let name = file.map_or_else(|| "the command line".into(), |f| f.display().to_string());
        let error = |message: String| ConfigError {
            file: name.clone(),
            message,
        };
        let mut table: toml::Table = match file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| error(e.to_string()))?
                .parse()
                .map_err(|e: toml::de::Error| error(e.to_string()))?,
            None => toml::Table::new(),
        };
        table.extend(overrides);
        let config: TrainConfig = table.try_into().map_err(|e| error(e.to_string()))?;
        Ok(config.with_default_paths())
    }

    fn with_default_paths(mut self) -> Self {
        if self.train_file.as_os_str().is_empty() {
            self.train_file = PathBuf::from(match self.mode {
                Mode::Sup => "data/processed/kornli_triples.parquet",
                Mode::Unsup => "data/processed/wiki_sentences.parquet",
                Mode::Sts => "data/processed/sts/korsts_train.parquet",
            });
        }
        self
    }

    /// Whether batches keep duplicates apart (`no_duplicates`, or the mode's default).
    pub fn no_duplicates(&self) -> bool {
        self.no_duplicates.unwrap_or(self.mode != Mode::Unsup)
    }

    /// The pooler of evaluation and of the exported model.
    pub fn eval_pooler(&self) -> Pooler {
        if self.mlp_only_train && self.pooler == Pooler::Cls {
            Pooler::ClsBeforePooler
        } else {
            self.pooler
        }
    }
}

/// A config file that does not parse, or a key with a value of the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("config {file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_typed_and_unknown_keys_are_errors() {
        let overrides: toml::Table = toml::toml! {
            mode = "unsup"
            batch_size = 64
            learning_rate = 3e-5
            init = "/models/kr-bert"
            pooler = "avg"
        };
        let c = TrainConfig::load(None, overrides).unwrap();
        assert_eq!(
            (c.mode, c.batch_size, c.learning_rate, c.pooler),
            (Mode::Unsup, 64, 3e-5, Pooler::Avg)
        );
        assert_eq!(c.init, PathBuf::from("/models/kr-bert"));
        assert_eq!(
            c.train_file,
            PathBuf::from("data/processed/wiki_sentences.parquet")
        );
        let err = TrainConfig::load(None, toml::toml! { batch_sise = 1 })
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_sise"), "{err}");
        let err = TrainConfig::load(None, toml::toml! { batch_size = "many" })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("batch_size") || err.contains("integer"),
            "{err}"
        );
    }

    /// Every shipped recipe reads as a config (a renamed key would otherwise surface only when a
    /// user starts that run).
    #[test]
    fn every_shipped_config_loads() {
        let configs = simcse_testkit::repo().join("configs");
        let mut n = 0;
        for e in std::fs::read_dir(&configs).unwrap() {
            let path = e.unwrap().path();
            if let Err(e) = TrainConfig::load(Some(&path), toml::Table::new()) {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
        assert!(n >= 8, "{n} configs");
    }

    /// Mutated copies of every shipped config (and a checkpoint's `state.json`) are read without a
    /// panic: an error names the file, or the result is a config.
    #[test]
    fn config_and_state_readers_never_panic() {
        let configs = simcse_testkit::repo().join("configs");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(&configs)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        simcse_testkit::fuzz("toml-config", &seeds, |b| {
            std::fs::write(&path, b).unwrap();
            if let Err(e) = TrainConfig::load(Some(&path), toml::Table::new()) {
                assert!(e.to_string().contains("c.toml"), "{e}");
            }
        });
        let state = crate::checkpoint::State {
            step: 4,
            evals: vec![],
            best: None,
            config: TrainConfig::default(),
            devices: 1,
            files: [("model.bin".to_string(), "00".repeat(32))].into(),
        };
        let seed = serde_json::to_vec_pretty(&state).unwrap();
        simcse_testkit::fuzz("state-json", &[seed], |b| {
            std::fs::write(dir.path().join("state.json"), b).unwrap();
            // There is no model.bin here: only a state that no longer lists it can pass.
            if let Ok(state) = crate::checkpoint::verify(dir.path()) {
                assert!(!state.files.contains_key("model.bin"));
            }
        });
    }
}
