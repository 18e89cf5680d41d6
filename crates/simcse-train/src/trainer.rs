//! The training loop: SimCSE objective, AdamW with warmup + linear decay and global-norm clipping,
//! periodic dev evaluation through `simcse-eval`, the best model exported in the Hugging Face layout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use simcse_data::sts::StsPair;
use simcse_eval::StsScore;
use simcse_model::bert::{BertModel, BertPooler};
use simcse_model::encode::to_input;
use simcse_model::loss::simcse_loss;
use simcse_model::mlm::{LmHead, MaskingRule, mlm_loss};
use simcse_model::{BertConfig, Encoder, Tokenizer, checkpoint};

use crate::checkpoint::{self as run_checkpoint, State};
use crate::clip::clip_global_norm;
use crate::config::{MlpInit, Mode, TrainConfig};
use crate::data::{self, TrainBatch};
use crate::schedule::{learning_rate, warmup_steps};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] simcse_model::ModelError),
    #[error(transparent)]
    Data(#[from] simcse_data::DataError),
    #[error(transparent)]
    Eval(#[from] simcse_eval::EvalError),
    #[error(
        "the loss became {loss} at update {step}: training stopped (the best model so far is kept in {best})"
    )]
    NonFinite {
        step: usize,
        loss: f32,
        best: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("checkpoint {0}")]
    Checkpoint(String),
}

impl TrainError {
    /// Wraps an I/O error with the path it concerns (as `simcse_data::DataError::io`).
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub updates: usize,
    pub losses: Vec<f32>,
    pub evals: Vec<(usize, StsScore)>,
    pub best: Option<(usize, StsScore)>,
    pub seconds: f64,
    pub sentences_per_second: f64,
}

/// Everything the optimizer updates: the encoder (with its pooler MLP) and, with `do_mlm`, the MLM
/// head. Checkpoints save this; the exported model is `bert` alone.
#[derive(Module, Debug)]
pub struct Trainable<B: Backend> {
    pub bert: BertModel<B>,
    pub lm_head: Option<LmHead<B>>,
}

/// The loss of one batch: the total that is minimised and the MLM part of it (`do_mlm`).
pub struct BatchLoss<B: Backend> {
    pub total: Tensor<B, 1>,
    pub mlm: Option<Tensor<B, 1>>,
}

pub struct Trainer<B: AutodiffBackend> {
    pub model: BertModel<B>,
    /// The MLM head (`do_mlm`), trained with the model, never exported.
    pub lm_head: Option<LmHead<B>>,
    /// How the MLM loss masks a batch (`do_mlm`).
    masking: Option<MaskingRule>,
    pub bert_config: BertConfig,
    pub tokenizer: Tokenizer,
    pub config: TrainConfig,
    optim: OptimizerAdaptor<AdamW, Trainable<B>, B>,
    /// The MLM loss of the last update.
    pub last_mlm_loss: Option<f32>,
    device: B::Device,
    /// Updates done so far.
    pub step: usize,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Loads `config.init` (config.json with the dropout override, weights, tokenizer) and sets up the
    /// pooler MLP and the optimizer.
    pub fn new(config: TrainConfig, device: &B::Device) -> Result<Self> {
        let mut bert_config = BertConfig::from_file(&config.init.join("config.json"))?;
        if let Some(p) = config.dropout {
            bert_config.hidden_dropout_prob = p;
            bert_config.attention_probs_dropout_prob = p;
        }
        let tokenizer = Tokenizer::from_dir(&config.init)?;
        let (model, _) = checkpoint::load::<B>(&config.init, &bert_config, device)?;
        Self::from_parts(model, bert_config, tokenizer, config, device)
    }

    /// A trainer around a model in memory.
    pub fn from_parts(
        mut model: BertModel<B>,
        bert_config: BertConfig,
        tokenizer: Tokenizer,
        config: TrainConfig,
        device: &B::Device,
    ) -> Result<Self> {
        if config.pooler == simcse_model::Pooler::Cls
            && (config.mlp_init == MlpInit::Fresh || model.pooler.is_none())
        {
            model.pooler = Some(BertPooler::new(bert_config.hidden_size, device));
        }
        let optim = fresh_optimizer(&config);
        let (lm_head, masking) = if config.do_mlm {
            (
                Some(LmHead::new(&bert_config, device)),
                Some(MaskingRule::for_tokenizer(
                    &tokenizer,
                    config.mlm_probability,
                )?),
            )
        } else {
            (None, None)
        };
        Ok(Trainer {
            model,
            lm_head,
            masking,
            last_mlm_loss: None,
            bert_config,
            tokenizer,
            config,
            optim,
            device: device.clone(),
            step: 0,
        })
    }

    /// The SimCSE loss of one batch under the current weights (dropout as the backend makes it).
    pub fn loss(&self, batch: &TrainBatch) -> Result<Tensor<B, 1>> {
        Ok(self.losses(batch, 0)?.total)
    }

    /// The SimCSE loss plus, with `do_mlm`, `mlm_weight` times the MLM loss of a second forward
    /// pass over the batch masked as the official collator masks it (seeded by `mask_seed`).
    pub fn losses(&self, batch: &TrainBatch, mask_seed: u64) -> Result<BatchLoss<B>> {
        let cl = self.contrastive_loss(batch)?;
        let (Some(head), Some(rule)) = (&self.lm_head, &self.masking) else {
            return Ok(BatchLoss {
                total: cl,
                mlm: None,
            });
        };
        let masked = rule.apply(&batch.tokens, mask_seed);
        let mut tokens = batch.tokens.clone();
        tokens.input_ids = masked.input_ids.clone();
        let hidden = self.model.forward(to_input::<B>(&tokens, &self.device));
        let last = hidden
            .into_iter()
            .last()
            .ok_or_else(|| TrainError::Config("the model has no hidden states".into()))?;
        let mlm = mlm_loss(head, last, &masked);
        let total = match &mlm {
            Some(m) => cl + m.clone().mul_scalar(self.config.mlm_weight),
            None => cl,
        };
        Ok(BatchLoss { total, mlm })
    }

    fn contrastive_loss(&self, batch: &TrainBatch) -> Result<Tensor<B, 1>> {
        let input = to_input::<B>(&batch.tokens, &self.device);
        let mask = input.attention_mask.clone();
        let hidden = self.config.pooler.hidden(&self.model, input);
        let pooled = self.config.pooler.pool(&self.model, &hidden, mask)?;
        let n = batch.examples;
        let h = pooled.dims()[1];
        let part = |k: usize| pooled.clone().slice([k * n..(k + 1) * n, 0..h]);
        let z3 = (self.config.mode == Mode::Sup).then(|| part(2));
        Ok(simcse_loss(
            part(0),
            part(1),
            z3,
            self.config.temperature,
            self.config.hard_negative_weight,
        ))
    }

    /// One update at learning rate `lr`; returns the loss before the update. Dropout is seeded from
    /// (seed, update), so a run is reproducible update by update.
    pub fn step(&mut self, batch: &TrainBatch, lr: f64) -> Result<f32> {
        let seed = self
            .config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(self.step as u64);
        B::seed(&self.device, seed);
        let BatchLoss { total: loss, mlm } = self.losses(batch, seed)?;
        self.last_mlm_loss = mlm.map(|m| m.into_scalar().elem());
        let value: f32 = loss.clone().into_scalar().elem();
        if !value.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                loss: value,
                best: self.config.out.join("model").display().to_string(),
            });
        }
        let trainable = self.trainable();
        let mut grads = GradientsParams::from_grads(loss.backward(), &trainable);
        if self.config.max_grad_norm > 0.0 {
            clip_global_norm(&trainable, &mut grads, self.config.max_grad_norm);
        }
        let Trainable { bert, lm_head } = self.optim.step(lr, trainable, grads);
        self.model = bert;
        self.lm_head = lm_head;
        self.step += 1;
        Ok(value)
    }

    fn trainable(&self) -> Trainable<B> {
        Trainable {
            bert: self.model.clone(),
            lm_head: self.lm_head.clone(),
        }
    }

    /// KorSTS-style score of the current model on `pairs`, with the evaluation pooler.
    pub fn evaluate(&self, pairs: &[StsPair]) -> Result<StsScore> {
        let enc = Encoder::new(
            self.model.valid(),
            self.bert_config.clone(),
            self.tokenizer.clone(),
            self.config.eval_pooler(),
            self.config.eval_max_len,
            &self.device,
        );
        Ok(simcse_eval::score_pairs(&enc, pairs)?)
    }

    /// Writes the model in the Hugging Face layout, the tokenizer files of `init`, and `simcse.json`.
    pub fn export(&self, dir: &Path) -> Result<()> {
        checkpoint::save(&self.model.valid(), &self.bert_config, dir)?;
        for f in [
            "vocab.txt",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ] {
            let src = self.config.init.join(f);
            if src.is_file() {
                std::fs::copy(&src, dir.join(f)).map_err(TrainError::io(&src))?;
            }
        }
        let settings = serde_json::json!({
            "pooler": self.config.eval_pooler(),
            "max_len": self.config.eval_max_len,
            "temperature": self.config.temperature,
            "mode": self.config.mode,
            "trained_with": format!("simcse-train {}", env!("CARGO_PKG_VERSION")),
        });
        let path = dir.join("simcse.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&settings).unwrap_or_default() + "\n",
        )
        .map_err(TrainError::io(path))
    }

    /// Loads a checkpoint written by [`Trainer::fit`]: weights, optimizer state and position. Refuses
    /// one made under a different training configuration.
    pub fn restore(&mut self, ckpt: &Path) -> Result<State> {
        let (trainable, optim, state) = run_checkpoint::load(
            ckpt,
            self.trainable(),
            std::mem::replace(&mut self.optim, fresh_optimizer(&self.config)),
            &self.device,
        )?;
        if !state.config.same_run(&self.config) {
            return Err(TrainError::Checkpoint(format!(
                "{}: made with another configuration (see its state.json); resume with the same \
                 settings, or start a new run folder",
                ckpt.display()
            )));
        }
        self.model = trainable.bert;
        self.lm_head = trainable.lm_head;
        self.optim = optim;
        self.step = state.step;
        Ok(state)
    }

    fn save_checkpoint(&self, summary: &Summary) -> Result<()> {
        let state = State {
            step: self.step,
            evals: summary.evals.clone(),
            best: summary.best,
            config: self.config.clone(),
        };
        let dir = run_checkpoint::save(
            &self.config.out,
            &self.trainable(),
            &self.optim,
            &state,
            self.config.save_total_limit,
        )?;
        tracing::info!("checkpoint {}", dir.display());
        Ok(())
    }

    /// The whole run from the start: see [`Trainer::fit_from`].
    pub fn fit(&mut self) -> Result<Summary> {
        self.fit_from(None)
    }

    /// The whole run: epochs (or `max_steps`) over the corpus, logging to `<out>/metrics.jsonl`,
    /// evaluating on `dev_file` every `eval_steps` and at the end, keeping the best model in
    /// `<out>/model`, and a checkpoint every `save_steps` and at the end. With `resume`, it first
    /// loads that checkpoint and continues exactly where it stopped: the same batches, dropout masks
    /// and learning rates, so on CPU the result equals an uninterrupted run's.
    pub fn fit_from(&mut self, resume: Option<&Path>) -> Result<Summary> {
        let c = self.config.clone();
        let examples = Arc::new(data::load(&c)?);
        if examples.is_empty() {
            return Err(TrainError::Config(format!(
                "{}: no training examples",
                c.train_file.display()
            )));
        }
        // No dev set: nothing is evaluated during training and the last model is exported.
        let dev = if c.dev_file.as_os_str().is_empty() {
            None
        } else {
            Some(simcse_data::artifact::read_sts(&c.dev_file)?)
        };
        let per_epoch = data::epoch_batches(examples.len(), &c, 0).len();
        let total = if c.max_steps > 0 {
            c.max_steps
        } else {
            per_epoch * c.epochs
        };
        let warmup = warmup_steps(c.warmup_ratio, total);
        std::fs::create_dir_all(&c.out).map_err(TrainError::io(&c.out))?;
        let mut summary = Summary {
            updates: 0,
            losses: vec![],
            evals: vec![],
            best: None,
            seconds: 0.0,
            sentences_per_second: 0.0,
        };
        let metrics_path = c.out.join("metrics.jsonl");
        let mut kept_metrics = String::new();
        if let Some(ckpt) = resume {
            let state = self.restore(ckpt)?;
            summary.evals = state.evals;
            summary.best = state.best;
            // Lines logged after the checkpoint are logged again by the resumed run.
            let old = std::fs::read_to_string(&metrics_path).unwrap_or_default();
            for line in old.lines() {
                let step = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["step"].as_u64());
                if step.is_some_and(|s| s as usize <= self.step) {
                    kept_metrics += line;
                    kept_metrics.push('\n');
                }
            }
            tracing::info!("resuming {} at update {}", ckpt.display(), self.step);
        }
        std::fs::write(
            c.out.join("config.toml"),
            toml::to_string(&c).unwrap_or_default(),
        )
        .map_err(TrainError::io(c.out.join("config.toml")))?;
        std::fs::write(&metrics_path, kept_metrics).map_err(TrainError::io(&metrics_path))?;
        let mut metrics = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(TrainError::io(&metrics_path))?;
        let mut log = |v: serde_json::Value| {
            let _ = writeln!(metrics, "{v}");
        };
        tracing::info!(
            "{} examples, {per_epoch} batches per epoch, {total} updates ({warmup} warmup)",
            examples.len()
        );
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} updates {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let start = Instant::now();
        let mut sentences = 0usize;
        let eval = |t: &Self,
                    summary: &mut Summary,
                    log: &mut dyn FnMut(serde_json::Value)|
         -> Result<()> {
            let Some(dev) = &dev else {
                return t.export(&c.out.join("model"));
            };
            let score = t.evaluate(dev)?;
            log(
                serde_json::json!({"step": t.step, "eval": {"set": c.dev_file, "spearman": score.spearman, "pearson": score.pearson}}),
            );
            tracing::info!(
                "update {}: dev Spearman {:.2} Pearson {:.2}",
                t.step,
                score.spearman,
                score.pearson
            );
            summary.evals.push((t.step, score));
            if summary
                .best
                .is_none_or(|(_, b)| score.spearman > b.spearman)
            {
                summary.best = Some((t.step, score));
                t.export(&c.out.join("model"))?;
            }
            Ok(())
        };
        let first_epoch = self.step / per_epoch.max(1);
        'epochs: for epoch in first_epoch.. {
            let mut batches = data::epoch_batches(examples.len(), &c, epoch);
            if epoch == first_epoch {
                batches.drain(..(self.step % per_epoch.max(1)).min(batches.len()));
            }
            let rx = data::prefetch(
                examples.clone(),
                batches,
                self.tokenizer.clone(),
                c.mode,
                c.max_len,
                c.prefetch,
            );
            for batch in rx {
                if self.step >= total {
                    break 'epochs;
                }
                let batch = batch?;
                let lr = learning_rate(c.learning_rate, self.step, warmup, total);
                let t0 = Instant::now();
                let loss = self.step(&batch, lr)?;
                sentences += batch.examples * c.sentences_per_example();
                summary.losses.push(loss);
                let rate = batch.examples as f64 / t0.elapsed().as_secs_f64();
                if self.step.is_multiple_of(c.log_steps.max(1)) || self.step == total {
                    let mut line = serde_json::json!({"step": self.step, "epoch": epoch, "loss": loss, "lr": lr, "examples_per_s": rate});
                    if let Some(m) = self.last_mlm_loss {
                        line["mlm_loss"] = m.into();
                    }
                    log(line);
                }
                bar.set_position(self.step as u64);
                bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {rate:.1} ex/s"));
                if c.eval_steps > 0 && self.step.is_multiple_of(c.eval_steps) && self.step < total {
                    eval(self, &mut summary, &mut log)?;
                }
                if c.save_steps > 0 && self.step.is_multiple_of(c.save_steps) && self.step < total {
                    self.save_checkpoint(&summary)?;
                }
            }
            if self.step >= total {
                break;
            }
        }
        bar.finish_and_clear();
        eval(self, &mut summary, &mut log)?;
        self.save_checkpoint(&summary)?;
        summary.updates = self.step;
        summary.seconds = start.elapsed().as_secs_f64();
        summary.sentences_per_second = sentences as f64 / summary.seconds;
        Ok(summary)
    }
}

fn fresh_optimizer<B: AutodiffBackend>(
    config: &TrainConfig,
) -> OptimizerAdaptor<AdamW, Trainable<B>, B> {
    AdamWConfig::new()
        .with_beta_1(config.adam_beta1 as f32)
        .with_beta_2(config.adam_beta2 as f32)
        .with_epsilon(config.adam_epsilon as f32)
        .with_weight_decay(config.weight_decay as f32)
        .init()
}
