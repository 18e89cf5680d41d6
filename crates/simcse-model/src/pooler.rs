//! SimCSE's poolers, as `princeton-nlp/SimCSE` `simcse/models.py` (`Pooler`) defines them.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::{BertInput, BertModel};
use crate::error::{ModelError, Result};

/// How a sentence embedding is read off BERT's hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooler {
    /// `[CLS]` through the dense+tanh MLP. The MLP is the checkpoint's `pooler` module: SimCSE's
    /// `mlp` is exported to Hugging Face as `pooler`, so the two are the same weights.
    Cls,
    /// `[CLS]`'s last hidden state, no MLP (SimCSE's unsupervised evaluation, `mlp_only_train`).
    ClsBeforePooler,
    /// Mean of the last hidden states over real tokens.
    Avg,
    /// Mean over real tokens of the average of the last two layers.
    AvgTop2,
    /// Mean over real tokens of the average of the first transformer layer's output
    /// (`hidden_states[1]`) and the last layer's, as the official `models.py` and `evaluation.py`
    /// compute it since commit 206d7ae ("fix first-last avg", 2022); before it they took the
    /// embedding output (`hidden_states[0]`).
    AvgFirstLast,
}

impl Pooler {
    pub const ALL: [Pooler; 5] = [
        Pooler::Cls,
        Pooler::ClsBeforePooler,
        Pooler::Avg,
        Pooler::AvgTop2,
        Pooler::AvgFirstLast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pooler::Cls => "cls",
            Pooler::ClsBeforePooler => "cls_before_pooler",
            Pooler::Avg => "avg",
            Pooler::AvgTop2 => "avg_top2",
            Pooler::AvgFirstLast => "avg_first_last",
        }
    }

    /// Whether the pooler reads only `[CLS]`'s last hidden state, so that
    /// [`BertModel::forward_cls`] is enough.
    pub fn reads_only_cls(self) -> bool {
        matches!(self, Pooler::Cls | Pooler::ClsBeforePooler)
    }

    /// The hidden states this pooler needs: [`BertModel::forward_cls`]'s for the `cls` poolers,
    /// every token's otherwise.
    pub fn hidden<B: Backend>(
        self,
        model: &BertModel<B>,
        input: BertInput<B>,
    ) -> Vec<Tensor<B, 3>> {
        if self.reads_only_cls() {
            model.forward_cls(input)
        } else {
            model.forward(input)
        }
    }

    /// The pooled embeddings of a batch, [batch, hidden]: the hidden states this pooler needs, then
    /// the pooling.
    pub fn embed<B: Backend>(
        self,
        model: &BertModel<B>,
        input: BertInput<B>,
    ) -> Result<Tensor<B, 2>> {
        let mask = input.attention_mask.clone();
        let hidden = self.hidden(model, input);
        self.pool(model, &hidden, mask)
    }

    /// Pools `hidden` (the hidden states as [`Pooler::hidden`] returns them) to [batch, hidden].
    pub fn pool<B: Backend>(
        self,
        model: &BertModel<B>,
        hidden: &[Tensor<B, 3>],
        mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 2>> {
        let last = hidden
            .last()
            .cloned()
            .ok_or_else(|| ModelError::Invalid("no hidden states".into()))?;
        let cls = || {
            let [b, _, h] = last.dims();
            last.clone().slice([0..b, 0..1]).reshape([b, h])
        };
        let mean = |x: Tensor<B, 3>| {
            let m = mask.clone().float().unsqueeze_dim::<3>(2);
            (x * m.clone()).sum_dim(1).squeeze_dim::<2>(1) / m.sum_dim(1).squeeze_dim::<2>(1)
        };
        let layer = |i: usize| hidden[i].clone();
        Ok(match self {
            Pooler::Cls => {
                let mlp = model.pooler.as_ref().ok_or_else(|| {
                    ModelError::Invalid("pooler `cls` needs the checkpoint's pooler (dense+tanh), which this model has none of: use `cls_before_pooler`, or train with a fresh MLP".into())
                })?;
                mlp.forward(cls())
            }
            Pooler::ClsBeforePooler => cls(),
            Pooler::Avg => mean(last),
            Pooler::AvgTop2 => {
                if hidden.len() < 3 {
                    return Err(ModelError::Invalid(
                        "pooler `avg_top2` needs at least two layers".into(),
                    ));
                }
                mean((layer(hidden.len() - 1) + layer(hidden.len() - 2)).div_scalar(2.0))
            }
            Pooler::AvgFirstLast => mean((layer(1) + last).div_scalar(2.0)),
        })
    }
}

impl std::fmt::Display for Pooler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Pooler {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Pooler::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Pooler::ALL.iter().map(|p| p.name()).collect();
                ModelError::Invalid(format!("unknown pooler {s:?}: one of {}", names.join(", ")))
            })
    }
}
