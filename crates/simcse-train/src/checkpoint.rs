//! Resumable checkpoints: `<out>/checkpoints/step-<N>/` with the model and optimizer records (burn's
//! full-precision binary format, parameter ids included so the optimizer state finds its parameters)
//! and `state.json`. The schedule, dropout masks and data order are pure functions of (seed, update,
//! epoch), so the update count is the whole position: nothing else needs saving.

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
}

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
    let json = serde_json::to_string_pretty(state).map_err(|e| record_error(&tmp, e))? + "\n";
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

/// Loads a checkpoint folder into `model` and `optim`.
pub fn load<B: AutodiffBackend>(
    ckpt: &Path,
    model: Trainable<B>,
    optim: Optim<B>,
    device: &B::Device,
) -> Result<(Trainable<B>, Optim<B>, State)> {
    let state_path = ckpt.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(TrainError::io(&state_path))?;
    let state: State = serde_json::from_str(&text).map_err(|e| record_error(&state_path, e))?;
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
