//! The HNSW index (usearch) at scale, on synthetic clustered unit vectors, through the same code
//! as `index` and `search --ann`: build seconds and peak RSS, index bytes, the time to open the
//! saved index (memory-mapped, with the artifact's SHA-256 check), recall@10 against exact search
//! on held-out queries, and queries/s on one thread and on all (at the index's ef, and at ef 16
//! to 128 in `ef_sweep`). Prints one JSON line.
//!
//! `cargo xtask bench-ann --n N` runs it and then faiss on the same files (benches/ann_faiss.py);
//! alone: `cargo bench -p simcse-embed --bench ann --profile dev -- --n 100000 [--dim 384]
//! [--queries 1000] [--quantize f32|f16|i8] [--ef 64] [--data DIR]`. The vectors, queries and
//! exact neighbours are written to DIR (default target/bench-ann/<n>x<dim>) and reused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use simcse_artifact::{EmbeddingWriter, read_embeddings};
use simcse_embed::ann::{Ann, AnnOptions, Quantization, index_path};
use simcse_embed::search::exact;

/// The ef values of `ef_sweep` (the same in benches/ann_faiss.py).
const EF_SWEEP: [usize; 7] = [16, 24, 32, 48, 64, 96, 128];

struct Args {
    n: usize,
    dim: usize,
    queries: usize,
    options: AnnOptions,
    data: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        n: 100_000,
        dim: 384,
        queries: 1000,
        options: AnnOptions::default(),
        data: PathBuf::new(),
    };
    let mut data = None;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        // `cargo bench` adds --bench; every other flag takes a value.
        if flag == "--bench" {
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--n" => a.n = number(),
            "--dim" => a.dim = number(),
            "--queries" => a.queries = number(),
            "--ef" => a.options.expansion_search = number(),
            "--m" => a.options.connectivity = number(),
            "--ef-construction" => a.options.expansion_add = number(),
            "--quantize" => a.options.quantize = value.parse::<Quantization>().unwrap(),
            "--data" => data = Some(PathBuf::from(value)),
            _ => panic!("unknown option {flag}"),
        }
    }
    a.data = data.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/bench-ann")
            .join(format!("{}x{}", a.n, a.dim))
    });
    a
}

/// xorshift64*: the same vectors on every run without a dependency.
struct Rng(u64);

impl Rng {
    /// Roughly normal: the sum of four uniforms in [-1, 1).
    fn normal(&mut self) -> f32 {
        (0..4)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let u = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32;
                u / (1u64 << 23) as f32 - 1.0
            })
            .sum()
    }
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// `rows` unit vectors scattered around the `centres` (in turn, from `first`).
fn around(centres: &[Vec<f32>], first: usize, rows: usize, rng: &mut Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * centres[0].len());
    for r in first..first + rows {
        let c = &centres[r % centres.len()];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.04 * rng.normal()).collect();
        unit(&mut v);
        out.extend(v);
    }
    out
}

/// Writes `vectors.parquet` (an embeddings artifact, ids and texts the row numbers),
/// `queries.f32` (little-endian, queries x dim) and `truth.u32` (each query's 10 exact
/// neighbours, by `search`'s exact search), the last one last.
fn make_data(a: &Args) {
    std::fs::create_dir_all(&a.data).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // One cluster per 100 rows; the queries come from the same clusters.
    let centres: Vec<Vec<f32>> = (0..(a.n / 100).max(1))
        .map(|_| {
            let mut c: Vec<f32> = (0..a.dim).map(|_| rng.normal()).collect();
            unit(&mut c);
            c
        })
        .collect();
    let vectors = a.data.join("vectors.parquet");
    let mut w = EmbeddingWriter::create(&vectors, a.dim).unwrap();
    for first in (0..a.n).step_by(8192) {
        let rows = 8192.min(a.n - first);
        let ids: Vec<String> = (first..first + rows).map(|i| i.to_string()).collect();
        w.push(&ids, &ids, &around(&centres, first, rows, &mut rng))
            .unwrap();
    }
    w.finish().unwrap();
    let queries = around(&centres, 0, a.queries, &mut rng);
    let truth: Vec<u32> = exact(&read_embeddings(&vectors).unwrap(), &queries, 10)
        .iter()
        .flat_map(|hits| hits.iter().map(|h| h.row as u32))
        .collect();
    let le = |v: Vec<[u8; 4]>| v.concat();
    std::fs::write(
        a.data.join("queries.f32"),
        le(queries.iter().map(|v| v.to_le_bytes()).collect()),
    )
    .unwrap();
    std::fs::write(
        a.data.join("truth.u32"),
        le(truth.iter().map(|v| v.to_le_bytes()).collect()),
    )
    .unwrap();
}

fn read_data(a: &Args) -> (PathBuf, Vec<f32>, Vec<u32>) {
    let q = std::fs::read(a.data.join("queries.f32")).unwrap();
    let t = std::fs::read(a.data.join("truth.u32")).unwrap();
    let word = |b: &[u8]| <[u8; 4]>::try_from(b).unwrap();
    (
        a.data.join("vectors.parquet"),
        q.chunks(4).map(|b| f32::from_le_bytes(word(b))).collect(),
        t.chunks(4).map(|b| u32::from_le_bytes(word(b))).collect(),
    )
}

/// A field of /proc/self/status (VmRSS, VmHWM) in bytes.
fn status_bytes(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb * 1024.0)
}

fn main() {
    let a = args();
    if !a.data.join("truth.u32").exists() {
        make_data(&a);
        // Measure in a fresh process: the generation's freed heap would count in this one's RSS.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let (vectors, queries, truth) = read_data(&a);
    let nq = queries.len() / a.dim;

    // From here the peak RSS is the build's: writing 5 to clear_refs resets VmHWM to VmRSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_bytes("VmRSS");
    let t = Instant::now();
    let ann = Ann::build(&vectors, a.options).unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let peak_rss = status_bytes("VmHWM");
    let memory = ann.memory_usage();
    let path = index_path(&vectors);
    ann.save(&path).unwrap();
    drop(ann);
    let index_bytes = std::fs::metadata(&path).unwrap().len();

    let rss_closed = status_bytes("VmRSS");
    let t = Instant::now();
    let ann = Ann::load(&path, &vectors).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    let rss_open = status_bytes("VmRSS");

    // Recall@10 and queries/s (one thread, then all) at the index's ef and at others, so that
    // systems compare at equal recall as well as at equal ef.
    let measure = |ef: usize| {
        ann.set_expansion_search(ef);
        let search = |q: &[f32]| -> Vec<u32> {
            let hits = ann.search(q, 10).unwrap();
            hits.iter().map(|h| h.row as u32).collect()
        };
        let t = Instant::now();
        let found: Vec<Vec<u32>> = queries.chunks(a.dim).map(search).collect();
        let one = nq as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        queries.par_chunks(a.dim).for_each(|q| {
            search(q);
        });
        let all = nq as f64 / t.elapsed().as_secs_f64();
        let hits: usize = found
            .iter()
            .zip(truth.chunks(10))
            .map(|(f, t)| f.iter().filter(|r| t.contains(r)).count())
            .sum();
        (hits as f64 / (nq * 10) as f64, one.round(), all.round())
    };
    // One untimed pass first: a mapped index reads its pages from the page cache on first touch.
    measure(a.options.expansion_search);
    let mut efs = EF_SWEEP.to_vec();
    efs.push(a.options.expansion_search);
    efs.sort_unstable();
    efs.dedup();
    let sweep: Vec<(usize, (f64, f64, f64))> =
        efs.into_iter().map(|ef| (ef, measure(ef))).collect();
    let (_, (recall, qps_one, qps_all)) = sweep
        .iter()
        .find(|(ef, _)| *ef == a.options.expansion_search)
        .copied()
        .unwrap();
    let sweep: Vec<serde_json::Value> = sweep
        .iter()
        .map(|(ef, (recall, one, all))| {
            serde_json::json!({"ef": ef, "recall_at_10": recall, "qps_1_thread": one, "qps_all_threads": all})
        })
        .collect();

    let mib = |b: f64| (b / (1 << 20) as f64 * 10.0).round() / 10.0;
    let line = serde_json::json!({
        "system": "simcse-embed (usearch 2.26)",
        "n": a.n,
        "dim": a.dim,
        "queries": nq,
        "m": a.options.connectivity,
        "ef_construction": a.options.expansion_add,
        "ef": a.options.expansion_search,
        "quantize": a.options.quantize.to_string(),
        "threads": rayon::current_num_threads(),
        "build_s": (build_s * 10.0).round() / 10.0,
        "peak_rss_mib": mib(peak_rss),
        "rss_before_build_mib": mib(rss_before),
        "index_memory_mib": mib(memory as f64),
        "index_mib": mib(index_bytes as f64),
        "raw_vectors_mib": mib((a.n * a.dim * 4) as f64),
        "open_s": (open_s * 1000.0).round() / 1000.0,
        "open_rss_mib": mib((rss_open - rss_closed).max(0.0)),
        "recall_at_10": recall,
        "qps_1_thread": qps_one,
        "qps_all_threads": qps_all,
        "ef_sweep": sweep,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
}
