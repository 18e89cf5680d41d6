//! `Encoder`: sentences in, embeddings out, batched by length for speed.

use std::path::Path;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use rayon::prelude::*;

use crate::backend;
use crate::bert::{BertInput, BertModel};
use crate::config::BertConfig;
use crate::error::{ModelError, Result};
use crate::model_dir::ModelDir;
use crate::pooler::Pooler;
use crate::tokenizer::{Batch, Padding, Tokenizer};

/// A loaded model, ready to embed sentences.
pub struct Encoder<B: Backend> {
    pub model: BertModel<B>,
    pub config: BertConfig,
    pub tokenizer: Tokenizer,
    pub pooler: Pooler,
    pub max_len: usize,
    /// Sentences per forward pass.
    pub batch_size: usize,
    /// Text put before every sentence, as models trained with instructions expect (e5's
    /// "query: " / "passage: ", bge's query instruction). Empty by default.
    pub prefix: String,
    padding: Padding,
    device: B::Device,
}

impl<B: Backend> Encoder<B> {
    /// Loads a model folder (see [`ModelDir`]). `pooler` and `max_len` override `simcse.json`; the
    /// fallbacks are `cls_before_pooler` and 128.
    pub fn from_dir(
        dir: &Path,
        pooler: Option<Pooler>,
        max_len: Option<usize>,
        device: &B::Device,
    ) -> Result<Self> {
        let dir = ModelDir::open(dir)?;
        let model = dir.load(device)?;
        let settings = dir.settings.as_ref();
        let pooler = pooler
            .or(settings.map(|s| s.pooler))
            .unwrap_or(Pooler::ClsBeforePooler);
        let max_len = max_len.or(settings.and_then(|s| s.max_len)).unwrap_or(128);
        Ok(Self::new(
            model,
            dir.config,
            dir.tokenizer,
            pooler,
            max_len,
            device,
        ))
    }

    /// An encoder around a model in memory (e.g. the one being trained). `max_len` is capped at the
    /// tokens the model has positions for (`BertConfig::max_tokens`).
    pub fn new(
        model: BertModel<B>,
        config: BertConfig,
        tokenizer: Tokenizer,
        pooler: Pooler,
        max_len: usize,
        device: &B::Device,
    ) -> Self {
        let max_len = max_len.min(config.max_tokens());
        let padding = backend::padding::<B>(device, config.max_tokens());
        Encoder {
            model,
            config,
            tokenizer,
            pooler,
            max_len,
            batch_size: 64,
            prefix: String::new(),
            padding,
            device: device.clone(),
        }
    }

    /// Embeds sentences (not normalised), in input order, each after [`Self::prefix`]. Sentences
    /// are sorted by token count and batched so that each batch pads to a similar length.
    pub fn encode(&self, sentences: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = if self.prefix.is_empty() {
            self.tokenizer.encode(sentences, self.max_len)?
        } else {
            let prefixed: Vec<String> = sentences
                .iter()
                .map(|s| format!("{}{s}", self.prefix))
                .collect();
            let refs: Vec<&str> = prefixed.iter().map(String::as_str).collect();
            self.tokenizer.encode(&refs, self.max_len)?
        };
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let chunks: Vec<&[usize]> = order.chunks(self.batch_size.max(1)).collect();
        let embedded: Vec<Vec<f32>> = chunks
            .par_iter()
            .map(|chunk| {
                let rows: Vec<_> = chunk.iter().map(|&i| &ids[i]).collect();
                let emb = self.embed_batch(&self.tokenizer.pad(&rows, self.padding))?;
                emb.into_data()
                    .into_vec::<f32>()
                    .map_err(|e| ModelError::Invalid(format!("{e:?}")))
            })
            .collect::<Result<_>>()?;
        let mut out = vec![Vec::new(); ids.len()];
        for (chunk, data) in chunks.iter().zip(embedded) {
            let h = data.len() / chunk.len();
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = data[k * h..(k + 1) * h].to_vec();
            }
        }
        Ok(out)
    }

    /// One forward pass and the pooler, on a padded batch.
    pub fn embed_batch(&self, batch: &Batch) -> Result<Tensor<B, 2>> {
        self.pooler
            .embed(&self.model, BertInput::new(batch, &self.device))
    }
}
