//! `--device cpu|wgpu[:N|:cpu]|cuda[:N]`: where the binaries run the model (training also takes a
//! list, `--devices`). A device whose feature was not compiled in, or that is missing at run time,
//! is an error that says what to do.

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
    /// burn's cubecl backend through wgpu (Vulkan, Metal, DX12).
    Wgpu(WgpuAdapter),
    /// burn-cuda on CUDA device N.
    Cuda(usize),
}

/// Which wgpu adapter: the default one (a GPU, or Mesa's lavapipe), the Nth discrete GPU, or a CPU
/// adapter (lavapipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgpuAdapter {
    Default,
    Discrete(usize),
    Cpu,
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, n) = s.split_once(':').map_or((s, None), |(k, n)| (k, Some(n)));
        let index = |n: &str| n.parse().ok();
        match (kind, n) {
            ("cpu", None) => Some(Device::Cpu),
            ("wgpu", None) => Some(Device::Wgpu(WgpuAdapter::Default)),
            ("wgpu", Some("cpu")) => Some(Device::Wgpu(WgpuAdapter::Cpu)),
            ("wgpu", Some(n)) => index(n).map(|n| Device::Wgpu(WgpuAdapter::Discrete(n))),
            ("cuda", None) => Some(Device::Cuda(0)),
            ("cuda", Some(n)) => index(n).map(Device::Cuda),
            _ => None,
        }
        .ok_or_else(|| format!("unknown device {s:?}: cpu, wgpu, wgpu:N, wgpu:cpu, cuda or cuda:N"))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Wgpu(WgpuAdapter::Default) => f.write_str("wgpu"),
            Device::Wgpu(WgpuAdapter::Discrete(n)) => write!(f, "wgpu:{n}"),
            Device::Wgpu(WgpuAdapter::Cpu) => f.write_str("wgpu:cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Work that runs on any training backend; inference work uses `B::InnerBackend`.
pub trait Job {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;

    /// The work on several devices of one backend: by default, refused (one device only).
    fn run_on<B: AutodiffBackend>(self, mut devices: Vec<B::Device>) -> Result<Self::Output>
    where
        Self: Sized,
    {
        match devices.len() {
            1 => self.run::<B>(devices.remove(0)),
            n => bail!("this stage runs on one device, not {n}"),
        }
    }
}

impl Device {
    /// The cargo feature that builds this device in (`None`: always built).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Device::Cpu => None,
            Device::Wgpu(_) => Some("wgpu"),
            Device::Cuda(_) => Some("cuda"),
        }
    }

    /// Runs `job` on this device, after checking that the device answers.
    pub fn run<J: Job>(self, job: J) -> Result<J::Output> {
        Device::run_all(&[self], job)
    }

    /// Runs `job` on `devices` (all of one kind: cpu, wgpu or cuda), after checking that each one
    /// answers.
    pub fn run_all<J: Job>(devices: &[Device], job: J) -> Result<J::Output> {
        let Some(&first) = devices.first() else {
            bail!("no device given");
        };
        if let Some(other) = devices.iter().find(|d| d.feature() != first.feature()) {
            bail!(
                "devices {first} and {other} are of different kinds: train on one kind at a time"
            );
        }
        match first {
            Device::Cpu => job
                .run_on::<simcse_model::backend::CpuTrain>(vec![Default::default(); devices.len()]),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(_) => {
                use burn::backend::wgpu::WgpuDevice;
                use simcse_model::backend::{Wgpu, WgpuTrain};
                configure_cubecl();
                let wgpu = |d: &Device| {
                    let device = match d {
                        Device::Wgpu(WgpuAdapter::Discrete(n)) => WgpuDevice::DiscreteGpu(*n),
                        Device::Wgpu(WgpuAdapter::Cpu) => WgpuDevice::Cpu,
                        _ => WgpuDevice::DefaultDevice,
                    };
                    simcse_model::backend::check_device::<Wgpu>(&device, &format!("wgpu device {d}"))
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "{e}\nwgpu needs a Vulkan, Metal or DX12 driver; without a GPU, \
                                 Mesa's lavapipe runs it on the CPU (Debian/Ubuntu: apt-get install \
                                 mesa-vulkan-drivers)"
                            )
                        })?;
                    Ok::<_, anyhow::Error>(device)
                };
                job.run_on::<WgpuTrain>(devices.iter().map(wgpu).collect::<Result<_>>()?)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => {
                use simcse_model::backend::{Gpu, GpuTrain};
                configure_cubecl();
                let cuda = |d: &Device| {
                    let n = match d {
                        Device::Cuda(n) => *n,
                        _ => 0,
                    };
                    let device = burn::backend::cuda::CudaDevice::new(n);
                    simcse_model::backend::check_device::<Gpu>(
                        &device,
                        &format!("CUDA device {n}"),
                    )
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{e}\nCUDA needs an NVIDIA GPU with its driver (libcuda.so.1) and \
                                 NVRTC (libnvrtc.so.*: from a CUDA toolkit, or PyTorch's \
                                 nvidia-cuda-nvrtc wheel with its lib folder on LD_LIBRARY_PATH)"
                        )
                    })?;
                    Ok::<_, anyhow::Error>(device)
                };
                job.run_on::<GpuTrain>(devices.iter().map(cuda).collect::<Result<_>>()?)
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
