//! ELECTRA (the discriminator, e.g. KoELECTRA): BERT's layers (`crate::bert`) after embeddings of
//! `embedding_size`, projected to `hidden_size` by `embeddings_project` where the two differ, as
//! `transformers/models/electra/modeling_electra.py` does. Weights under `electra.`; no pooler (the
//! `cls` pooler's MLP is made fresh, as for any checkpoint without one).

use burn::nn::Linear;
use burn::tensor::backend::Backend;

use crate::bert::linear;
use crate::config::{BertConfig, ModelType};

/// `ElectraModel.embeddings_project`: present only when the embeddings are narrower (or wider)
/// than the hidden states.
pub fn embeddings_project<B: Backend>(c: &BertConfig, device: &B::Device) -> Option<Linear<B>> {
    let width = c.embedding_width();
    (c.model_type == ModelType::Electra && width != c.hidden_size)
        .then(|| linear(width, c.hidden_size, device))
}
