//! The run folder, `<out>/`: `config.toml` (the settings of the run), `metrics.jsonl` (one line per
//! logged update or evaluation), `model/` (the exported model) and `checkpoints/`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use simcse_artifact::ArtifactError;

use crate::config::TrainConfig;
use crate::trainer::{Result, TrainError};

pub struct RunDir {
    pub root: PathBuf,
    metrics: File,
    metrics_path: PathBuf,
}

impl RunDir {
    /// Opens `root` for a run that stands at update `step` (0: a new run): writes `config.toml` and
    /// keeps the metrics lines of updates up to `step` (a resumed run logs the later ones again).
    pub fn open(root: &Path, config: &TrainConfig, step: usize) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(TrainError::io(root))?;
        let config_path = root.join("config.toml");
        let text = toml::to_string(config).map_err(|e| TrainError::Config(e.to_string()))?;
        write_atomic(&config_path, &text)?;
        let metrics_path = root.join("metrics.jsonl");
        let old = match std::fs::read_to_string(&metrics_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(TrainError::io(&metrics_path)(e)),
        };
        let kept: String = old
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        write_atomic(&metrics_path, &kept)?;
        let metrics = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(TrainError::io(&metrics_path))?;
        Ok(RunDir {
            root: root.to_path_buf(),
            metrics,
            metrics_path,
        })
    }

    /// Appends one line to `metrics.jsonl`.
    pub fn log(&mut self, line: serde_json::Value) -> Result<()> {
        writeln!(self.metrics, "{line}").map_err(TrainError::io(&self.metrics_path))
    }

    /// Where the model is exported.
    pub fn model(&self) -> PathBuf {
        self.root.join("model")
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let write = |f: &mut File| {
        f.write_all(text.as_bytes())
            .map_err(ArtifactError::io(path))
    };
    Ok(simcse_artifact::write_atomic(path, write)?)
}
