//! `--init` / `--model` given as a Hugging Face Hub repo id (`snunlp/KR-BERT-char16424`, optionally
//! `@revision`): the files a model folder needs are fetched with `hf-hub` into the shared Hugging Face
//! cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`, the one Python's `transformers` uses),
//! with a progress bar, and the cached snapshot folder is used like any local folder. A path that
//! exists is always taken as a local folder, so offline use never touches the network.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

use anyhow::{Result, anyhow, bail};
use simcse_model::model_dir::{SETTINGS_FILE, TOKENIZER_FILES, WEIGHT_FILES};

/// `owner/name` or `owner/name@revision`, with the characters the Hub allows.
pub fn repo_id(spec: &str) -> Option<(&str, Option<&str>)> {
    let (id, rev) = match spec.split_once('@') {
        Some((i, r)) => (i, Some(r)),
        None => (spec, None),
    };
    let (owner, name) = id.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name)).then_some((id, rev))
}

/// A local model folder for `spec`: `spec` itself when it exists, else the Hub snapshot of the repo
/// it names (downloaded unless cached).
pub fn resolve(spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let text = spec.to_string_lossy();
    let Some((id, revision)) = repo_id(&text) else {
        bail!(
            "{}: not found (expected a model folder with config.json, weights and vocab, or a Hub repo id like snunlp/KR-BERT-char16424)",
            spec.display()
        );
    };
    let hub = |message: String| {
        anyhow!("Hugging Face Hub, {text}: {message} (and there is no local folder of that name)")
    };
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| hub(e.to_string()))?;
    let repo = api.repo(match revision {
        Some(r) => Repo::with_revision(id.to_string(), RepoType::Model, r.to_string()),
        None => Repo::new(id.to_string(), RepoType::Model),
    });
    tracing::info!("fetching {text} from the Hugging Face Hub (cached under $HF_HOME/hub)");
    let config = repo
        .get("config.json")
        .map_err(|e| hub(format!("config.json: {e}")))?;
    // In order of preference (KR-BERT ships only the `.bin`).
    let weights = WEIGHT_FILES.iter().find_map(|f| repo.get(f).ok());
    if weights.is_none() {
        return Err(hub(format!("none of {WEIGHT_FILES:?} could be fetched")));
    }
    for f in TOKENIZER_FILES.iter().chain([&SETTINGS_FILE]) {
        // Absent files are normal (a repo has vocab.txt or tokenizer.json, rarely both).
        let _ = repo.get(f);
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| hub("the cache path has no folder".into()))
}
