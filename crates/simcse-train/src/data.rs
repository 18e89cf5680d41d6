//! Training examples, the seeded shuffle, and batches tokenized ahead of the step on another thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use simcse_model::mlm::splitmix64;
use simcse_model::tokenizer::{Batch, Tokenizer};

use crate::config::{Mode, TrainConfig};

/// One example's sentences: [sentence] (unsup) or [anchor, positive, negative] (sup).
pub type Example = Vec<String>;

/// Reads the corpus of `config.mode` from `config.train_file`.
pub fn load(config: &TrainConfig) -> simcse_data::Result<Vec<Example>> {
    Ok(match config.mode {
        Mode::Sup => simcse_data::artifact::read_triples(&config.train_file)?
            .into_iter()
            .map(|(t, _)| vec![t.anchor, t.positive, t.negative])
            .collect(),
        Mode::Unsup => simcse_data::artifact::read_sentence_texts(&config.train_file)?
            .into_iter()
            .map(|s| vec![s])
            .collect(),
    })
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

/// A batch ready for the device: all of its sentences padded together, row-major by example:
/// unsup rows are [s0, s1, ..., s0, s1, ...] (the batch twice), sup rows are anchors, then
/// positives, then negatives.
pub struct TrainBatch {
    pub tokens: Batch,
    pub examples: usize,
}

/// Tokenizes one batch of examples.
pub fn tokenize(
    tokenizer: &Tokenizer,
    examples: &[&Example],
    mode: Mode,
    max_len: usize,
) -> simcse_model::Result<TrainBatch> {
    let columns: Vec<&str> = match mode {
        Mode::Unsup => examples
            .iter()
            .map(|e| e[0].as_str())
            .chain(examples.iter().map(|e| e[0].as_str()))
            .collect(),
        Mode::Sup => (0..3)
            .flat_map(|c| examples.iter().map(move |e| e[c].as_str()))
            .collect(),
    };
    let ids = tokenizer.encode(&columns, max_len)?;
    let rows: Vec<_> = ids.iter().collect();
    Ok(TrainBatch {
        tokens: tokenizer.pad(&rows),
        examples: examples.len(),
    })
}

/// Tokenizes `batches` on a background thread, at most `ahead` batches ahead of the consumer.
pub fn prefetch(
    examples: Arc<Vec<Example>>,
    batches: Vec<Vec<usize>>,
    tokenizer: Tokenizer,
    mode: Mode,
    max_len: usize,
    ahead: usize,
) -> Receiver<simcse_model::Result<TrainBatch>> {
    let (tx, rx) = sync_channel(ahead.max(1));
    std::thread::spawn(move || {
        for idx in batches {
            let refs: Vec<&Example> = idx.iter().map(|&i| &examples[i]).collect();
            if tx.send(tokenize(&tokenizer, &refs, mode, max_len)).is_err() {
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
}
