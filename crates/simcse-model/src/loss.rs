//! The SimCSE contrastive objective, as `princeton-nlp/SimCSE` `simcse/models.py` (`cl_forward`)
//! computes it.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, activation};

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
}
