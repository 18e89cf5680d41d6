//! An approximate nearest-neighbour index over an embeddings artifact: usearch's HNSW graph
//! (inner product on unit vectors = cosine), saved as `<embeddings>.usearch` with a
//! `<embeddings>.usearch.json` that ties it to the artifact it was built from.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simcse_artifact::Embeddings;
use usearch::{IndexOptions, MetricKind, ScalarKind};

use crate::error::{EmbedError, Result};
use crate::search::Hit;

/// How the graph is built and searched (HNSW's M, ef_construction and ef).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnnOptions {
    pub connectivity: usize,
    pub expansion_add: usize,
    pub expansion_search: usize,
}

impl Default for AnnOptions {
    /// Recall@10 0.98-1.0 on our measurements (BENCHMARKS.md "Search").
    fn default() -> Self {
        AnnOptions {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
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

fn index_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> EmbedError + '_ {
    move |e| EmbedError::Index {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn new_index(dim: usize, options: AnnOptions, path: &Path) -> Result<usearch::Index> {
    let opts = IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: options.connectivity,
        expansion_add: options.expansion_add,
        expansion_search: options.expansion_search,
        multi: false,
    };
    usearch::new_index(&opts).map_err(index_error(path))
}

impl Ann {
    /// Builds the graph over the rows of `emb` (unit vectors) on all cores; `embeddings` is the
    /// artifact's path, recorded with its SHA-256.
    pub fn build(emb: &Embeddings, embeddings: &Path, options: AnnOptions) -> Result<Ann> {
        let path = index_path(embeddings);
        let index = new_index(emb.dim, options, &path)?;
        index
            .reserve_capacity_and_threads(emb.len(), rayon::current_num_threads())
            .map_err(index_error(&path))?;
        (0..emb.len())
            .into_par_iter()
            .try_for_each(|row| index.add(row as u64, emb.vector(row)))
            .map_err(index_error(&path))?;
        let info = AnnInfo {
            embeddings: simcse_artifact::artifact_name(embeddings),
            embeddings_sha256: sha256_file(embeddings)?,
            rows: emb.len(),
            dim: emb.dim,
            options,
            tool: format!("simcse-embed {}", env!("CARGO_PKG_VERSION")),
        };
        Ok(Ann { index, info })
    }

    /// Writes the index and its sidecar to `path` (each through a temp file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("usearch.tmp");
        let tmp_str = tmp.to_str().ok_or_else(|| EmbedError::Index {
            path: path.to_path_buf(),
            message: "the index path must be UTF-8".into(),
        })?;
        self.index.save(tmp_str).map_err(index_error(path))?;
        std::fs::rename(&tmp, path).map_err(|e| EmbedError::Index {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let json = serde_json::to_string_pretty(&self.info)
            .map_err(|e| EmbedError::Invalid(e.to_string()))?;
        simcse_artifact::write_atomic(&info_path(path), |f| {
            use std::io::Write;
            f.write_all((json + "\n").as_bytes())
                .map_err(simcse_artifact::ArtifactError::io(info_path(path)))
        })?;
        Ok(())
    }

    /// Loads the index at `path` built from `embeddings`; an index built from another file (or an
    /// older version of this one) is an error that says to rebuild it.
    pub fn load(path: &Path, embeddings: &Path) -> Result<Ann> {
        let info_file = info_path(path);
        let text = std::fs::read_to_string(&info_file).map_err(|e| EmbedError::Index {
            path: info_file.clone(),
            message: format!("{e} (build the index with `index`)"),
        })?;
        let info: AnnInfo = serde_json::from_str(&text).map_err(|e| EmbedError::Index {
            path: info_file.clone(),
            message: e.to_string(),
        })?;
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
        let path_str = path.to_str().ok_or_else(|| EmbedError::Index {
            path: path.to_path_buf(),
            message: "the index path must be UTF-8".into(),
        })?;
        index.load(path_str).map_err(index_error(path))?;
        if index.size() != info.rows || index.dimensions() != info.dim {
            return Err(EmbedError::Index {
                path: path.to_path_buf(),
                message: format!(
                    "holds {} vectors of {} dimensions, its sidecar says {} of {}",
                    index.size(),
                    index.dimensions(),
                    info.rows,
                    info.dim
                ),
            });
        }
        Ok(Ann { index, info })
    }

    /// Sets HNSW's ef for searches (higher: better recall, slower).
    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
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

    /// A saved index loads and answers; a query of another dimension, an index built from other
    /// embeddings, one whose sidecar disagrees with it and one cut short are each an error that
    /// says so, never a crash or a silent answer (#32's bad input).
    #[test]
    fn a_damaged_index_is_an_error_naming_it() {
        let (rows, dim) = (300, 16);
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
        let dir = tempfile::tempdir().unwrap();
        let embeddings = dir.path().join("emb.parquet");
        std::fs::write(
            &embeddings,
            b"stands in for the artifact: only its hash is read",
        )
        .unwrap();
        let path = index_path(&embeddings);
        Ann::build(&emb, &embeddings, AnnOptions::default())
            .unwrap()
            .save(&path)
            .unwrap();
        let ann = Ann::load(&path, &embeddings).unwrap();
        assert_eq!(ann.search(emb.vector(5), 1).unwrap()[0].row, 5);
        let corpus = crate::search::Corpus {
            emb,
            ann: Some(ann),
        };
        let err = corpus.search(&[0.5; 17], 1).err().unwrap().to_string();
        assert!(
            err.contains("do not fit embeddings of 16 dimensions"),
            "{err}"
        );

        let sidecar = info_path(&path);
        let info = std::fs::read_to_string(&sidecar).unwrap();
        std::fs::write(&sidecar, info.replace("\"rows\": 300", "\"rows\": 301")).unwrap();
        let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
        assert!(
            err.contains("holds 300 vectors of 16 dimensions, its sidecar says 301"),
            "{err}"
        );
        std::fs::write(&sidecar, info).unwrap();

        std::fs::write(&embeddings, b"other embeddings").unwrap();
        let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
        assert!(
            err.contains("SHA-256 differs") && err.contains("rebuild"),
            "{err}"
        );
        std::fs::write(
            &embeddings,
            b"stands in for the artifact: only its hash is read",
        )
        .unwrap();

        let whole = std::fs::read(&path).unwrap();
        for keep in [whole.len() / 2, 100, 0] {
            std::fs::write(&path, &whole[..keep]).unwrap();
            let err = Ann::load(&path, &embeddings).err().unwrap().to_string();
            assert!(err.contains("emb.usearch"), "{keep} bytes: {err}");
        }
    }
}
