//! What each update does, as a pure function of (config, update): which examples it trains on and
//! at which learning rate. That is why a checkpoint needs only the update count to resume exactly.

use crate::config::TrainConfig;
use crate::data::epoch_batches;

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

/// The updates of a run over `examples` examples.
#[derive(Debug, Clone)]
pub struct Plan {
    pub examples: usize,
    pub per_epoch: usize,
    pub total: usize,
    pub warmup: usize,
}

impl Plan {
    /// `None` when an epoch has no batch (fewer examples than `batch_size` with `drop_last`).
    pub fn new(examples: usize, c: &TrainConfig) -> Option<Self> {
        let per_epoch = epoch_batches(examples, c, 0).len();
        if per_epoch == 0 {
            return None;
        }
        let total = if c.max_steps > 0 {
            c.max_steps
        } else {
            per_epoch * c.epochs
        };
        Some(Plan {
            examples,
            per_epoch,
            total,
            warmup: warmup_steps(c.warmup_ratio, total),
        })
    }

    pub fn epoch(&self, update: usize) -> usize {
        update / self.per_epoch
    }

    /// The batches left in the epoch of `update`, from `update` on, and none past the last update.
    pub fn batches_from(&self, update: usize, c: &TrainConfig) -> Vec<Vec<usize>> {
        let mut batches = epoch_batches(self.examples, c, self.epoch(update));
        batches.drain(..(update % self.per_epoch).min(batches.len()));
        batches.truncate(self.total.saturating_sub(update));
        batches
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

    #[test]
    fn a_plan_resumes_mid_epoch_and_stops_at_the_last_update() {
        let c = TrainConfig {
            batch_size: 4,
            max_steps: 5,
            ..TrainConfig::default()
        };
        let plan = Plan::new(10, &c).unwrap(); // batches of 4, 4, 2
        assert_eq!((plan.per_epoch, plan.total), (3, 5));
        let whole = epoch_batches(10, &c, 1);
        assert_eq!(plan.batches_from(4, &c), whole[1..2]);
        assert_eq!(plan.batches_from(0, &c).len(), 3);
        let small = TrainConfig {
            drop_last: true,
            batch_size: 16,
            ..c
        };
        assert!(Plan::new(10, &small).is_none());
    }
}
