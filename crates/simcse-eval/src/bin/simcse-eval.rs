//! `simcse-eval`: evaluates Hugging Face BERT model folders on the Korean STS sets and writes
//! `eval.json`, `eval.md` and PNG plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use simcse_eval::plots;
use simcse_eval::report::{self, Matrix, ModelResult, Report, SETS};
use simcse_eval::sts::{default_example_sentences, evaluate_set, similarity_matrix};
use simcse_model::{Encoder, Pooler};

#[global_allocator]
static ALLOC: simcse_model::alloc::MiMalloc = simcse_model::alloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Evaluate sentence encoders (Hugging Face BERT folders) on KorSTS and KLUE STS"
)]
struct Cli {
    /// A model folder: config.json, model.safetensors or pytorch_model.bin, tokenizer.json or vocab.txt,
    /// and optionally simcse.json (pooler, max_len); or a Hugging Face Hub repo id (fetched into the
    /// shared HF cache). Repeat to compare several models.
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Pooler: cls, cls_before_pooler, avg, avg_top2, avg_first_last. Default: simcse.json's, else cls_before_pooler.
    #[arg(long)]
    pooler: Option<String>,
    /// Maximum tokens per sentence. Default: simcse.json's, else 128.
    #[arg(long)]
    max_len: Option<usize>,
    /// Folder of the prepare stage's artifacts; the sets are read from <data-dir>/sts/<set>.parquet.
    #[arg(long, default_value = "data/processed")]
    data_dir: PathBuf,
    /// Sets to evaluate (those present are used; a named set that is missing is an error).
    #[arg(long, value_delimiter = ',')]
    sets: Option<Vec<String>>,
    /// Report folder. Default: reports/<name of the last model folder>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A file with one sentence per line for the similarity matrix (default: the first 5 KorSTS test pairs).
    #[arg(long)]
    sentences: Option<PathBuf>,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// A TrueType/OpenType font with Hangul for the plots (default: $SIMCSE_FONT or a system NanumGothic/Noto CJK).
    #[arg(long)]
    font: Option<PathBuf>,
    /// CUDA device index.
    #[cfg(feature = "cuda")]
    #[arg(long, default_value_t = 0)]
    gpu: usize,
}

/// The backend the encoders run on: burn-flex on CPU, or burn-cuda with `--features cuda`.
#[cfg(not(feature = "cuda"))]
type Backend = simcse_model::backend::Cpu;
#[cfg(feature = "cuda")]
type Backend = simcse_model::backend::Gpu;

fn label(dir: &Path) -> String {
    dir.components()
        .rev()
        .find_map(|c| {
            let s = c.as_os_str().to_string_lossy();
            (s != "model" && s != "." && !s.is_empty()).then(|| s.into_owned())
        })
        .unwrap_or_else(|| "model".into())
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
    let pooler: Option<Pooler> = cli.pooler.as_deref().map(str::parse).transpose()?;
    let sts_dir = cli.data_dir.join("sts");
    let sets: Vec<(String, PathBuf)> = match &cli.sets {
        Some(names) => names
            .iter()
            .map(|n| (n.clone(), sts_dir.join(format!("{n}.parquet"))))
            .collect(),
        None => SETS
            .iter()
            .map(|(n, _)| (n.to_string(), sts_dir.join(format!("{n}.parquet"))))
            .filter(|(_, p)| p.is_file())
            .collect(),
    };
    if sets.is_empty() {
        bail!(
            "no STS sets in {}: run `cargo xtask prepare` first (or pass --data-dir)",
            sts_dir.display()
        );
    }
    let data: serde_json::Map<String, serde_json::Value> = sets
        .iter()
        .filter_map(|(n, p)| {
            let m = std::fs::read_to_string(simcse_data::artifact::manifest_path(p)).ok()?;
            Some((n.clone(), serde_json::from_str(&m).ok()?))
        })
        .collect();
    let sentences: Vec<String> = match &cli.sentences {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => {
            let test = sts_dir.join("korsts_test.parquet");
            match simcse_data::artifact::read_sts(&test) {
                Ok(pairs) => default_example_sentences(&pairs),
                Err(e) => {
                    tracing::warn!("no example sentences for the similarity matrix: {e}");
                    Vec::new()
                }
            }
        }
    };
    let out = cli.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(label(cli.models.last().expect("clap requires one")))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let font = plots::find_font(cli.font.as_deref());
    let can_plot = match &font {
        Some(f) => plots::register_font(f).map(|_| true).unwrap_or_else(|e| {
            tracing::warn!("{e}: plots skipped");
            false
        }),
        None => {
            tracing::warn!(
                "no font with Hangul found (install fonts-nanum, or pass --font / SIMCSE_FONT): plots skipped, numbers still written"
            );
            false
        }
    };

    #[cfg(not(feature = "cuda"))]
    let device = Default::default();
    #[cfg(feature = "cuda")]
    let device = simcse_model::backend::gpu_device(cli.gpu);
    let mut results = Vec::new();
    for dir in &cli.models {
        let start = Instant::now();
        let local = simcse_model::hub::resolve(dir)?;
        let mut enc = Encoder::<Backend>::from_dir(&local, pooler, cli.max_len, &device)
            .with_context(|| format!("loading model {}", dir.display()))?;
        enc.batch_size = cli.batch_size.max(1);
        let name = label(dir);
        let mut result = ModelResult {
            label: name.clone(),
            dir: dir.clone(),
            pooler: enc.pooler.to_string(),
            max_len: enc.max_len,
            sets: vec![],
            matrix: None,
            seconds: 0.0,
            plots: vec![],
        };
        for (set, path) in &sets {
            let r = evaluate_set(&enc, set, path)
                .with_context(|| format!("evaluating {} on {}", dir.display(), path.display()))?;
            tracing::info!(
                "{name} {set}: Spearman {:.2} Pearson {:.2} ({} pairs)",
                r.score.spearman,
                r.score.pearson,
                r.score.pairs
            );
            result.sets.push(r);
        }
        if sentences.len() >= 2 {
            let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
            let values = similarity_matrix(&enc, &refs)?;
            println!(
                "{name}: similarity of example sentences\n{}",
                report::matrix_table(&Matrix {
                    sentences: vec![],
                    values: values.clone()
                })
            );
            result.matrix = Some(Matrix {
                sentences: sentences.clone(),
                values,
            });
        }
        result.seconds = start.elapsed().as_secs_f64();
        if can_plot {
            let prefix = if cli.models.len() > 1 {
                format!("{name}-")
            } else {
                String::new()
            };
            if let Some(m) = &result.matrix {
                let file = format!("{prefix}similarity.png");
                plots::heatmap(
                    &out.join(&file),
                    &format!("{name}: cosine similarity ({})", result.pooler),
                    &m.sentences,
                    &m.values,
                )?;
                result.plots.push(file);
            }
            for s in &result.sets {
                let file = format!("{prefix}density-{}.png", s.name);
                plots::density(
                    &out.join(&file),
                    &format!("{}: predicted similarity by gold score ({name})", s.name),
                    s,
                )?;
                result.plots.push(file);
            }
        }
        results.push(result);
    }
    let report = Report {
        tool: format!("simcse-eval {}", env!("CARGO_PKG_VERSION")),
        models: results,
        data: data.into(),
    };
    report::write(&out, &report)?;
    print!(
        "{}",
        report::markdown(&report)
            .split("\n## ")
            .next()
            .unwrap_or_default()
    );
    println!("\nreport: {}", out.join("eval.md").display());
    Ok(())
}
