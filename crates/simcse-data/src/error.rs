use std::path::PathBuf;

use crate::rows::BadRow;

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything the prepare stage can fail on; each variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("missing input: expected {what} at {}", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("{}: line 1: expected header {expected:?}, found {found:?}", path.display())]
    Header {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// A bad row under `strict`: the same message that is otherwise logged and counted.
    #[error("{0} (strict mode: any bad row is fatal)")]
    BadRow(BadRow),
    #[error(transparent)]
    Artifact(#[from] simcse_artifact::ArtifactError),
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
    /// Damaged or malformed input: the message names the byte offset, line or page.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{url}: download failed: {message}")]
    Download { url: String, message: String },
    #[error("{}: SHA-256 mismatch: expected {expected}, got {actual} (the file was removed)", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| DataError::Io { path, source }
    }
}
