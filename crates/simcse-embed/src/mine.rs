//! Hard-negative mining: for each (anchor, positive), the sentences of a pool nearest to the
//! anchor that are neither the positive nor too close to count as negatives.
//!
//! The rule (as sentence-transformers' `mine_hard_negatives` with a margin): a candidate is kept
//! when its cosine with the anchor is below `cos(anchor, positive) - margin`. One at or above it
//! is as close to the anchor as the positive is, so it is more likely a paraphrase (a false
//! negative) than a hard negative: it is skipped and counted.

use std::collections::BTreeMap;

use simcse_artifact::{Embeddings, Triple};

use crate::dot;
use crate::search::{Hit, exact};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MineOptions {
    /// Negatives kept per (anchor, positive): each makes one triple.
    pub top_k: usize,
    /// How far below the positive's cosine a negative must be.
    pub margin: f32,
    /// Nearest rows looked at per anchor.
    pub depth: usize,
}

impl Default for MineOptions {
    fn default() -> Self {
        MineOptions {
            top_k: 1,
            margin: 0.05,
            depth: 32,
        }
    }
}

/// An (anchor, positive) pair to mine for, with its embeddings (unit vectors).
pub struct Pair<'a> {
    pub anchor: &'a str,
    pub positive: &'a str,
    pub source: &'a str,
    pub anchor_vec: &'a [f32],
    pub positive_vec: &'a [f32],
}

/// The mined triples (source `mined:<the pair's source>`) and the counts for the manifest.
#[derive(Debug, Default)]
pub struct Mined {
    pub triples: Vec<(Triple, String)>,
    pub counts: BTreeMap<String, usize>,
}

/// Mines `pool` (unit vectors) for each pair. A pair with no candidate left has no triple and is
/// counted under `pairs_without_negative`.
pub fn mine(pairs: &[Pair<'_>], pool: &Embeddings, opts: MineOptions) -> Mined {
    let mut out = Mined::default();
    let mut count = |key: &str, n: usize| *out.counts.entry(key.to_string()).or_default() += n;
    let queries: Vec<f32> = pairs.iter().flat_map(|p| p.anchor_vec.to_vec()).collect();
    let depth = opts.depth.max(opts.top_k);
    let mut triples = Vec::new();
    for (pair, hits) in pairs.iter().zip(exact(pool, &queries, depth)) {
        let positive: f32 = dot(pair.anchor_vec, pair.positive_vec);
        let mut kept = 0;
        for Hit { row, score } in hits {
            let text = &pool.texts[row];
            if text == pair.positive || text == pair.anchor {
                count("skipped_positive_or_anchor", 1);
            } else if score >= positive - opts.margin {
                count("skipped_above_margin", 1);
            } else if kept < opts.top_k {
                kept += 1;
                triples.push((
                    Triple {
                        anchor: pair.anchor.to_string(),
                        positive: pair.positive.to_string(),
                        negative: text.clone(),
                    },
                    format!("mined:{}", pair.source),
                ));
            }
        }
        if kept == 0 {
            count("pairs_without_negative", 1);
        }
    }
    count("pairs", pairs.len());
    count("triples", triples.len());
    out.triples = triples;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: [f32; 2]) -> Vec<f32> {
        let mut v = v.to_vec();
        crate::normalise(&mut v);
        v
    }

    /// The positive itself, a near-paraphrase above the margin, and a hard negative below it: only
    /// the last is mined, and the first two are counted.
    #[test]
    fn the_margin_rule_on_a_constructed_case() {
        let texts = ["positive", "paraphrase", "hard", "far"];
        let vecs = [[1.0, 0.1], [1.0, 0.0], [1.0, 0.6], [0.0, 1.0]];
        let pool = Embeddings {
            ids: texts.iter().map(|t| t.to_string()).collect(),
            texts: texts.iter().map(|t| t.to_string()).collect(),
            dim: 2,
            vectors: vecs.iter().flat_map(|v| unit(*v)).collect(),
        };
        let (a, p) = (unit([1.0, 0.0]), unit([1.0, 0.1]));
        let pair = Pair {
            anchor: "anchor",
            positive: "positive",
            source: "test",
            anchor_vec: &a,
            positive_vec: &p,
        };
        let opts = MineOptions {
            top_k: 1,
            margin: 0.05,
            depth: 4,
        };
        let mined = mine(&[pair], &pool, opts);
        let negatives: Vec<&str> = mined
            .triples
            .iter()
            .map(|(t, _)| t.negative.as_str())
            .collect();
        assert_eq!(negatives, ["hard"]);
        assert_eq!(mined.triples[0].1, "mined:test");
        assert_eq!(mined.counts["skipped_positive_or_anchor"], 1);
        assert_eq!(mined.counts["skipped_above_margin"], 1);
        assert!(!mined.counts.contains_key("pairs_without_negative"));
        // With top_k 2 the far sentence is mined too; with a huge margin nothing is.
        let mined = mine(
            &[Pair {
                ..pair_again(&a, &p)
            }],
            &pool,
            MineOptions { top_k: 2, ..opts },
        );
        assert_eq!(mined.triples.len(), 2);
        let mined = mine(
            &[pair_again(&a, &p)],
            &pool,
            MineOptions {
                margin: 2.0,
                ..opts
            },
        );
        assert_eq!(mined.counts["pairs_without_negative"], 1);
        assert!(mined.triples.is_empty());
    }

    fn pair_again<'a>(a: &'a [f32], p: &'a [f32]) -> Pair<'a> {
        Pair {
            anchor: "anchor",
            positive: "positive",
            source: "test",
            anchor_vec: a,
            positive_vec: p,
        }
    }
}
