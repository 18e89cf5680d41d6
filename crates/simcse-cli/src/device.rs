//! `--device cpu|wgpu|cuda[:N]`: where the binaries run the model. A device whose feature was not
//! compiled in, or that is missing at run time, is an error that says what to do.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;

/// A device choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// burn-flex on the CPU (always built).
    Cpu,
    /// burn's cubecl backend through wgpu: the default adapter (a GPU, or Mesa's lavapipe).
    Wgpu,
    /// burn-cuda on CUDA device N.
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "wgpu" => Ok(Device::Wgpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: cpu, wgpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Wgpu => f.write_str("wgpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Work that runs on any training backend; inference work uses `B::InnerBackend`.
pub trait Job {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;
}

impl Device {
    /// The cargo feature that builds this device in (`None`: always built).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Device::Cpu => None,
            Device::Wgpu => Some("wgpu"),
            Device::Cuda(_) => Some("cuda"),
        }
    }

    /// Runs `job` on this device, after checking that the device answers.
    pub fn run<J: Job>(self, job: J) -> Result<J::Output> {
        match self {
            Device::Cpu => job.run::<simcse_model::backend::CpuTrain>(Default::default()),
            #[cfg(feature = "wgpu")]
            Device::Wgpu => {
                use simcse_model::backend::{Wgpu, WgpuTrain};
                configure_cubecl();
                let device = burn::backend::wgpu::WgpuDevice::default();
                simcse_model::backend::check_device::<Wgpu>(&device, "the wgpu device").map_err(
                    |e| {
                        anyhow::anyhow!(
                            "{e}\nwgpu needs a Vulkan, Metal or DX12 driver; without a GPU, Mesa's \
                             lavapipe runs it on the CPU (Debian/Ubuntu: apt-get install \
                             mesa-vulkan-drivers)"
                        )
                    },
                )?;
                job.run::<WgpuTrain>(device)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                use simcse_model::backend::{Gpu, GpuTrain};
                configure_cubecl();
                let device = burn::backend::cuda::CudaDevice::new(n);
                simcse_model::backend::check_device::<Gpu>(&device, &format!("CUDA device {n}"))
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{e}\nCUDA needs an NVIDIA GPU with its driver (libcuda.so.1) and NVRTC \
                             (libnvrtc.so.*: from a CUDA toolkit, or PyTorch's nvidia-cuda-nvrtc \
                             wheel with its lib folder on LD_LIBRARY_PATH)"
                        )
                    })?;
                job.run::<GpuTrain>(device)
            }
            #[allow(unreachable_patterns)]
            other => bail!(
                "--device {other}: this binary was built without the `{f}` feature. Run it through \
                 `cargo xtask ... --device {other}` (which builds it), or build it with \
                 `cargo build --release -p simcse-cli --features {f}`",
                f = other.feature().unwrap_or_default()
            ),
        }
    }
}

/// The folder where the GPU devices keep cubecl's autotune results and compiled kernels (CUDA's
/// PTX; wgpu's WGSL path has no compiled-kernel cache) between runs: `$XDG_CACHE_HOME/simcse-ko/cubecl`,
/// else `~/.cache/simcse-ko/cubecl`. cubecl names the files inside by its version and the device.
/// Without it, cubecl keeps them in the `target/` beside the nearest Cargo.toml above the working
/// directory, so a run from another folder started cold (over a minute on an H200 for BERT-base).
pub fn cubecl_cache() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("simcse-ko").join("cubecl"))
}

/// Whether a cubecl settings file applies to this process: `cubecl.toml` (or a `burn.toml` with a
/// `[cubecl]` table) in the working directory or above, where cubecl looks for one.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn cubecl_file_applies() -> bool {
    let Ok(cwd) = std::env::current_dir() else {
        return false;
    };
    cwd.ancestors().any(|dir| {
        ["cubecl.toml", "CubeCL.toml"]
            .iter()
            .any(|f| dir.join(f).is_file())
            || ["burn.toml", "Burn.toml"]
                .iter()
                .any(|f| std::fs::read_to_string(dir.join(f)).is_ok_and(|t| t.contains("[cubecl")))
    })
}

/// Points cubecl at [`cubecl_cache`], once, before its first kernel; a settings file of the
/// user's wins (the GPU kit and the tests use one). `CUBECL_*` variables apply as in cubecl.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn configure_cubecl() {
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if cubecl_file_applies() {
            tracing::info!("cubecl: settings from a cubecl.toml in the working directory or above");
            return;
        }
        let Some(root) = cubecl_cache() else {
            return;
        };
        let mut config = CubeClRuntimeConfig::default();
        config.autotune.cache = CacheConfig::File(root.clone());
        config.compilation.cache = Some(CacheConfig::File(root.clone()));
        CubeClRuntimeConfig::set(config.override_from_env());
        tracing::info!(cache = %root.display(), "cubecl: autotune results and compiled kernels");
    });
}
