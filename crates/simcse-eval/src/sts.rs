//! Scoring an encoder on STS pairs: cosine similarity against gold, Spearman and Pearson x100, and
//! alignment/uniformity of the embeddings.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use serde::Serialize;
use simcse_artifact::StsPair;
use simcse_model::Encoder;

use crate::error::{EvalError, Result};
use crate::metrics::{alignment, dot, normalize, pearson, spearman, uniformity};

/// Gold score from which a pair counts as a positive pair for alignment (SimCSE's choice).
pub const ALIGNMENT_MIN_SCORE: f32 = 4.0;

/// The correlations of one set, x100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct StsScore {
    pub spearman: f64,
    pub pearson: f64,
    pub pairs: usize,
}

/// Everything measured on one set.
#[derive(Debug, Clone, Serialize)]
pub struct SetResult {
    pub name: String,
    pub score: StsScore,
    /// Mean squared distance of unit embeddings over pairs with gold >= 4.0 (None if there are none).
    pub alignment: Option<f64>,
    /// log mean exp(-2 d^2) over all pairs of the set's distinct sentences.
    pub uniformity: Option<f64>,
    pub sentences: usize,
    /// Seconds to embed the set's distinct sentences (tokenizer, model, pooler, back to the host).
    pub encode_seconds: f64,
    /// (gold, cosine) of every pair, in file order, for the plots.
    #[serde(skip)]
    pub points: Vec<(f32, f64)>,
}

/// Unit embeddings of a set's distinct sentences, and per pair the indices of its two sentences.
struct Embedded {
    emb: Vec<Vec<f32>>,
    ids: Vec<(usize, usize)>,
    seconds: f64,
}

/// Encodes the distinct sentences of `pairs` once.
fn embed<B: Backend>(encoder: &Encoder<B>, pairs: &[StsPair]) -> Result<Embedded> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    let mut ids = Vec::with_capacity(pairs.len());
    for p in pairs {
        let [a, b] = [p.sentence1.as_str(), p.sentence2.as_str()].map(|s| {
            *index.entry(s).or_insert_with(|| {
                distinct.push(s);
                distinct.len() - 1
            })
        });
        ids.push((a, b));
    }
    let start = std::time::Instant::now();
    let mut emb = encoder.encode(&distinct)?;
    let seconds = start.elapsed().as_secs_f64();
    normalize(&mut emb);
    Ok(Embedded { emb, ids, seconds })
}

/// Spearman and Pearson x100 of cosine similarity against gold: the same code path for the eval stage
/// and for the trainer's periodic dev evaluation.
pub fn score_pairs<B: Backend>(encoder: &Encoder<B>, pairs: &[StsPair]) -> Result<StsScore> {
    let Embedded { emb, ids, .. } = embed(encoder, pairs)?;
    correlations(pairs, &cosines(&emb, &ids))
}

fn cosines(emb: &[Vec<f32>], ids: &[(usize, usize)]) -> Vec<f64> {
    ids.iter().map(|&(a, b)| dot(&emb[a], &emb[b])).collect()
}

fn correlations(pairs: &[StsPair], cos: &[f64]) -> Result<StsScore> {
    let gold: Vec<f64> = pairs.iter().map(|p| p.score as f64).collect();
    Ok(StsScore {
        spearman: 100.0 * spearman(cos, &gold)?,
        pearson: 100.0 * pearson(cos, &gold)?,
        pairs: pairs.len(),
    })
}

/// Evaluates one STS artifact (`sts/<name>.parquet`).
pub fn evaluate_set<B: Backend>(
    encoder: &Encoder<B>,
    name: &str,
    path: &Path,
) -> Result<SetResult> {
    let pairs = simcse_artifact::read_sts(path)?;
    if pairs.len() < 2 {
        return Err(EvalError::Input {
            path: path.into(),
            message: format!("{} pairs: an STS set needs at least 2", pairs.len()),
        });
    }
    let Embedded { emb, ids, seconds } = embed(encoder, &pairs)?;
    let cos = cosines(&emb, &ids);
    let score = correlations(&pairs, &cos).map_err(|e| EvalError::Input {
        path: path.into(),
        message: e.to_string(),
    })?;
    let positives: Vec<(&[f32], &[f32])> = pairs
        .iter()
        .zip(&ids)
        .filter(|(p, _)| p.score >= ALIGNMENT_MIN_SCORE)
        .map(|(_, &(a, b))| (emb[a].as_slice(), emb[b].as_slice()))
        .collect();
    Ok(SetResult {
        name: name.to_string(),
        score,
        alignment: alignment(&positives),
        uniformity: uniformity(&emb),
        sentences: emb.len(),
        encode_seconds: seconds,
        points: pairs.iter().map(|p| p.score).zip(cos).collect(),
    })
}

/// Cosine similarity matrix of `sentences` (rows and columns in input order).
pub fn similarity_matrix<B: Backend>(
    encoder: &Encoder<B>,
    sentences: &[&str],
) -> Result<Vec<Vec<f64>>> {
    let mut emb = encoder.encode(sentences)?;
    normalize(&mut emb);
    Ok(emb
        .iter()
        .map(|a| emb.iter().map(|b| dot(a, b)).collect())
        .collect())
}

/// The ten KorSTS test sentences (rows 0-4, both sides) whose similarity matrix the seed
/// implementation's author published; `similarity_matrix` defaults to them.
pub fn default_example_sentences(korsts_test: &[StsPair]) -> Vec<String> {
    korsts_test
        .iter()
        .take(5)
        .flat_map(|p| [p.sentence1.clone(), p.sentence2.clone()])
        .collect()
}
