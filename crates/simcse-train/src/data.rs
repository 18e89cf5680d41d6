//! The training corpus, the seeded shuffle, and batches tokenized ahead of the step on another thread.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use simcse_artifact::{StsPair, Triple};
use simcse_model::rng::splitmix64;
use simcse_model::tokenizer::{Batch, Padding, Tokenizer};

use crate::config::{Mode, TrainConfig};

/// The examples of a run, typed by mode.
pub enum Corpus {
    /// Sentences; each is seen twice, through two dropout masks.
    Unsup(Vec<String>),
    /// (anchor, entailment, contradiction) triples.
    Sup(Vec<Triple>),
    /// Scored sentence pairs.
    Sts(Vec<StsPair>),
}

impl Corpus {
    /// Reads the corpus of `config.mode` from `config.train_file` and `config.extra_train_files`.
    pub fn load(config: &TrainConfig) -> simcse_artifact::Result<Self> {
        let files = std::iter::once(&config.train_file).chain(&config.extra_train_files);
        let mut corpus = match config.mode {
            Mode::Sup => Corpus::Sup(Vec::new()),
            Mode::Unsup => Corpus::Unsup(Vec::new()),
            Mode::Sts => Corpus::Sts(Vec::new()),
        };
        for f in files {
            match &mut corpus {
                Corpus::Sup(v) => v.extend(
                    simcse_artifact::read_triples(f)?
                        .into_iter()
                        .map(|(t, _)| t),
                ),
                Corpus::Unsup(v) => v.extend(simcse_artifact::read_sentence_texts(f)?),
                Corpus::Sts(v) => v.extend(simcse_artifact::read_sts(f)?),
            }
        }
        Ok(corpus)
    }

    pub fn len(&self) -> usize {
        match self {
            Corpus::Unsup(s) => s.len(),
            Corpus::Sup(t) => t.len(),
            Corpus::Sts(p) => p.len(),
        }
    }

    /// The sentences of example `i`.
    fn texts(&self, i: usize) -> Vec<&str> {
        match self {
            Corpus::Unsup(s) => vec![&s[i]],
            Corpus::Sup(t) => vec![&t[i].anchor, &t[i].positive, &t[i].negative],
            Corpus::Sts(p) => vec![&p[i].sentence1, &p[i].sentence2],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sentences of the examples `idx`, view by view (see [`TrainBatch`]).
    fn views<'a>(&'a self, idx: &[usize]) -> Vec<&'a str> {
        match self {
            Corpus::Unsup(s) => {
                let one: Vec<&str> = idx.iter().map(|&i| s[i].as_str()).collect();
                [one.clone(), one].concat()
            }
            Corpus::Sup(t) => {
                let col = |f: fn(&Triple) -> &str| idx.iter().map(move |&i| f(&t[i]));
                col(|t| &t.anchor)
                    .chain(col(|t| &t.positive))
                    .chain(col(|t| &t.negative))
                    .collect()
            }
            Corpus::Sts(p) => {
                let col = |f: fn(&StsPair) -> &str| idx.iter().map(move |&i| f(&p[i]));
                col(|p| &p.sentence1).chain(col(|p| &p.sentence2)).collect()
            }
        }
    }

    /// Tokenizes the examples `idx` into one padded batch.
    pub fn batch(
        &self,
        tokenizer: &Tokenizer,
        idx: &[usize],
        max_len: usize,
        padding: Padding,
    ) -> simcse_model::Result<TrainBatch> {
        let sentences = self.views(idx);
        let ids = tokenizer.encode(&sentences, max_len)?;
        let rows: Vec<_> = ids.iter().collect();
        let scores = match self {
            Corpus::Sts(p) => idx.iter().map(|&i| p[i].score).collect(),
            _ => Vec::new(),
        };
        Ok(TrainBatch {
            tokens: tokenizer.pad(&rows, padding),
            examples: idx.len(),
            views: sentences.len() / idx.len().max(1),
            scores,
        })
    }
}

/// A batch ready for the device: `views` rows per example, view-major: row `v * examples + i` is
/// view `v` of example `i` (unsup: the batch twice; sup: anchors, then positives, then negatives;
/// sts: first sentences, then second sentences).
pub struct TrainBatch {
    pub tokens: Batch,
    pub examples: usize,
    pub views: usize,
    /// The gold score of each example (sts), empty otherwise.
    pub scores: Vec<f32>,
}

impl TrainBatch {
    /// Which examples device `index` of `count` trains on: the batch cut in order into `count`
    /// near-equal runs (the first `examples % count` one longer), so that the devices' shards,
    /// gathered in device order, are the batch again.
    pub fn shard_range(&self, index: usize, count: usize) -> Range<usize> {
        let (base, extra) = (self.examples / count, self.examples % count);
        let start = index * base + index.min(extra);
        start..start + base + usize::from(index < extra)
    }

    /// The examples `range` with all their views, view-major like the batch, padded to the
    /// batch's length.
    pub fn shard(&self, range: Range<usize>) -> TrainBatch {
        let parts: Vec<Batch> = (0..self.views)
            .map(|v| {
                self.tokens
                    .rows(v * self.examples + range.start..v * self.examples + range.end)
            })
            .collect();
        TrainBatch {
            tokens: Batch {
                input_ids: parts
                    .iter()
                    .flat_map(|p| p.input_ids.iter().copied())
                    .collect(),
                attention_mask: (parts.iter())
                    .flat_map(|p| p.attention_mask.iter().copied())
                    .collect(),
                batch: range.len() * self.views,
                seq: self.tokens.seq,
            },
            examples: range.len(),
            views: self.views,
            scores: self
                .scores
                .get(range)
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        }
    }
}

/// The example order of `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut state = seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The batches of one epoch, as example indices, and how many examples waited for a later batch
/// to keep duplicates apart.
pub struct EpochBatches {
    pub batches: Vec<Vec<usize>>,
    pub deferred: usize,
}

/// The batches of one epoch: the seeded order cut into `batch_size` pieces or, with
/// `no_duplicates`, filled as sentence-transformers' `NoDuplicatesBatchSampler` fills them: in
/// order, skipping an example that shares a sentence with the batch (it stays first in line for the
/// next one). A pure function of (corpus, seed, epoch), so resuming replays the same batches.
pub fn epoch_batches(corpus: &Corpus, config: &TrainConfig, epoch: usize) -> EpochBatches {
    let order = epoch_order(corpus.len(), config.seed, epoch);
    let size = config.batch_size.max(1);
    let keep = |b: &Vec<usize>| !config.drop_last || b.len() == size;
    if !config.no_duplicates() {
        let batches = order.chunks(size).map(<[usize]>::to_vec).filter(keep);
        return EpochBatches {
            batches: batches.collect(),
            deferred: 0,
        };
    }
    let (mut used, mut waited) = (vec![false; order.len()], vec![false; order.len()]);
    let (mut first, mut batches) = (0, Vec::new());
    loop {
        while first < order.len() && used[first] {
            first += 1;
        }
        if first == order.len() {
            break;
        }
        let (mut seen, mut batch) = (HashSet::new(), Vec::with_capacity(size));
        for pos in first..order.len() {
            if batch.len() == size {
                break;
            }
            if used[pos] {
                continue;
            }
            let texts = corpus.texts(order[pos]);
            if texts.iter().any(|t| seen.contains(t)) {
                waited[pos] = true;
                continue;
            }
            seen.extend(texts);
            used[pos] = true;
            batch.push(order[pos]);
        }
        if keep(&batch) {
            batches.push(batch);
        }
    }
    EpochBatches {
        batches,
        deferred: waited.iter().filter(|&&w| w).count(),
    }
}

/// Tokenizes `batches` on a background thread, at most `ahead` batches ahead of the consumer.
pub fn prefetch(
    corpus: Arc<Corpus>,
    batches: Vec<Vec<usize>>,
    tokenizer: Tokenizer,
    (max_len, padding): (usize, Padding),
    ahead: usize,
) -> Receiver<simcse_model::Result<TrainBatch>> {
    let (tx, rx) = sync_channel(ahead.max(1));
    std::thread::spawn(move || {
        for idx in batches {
            if tx
                .send(corpus.batch(&tokenizer, &idx, max_len, padding))
                .is_err()
            {
                return; // the trainer stopped
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
    }

    fn sentences(n: usize) -> Corpus {
        Corpus::Unsup((0..n).map(|i| format!("s{i}")).collect())
    }

    #[test]
    fn last_partial_batch_is_kept_or_dropped() {
        let mut c = TrainConfig {
            batch_size: 4,
            ..TrainConfig::default()
        };
        let lens = |c: &TrainConfig| -> Vec<usize> {
            let b = epoch_batches(&sentences(10), c, 0).batches;
            b.iter().map(Vec::len).collect()
        };
        for no_duplicates in [false, true] {
            c.no_duplicates = Some(no_duplicates);
            c.drop_last = false;
            assert_eq!(lens(&c), vec![4, 4, 2]);
            c.drop_last = true;
            assert_eq!(lens(&c), vec![4, 4]);
        }
    }

    fn pair(a: &str, b: &str) -> StsPair {
        StsPair {
            sentence1: a.into(),
            sentence2: b.into(),
            score: 1.0,
            source: String::new(),
            klue: None,
        }
    }

    /// KorNLI-like: each anchor in three triples, and a few sentences shared across examples.
    fn with_duplicates() -> Corpus {
        let t = |a: usize, p: usize, n: usize| Triple {
            anchor: format!("a{a}"),
            positive: format!("p{p}"),
            negative: format!("n{n}"),
        };
        Corpus::Sup((0..60).map(|i| t(i / 3, i % 7, i)).collect())
    }

    #[test]
    fn no_batch_repeats_a_sentence_and_the_order_is_reproducible() {
        let corpus = with_duplicates();
        let c = TrainConfig {
            batch_size: 8,
            ..TrainConfig::default()
        };
        assert!(c.no_duplicates(), "on by default for sup");
        let e = epoch_batches(&corpus, &c, 0);
        assert!(e.deferred > 0, "this corpus forces deferrals");
        for b in &e.batches {
            let texts: Vec<&str> = b.iter().flat_map(|&i| corpus.texts(i)).collect();
            let unique: HashSet<&str> = texts.iter().copied().collect();
            assert_eq!(unique.len(), texts.len(), "batch {b:?} repeats a sentence");
            assert!(b.len() <= 8);
        }
        // Every example exactly once, the same batches for the same (seed, epoch), others for
        // another epoch.
        let mut all: Vec<usize> = e.batches.concat();
        all.sort();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
        assert_eq!(epoch_batches(&corpus, &c, 0).batches, e.batches);
        assert_ne!(epoch_batches(&corpus, &c, 1).batches, e.batches);
        // Without the option, some batch does repeat a sentence.
        let plain = TrainConfig {
            no_duplicates: Some(false),
            ..c.clone()
        };
        let repeats = epoch_batches(&corpus, &plain, 0).batches.iter().any(|b| {
            let texts: Vec<&str> = b.iter().flat_map(|&i| corpus.texts(i)).collect();
            texts.iter().collect::<HashSet<_>>().len() < texts.len()
        });
        assert!(repeats);
        // A pair that shares a sentence with itself is no duplicate of another example.
        let sts = Corpus::Sts(vec![pair("x", "x"), pair("x", "y"), pair("z", "w")]);
        let c = TrainConfig {
            batch_size: 3,
            mode: Mode::Sts,
            ..c
        };
        let b = epoch_batches(&sts, &c, 0).batches;
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| !(b.contains(&0) && b.contains(&1))));
    }

    #[test]
    fn batches_are_view_major() {
        let t = |a: &str, p: &str, n: &str| Triple {
            anchor: a.into(),
            positive: p.into(),
            negative: n.into(),
        };
        let sup = Corpus::Sup(vec![t("a0", "p0", "n0"), t("a1", "p1", "n1")]);
        assert_eq!(sup.views(&[1, 0]), ["a1", "a0", "p1", "p0", "n1", "n0"]);
        let unsup = Corpus::Unsup(vec!["x".into(), "y".into()]);
        assert_eq!(unsup.views(&[1, 0]), ["y", "x", "y", "x"]);
        let sts = Corpus::Sts(vec![pair("a0", "b0"), pair("a1", "b1")]);
        assert_eq!(sts.views(&[1, 0]), ["a1", "a0", "b1", "b0"]);
    }
}
