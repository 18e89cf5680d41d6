//! The trainer compiled for the concrete backends, once, in this crate: the test binaries and the
//! stage binaries link to these instances instead of compiling the trainer (and, for the cubecl
//! backends, burn's autodiff over them) again. Dev builds only; see `simcse_model::instances`.

use std::path::Path;

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use simcse_artifact::StsPair;
use simcse_eval::StsScore;

use crate::checkpoint::State;
use crate::data::TrainBatch;
use crate::trainer::{Result, Summary};
use crate::{StepOutput, TrainConfig, Trainer};

/// The trainer's entry points on backend `B`.
#[allow(clippy::type_complexity)]
pub struct Instances<B: AutodiffBackend> {
    pub new: fn(TrainConfig, &B::Device) -> Result<Trainer<B>>,
    pub loss: fn(&Trainer<B>, &TrainBatch) -> Result<Tensor<B, 1>>,
    pub gradients: fn(
        &Trainer<B>,
        &TrainBatch,
    ) -> Result<(Tensor<B, 1>, Option<Tensor<B, 1>>, GradientsParams)>,
    pub step: fn(&mut Trainer<B>, &TrainBatch, f64) -> Result<StepOutput>,
    pub evaluate: fn(&Trainer<B>, &[StsPair]) -> Result<StsScore>,
    pub export: fn(&Trainer<B>, &Path) -> Result<()>,
    pub restore: fn(&mut Trainer<B>, &Path) -> Result<State>,
    pub fit_from: fn(&mut Trainer<B>, Option<&Path>) -> Result<Summary>,
}

impl<B: AutodiffBackend> Instances<B> {
    const fn new() -> Self {
        Instances {
            new: Trainer::new,
            loss: Trainer::loss,
            gradients: Trainer::gradients,
            step: Trainer::step,
            evaluate: Trainer::evaluate,
            export: Trainer::export,
            restore: Trainer::restore,
            fit_from: Trainer::fit_from,
        }
    }
}

pub static CPU_TRAIN: Instances<simcse_model::backend::CpuTrain> = Instances::new();
#[cfg(feature = "wgpu")]
pub static WGPU_TRAIN: Instances<simcse_model::backend::WgpuTrain> = Instances::new();
#[cfg(feature = "cuda")]
pub static GPU_TRAIN: Instances<simcse_model::backend::GpuTrain> = Instances::new();
