//! RoBERTa and XLM-RoBERTa: BERT's layers (`crate::bert`) with other position ids, as
//! `transformers/models/roberta/modeling_roberta.py` computes them. Their weights sit under
//! `roberta.` in `*For*` checkpoints (both; `ModelType::prefix`), `type_vocab_size` is 1 and the
//! pooler may be absent; LayerNorm's epsilon comes from the config as for BERT (1e-5 in
//! klue/roberta-base).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// `create_position_ids_from_input_ids`: tokens count from `padding_idx + 1`, padding keeps
/// `padding_idx`. So a row's positions do not depend on how far the batch is padded.
pub fn position_ids<B: Backend>(
    input_ids: Tensor<B, 2, Int>,
    padding_idx: usize,
) -> Tensor<B, 2, Int> {
    let tokens = input_ids.not_equal_elem(padding_idx as i64).int();
    tokens
        .clone()
        .cumsum(1)
        .mul(tokens)
        .add_scalar(padding_idx as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn positions_start_after_padding_idx_and_padding_keeps_it() {
        type B = burn::backend::Flex;
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![0i32, 9, 8, 2, 1, 1, 0, 7, 2, 1, 1, 1], [2, 6]),
            &Default::default(),
        );
        let got = position_ids(ids, 1)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap();
        assert_eq!(got, [2, 3, 4, 5, 1, 1, 2, 3, 4, 1, 1, 1]);
    }
}
