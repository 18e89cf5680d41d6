use std::path::PathBuf;

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Model(#[from] simcse_model::ModelError),
    #[error(transparent)]
    Artifact(#[from] simcse_artifact::ArtifactError),
    #[error(transparent)]
    Data(#[from] simcse_data::DataError),
    #[error("{}: {message}", path.display())]
    Index { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}
