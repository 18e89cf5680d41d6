//! One thread owns the encoder; requests queue for it, and whatever has queued while it was busy
//! is encoded together in the next forward passes (dynamic batching, as text-embeddings-inference
//! does), so concurrent clients share batches instead of waiting in line one by one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use burn::tensor::backend::Backend;
use simcse_model::Encoder;
use tokio::sync::oneshot;

/// What the server needs of a model: texts in, embeddings out (not normalised).
pub trait Embedder {
    fn dim(&self) -> usize;
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

impl<B: Backend> Embedder for Encoder<B> {
    fn dim(&self) -> usize {
        self.config.hidden_size
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.encode(texts).map_err(|e| e.to_string())
    }
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
}

/// Requests and the batches they were encoded in, for `/health` and the batching test.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub batches: AtomicU64,
}

/// The handle the request handlers share.
pub struct Batcher {
    queue: mpsc::Sender<Job>,
    pub dim: usize,
    pub stats: Arc<Stats>,
}

impl Batcher {
    /// Starts the encoder thread; `make` builds the model there (so it need not be `Send`). At
    /// most `max_batch` texts are taken from the queue for one `embed` call.
    pub fn spawn<E, F>(make: F, max_batch: usize) -> Result<Batcher, String>
    where
        E: Embedder,
        F: FnOnce() -> Result<E, String> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                let mut model = match make() {
                    Ok(m) => {
                        let _ = ready.send(Ok(m.dim()));
                        m
                    }
                    Err(e) => return drop(ready.send(Err(e))),
                };
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    let mut texts = batch[0].texts.len();
                    while texts < max_batch {
                        match jobs.try_recv() {
                            Ok(job) => {
                                texts += job.texts.len();
                                batch.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    thread_stats.batches.fetch_add(1, Ordering::Relaxed);
                    thread_stats
                        .requests
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    run(&mut model, batch);
                }
            })
            .map_err(|e| format!("starting the encoder thread: {e}"))?;
        let dim = started
            .recv()
            .map_err(|_| "the encoder thread stopped while loading the model".to_string())??;
        Ok(Batcher { queue, dim, stats })
    }

    /// The embeddings of `texts` (not normalised), in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { texts, reply })
            .map_err(|_| "the encoder thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the encoder thread has stopped".to_string())?
    }
}

/// Encodes the texts of all jobs in one call and hands each job its rows.
fn run(model: &mut impl Embedder, batch: Vec<Job>) {
    let texts: Vec<&str> = batch
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    match model.embed(&texts) {
        Ok(mut rows) if rows.len() == texts.len() => {
            for job in batch.into_iter().rev() {
                let mine = rows.split_off(rows.len() - job.texts.len());
                let _ = job.reply.send(Ok(mine));
            }
        }
        other => {
            let e = match other {
                Err(e) => e,
                Ok(rows) => format!(
                    "the encoder gave {} rows for {} texts",
                    rows.len(),
                    texts.len()
                ),
            };
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
