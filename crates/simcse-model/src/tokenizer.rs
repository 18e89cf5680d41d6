//! The Hugging Face `tokenizers` tokenizer of a model folder: its `tokenizer.json` when it has one
//! (WordPiece, byte-level BPE, SentencePiece Unigram: whatever model, normalizer, specials and
//! post-processor it names), else WordPiece built from `vocab.txt` (+ `tokenizer_config.json`) the
//! way `BertTokenizerFast` builds it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{ModelError, Result};

/// The `tokenizer_config.json` settings that shape a WordPiece tokenizer built from `vocab.txt`.
///
/// The defaults are KR-BERT's (char16424): cased, and no accent stripping, because stripping
/// accents applies NFD, which turns every Hangul syllable into jamo that the char vocab lacks.
/// (`BertTokenizerFast` itself defaults to lowercasing; a `tokenizer_config.json` overrides ours.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WordPieceSettings {
    #[serde(default)]
    pub do_lower_case: bool,
    /// `None` follows `do_lower_case`, as in `transformers`.
    #[serde(default)]
    pub strip_accents: Option<bool>,
    #[serde(default = "yes")]
    pub tokenize_chinese_chars: bool,
}

fn yes() -> bool {
    true
}

impl Default for WordPieceSettings {
    fn default() -> Self {
        WordPieceSettings {
            do_lower_case: false,
            strip_accents: None,
            tokenize_chinese_chars: true,
        }
    }
}

/// The padding tokens looked for when tokenizer.json sets no padding: BERT's, RoBERTa's.
const PAD: [&str; 2] = ["[PAD]", "<pad>"];
/// The mask tokens, BERT's and RoBERTa's.
const MASK: [&str; 2] = ["[MASK]", "<mask>"];
/// The other special tokens by name, BERT's and RoBERTa's.
const OTHER_SPECIALS: [&str; 6] = ["[CLS]", "[SEP]", "[UNK]", "<s>", "</s>", "<unk>"];

/// Token ids of one text with the checkpoint's specials (`[CLS] ... [SEP]`, `<s> ... </s>`),
/// truncated to `max_len` keeping them.
pub type Ids = Vec<u32>;

/// How long a padded batch is: its longest row rounded up to a multiple of `multiple`, but never
/// past `max_seq` (the model's positions) unless the longest row already is.
///
/// The cubecl backends compile and autotune kernels per shape, keyed partly on how many times 2
/// divides the sequence length (cubek-matmul's `pow2_factor` and stride alignment): embedding 640
/// length-sorted sentences met 63 autotuned shapes and 101 compiled kernels on lavapipe, rounding
/// to 16 cut that to 49 and 56 (BENCHMARKS.md). On burn-flex nothing is compiled and every padded
/// token costs time, so it pads to the longest row ([`Padding::LONGEST`]); see `backend::padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    pub multiple: usize,
    pub max_seq: usize,
}

impl Padding {
    /// To the longest row of the batch.
    pub const LONGEST: Padding = Padding {
        multiple: 1,
        max_seq: usize::MAX,
    };

    /// The padded length of a batch whose longest row has `longest` tokens.
    pub fn seq(&self, longest: usize) -> usize {
        longest
            .next_multiple_of(self.multiple.max(1))
            .min(self.max_seq.max(longest))
    }
}

/// A padded batch, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input_ids: Vec<i32>,
    pub attention_mask: Vec<i32>,
    pub batch: usize,
    pub seq: usize,
}

impl Batch {
    /// Rows `rows` of the batch, padded to the same length as the whole batch.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Batch {
        let span = rows.start * self.seq..rows.end * self.seq;
        Batch {
            input_ids: self.input_ids[span.clone()].to_vec(),
            attention_mask: self.attention_mask[span].to_vec(),
            batch: rows.len(),
            seq: self.seq,
        }
    }
}

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pad_id: u32,
    source: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tokenizer({}, vocab {})",
            self.source.display(),
            self.vocab_size()
        )
    }
}

impl Tokenizer {
    /// Loads the tokenizer of a model folder: `tokenizer.json`, else `vocab.txt` with the settings
    /// of `tokenizer_config.json` (KR-BERT's defaults where it is absent).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_tokenizer_json(&json);
        }
        let vocab = dir.join("vocab.txt");
        if !vocab.is_file() && dir.join("spm.model").is_file() {
            // DeBERTa-v3 / mDeBERTa ship only the SentencePiece model.
            return Err(ModelError::Tokenizer {
                path: dir.join("spm.model"),
                message: "a SentencePiece model alone is not read: write its tokenizer.json \
                          once with `python3 scripts/spm-to-tokenizer-json.py DIR` (transformers' \
                          own conversion)"
                    .into(),
            });
        }
        if !vocab.is_file() {
            return Err(ModelError::Missing {
                what: "tokenizer.json or vocab.txt in the model folder".into(),
                path: dir.into(),
            });
        }
        let config = dir.join("tokenizer_config.json");
        let settings = if config.is_file() {
            let text = std::fs::read_to_string(&config).map_err(ModelError::io(&config))?;
            serde_json::from_str(&text).map_err(|e| ModelError::Tokenizer {
                path: config.clone(),
                message: e.to_string(),
            })?
        } else {
            WordPieceSettings::default()
        };
        Self::from_vocab(&vocab, &settings)
    }

    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let err = |message: String| ModelError::Tokenizer {
            path: path.into(),
            message,
        };
        // tokenizers 0.23 panics (`expect("Helper")`) on some malformed `decoder` sections instead
        // of returning its error; a damaged file must be an error here (found by fuzzing).
        let parsed = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_file(path))
            .map_err(|_| err("not a valid tokenizer.json (its parser panicked)".into()))?;
        let inner = parsed.map_err(|e| err(e.to_string()))?;
        Self::finish(inner, path)
    }

    /// Builds the WordPiece tokenizer `BertTokenizerFast(vocab, **settings)` builds.
    pub fn from_vocab(vocab: &Path, s: &WordPieceSettings) -> Result<Self> {
        let err = |message: String| ModelError::Tokenizer {
            path: vocab.into(),
            message,
        };
        let model = WordPiece::from_file(&vocab.to_string_lossy())
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| err(e.to_string()))?;
        let id =
            |t: &str| model_id(&model, t).ok_or_else(|| err(format!("the vocabulary has no {t}")));
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        id("[PAD]")?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                s.tokenize_chinese_chars,
                s.strip_accents,
                s.do_lower_case,
            )))
            .map_err(|e| err(e.to_string()))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        inner.with_decoder(Some(WordPieceDecoder::default()));
        Self::finish(inner, vocab)
    }

    fn finish(mut inner: tokenizers::Tokenizer, source: &Path) -> Result<Self> {
        // The padding id tokenizer.json names, else BERT's `[PAD]` or RoBERTa's / XLM-R's `<pad>`.
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| PAD.iter().find_map(|t| inner.token_to_id(t)))
            .ok_or_else(|| ModelError::Tokenizer {
                path: source.into(),
                message: format!("no padding token ({})", PAD.join(" or ")),
            })?;
        // Padding is done by `pad` (per batch of our choosing); truncation is set per call.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                path: source.into(),
                message: e.to_string(),
            })?;
        Ok(Tokenizer {
            inner,
            pad_id,
            source: source.into(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The tokenizer.json or vocab.txt this tokenizer was built from (for error messages).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The mask token's id (BERT's `[MASK]`, RoBERTa's / XLM-R's `<mask>`), for the MLM loss.
    pub fn mask_id(&self) -> Option<u32> {
        MASK.iter().find_map(|t| self.inner.token_to_id(t))
    }

    /// Ids of the special tokens (`transformers`' `all_special_ids`): BERT's five and RoBERTa's
    /// six by name where the vocabulary has them, and any added token marked special in
    /// tokenizer.json.
    pub fn special_ids(&self) -> Vec<u32> {
        let named = OTHER_SPECIALS
            .iter()
            .chain(&PAD)
            .chain(&MASK)
            .filter_map(|t| self.inner.token_to_id(t));
        let added = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id);
        let mut ids: Vec<u32> = named.chain(added).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Tokenizes texts in parallel, each to at most `max_len` ids with `[CLS]` and `[SEP]`
    /// (truncation drops tokens from the end of the text, never `[SEP]`).
    pub fn encode(&self, texts: &[&str], max_len: usize) -> Result<Vec<Ids>> {
        let err = |message: String| ModelError::Tokenizer {
            path: self.source.clone(),
            message,
        };
        let mut tok = self.inner.clone();
        let trunc = TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        };
        tok.with_truncation(Some(trunc))
            .map_err(|e| err(e.to_string()))?;
        let encodings = tok
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| err(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Pads id sequences to one length (see [`Padding`]): `attention_mask` is 1 on tokens, 0 on
    /// padding.
    pub fn pad(&self, rows: &[&Ids], padding: Padding) -> Batch {
        let seq = padding.seq(rows.iter().map(|r| r.len()).max().unwrap_or(0));
        let mut b = Batch {
            input_ids: Vec::with_capacity(rows.len() * seq),
            attention_mask: Vec::with_capacity(rows.len() * seq),
            batch: rows.len(),
            seq,
        };
        for r in rows {
            b.input_ids.extend(r.iter().map(|&i| i as i32));
            b.input_ids
                .extend(std::iter::repeat_n(self.pad_id as i32, seq - r.len()));
            b.attention_mask.extend(std::iter::repeat_n(1, r.len()));
            b.attention_mask
                .extend(std::iter::repeat_n(0, seq - r.len()));
        }
        b
    }
}

fn model_id(model: &WordPiece, token: &str) -> Option<u32> {
    use tokenizers::Model;
    model.token_to_id(token)
}

#[cfg(test)]
mod tests {
    use super::Padding;

    #[test]
    fn padding_rounds_up_and_stops_at_the_positions() {
        let p = Padding {
            multiple: 16,
            max_seq: 40,
        };
        let got: Vec<usize> = [0, 1, 16, 17, 32, 33, 40, 41].map(|n| p.seq(n)).to_vec();
        assert_eq!(got, [0, 16, 16, 32, 32, 40, 40, 41]);
        assert_eq!(Padding::LONGEST.seq(17), 17);
    }
}
