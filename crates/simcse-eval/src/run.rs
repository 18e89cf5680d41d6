//! The evaluation stage as a function: model folders and STS artifacts in, a report folder out
//! (`eval.json`, `eval.md`, plots).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::Backend;
use simcse_model::{Encoder, Pooler};

use crate::error::{EvalError, Result};
use crate::plots;
use crate::report::{self, Matrix, ModelResult, Report, SETS};
use crate::sts::{default_example_sentences, evaluate_set, similarity_matrix};

/// A model to evaluate: `dir` as the user named it (a path or a Hub id: the report shows it) and
/// the local folder it was resolved to.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub local: PathBuf,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub models: Vec<ModelSpec>,
    /// Overrides `simcse.json`'s pooler (default there: `cls_before_pooler`).
    pub pooler: Option<Pooler>,
    /// Overrides `simcse.json`'s max_len (default there: 128).
    pub max_len: Option<usize>,
    /// The prepare stage's folder; sets are read from `<data_dir>/sts/<set>.parquet`.
    pub data_dir: PathBuf,
    /// Sets to evaluate; `None`: those of [`SETS`] that exist.
    pub sets: Option<Vec<String>>,
    /// More sets, as (name, STS artifact): a user's own (`simcse_data::sts::import`).
    pub extra_sets: Vec<(String, PathBuf)>,
    /// Report folder.
    pub out: PathBuf,
    /// Sentences of the similarity matrix; `None`: the first 5 KorSTS test pairs.
    pub sentences: Option<Vec<String>>,
    pub batch_size: usize,
    /// A font with Hangul for the plots (`None`: `$SIMCSE_FONT` or a system font).
    pub font: Option<PathBuf>,
    /// The font used when neither `font`, `$SIMCSE_FONT` nor a system font is there.
    pub fallback_font: Option<PathBuf>,
}

/// The report label of a model folder: its last path component that is not `model`.
pub fn label(dir: &Path) -> String {
    dir.components()
        .rev()
        .find_map(|c| {
            let s = c.as_os_str().to_string_lossy();
            (s != "model" && s != "." && !s.is_empty()).then(|| s.into_owned())
        })
        .unwrap_or_else(|| "model".into())
}

/// Evaluates every model on every set, draws the plots (when a Hangul font is found) and writes
/// the report into `opts.out`.
pub fn evaluate<B: Backend>(opts: &EvalOptions, device: &B::Device) -> Result<Report> {
    let sts_dir = opts.data_dir.join("sts");
    let mut sets: Vec<(String, PathBuf)> = match &opts.sets {
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
    for (name, path) in &opts.extra_sets {
        if sets.iter().any(|(n, _)| n == name) {
            return Err(EvalError::Input {
                path: path.clone(),
                message: format!("a set named {name:?} is already evaluated: pick another name"),
            });
        }
        sets.push((name.clone(), path.clone()));
    }
    if sets.is_empty() {
        return Err(EvalError::Input {
            path: sts_dir,
            message: "no STS sets: run `cargo xtask prepare` first (or pass --data-dir or --sts)"
                .into(),
        });
    }
    let sentences = match &opts.sentences {
        Some(s) => s.clone(),
        None => match simcse_artifact::read_sts(&sts_dir.join("korsts_test.parquet")) {
            Ok(pairs) => default_example_sentences(&pairs),
            Err(e) => {
                tracing::warn!("no example sentences for the similarity matrix: {e}");
                Vec::new()
            }
        },
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| EvalError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let can_plot = plot_font(opts.font.as_deref(), opts.fallback_font.as_deref());
    let mut models = Vec::new();
    for spec in &opts.models {
        let prefix = (opts.models.len() > 1).then(|| format!("{}-", label(&spec.dir)));
        let mut result = evaluate_model::<B>(spec, opts, &sets, &sentences, device)?;
        if can_plot {
            draw_plots(&mut result, &opts.out, prefix.as_deref().unwrap_or(""))?;
        }
        models.push(result);
    }
    let report = Report {
        tool: format!("simcse-eval {}", env!("CARGO_PKG_VERSION")),
        models,
        data: manifests(&sets).into(),
    };
    report::write(&opts.out, &report)?;
    Ok(report)
}

fn evaluate_model<B: Backend>(
    spec: &ModelSpec,
    opts: &EvalOptions,
    sets: &[(String, PathBuf)],
    sentences: &[String],
    device: &B::Device,
) -> Result<ModelResult> {
    let start = Instant::now();
    let mut enc = Encoder::<B>::from_dir(&spec.local, opts.pooler, opts.max_len, device)?;
    enc.batch_size = opts.batch_size.max(1);
    let name = label(&spec.dir);
    let mut result = ModelResult {
        label: name.clone(),
        dir: spec.dir.clone(),
        pooler: enc.pooler.to_string(),
        max_len: enc.max_len,
        sets: vec![],
        matrix: None,
        seconds: 0.0,
        plots: vec![],
    };
    for (set, path) in sets {
        let r = evaluate_set(&enc, set, path)?;
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
        result.matrix = Some(Matrix {
            sentences: sentences.to_vec(),
            values: similarity_matrix(&enc, &refs)?,
        });
    }
    result.seconds = start.elapsed().as_secs_f64();
    Ok(result)
}

/// Whether plots can be drawn: a Hangul font was found and registered (else a warning says why).
fn plot_font(explicit: Option<&Path>, fallback: Option<&Path>) -> bool {
    let Some(font) = plots::find_font(explicit, fallback) else {
        tracing::warn!(
            "no font with Hangul found (run scripts/fetch-font.sh and pass --fallback-font, install fonts-nanum, or pass --font / SIMCSE_FONT): plots skipped, numbers still written"
        );
        return false;
    };
    plots::register_font(&font)
        .map(|_| true)
        .unwrap_or_else(|e| {
            tracing::warn!("{e}: plots skipped");
            false
        })
}

/// The similarity heatmap and one density plot per set, named `<prefix><plot>.png`.
fn draw_plots(result: &mut ModelResult, out: &Path, prefix: &str) -> Result<()> {
    let name = result.label.clone();
    if let Some(m) = &result.matrix {
        let file = format!("{prefix}similarity.png");
        let title = format!("{name}: cosine similarity ({})", result.pooler);
        plots::heatmap(&out.join(&file), &title, &m.sentences, &m.values)?;
        result.plots.push(file);
    }
    for s in &result.sets {
        let file = format!("{prefix}density-{}.png", s.name);
        let title = format!("{}: predicted similarity by gold score ({name})", s.name);
        plots::density(&out.join(&file), &title, s)?;
        result.plots.push(file);
    }
    Ok(())
}

/// The `.manifest.json` of each set that has one (sources and their SHA-256), for the report.
fn manifests(sets: &[(String, PathBuf)]) -> serde_json::Map<String, serde_json::Value> {
    sets.iter()
        .filter_map(|(n, p)| {
            let m = std::fs::read_to_string(simcse_artifact::manifest_path(p)).ok()?;
            Some((n.clone(), serde_json::from_str(&m).ok()?))
        })
        .collect()
}
