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

/// `<out>/.lock`: one training process per run folder. Holds the holder's pid and host; removed when
/// dropped. A lock whose holder is gone (a dead pid on this host, e.g. after `kill -9`) is taken
/// over with a warning.
pub struct RunLock {
    path: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    pid: u32,
    host: String,
}

impl RunLock {
    pub fn acquire(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(TrainError::io(root))?;
        let path = root.join(".lock");
        let me = Holder {
            pid: std::process::id(),
            host: host(),
        };
        let text = serde_json::to_string(&me).unwrap_or_default() + "\n";
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => f
                .write_all(text.as_bytes())
                .map_err(TrainError::io(&path))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = std::fs::read_to_string(&path).unwrap_or_default();
                match serde_json::from_str::<Holder>(&held) {
                    Ok(h) if h.host != me.host || alive(h.pid) => {
                        return Err(TrainError::Locked(format!(
                            "{} is in use by another training run (pid {} on {}); wait for it \
                             to end, or train into another --out. If that run is gone, delete {}",
                            root.display(),
                            h.pid,
                            h.host,
                            path.display()
                        )));
                    }
                    Ok(h) => tracing::warn!(
                        "{}: taking over the lock of pid {}, which is no longer running",
                        root.display(),
                        h.pid
                    ),
                    Err(_) => tracing::warn!("{}: unreadable, taken over", path.display()),
                }
                write_atomic(&path, &text)?;
            }
            Err(e) => return Err(TrainError::io(&path)(e)),
        }
        Ok(RunLock { path })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether process `pid` runs on this machine (Linux `/proc`; elsewhere assumed running).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_folder_and_a_dead_holder_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("in use"),
            "{err}"
        );
        drop(lock);
        assert!(!dir.path().join(".lock").exists());
        let again = RunLock::acquire(dir.path()).unwrap();
        drop(again);
        // A holder that died without cleaning up (pid_max on Linux is at most 2^22).
        let dead = format!(r#"{{"pid": 4294967295, "host": "{}"}}"#, host());
        std::fs::write(dir.path().join(".lock"), dead).unwrap();
        let taken = RunLock::acquire(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(".lock")).unwrap();
        assert!(held.contains(&std::process::id().to_string()));
        drop(taken);
        // Another machine's lock is not ours to judge.
        std::fs::write(
            dir.path().join(".lock"),
            r#"{"pid": 1, "host": "elsewhere"}"#,
        )
        .unwrap();
        let err = RunLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(err.contains("elsewhere"), "{err}");
    }
}
