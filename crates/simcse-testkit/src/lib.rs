//! Where the tests find their inputs, and the setup they share, in one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The checkout: `$SIMCSE_REPO_DIR` (the GPU kit's copy of the fixtures, on a machine where the
/// build's path does not exist), else where the tests were built.
pub fn repo() -> PathBuf {
    std::env::var_os("SIMCSE_REPO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
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

/// The prepare stage's artifacts (KorNLI triples, STS sets under `sts/`) from the public data
/// mirror, in a temp folder.
pub fn prepared() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    simcse_data::prepare::run(&simcse_data::prepare::Options {
        raw_dir: shared_data(),
        out_dir: out.path().into(),
        triples: simcse_data::kornli::TripleRule::PerEntailment,
        require_all: false,
        strict: false,
    })
    .unwrap();
    out
}

/// Whether the tests of the GPU code path should run on backend `B` (wgpu): its default device
/// answers; see [`wgpu_ready`] for what happens when it does not.
pub fn gpu_ready<B: burn::tensor::backend::Backend>() -> bool {
    let check = simcse_model::backend::check_device::<B>(&Default::default(), "the wgpu device");
    wgpu_ready(check.map_err(|e| e.to_string()))
}

/// The parity tolerance on CUDA, where burn's f32 matrix products run on the tensor cores in TF32
/// (cubek-matmul picks TF32 tiles for f32 inputs when the device has them; there is no switch): 10
/// mantissa bits, as PyTorch with `allow_tf32`. Measured on an H200: tiny-BERT hidden states 2.0e-3
/// from PyTorch's f32 (1e-4 elsewhere).
pub const TF32_TOLERANCE: f32 = 1e-2;

/// Panics unless CUDA device 0 answers: the CUDA tests are built only on purpose (`cargo xtask
/// gpu-kit`), so a missing GPU there is a failure, not a skip.
pub fn cuda_ready<B: burn::tensor::backend::Backend>() {
    if let Err(e) = simcse_model::backend::check_device::<B>(&Default::default(), "CUDA device 0") {
        panic!("{e}");
    }
}

/// Whether the tests of the GPU code path on wgpu should run, given the device check's result.
/// Without a usable adapter (no Vulkan driver: `apt-get install mesa-vulkan-drivers` gives Mesa's
/// lavapipe, which runs on the CPU) they are skipped with a message, unless `SIMCSE_REQUIRE_WGPU`
/// is set, as CI sets it: there a missing adapter is a failure.
pub fn wgpu_ready(check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("SIMCSE_REQUIRE_WGPU").is_some() => {
            panic!("SIMCSE_REQUIRE_WGPU is set but wgpu has no usable adapter: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: no wgpu adapter ({e}); install mesa-vulkan-drivers to run this test"
            );
            false
        }
    }
}
