//! BERT in burn, mirroring `transformers/models/bert/modeling_bert.py` (BertModel) module by module.
//! RoBERTa, XLM-RoBERTa, ELECTRA and DeBERTa-v2 are this model with the differences in `roberta`
//! (position ids), `electra` (projected embeddings) and `deberta` (disentangled relative
//! attention), chosen by the config's `model_type`.
//!
//! Module and field names follow Hugging Face's (`embeddings.word_embeddings`,
//! `encoder.layer.N.attention.self.query`, ...), so the checkpoint key mapping in `checkpoint` is only
//! `LayerNorm` <-> `layer_norm` and `attention.self` <-> `attention.self_attention` (a Rust keyword),
//! and DeBERTa's `query_proj` <-> `query` (likewise `key`, `value`).

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
use crate::config::{Activation, BertConfig, ModelType};
use crate::deberta::{self, ConvLayer, Relative, RelativeInput};
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

pub(crate) fn layer_norm<B: Backend>(
    c: &BertConfig,
    width: usize,
    device: &B::Device,
) -> LayerNorm<B> {
    // The epsilon comes from config.json (1e-12 for BERT), not burn's default 1e-5.
    LayerNormConfig::new(width)
        .with_epsilon(c.layer_norm_eps)
        .init(device)
}

/// A linear layer on [batch, seq, d_in] as one [batch * seq, d_in] matrix product: the backends
/// treat a 3-D input as `batch` small products, several times slower on CPU.
pub(crate) fn dense<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = precision::linear(layer, x.reshape([b * s, d]));
    let out = y.dims()[1];
    y.reshape([b, s, out])
}

/// `BertEmbeddings`: word + position + token type, LayerNorm, dropout (ELECTRA: of its
/// `embedding_size`; DeBERTa-v2: see `deberta`).
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    /// `None` for DeBERTa-v2 without `position_biased_input`.
    pub position_embeddings: Option<Embedding<B>>,
    /// `None` where `type_vocab_size` is 0 (DeBERTa-v2).
    pub token_type_embeddings: Option<Embedding<B>>,
    /// DeBERTa-v2's `embed_proj`, before the LayerNorm.
    pub embed_proj: Option<Linear<B>>,
    pub layer_norm: LayerNorm<B>,
    pub dropout: Dropout,
    /// RoBERTa's `padding_idx`, after which positions count; `None`: 0, 1, 2, ... (BERT).
    #[module(skip)]
    pub padding_idx: Option<usize>,
    /// DeBERTa-v2 zeroes the padding's embeddings.
    #[module(skip)]
    pub zero_padding: bool,
}

impl<B: Backend> BertEmbeddings<B> {
    fn new(c: &BertConfig, device: &B::Device) -> Self {
        let emb = |n, d| {
            EmbeddingConfig::new(n, d)
                .with_initializer(init())
                .init(device)
        };
        let width = c.embedding_width();
        let is_deberta = c.model_type == ModelType::DebertaV2;
        let (embed_proj, normed) = match is_deberta {
            true => (deberta::embed_proj(c, device), c.hidden_size),
            false => (None, width),
        };
        BertEmbeddings {
            word_embeddings: emb(c.vocab_size, width),
            position_embeddings: (!is_deberta || deberta::position_biased_input(c))
                .then(|| emb(c.max_position_embeddings, width)),
            token_type_embeddings: (c.type_vocab_size > 0).then(|| emb(c.type_vocab_size, width)),
            embed_proj,
            layer_norm: layer_norm(c, normed, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            padding_idx: c.model_type.offset_positions().then_some(c.pad_token_id),
            zero_padding: is_deberta,
        }
    }

    /// `mask` is [batch, seq, 1], 1 for tokens (read where padding is zeroed).
    fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        mask: &Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        // One row of positions per sentence: a [1, seq] row broadcast in the sum below made burn-flex
        // copy it strided into every row, and BERT encoded 3-9% slower than RoBERTa
        // (BENCHMARKS.md "Architectures").
        let positions = || match self.padding_idx {
            Some(p) => roberta::position_ids(input_ids.clone(), p),
            None => Tensor::<B, 1, Int>::arange(0..seq as i64, &device)
                .reshape([1, seq])
                .repeat_dim(0, batch),
        };
        let words = self.word_embeddings.forward(input_ids.clone());
        let mut x = match &self.position_embeddings {
            Some(e) => words + e.forward(positions()),
            None => words,
        };
        if let Some(e) = &self.token_type_embeddings {
            x = x + e.forward(token_type_ids);
        }
        let mut x = self
            .layer_norm
            .forward(deberta::project(self.embed_proj.as_ref(), x));
        if self.zero_padding {
            x = x * mask.clone();
        }
        train_mode::dropout(&self.dropout, x)
    }
}

/// `BertSelfAttention`: multi-head scaled dot-product attention with an additive padding mask
/// (DeBERTa-v2's `DisentangledSelfAttention` with its relative terms, see `deberta`).
#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    /// DeBERTa-v2's own position projections (c2p, p2c) when it does not `share_att_key`.
    pub pos_key_proj: Option<Linear<B>>,
    pub pos_query_proj: Option<Linear<B>>,
    /// DeBERTa-v2's `pos_dropout` on the relative embeddings.
    pub pos_dropout: Option<Dropout>,
    pub dropout: Dropout,
    pub num_heads: usize,
    /// DeBERTa-v2's relative attention settings; `None` for the other types.
    #[module(skip)]
    pub relative: Option<Relative>,
}

impl<B: Backend> BertSelfAttention<B> {
    fn new(c: &BertConfig, device: &B::Device) -> Self {
        let h = c.hidden_size;
        let relative = Relative::of(c);
        let own = |term: bool| {
            relative
                .filter(|r| r.enabled && !r.share_att_key && term)
                .map(|_| linear(h, h, device))
        };
        BertSelfAttention {
            query: linear(h, h, device),
            key: linear(h, h, device),
            value: linear(h, h, device),
            pos_key_proj: own(relative.is_some_and(|r| r.c2p)),
            pos_query_proj: own(relative.is_some_and(|r| r.p2c)),
            pos_dropout: relative
                .filter(|r| r.enabled)
                .map(|_| DropoutConfig::new(c.hidden_dropout_prob).init()),
            dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
            num_heads: c.num_attention_heads,
            relative,
        }
    }

    /// The projections of the relative embeddings for the c2p and p2c terms.
    fn position_projections(&self, r: &Relative) -> [Option<&Linear<B>>; 2] {
        let (key, query) = match r.share_att_key {
            true => (Some(&self.key), Some(&self.query)),
            false => (self.pos_key_proj.as_ref(), self.pos_query_proj.as_ref()),
        };
        [key.filter(|_| r.c2p), query.filter(|_| r.p2c)]
    }

    /// Attention of the tokens in `queries` ([batch, rows, hidden]: all of `x`'s or a prefix) over
    /// all tokens of `x` ([batch, seq, hidden]).
    fn forward(
        &self,
        queries: Tensor<B, 3>,
        x: Tensor<B, 3>,
        mask: &Mask<B>,
        rel: Option<&RelativeInput<B>>,
    ) -> Tensor<B, 3> {
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
        let context = if let Some(r) = &self.relative {
            // DeBERTa-v2: content scores plus the relative terms, then the 2-D mask.
            let scale = 1.0 / ((h / self.num_heads * r.scale_factor()) as f64).sqrt();
            let mut scores =
                precision::matmul(q.clone(), k.clone().swap_dims(2, 3)).mul_scalar(scale);
            if let (Some(rel), Some(dropout)) = (rel, &self.pos_dropout) {
                let projections = self.position_projections(r);
                if let Some(bias) = deberta::bias(r, projections, rel, dropout, q, k) {
                    scores = scores + bias;
                }
            }
            let m = mask
                .masked
                .clone()
                .slice([0..b, 0..self.num_heads, 0..rows, 0..s]);
            let probs = activation::softmax(scores.mask_fill(m, f32::MIN), 3);
            precision::matmul(train_mode::dropout(&self.dropout, probs), v)
        } else if train_mode::training::<B>(&q.device()) {
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
        Activation::Tanh => activation::tanh(x),
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
                self_attention: BertSelfAttention::new(c, device),
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
    fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &Mask<B>,
        rows: Option<usize>,
        rel: Option<&RelativeInput<B>>,
    ) -> Tensor<B, 3> {
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
                .forward(queries.clone(), x, mask, rel),
            queries,
        );
        self.output.forward(self.intermediate.forward(a.clone()), a)
    }
}

#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    pub layer: Vec<BertLayer<B>>,
    /// DeBERTa-v2's relative position embeddings, their LayerNorm (`norm_rel_ebd`) and the
    /// convolution after the first layer (`conv_kernel_size`).
    pub rel_embeddings: Option<Embedding<B>>,
    pub layer_norm: Option<LayerNorm<B>>,
    pub conv: Option<ConvLayer<B>>,
}

impl<B: Backend> BertEncoder<B> {
    fn new(c: &BertConfig, device: &B::Device) -> Self {
        let relative = Relative::of(c).filter(|r| r.enabled);
        BertEncoder {
            layer: (0..c.num_hidden_layers)
                .map(|_| BertLayer::new(c, device))
                .collect(),
            rel_embeddings: relative.map(|_| {
                EmbeddingConfig::new(deberta::rel_rows(c), c.hidden_size)
                    .with_initializer(init())
                    .init(device)
            }),
            layer_norm: relative
                .filter(|r| r.norm_rel_ebd)
                .map(|_| layer_norm(c, c.hidden_size, device)),
            conv: ConvLayer::new(c, device),
        }
    }

    /// The relative-position input of `rows` queries over `seq` keys, if the model has one.
    fn relative(&self, [b, rows, seq]: [usize; 3]) -> Option<RelativeInput<B>> {
        let attention = &self.layer.first()?.attention.self_attention;
        let r = attention.relative?;
        let table = self.rel_embeddings.as_ref()?.weight.val();
        Some(r.input(
            table,
            self.layer_norm.as_ref(),
            [b, attention.num_heads, rows, seq],
        ))
    }
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
    /// every layer, element by element. DeBERTa-v2: [batch, heads, seq, seq], true where the
    /// query or the key is padding (its 2-D mask).
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
            encoder: BertEncoder::new(c, device),
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
        let pad = input
            .attention_mask
            .clone()
            .equal_elem(0)
            .reshape([b, 1, 1, s]);
        // DeBERTa's attention takes the 2-D mask, per head; BERT's the keys' mask.
        let deberta_heads = self.encoder.layer.first().and_then(|l| {
            let a = &l.attention.self_attention;
            a.relative.map(|_| a.num_heads)
        });
        let masked = match deberta_heads {
            Some(heads) => {
                let rows = pad.clone().reshape([b, 1, s, 1]).repeat_dim(3, s);
                rows.bool_or(pad.clone().repeat_dim(2, s))
                    .repeat_dim(1, heads)
            }
            None => pad.clone().repeat_dim(2, s),
        };
        let mask = Mask {
            additive: pad.float().mul_scalar(f32::MIN),
            masked,
        };
        let tokens = input.attention_mask.float().reshape([b, s, 1]);
        let mut embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids, &tokens);
        if let Some(project) = &self.embeddings_project {
            embedded = dense(project, embedded);
        }
        let all = self.encoder.relative([b, s, s]);
        let mut hidden = vec![embedded];
        let layers = self.encoder.layer.len();
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let rows = if i + 1 == layers { rows } else { None };
            let some_rows = rows.and_then(|r| self.encoder.relative([b, r, s]));
            let rel = some_rows.as_ref().or(all.as_ref());
            let mut next = layer.forward(hidden[hidden.len() - 1].clone(), &mask, rows, rel);
            if let (0, Some(conv)) = (i, &self.encoder.conv) {
                next = conv.forward(hidden[0].clone(), next, tokens.clone());
            }
            hidden.push(next);
        }
        hidden
    }
}
