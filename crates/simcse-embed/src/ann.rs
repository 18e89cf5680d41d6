//! An approximate nearest-neighbour index over an embeddings artifact: usearch's HNSW graph
//! (inner product on unit vectors = cosine), saved as `<embeddings>.usearch` with a
//! `<embeddings>.usearch.json` that ties it to the artifact it was built from. Built a row group
//! at a time from the Parquet file (the vectors are in memory once, in the index) and opened
//! memory-mapped (processes share the pages, nothing is read until a search touches it).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simcse_artifact::EmbeddingReader;
use usearch::{IndexOptions, MetricKind, ScalarKind};

use crate::error::{EmbedError, Result};
use crate::search::Hit;

/// How the index stores each vector (usearch's scalar kinds): as embedded, in half the bytes, or
/// in a quarter (each unit vector scaled by 127 and rounded; compared by cosine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    F32,
    F16,
    I8,
}

impl Quantization {
    fn scalar_kind(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::I8 => ScalarKind::I8,
        }
    }

    /// usearch's inner product on i8 is the raw integer sum (no score); its cosine rescales it.
    fn metric(self) -> MetricKind {
        match self {
            Quantization::F32 | Quantization::F16 => MetricKind::IP,
            Quantization::I8 => MetricKind::Cos,
        }
    }
}

impl Quantization {
    const ALL: [Quantization; 3] = [Quantization::F32, Quantization::F16, Quantization::I8];

    fn name(self) -> &'static str {
        match self {
            Quantization::F32 => "f32",
            Quantization::F16 => "f16",
            Quantization::I8 => "i8",
        }
    }
}

impl FromStr for Quantization {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Quantization::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| format!("unknown quantization {s:?} (f32, f16 or i8)"))
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the graph is built and searched (HNSW's M, ef_construction and ef) and how it stores the
/// vectors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnnOptions {
    pub connectivity: usize,
    pub expansion_add: usize,
    pub expansion_search: usize,
    /// Sidecars written before quantization existed are f32.
    #[serde(default = "f32")]
    pub quantize: Quantization,
}

fn f32() -> Quantization {
    Quantization::F32
}

impl Default for AnnOptions {
    /// Recall@10 0.98-1.0 on our measurements (BENCHMARKS.md "Search"); f16 has f32's recall in
    /// half the memory, and builds and searches faster (BENCHMARKS.md "Search at a million").
    fn default() -> Self {
        AnnOptions {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            quantize: Quantization::F16,
        }
    }
}

/// The index's sidecar: what it was built from and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnInfo {
    pub embeddings: String,
    pub embeddings_sha256: String,
    pub rows: usize,
    pub dim: usize,
    pub options: AnnOptions,
    pub tool: String,
}

pub struct Ann {
    index: usearch::Index,
    pub info: AnnInfo,
}

/// `emb.parquet` -> `emb.usearch`.
pub fn index_path(embeddings: &Path) -> PathBuf {
    embeddings.with_extension("usearch")
}

fn info_path(index: &Path) -> PathBuf {
    index.with_extension("usearch.json")
}

fn index_error<E: fmt::Display>(path: &Path) -> impl Fn(E) -> EmbedError + '_ {
    move |e| EmbedError::Index {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| EmbedError::Index {
        path: path.to_path_buf(),
        message: "the index path must be UTF-8".into(),
    })
}

fn new_index(dim: usize, options: AnnOptions, path: &Path) -> Result<usearch::Index> {
    let opts = IndexOptions {
        dimensions: dim,
        metric: options.quantize.metric(),
        quantization: options.quantize.scalar_kind(),
        connectivity: options.connectivity,
        expansion_add: options.expansion_add,
        expansion_search: options.expansion_search,
        multi: false,
    };
    usearch::new_index(&opts).map_err(index_error(path))
}

impl Ann {
    /// Builds the graph over the rows of the embeddings artifact at `embeddings` (scaled to unit
    /// length), reading it a row group at a time and inserting on all cores; the artifact's
    /// SHA-256 is recorded.
    pub fn build(embeddings: &Path, options: AnnOptions) -> Result<Ann> {
        let path = index_path(embeddings);
        let reader = EmbeddingReader::open(embeddings, true)?;
        let (rows, dim) = (reader.rows(), reader.dim());
        let index = new_index(dim, options, &path)?;
        index
            .reserve_capacity_and_threads(rows, rayon::current_num_threads())
            .map_err(index_error(&path))?;
        let bar = ProgressBar::new(rows as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} vectors indexed, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut added = 0;
        for part in reader {
            let mut part = part?;
            crate::normalise_rows(&mut part);
            part.vectors
                .par_chunks(dim)
                .enumerate()
                .try_for_each(|(i, v)| index.add((added + i) as u64, v))
                .map_err(index_error(&path))?;
            added += part.len();
            bar.set_position(added as u64);
        }
        bar.finish_and_clear();
        let info = AnnInfo {
            embeddings: simcse_artifact::artifact_name(embeddings),
            embeddings_sha256: sha256_file(embeddings)?,
            rows: added,
            dim,
            options,
            tool: format!("simcse-embed {}", env!("CARGO_PKG_VERSION")),
        };
        Ok(Ann { index, info })
    }

    /// Writes the index and its sidecar to `path` (each through a temp file and a rename; a
    /// process that has the old index mapped keeps reading the old file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("usearch.tmp");
        self.index.save(utf8(&tmp)?).map_err(index_error(path))?;
        std::fs::rename(&tmp, path).map_err(index_error(path))?;
        let json = serde_json::to_string_pretty(&self.info)
            .map_err(|e| EmbedError::Invalid(e.to_string()))?;
        simcse_artifact::write_atomic(&info_path(path), |f| {
            use std::io::Write;
            f.write_all((json + "\n").as_bytes())
                .map_err(simcse_artifact::ArtifactError::io(info_path(path)))
        })?;
        Ok(())
    }

    /// Opens the index at `path` built from `embeddings`, memory-mapped (read-only); an index
    /// built from another file (or an older version of this one), or one that does not match its
    /// sidecar, is an error that says so.
    pub fn load(path: &Path, embeddings: &Path) -> Result<Ann> {
        let info_file = info_path(path);
        let text = std::fs::read_to_string(&info_file).map_err(|e| EmbedError::Index {
            path: info_file.clone(),
            message: format!("{e} (build the index with `index`)"),
        })?;
        let info: AnnInfo = serde_json::from_str(&text).map_err(index_error(&info_file))?;
        if info.embeddings_sha256 != sha256_file(embeddings)? {
            return Err(EmbedError::Index {
                path: path.to_path_buf(),
                message: format!(
                    "built from another version of {} (SHA-256 differs): rebuild it with `index`",
                    embeddings.display()
                ),
            });
        }
        let index = new_index(info.dim, info.options, path)?;
        index.view(utf8(path)?).map_err(index_error(path))?;
        let bytes = std::fs::metadata(path).map_err(index_error(path))?.len();
        let mismatch = index_error(path);
        if index.size() != info.rows || index.dimensions() != info.dim {
            return Err(mismatch(format!(
                "holds {} vectors of {} dimensions, its sidecar says {} of {}",
                index.size(),
                index.dimensions(),
                info.rows,
                info.dim
            )));
        }
        if index.scalar_kind() != info.options.quantize.scalar_kind() {
            return Err(mismatch(format!(
                "stores {:?} vectors, its sidecar says {}",
                index.scalar_kind(),
                info.options.quantize
            )));
        }
        if bytes != index.serialized_length() as u64 {
            return Err(mismatch(format!(
                "is {bytes} bytes, its header needs {} (cut short or damaged: rebuild it)",
                index.serialized_length()
            )));
        }
        Ok(Ann { index, info })
    }

    /// Sets HNSW's ef for searches (higher: better recall, slower).
    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    /// The bytes the index holds in memory (vectors and graph; for a mapped index, what a search
    /// may touch).
    pub fn memory_usage(&self) -> usize {
        self.index.memory_usage()
    }

    /// The approximately best `k` rows for one unit-vector query, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let m = self
            .index
            .search(query, k)
            .map_err(|e| EmbedError::Invalid(format!("index search: {e}")))?;
        Ok(m.keys
            .into_iter()
            .zip(m.distances)
            .map(|(key, d)| Hit {
                row: key as usize,
                score: 1.0 - d,
            })
            .collect())
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    simcse_model::checkpoint::sha256_file(path).map_err(|e| EmbedError::Index {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use simcse_artifact::{EmbeddingWriter, Embeddings};

    /// `rows` random unit vectors of `dim` written as an embeddings artifact at `path`.
    fn random_embeddings(path: &Path, rows: usize, dim: usize) -> Embeddings {
        let mut state = 7u64;
        let mut vectors: Vec<f32> = (0..rows * dim)
            .map(|_| simcse_model::rng::uniform(&mut state) as f32 - 0.5)
            .collect();
        vectors.chunks_mut(dim).for_each(crate::normalise);
        let emb = Embeddings {
            ids: (0..rows).map(|i| i.to_string()).collect(),
            texts: (0..rows).map(|i| format!("sentence {i}")).collect(),
            dim,
            vectors,
        };
        let mut w = EmbeddingWriter::create(path, dim).unwrap();
        w.push(&emb.ids, &emb.texts, &emb.vectors).unwrap();
        w.finish().unwrap();
        emb
    }

    /// A saved index opens and answers; a query of another dimension, an index built from other
    /// embeddings, one whose sidecar disagrees with it and one cut short are each an error that
    /// says so, never a crash or a silent answer (#32's bad input).
    #[test]
    fn a_damaged_index_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let embeddings = dir.path().join("emb.parquet");
        let emb = random_embeddings(&embeddings, 300, 16);
        let path = index_path(&embeddings);
        Ann::build(&embeddings, AnnOptions::default())
            .unwrap()
            .save(&path)
            .unwrap();
        let ann = Ann::load(&path, &embeddings).unwrap();
        assert_eq!(ann.search(emb.vector(5), 1).unwrap()[0].row, 5);
        let corpus = crate::search::Corpus {
            emb: simcse_artifact::read_embedding_texts(&embeddings).unwrap(),
            ann: Some(ann),
        };
        let err = corpus.search(&[0.5; 17], 1).err().unwrap().to_string();
        assert!(
            err.contains("do not fit embeddings of 16 dimensions"),
            "{err}"
        );

        let sidecar = info_path(&path);
        let info = std::fs::read_to_string(&sidecar).unwrap();
        for (from, to, says) in [
            (
                "\"rows\": 300",
                "\"rows\": 301",
                "holds 300 vectors of 16 dimensions, its sidecar says 301",
            ),
            (
                "\"quantize\": \"f16\"",
                "\"quantize\": \"i8\"",
                "stores F16 vectors, its sidecar says i8",
            ),
        ] {
            std::fs::write(&sidecar, info.replace(from, to)).unwrap();
            let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
            assert!(err.contains(says), "{err}");
        }
        // A sidecar from before quantization existed means f32 (indexes were f32 then).
        let old = info.replace(",\n    \"quantize\": \"f16\"", "");
        assert_ne!(old, info);
        std::fs::write(&sidecar, &old).unwrap();
        let old: AnnInfo = serde_json::from_str(&old).unwrap();
        assert_eq!(old.options.quantize, Quantization::F32);
        let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
        assert!(
            err.contains("stores F16 vectors, its sidecar says f32"),
            "{err}"
        );
        std::fs::write(&sidecar, &info).unwrap();

        let artifact = std::fs::read(&embeddings).unwrap();
        std::fs::write(&embeddings, b"other embeddings").unwrap();
        let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
        assert!(
            err.contains("SHA-256 differs") && err.contains("rebuild"),
            "{err}"
        );
        std::fs::write(&embeddings, artifact).unwrap();

        let whole = std::fs::read(&path).unwrap();
        for keep in [whole.len() - 1, whole.len() / 2, 100, 0] {
            std::fs::write(&path, &whole[..keep]).unwrap();
            let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
            assert!(err.contains("emb.usearch"), "{keep} bytes: {err}");
        }
    }

    /// f16 and i8 indexes find the exact search's neighbours with cosine scores close to the
    /// exact ones, in a half and a quarter of f32's vector bytes. Built on one thread: parallel
    /// inserts race, and such a graph now and then misses a query's own row (seen here in 3 of
    /// 8 runs, f32 and i8 alike), so only a one-thread graph is the same every run.
    #[test]
    fn quantized_indexes_keep_neighbours_and_scores() {
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let embeddings = dir.path().join("emb.parquet");
        let emb = random_embeddings(&embeddings, 2000, 32);
        let queries: Vec<f32> = (0..50).flat_map(|r| emb.vector(r * 37).to_vec()).collect();
        let exact = crate::search::exact(&emb, &queries, 10);
        let mut sizes = Vec::new();
        for (quantize, score_tolerance) in [
            (Quantization::F32, 1e-5),
            (Quantization::F16, 2e-3),
            (Quantization::I8, 2e-2),
        ] {
            let options = AnnOptions {
                quantize,
                ..AnnOptions::default()
            };
            let path = index_path(&embeddings);
            one_thread
                .install(|| Ann::build(&embeddings, options))
                .unwrap()
                .save(&path)
                .unwrap();
            sizes.push(std::fs::metadata(&path).unwrap().len() as f64);
            let ann = Ann::load(&path, &embeddings).unwrap();
            assert_eq!(ann.info.options.quantize, quantize);
            let mut found = 0;
            for (q, truth) in queries.chunks(32).zip(&exact) {
                let hits = ann.search(q, 10).unwrap();
                assert!(
                    (hits[0].score - truth[0].score).abs() < score_tolerance,
                    "{quantize}: {:?} against {:?}",
                    hits[0],
                    truth[0]
                );
                found += hits
                    .iter()
                    .filter(|h| truth.iter().any(|t| t.row == h.row))
                    .count();
            }
            let recall = found as f64 / 500.0;
            assert!(recall > 0.9, "{quantize}: recall@10 {recall}");
        }
        // The graph is the same size for each; the vectors shrink 2x and 4x.
        let vectors = (2000 * 32 * 4) as f64;
        assert!(
            (sizes[0] - sizes[1] - vectors / 2.0).abs() < 1024.0
                && (sizes[0] - sizes[2] - vectors * 0.75).abs() < 1024.0,
            "{sizes:?}"
        );
    }
}
