//! The backends this project runs on, and a check that a device is really there.
//!
//! CPU: burn-flex (pure Rust: gemm + rayon + SIMD). burn-ndarray is deprecated upstream and was
//! slower on a BERT encoder step; BENCHMARKS.md has the measurements. GPU: burn's cubecl backend,
//! as burn-wgpu (`wgpu` feature: Vulkan, Metal, DX12, or Mesa's lavapipe on a CPU) and burn-cuda
//! (`cuda` feature; cudarc loads libcuda/libnvrtc at run time, so it builds without a CUDA
//! toolkit). The two share their kernels, memory management and fusion; only the final compiler
//! differs, which is why CI tests the GPU path on lavapipe.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::error::{ModelError, Result};
use crate::tokenizer::Padding;

/// The CPU backend for inference.
pub type Cpu = burn::backend::Flex;
/// The CPU backend for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
#[cfg(feature = "wgpu")]
pub type WgpuTrain = burn::backend::Autodiff<Wgpu>;

#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// Whether `B` is burn-flex (alone or under autodiff), the CPU backend; the others are burn's cubecl
/// backends, which compile their kernels at run time and autotune them per shape, and whose kernels
/// two workarounds in `bert` are for.
pub fn on_flex<B: Backend>(device: &B::Device) -> bool {
    B::name(device).contains("flex")
}

/// How batches pad on `device` for a model of `max_positions` positions: to a multiple of 16 tokens
/// on the cubecl backends, so that few shapes reach their per-shape compilation and autotuning
/// (and tensor-core tiles stay aligned), to the longest row on burn-flex. See [`Padding`].
pub fn padding<B: Backend>(device: &B::Device, max_positions: usize) -> Padding {
    if on_flex::<B>(device) {
        Padding::LONGEST
    } else {
        Padding {
            multiple: 16,
            max_seq: max_positions,
        }
    }
}

/// Runs a tiny computation on `device` and reads it back. The GPU backends panic when the driver or
/// the device is missing; this turns that into an error that `what` names (e.g. "CUDA device 0").
pub fn check_device<B: Backend>(device: &B::Device, what: &str) -> Result<()> {
    without_panic(what, || {
        let x = Tensor::<B, 1>::from_floats([1.0, 2.0], device);
        x.sum().into_scalar();
    })
}

/// Whether the backend runs bf16 matrix products ([`crate::precision`]); those that cannot panic.
pub fn check_bf16<B: Backend>(device: &B::Device) -> Result<()> {
    without_panic(&format!("bf16 on {}", B::name(device)), || {
        let x = Tensor::<B, 2>::from_floats([[1.0, 2.0], [3.0, 4.0]], device);
        crate::precision::autocast(crate::precision::Precision::Bf16, || {
            crate::precision::matmul(x.clone(), x).sum().into_scalar()
        });
    })
}

/// Runs `f`, turning a panic into [`ModelError::Device`] (and keeping it off stderr).
fn without_panic(what: &str, f: impl FnOnce()) -> Result<()> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    let message = match run {
        Ok(()) => return Ok(()),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown error".into()),
    };
    Err(ModelError::Device {
        device: what.to_string(),
        message,
    })
}
