//! `simcse-eval`: evaluates Hugging Face BERT model folders on the Korean STS sets and writes
//! `eval.json`, `eval.md` and PNG plots.

use std::path::{Path, PathBuf};

use crate::{Device, Job};
use anyhow::{Context, Result, bail};
use clap::Parser;
use simcse_data::sts::{ImportOptions, import};
use simcse_data::table::TableFormat;
use simcse_eval::report::Report;
use simcse_eval::report::{self, Matrix};
use simcse_eval::run::label;
use simcse_eval::{EvalOptions, ModelSpec};
use simcse_model::Pooler;

#[derive(Parser)]
#[command(
    version,
    about = "Evaluate sentence encoders (Hugging Face model folders) on KorSTS and KLUE STS"
)]
struct Cli {
    /// A model folder: config.json, model.safetensors or pytorch_model.bin, tokenizer.json or vocab.txt,
    /// and optionally simcse.json (pooler, max_len); or a Hugging Face Hub repo id (fetched into the
    /// shared HF cache). Repeat to compare several models.
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Pooler: cls, cls_before_pooler, avg, avg_top2, avg_first_last. Default: simcse.json's, else cls_before_pooler.
    #[arg(long)]
    pooler: Option<Pooler>,
    /// Maximum tokens per sentence. Default: simcse.json's, else 128.
    #[arg(long)]
    max_len: Option<usize>,
    /// Folder of the prepare stage's artifacts; the sets are read from <data-dir>/sts/<set>.parquet.
    #[arg(long, default_value = "data/processed")]
    data_dir: PathBuf,
    /// Sets to evaluate (those present are used; a named set that is missing is an error).
    #[arg(long, value_delimiter = ',')]
    sets: Option<Vec<String>>,
    /// Your own STS set, added to the report as NAME: a TSV, CSV, JSONL or Parquet FILE with two
    /// sentence columns and a score (--sts-columns), on any scale (--sts-range). Repeatable.
    /// Imported into <out>/sts/NAME.parquet (scores mapped onto 0..5) with a manifest.
    #[arg(long = "sts", value_name = "NAME=FILE")]
    user_sets: Vec<String>,
    /// The columns (JSON keys) of --sts files: first sentence, second sentence, score.
    #[arg(long, value_delimiter = ',', default_values = ["sentence1", "sentence2", "score"])]
    sts_columns: Vec<String>,
    /// Format of --sts files; `auto` goes by the file name.
    #[arg(long, value_enum, default_value_t = TableFormat::Auto)]
    sts_format: TableFormat,
    /// The score scale of --sts files as LO,HI (rows outside are skipped and counted). Default:
    /// the lowest and highest score in each file.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    sts_range: Option<Vec<f64>>,
    /// Fail on the first bad row of an --sts file instead of counting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Report folder. Default: reports/<name of the last model folder>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A file with one sentence per line for the similarity matrix (default: the first 5 KorSTS test pairs).
    #[arg(long)]
    sentences: Option<PathBuf>,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Where to run the models: cpu, wgpu (Vulkan/Metal/DX12 GPU, or Mesa lavapipe), cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// A TrueType/OpenType font with Hangul for the plots (default: $SIMCSE_FONT or a system NanumGothic/Noto CJK).
    #[arg(long)]
    font: Option<PathBuf>,
    /// The font to use when neither --font, $SIMCSE_FONT nor a system font is there (`cargo xtask` passes the NanumGothic that scripts/fetch-font.sh caches in .cache/fonts/).
    #[arg(long)]
    fallback_font: Option<PathBuf>,
}

/// The binary's `main`.
pub fn main() -> Result<()> {
    crate::alloc::keep_freed_pages();
    crate::init_logging();
    let cli = Cli::parse();
    let sentences = match &cli.sentences {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ),
        None => None,
    };
    let models = cli
        .models
        .iter()
        .map(|dir| {
            Ok(ModelSpec {
                local: crate::hub::resolve(dir)?,
                dir: dir.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let out = match &cli.out {
        Some(o) => o.clone(),
        None => PathBuf::from("reports").join(label(&cli.models[cli.models.len() - 1])),
    };
    let extra_sets = cli
        .user_sets
        .iter()
        .map(|spec| import_set(spec, &cli, &out))
        .collect::<Result<Vec<_>>>()?;
    let opts = EvalOptions {
        models,
        pooler: cli.pooler,
        max_len: cli.max_len,
        data_dir: cli.data_dir,
        sets: cli.sets,
        extra_sets,
        out: out.clone(),
        sentences,
        batch_size: cli.batch_size,
        font: cli.font,
        fallback_font: cli.fallback_font,
    };
    let report = cli.device.run(Eval(opts))?;
    for m in &report.models {
        if let Some(Matrix { values, .. }) = &m.matrix {
            let table = report::matrix_table(&Matrix {
                sentences: vec![],
                values: values.clone(),
            });
            println!("{}: similarity of example sentences\n{table}", m.label);
        }
    }
    let md = report::markdown(&report);
    print!("{}", md.split("\n## ").next().unwrap_or_default());
    println!("\nreport: {}", out.join("eval.md").display());
    Ok(())
}

/// Imports `NAME=FILE` into `<out>/sts/NAME.parquet`; returns (NAME, artifact).
fn import_set(spec: &str, cli: &Cli, out: &Path) -> Result<(String, PathBuf)> {
    let Some((name, file)) = spec.split_once('=') else {
        bail!("--sts {spec:?}: expected NAME=FILE");
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(valid) {
        bail!("--sts {spec:?}: NAME must be letters, digits, '_' or '-' (it names a file)");
    }
    let columns = <[String; 3]>::try_from(cli.sts_columns.clone())
        .map_err(|c| anyhow::anyhow!("--sts-columns needs 3 names, got {c:?}"))?;
    let range = match cli.sts_range.as_deref() {
        None => None,
        Some(&[lo, hi]) if lo < hi => Some((lo, hi)),
        Some(r) => bail!("--sts-range needs LO,HI with LO < HI, got {r:?}"),
    };
    let opts = ImportOptions {
        path: PathBuf::from(file),
        format: cli.sts_format,
        columns,
        range,
        name: name.to_string(),
        out: out.join("sts").join(format!("{name}.parquet")),
        strict: cli.strict,
    };
    let imported = import(&opts).with_context(|| format!("reading the STS set {name} ({file})"))?;
    let skipped: Vec<String> = imported
        .log
        .skipped
        .iter()
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    println!(
        "{name}: {} pairs from {file} (scores {}..{} mapped onto 0..5; skipped: {})",
        imported.pairs,
        imported.range.0,
        imported.range.1,
        if skipped.is_empty() {
            "none".into()
        } else {
            skipped.join(", ")
        }
    );
    Ok((name.to_string(), opts.out))
}

struct Eval(EvalOptions);

impl Job for Eval {
    type Output = Report;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Result<Report> {
        Ok(simcse_eval::evaluate::<B::InnerBackend>(&self.0, &device)?)
    }
}
