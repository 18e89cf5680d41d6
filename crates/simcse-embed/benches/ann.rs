//! The HNSW index (usearch) on synthetic clustered unit vectors: build time on all cores, then
//! queries/s on one thread and recall@10 against exact search, at three values of ef.
//!
//! `cargo bench -p simcse-embed --bench ann` (env `ROWS`, default 100,000; `DIM` 384; `QUERIES`
//! 300). usearch's SIMD distance kernels (numkong, a C build) are off by default; compare with
//! `cargo bench -p simcse-embed --bench ann --features usearch/numkong` (BENCHMARKS.md).

use std::time::Instant;

use simcse_artifact::{EmbeddingWriter, read_embeddings};
use simcse_embed::ann::{Ann, AnnOptions};
use simcse_embed::search::exact;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn centres(n: usize, dim: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let mut c: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            unit(&mut c);
            c
        })
        .collect()
}

/// `rows` unit vectors scattered around the `centres`, in turn.
fn around(centres: &[Vec<f32>], rows: usize, rng: &mut Rng) -> Vec<f32> {
    let mut out = Vec::new();
    for r in 0..rows {
        let c = &centres[r % centres.len()];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.04 * rng.normal()).collect();
        unit(&mut v);
        out.extend(v);
    }
    out
}

fn main() {
    let (rows, dim, nq) = (env("ROWS", 100_000), env("DIM", 384), env("QUERIES", 300));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.parquet");
    let mut w = EmbeddingWriter::create(&path, dim).unwrap();
    // One cluster per 100 rows (1,000 for 100,000); the queries come from the same clusters.
    let centres = centres((rows / 100).max(1), dim, &mut rng);
    let vectors = around(&centres, rows, &mut rng);
    let ids: Vec<String> = (0..rows).map(|i| i.to_string()).collect();
    w.push(&ids, &ids, &vectors).unwrap();
    w.finish().unwrap();
    let emb = read_embeddings(&path).unwrap();
    let queries = around(&centres, nq, &mut rng);
    let truth = exact(&emb, &queries, 10);

    let t = Instant::now();
    let ann = Ann::build(&emb, &path, AnnOptions::default()).unwrap();
    println!(
        "{rows} x {dim}: build {:.1} s on {} threads",
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    for ef in [32, 64, 128] {
        ann.set_expansion_search(ef);
        let t = Instant::now();
        let found: Vec<Vec<usize>> = queries
            .chunks(dim)
            .map(|q| ann.search(q, 10).unwrap().iter().map(|h| h.row).collect())
            .collect();
        let qps = nq as f64 / t.elapsed().as_secs_f64();
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| t.iter().filter(|h| f.contains(&h.row)).count())
            .sum();
        println!(
            "ef {ef:>3}: recall@10 {:.4}, {qps:.0} queries/s (one thread)",
            hits as f64 / (nq * 10) as f64
        );
    }
}
