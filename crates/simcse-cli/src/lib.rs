//! The stage binaries (`stage`: each binary's code) and what they share and the libraries do
//! without: the allocator, the log setup, the Hugging Face Hub download of `--init`/`--model`, and
//! the choice of device.

pub mod alloc;
pub mod device;
pub mod hub;
pub mod stage;

pub use device::{Device, Job};

/// Our progress at info; the GPU runtimes' kernel tuning and adapter dumps (pages of it) only when
/// asked for with `RUST_LOG`.
pub const DEFAULT_LOG_FILTER: &str =
    "info,cubecl_runtime=warn,cubecl_wgpu=warn,cubecl_cuda=warn,wgpu_core=warn,wgpu_hal=warn";

/// Logs to stderr at [`DEFAULT_LOG_FILTER`], or as `RUST_LOG` says.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
