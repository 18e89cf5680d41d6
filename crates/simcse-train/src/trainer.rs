//! The training loop: SimCSE objective, AdamW with warmup + linear decay and global-norm clipping,
//! periodic dev evaluation through `simcse-eval`, the best model exported in the Hugging Face layout.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use simcse_artifact::StsPair;
use simcse_eval::StsScore;
use simcse_model::bert::{BertInput, BertModel, BertPooler};
use simcse_model::loss::{cosent_loss, cosine_mse_loss, simcse_loss};
use simcse_model::mlm::{LmHead, MaskingRule, mlm_loss};
use simcse_model::model_dir::{self, SimcseSettings};
use simcse_model::precision::autocast;
use simcse_model::tokenizer::Padding;
use simcse_model::train_mode;
use simcse_model::{BertConfig, Encoder, ModelDir, Precision, Tokenizer};

use crate::checkpoint::{self, State};
use crate::clip::clip_global_norm;
use crate::config::{ConfigError, MlpInit, Mode, StsLoss, TrainConfig};
use crate::data::{self, Corpus, TrainBatch};
use crate::parallel::{self, Group, Nodes, Rank};
use crate::run_dir::{RunDir, RunLock};
use crate::schedule::Plan;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] simcse_model::ModelError),
    #[error(transparent)]
    Artifact(#[from] simcse_artifact::ArtifactError),
    #[error(transparent)]
    Eval(#[from] simcse_eval::EvalError),
    #[error(transparent)]
    ConfigFile(#[from] ConfigError),
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
    #[error("{0}")]
    Locked(String),
    /// A collective operation between devices failed (also when another device failed first).
    #[error("collective: {0}")]
    Collective(String),
    #[error("panicked: {0}")]
    Panicked(String),
    /// What went wrong on one device of several.
    #[error("{device}: {source}")]
    Device {
        device: String,
        source: Box<TrainError>,
    },
}

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What a finished run reports.
#[derive(Debug, Clone, Default, Serialize)]
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

/// What one update measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutput {
    /// The loss before the update (contrastive, plus `mlm_weight` x MLM with `do_mlm`).
    pub loss: f32,
    pub mlm_loss: Option<f32>,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
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
    device: B::Device,
    /// Updates done so far.
    pub step: usize,
    /// On several devices: this one's place among them (see [`Trainer::on_devices`]).
    rank: Option<Rank>,
    /// On several devices, the first one's trainer holds the others', which hold none.
    peers: Vec<Trainer<B>>,
    /// On several devices (or machines), the first one's: how they meet in burn's collective layer.
    group: Option<Arc<Group>>,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Loads `config.init` (see [`ModelDir`]) with the dropout override and sets up the pooler MLP
    /// and the optimizer.
    pub fn new(config: TrainConfig, device: &B::Device) -> Result<Self> {
        if config.precision == Precision::Bf16 {
            simcse_model::backend::check_bf16::<B>(device)?;
        }
        if config.mini_batch_size > 0 && config.do_mlm {
            return Err(TrainError::Config(NO_MLM_WITH_GRADCACHE.into()));
        }
        let mut init = ModelDir::open(&config.init)?;
        if let Some(p) = config.dropout {
            init.config.hidden_dropout_prob = p;
            init.config.attention_probs_dropout_prob = p;
        }
        let model = init.load::<B>(device)?;
        Self::from_parts(model, init.config, init.tokenizer, config, device)
    }

    /// Data-parallel training on `devices` (see [`crate::parallel`]): `config.batch_size` is the
    /// global batch, cut into one shard per device; the contrastive loss is taken over the whole
    /// batch. This trainer runs on the first device (it evaluates, exports and checkpoints) and
    /// holds a replica of itself for each other one. One device trains as [`Trainer::new`].
    pub fn on_devices(config: TrainConfig, devices: &[B::Device]) -> Result<Self> {
        Self::on_machines(config, devices, None)
    }

    /// [`Trainer::on_devices`] as one of several machines (`nodes`), each running the same training
    /// on as many devices: the batch is cut into one shard per device of all machines, and every
    /// machine evaluates, exports and checkpoints the same weights into its own run folder.
    pub fn on_machines(
        config: TrainConfig,
        devices: &[B::Device],
        nodes: Option<Nodes>,
    ) -> Result<Self> {
        let [first, ..] = devices else {
            return Err(TrainError::Config("no device to train on".into()));
        };
        let mut lead = Self::new(config, first)?;
        if devices.len() == 1 && nodes.is_none() {
            return Ok(lead);
        }
        let group = Group::new(devices.len(), nodes)?;
        let count = group.rank(0).count;
        if B::name(first).contains("wgpu") {
            let why = if devices.len() > 1 {
                "several wgpu devices: burn 0.21 moves a tensor between cubecl devices through \
                 server-to-server transfers that only CUDA implements (NCCL), and two trainers \
                 sharing one wgpu device race in its kernel streams"
            } else {
                "wgpu on several machines: burn's collective layer sums on a thread of its own, \
                 which cubecl gives its own kernel stream; measured on lavapipe, the sums went \
                 wrong from the second update on"
            };
            return Err(TrainError::Config(format!(
                "{why}; train on cuda:N or cpu devices, or on one wgpu device of one machine"
            )));
        }
        if lead.config.do_mlm {
            return Err(TrainError::Config(format!(
                "do_mlm is not supported on {count} devices (each device's MLM mean would weigh \
                 its shard alone): set do_mlm = false or train on one device"
            )));
        }
        if lead.config.batch_size < count {
            return Err(TrainError::Config(format!(
                "batch_size {} is smaller than the {count} devices: each device needs at least \
                 one example (batch_size is the global batch, across all devices)",
                lead.config.batch_size
            )));
        }
        // A fresh pooler's weights are drawn when first used (burn initialises parameters
        // lazily); replicas forked before that left this device without their gradients. Draw them
        // once, seeded, before the replicas copy them.
        let seed = lead.config.seed;
        lead.model = parallel::seeded::<B, _>(first, seed, || lead.model.clone().fork(first));
        lead.peers = (devices.iter().enumerate().skip(1))
            .map(|(i, device)| Trainer {
                model: lead.model.clone().fork(device),
                lm_head: None,
                masking: None,
                bert_config: lead.bert_config.clone(),
                tokenizer: lead.tokenizer.clone(),
                config: lead.config.clone(),
                optim: fresh_optimizer(&lead.config),
                device: device.clone(),
                step: 0,
                rank: Some(group.rank(i)),
                peers: Vec::new(),
                group: None,
            })
            .collect();
        lead.rank = Some(group.rank(0));
        lead.group = Some(Arc::new(group));
        Ok(lead)
    }

    /// How many devices train (1 unless [`Trainer::on_devices`] was given several).
    pub fn devices(&self) -> usize {
        self.rank.map_or(1, |r| r.count)
    }

    /// This trainer and, on several devices, the other devices' replicas, in device order.
    pub fn replicas(&self) -> impl Iterator<Item = &Trainer<B>> {
        std::iter::once(self).chain(&self.peers)
    }

    /// Every device needs an example of the batch (a short last batch may have fewer).
    fn check_shards(&self, batch: &TrainBatch) -> Result<()> {
        if batch.examples >= self.devices() {
            return Ok(());
        }
        Err(TrainError::Config(format!(
            "update {}: a batch of {} examples for {} devices (an epoch's short last batch): set \
             drop_last = true",
            self.step + 1,
            batch.examples,
            self.devices()
        )))
    }

    fn device_name(&self) -> String {
        let index = self.rank.map_or(0, |r| r.index);
        format!("device {index} ({:?})", self.device)
    }

    fn from_parts(
        mut model: BertModel<B>,
        bert_config: BertConfig,
        tokenizer: Tokenizer,
        config: TrainConfig,
        device: &B::Device,
    ) -> Result<Self> {
        if config.max_len > bert_config.max_tokens() {
            return Err(TrainError::Config(format!(
                "max_len {} is more than the {} tokens the model has positions for",
                config.max_len,
                bert_config.max_tokens()
            )));
        }
        if config.pooler == simcse_model::Pooler::Cls
            && (config.mlp_init == MlpInit::Fresh || model.pooler.is_none())
        {
            model.pooler = Some(BertPooler::new(bert_config.hidden_size, device));
        }
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
            bert_config,
            tokenizer,
            optim: fresh_optimizer(&config),
            config,
            device: device.clone(),
            step: 0,
            rank: None,
            peers: Vec::new(),
            group: None,
        })
    }

    /// The loss of the mode on one batch under the current weights (dropout as the backend makes
    /// it; with GradCache on, the large-batch loss whose gradients GradCache reproduces).
    pub fn loss(&self, batch: &TrainBatch) -> Result<Tensor<B, 1>> {
        Ok(self.losses(batch, 0)?.total)
    }

    /// The mode's loss plus, with `do_mlm`, `mlm_weight` times the MLM loss of a second forward
    /// pass over the batch masked as the official collator masks it (seeded by `mask_seed`).
    pub fn losses(&self, batch: &TrainBatch, mask_seed: u64) -> Result<BatchLoss<B>> {
        let cl = self.mode_loss(batch)?;
        let (Some(head), Some(rule)) = (&self.lm_head, &self.masking) else {
            return Ok(BatchLoss {
                total: cl,
                mlm: None,
            });
        };
        let masked = rule.apply(&batch.tokens, mask_seed);
        let mut tokens = batch.tokens.clone();
        tokens.input_ids = masked.input_ids.clone();
        let hidden = self.model.forward(BertInput::new(&tokens, &self.device));
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

    /// The batch's objective under the current weights: the pooled embeddings of all its rows,
    /// embedded `mini_batch_size` rows at a time when GradCache is on (with the dropout masks
    /// [`Trainer::gradients`] uses), then the loss of the mode. The graph is kept: with GradCache
    /// on, this is the large-batch loss whose gradients GradCache reproduces.
    fn mode_loss(&self, batch: &TrainBatch) -> Result<Tensor<B, 1>> {
        let chunks = self.chunks(batch);
        let pooled = if chunks.len() == 1 {
            self.embed_rows(batch, chunks[0].clone())?
        } else {
            let seed = self.dropout_seed();
            let parts = chunks.into_iter().enumerate().map(|(k, rows)| {
                B::seed(&self.device, chunk_seed(seed, k));
                self.embed_rows(batch, rows)
            });
            Tensor::cat(parts.collect::<Result<Vec<_>>>()?, 0)
        };
        self.objective(pooled, batch)
    }

    /// The loss of the mode on the pooled embeddings of a batch's rows (view-major, see
    /// [`TrainBatch`]).
    fn objective(&self, pooled: Tensor<B, 2>, batch: &TrainBatch) -> Result<Tensor<B, 1>> {
        let mut views = pooled.chunk(batch.views, 0).into_iter();
        let (Some(z1), Some(z2)) = (views.next(), views.next()) else {
            return Err(TrainError::Config(format!(
                "a batch needs two views per example, got {}",
                batch.views
            )));
        };
        let c = &self.config;
        Ok(match c.mode {
            Mode::Sts => match c.sts_loss {
                StsLoss::Cosent => cosent_loss(z1, z2, &batch.scores, c.cosent_scale),
                StsLoss::CosineMse => {
                    let labels: Vec<f32> = (batch.scores.iter())
                        .map(|s| (*s as f64 / c.max_score) as f32)
                        .collect();
                    cosine_mse_loss(z1, z2, &labels)
                }
            },
            Mode::Sup | Mode::Unsup => {
                let z3 = views.next().filter(|_| c.mode == Mode::Sup);
                simcse_loss(z1, z2, z3, c.temperature, c.hard_negative_weight)
            }
        })
    }

    /// The training pooler's embeddings of rows `rows` of the batch.
    fn embed_rows(&self, batch: &TrainBatch, rows: Range<usize>) -> Result<Tensor<B, 2>> {
        let tokens = batch.tokens.rows(rows);
        let input = BertInput::new(&tokens, &self.device);
        Ok(self.config.pooler.embed(&self.model, input)?)
    }

    /// The row ranges that GradCache embeds one at a time (the whole batch when it is off).
    fn chunks(&self, batch: &TrainBatch) -> Vec<Range<usize>> {
        let (rows, size) = (batch.tokens.batch, self.config.mini_batch_size);
        let size = if size == 0 { rows.max(1) } else { size };
        (0..rows)
            .step_by(size)
            .map(|r| r..(r + size).min(rows))
            .collect()
    }

    /// The seed of this update's dropout and masking: a pure function of (seed, update).
    fn dropout_seed(&self) -> u64 {
        self.config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(self.step as u64)
    }

    /// On several machines: that they all run this training from this update on a corpus of
    /// `examples`, each with a rank of its own and as many devices (see [`Group::check_machines`]).
    fn check_machines(&self, examples: usize) -> Result<()> {
        let Some(group) = self.group.as_deref().filter(|g| g.machines() > 1) else {
            return Ok(());
        };
        let settings = TrainConfig {
            init: PathBuf::new(),
            train_file: PathBuf::new(),
            extra_train_files: Vec::new(),
            dev_file: PathBuf::new(),
            ..self.config.same_run_key()
        };
        let run = serde_json::json!([settings, examples, self.step]).to_string();
        let hash = simcse_artifact::sha256_hex(run.as_bytes());
        let fingerprint = u64::from_str_radix(&hash[..16], 16).expect("sha256_hex writes hex");
        let units = (self.replicas().enumerate())
            .map(|(i, t)| (t.device_name(), t.device.clone(), (i, &t.device)))
            .collect();
        parallel::on_each::<B::InnerBackend, _, _>(Some(group), units, |(i, device)| {
            group.check_machines::<B::InnerBackend>(i, fingerprint, device)
        })
    }

    /// The loss of one update and its parameter gradients (on several devices: all of them at
    /// once, the gradients summed over them). With `mini_batch_size` (GradCache), the embeddings
    /// are first computed chunk by chunk and let go of their graphs, the loss's gradient for them is
    /// taken, then each chunk runs again under the same dropout seed and its share is
    /// backpropagated, so only one chunk's activations are alive at a time.
    pub fn gradients(
        &self,
        batch: &TrainBatch,
    ) -> Result<(Tensor<B, 1>, Option<Tensor<B, 1>>, GradientsParams)> {
        self.check_shards(batch)?;
        let units = (self.replicas())
            .map(|t| (t.device_name(), t.device.clone(), t))
            .collect();
        let group = self.group.as_deref();
        parallel::on_each::<B::InnerBackend, _, _>(group, units, |t| t.device_gradients(batch))
    }

    /// This device's part of [`Trainer::gradients`]: its shard's embeddings, the loss over the
    /// whole batch, and (on several devices) the gradients summed over the devices.
    fn device_gradients(
        &self,
        batch: &TrainBatch,
    ) -> Result<(Tensor<B, 1>, Option<Tensor<B, 1>>, GradientsParams)> {
        let trainable = self.trainable();
        let seed = self.dropout_seed();
        if self.lm_head.is_some() {
            // One device: several refuse do_mlm.
            if self.chunks(batch).len() > 1 {
                return Err(TrainError::Config(NO_MLM_WITH_GRADCACHE.into()));
            }
            let BatchLoss { total, mlm } =
                parallel::seeded::<B, _>(&self.device, seed, || self.losses(batch, seed))?;
            let grads = GradientsParams::from_grads(total.backward(), &trainable);
            return Ok((total, mlm, grads));
        }
        let rank = self.rank.unwrap_or(Rank { index: 0, count: 1 });
        let examples = batch.shard_range(rank.index, rank.count);
        let own = (rank.count > 1).then(|| batch.shard(examples.clone()));
        let shard = own.as_ref().unwrap_or(batch);
        let seed = rank.seed(seed);
        let gather = |local: Tensor<B, 2>| match self.rank {
            Some(rank) => parallel::gather(rank, local, &examples, batch.examples),
            None => Ok(local),
        };
        let chunks = self.chunks(shard);
        let (loss, grads) = if chunks.len() == 1 {
            let rows = chunks[0].clone();
            let pooled =
                parallel::seeded::<B, _>(&self.device, seed, || self.embed_rows(shard, rows))?;
            let loss = self.objective(gather(pooled)?, batch)?;
            let grads = GradientsParams::from_grads(loss.backward(), &trainable);
            (loss, grads)
        } else {
            // Pass 1: the training forward of each chunk on the inner backend, so no graph is kept.
            let model = self.model.valid();
            let mut cached = Vec::with_capacity(chunks.len());
            for (k, rows) in chunks.iter().enumerate() {
                let tokens = shard.tokens.rows(rows.clone());
                let input = BertInput::<B::InnerBackend>::new(&tokens, &self.device);
                let pooled = parallel::seeded::<B, _>(&self.device, chunk_seed(seed, k), || {
                    train_mode::without_graph(|| self.config.pooler.embed(&model, input))
                })?;
                cached.push(Tensor::<B, 2>::from_inner(pooled));
            }
            let pooled = Tensor::cat(cached, 0).require_grad();
            let loss = self.objective(gather(pooled.clone())?, batch)?;
            let d_pooled = pooled
                .grad(&loss.backward())
                .map(Tensor::<B, 2>::from_inner)
                .ok_or_else(|| {
                    TrainError::Config("the loss does not depend on the embeddings".into())
                })?;
            // Pass 2: each chunk again, under the same dropout seed, with its graph; backpropagate
            // its rows of the cached gradient.
            let mut acc = GradientsAccumulator::<Trainable<B>>::new();
            for (k, rows) in chunks.into_iter().enumerate() {
                let d = d_pooled.clone().slice([rows.clone()]);
                let pooled = parallel::seeded::<B, _>(&self.device, chunk_seed(seed, k), || {
                    self.embed_rows(shard, rows)
                })?;
                let share = (pooled * d).sum();
                acc.accumulate(
                    &trainable,
                    GradientsParams::from_grads(share.backward(), &trainable),
                );
            }
            (loss.detach(), acc.grads())
        };
        let grads = match self.rank {
            Some(rank) => parallel::sum_gradients(rank, &trainable, grads)?,
            None => grads,
        };
        Ok((loss, None, grads))
    }

    /// One update at learning rate `lr` (on several devices: on all of them at once, leaving the
    /// same weights on each). Dropout and masking are seeded from (seed, update), so a run is
    /// reproducible update by update.
    pub fn step(&mut self, batch: &TrainBatch, lr: f64) -> Result<StepOutput> {
        self.check_shards(batch)?;
        let group = self.group.clone();
        let mut peers = std::mem::take(&mut self.peers);
        let units = std::iter::once(&mut *self).chain(&mut peers);
        let units = units
            .map(|t| (t.device_name(), t.device.clone(), t))
            .collect();
        let out = parallel::on_each::<B::InnerBackend, _, _>(group.as_deref(), units, |t| {
            t.device_step(batch, lr)
        });
        self.peers = peers;
        out
    }

    fn device_step(&mut self, batch: &TrainBatch, lr: f64) -> Result<StepOutput> {
        let (total, mlm, mut grads) =
            autocast(self.config.precision, || self.device_gradients(batch))?;
        let loss: f32 = total.into_scalar().elem();
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                loss,
                best: self.config.out.join("model").display().to_string(),
            });
        }
        let mlm_loss = mlm.map(|m| m.into_scalar().elem());
        let trainable = self.trainable();
        let grad_norm = clip_global_norm(&trainable, &mut grads, self.config.max_grad_norm);
        let Trainable { bert, lm_head } = self.optim.step(lr, trainable, grads);
        self.model = bert;
        self.lm_head = lm_head;
        self.step += 1;
        Ok(StepOutput {
            loss,
            mlm_loss,
            grad_norm,
        })
    }

    /// How the training batches pad on this device (see [`simcse_model::backend::padding`]).
    pub fn padding(&self) -> Padding {
        simcse_model::backend::padding::<B>(&self.device, self.bert_config.max_tokens())
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

    /// Writes the model folder (see [`model_dir::save`]) with the tokenizer files of `init`.
    pub fn export(&self, dir: &Path) -> Result<()> {
        let extra = serde_json::json!({
            "temperature": self.config.temperature,
            "mode": self.config.mode,
            "trained_with": format!("simcse-train {}", env!("CARGO_PKG_VERSION")),
        });
        let settings = SimcseSettings {
            pooler: self.config.eval_pooler(),
            max_len: Some(self.config.eval_max_len),
            files: Default::default(),
            extra: extra.as_object().cloned().unwrap_or_default(),
        };
        let model = self.model.valid();
        model_dir::save(&model, &self.bert_config, &self.config.init, &settings, dir)?;
        Ok(())
    }

    /// Loads a checkpoint written by [`Trainer::fit`]: weights, optimizer state and position. Refuses
    /// one made under a different training configuration.
    pub fn restore(&mut self, ckpt: &Path) -> Result<State> {
        let (trainable, optim, state) = checkpoint::load(
            ckpt,
            self.trainable(),
            std::mem::replace(&mut self.optim, fresh_optimizer(&self.config)),
            &self.device,
        )?;
        if state.devices != self.devices() {
            return Err(TrainError::Checkpoint(format!(
                "{}: written by a run on {} device(s); resume it on {} (each device draws its own \
                 dropout masks, so another count would not continue the same run)",
                ckpt.display(),
                state.devices,
                state.devices
            )));
        }
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
        for peer in &mut self.peers {
            peer.restore(ckpt)?;
        }
        Ok(state)
    }

    fn save_checkpoint(&self, summary: &Summary) -> Result<()> {
        let state = State {
            step: self.step,
            evals: summary.evals.clone(),
            best: summary.best,
            config: self.config.clone(),
            devices: self.devices(),
            files: Default::default(),
        };
        let dir = checkpoint::save(
            &self.config.out,
            &self.trainable(),
            &self.optim,
            &state,
            self.config.save_total_limit,
        )?;
        tracing::info!("checkpoint {}", dir.display());
        Ok(())
    }

    /// Scores the model on the dev set, logs it, and exports it when it is the best so far; with no
    /// dev set, exports it.
    fn evaluate_and_keep_best(
        &self,
        dev: Option<&[StsPair]>,
        run: &mut RunDir,
        summary: &mut Summary,
    ) -> Result<()> {
        let Some(dev) = dev else {
            return self.export(&run.model());
        };
        let score = self.evaluate(dev)?;
        run.log(serde_json::json!({"step": self.step, "eval": {"set": self.config.dev_file, "spearman": score.spearman, "pearson": score.pearson}}))?;
        tracing::info!(
            "update {}: dev Spearman {:.2} Pearson {:.2}",
            self.step,
            score.spearman,
            score.pearson
        );
        summary.evals.push((self.step, score));
        if summary
            .best
            .is_none_or(|(_, b)| score.spearman > b.spearman)
        {
            summary.best = Some((self.step, score));
            self.export(&run.model())?;
        }
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
        let _lock = RunLock::acquire(&c.out)?;
        let corpus = Arc::new(Corpus::load(&c)?);
        let plan = Plan::new(&corpus, &c).ok_or_else(|| {
            TrainError::Config(format!(
                "{}: {} examples make no batch of {} (drop_last)",
                c.train_file.display(),
                corpus.len(),
                c.batch_size
            ))
        })?;
        let dev = dev_set(&c)?;
        let mut summary = Summary::default();
        if let Some(ckpt) = resume {
            let state = self.restore(ckpt)?;
            (summary.evals, summary.best) = (state.evals, state.best);
            tracing::info!("resuming {} at update {}", ckpt.display(), self.step);
        }
        self.check_machines(corpus.len())?;
        let mut run = RunDir::open(&c.out, &c, self.step)?;
        tracing::info!(
            "{} examples, {} batches in the first epoch, {} updates ({} warmup)",
            plan.examples,
            plan.per_epoch[0],
            plan.total,
            plan.warmup
        );
        if !simcse_model::backend::on_flex::<B>(&self.device) {
            tracing::info!(
                "GPU backend: kernels are compiled and autotuned as each new shape appears, so the \
                 first updates are slow (over a minute for BERT-base on a fresh H200; autotune \
                 results are cached on disk)"
            );
        }
        let bar = progress_bar(plan.total, self.step);
        let (start, mut sentences) = (Instant::now(), 0);
        let due = |every: usize, step: usize| every > 0 && step.is_multiple_of(every);
        while self.step < plan.total {
            let (epoch, _) = plan.epoch(self.step);
            let batches = plan.batches_from(self.step, &corpus, &c);
            if batches.deferred > 0 {
                tracing::info!(
                    "epoch {epoch}: {} examples waited for a later batch, so that no batch holds \
                     a sentence twice (no_duplicates)",
                    batches.deferred
                );
            }
            let tokenizer = self.tokenizer.clone();
            let batches = batches.batches;
            let shape = (c.max_len, self.padding());
            for batch in data::prefetch(corpus.clone(), batches, tokenizer, shape, c.prefetch) {
                let (batch, t0) = (batch?, Instant::now());
                let lr = plan.learning_rate(c.learning_rate, self.step);
                let out = self.step(&batch, lr)?;
                let rate = batch.examples as f64 / t0.elapsed().as_secs_f64();
                if sentences == 0 {
                    tracing::info!(
                        "first update of this run: {:.1} s",
                        t0.elapsed().as_secs_f64()
                    );
                }
                sentences += batch.tokens.batch;
                summary.losses.push(out.loss);
                if due(c.log_steps.max(1), self.step) || self.step == plan.total {
                    run.log(metrics_line(self.step, epoch, lr, rate, &out))?;
                }
                bar.set_position(self.step as u64);
                bar.set_message(format!("loss {:.4} lr {lr:.2e} {rate:.1} ex/s", out.loss));
                if due(c.eval_steps, self.step) && self.step < plan.total {
                    self.evaluate_and_keep_best(dev.as_deref(), &mut run, &mut summary)?;
                }
                if due(c.save_steps, self.step) && self.step < plan.total {
                    self.save_checkpoint(&summary)?;
                }
            }
        }
        bar.finish_and_clear();
        self.evaluate_and_keep_best(dev.as_deref(), &mut run, &mut summary)?;
        self.save_checkpoint(&summary)?;
        if let Some(group) = &self.group {
            group.leave::<B::InnerBackend>()?;
        }
        summary.updates = self.step;
        summary.seconds = start.elapsed().as_secs_f64();
        summary.sentences_per_second = sentences as f64 / summary.seconds;
        Ok(summary)
    }
}

const NO_MLM_WITH_GRADCACHE: &str = "mini_batch_size (GradCache) does not cover the MLM \
    auxiliary loss: set do_mlm = false or mini_batch_size = 0";

/// The dropout seed of chunk `k` of an update seeded `seed` (chunk 0: the update's own seed).
fn chunk_seed(seed: u64, k: usize) -> u64 {
    seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The dev set, or `None` when `dev_file` is empty (nothing is evaluated, the last model is exported).
fn dev_set(c: &TrainConfig) -> Result<Option<Vec<StsPair>>> {
    if c.dev_file.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some(simcse_artifact::read_sts(&c.dev_file)?))
}

fn metrics_line(
    step: usize,
    epoch: usize,
    lr: f64,
    rate: f64,
    out: &StepOutput,
) -> serde_json::Value {
    let mut line = serde_json::json!({"step": step, "epoch": epoch, "loss": out.loss, "lr": lr,
        "grad_norm": out.grad_norm, "examples_per_s": rate});
    if let Some(m) = out.mlm_loss {
        line["mlm_loss"] = m.into();
    }
    line
}

fn progress_bar(total: usize, done: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} updates {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done as u64);
    bar
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
