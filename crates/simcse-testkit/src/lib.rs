//! Where the tests find their inputs, in one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The public data mirror: `$SIMCSE_SHARED_DATA`, else `../shared/data` beside the checkout.
pub fn shared_data() -> PathBuf {
    std::env::var_os("SIMCSE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"))
}

/// all-MiniLM-L6-v2 from its PyPI wheel: `$SIMCSE_MINILM_DIR`, else `.cache/all-MiniLM-L6-v2`, where
/// `scripts/fetch-minilm.sh` (run by CI) puts it. Panics with the fix when it is not there.
pub fn minilm() -> PathBuf {
    let dir = std::env::var_os("SIMCSE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not at {}: run scripts/fetch-minilm.sh",
        dir.display()
    );
    dir
}

/// Tensors of a safetensors file as (shape, f32 or i32 values widened to f32).
pub fn read_tensors(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|c| match v.dtype() {
                    safetensors::Dtype::I32 => i32::from_le_bytes(c.try_into().unwrap()) as f32,
                    _ => f32::from_le_bytes(c.try_into().unwrap()),
                })
                .collect();
            (name, (v.shape().to_vec(), values))
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
