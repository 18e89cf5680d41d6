//! Where the tests find their inputs, in one place.

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
