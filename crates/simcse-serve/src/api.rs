//! Routes, request checks and the JSON shapes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use simcse_embed::dot;
use simcse_embed::search::Corpus;

use crate::batcher::Batcher;

/// What one request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Texts per request (`/embed` inputs, `/similarity` sentences).
    pub max_inputs: usize,
    /// Characters per text. The model reads at most `max_len` tokens of it anyway; a longer text
    /// is refused rather than silently cut so far that its embedding means little.
    pub max_chars: usize,
    /// Request body bytes.
    pub max_body: usize,
    /// `k` of `/search`.
    pub max_k: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inputs: 64,
            max_chars: 8192,
            max_body: 2 << 20,
            max_k: 100,
        }
    }
}

/// What the handlers share.
pub struct State {
    pub batcher: Batcher,
    pub corpus: Option<Corpus>,
    pub limits: Limits,
    /// How the model was named when the server started.
    pub model: String,
}

pub fn router(state: Arc<State>) -> Router {
    let body = state.limits.max_body;
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/embed", post(embed))
        .route("/similarity", post(similarity))
        .route("/search", post(search))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "validation",
                "no such route: see GET / or the README".into(),
            )
        })
        .layer(DefaultBodyLimit::max(body))
        .with_state(state)
}

const PAGE: &str = include_str!("page.html");

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn health(Shared(state): Shared<Arc<State>>) -> Response {
    let stats = &state.batcher.stats;
    ok(json!({
        "status": "ok",
        "model": state.model,
        "dim": state.batcher.dim,
        "index_rows": state.corpus.as_ref().map(|c| c.emb.len()),
        "index_kind": state.corpus.as_ref().map(|c| if c.ann.is_some() { "hnsw" } else { "exact" }),
        "requests": stats.requests.load(Ordering::Relaxed),
        "batches": stats.batches.load(Ordering::Relaxed),
    }))
}

/// A text or a list of texts, as text-embeddings-inference's `inputs`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Inputs {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedRequest {
    inputs: Inputs,
    #[serde(default = "yes")]
    normalize: bool,
    /// Accepted for text-embeddings-inference's clients; texts are always truncated to the model's
    /// `max_len` tokens.
    #[serde(default)]
    #[allow(dead_code)]
    truncate: Option<bool>,
}

fn yes() -> bool {
    true
}

type Answer = Result<Response, ApiError>;

async fn embed(Shared(state): Shared<Arc<State>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let shape = r#"{"inputs": "text" or ["text", ...], "normalize": true}"#;
    let req: EmbedRequest = parse(body, shape)?;
    let texts = match req.inputs {
        Inputs::One(t) => vec![t],
        Inputs::Many(ts) => ts,
    };
    Ok(ok(json!(encode(&state, texts, req.normalize).await?)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SimilarityRequest {
    /// text-embeddings-inference's `/similarity`: one sentence against several.
    Source { inputs: SourceInputs },
    /// Every sentence against every other: the page's heatmap.
    Matrix { sentences: Vec<String> },
}

#[derive(Deserialize)]
struct SourceInputs {
    source_sentence: String,
    sentences: Vec<String>,
}

async fn similarity(
    Shared(state): Shared<Arc<State>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let shape =
        r#"{"sentences": [...]} or {"inputs": {"source_sentence": "...", "sentences": [...]}}"#;
    match parse(body, shape)? {
        SimilarityRequest::Source { inputs } => {
            if inputs.sentences.is_empty() {
                return Err(validation("sentences is empty".into()));
            }
            let mut texts = vec![inputs.source_sentence];
            texts.extend(inputs.sentences);
            let rows = encode(&state, texts, true).await?;
            let scores: Vec<f32> = rows[1..].iter().map(|r| dot(&rows[0], r)).collect();
            Ok(ok(json!(scores)))
        }
        SimilarityRequest::Matrix { sentences } => {
            let rows = encode(&state, sentences, true).await?;
            let matrix: Vec<Vec<f32>> = rows
                .iter()
                .map(|a| rows.iter().map(|b| dot(a, b)).collect())
                .collect();
            Ok(ok(json!({ "matrix": matrix })))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    query: String,
    #[serde(default = "ten")]
    k: usize,
}

fn ten() -> usize {
    10
}

async fn search(Shared(state): Shared<Arc<State>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let req: SearchRequest = parse(body, r#"{"query": "text", "k": 10}"#)?;
    let Some(corpus) = &state.corpus else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no index: start the server with --index EMBEDDINGS.parquet".into(),
        ));
    };
    if req.k == 0 || req.k > state.limits.max_k {
        let max = state.limits.max_k;
        return Err(validation(format!("k must be 1..={max}, got {}", req.k)));
    }
    let query = encode(&state, vec![req.query], true).await?.remove(0);
    let mut hits = corpus
        .search(&query, req.k)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", e.to_string()))?;
    let hits: Vec<Value> = hits
        .remove(0)
        .into_iter()
        .map(|h| json!({"id": corpus.emb.ids[h.row], "text": corpus.emb.texts[h.row], "score": h.score}))
        .collect();
    Ok(ok(json!({ "hits": hits })))
}

/// Checks `texts` against the limits, then embeds them through the batcher.
async fn encode(
    state: &State,
    texts: Vec<String>,
    normalize: bool,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let limits = state.limits;
    let too_large = |message| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload", message);
    if texts.is_empty() {
        return Err(validation("inputs is empty: send at least one text".into()));
    }
    if texts.len() > limits.max_inputs {
        let n = texts.len();
        return Err(too_large(format!(
            "{n} texts in one request; the limit is {}",
            limits.max_inputs
        )));
    }
    for (i, t) in texts.iter().enumerate() {
        let chars = t.chars().count();
        if t.trim().is_empty() {
            return Err(validation(format!("text {i} is empty")));
        }
        if chars > limits.max_chars {
            return Err(too_large(format!(
                "text {i} has {chars} characters; the limit is {}",
                limits.max_chars
            )));
        }
    }
    let mut rows = state
        .batcher
        .embed(texts)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", e))?;
    if normalize {
        rows.iter_mut().for_each(|r| simcse_embed::normalise(r));
    }
    Ok(rows)
}

/// The body as JSON of type `T`; a body that is too large, not UTF-8, not JSON or not of that
/// shape is a 4xx naming what is wrong and the `shape` expected.
fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "payload", e.body_text()))?;
    let bad = |message| ApiError::new(StatusCode::BAD_REQUEST, "validation", message);
    if std::str::from_utf8(&body).is_err() {
        return Err(bad("the body is not UTF-8".into()));
    }
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| validation(format!("unexpected JSON ({e}); expected {shape}")))
}

fn ok(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A 4xx/5xx answered as `{"error": message, "error_type": kind}` (text-embeddings-inference's
/// error shape).
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: String) -> Self {
        ApiError {
            status,
            kind,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "error_type": self.kind }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

fn validation(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
}
