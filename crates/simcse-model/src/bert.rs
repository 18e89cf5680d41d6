//! BERT in burn, mirroring `transformers/models/bert/modeling_bert.py` (BertModel) module by module.
//! RoBERTa, XLM-RoBERTa and ELECTRA are this model with the differences in `roberta` (position
//! ids) and `electra` (projected embeddings), chosen by the config's `model_type`.
//!
//! Module and field names follow Hugging Face's (`embeddings.word_embeddings`,
//! `encoder.layer.N.attention.self.query`, ...), so the checkpoint key mapping in `checkpoint` is only
//! `LayerNorm` <-> `layer_norm` and `attention.self` <-> `attention.self_attention` (a Rust keyword).

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData, activation};

use crate::backend::on_flex;
use crate::config::{Activation, BertConfig};
use crate::tokenizer::Batch;
use crate::{electra, precision, roberta, train_mode};

/// `transformers`' `initializer_range` default: weights ~ N(0, 0.02) when a model is made from scratch.
pub(crate) fn init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

pub(crate) fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_initializer(init())
        .init(device)
}

fn layer_norm<B: Backend>(c: &BertConfig, width: usize, device: &B::Device) -> LayerNorm<B> {
    // The epsilon comes from config.json (1e-12 for BERT), not burn's default 1e-5.
    LayerNormConfig::new(width)
        .with_epsilon(c.layer_norm_eps)
        .init(device)
}

/// A linear layer on [batch, seq, d_in] as one [batch * seq, d_in] matrix product: the backends
/// treat a 3-D input as `batch` small products, several times slower on CPU.
fn dense<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = precision::linear(layer, x.reshape([b * s, d]));
    let out = y.dims()[1];
    y.reshape([b, s, out])
}

/// `BertEmbeddings`: word + position + token type, LayerNorm, dropout (ELECTRA: of its
/// `embedding_size`).
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
    pub dropout: Dropout,
    /// RoBERTa's `padding_idx`, after which positions count; `None`: 0, 1, 2, ... (BERT).
    #[module(skip)]
    pub padding_idx: Option<usize>,
}

impl<B: Backend> BertEmbeddings<B> {
    fn new(c: &BertConfig, device: &B::Device) -> Self {
        let emb = |n, d| {
            EmbeddingConfig::new(n, d)
                .with_initializer(init())
                .init(device)
        };
        let width = c.embedding_width();
        BertEmbeddings {
            word_embeddings: emb(c.vocab_size, width),
            position_embeddings: emb(c.max_position_embeddings, width),
            token_type_embeddings: emb(c.type_vocab_size, width),
            layer_norm: layer_norm(c, width, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            padding_idx: c.model_type.offset_positions().then_some(c.pad_token_id),
        }
    }

    fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        // One row of positions per sentence: a [1, seq] row broadcast in the sum below made burn-flex
        // copy it strided into every row, and BERT encoded 3-9% slower than RoBERTa
        // (BENCHMARKS.md "Architectures").
        let positions = match self.padding_idx {
            Some(p) => roberta::position_ids(input_ids.clone(), p),
            None => Tensor::<B, 1, Int>::arange(0..seq as i64, &device)
                .reshape([1, seq])
                .repeat_dim(0, batch),
        };
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(token_type_ids);
        train_mode::dropout(&self.dropout, self.layer_norm.forward(x))
    }
}

/// `BertSelfAttention`: multi-head scaled dot-product attention with an additive padding mask.
#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub dropout: Dropout,
    pub num_heads: usize,
}

impl<B: Backend> BertSelfAttention<B> {
    /// Attention of the tokens in `queries` ([batch, rows, hidden]: all of `x`'s or a prefix) over
    /// all tokens of `x` ([batch, seq, hidden]).
    fn forward(&self, queries: Tensor<B, 3>, x: Tensor<B, 3>, mask: &Mask<B>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let rows = queries.dims()[1];
        let heads = |t: Tensor<B, 3>| {
            let n = t.dims()[1];
            t.reshape([b, n, self.num_heads, h / self.num_heads])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (
            heads(dense(&self.query, queries)),
            heads(dense(&self.key, x.clone())),
            heads(dense(&self.value, x)),
        );
        let context = if train_mode::training::<B>(&q.device()) {
            // Training: attention dropout needs the probabilities, so compute them explicitly.
            let scale = 1.0 / ((h / self.num_heads) as f64).sqrt();
            let scores =
                precision::matmul(q, k.swap_dims(2, 3)).mul_scalar(scale) + mask.additive.clone();
            precision::matmul(
                train_mode::dropout(&self.dropout, activation::softmax(scores, 3)),
                v,
            )
        } else {
            // Inference: the backend's fused attention (same result, less memory traffic).
            let m = mask.masked.clone().slice([0..b, 0..1, 0..rows, 0..s]);
            attention(q, k, v, Some(m), None, AttentionModuleOptions::default())
        };
        context.swap_dims(1, 2).reshape([b, rows, h])
    }
}

/// `BertSelfOutput` and `BertOutput`: dense, dropout, residual, LayerNorm.
#[derive(Module, Debug)]
pub struct BertResidual<B: Backend> {
    pub dense: Linear<B>,
    pub layer_norm: LayerNorm<B>,
    pub dropout: Dropout,
}

impl<B: Backend> BertResidual<B> {
    fn new(c: &BertConfig, d_in: usize, device: &B::Device) -> Self {
        BertResidual {
            dense: linear(d_in, c.hidden_size, device),
            layer_norm: layer_norm(c, c.hidden_size, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
        }
    }

    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        self.layer_norm
            .forward(train_mode::dropout(&self.dropout, dense(&self.dense, x)) + residual)
    }
}

/// `BertAttention`: self-attention and its output block.
#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    pub self_attention: BertSelfAttention<B>,
    pub output: BertResidual<B>,
}

/// `BertIntermediate`: dense + activation.
#[derive(Module, Debug)]
pub struct BertIntermediate<B: Backend> {
    pub dense: Linear<B>,
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> BertIntermediate<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        activate(self.activation, dense(&self.dense, x))
    }
}

/// The hidden activation of `config.json`'s `hidden_act`.
pub fn activate<B: Backend, const D: usize>(act: Activation, x: Tensor<B, D>) -> Tensor<B, D> {
    match act {
        Activation::Gelu if needs_exact_gelu_grad::<B>(&x.device()) => {
            // 0.5 x (1 + erf(x / sqrt 2)): autodiff of erf gives the exact gradient.
            let cdf = x
                .clone()
                .div_scalar(std::f64::consts::SQRT_2)
                .erf()
                .add_scalar(1.0);
            x * cdf.mul_scalar(0.5)
        }
        Activation::Gelu => activation::gelu(x),
        Activation::GeluNew => activation::gelu_approximate(x),
        Activation::Relu => activation::relu(x),
    }
}

/// Whether exact GELU must be built from `erf` to train right on this backend. burn's default
/// `gelu_backward`, which the cubecl backends (wgpu, CUDA) use in burn 0.21, differentiates the tanh
/// approximation even for exact GELU (gradients off by up to ~2e-3; the wgpu test found it).
/// burn-flex has an exact fused backward, so the CPU keeps the one-op path; inference always does.
/// (GradCache's first pass, training without a graph, takes the training path to compute the same.)
fn needs_exact_gelu_grad<B: Backend>(device: &B::Device) -> bool {
    train_mode::training::<B>(device) && !on_flex::<B>(device)
}

/// `BertLayer`: attention, then the feed-forward block (post-LayerNorm).
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub attention: BertAttention<B>,
    pub intermediate: BertIntermediate<B>,
    pub output: BertResidual<B>,
}

impl<B: Backend> BertLayer<B> {
    fn new(c: &BertConfig, device: &B::Device) -> Self {
        BertLayer {
            attention: BertAttention {
                self_attention: BertSelfAttention {
                    query: linear(c.hidden_size, c.hidden_size, device),
                    key: linear(c.hidden_size, c.hidden_size, device),
                    value: linear(c.hidden_size, c.hidden_size, device),
                    dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
                    num_heads: c.num_attention_heads,
                },
                output: BertResidual::new(c, c.hidden_size, device),
            },
            intermediate: BertIntermediate {
                dense: linear(c.hidden_size, c.intermediate_size, device),
                activation: c.hidden_act,
            },
            output: BertResidual::new(c, c.intermediate_size, device),
        }
    }

    /// The layer's output for the first `rows` tokens (all when `None`); every token is attended to.
    fn forward(&self, x: Tensor<B, 3>, mask: &Mask<B>, rows: Option<usize>) -> Tensor<B, 3> {
        let queries = match rows {
            Some(r) => {
                let [b, _, h] = x.dims();
                x.clone().slice([0..b, 0..r, 0..h])
            }
            None => x.clone(),
        };
        let a = self.attention.output.forward(
            self.attention
                .self_attention
                .forward(queries.clone(), x, mask),
            queries,
        );
        self.output.forward(self.intermediate.forward(a.clone()), a)
    }
}

#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    pub layer: Vec<BertLayer<B>>,
}

/// `BertPooler`: dense + tanh on the first token. SimCSE's `cls` pooler MLP is this module.
#[derive(Module, Debug)]
pub struct BertPooler<B: Backend> {
    pub dense: Linear<B>,
}

impl<B: Backend> BertPooler<B> {
    pub fn new(hidden: usize, device: &B::Device) -> Self {
        BertPooler {
            dense: linear(hidden, hidden, device),
        }
    }

    /// tanh(dense(x)) for `x` of shape [batch, hidden].
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        activation::tanh(self.dense.forward(x))
    }
}

/// The padding mask in the two forms the attention paths use.
struct Mask<B: Backend> {
    /// [batch, 1, 1, seq]: 0 for tokens, the most negative f32 for padding (as `transformers`).
    additive: Tensor<B, 4>,
    /// [batch, 1, seq, seq]: true for padding keys, materialised once per forward pass: a
    /// broadcast [batch, 1, 1, seq] view makes burn-flex copy it to [batch, heads, seq, seq] in
    /// every layer, element by element.
    masked: Tensor<B, 4, burn::tensor::Bool>,
}

/// Query rows the last layer of [`BertModel::forward_cls`] computes: `[CLS]` alone on burn-flex,
/// two elsewhere. A single row makes the attention products vector-matrix products, and cubecl's
/// matmul autotune (cubek-matmul 0.2, burn 0.21) caches a vector-matrix kernel under a key that
/// ignores whether the key length is a multiple of the GPU's plane size, then runs it where it
/// cannot ("Rhs dimension n=11 must be a multiple of plane size 8"). Two rows make them ordinary
/// matrix products; rows do not interact, so `[CLS]`'s values are the same.
pub fn cls_rows<B: Backend>(device: &B::Device) -> usize {
    if on_flex::<B>(device) { 1 } else { 2 }
}

/// `BertModel`: embeddings, encoder and the optional pooler (and ELECTRA's projection).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    /// ELECTRA's `embeddings_project` (see `electra`); `None` for the other types.
    pub embeddings_project: Option<Linear<B>>,
    pub encoder: BertEncoder<B>,
    pub pooler: Option<BertPooler<B>>,
}

/// A tokenized batch on the device: all [batch, seq]; `attention_mask` is 1 for tokens, 0 for padding.
#[derive(Debug, Clone)]
pub struct BertInput<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    pub attention_mask: Tensor<B, 2, Int>,
    pub token_type_ids: Tensor<B, 2, Int>,
}

impl<B: Backend> BertInput<B> {
    /// Moves a padded batch to the device (token types all 0: single sentences).
    pub fn new(batch: &Batch, device: &B::Device) -> Self {
        let shape = [batch.batch, batch.seq];
        let tensor =
            |v: &[i32]| Tensor::<B, 2, Int>::from_data(TensorData::new(v.to_vec(), shape), device);
        let input_ids = tensor(&batch.input_ids);
        BertInput {
            token_type_ids: input_ids.zeros_like(),
            input_ids,
            attention_mask: tensor(&batch.attention_mask),
        }
    }
}

impl<B: Backend> BertModel<B> {
    /// A randomly initialised model (weights ~ N(0, 0.02) as `transformers` does), with a pooler.
    pub fn new(c: &BertConfig, device: &B::Device) -> Self {
        BertModel {
            embeddings: BertEmbeddings::new(c, device),
            embeddings_project: electra::embeddings_project(c, device),
            encoder: BertEncoder {
                layer: (0..c.num_hidden_layers)
                    .map(|_| BertLayer::new(c, device))
                    .collect(),
            },
            pooler: Some(BertPooler::new(c.hidden_size, device)),
        }
    }

    /// Every hidden state: index 0 is the embedding output, index i the output of layer i
    /// (`output_hidden_states=True` in `transformers`). The last one is `last_hidden_state`.
    pub fn forward(&self, input: BertInput<B>) -> Vec<Tensor<B, 3>> {
        self.forward_last_rows(input, None)
    }

    /// As [`forward`](Self::forward), but the last layer computes only the first
    /// [`cls_rows`] tokens: the last hidden state is [batch, rows, hidden], `[CLS]` first. That is
    /// all the `cls` poolers read, and it skips nearly all of the last layer (a sixth of MiniLM's
    /// work).
    pub fn forward_cls(&self, input: BertInput<B>) -> Vec<Tensor<B, 3>> {
        let [_, seq] = input.input_ids.dims();
        let rows = cls_rows::<B>(&input.input_ids.device()).min(seq);
        self.forward_last_rows(input, Some(rows))
    }

    fn forward_last_rows(&self, input: BertInput<B>, rows: Option<usize>) -> Vec<Tensor<B, 3>> {
        let [b, s] = input.input_ids.dims();
        let pad = input.attention_mask.equal_elem(0).reshape([b, 1, 1, s]);
        let mask = Mask {
            additive: pad.clone().float().mul_scalar(f32::MIN),
            masked: pad.repeat_dim(2, s),
        };
        let mut embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        if let Some(project) = &self.embeddings_project {
            embedded = dense(project, embedded);
        }
        let mut hidden = vec![embedded];
        let layers = self.encoder.layer.len();
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let rows = if i + 1 == layers { rows } else { None };
            let next = layer.forward(hidden[hidden.len() - 1].clone(), &mask, rows);
            hidden.push(next);
        }
        hidden
    }
}
