//! `simcse-embed`: use a trained encoder. `embed` a file into `embeddings.parquet`, build its
//! HNSW `index`, `search` it, `mine` hard negatives for training, `export` a model folder for
//! sentence-transformers, `serve` it over HTTP (see `simcse_serve` for the routes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Device, Job};
use anyhow::{Context, Result, bail};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, Parser, Subcommand};
use simcse_artifact::{
    Manifest, Triple, artifact_name, read_triples, write_manifest, write_triples,
};
use simcse_data::table::TableFormat;
use simcse_embed::ann::{Ann, AnnOptions, Quantization, index_path};
use simcse_embed::embed::{EmbedOptions, embed_file};
use simcse_embed::mine::{MineOptions, Pair, mine};
use simcse_embed::search::Corpus;
use simcse_model::{Encoder, ModelDir, Pooler};
use simcse_serve::{Batcher, Limits, State};

#[derive(Parser)]
#[command(
    version,
    about = "Use a trained encoder: embed, index, search, mine, export"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A file of sentences (text one a line, JSONL, CSV, TSV or Parquet; gzip/zstd/bzip2 too) ->
    /// embeddings.parquet (id, text, embedding) and its manifest.
    Embed(EmbedArgs),
    /// Build the HNSW index of an embeddings file: <file>.usearch (+ .usearch.json).
    Index(IndexArgs),
    /// The nearest sentences of an embeddings file to each query, with their cosines.
    Search(SearchArgs),
    /// Hard negatives for (anchor, positive) pairs -> triples that `train --mode sup` reads.
    Mine(MineArgs),
    /// Write a model folder that also loads with sentence-transformers' SentenceTransformer(DIR).
    Export(ExportArgs),
    /// Serve the model over HTTP: POST /embed (text-embeddings-inference's request), /similarity,
    /// /search (with --index), GET /health, and a web page at /.
    Serve(ServeArgs),
}

/// How the model is read: shared by the commands that embed.
#[derive(Args, Clone)]
struct ModelArgs {
    /// A model folder or Hugging Face Hub repo id (`search` defaults to the one the embeddings
    /// were made with, from their manifest).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Pooler: cls, cls_before_pooler, avg, avg_top2, avg_first_last. Default: simcse.json's.
    #[arg(long)]
    pooler: Option<Pooler>,
    /// Maximum tokens per sentence. Default: simcse.json's, else 128.
    #[arg(long)]
    max_len: Option<usize>,
    /// Sentences per forward pass. Default 64; `serve` on the CPU: 1 (the sentences of a server
    /// batch then run on all cores at once without padding: 1.6x the requests/s of 64,
    /// BENCHMARKS.md "Serving").
    #[arg(long)]
    batch_size: Option<usize>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Text put before every sentence, for models trained with instructions: e5 wants
    /// "passage: " when embedding a corpus and "query: " for `search`/`serve`; bge asks for its
    /// query instruction on queries only. Kept out of the stored text.
    #[arg(long, default_value = "")]
    prefix: String,
}

#[derive(Args)]
struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The sentences.
    #[arg(long)]
    input: PathBuf,
    /// The embeddings artifact to write.
    #[arg(long, default_value = "embeddings.parquet")]
    out: PathBuf,
    /// Format of --input; `auto` goes by the file name.
    #[arg(long, value_enum, default_value_t = TableFormat::Auto)]
    format: TableFormat,
    /// The text column (JSONL key, CSV/TSV header, Parquet column).
    #[arg(long, default_value = "text")]
    field: String,
    /// A column with each row's id (default: <file name>:<line or row>).
    #[arg(long)]
    id_field: Option<String>,
    /// Keep the pooler's raw vectors instead of unit vectors.
    #[arg(long)]
    no_normalize: bool,
    /// Sentences read, encoded and written at a time (memory stays bounded by it).
    #[arg(long, default_value_t = 4096)]
    chunk: usize,
    /// Fail on the first bad row instead of counting and skipping it.
    #[arg(long)]
    strict: bool,
}

#[derive(Args)]
struct IndexArgs {
    /// An `embed` output.
    #[arg(long)]
    embeddings: PathBuf,
    /// HNSW M: links per node.
    #[arg(long, default_value_t = AnnOptions::default().connectivity)]
    connectivity: usize,
    /// HNSW ef_construction.
    #[arg(long, default_value_t = AnnOptions::default().expansion_add)]
    expansion_add: usize,
    /// HNSW ef at search time (stored; `search --ef` overrides it).
    #[arg(long, default_value_t = AnnOptions::default().expansion_search)]
    expansion_search: usize,
    /// How the index stores the vectors: f32, f16 (half the bytes) or i8 (a quarter); recall and
    /// memory of each in BENCHMARKS.md ("Search at a million").
    #[arg(long, default_value_t = AnnOptions::default().quantize)]
    quantize: Quantization,
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// An `embed` output.
    #[arg(long)]
    index: PathBuf,
    /// Search its HNSW index (built by `index`) instead of every row.
    #[arg(long)]
    ann: bool,
    /// HNSW ef for this search (with --ann).
    #[arg(long)]
    ef: Option<usize>,
    /// Results per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Print JSON lines ({"query", "hits": [{"id", "text", "score"}]}) instead of a table.
    #[arg(long)]
    json: bool,
    /// The queries.
    #[arg(required = true)]
    queries: Vec<String>,
}

#[derive(Args)]
struct MineArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Triples (kornli_triples.parquet's schema): their (anchor, positive) pairs are mined for.
    #[arg(long)]
    triples: PathBuf,
    /// Where the mined triples go.
    #[arg(long, default_value = "data/processed/mined_triples.parquet")]
    out: PathBuf,
    /// Mine from an embeddings file (embedded with the same model) instead of the triples'
    /// positives and negatives.
    #[arg(long)]
    pool: Option<PathBuf>,
    /// Negatives (triples) per pair.
    #[arg(long, default_value_t = MineOptions::default().top_k)]
    top_k: usize,
    /// A negative's cosine with the anchor must be below the positive's minus this.
    #[arg(long, default_value_t = MineOptions::default().margin)]
    margin: f32,
    /// Nearest pool sentences looked at per anchor.
    #[arg(long, default_value_t = MineOptions::default().depth)]
    depth: usize,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The folder to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// An embeddings file (from `embed`, with the same model) for POST /search.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Search the index's HNSW graph (built by `index`) instead of every row.
    #[arg(long)]
    ann: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Most texts encoded together: concurrent requests are batched up to this.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Most texts in one request.
    #[arg(long, default_value_t = Limits::default().max_inputs)]
    max_inputs: usize,
    /// Most characters in one text.
    #[arg(long, default_value_t = Limits::default().max_chars)]
    max_chars: usize,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = Limits::default().max_body)]
    max_body: usize,
}

/// The binary's `main`.
pub fn main() -> Result<()> {
    crate::alloc::keep_freed_pages();
    crate::init_logging();
    match Cli::parse().command {
        Command::Embed(a) => {
            let device = a.model.device;
            device.run(Embed(a))
        }
        Command::Index(a) => index(a),
        Command::Search(a) => {
            let device = a.model.device;
            device.run(Search(a))
        }
        Command::Mine(a) => {
            let device = a.model.device;
            device.run(Mine(a))
        }
        Command::Export(a) => export(a),
        Command::Serve(a) => {
            let device = a.model.device;
            device.run(Serve(a))
        }
    }
}

/// The encoder of `args` on `device`; `default` stands in for a missing `--model`.
fn encoder<B: Backend>(
    args: &ModelArgs,
    default: Option<&Path>,
    device: &B::Device,
) -> Result<(Encoder<B>, PathBuf)> {
    let Some(spec) = args.model.as_deref().or(default) else {
        bail!("--model is required");
    };
    let local = crate::hub::resolve(spec)?;
    let mut enc = Encoder::from_dir(&local, args.pooler, args.max_len, device)
        .with_context(|| format!("loading the model {}", spec.display()))?;
    enc.batch_size = args.batch_size.unwrap_or(64);
    enc.prefix = args.prefix.clone();
    Ok((enc, spec.to_path_buf()))
}

struct Embed(EmbedArgs);

impl Job for Embed {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let a = self.0;
        let (enc, model) = encoder::<B::InnerBackend>(&a.model, None, &device)?;
        let opts = EmbedOptions {
            input: a.input,
            format: a.format,
            field: a.field,
            id_field: a.id_field,
            out: a.out,
            normalize: !a.no_normalize,
            chunk: a.chunk,
            strict: a.strict,
            model: model.display().to_string(),
        };
        let s = embed_file(&enc, &opts)?;
        let skipped: Vec<String> = s
            .log
            .skipped
            .iter()
            .map(|(r, n)| format!("{n} {}", r.as_str()))
            .collect();
        println!(
            "{}: {} sentences embedded ({} dimensions, pooler {}, {:.1} sentences/s); skipped: {}",
            opts.out.display(),
            s.rows,
            s.dim,
            enc.pooler.name(),
            s.rows as f64 / s.seconds.max(1e-9),
            if skipped.is_empty() {
                "none".into()
            } else {
                skipped.join(", ")
            }
        );
        for bad in &s.log.examples {
            println!("  skipped {bad}");
        }
        Ok(())
    }
}

fn index(a: IndexArgs) -> Result<()> {
    let opts = AnnOptions {
        connectivity: a.connectivity,
        expansion_add: a.expansion_add,
        expansion_search: a.expansion_search,
        quantize: a.quantize,
    };
    let t = std::time::Instant::now();
    let ann = Ann::build(&a.embeddings, opts)?;
    let path = index_path(&a.embeddings);
    ann.save(&path)?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "{}: HNSW index of {} vectors ({} dimensions, {}) built in {:.1} s, {:.1} MiB",
        path.display(),
        ann.info.rows,
        ann.info.dim,
        opts.quantize,
        t.elapsed().as_secs_f64(),
        bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// The model, pooler and length an embeddings file was made with (its manifest's options).
fn made_with(embeddings: &Path) -> Result<(Option<PathBuf>, Option<Pooler>, Option<usize>)> {
    let path = simcse_artifact::manifest_path(embeddings);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok((None, None, None));
    };
    let m: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let o = &m["options"];
    Ok((
        o["model"].as_str().map(PathBuf::from),
        serde_json::from_value(o["pooler"].clone()).ok(),
        o["max_len"].as_u64().map(|n| n as usize),
    ))
}

struct Search(SearchArgs);

impl Job for Search {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let mut a = self.0;
        let (model, pooler, max_len) = made_with(&a.index)?;
        a.model.pooler = a.model.pooler.or(pooler);
        a.model.max_len = a.model.max_len.or(max_len);
        let (enc, _) = encoder::<B::InnerBackend>(&a.model, model.as_deref(), &device)?;
        let corpus = Corpus::open(&a.index, a.ann)?;
        if let (Some(ann), Some(ef)) = (&corpus.ann, a.ef) {
            ann.set_expansion_search(ef);
        }
        let texts: Vec<&str> = a.queries.iter().map(String::as_str).collect();
        let queries: Vec<f32> = enc.encode(&texts)?.into_iter().flatten().collect();
        let results = corpus.search(&queries, a.k)?;
        for (query, hits) in a.queries.iter().zip(results) {
            if a.json {
                let hits: Vec<_> = hits
                    .iter()
                    .map(|h| serde_json::json!({"id": corpus.emb.ids[h.row], "text": corpus.emb.texts[h.row], "score": h.score}))
                    .collect();
                println!("{}", serde_json::json!({"query": query, "hits": hits}));
                continue;
            }
            println!("query: {query}");
            for (rank, h) in hits.iter().enumerate() {
                println!(
                    "{:>3}  {:.4}  {}  [{}]",
                    rank + 1,
                    h.score,
                    corpus.emb.texts[h.row],
                    corpus.emb.ids[h.row]
                );
            }
        }
        Ok(())
    }
}

struct Mine(MineArgs);

impl Job for Mine {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let a = self.0;
        let (enc, model) = encoder::<B::InnerBackend>(&a.model, None, &device)?;
        let triples = read_triples(&a.triples)?;
        // One pair per distinct (anchor, positive): a premise with several contradictions gives
        // several triples of the same pair.
        let mut seen = std::collections::HashSet::new();
        let pairs: Vec<&(Triple, String)> = triples
            .iter()
            .filter(|(t, _)| seen.insert((t.anchor.as_str(), t.positive.as_str())))
            .collect();
        let embed = |texts: Vec<&str>| -> Result<Vec<f32>> {
            let mut rows = enc.encode(&texts)?;
            rows.iter_mut().for_each(|r| simcse_embed::normalise(r));
            Ok(rows.into_iter().flatten().collect())
        };
        let pool = match &a.pool {
            Some(path) => Corpus::open(path, false)?.emb,
            None => {
                let mut texts: Vec<&str> = triples
                    .iter()
                    .flat_map(|(t, _)| [t.positive.as_str(), t.negative.as_str()])
                    .collect();
                texts.sort_unstable();
                texts.dedup();
                tracing::info!("embedding a pool of {} sentences", texts.len());
                simcse_artifact::Embeddings {
                    ids: texts.iter().map(|t| t.to_string()).collect(),
                    texts: texts.iter().map(|t| t.to_string()).collect(),
                    dim: enc.config.hidden_size,
                    vectors: embed(texts)?,
                }
            }
        };
        if pool.dim != enc.config.hidden_size {
            bail!(
                "the pool has {} dimensions, the model {}: embed it with the same model",
                pool.dim,
                enc.config.hidden_size
            );
        }
        tracing::info!("embedding {} (anchor, positive) pairs", pairs.len());
        let dim = pool.dim;
        let anchors = embed(pairs.iter().map(|(t, _)| t.anchor.as_str()).collect())?;
        let positives = embed(pairs.iter().map(|(t, _)| t.positive.as_str()).collect())?;
        let pairs: Vec<Pair<'_>> = pairs
            .iter()
            .enumerate()
            .map(|(i, (t, source))| Pair {
                anchor: &t.anchor,
                positive: &t.positive,
                source,
                anchor_vec: &anchors[i * dim..(i + 1) * dim],
                positive_vec: &positives[i * dim..(i + 1) * dim],
            })
            .collect();
        let opts = MineOptions {
            top_k: a.top_k,
            margin: a.margin,
            depth: a.depth,
        };
        let mined = mine(&pairs, &pool, opts);
        let rows: Vec<(Triple, &str)> = mined
            .triples
            .iter()
            .map(|(t, s)| (t.clone(), s.as_str()))
            .collect();
        write_triples(&a.out, &rows)?;
        let mut sources = vec![simcse_artifact::SourceFile::new(
            &a.triples,
            &std::fs::read(&a.triples).with_context(|| a.triples.display().to_string())?,
        )];
        if let Some(p) = &a.pool {
            sources.push(simcse_artifact::SourceFile::new(p, &std::fs::read(p)?));
        }
        let options = serde_json::json!({
            "model": model.display().to_string(),
            "pooler": enc.pooler.name(),
            "max_len": enc.max_len,
            "prefix": enc.prefix,
            "top_k": a.top_k,
            "margin": a.margin,
            "depth": a.depth,
            "pool": a.pool.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the triples' positives and negatives".into()),
        });
        write_manifest(
            &a.out,
            &Manifest {
                artifact: artifact_name(&a.out),
                rows: rows.len(),
                sources,
                counts: mined.counts.clone(),
                options,
                tool: format!("simcse-embed {}", env!("CARGO_PKG_VERSION")),
            },
        )?;
        let counts = mined.counts;
        println!(
            "{}: {} triples mined for {} pairs (counts: {})",
            a.out.display(),
            rows.len(),
            pairs.len(),
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    }
}

fn export(a: ExportArgs) -> Result<()> {
    let Some(spec) = &a.model.model else {
        bail!("--model is required");
    };
    let local = crate::hub::resolve(spec)?;
    let dir = ModelDir::open(&local)?;
    let mut settings = dir
        .settings
        .clone()
        .unwrap_or(simcse_model::model_dir::SimcseSettings {
            pooler: Pooler::ClsBeforePooler,
            max_len: None,
            files: Default::default(),
            extra: Default::default(),
        });
    settings.pooler = a.model.pooler.unwrap_or(settings.pooler);
    settings.max_len = a.model.max_len.or(settings.max_len).or(Some(128));
    simcse_model::export::pooling_mode(settings.pooler)?;
    let same = std::fs::canonicalize(&a.out).ok() == std::fs::canonicalize(&local).ok();
    if same && local.join("model.safetensors").is_file() {
        // Into the model's own folder: only the sentence-transformers files are new.
        let max_len = settings.max_len.unwrap_or(128);
        simcse_model::export::write(&a.out, settings.pooler, max_len, dir.config.hidden_size)?;
    } else {
        if same {
            bail!(
                "{}: export a pytorch_model.bin folder into another folder (--out)",
                a.out.display()
            );
        }
        let model = dir.load::<simcse_model::backend::Cpu>(&Default::default())?;
        simcse_model::model_dir::save(&model, &dir.config, &local, &settings, &a.out)?;
    }
    println!(
        "{}: a Hugging Face model folder that also loads with SentenceTransformer(\"{}\") (pooler {}, max_seq_length {})",
        a.out.display(),
        a.out.display(),
        settings.pooler.name(),
        settings.max_len.unwrap_or(128)
    );
    Ok(())
}

struct Serve(ServeArgs);

impl Job for Serve {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let mut a = self.0;
        let Some(spec) = a.model.model.clone() else {
            bail!("--model is required");
        };
        let cpu = a.model.device == Device::Cpu;
        a.model.batch_size = a.model.batch_size.or(Some(if cpu { 1 } else { 64 }));
        let model = a.model.clone();
        let batcher = Batcher::spawn(
            move || {
                encoder::<B::InnerBackend>(&model, None, &device)
                    .map(|(e, _)| e)
                    .map_err(|e| format!("{e:#}"))
            },
            a.max_batch,
        )
        .map_err(anyhow::Error::msg)?;
        let corpus = match &a.index {
            Some(path) => {
                let c = Corpus::open(path, a.ann)?;
                anyhow::ensure!(
                    c.emb.dim == batcher.dim,
                    "{}: {} dimensions, the model has {}: embed it with this model",
                    path.display(),
                    c.emb.dim,
                    batcher.dim
                );
                Some(c)
            }
            None => None,
        };
        let state = Arc::new(State {
            batcher,
            corpus,
            limits: Limits {
                max_inputs: a.max_inputs,
                max_chars: a.max_chars,
                max_body: a.max_body,
                max_k: Limits::default().max_k,
            },
            model: spec.display().to_string(),
        });
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(a.addr)
                .await
                .with_context(|| format!("listening on {}", a.addr))?;
            println!(
                "serving {} on http://{}/",
                spec.display(),
                listener.local_addr()?
            );
            axum::serve(listener, simcse_serve::router(state))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .context("serving")
        })
    }
}
