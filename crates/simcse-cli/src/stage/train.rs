//! `simcse-train`: SimCSE training from a Hugging Face model folder and a prepared corpus.

use std::path::PathBuf;

use crate::{Device, Job};
use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Serialize;
use simcse_model::{Pooler, Precision};
use simcse_train::config::{MlpInit, StsLoss};
use simcse_train::parallel::Nodes;
use simcse_train::trainer::Summary;
use simcse_train::{Mode, TrainConfig, Trainer};

#[derive(Parser)]
#[command(
    version,
    about = "Train a SimCSE sentence encoder",
    long_about = "Train a SimCSE sentence encoder.\n\nReads a Hugging Face model folder (--init) and the prepare stage's corpus \
(kornli_triples.parquet for --mode sup, wiki_sentences.parquet for --mode unsup, sts/korsts_train.parquet for --mode sts); writes <out>/model/ (the best model on the \
dev set, Hugging Face layout + simcse.json), <out>/metrics.jsonl, <out>/config.toml and <out>/checkpoints/.\n\nEvery key of \
the config file is also an option; options override the file, in any order. The defaults shown are those of a run without \
--config (the official supervised SimCSE settings)."
)]
pub struct Cli {
    /// A TOML config (see configs/); the options below override its keys.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue from a checkpoint: the given `<out>/checkpoints/step-N` folder, or without a value
    /// the newest one of the run folder. Pass the same config and options as the first run.
    #[arg(long, num_args = 0..=1, value_name = "CHECKPOINT")]
    pub resume: Option<Option<PathBuf>>,
    /// Where to train: cpu, wgpu (Vulkan/Metal/DX12 GPU, or Mesa lavapipe), wgpu:N (the Nth
    /// discrete GPU), wgpu:cpu (lavapipe), cuda or cuda:N.
    #[arg(long, default_value = "cpu", conflicts_with = "devices")]
    pub device: Device,
    /// Train data-parallel on several devices of one kind, e.g. cuda:0,cuda:1: each embeds its
    /// shard of the batch, the loss is taken over the whole batch (all devices' negatives), the
    /// gradients are summed. --batch-size stays the global batch. Resume on as many devices.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub devices: Option<Vec<Device>>,
    /// Train on several machines (burn's multi-node mode): how many. Each runs this same command,
    /// config and data with its own --node-rank and --node-address and as many --devices, after
    /// `simcse-train orchestrator` was started on one of them. --batch-size stays the global batch.
    #[arg(long, default_value_t = 1, help_heading = "Several machines")]
    pub nodes: u32,
    /// This machine's place among the --nodes machines, from 0.
    #[arg(long, help_heading = "Several machines")]
    pub node_rank: Option<u32>,
    /// The orchestrator's address, ws://HOST:PORT.
    #[arg(long, help_heading = "Several machines")]
    pub orchestrator: Option<String>,
    /// This machine's address as the others reach it, ws://HOST:PORT; it serves its tensors to them
    /// on that port.
    #[arg(long, help_heading = "Several machines")]
    pub node_address: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub keys: ConfigKeys,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run the orchestrator of a multi-node run (--nodes) until stopped: the machines register
    /// with it and learn each other's addresses, then exchange tensors directly. Start one for
    /// each run.
    Orchestrator {
        /// The port it listens on (all interfaces).
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

impl Cli {
    /// The machines of a multi-node run (`None`: this one alone).
    fn nodes(&self) -> Result<Option<Nodes>> {
        let given = (self.node_rank, &self.orchestrator, &self.node_address);
        match (self.nodes, given) {
            (1, (None, None, None)) => Ok(None),
            (1, _) => {
                bail!("--node-rank, --orchestrator and --node-address need --nodes N (N > 1)")
            }
            (count, (Some(rank), Some(orchestrator), Some(address))) => Ok(Some(Nodes {
                count,
                rank,
                orchestrator: orchestrator.clone(),
                address: address.clone(),
            })),
            (count, _) => bail!(
                "--nodes {count} needs --node-rank, --orchestrator and --node-address on each \
                 machine (see README, \"Several machines\")"
            ),
        }
    }
}

/// The keys of [`TrainConfig`], each optional: set ones override the config file.
#[derive(clap::Args, Serialize)]
pub struct ConfigKeys {
    /// unsup: each sentence twice through dropout; sup: (anchor, entailment, contradiction) triples;
    /// sts: scored pairs (the STS stage, with --sts-loss).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// The model to start from: a Hugging Face model folder (BERT, RoBERTa, XLM-RoBERTa or ELECTRA),
    /// or a Hub repo id such as
    /// snunlp/KR-BERT-char16424 (fetched into the shared Hugging Face cache; a local path wins).
    #[arg(long)]
    init: Option<PathBuf>,
    /// The corpus (empty: the prepare stage's file for the mode).
    #[arg(long)]
    train_file: Option<PathBuf>,
    /// More corpus files of the same kind, comma-separated (e.g. KLUE STS train next to KorSTS).
    #[arg(long, value_delimiter = ',')]
    extra_train_files: Option<Vec<PathBuf>>,
    /// STS set evaluated every --eval-steps; the best model by Spearman is kept. "": none.
    #[arg(long)]
    dev_file: Option<String>,
    /// The run folder.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Maximum tokens per training sentence.
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many updates (0: run all epochs).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Share of the updates with a linear warmup.
    #[arg(long)]
    warmup_ratio: Option<f64>,
    #[arg(long)]
    temperature: Option<f64>,
    /// Log-weight added to each row's own hard negative (sup).
    #[arg(long)]
    hard_negative_weight: Option<f64>,
    /// Pooler of the training objective: cls, cls_before_pooler, avg, avg_top2, avg_first_last.
    #[arg(long)]
    pooler: Option<Pooler>,
    /// Use the MLP only in training; evaluate and export cls_before_pooler (unsup SimCSE).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    mlp_only_train: Option<bool>,
    /// Where the pooler MLP starts from.
    #[arg(long, value_enum)]
    mlp_init: Option<MlpInit>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    adam_beta1: Option<f64>,
    #[arg(long)]
    adam_beta2: Option<f64>,
    #[arg(long)]
    adam_epsilon: Option<f64>,
    /// Global gradient-norm clipping (0: off).
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// Evaluate every N updates (0: only at the end).
    #[arg(long)]
    eval_steps: Option<usize>,
    /// Log to metrics.jsonl every N updates.
    #[arg(long)]
    log_steps: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Drop the last partial batch of each epoch.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    drop_last: Option<bool>,
    /// Hidden and attention dropout (unset: the checkpoint's).
    #[arg(long)]
    dropout: Option<f64>,
    /// Batches tokenized ahead of the training step.
    #[arg(long)]
    prefetch: Option<usize>,
    /// Maximum tokens per sentence when evaluating.
    #[arg(long)]
    eval_max_len: Option<usize>,
    /// Write a resumable checkpoint every N updates (0: only at the end).
    #[arg(long)]
    save_steps: Option<usize>,
    /// Keep the newest N checkpoints (0: all).
    #[arg(long)]
    save_total_limit: Option<usize>,
    /// Add SimCSE's masked-language-model auxiliary loss.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    do_mlm: Option<bool>,
    /// Weight of the MLM loss.
    #[arg(long)]
    mlm_weight: Option<f64>,
    /// Share of tokens masked for the MLM loss.
    #[arg(long)]
    mlm_probability: Option<f64>,
    /// The encoder's matrix products: f32, or bf16 (mixed precision: f32 weights, optimizer state,
    /// LayerNorm, softmax and loss).
    #[arg(long)]
    precision: Option<Precision>,
    /// The sts mode's loss: cosent, or cosine_mse (Sentence-BERT's CosineSimilarityLoss).
    #[arg(long, value_enum)]
    sts_loss: Option<StsLoss>,
    /// CoSENT's scale (inverse temperature).
    #[arg(long)]
    cosent_scale: Option<f64>,
    /// The gold score that means "same meaning" (cosine_mse regresses on score / max_score).
    #[arg(long)]
    max_score: Option<f64>,
    /// Keep a sentence from appearing twice in a batch (unset: on for sup and sts, off for unsup).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    no_duplicates: Option<bool>,
    /// GradCache: embed the batch this many sentences at a time, so a large contrastive batch fits
    /// in the memory of a small one (0: off).
    #[arg(long)]
    mini_batch_size: Option<usize>,
}

/// The command line, with each config key's default in its help.
pub fn command() -> clap::Command {
    let defaults = toml::Table::try_from(TrainConfig::default()).unwrap_or_default();
    Cli::command().mut_args(|arg| match defaults.get(arg.get_id().as_str()) {
        Some(value) => {
            let shown = match value {
                toml::Value::String(s) if s.is_empty() => "\"\"".to_string(),
                toml::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(
                format!("{help} [default: {shown}]")
                    .trim_start()
                    .to_string(),
            )
        }
        None => arg,
    })
}

/// The binary's `main`.
pub fn main() -> Result<()> {
    crate::alloc::keep_freed_pages();
    crate::init_logging();
    let cli = Cli::from_arg_matches(&command().get_matches())?;
    if let Some(Command::Orchestrator { port }) = cli.command {
        tracing::info!("orchestrator of a multi-node run on port {port}; Ctrl-C stops it");
        let runtime = tokio::runtime::Runtime::new().context("starting the orchestrator")?;
        runtime.block_on(simcse_train::parallel::orchestrate(port));
        return Ok(());
    }
    let nodes = cli.nodes()?;
    let overrides = toml::Table::try_from(&cli.keys).context("reading the options")?;
    let mut config = TrainConfig::load(cli.config.as_deref(), overrides)?;
    if config.init.as_os_str().is_empty() {
        bail!(
            "no model to start from: pass --init DIR (a Hugging Face model folder) or a Hub repo id"
        );
    }
    config.init = crate::hub::resolve(&config.init)?;
    tracing::info!(
        "training {:?} from {} on {} -> {}",
        config.mode,
        config.init.display(),
        config.train_file.display(),
        config.out.display()
    );
    let resume = match cli.resume {
        None => None,
        Some(Some(dir)) => Some(dir),
        Some(None) => Some(simcse_train::checkpoint::newest_good(&config.out)?),
    };
    let devices = cli.devices.unwrap_or_else(|| vec![cli.device]);
    let names: Vec<String> = devices.iter().map(Device::to_string).collect();
    tracing::info!("device {}", names.join(", "));
    let summary = Device::run_all(
        &devices,
        Train {
            config: config.clone(),
            resume,
            nodes,
        },
    )?;
    println!(
        "{} updates in {:.1} s ({:.1} sentences/s); best dev Spearman {} -> {}",
        summary.updates,
        summary.seconds,
        summary.sentences_per_second,
        summary
            .best
            .map(|(s, b)| format!("{:.2} at update {s}", b.spearman))
            .unwrap_or("-".into()),
        config.out.join("model").display()
    );
    Ok(())
}

struct Train {
    config: TrainConfig,
    resume: Option<PathBuf>,
    nodes: Option<Nodes>,
}

impl Job for Train {
    type Output = Summary;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Result<Summary> {
        self.run_on::<B>(vec![device])
    }

    fn run_on<B: burn::tensor::backend::AutodiffBackend>(
        self,
        devices: Vec<B::Device>,
    ) -> Result<Summary> {
        let mut trainer = Trainer::<B>::on_machines(self.config, &devices, self.nodes)?;
        Ok(trainer.fit_from(self.resume.as_deref())?)
    }
}
