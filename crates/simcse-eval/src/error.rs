pub type Result<T, E = EvalError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] simcse_model::ModelError),
    #[error(transparent)]
    Artifact(#[from] simcse_artifact::ArtifactError),
    #[error("{0}")]
    Metric(String),
    #[error("{}: {message}", path.display())]
    Input {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("plot {}: {message}", path.display())]
    Plot {
        path: std::path::PathBuf,
        message: String,
    },
}
