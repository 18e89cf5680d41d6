//! What the stage binaries share and the libraries do without: the allocator, the log setup, the
//! Hugging Face Hub download of `--init`/`--model`, and the choice of device.

pub mod alloc;
pub mod device;
pub mod hub;

pub use device::{Device, Job};

/// Logs to stderr at `info`, or as `RUST_LOG` says.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
