//! The training corpus, the seeded shuffle, and batches tokenized ahead of the step on another thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use simcse_artifact::Triple;
use simcse_model::rng::splitmix64;
use simcse_model::tokenizer::{Batch, Tokenizer};

use crate::config::{Mode, TrainConfig};

/// The examples of a run, typed by mode.
pub enum Corpus {
    /// Sentences; each is seen twice, through two dropout masks.
    Unsup(Vec<String>),
    /// (anchor, entailment, contradiction) triples.
    Sup(Vec<Triple>),
}

impl Corpus {
    /// Reads the corpus of `config.mode` from `config.train_file`.
    pub fn load(config: &TrainConfig) -> simcse_artifact::Result<Self> {
        Ok(match config.mode {
            Mode::Sup => Corpus::Sup(
                simcse_artifact::read_triples(&config.train_file)?
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect(),
            ),
            Mode::Unsup => Corpus::Unsup(simcse_artifact::read_sentence_texts(&config.train_file)?),
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Corpus::Unsup(s) => s.len(),
            Corpus::Sup(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sentences of the examples `idx`, view by view (see [`TrainBatch`]).
    fn views<'a>(&'a self, idx: &[usize]) -> Vec<&'a str> {
        match self {
            Corpus::Unsup(s) => {
                let one: Vec<&str> = idx.iter().map(|&i| s[i].as_str()).collect();
                [one.clone(), one].concat()
            }
            Corpus::Sup(t) => {
                let col = |f: fn(&Triple) -> &str| idx.iter().map(move |&i| f(&t[i]));
                col(|t| &t.anchor)
                    .chain(col(|t| &t.positive))
                    .chain(col(|t| &t.negative))
                    .collect()
            }
        }
    }

    /// Tokenizes the examples `idx` into one padded batch.
    pub fn batch(
        &self,
        tokenizer: &Tokenizer,
        idx: &[usize],
        max_len: usize,
    ) -> simcse_model::Result<TrainBatch> {
        let sentences = self.views(idx);
        let ids = tokenizer.encode(&sentences, max_len)?;
        let rows: Vec<_> = ids.iter().collect();
        Ok(TrainBatch {
            tokens: tokenizer.pad(&rows),
            examples: idx.len(),
            views: sentences.len() / idx.len().max(1),
        })
    }
}

/// A batch ready for the device: `views` rows per example, view-major: row `v * examples + i` is
/// view `v` of example `i` (unsup: the batch twice; sup: anchors, then positives, then negatives).
pub struct TrainBatch {
    pub tokens: Batch,
    pub examples: usize,
    pub views: usize,
}

/// The example order of `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut state = seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Example indices of each batch of one epoch, in order.
pub fn epoch_batches(n: usize, config: &TrainConfig, epoch: usize) -> Vec<Vec<usize>> {
    let order = epoch_order(n, config.seed, epoch);
    order
        .chunks(config.batch_size.max(1))
        .filter(|c| !config.drop_last || c.len() == config.batch_size)
        .map(<[usize]>::to_vec)
        .collect()
}

/// Tokenizes `batches` on a background thread, at most `ahead` batches ahead of the consumer.
pub fn prefetch(
    corpus: Arc<Corpus>,
    batches: Vec<Vec<usize>>,
    tokenizer: Tokenizer,
    max_len: usize,
    ahead: usize,
) -> Receiver<simcse_model::Result<TrainBatch>> {
    let (tx, rx) = sync_channel(ahead.max(1));
    std::thread::spawn(move || {
        for idx in batches {
            if tx.send(corpus.batch(&tokenizer, &idx, max_len)).is_err() {
                return; // the trainer stopped
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
    }

    #[test]
    fn last_partial_batch_is_kept_or_dropped() {
        let mut c = TrainConfig {
            batch_size: 4,
            ..TrainConfig::default()
        };
        assert_eq!(
            epoch_batches(10, &c, 0)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        c.drop_last = true;
        assert_eq!(epoch_batches(10, &c, 0).len(), 2);
    }

    #[test]
    fn batches_are_view_major() {
        let t = |a: &str, p: &str, n: &str| Triple {
            anchor: a.into(),
            positive: p.into(),
            negative: n.into(),
        };
        let sup = Corpus::Sup(vec![t("a0", "p0", "n0"), t("a1", "p1", "n1")]);
        assert_eq!(sup.views(&[1, 0]), ["a1", "a0", "p1", "p0", "n1", "n0"]);
        let unsup = Corpus::Unsup(vec!["x".into(), "y".into()]);
        assert_eq!(unsup.views(&[1, 0]), ["y", "x", "y", "x"]);
    }
}
