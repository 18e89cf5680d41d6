//! `Encoder`: sentences in, embeddings out, batched by length for speed.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;
use serde::Deserialize;

use crate::bert::{BertInput, BertModel};
use crate::checkpoint;
use crate::config::BertConfig;
use crate::error::{ModelError, Result};
use crate::pooler::Pooler;
use crate::tokenizer::{Batch, Tokenizer};

/// `simcse.json` in a model folder: how the model was trained to be read.
#[derive(Debug, Clone, Deserialize)]
pub struct SimcseSettings {
    pub pooler: Pooler,
    #[serde(default)]
    pub max_len: Option<usize>,
}

/// A loaded model folder, ready to embed sentences.
pub struct Encoder<B: Backend> {
    pub model: BertModel<B>,
    pub config: BertConfig,
    pub tokenizer: Tokenizer,
    pub pooler: Pooler,
    pub max_len: usize,
    /// Sentences per forward pass.
    pub batch_size: usize,
    device: B::Device,
}

/// Moves a padded batch to the device as `BertInput` (token types all 0: single sentences).
pub fn to_input<B: Backend>(batch: &Batch, device: &B::Device) -> BertInput<B> {
    let shape = [batch.batch, batch.seq];
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(batch.input_ids.clone(), shape), device);
    let mask = Tensor::<B, 2, Int>::from_data(
        TensorData::new(batch.attention_mask.clone(), shape),
        device,
    );
    BertInput {
        token_type_ids: ids.zeros_like(),
        input_ids: ids,
        attention_mask: mask,
    }
}

impl<B: Backend> Encoder<B> {
    /// Loads `config.json`, the weights, the tokenizer and `simcse.json` (if any) from `dir`.
    /// `pooler` and `max_len` override `simcse.json`; the fallbacks are `cls_before_pooler` and 128.
    pub fn from_dir(
        dir: &Path,
        pooler: Option<Pooler>,
        max_len: Option<usize>,
        device: &B::Device,
    ) -> Result<Self> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let tokenizer = Tokenizer::from_dir(dir)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(ModelError::Invalid(format!(
                "{}: the tokenizer has {} tokens but the model's embedding has {} rows: tokenizer and weights do not belong together",
                dir.display(),
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let settings = dir.join("simcse.json");
        let settings: Option<SimcseSettings> = if settings.is_file() {
            let text = std::fs::read_to_string(&settings).map_err(ModelError::io(&settings))?;
            Some(serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: settings.clone(),
                message: e.to_string(),
            })?)
        } else {
            None
        };
        let (model, _) = checkpoint::load::<B>(dir, &config, device)?;
        let pooler = pooler
            .or(settings.as_ref().map(|s| s.pooler))
            .unwrap_or(Pooler::ClsBeforePooler);
        let max_len = max_len.or(settings.and_then(|s| s.max_len)).unwrap_or(128);
        Ok(Self::new(model, config, tokenizer, pooler, max_len, device))
    }

    /// An encoder around a model in memory (e.g. the one being trained). `max_len` is capped at the
    /// model's `max_position_embeddings`.
    pub fn new(
        model: BertModel<B>,
        config: BertConfig,
        tokenizer: Tokenizer,
        pooler: Pooler,
        max_len: usize,
        device: &B::Device,
    ) -> Self {
        let max_len = max_len.min(config.max_position_embeddings);
        Encoder {
            model,
            config,
            tokenizer,
            pooler,
            max_len,
            batch_size: 64,
            device: device.clone(),
        }
    }

    /// Embeds sentences (not normalised), in input order. Sentences are sorted by token count and
    /// batched so that each batch pads to a similar length.
    pub fn encode(&self, sentences: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenizer.encode(sentences, self.max_len)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let chunks: Vec<&[usize]> = order.chunks(self.batch_size.max(1)).collect();
        let embedded: Vec<Vec<f32>> = chunks
            .par_iter()
            .map(|chunk| {
                let rows: Vec<_> = chunk.iter().map(|&i| &ids[i]).collect();
                let emb = self.embed_batch(&self.tokenizer.pad(&rows))?;
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
        let input = to_input::<B>(batch, &self.device);
        let mask = input.attention_mask.clone();
        let hidden = self.pooler.hidden(&self.model, input);
        self.pooler.pool(&self.model, &hidden, mask)
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }
}
