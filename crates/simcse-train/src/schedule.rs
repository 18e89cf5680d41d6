//! What each update does, as a pure function of (config, update): which examples it trains on and
//! at which learning rate. That is why a checkpoint needs only the update count to resume exactly.

use crate::config::TrainConfig;
use crate::data::{Corpus, EpochBatches, epoch_batches};

/// Linear warmup then linear decay, exactly as `transformers.get_linear_schedule_with_warmup`:
/// update k (0-based) uses `lr * k / warmup` during warmup, then `lr * (total - k) / (total - warmup)`.
pub fn learning_rate(peak: f64, update: usize, warmup: usize, total: usize) -> f64 {
    if update < warmup {
        return peak * update as f64 / warmup.max(1) as f64;
    }
    peak * ((total.saturating_sub(update)) as f64 / (total.saturating_sub(warmup)).max(1) as f64)
        .max(0.0)
}

/// Warmup updates for a ratio of the total (`ceil`, as `transformers`' `get_warmup_steps`).
pub fn warmup_steps(ratio: f64, total: usize) -> usize {
    (ratio * total as f64).ceil() as usize
}

/// The updates of a run over a corpus.
#[derive(Debug, Clone)]
pub struct Plan {
    pub examples: usize,
    /// Updates in each epoch that the run reaches (epochs differ with `no_duplicates`).
    pub per_epoch: Vec<usize>,
    pub total: usize,
    pub warmup: usize,
}

impl Plan {
    /// `None` when an epoch has no batch (fewer examples than `batch_size` with `drop_last`).
    pub fn new(corpus: &Corpus, c: &TrainConfig) -> Option<Self> {
        let mut per_epoch = vec![epoch_batches(corpus, c, 0).batches.len()];
        if per_epoch[0] == 0 {
            return None;
        }
        let total = loop {
            let done: usize = per_epoch.iter().sum();
            if c.max_steps > 0 && done >= c.max_steps {
                break c.max_steps;
            }
            if c.max_steps == 0 && per_epoch.len() >= c.epochs {
                break per_epoch.iter().take(c.epochs).sum();
            }
            per_epoch.push(epoch_batches(corpus, c, per_epoch.len()).batches.len());
        };
        Some(Plan {
            examples: corpus.len(),
            per_epoch,
            total,
            warmup: warmup_steps(c.warmup_ratio, total),
        })
    }

    /// The epoch of `update` and the update that epoch starts at.
    pub fn epoch(&self, update: usize) -> (usize, usize) {
        let mut start = 0;
        for (e, n) in self.per_epoch.iter().enumerate() {
            if update < start + n {
                return (e, start);
            }
            start += n;
        }
        (self.per_epoch.len(), start)
    }

    /// The batches left in the epoch of `update`, from `update` on, and none past the last update.
    pub fn batches_from(&self, update: usize, corpus: &Corpus, c: &TrainConfig) -> EpochBatches {
        let (epoch, start) = self.epoch(update);
        let mut e = epoch_batches(corpus, c, epoch);
        e.batches.drain(..(update - start).min(e.batches.len()));
        e.batches.truncate(self.total.saturating_sub(update));
        e
    }

    pub fn learning_rate(&self, peak: f64, update: usize) -> f64 {
        learning_rate(peak, update, self.warmup, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let lr: Vec<f64> = (0..6).map(|k| learning_rate(1.0, k, 2, 6)).collect();
        assert_eq!(lr, vec![0.0, 0.5, 1.0, 0.75, 0.5, 0.25]);
        assert_eq!(learning_rate(1.0, 0, 0, 4), 1.0);
        assert_eq!(warmup_steps(0.05, 39), 2);
    }

    /// With `no_duplicates`, epochs can differ in length: the plan follows each epoch's own count.
    #[test]
    fn a_plan_follows_epochs_of_different_lengths() {
        let pair = |a: &str, b: &str| simcse_artifact::StsPair {
            sentence1: a.into(),
            sentence2: b.into(),
            score: 0.0,
            source: String::new(),
            klue: None,
        };
        // Four pairs share "x": they can never meet, so every epoch has at least four batches.
        let mut pairs: Vec<_> = (0..4).map(|i| pair("x", &i.to_string())).collect();
        pairs.extend((0..6).map(|i| pair(&format!("u{i}"), &format!("v{i}"))));
        let corpus = Corpus::Sts(pairs);
        let c = TrainConfig {
            mode: crate::Mode::Sts,
            batch_size: 4,
            epochs: 3,
            ..TrainConfig::default()
        };
        let plan = Plan::new(&corpus, &c).unwrap();
        let lens: Vec<usize> = (0..3)
            .map(|e| epoch_batches(&corpus, &c, e).batches.len())
            .collect();
        assert_eq!(plan.per_epoch, lens);
        assert_eq!(plan.total, lens.iter().sum::<usize>());
        let mut update = 0;
        for e in 0..3 {
            let rest = plan.batches_from(update, &corpus, &c).batches;
            assert_eq!(rest, epoch_batches(&corpus, &c, e).batches);
            update += rest.len();
        }
        assert_eq!(update, plan.total);
    }

    #[test]
    fn a_plan_resumes_mid_epoch_and_stops_at_the_last_update() {
        let c = TrainConfig {
            batch_size: 4,
            max_steps: 5,
            ..TrainConfig::default()
        };
        let corpus = Corpus::Unsup((0..10).map(|i| i.to_string()).collect());
        let plan = Plan::new(&corpus, &c).unwrap(); // batches of 4, 4, 2
        assert_eq!((plan.per_epoch.clone(), plan.total), (vec![3, 3], 5));
        assert_eq!(plan.epoch(4), (1, 3));
        let whole = epoch_batches(&corpus, &c, 1).batches;
        assert_eq!(plan.batches_from(4, &corpus, &c).batches, whole[1..2]);
        assert_eq!(plan.batches_from(0, &corpus, &c).batches.len(), 3);
        let small = TrainConfig {
            drop_last: true,
            batch_size: 16,
            ..c
        };
        assert!(Plan::new(&corpus, &small).is_none());
    }
}
