//! `simcse-train`: SimCSE training from a Hugging Face BERT folder and a prepared corpus.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use simcse_train::{Mode, TrainConfig, Trainer};

#[global_allocator]
static ALLOC: simcse_model::alloc::MiMalloc = simcse_model::alloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Train a SimCSE sentence encoder",
    long_about = "Train a SimCSE sentence encoder.\n\nReads a Hugging Face BERT folder (--init) and the prepare stage's corpus \
(kornli_triples.parquet for --mode sup, wiki_sentences.parquet for --mode unsup); writes <out>/model/ (the best model on the \
dev set, Hugging Face layout + simcse.json), <out>/metrics.jsonl and <out>/config.toml.\n\nEvery config key can be given as \
--key value after the named options, e.g. `--batch-size 64 --learning-rate 3e-5`."
)]
struct Cli {
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// A TOML config (see configs/); keys given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The model to start from: a Hugging Face BERT folder, or a Hub repo id such as
    /// snunlp/KR-BERT-char16424 (fetched into the shared Hugging Face cache; a local path wins).
    #[arg(long)]
    init: Option<PathBuf>,
    /// The run folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from a checkpoint: the given `<out>/checkpoints/step-N` folder, or without a value
    /// the newest one of the run folder. Pass the same config and options as the first run.
    #[arg(long, num_args = 0..=1, value_name = "CHECKPOINT")]
    resume: Option<Option<PathBuf>>,
    /// CUDA device index.
    #[cfg(feature = "cuda")]
    #[arg(long, default_value_t = 0)]
    gpu: usize,
    /// Any other config key: --key value ...
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

fn main() -> Result<()> {
    simcse_model::alloc::keep_freed_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut overrides = Vec::new();
    let mut rest = cli.rest.iter();
    while let Some(k) = rest.next() {
        let Some(key) = k.strip_prefix("--") else {
            bail!("expected --key value, found {k:?}")
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (
                key.to_string(),
                rest.next()
                    .with_context(|| format!("--{key} needs a value"))?
                    .clone(),
            ),
        };
        overrides.push((key, value));
    }
    if let Some(m) = cli.mode {
        overrides.push(("mode".into(), format!("{m:?}").to_lowercase()));
    }
    for (key, path) in [("init", &cli.init), ("out", &cli.out)] {
        if let Some(p) = path {
            overrides.push((key.into(), format!("{:?}", p.display().to_string())));
        }
    }
    let mut config = TrainConfig::load(cli.config.as_deref(), &overrides)?;
    if config.init.as_os_str().is_empty() {
        bail!(
            "no model to start from: pass --init DIR (a Hugging Face BERT folder) or a Hub repo id"
        );
    }
    config.init = simcse_model::hub::resolve(&config.init)?;
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
        Some(None) => Some(
            simcse_train::checkpoint::list(&config.out)
                .pop()
                .with_context(|| {
                    format!(
                        "--resume: no checkpoint in {}",
                        config.out.join("checkpoints").display()
                    )
                })?,
        ),
    };
    #[cfg(not(feature = "cuda"))]
    let summary = run(config.clone(), resume.as_deref())?;
    #[cfg(feature = "cuda")]
    let summary = run(config.clone(), resume.as_deref(), cli.gpu)?;
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

#[cfg(not(feature = "cuda"))]
fn run(config: TrainConfig, resume: Option<&Path>) -> Result<simcse_train::trainer::Summary> {
    let device = Default::default();
    let mut t = Trainer::<simcse_model::backend::CpuTrain>::new(config, &device)?;
    Ok(t.fit_from(resume)?)
}

#[cfg(feature = "cuda")]
fn run(
    config: TrainConfig,
    resume: Option<&Path>,
    gpu: usize,
) -> Result<simcse_train::trainer::Summary> {
    let device = simcse_model::backend::gpu_device(gpu);
    let mut t = Trainer::<simcse_model::backend::GpuTrain>::new(config, &device)?;
    Ok(t.fit_from(resume)?)
}
