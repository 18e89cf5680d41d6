//! The model compiled for the concrete backends, once, in this crate.
//!
//! The generic model code is compiled where a concrete backend first meets it. burn's cubecl
//! backends (wgpu, CUDA) are generic over their runtime, so each crate or test binary that used
//! `Encoder<Wgpu>` compiled all of burn-cubecl and its fusion for it again: about four minutes per
//! binary on 2 cores (BENCHMARKS.md, "Build and CI time"). In dev builds (opt-level 1) rustc shares
//! generic instances between crates (`share-generics`), so the statics below, which take the
//! address of every entry point, make those instances here and the crates above link to them.
//! Release builds do not share instances (opt-level 3), so there the statics would only add work:
//! dev builds only.

use std::path::Path;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::bert::BertInput;
use crate::checkpoint::{self, LoadReport};
use crate::{BertConfig, BertModel, Encoder, Pooler, Result};

/// The model's entry points on backend `B`.
#[allow(clippy::type_complexity)]
pub struct Instances<B: Backend> {
    pub load: fn(&Path, &BertConfig, &B::Device) -> Result<(BertModel<B>, LoadReport)>,
    pub save: fn(&BertModel<B>, &BertConfig, &Path) -> Result<()>,
    pub forward: fn(&BertModel<B>, BertInput<B>) -> Vec<Tensor<B, 3>>,
    pub forward_cls: fn(&BertModel<B>, BertInput<B>) -> Vec<Tensor<B, 3>>,
    pub from_dir: fn(&Path, Option<Pooler>, Option<usize>, &B::Device) -> Result<Encoder<B>>,
    pub encode: fn(&Encoder<B>, &[&str]) -> Result<Vec<Vec<f32>>>,
}

impl<B: Backend> Instances<B> {
    const fn new() -> Self {
        Instances {
            load: checkpoint::load::<B>,
            save: checkpoint::save::<B>,
            forward: BertModel::forward,
            forward_cls: BertModel::forward_cls,
            from_dir: Encoder::from_dir,
            encode: Encoder::encode,
        }
    }
}

pub static CPU: Instances<crate::backend::Cpu> = Instances::new();
pub static CPU_TRAIN: Instances<crate::backend::CpuTrain> = Instances::new();
#[cfg(feature = "wgpu")]
pub static WGPU: Instances<crate::backend::Wgpu> = Instances::new();
#[cfg(feature = "wgpu")]
pub static WGPU_TRAIN: Instances<crate::backend::WgpuTrain> = Instances::new();
#[cfg(feature = "cuda")]
pub static GPU: Instances<crate::backend::Gpu> = Instances::new();
#[cfg(feature = "cuda")]
pub static GPU_TRAIN: Instances<crate::backend::GpuTrain> = Instances::new();
