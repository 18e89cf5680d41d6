//! The HTTP server of a trained encoder (`simcse-serve`): JSON in and out, text-embeddings-inference's
//! request shapes where it has one, request limits answered with a JSON error, and a web page.
//!
//! | route | request | response |
//! |---|---|---|
//! | `GET /` | | the web page |
//! | `GET /health` | | `{"status": "ok", "model", "dim", "index_rows", "requests", "batches"}` |
//! | `POST /embed` | `{"inputs": "text" or ["text", ...], "normalize": true}` | `[[f32, ...], ...]` |
//! | `POST /similarity` | `{"inputs": {"source_sentence": s, "sentences": [...]}}` | `[cosine, ...]` |
//! | `POST /similarity` | `{"sentences": [...]}` | `{"matrix": [[cosine, ...], ...]}` |
//! | `POST /search` | `{"query": "text", "k": 10}` | `{"hits": [{"id", "text", "score"}, ...]}` |
//!
//! Errors: `{"error": "...", "error_type": "validation" | "payload" | "unavailable" | "backend"}`
//! with 422, 413, 400, 404, 503 or 500.

pub mod api;
pub mod batcher;

pub use api::{Limits, State, router};
pub use batcher::{Batcher, Embedder};

use std::net::SocketAddr;
use std::sync::Arc;

/// Serves `state` on `addr` (port 0: a free one) from a thread of its own, for tests and
/// benchmarks; returns the address bound. The thread runs until the process ends.
pub fn spawn(state: Arc<State>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let served = tokio::runtime::Runtime::new().and_then(|rt| {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let _ = tx.send(listener.local_addr());
                axum::serve(listener, router(state)).await
            })
        });
        if let Err(e) = served {
            tracing::error!("server on {addr}: {e}");
        }
    });
    rx.recv()
        .map_err(|_| std::io::Error::other(format!("the server on {addr} did not start")))?
}
