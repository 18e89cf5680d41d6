//! SimCSE's optional masked-language-model auxiliary objective (`--do_mlm`): BERT's masking as the
//! official `train.py` data collator does it, `BertLMPredictionHead`, and the cross-entropy over
//! the masked tokens.
//!
//! As in the official `BertForCL`, the head is its own module, freshly initialised and not tied to
//! the word embeddings (`lm_head.*` does not match a checkpoint's `cls.predictions.*` keys), and it
//! is not part of the exported encoder.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, activation};

use crate::bert::{activate, init};
use crate::config::{Activation, BertConfig};
use crate::error::{ModelError, Result};
use crate::rng::{splitmix64, uniform};
use crate::tokenizer::{Batch, Tokenizer};

/// `BertLMPredictionHead`: dense + activation + LayerNorm, then the projection onto the vocabulary.
#[derive(Module, Debug)]
pub struct LmHead<B: Backend> {
    pub dense: Linear<B>,
    pub layer_norm: LayerNorm<B>,
    pub decoder: Linear<B>,
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> LmHead<B> {
    /// A fresh head as `transformers` initialises one: weights ~ N(0, 0.02), biases 0.
    pub fn new(c: &BertConfig, device: &B::Device) -> Self {
        let linear = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_initializer(init())
                .init::<B>(device)
        };
        let zero_bias = |mut l: Linear<B>| {
            l.bias = l.bias.map(|b| b.map(|t| t.zeros_like()));
            l
        };
        LmHead {
            dense: zero_bias(linear(c.hidden_size, c.hidden_size)),
            layer_norm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            decoder: zero_bias(linear(c.hidden_size, c.vocab_size)),
            activation: c.hidden_act,
        }
    }

    /// Vocabulary logits [n, vocab] for hidden states [n, hidden].
    pub fn forward(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = activate(self.activation, self.dense.forward(hidden));
        self.decoder.forward(self.layer_norm.forward(x))
    }
}

/// What the masking chose for a padded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedBatch {
    /// The batch's ids with the chosen tokens replaced (row-major [batch, seq], as `Batch`).
    pub input_ids: Vec<i32>,
    /// Flat positions (row * seq + column) of the chosen tokens, in order.
    pub positions: Vec<i64>,
    /// The original id at each chosen position: the MLM targets.
    pub targets: Vec<i64>,
}

/// How tokens are chosen and replaced: BERT's recipe, the official collator's defaults.
#[derive(Debug, Clone)]
pub struct MaskingRule {
    /// Share of non-special tokens chosen (SimCSE's `mlm_probability`, 0.15).
    pub probability: f64,
    /// `[MASK]`'s id: 80% of the chosen tokens become it.
    pub mask_id: i32,
    /// Ids never chosen (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`: the tokenizer's special ids,
    /// as `get_special_tokens_mask` marks them).
    pub special_ids: Vec<i32>,
    /// Half of the remaining 20% become a uniformly random id below this; the rest stay as they are.
    pub vocab_size: usize,
}

impl MaskingRule {
    /// The rule for `tokenizer`'s vocabulary; an error when it has no mask token.
    pub fn for_tokenizer(tokenizer: &Tokenizer, probability: f64) -> Result<Self> {
        let mask_id = tokenizer.mask_id().ok_or_else(|| ModelError::Tokenizer {
            path: tokenizer.source().into(),
            message: "no [MASK] or <mask> token, which the MLM loss (do_mlm) needs".into(),
        })?;
        Ok(MaskingRule {
            probability,
            mask_id: mask_id as i32,
            special_ids: tokenizer
                .special_ids()
                .into_iter()
                .map(|i| i as i32)
                .collect(),
            vocab_size: tokenizer.vocab_size(),
        })
    }

    /// Masks `batch` (padding included in the special ids, so it is never chosen): each token is
    /// chosen with `probability`; a chosen token becomes `[MASK]` (80%), a random id (10%) or stays
    /// (10%), exactly the official collator's `mask_tokens`. A pure function of the seed, so a
    /// resumed run masks the same way.
    pub fn apply(&self, batch: &Batch, seed: u64) -> MaskedBatch {
        let mut state = seed;
        let mut input_ids = batch.input_ids.clone();
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (pos, id) in input_ids.iter_mut().enumerate() {
            let eligible = batch.attention_mask[pos] != 0 && !self.special_ids.contains(id);
            if !eligible || uniform(&mut state) >= self.probability {
                continue;
            }
            positions.push(pos as i64);
            targets.push(i64::from(*id));
            let r = uniform(&mut state);
            if r < 0.8 {
                *id = self.mask_id;
            } else if r < 0.9 {
                *id = (splitmix64(&mut state) % self.vocab_size as u64) as i32;
            }
        }
        MaskedBatch {
            input_ids,
            positions,
            targets,
        }
    }
}

/// Mean cross-entropy of the head's predictions at the masked positions of `last_hidden`
/// ([batch, seq, hidden]). Only the masked rows go through the head: the loss is the same as
/// `CrossEntropyLoss(ignore_index=-100)` over every position, without projecting the unmasked
/// tokens onto the vocabulary. `None` when nothing was masked (the official loss would be NaN).
pub fn mlm_loss<B: Backend>(
    head: &LmHead<B>,
    last_hidden: Tensor<B, 3>,
    masked: &MaskedBatch,
) -> Option<Tensor<B, 1>> {
    let n = masked.positions.len();
    if n == 0 {
        return None;
    }
    let device = last_hidden.device();
    let [b, s, h] = last_hidden.dims();
    let index =
        |v: &[i64]| Tensor::<B, 1, Int>::from_data(TensorData::new(v.to_vec(), [n]), &device);
    let rows = last_hidden
        .reshape([b * s, h])
        .select(0, index(&masked.positions));
    let log_probs = activation::log_softmax(head.forward(rows), 1);
    let picked = log_probs.gather(1, index(&masked.targets).reshape([n, 1]));
    Some(picked.mean().neg())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[&[i32]]) -> Batch {
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut b = Batch {
            input_ids: vec![],
            attention_mask: vec![],
            batch: rows.len(),
            seq,
        };
        for r in rows {
            for k in 0..seq {
                b.input_ids.push(r.get(k).copied().unwrap_or(0));
                b.attention_mask.push(i32::from(k < r.len()));
            }
        }
        b
    }

    fn rule() -> MaskingRule {
        MaskingRule {
            probability: 0.15,
            mask_id: 4,
            special_ids: vec![0, 1, 2, 3, 4],
            vocab_size: 1000,
        }
    }

    #[test]
    fn masking_follows_berts_recipe_and_spares_special_tokens() {
        // 400 rows of [CLS] w w ... [SEP] [PAD] [PAD]: 20,000 eligible tokens.
        let row: Vec<i32> = std::iter::once(2)
            .chain(100..150)
            .chain(std::iter::once(3))
            .collect();
        let short: Vec<i32> = row[..48].iter().copied().chain([3]).collect();
        let rows: Vec<&[i32]> = (0..400)
            .map(|i| if i % 2 == 0 { &row[..] } else { &short[..] })
            .collect();
        let b = batch(&rows);
        let m = rule().apply(&b, 7);
        let eligible = 200 * 50 + 200 * 47;
        let share = m.positions.len() as f64 / eligible as f64;
        assert!((share - 0.15).abs() < 0.01, "masked share {share}");
        let (mut to_mask, mut kept, mut random) = (0, 0, 0);
        for (&p, &t) in m.positions.iter().zip(&m.targets) {
            let p = p as usize;
            assert_eq!(i64::from(b.input_ids[p]), t, "target is the original id");
            assert!(
                (100..150).contains(&b.input_ids[p]),
                "a special token or pad was chosen"
            );
            match m.input_ids[p] {
                4 => to_mask += 1,
                x if i64::from(x) == t => kept += 1,
                _ => random += 1,
            }
        }
        let n = m.positions.len() as f64;
        assert!((to_mask as f64 / n - 0.8).abs() < 0.03);
        assert!((kept as f64 / n - 0.1).abs() < 0.03, "kept {kept}");
        assert!((random as f64 / n - 0.1).abs() < 0.03);
        // Unchosen tokens are untouched; the same seed masks the same way, another seed not.
        for p in 0..b.input_ids.len() {
            if !m.positions.contains(&(p as i64)) {
                assert_eq!(m.input_ids[p], b.input_ids[p]);
            }
        }
        assert_eq!(m, rule().apply(&b, 7));
        assert_ne!(m, rule().apply(&b, 8));
    }

    #[test]
    fn the_rule_comes_from_the_vocabulary_and_needs_a_mask_token() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        let settings = crate::tokenizer::WordPieceSettings::default();
        std::fs::write(&vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n가\n[MASK]\n").unwrap();
        let r =
            MaskingRule::for_tokenizer(&Tokenizer::from_vocab(&vocab, &settings).unwrap(), 0.15)
                .unwrap();
        assert_eq!((r.mask_id, r.vocab_size), (5, 6));
        assert_eq!(r.special_ids, [0, 1, 2, 3, 5]);
        std::fs::write(&vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n가\n").unwrap();
        let err =
            MaskingRule::for_tokenizer(&Tokenizer::from_vocab(&vocab, &settings).unwrap(), 0.15)
                .unwrap_err()
                .to_string();
        assert!(err.contains("vocab.txt") && err.contains("[MASK]"), "{err}");
    }

    #[test]
    fn loss_is_the_cross_entropy_at_the_masked_positions() {
        type B = crate::backend::Cpu;
        let device = Default::default();
        let c: BertConfig = serde_json::from_str(
            r#"{"vocab_size":7,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":8}"#,
        )
        .unwrap();
        let head = LmHead::<B>::new(&c, &device);
        let hidden = Tensor::<B, 3>::random(
            [2, 3, 4],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let masked = MaskedBatch {
            input_ids: vec![],
            positions: vec![1, 5],
            targets: vec![3, 6],
        };
        let got: f32 = mlm_loss(&head, hidden.clone(), &masked)
            .unwrap()
            .into_scalar();
        // By hand: -log softmax(logits[row])[target], averaged over the two rows.
        let logits = head
            .forward(hidden.reshape([6, 4]))
            .into_data()
            .into_vec::<f32>()
            .unwrap();
        let ce = |row: usize, t: usize| {
            let l = &logits[row * 7..row * 7 + 7];
            let lse = l.iter().map(|x| x.exp()).sum::<f32>().ln();
            lse - l[t]
        };
        let want = (ce(1, 3) + ce(5, 6)) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let none = MaskedBatch {
            input_ids: vec![],
            positions: vec![],
            targets: vec![],
        };
        assert!(mlm_loss(&head, Tensor::zeros([1, 1, 4], &device), &none).is_none());
    }
}
