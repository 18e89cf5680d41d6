//! The training objectives: SimCSE's contrastive loss, as `princeton-nlp/SimCSE`
//! `simcse/models.py` (`cl_forward`) computes it, and the two STS regression losses of
//! sentence-transformers (`CoSENTLoss`, `CosineSimilarityLoss`).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, activation};

/// Unit rows of `x` ([n, h]); like `torch.nn.CosineSimilarity`, norms are floored at 1e-8.
fn unit<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-8);
    x / norm
}

/// Cosine similarity of every row of `a` with every row of `b`, divided by `temperature`: [n, m].
pub fn cosine_matrix<B: Backend>(
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    temperature: f64,
) -> Tensor<B, 2> {
    unit(a).matmul(unit(b).transpose()).div_scalar(temperature)
}

/// The contrastive loss of a batch: row i of `z1` must pick row i of `z2` among all rows of `z2`
/// (in-batch negatives) and, in the supervised case, all rows of `z3` (contradictions, hard
/// negatives) appended as extra columns. `hard_negative_weight` is added to the logit of each row's
/// own hard negative (a log-weight; 0 leaves it unweighted). Cross-entropy, mean over the batch.
pub fn simcse_loss<B: Backend>(
    z1: Tensor<B, 2>,
    z2: Tensor<B, 2>,
    z3: Option<Tensor<B, 2>>,
    temperature: f64,
    hard_negative_weight: f64,
) -> Tensor<B, 1> {
    let [n, _] = z1.dims();
    let device = z1.device();
    let mut logits = cosine_matrix(z1.clone(), z2, temperature);
    if let Some(z3) = z3 {
        let mut hard = cosine_matrix(z1, z3, temperature);
        if hard_negative_weight != 0.0 {
            let eye = Tensor::<B, 2>::eye(n, &device);
            hard = hard + eye.mul_scalar(hard_negative_weight);
        }
        logits = Tensor::cat(vec![logits, hard], 1);
    }
    let targets = Tensor::<B, 1, Int>::arange(0..n as i64, &device).reshape([n, 1]);
    let log_p = activation::log_softmax(logits, 1);
    log_p.gather(1, targets).mean().neg()
}

/// The cosine of each row of `a` with the same row of `b`: [n].
fn row_cosines<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 1> {
    let [n, _] = a.dims();
    (unit(a) * unit(b)).sum_dim(1).reshape([n])
}

/// CoSENT (Su 2022) as sentence-transformers' `CoSENTLoss` computes it: with s_i = `scale` x
/// cos(a_i, b_i), log(1 + sum over pairs (i, j) with score_i < score_j of exp(s_i - s_j)). Only the
/// order of the gold scores matters, so any score range works.
pub fn cosent_loss<B: Backend>(
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scores: &[f32],
    scale: f64,
) -> Tensor<B, 1> {
    let n = scores.len();
    let device = a.device();
    let s = row_cosines(a, b).mul_scalar(scale);
    let diff = s.clone().reshape([n, 1]) - s.reshape([1, n]);
    // Pairs not ordered that way are pushed to -1e12 (exp gives 0), as sentence-transformers does.
    let off: Vec<f32> = (0..n * n)
        .map(|k| {
            if scores[k / n] < scores[k % n] {
                0.0
            } else {
                1e12
            }
        })
        .collect();
    let diff = diff - Tensor::<B, 2>::from_data(TensorData::new(off, [n, n]), &device);
    let all = Tensor::cat(vec![Tensor::zeros([1], &device), diff.reshape([n * n])], 0);
    let max = all.clone().max().detach();
    (all - max.clone()).exp().sum().log() + max
}

/// Sentence-BERT's `CosineSimilarityLoss`: the mean squared error of cos(a_i, b_i) against
/// `labels` (gold scores mapped to the cosine's range, e.g. KorSTS score / 5).
pub fn cosine_mse_loss<B: Backend>(
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    labels: &[f32],
) -> Tensor<B, 1> {
    let device = a.device();
    let gold = Tensor::<B, 1>::from_data(TensorData::new(labels.to_vec(), [labels.len()]), &device);
    (row_cosines(a, b) - gold).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = burn::backend::Flex;

    fn t(rows: &[[f32; 2]]) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(rows.concat(), [rows.len(), 2]),
            &Default::default(),
        )
    }

    #[test]
    fn matches_a_hand_computed_cross_entropy() {
        // z1 = z2 = two orthogonal unit vectors: logits [[1, 0], [0, 1]] / 0.5 = [[2, 0], [0, 2]].
        let z = t(&[[1.0, 0.0], [0.0, 3.0]]);
        let loss = simcse_loss(z.clone(), z.clone(), None, 0.5, 0.0).into_scalar();
        let expected = -(2.0f32.exp() / (2.0f32.exp() + 1.0)).ln();
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
        // A hard negative equal to the positive, with weight w: row logits [2, 0, 2 + w, 0].
        let w = 0.7f32;
        let loss = simcse_loss(z.clone(), z.clone(), Some(z), 0.5, w as f64).into_scalar();
        let e2 = 2.0f32.exp();
        let expected = -(e2 / (e2 + 1.0 + (2.0 + w).exp() + 1.0)).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn sts_losses_match_hand_computed_values() {
        // Cosines 1, 0 and -0.6 (the last row: [-0.6, 0.8] against [1, 0]).
        let a = t(&[[1.0, 0.0], [0.0, 2.0], [-0.6, 0.8]]);
        let b = t(&[[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]]);
        let (c0, c1, c2) = (1.0f32, 0.0f32, -0.6f32);
        // Scores 5, 1, 3: ordered pairs (1 < 0), (1 < 2), (2 < 0): terms s_1 - s_0, s_1 - s_2,
        // s_2 - s_0, with s = 20 cos.
        let loss = cosent_loss(a.clone(), b.clone(), &[5.0, 1.0, 3.0], 20.0).into_scalar();
        let e = |x: f32| (20.0 * x).exp();
        let expected = (1.0 + e(c1 - c0) + e(c1 - c2) + e(c2 - c0)).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        // Equal scores order nothing: the loss is log(1) = 0.
        let zero = cosent_loss(a.clone(), b.clone(), &[2.0; 3], 20.0).into_scalar();
        assert_eq!(zero, 0.0);
        let mse = cosine_mse_loss(a, b, &[1.0, 0.2, 0.6]).into_scalar();
        let expected = ((c0 - 1.0).powi(2) + (c1 - 0.2).powi(2) + (c2 - 0.6).powi(2)) / 3.0;
        assert!((mse - expected).abs() < 1e-6, "{mse} vs {expected}");
    }
}
