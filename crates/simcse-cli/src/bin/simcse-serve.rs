//! `simcse-serve`: an HTTP server for a trained encoder, with a web page (see `simcse_serve` for
//! the routes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use simcse_cli::{Device, Job};
use simcse_embed::search::Corpus;
use simcse_model::{Encoder, Pooler};
use simcse_serve::{Batcher, Limits, State};

#[global_allocator]
static ALLOC: simcse_cli::alloc::MiMalloc = simcse_cli::alloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Serve a sentence encoder over HTTP: POST /embed, /similarity, /search, GET /health, and a web page at /"
)]
struct Cli {
    /// A model folder or Hugging Face Hub repo id.
    #[arg(long)]
    model: PathBuf,
    /// Pooler: cls, cls_before_pooler, avg, avg_top2, avg_first_last. Default: simcse.json's.
    #[arg(long)]
    pooler: Option<Pooler>,
    /// Maximum tokens per sentence. Default: simcse.json's, else 128.
    #[arg(long)]
    max_len: Option<usize>,
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
    /// Sentences per forward pass. Default: 1 on the CPU (the sentences of a server batch then run
    /// on all cores at once without padding: 1.6x the requests/s of 64, BENCHMARKS.md
    /// "Serving"), 64 on a GPU.
    #[arg(long)]
    batch_size: Option<usize>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: Device,
}

fn main() -> Result<()> {
    simcse_cli::alloc::keep_freed_pages();
    simcse_cli::init_logging();
    let cli = Cli::parse();
    cli.device.run(Serve(cli))
}

struct Serve(Cli);

impl Job for Serve {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let cli = self.0;
        let local = simcse_cli::hub::resolve(&cli.model)?;
        let default_batch = if cli.device == Device::Cpu { 1 } else { 64 };
        let batch = cli.batch_size.unwrap_or(default_batch);
        let (pooler, max_len) = (cli.pooler, cli.max_len);
        let batcher = Batcher::spawn(
            move || {
                let mut enc =
                    Encoder::<B::InnerBackend>::from_dir(&local, pooler, max_len, &device)
                        .map_err(|e| e.to_string())?;
                enc.batch_size = batch;
                Ok(enc)
            },
            cli.max_batch,
        )
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("loading the model {}", cli.model.display()))?;
        let corpus = match &cli.index {
            Some(path) => {
                let c = Corpus::open(path, cli.ann)?;
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
                max_inputs: cli.max_inputs,
                max_chars: cli.max_chars,
                max_body: cli.max_body,
                max_k: Limits::default().max_k,
            },
            model: cli.model.display().to_string(),
        });
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(cli.addr)
                .await
                .with_context(|| format!("listening on {}", cli.addr))?;
            println!(
                "serving {} on http://{}/",
                cli.model.display(),
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
