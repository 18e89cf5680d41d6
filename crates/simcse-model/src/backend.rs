//! The backends this project runs on.
//!
//! CPU: burn-flex (pure Rust: gemm + rayon + SIMD). burn-ndarray is deprecated upstream and was
//! slower on a BERT encoder step; BENCHMARKS.md has the measurements. GPU: burn-cuda behind the
//! `cuda` feature (cudarc loads libcuda/libnvrtc at run time, so it builds without a CUDA toolkit).

/// The CPU backend for inference.
pub type Cpu = burn::backend::Flex;
/// The CPU backend for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// CUDA device `index` (the binaries' `--gpu`).
#[cfg(feature = "cuda")]
pub fn gpu_device(index: usize) -> burn::backend::cuda::CudaDevice {
    burn::backend::cuda::CudaDevice::new(index)
}
