//! What a trained encoder is for: `embed` a file of sentences into `embeddings.parquet`, find the
//! nearest rows of it (`search`: exact, or an HNSW index for large corpora), and `mine` hard
//! negatives for training. The HTTP server (`simcse-serve`) and the binaries build on these.

pub mod ann;
pub mod embed;
pub mod error;
pub mod mine;
pub mod search;

pub use error::{EmbedError, Result};
pub use search::Hit;

use simcse_artifact::Embeddings;

/// The dot product: the cosine of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to length 1 (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Scales every row of `emb` to length 1, so that dot products are cosines.
pub fn normalise_rows(emb: &mut Embeddings) {
    let dim = emb.dim.max(1);
    emb.vectors.chunks_mut(dim).for_each(normalise);
}
