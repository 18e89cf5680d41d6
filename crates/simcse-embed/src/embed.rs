//! `embed`: a file of sentences in, `embeddings.parquet` out, streamed in chunks so that a corpus
//! larger than memory needs only one chunk's worth of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use simcse_artifact::{EmbeddingWriter, Manifest, artifact_name, write_manifest};
use simcse_data::rows::RowLog;
use simcse_data::table::{self, Item, TableFormat};
use simcse_data::wiki::source::Progress;
use simcse_data::{Location, Reason};
use simcse_model::Encoder;

use crate::error::{EmbedError, Result};
use crate::normalise;

/// What to embed and where to write it.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedOptions {
    pub input: PathBuf,
    pub format: TableFormat,
    /// The text column (JSONL key, CSV/TSV header, Parquet column); plain text is one a line.
    pub field: String,
    /// A column to take each row's id from; default `<file name>:<line or row>`.
    pub id_field: Option<String>,
    pub out: PathBuf,
    /// Scale every embedding to length 1, so that a dot product is the cosine.
    pub normalize: bool,
    /// Sentences encoded and written at a time.
    pub chunk: usize,
    /// Fail on the first bad row instead of counting and skipping it.
    pub strict: bool,
    /// How the model was named on the command line (for the manifest).
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct EmbedSummary {
    pub rows: usize,
    pub dim: usize,
    pub log: RowLog,
    pub seconds: f64,
}

/// Embeds every row of `opts.input` with `encoder` into `opts.out` (plus its manifest).
pub fn embed_file<B: Backend>(encoder: &Encoder<B>, opts: &EmbedOptions) -> Result<EmbedSummary> {
    let start = Instant::now();
    let progress = Arc::new(Progress::default());
    let mut columns = vec![opts.field.clone()];
    columns.extend(opts.id_field.clone());
    let items = table::open(&opts.input, opts.format, &columns, progress.clone())?;
    let name = artifact_name(&opts.input);
    let dim = encoder.config.hidden_size;
    let mut writer = EmbeddingWriter::create(&opts.out, dim)?;
    let mut log = RowLog::new(&opts.input, opts.strict);
    let total = std::fs::metadata(&opts.input).map_or(0, |m| m.len());
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut chunk = Chunk::default();
    let mut damage = None;
    for item in items {
        let (location, fields) = match item {
            Ok(Item::Row { location, fields }) => (location, fields),
            Ok(Item::Blank) => continue,
            Ok(Item::Bad(bad)) => {
                log.rows_read += 1;
                log.skip(bad.location, bad.reason, bad.detail)?;
                continue;
            }
            Err(message) if opts.strict => return Err(EmbedError::Invalid(message)),
            Err(message) => {
                tracing::warn!("{message}: keeping the rows before it");
                damage = Some(message);
                break;
            }
        };
        log.rows_read += 1;
        let text = fields[0].trim();
        if text.is_empty() {
            log.skip(location, Reason::EmptySentence, "no text")?;
            continue;
        }
        let id = match fields.get(1) {
            Some(id) => id.clone(),
            None => format!("{name}:{}", place(location)),
        };
        chunk.ids.push(id);
        chunk.texts.push(text.to_string());
        if chunk.ids.len() >= opts.chunk.max(1) {
            chunk.write(encoder, &mut writer, opts.normalize)?;
            bar.set_position(progress.bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{} sentences", log.rows_kept()));
        }
    }
    chunk.write(encoder, &mut writer, opts.normalize)?;
    bar.finish_and_clear();
    let rows = writer.finish()?;
    let mut counts: std::collections::BTreeMap<String, usize> = log
        .skipped
        .iter()
        .map(|(r, n)| (format!("skipped_{}", r.as_str()), *n))
        .collect();
    counts.insert("rows_read".into(), log.rows_read);
    let mut options = serde_json::to_value(opts).unwrap_or_default();
    options["pooler"] = encoder.pooler.name().into();
    options["max_len"] = encoder.max_len.into();
    options["prefix"] = encoder.prefix.clone().into();
    options["dim"] = dim.into();
    options["damage"] = damage.into();
    write_manifest(
        &opts.out,
        &Manifest {
            artifact: artifact_name(&opts.out),
            rows,
            sources: vec![progress.source_file(&opts.input)],
            counts,
            options,
            tool: format!("simcse-embed {}", env!("CARGO_PKG_VERSION")),
        },
    )?;
    Ok(EmbedSummary {
        rows,
        dim,
        log,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `line N` -> `N`, `row N` -> `N`: the id's place part.
fn place(location: Location) -> usize {
    match location {
        Location::Line(n) | Location::JsonIndex(n) | Location::Row(n) => n,
    }
}

#[derive(Default)]
struct Chunk {
    ids: Vec<String>,
    texts: Vec<String>,
}

impl Chunk {
    fn write<B: Backend>(
        &mut self,
        encoder: &Encoder<B>,
        writer: &mut EmbeddingWriter,
        normalize: bool,
    ) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let mut flat = Vec::with_capacity(texts.len() * encoder.config.hidden_size);
        for mut v in encoder.encode(&texts)? {
            if normalize {
                normalise(&mut v);
            }
            flat.extend(v);
        }
        writer.push(&self.ids, &self.texts, &flat)?;
        self.ids.clear();
        self.texts.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! embed -> search on a real corpus (the kowiki sample) with a real model (all-MiniLM-L6-v2).

    use std::path::Path;

    use simcse_data::table::TableFormat;
    use simcse_model::Encoder;

    use super::{EmbedOptions, embed_file};
    use crate::ann::{Ann, AnnOptions, Quantization, index_path};
    use crate::search::{Corpus, Hit};

    type B = burn::backend::Flex;

    fn options(input: &Path, out: &Path) -> EmbedOptions {
        EmbedOptions {
            input: input.into(),
            format: TableFormat::Auto,
            field: "text".into(),
            id_field: None,
            out: out.into(),
            normalize: true,
            chunk: 100,
            strict: false,
            model: "all-MiniLM-L6-v2".into(),
        }
    }

    fn minilm() -> Encoder<B> {
        Encoder::<B>::from_dir(&simcse_testkit::minilm(), None, None, &Default::default()).unwrap()
    }

    /// Every sentence finds itself first, exactly and through the HNSW index; the scores are the
    /// evaluator's cosines; the index refuses an embeddings file that changed.
    #[test]
    fn a_sentence_finds_itself_and_scores_are_the_evaluators_cosines() {
        let enc = minilm();
        let dir = tempfile::tempdir().unwrap();
        let input = simcse_testkit::shared_data().join("kowiki-sample/kss_bench_wikipedia.txt");
        let out = dir.path().join("kowiki.parquet");
        // Chunks of 100 rows: the file is written in several batches.
        let summary = embed_file(&enc, &options(&input, &out)).unwrap();
        let lines: Vec<String> = std::fs::read_to_string(&input)
            .unwrap()
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        let texts: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
        assert_eq!(summary.rows, texts.len());
        assert!(summary.rows > 300);

        let corpus = Corpus::open(&out, false).unwrap();
        assert_eq!(corpus.emb.ids[0], "kss_bench_wikipedia.txt:1");
        let blank = lines.iter().position(|l| l.is_empty()).unwrap();
        assert_eq!(
            corpus.emb.ids[blank],
            format!("kss_bench_wikipedia.txt:{}", blank + 2)
        );
        let sample: Vec<usize> = (0..corpus.emb.len()).step_by(7).collect();
        let queries: Vec<&str> = sample
            .iter()
            .map(|&r| corpus.emb.texts[r].as_str())
            .collect();
        let q: Vec<f32> = enc
            .encode(&queries)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let exact = corpus.search(&q, 10).unwrap();
        for (&row, hits) in sample.iter().zip(&exact) {
            // A duplicated sentence may find its twin first; its score is then 1 too.
            assert!(hits[0].row == row || corpus.emb.texts[hits[0].row] == corpus.emb.texts[row]);
            assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        }

        // The evaluator's similarity matrix of the first query and its hits holds the search's scores.
        let hit_texts: Vec<&str> = std::iter::once(queries[0])
            .chain(exact[0].iter().map(|h| corpus.emb.texts[h.row].as_str()))
            .collect();
        let matrix = simcse_eval::sts::similarity_matrix(&enc, &hit_texts).unwrap();
        for (j, h) in exact[0].iter().enumerate() {
            let cos = matrix[0][j + 1] as f32;
            assert!((cos - h.score).abs() < 1e-4, "{cos} vs {}", h.score);
        }

        // The HNSW index, built on all cores: recall@10 against exact search near 1.
        let recall = |approx: &[Vec<Hit>]| {
            let found: usize = exact
                .iter()
                .zip(approx)
                .map(|(e, a)| {
                    a.iter()
                        .filter(|h| e.iter().any(|x| x.row == h.row))
                        .count()
                })
                .sum();
            found as f64 / (10 * exact.len()) as f64
        };
        let ann = Ann::build(&out, AnnOptions::default()).unwrap();
        ann.save(&index_path(&out)).unwrap();
        let indexed = Corpus::open(&out, true).unwrap();
        let r = recall(&indexed.search(&q, 10).unwrap());
        assert!(r > 0.95, "recall@10 {r}");
        // Built on one thread, the graph is the same every run, and every query finds its first
        // hit. (Parallel inserts race, so each build's graph differs: measured on this file with 2
        // threads, 6 of 40 builds missed one of the 47 queries' own sentence, ef 64 or 128 alike.)
        // f32 keeps the exact cosines; f16 (the default) rounds the stored vectors, ~2e-4 here.
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        for (quantize, tolerance) in [(Quantization::F32, 1e-4), (Quantization::F16, 1e-3)] {
            let options = AnnOptions {
                quantize,
                ..AnnOptions::default()
            };
            let ann = one_thread.install(|| Ann::build(&out, options)).unwrap();
            ann.save(&index_path(&out)).unwrap();
            let approx = Corpus::open(&out, true).unwrap().search(&q, 10).unwrap();
            for (i, (e, a)) in exact.iter().zip(&approx).enumerate() {
                assert!(
                    (e[0].score - a[0].score).abs() < tolerance,
                    "{quantize}, query {i}: exact first hit {:?}, HNSW's {:?}",
                    e[0],
                    a[0]
                );
            }
            let r = recall(&approx);
            assert!(r > 0.95, "{quantize}: recall@10 {r}");
        }

        // Re-embedding changes the file: the old index is refused with what to do.
        let raw = EmbedOptions {
            normalize: false,
            ..options(&input, &out)
        };
        embed_file(&enc, &raw).unwrap();
        let err = Corpus::open(&out, true).err().unwrap().to_string();
        assert!(err.contains("rebuild it with `index`"), "{err}");
    }

    /// With a prefix ("query: ", as e5 expects) the vectors are those of the prefixed sentences;
    /// the stored text and the manifest keep the sentence as given and the prefix apart.
    #[test]
    fn a_prefix_is_embedded_but_not_stored() {
        let mut enc = minilm();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("s.txt");
        std::fs::write(&input, "라면은 언제 들어왔나?\n서울의 인구\n").unwrap();
        let out = dir.path().join("e.parquet");
        let plain = enc
            .encode(&["query: 라면은 언제 들어왔나?", "query: 서울의 인구"])
            .unwrap();
        enc.prefix = "query: ".into();
        let raw = EmbedOptions {
            normalize: false,
            ..options(&input, &out)
        };
        embed_file(&enc, &raw).unwrap();
        let stored = simcse_artifact::read_embeddings(&out).unwrap();
        assert_eq!(stored.texts, ["라면은 언제 들어왔나?", "서울의 인구"]);
        let want: Vec<f32> = plain.concat();
        assert!(simcse_testkit::max_abs_diff(&stored.vectors, &want) < 1e-6);
        let manifest = std::fs::read_to_string(simcse_artifact::manifest_path(&out)).unwrap();
        assert!(manifest.contains("\"prefix\": \"query: \""), "{manifest}");
    }

    /// Bad rows are counted with their place (strict: the first is an error); ids come from a column.
    #[test]
    fn bad_rows_are_counted_and_ids_come_from_a_column() {
        let enc = minilm();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("docs.jsonl");
        let rows = [
            r#"{"id": "a", "text": "첫 문장이다."}"#,
            r#"{"id": "b", "text": "#,
            r#"{"id": "c", "text": "  "}"#,
            r#"{"id": "d", "text": "둘째 문장이다."}"#,
        ];
        std::fs::write(&input, rows.join("\n") + "\n").unwrap();
        let out = dir.path().join("docs.parquet");
        let opts = EmbedOptions {
            id_field: Some("id".into()),
            ..options(&input, &out)
        };
        let s = embed_file(&enc, &opts).unwrap();
        assert_eq!(s.rows, 2);
        let skipped: Vec<(&str, usize)> = s
            .log
            .skipped
            .iter()
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        assert_eq!(skipped, [("empty_sentence", 1), ("malformed_json", 1)]);
        let first = s.log.examples[0].to_string();
        assert!(first.contains("docs.jsonl: line 2"), "{first}");
        let emb = simcse_artifact::read_embeddings(&out).unwrap();
        assert_eq!(emb.ids, ["a", "d"]);
        let manifest = std::fs::read_to_string(out.with_extension("manifest.json")).unwrap();
        assert!(
            manifest.contains("\"skipped_malformed_json\": 1"),
            "{manifest}"
        );
        let strict = EmbedOptions {
            strict: true,
            ..opts
        };
        let err = embed_file(&enc, &strict).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
