//! `--device cpu|wgpu|cuda[:N]`: where the binaries run the model. A device whose feature was not
//! compiled in, or that is missing at run time, is an error that says what to do.

use std::fmt;
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
