use std::path::PathBuf;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What loading, saving or running a model can fail on; each variant names the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not found (expected {what})", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Weights { path: PathBuf, message: String },
    #[error("{}: tensor {key}: {message}", path.display())]
    Tensor {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{device} is not usable: {message}")]
    Device { device: String, message: String },
}

impl ModelError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ModelError::Io { path, source }
    }
}
