//! Linear warmup then linear decay, exactly as `transformers.get_linear_schedule_with_warmup`:
//! update k (0-based) uses `lr * k / warmup` during warmup, then `lr * (total - k) / (total - warmup)`.

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
}
