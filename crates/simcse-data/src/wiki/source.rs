//! Input formats of the Wikipedia stage, each turned into a stream of [`Record`]s.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use simcse_artifact::SourceFile;

use super::bz2;
use super::xml::Pages;
use crate::rows::{BadRow, Location, Reason};

/// How the input is read; `Auto` sniffs the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Auto,
    /// MediaWiki XML export, plain or bzip2 (single- or multi-stream).
    Xml,
    /// WikiExtractor `--json` output: one JSON object a line with `id`, `title`, `text`.
    Jsonl,
    /// WikiExtractor's default output: `<doc id=… title=…>` … `</doc>`.
    Doc,
    /// Plain text: each non-blank line is one document (or one sentence).
    Text,
}

/// Why a page is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    NotArticle,
    Redirect,
    Disambiguation,
    Empty,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotArticle => "not_main_namespace",
            Skip::Redirect => "redirect",
            Skip::Disambiguation => "disambiguation",
            Skip::Empty => "empty",
        }
    }
}

/// A document's body: wikitext still to be cleaned, or text already plain.
#[derive(Debug, Clone)]
pub enum Body {
    Wikitext(String),
    Plain(String),
}

#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    pub title: String,
    pub body: Body,
}

#[derive(Debug)]
pub enum Record {
    Doc(Doc),
    Skipped(Skip),
    /// A line that is not a record: counted by reason, or fatal in strict mode.
    Bad(BadRow),
}

/// Bytes read from the input files (compressed bytes for compressed ones) and the SHA-256 of each
/// file read to its end.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: Arc<AtomicU64>,
    pub sha256: Mutex<BTreeMap<PathBuf, String>>,
}

impl Progress {
    /// Reads `path` once through [`Tracked`], for a file whose reader cannot (Parquet seeks).
    pub fn hash_file(self: &Arc<Self>, path: &Path) -> std::io::Result<()> {
        let mut tracked = Tracked::new(File::open(path)?, path, self.clone());
        std::io::copy(&mut tracked, &mut std::io::sink()).map(|_| ())
    }

    /// `path` as a manifest source: its size and the SHA-256 hashed while it was read (or why there
    /// is none).
    pub fn source_file(&self, path: &Path) -> SourceFile {
        SourceFile {
            path: path.to_path_buf(),
            bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            sha256: self
                .sha256
                .lock()
                .ok()
                .and_then(|m| m.get(path).cloned())
                .unwrap_or_else(|| "not computed: the input was not read to its end".into()),
        }
    }
}

/// Reads a file, counting bytes and hashing them; the hash is published at the end of the file.
pub struct Tracked {
    file: File,
    path: PathBuf,
    hasher: Option<Sha256>,
    progress: Arc<Progress>,
}

impl Tracked {
    pub fn new(file: File, path: &Path, progress: Arc<Progress>) -> Self {
        Tracked {
            file,
            path: path.to_path_buf(),
            hasher: Some(Sha256::new()),
            progress,
        }
    }
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if n == 0 {
            if let (Some(h), Ok(mut map)) = (self.hasher.take(), self.progress.sha256.lock()) {
                map.insert(self.path.clone(), hex::encode(h.finalize()));
            }
        } else if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The records of one input file; an `Err` (a message naming the place) ends the stream.
pub type Records = Box<dyn Iterator<Item = Result<Record, String>> + Send>;

/// Opens `path` in `format` (sniffed when `Auto`), decompressing bz2 on `pool` when it is a
/// multistream dump and the pool has more than one thread.
pub fn open(
    path: &Path,
    format: Format,
    progress: Arc<Progress>,
    pool: Arc<rayon::ThreadPool>,
) -> std::io::Result<(Format, Records)> {
    let mut head = vec![0u8; 1 << 20];
    let n = read_head(path, &mut head)?;
    head.truncate(n);
    let is_bz2 = head.starts_with(b"BZh");
    let format = match format {
        Format::Auto if is_bz2 => Format::Xml,
        Format::Auto => sniff(&head),
        f => f,
    };
    let tracked = Tracked::new(File::open(path)?, path, progress);
    let reader: Box<dyn Read + Send> = if !is_bz2 {
        Box::new(tracked)
    } else if pool.current_num_threads() > 1 && bz2::is_multistream(&head) {
        Box::new(bz2::Parallel::new(tracked, pool))
    } else {
        let count = tracked.progress.bytes.clone();
        Box::new(bz2::Sequential::new(tracked, count))
    };
    let reader = BufReader::with_capacity(1 << 20, reader);
    let name = path.to_path_buf();
    let records: Records = match format {
        Format::Xml | Format::Auto => Box::new(Pages::new(reader).map(|p| p.map(page_record))),
        Format::Jsonl => Box::new(
            numbered_lines(reader, name.clone())
                .map(move |l| l.map(|(n, line)| jsonl_record(&name, n, &line))),
        ),
        Format::Doc => Box::new(DocFormat::new(numbered_lines(reader, name))),
        Format::Text => Box::new(numbered_lines(reader, name).map(|l| {
            l.map(|(n, line)| {
                if line.trim().is_empty() {
                    Record::Skipped(Skip::Empty)
                } else {
                    Record::Doc(Doc {
                        id: n.to_string(),
                        title: String::new(),
                        body: Body::Plain(line),
                    })
                }
            })
        })),
    };
    Ok((format, records))
}

fn read_head(path: &Path, head: &mut [u8]) -> std::io::Result<usize> {
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn sniff(head: &[u8]) -> Format {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("<mediawiki") || t.starts_with("<?xml") {
        Format::Xml
    } else if t.starts_with("<doc ") {
        Format::Doc
    } else if t.starts_with('{') {
        Format::Jsonl
    } else {
        Format::Text
    }
}

/// Lines with their 1-based numbers; invalid UTF-8 is an error naming the line.
fn numbered_lines(
    reader: impl BufRead + Send + 'static,
    path: PathBuf,
) -> impl Iterator<Item = Result<(usize, String), String>> + Send {
    let mut done = false;
    reader.lines().enumerate().map_while(move |(i, l)| {
        if done {
            return None;
        }
        Some(l.map(|l| (i + 1, l)).map_err(|e| {
            done = true;
            format!("{}: line {}: {e}", path.display(), i + 1)
        }))
    })
}

/// Applies the page rules: articles only (`ns` 0), no redirects, no disambiguation pages, no empty pages.
fn page_record(p: super::xml::Page) -> Record {
    let head = p.text.trim_start();
    let lower_head: String = head.chars().take(12).collect::<String>().to_lowercase();
    let disambiguation = is_disambiguation(&p.text);
    let skip = if p.ns.trim() != "0" {
        Some(Skip::NotArticle)
    } else if p.redirect
        || lower_head.starts_with("#넘겨주기")
        || lower_head.starts_with("#redirect")
    {
        Some(Skip::Redirect)
    } else if disambiguation {
        Some(Skip::Disambiguation)
    } else if head.is_empty() {
        Some(Skip::Empty)
    } else {
        None
    };
    match skip {
        Some(s) => Record::Skipped(s),
        None => Record::Doc(Doc {
            id: p.id,
            title: p.title,
            body: Body::Wikitext(p.text),
        }),
    }
}

/// `{{동음이의…}}`, `{{disambig…}}` (any case) or `[[분류:동음이의…]]`. Only the places after `{{`
/// and `[[` are compared: this runs on the reader thread over every page.
fn is_disambiguation(text: &str) -> bool {
    let b = text.as_bytes();
    let template = memchr::memmem::find_iter(b, b"{{").any(|i| {
        let rest = &b[i + 2..];
        rest.starts_with("동음이의".as_bytes())
            || rest
                .get(..8)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"disambig"))
    });
    template || memchr::memmem::find(b, "[[분류:동음이의".as_bytes()).is_some()
}

#[derive(Deserialize)]
struct ExtractorJson {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(default)]
    title: String,
    text: String,
}

fn jsonl_record(path: &Path, line_no: usize, line: &str) -> Record {
    if line.trim().is_empty() {
        return Record::Skipped(Skip::Empty);
    }
    match serde_json::from_str::<ExtractorJson>(line) {
        Ok(j) => {
            let id = match j.id {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => line_no.to_string(),
                other => other.to_string(),
            };
            extracted(id, j.title, &j.text)
        }
        Err(e) => Record::Bad(BadRow {
            file: path.to_path_buf(),
            location: Location::Line(line_no),
            reason: Reason::MalformedJson,
            detail: format!("not a WikiExtractor JSON object: {e}"),
        }),
    }
}

/// WikiExtractor repeats the title as the first line of the text; that line is not prose.
fn extracted(id: String, title: String, text: &str) -> Record {
    let mut body = text.trim_start();
    if !title.is_empty()
        && let Some(rest) = body.strip_prefix(title.as_str())
        && (rest.is_empty() || rest.starts_with('\n'))
    {
        body = rest;
    }
    if body.trim().is_empty() {
        return Record::Skipped(Skip::Empty);
    }
    Record::Doc(Doc {
        id,
        title,
        body: Body::Plain(body.to_string()),
    })
}

/// WikiExtractor's `<doc id="…" url="…" title="…">` … `</doc>` blocks.
struct DocFormat<I> {
    lines: I,
}

impl<I> DocFormat<I> {
    fn new(lines: I) -> Self {
        DocFormat { lines }
    }
}

fn attribute(tag: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    tag.find(&key)
        .and_then(|i| {
            let rest = &tag[i + key.len()..];
            rest.find('"').map(|j| rest[..j].to_string())
        })
        .unwrap_or_default()
}

impl<I: Iterator<Item = Result<(usize, String), String>>> Iterator for DocFormat<I> {
    type Item = Result<Record, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (id, title) = loop {
            match self.lines.next()? {
                Err(e) => return Some(Err(e)),
                Ok((_, l)) if l.starts_with("<doc ") => {
                    break (attribute(&l, "id"), attribute(&l, "title"));
                }
                Ok(_) => {}
            }
        };
        let mut text = String::new();
        for line in self.lines.by_ref() {
            match line {
                Err(e) => return Some(Err(e)),
                Ok((_, l)) if l.trim() == "</doc>" => break,
                Ok((_, l)) => {
                    text.push_str(&l);
                    text.push('\n');
                }
            }
        }
        Some(Ok(extracted(id, title, &text)))
    }
}
