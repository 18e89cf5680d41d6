//! Row-level validation bookkeeping shared by every reader: what was read, what was skipped and why.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{DataError, Result};

/// Why a row was skipped. The names are stable: they appear in summaries and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    FieldCount,
    UnknownLabel,
    EmptySentence,
    BadScore,
    ScoreOutOfRange,
    InvalidUtf8,
    MalformedJson,
    Binary,
    MissingField,
    TooLong,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FieldCount => "field_count",
            Reason::UnknownLabel => "unknown_label",
            Reason::EmptySentence => "empty_sentence",
            Reason::BadScore => "bad_score",
            Reason::ScoreOutOfRange => "score_out_of_range",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::MalformedJson => "malformed_json",
            Reason::Binary => "binary",
            Reason::MissingField => "missing_field",
            Reason::TooLong => "too_long",
        }
    }
}

/// Where in its file a bad row sits: a 1-based line for text files, a 0-based element index for JSON,
/// a 0-based row for Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Line(usize),
    JsonIndex(usize),
    Row(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::JsonIndex(i) => write!(f, "JSON index {i}"),
            Location::Row(i) => write!(f, "row {i}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    pub file: PathBuf,
    pub location: Location,
    pub reason: Reason,
    pub detail: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} ({})",
            self.file.display(),
            self.location,
            self.detail,
            self.reason.as_str()
        )
    }
}

/// How many bad rows of one file are logged one by one; the rest are only counted.
const LOGGED_PER_FILE: usize = 20;

/// Per-file account of rows read and skipped. In strict mode the first bad row is an error.
#[derive(Debug, Clone, Serialize)]
pub struct RowLog {
    pub file: PathBuf,
    pub rows_read: usize,
    pub skipped: BTreeMap<Reason, usize>,
    #[serde(skip)]
    strict: bool,
    /// The bad rows that were logged (at most `LOGGED_PER_FILE`), kept for summaries and tests.
    #[serde(skip)]
    pub examples: Vec<BadRow>,
}

impl RowLog {
    pub fn new(file: &Path, strict: bool) -> Self {
        RowLog {
            file: file.to_path_buf(),
            rows_read: 0,
            skipped: BTreeMap::new(),
            strict,
            examples: Vec::new(),
        }
    }

    /// Records a bad row at `location`; returns the error instead in strict mode.
    pub fn skip(
        &mut self,
        location: Location,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Result<()> {
        let bad = BadRow {
            file: self.file.clone(),
            location,
            reason,
            detail: detail.into(),
        };
        if self.strict {
            return Err(DataError::BadRow(bad));
        }
        *self.skipped.entry(reason).or_default() += 1;
        if self.examples.len() < LOGGED_PER_FILE {
            tracing::warn!("skipped {bad}");
            self.examples.push(bad);
        } else if self.examples.len() == LOGGED_PER_FILE
            && self.skipped_total() == LOGGED_PER_FILE + 1
        {
            tracing::warn!(
                "{}: more bad rows; only counting them from here on",
                self.file.display()
            );
        }
        Ok(())
    }

    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    pub fn rows_kept(&self) -> usize {
        self.rows_read - self.skipped_total()
    }
}

/// Splits a text file into (1-based line number, line bytes) without the line terminator.
/// A final line without a newline is still a line; a `\r` before the `\n` is dropped.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut it = (!bytes.is_empty()).then(|| body.split(|&b| b == b'\n'));
    std::iter::from_fn(move || it.as_mut()?.next())
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Decodes one line of a tab-separated file and checks its field count (TAB only, no quoting:
/// these corpora contain unbalanced `"` that a quoting CSV reader silently merges across rows).
pub fn tsv_fields<'a>(
    log: &mut RowLog,
    line_no: usize,
    raw: &'a [u8],
    expected: usize,
) -> Result<Option<Vec<&'a str>>> {
    let loc = Location::Line(line_no);
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(e) => {
            log.skip(
                loc,
                Reason::InvalidUtf8,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
            )?;
            return Ok(None);
        }
    };
    let fields: Vec<&str> = text.split('\t').collect();
    if fields.len() != expected {
        log.skip(
            loc,
            Reason::FieldCount,
            format!("{} tab-separated fields, expected {expected}", fields.len()),
        )?;
        return Ok(None);
    }
    Ok(Some(fields))
}

/// Reads a whole input file, naming the expected file when it is missing.
pub fn read_input(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                what: what.to_string(),
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Checks the header line of a TSV file.
pub fn check_header(path: &Path, first: Option<(usize, &[u8])>, expected: &str) -> Result<()> {
    let found = first
        .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    if found != expected {
        return Err(DataError::Header {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_handles_missing_final_newline_and_crlf() {
        let got: Vec<_> = lines(b"a\r\nb\nc").collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (2, &b"b"[..]), (3, &b"c"[..])]);
        let got: Vec<_> = lines(b"a\nb\n").collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (2, &b"b"[..])]);
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn strict_mode_turns_the_first_bad_row_into_an_error() {
        let mut log = RowLog::new(Path::new("x.tsv"), true);
        let err = log
            .skip(Location::Line(7), Reason::EmptySentence, "empty sentence2")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.tsv: line 7: empty sentence2 (empty_sentence) (strict mode: any bad row is fatal)"
        );
    }
}
