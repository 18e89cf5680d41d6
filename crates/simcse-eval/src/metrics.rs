//! Correlations and the embedding-geometry metrics of the SimCSE paper, in f64.

use crate::error::{EvalError, Result};

/// Ranks 1..=n with ties given their average rank (scipy's `rankdata(method="average")`).
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson's r. Errors on fewer than two points, NaN, or a constant input (r is undefined there).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(EvalError::Metric(format!(
            "correlation needs two equal-length inputs of at least 2 values (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(EvalError::Metric(
            "correlation input has NaN or infinite values".into(),
        ));
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(EvalError::Metric(
            "correlation is undefined for a constant input".into(),
        ));
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rho: Pearson's r of the average ranks (scipy's `spearmanr`).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return Err(EvalError::Metric("correlation input has NaN values".into()));
    }
    pearson(&ranks(x), &ranks(y))
}

/// Scales each row to unit L2 norm (a zero row stays zero).
pub fn normalize(rows: &mut [Vec<f32>]) {
    for r in rows {
        let n = r
            .iter()
            .map(|v| (*v as f64) * (*v as f64))
            .sum::<f64>()
            .sqrt();
        if n > 0.0 {
            r.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
        }
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// Alignment (Wang & Isola 2020, as SimCSE computes it): mean ||f(x) - f(y)||^2 over positive pairs
/// of unit vectors. Lower is better.
pub fn alignment(pairs: &[(&[f32], &[f32])]) -> Option<f64> {
    (!pairs.is_empty())
        .then(|| pairs.iter().map(|(a, b)| sq_dist(a, b)).sum::<f64>() / pairs.len() as f64)
}

/// Uniformity with t = 2: log mean exp(-2 ||f(x) - f(y)||^2) over all distinct pairs of unit vectors
/// (`torch.pdist(x).pow(2).mul(-2).exp().mean().log()`). Lower is better.
pub fn uniformity(x: &[Vec<f32>]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let (mut sum, mut count) = (0.0, 0u64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            sum += (-2.0 * sq_dist(&x[i], &x[j])).exp();
            count += 1;
        }
    }
    Some((sum / count as f64).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]),
            vec![1.5, 4.0, 1.5, 6.0, 4.0, 4.0]
        );
    }

    #[test]
    fn constant_input_is_an_error_not_nan() {
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(spearman(&[1.0, 2.0], &[f64::NAN, 1.0]).is_err());
    }

    #[test]
    fn geometry_of_known_points() {
        let e = [vec![1.0f32, 0.0], vec![0.0, 1.0]];
        // Two orthogonal unit vectors: squared distance 2.
        assert_eq!(alignment(&[(&e[0], &e[1])]), Some(2.0));
        assert!((uniformity(&e).unwrap() - (-4.0)).abs() < 1e-12);
    }
}
