//! DeBERTa-v2 and v3 (kf-deberta, mDeBERTa-v3, ...): BERT's layers (`crate::bert`) with
//! disentangled attention, as `transformers/models/deberta_v2/modeling_deberta_v2.py` computes it.
//!
//! What differs from BERT, each switched by `config.json` (`DebertaKeys`):
//! - attention scores add content-to-position (`c2p`) and position-to-content (`p2c`) terms over
//!   relative positions, log-bucketed (`position_buckets`, `max_relative_positions`), read from
//!   `encoder.rel_embeddings` (layer-normed when `norm_rel_ebd` says `layer_norm`) through the
//!   layer's own key/query projections (`share_att_key`) or `pos_key_proj`/`pos_query_proj`; the
//!   scale counts the terms (`sqrt(head_dim * (1 + terms))`);
//! - the mask is 2-D (a padding query attends to nothing, so its softmax is uniform, as there);
//! - embeddings: absolute positions only with `position_biased_input`, token types only when
//!   `type_vocab_size` > 0, `embed_proj` before the LayerNorm, padding zeroed after it;
//! - an optional convolution after the first layer (`conv_kernel_size`);
//! - projections named `query_proj`/`key_proj`/`value_proj`, weights under `deberta.`, no pooler.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear, PaddingConfig1d};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::bert::{activate, dense, init};
use crate::config::{Activation, BertConfig, ModelType};
use crate::{precision, train_mode};

/// How a DeBERTa-v2 model's attention reads relative positions, from its config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relative {
    /// `relative_attention`: whether the c2p/p2c terms are computed at all.
    pub enabled: bool,
    pub c2p: bool,
    pub p2c: bool,
    pub share_att_key: bool,
    /// `position_buckets` when > 0: relative distances beyond half of it are log-bucketed.
    pub buckets: Option<usize>,
    /// `max_relative_positions` (`max_position_embeddings` when < 1).
    pub max_relative: usize,
    /// `norm_rel_ebd` names `layer_norm`.
    pub norm_rel_ebd: bool,
}

impl Relative {
    /// The settings of a DeBERTa-v2 config; `None` for the other types.
    pub fn of(c: &BertConfig) -> Option<Self> {
        (c.model_type == ModelType::DebertaV2).then(|| Self::from_config(c))
    }

    pub fn from_config(c: &BertConfig) -> Self {
        let k = &c.deberta;
        let types = k
            .pos_att_type
            .as_ref()
            .map(|t| t.names())
            .unwrap_or_default();
        let max_relative = match k.max_relative_positions {
            Some(m) if m >= 1 => m as usize,
            _ => c.max_position_embeddings,
        };
        Relative {
            enabled: k.relative_attention.unwrap_or(false),
            c2p: types.iter().any(|t| t == "c2p"),
            p2c: types.iter().any(|t| t == "p2c"),
            share_att_key: k.share_att_key.unwrap_or(false),
            buckets: k.position_buckets.filter(|&b| b > 0).map(|b| b as usize),
            max_relative,
            norm_rel_ebd: k
                .norm_rel_ebd
                .as_deref()
                .unwrap_or("none")
                .to_lowercase()
                .split('|')
                .any(|x| x.trim() == "layer_norm"),
        }
    }

    /// `att_span` (`pos_ebd_size`): the relative embeddings have twice this many rows.
    pub fn span(&self) -> usize {
        self.buckets.unwrap_or(self.max_relative)
    }

    /// `scale_factor`: 1 plus one per relative term named in `pos_att_type` (counted whether or
    /// not `relative_attention` is on, as `transformers` does).
    pub fn scale_factor(&self) -> usize {
        1 + usize::from(self.c2p) + usize::from(self.p2c)
    }

    /// Row `i`, column `j` of the [`rows`, `keys`] table of indices into the relative embeddings:
    /// `clamp(bucket(i - j) + span, 0, 2 span - 1)` (`c2p_pos`; `p2c_pos` is its transpose).
    pub fn indices(&self, rows: usize, keys: usize) -> Vec<i64> {
        let span = self.span() as i64;
        // One bucket per distance i - j, from -(keys - 1) up.
        let first = 1 - keys as i64;
        let by_distance: Vec<i64> = (first..rows as i64)
            .map(|d| {
                let r = match self.buckets {
                    Some(b) => log_bucket(d, b as i64, self.max_relative as i64),
                    None => d,
                };
                (r + span).clamp(0, 2 * span - 1)
            })
            .collect();
        (0..rows as i64)
            .flat_map(|i| (0..keys as i64).map(move |j| i - j - first))
            .map(|d| by_distance[d as usize])
            .collect()
    }
}

/// `make_log_bucket_position`: distances below half the buckets stay as they are, longer ones
/// are log-spaced up to `max_position`, in f32 as PyTorch computes them.
pub fn log_bucket(rel: i64, buckets: i64, max_position: i64) -> i64 {
    let mid = buckets / 2;
    let abs = if rel < mid && rel > -mid {
        mid - 1
    } else {
        rel.abs()
    };
    if abs <= mid {
        return rel;
    }
    let base = (((max_position - 1) as f64 / mid as f64) as f32).ln();
    let log_pos = ((abs as f32 / mid as f32).ln() / base * (mid - 1) as f32).ceil() + mid as f32;
    (log_pos * rel.signum() as f32) as i64
}

/// Rows of `encoder.rel_embeddings` a config asks for (0 without relative attention).
pub fn rel_rows(c: &BertConfig) -> usize {
    let r = Relative::from_config(c);
    if r.enabled {
        r.span().saturating_mul(2)
    } else {
        0
    }
}

/// Parameters DeBERTa-v2 has beyond BERT's layers (relative embeddings, own position projections,
/// the convolution), saturating: part of the size check that refuses absurd configs.
pub fn extra_parameters(c: &BertConfig) -> usize {
    let h = c.hidden_size;
    let r = Relative::from_config(c);
    let own = match r.enabled && !r.share_att_key {
        true => usize::from(r.c2p) + usize::from(r.p2c),
        false => 0,
    };
    let projections = h
        .saturating_mul(h)
        .saturating_mul(own)
        .saturating_mul(c.num_hidden_layers);
    let conv = h
        .saturating_mul(h / c.deberta.conv_groups.unwrap_or(1).max(1))
        .saturating_mul(c.deberta.conv_kernel_size.unwrap_or(0));
    rel_rows(c)
        .saturating_mul(h)
        .saturating_add(projections)
        .saturating_add(conv)
}

/// The DeBERTa-v2 settings `transformers` would refuse, or compute garbage from.
pub fn check(c: &BertConfig) -> Result<(), String> {
    let r = Relative::from_config(c);
    if let Some(t) = &c.deberta.pos_att_type {
        let unknown: Vec<String> = t
            .names()
            .into_iter()
            .filter(|n| n != "c2p" && n != "p2c")
            .collect();
        if !unknown.is_empty() {
            // DeBERTa (v1)'s `p2p`: DeBERTa-v2 ignores it, so do we, but not silently.
            tracing::warn!("pos_att_type {unknown:?} is ignored, as DeBERTa-v2 ignores it");
        }
    }
    if r.enabled
        && let Some(b) = r.buckets
        && (b < 2 || r.max_relative <= b / 2 + 1)
    {
        return Err(format!(
            "position_buckets {b} needs max_relative_positions above {} (it is {})",
            b / 2 + 1,
            r.max_relative
        ));
    }
    let head = c.hidden_size / c.num_attention_heads.max(1);
    if let Some(v) = c.extra.get("attention_head_size")
        && v.as_u64() != Some(head as u64)
    {
        return Err(format!(
            "attention_head_size {v} is not supported (only hidden_size / num_attention_heads, {head})"
        ));
    }
    let kernel = c.deberta.conv_kernel_size.unwrap_or(0);
    let groups = c.deberta.conv_groups.unwrap_or(1);
    if kernel > 0 {
        if kernel.is_multiple_of(2) {
            return Err(format!(
                "conv_kernel_size {kernel} is even: the convolution would change the length"
            ));
        }
        if groups == 0 || !c.hidden_size.is_multiple_of(groups) {
            return Err(format!(
                "hidden_size {} is not a multiple of conv_groups {groups}",
                c.hidden_size
            ));
        }
    }
    Ok(())
}

/// Whether the embeddings add absolute positions (`position_biased_input`, default true).
pub fn position_biased_input(c: &BertConfig) -> bool {
    c.deberta.position_biased_input.unwrap_or(true)
}

/// The relative-position part of one forward pass: the (normed) embedding rows the sequence
/// reaches and the index table into them, shared by every layer.
pub struct RelativeInput<B: Backend> {
    /// [window, hidden]: the rows of `rel_embeddings` some query-key pair reads.
    pub embeddings: Tensor<B, 2>,
    /// [batch, heads, rows, keys]: each pair's row in `embeddings` (`c2p_pos`).
    pub c2p: Tensor<B, 4, Int>,
    /// [batch, heads, keys, rows]: the transpose (`p2c_pos`).
    pub p2c: Tensor<B, 4, Int>,
}

impl Relative {
    /// The relative input for `rows` queries over `keys` keys. Only the rows of the embedding
    /// table the indices reach are kept (at most `2 keys - 1` of kf-deberta's 512), which makes the
    /// position projections and products a fraction of `transformers`' cost with the same values.
    pub fn input<B: Backend>(
        &self,
        table: Tensor<B, 2>,
        norm: Option<&LayerNorm<B>>,
        [batch, heads, rows, keys]: [usize; 4],
    ) -> RelativeInput<B> {
        let device = table.device();
        let idx = self.indices(rows, keys);
        let lo = *idx.iter().min().unwrap_or(&0);
        let hi = *idx.iter().max().unwrap_or(&0);
        let width = table.dims()[1];
        let mut embeddings = table.slice([lo as usize..hi as usize + 1, 0..width]);
        if let Some(ln) = norm {
            embeddings = ln.forward(embeddings); // row-wise: the same as norming the whole table
        }
        let shifted: Vec<i64> = idx.iter().map(|i| i - lo).collect();
        let table = |data: Vec<i64>, shape: [usize; 2]| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, shape), &device)
                .unsqueeze::<4>()
                .repeat_dim(0, batch)
                .repeat_dim(1, heads)
        };
        let mut transposed = vec![0i64; rows * keys];
        for i in 0..rows {
            for j in 0..keys {
                transposed[j * rows + i] = shifted[i * keys + j];
            }
        }
        RelativeInput {
            c2p: table(shifted, [rows, keys]),
            p2c: table(transposed, [keys, rows]),
            embeddings,
        }
    }
}

/// The c2p and p2c terms ([batch, heads, rows, keys], already scaled) for queries `q`
/// ([batch, heads, rows, head_dim]) and keys `k` ([batch, heads, keys, head_dim]):
/// `c2p[i, j] = q_i . pos_key[idx(i, j)]`, `p2c[i, j] = k_j . pos_query[idx(i, j)]`.
pub fn bias<B: Backend>(
    r: &Relative,
    projections: [Option<&Linear<B>>; 2],
    rel: &RelativeInput<B>,
    rel_dropout: &Dropout,
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
) -> Option<Tensor<B, 4>> {
    let [b, heads, rows, d] = q.dims();
    let keys = k.dims()[2];
    let scale = 1.0 / ((d * r.scale_factor()) as f64).sqrt();
    // `pos_dropout` of each layer, on the relative embeddings.
    let table = train_mode::dropout(rel_dropout, rel.embeddings.clone());
    let w = table.dims()[0];
    // x . positions for every head: [batch, heads, n, d] x [w, hidden] -> [batch, heads, n, w], as
    // one [heads, batch * n, d] x [heads, d, w] product. (`transformers` repeats the positions
    // over the batch instead; in burn 0.21 that form trained wrong on the cubecl backends: the
    // position gradients were off by more than their size, found by the wgpu training test.)
    let scores = |x: Tensor<B, 4>, proj: &Linear<B>| {
        let n = x.dims()[2];
        let x = x.swap_dims(0, 1).reshape([heads, b * n, d]);
        let positions = precision::linear(proj, table.clone())
            .reshape([w, heads, d])
            .permute([1, 2, 0]);
        precision::matmul(x, positions)
            .reshape([heads, b, n, w])
            .swap_dims(0, 1)
    };
    let [pos_key, pos_query] = projections;
    let c2p = pos_key.map(|p| scores(q, p).gather(3, rel.c2p.clone()).mul_scalar(scale));
    let p2c = pos_query.map(|p| {
        scores(k, p)
            .gather(3, rel.p2c.clone())
            .swap_dims(2, 3)
            .mul_scalar(scale)
    });
    debug_assert!(
        c2p.iter()
            .chain(&p2c)
            .all(|t| t.dims() == [b, heads, rows, keys])
    );
    match (c2p, p2c) {
        (Some(a), Some(p)) => Some(a + p),
        (a, p) => a.or(p),
    }
}

/// `ConvLayer`: a 1-D convolution over the embeddings, added to the first layer's output.
#[derive(Module, Debug)]
pub struct ConvLayer<B: Backend> {
    pub conv: Conv1d<B>,
    pub layer_norm: LayerNorm<B>,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> ConvLayer<B> {
    /// The layer a config asks for (`conv_kernel_size` > 0), else `None`.
    pub fn new(c: &BertConfig, device: &B::Device) -> Option<Self> {
        let kernel = c.deberta.conv_kernel_size.filter(|&k| k > 0)?;
        let h = c.hidden_size;
        Some(ConvLayer {
            conv: Conv1dConfig::new(h, h, kernel)
                .with_groups(c.deberta.conv_groups.unwrap_or(1))
                .with_padding(PaddingConfig1d::Explicit(
                    (kernel - 1) / 2,
                    (kernel - 1) / 2,
                ))
                .with_initializer(init())
                .init(device),
            layer_norm: crate::bert::layer_norm(c, h, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            activation: c.deberta.conv_act.unwrap_or(Activation::Tanh),
        })
    }

    /// `LayerNorm(layer_output + act(conv(embeddings)))`, padding zeroed; `embeddings` is
    /// [batch, seq, hidden], `layer_output` its first rows, `mask` [batch, seq, 1] (1 for tokens).
    pub fn forward(
        &self,
        embeddings: Tensor<B, 3>,
        layer_output: Tensor<B, 3>,
        mask: Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let [b, rows, h] = layer_output.dims();
        let out = self
            .conv
            .forward(embeddings.swap_dims(1, 2))
            .swap_dims(1, 2);
        let mask = mask.slice([0..b, 0..rows]);
        let out = out.slice([0..b, 0..rows, 0..h]) * mask.clone();
        let out = activate(self.activation, train_mode::dropout(&self.dropout, out));
        self.layer_norm.forward(layer_output + out) * mask
    }
}

/// The projection of `[batch, seq, e]` embeddings to the hidden size (`embed_proj`, no bias).
pub fn embed_proj<B: Backend>(c: &BertConfig, device: &B::Device) -> Option<Linear<B>> {
    let e = c.embedding_width();
    (e != c.hidden_size).then(|| {
        burn::nn::LinearConfig::new(e, c.hidden_size)
            .with_bias(false)
            .with_initializer(init())
            .init(device)
    })
}

/// Applies `embed_proj` where the model has one.
pub fn project<B: Backend>(proj: Option<&Linear<B>>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    match proj {
        Some(p) => dense(p, x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kf_deberta_base_config_reads_as_published() {
        // kakaobank/kf-deberta-base's config.json (its keys that matter here).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"model_type": "deberta-v2", "vocab_size": 130000, "hidden_size": 768,
                "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 0,
                "layer_norm_eps": 1e-7, "relative_attention": true, "max_relative_positions": -1,
                "position_buckets": 256, "pos_att_type": ["p2c", "c2p"], "share_att_key": true,
                "norm_rel_ebd": "layer_norm", "position_biased_input": false, "pad_token_id": 0}"#,
        )
        .unwrap();
        let c = BertConfig::from_file(&path).unwrap();
        let r = Relative::from_config(&c);
        assert_eq!(
            (r.enabled, r.c2p, r.p2c, r.share_att_key, r.norm_rel_ebd),
            (true, true, true, true, true)
        );
        assert_eq!((r.buckets, r.max_relative, r.span()), (Some(256), 512, 256));
        assert_eq!((r.scale_factor(), rel_rows(&c)), (3, 512));
        assert!(!position_biased_input(&c));
        // Written back with the same keys, for transformers to read.
        let back: serde_json::Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
        assert_eq!(back["pos_att_type"], serde_json::json!(["p2c", "c2p"]));
        assert_eq!(back["position_buckets"], 256);
        assert_eq!(back["architectures"][0], "DebertaV2Model");
    }

    #[test]
    fn indices_clamp_to_the_span_and_transpose() {
        let r = Relative {
            enabled: true,
            c2p: true,
            p2c: true,
            share_att_key: true,
            buckets: None,
            max_relative: 2,
            norm_rel_ebd: false,
        };
        // clamp(i - j + 2, 0, 3) over 3 queries and 4 keys.
        assert_eq!(r.indices(3, 4), [2, 1, 0, 0, 3, 2, 1, 0, 3, 3, 2, 1]);
    }

    #[test]
    fn buckets_keep_short_distances_and_log_space_long_ones() {
        // kf-deberta: 256 buckets over 512 positions.
        assert_eq!(log_bucket(0, 256, 512), 0);
        assert_eq!(log_bucket(-128, 256, 512), -128);
        assert_eq!(log_bucket(127, 256, 512), 127);
        assert!(log_bucket(300, 256, 512) > 128 && log_bucket(300, 256, 512) < 256);
        assert_eq!(log_bucket(-300, 256, 512), -log_bucket(300, 256, 512));
        assert_eq!(log_bucket(511, 256, 512), 255);
    }
}
