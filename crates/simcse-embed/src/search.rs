//! Exact nearest-neighbour search: the cosine of every query with every row, one matrix product
//! per chunk of rows, keeping the best `k` of each query.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use std::path::Path;

use rayon::prelude::*;

use simcse_artifact::{Embeddings, read_embedding_texts, read_embeddings};

use crate::ann::{Ann, index_path};
use crate::error::{EmbedError, Result};

/// Rows and queries per matrix product: the scores of one product are 16 MiB, whatever the sizes
/// of the corpus and of the query set (mining sends every anchor at once).
const ROWS_PER_PRODUCT: usize = 16_384;
const QUERIES_PER_PRODUCT: usize = 256;

/// A row of the corpus and its cosine with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub score: f32,
}

/// Orders a min-heap of hits by score (then row, so equal scores are deterministic).
#[derive(PartialEq)]
struct Worst(Hit);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.row.cmp(&other.0.row))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An embeddings artifact ready to search: its rows as unit vectors, or its HNSW index and the
/// rows' ids and texts (`emb.vectors` empty).
pub struct Corpus {
    pub emb: Embeddings,
    pub ann: Option<Ann>,
}

impl Corpus {
    /// Reads `path` (an `embed` output); with `ann`, opens its index (`<path>.usearch`, built by
    /// `index`) and reads only the ids and texts, since the index holds the vectors.
    pub fn open(path: &Path, ann: bool) -> Result<Corpus> {
        if ann {
            let ann = Ann::load(&index_path(path), path)?;
            let emb = read_embedding_texts(path)?;
            return Ok(Corpus {
                emb,
                ann: Some(ann),
            });
        }
        let mut emb = read_embeddings(path)?;
        crate::normalise_rows(&mut emb);
        Ok(Corpus { emb, ann: None })
    }

    /// The best `k` rows for each query (`dim` floats each, one after another), best first:
    /// through the index when there is one, else exact.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let dim = self.emb.dim;
        if dim == 0 || !queries.len().is_multiple_of(dim) {
            return Err(EmbedError::Invalid(format!(
                "queries of {} floats do not fit embeddings of {dim} dimensions (was the corpus \
                 embedded with another model?)",
                queries.len()
            )));
        }
        let mut queries = queries.to_vec();
        queries.chunks_mut(dim).for_each(crate::normalise);
        match &self.ann {
            Some(ann) => queries.chunks(dim).map(|q| ann.search(q, k)).collect(),
            None => Ok(exact(&self.emb, &queries, k)),
        }
    }
}

/// The best `k` hits of each query (unit vectors of `emb.dim` floats, one after another) among
/// the rows of `emb` (unit vectors too, see [`crate::normalise_rows`]), best first.
pub fn exact(emb: &Embeddings, queries: &[f32], k: usize) -> Vec<Vec<Hit>> {
    queries
        .chunks(QUERIES_PER_PRODUCT * emb.dim.max(1))
        .flat_map(|block| exact_block(emb, block, k))
        .collect()
}

fn exact_block(emb: &Embeddings, queries: &[f32], k: usize) -> Vec<Vec<Hit>> {
    let dim = emb.dim;
    let nq = queries.len() / dim.max(1);
    let mut heaps: Vec<BinaryHeap<Worst>> = (0..nq).map(|_| BinaryHeap::new()).collect();
    let mut scores = Vec::new();
    for (c, rows) in emb.vectors.chunks(ROWS_PER_PRODUCT * dim).enumerate() {
        let n = rows.len() / dim;
        scores.clear();
        scores.resize(nq * n, 0.0f32);
        // scores[q, r] = queries[q, :] . rows[r, :]: queries (nq x dim) times rows^T (dim x n).
        // SAFETY: every stride and size below stays inside the three slices.
        unsafe {
            gemm::gemm(
                nq,
                n,
                dim,
                scores.as_mut_ptr(),
                1,
                n as isize,
                false,
                queries.as_ptr(),
                1,
                dim as isize,
                rows.as_ptr(),
                dim as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        heaps.par_iter_mut().enumerate().for_each(|(q, heap)| {
            for (r, &score) in scores[q * n..(q + 1) * n].iter().enumerate() {
                let hit = Worst(Hit {
                    row: c * ROWS_PER_PRODUCT + r,
                    score,
                });
                if heap.len() < k {
                    heap.push(hit);
                } else if heap.peek().is_some_and(|w| hit < *w) {
                    heap.pop();
                    heap.push(hit);
                }
            }
        });
    }
    heaps
        .into_iter()
        .map(|h| h.into_sorted_vec().into_iter().map(|w| w.0).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain loop, over several products and with ties.
    #[test]
    fn exact_search_equals_a_plain_loop() {
        let dim = 8;
        let n = ROWS_PER_PRODUCT + 300;
        let mut emb = Embeddings {
            dim,
            ..Default::default()
        };
        let mut x = 1u32;
        for i in 0..n {
            emb.ids.push(i.to_string());
            emb.texts.push(String::new());
            for _ in 0..dim {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                emb.vectors.push((x >> 16) as f32 / 65_536.0 - 0.5);
            }
        }
        crate::normalise_rows(&mut emb);
        let queries: Vec<f32> = [3, n - 5]
            .iter()
            .flat_map(|&r| emb.vector(r).to_vec())
            .collect();
        let got = exact(&emb, &queries, 5);
        for (q, hits) in got.iter().enumerate() {
            let query = &queries[q * dim..(q + 1) * dim];
            let mut all: Vec<(f32, usize)> = (0..n)
                .map(|r| (emb.vector(r).iter().zip(query).map(|(a, b)| a * b).sum(), r))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(hits.len(), 5);
            for (h, (score, row)) in hits.iter().zip(&all) {
                assert_eq!(h.row, *row);
                assert!((h.score - score).abs() < 1e-5);
            }
        }
        assert_eq!(got[0][0].row, 3);
        assert_eq!(got[1][0].row, n - 5);
        // More queries than one product takes: each still finds its own row, in order.
        let many: Vec<f32> = (0..600).flat_map(|r| emb.vector(r * 20).to_vec()).collect();
        let found: Vec<usize> = exact(&emb, &many, 1).iter().map(|h| h[0].row).collect();
        assert_eq!(found, (0..600).map(|r| r * 20).collect::<Vec<_>>());
    }
}
