//! Resumable checkpoints: `<out>/checkpoints/step-<N>/` with the model and optimizer records (burn's
//! full-precision binary format, parameter ids included so the optimizer state finds its parameters)
//! and `state.json`. The schedule, dropout masks and data order are pure functions of (seed, update,
//! epoch), so the update count is the whole position: nothing else needs saving. `state.json`,
//! written last, records each record file's SHA-256; loading checks them, so a damaged checkpoint
//! is refused (and [`newest_good`] passes over it) instead of resuming from garbage.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::AdamW;
use burn::optim::Optimizer;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use simcse_eval::StsScore;

use crate::config::TrainConfig;
use crate::trainer::{Result, TrainError, Trainable};

/// What a run has done so far, beyond the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Updates done.
    pub step: usize,
    pub evals: Vec<(usize, StsScore)>,
    pub best: Option<(usize, StsScore)>,
    /// The configuration the run was started with; a resume under another one is refused.
    pub config: TrainConfig,
    /// How many devices trained (data-parallel); checkpoints from before multi-device runs: 1.
    #[serde(default = "one")]
    pub devices: usize,
    /// SHA-256 of each file of the checkpoint (but this one), by name.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}

/// The record files of a checkpoint, as burn names them.
const RECORDS: [&str; 2] = ["model.bin", "optimizer.bin"];

type Optim<B> = OptimizerAdaptor<AdamW, Trainable<B>, B>;

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::new()
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{}: {e}", path.display()))
}

/// The checkpoint folder of update `step` under `out`.
pub fn dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:08}"))
}

/// Checkpoints under `out`, oldest first.
pub fn list(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out.join("checkpoints")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-"))
                && p.join("state.json").is_file()
        })
        .collect();
    dirs.sort();
    dirs
}

/// Writes a checkpoint atomically (a temp folder renamed into place), then removes all but the
/// newest `keep` (0 keeps all).
pub fn save<B: AutodiffBackend>(
    out: &Path,
    model: &Trainable<B>,
    optim: &Optim<B>,
    state: &State,
    keep: usize,
) -> Result<PathBuf> {
    let final_dir = dir(out, state.step);
    let parent = out.join("checkpoints");
    let tmp = parent.join(format!(".tmp-step-{:08}", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    let rec = recorder();
    Recorder::<B>::record(&rec, model.clone().into_record(), tmp.join("model"))
        .map_err(|e| record_error(&tmp, e))?;
    Recorder::<B>::record(&rec, optim.to_record(), tmp.join("optimizer"))
        .map_err(|e| record_error(&tmp, e))?;
    let mut state = state.clone();
    for name in RECORDS {
        let path = tmp.join(name);
        let hash = simcse_model::checkpoint::sha256_file(&path).map_err(TrainError::io(&path))?;
        state.files.insert(name.into(), hash);
    }
    let json = serde_json::to_string_pretty(&state).map_err(|e| record_error(&tmp, e))? + "\n";
    std::fs::write(tmp.join("state.json"), json).map_err(TrainError::io(&tmp))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(TrainError::io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(TrainError::io(&final_dir))?;
    if keep > 0 {
        let all = list(out);
        for old in &all[..all.len().saturating_sub(keep)] {
            std::fs::remove_dir_all(old).map_err(TrainError::io(old))?;
        }
    }
    Ok(final_dir)
}

/// Reads a checkpoint's `state.json` and checks its files against the hashes it records.
pub fn verify(ckpt: &Path) -> Result<State> {
    let state_path = ckpt.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(TrainError::io(&state_path))?;
    let state: State = serde_json::from_str(&text).map_err(|e| record_error(&state_path, e))?;
    if state.files.is_empty() {
        tracing::warn!(
            "{}: no file hashes (written before they were recorded): not checked",
            ckpt.display()
        );
    }
    simcse_model::checkpoint::verify_files(ckpt, &state.files)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", ckpt.display())))?;
    Ok(state)
}

/// The newest checkpoint under `out` that passes [`verify`]; damaged newer ones are reported (and
/// left in place for a look). An error when there is none, or none is good.
pub fn newest_good(out: &Path) -> Result<PathBuf> {
    let all = list(out);
    for ckpt in all.iter().rev() {
        match verify(ckpt) {
            Ok(_) => return Ok(ckpt.clone()),
            Err(e) => tracing::warn!("skipping a damaged checkpoint: {e}"),
        }
    }
    Err(TrainError::Checkpoint(match all.len() {
        0 => format!("no checkpoint in {}", out.join("checkpoints").display()),
        n => format!(
            "none of the {n} checkpoints in {} is intact (see the warnings above)",
            out.join("checkpoints").display()
        ),
    }))
}

/// Loads a checkpoint folder into `model` and `optim`, after [`verify`].
pub fn load<B: AutodiffBackend>(
    ckpt: &Path,
    model: Trainable<B>,
    optim: Optim<B>,
    device: &B::Device,
) -> Result<(Trainable<B>, Optim<B>, State)> {
    let state = verify(ckpt)?;
    let rec = recorder();
    let model_record = Recorder::<B>::load(&rec, ckpt.join("model"), device)
        .map_err(|e| record_error(&ckpt.join("model.bin"), e))?;
    let optim_record = Recorder::<B>::load(&rec, ckpt.join("optimizer"), device)
        .map_err(|e| record_error(&ckpt.join("optimizer.bin"), e))?;
    Ok((
        model.load_record(model_record),
        optim.load_record(optim_record),
        state,
    ))
}
