//! A user's own files as rows of named columns: plain text, JSONL, CSV, TSV or Parquet, the text
//! formats optionally compressed with gzip, zstd or bzip2 (recognised by their first bytes). Read
//! as a stream, a row at a time; bad rows (invalid UTF-8, binary bytes, a JSON line that does not
//! parse, a missing field) come out as [`BadRow`]s naming the file and line, for the caller to count
//! or, in strict mode, to fail on.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::error::{DataError, Result};
use crate::rows::{BadRow, Location, Reason};
use crate::wiki::source::{Progress, Tracked};

/// Longest line read from a text, JSONL, CSV or TSV file; a longer one is skipped (`too_long`).
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// From the file name without its compression suffix: `.jsonl`/`.ndjson`/`.json`, `.csv`,
    /// `.tsv`, `.parquet`, anything else plain text.
    Auto,
    /// One text a line; the whole line is the one column.
    Text,
    /// One JSON object a line; columns are its keys (string values; numbers for a score).
    Jsonl,
    /// Comma-separated with a header row and RFC 4180 quoting.
    Csv,
    /// Tab-separated with a header row and RFC 4180 quoting.
    Tsv,
    /// A Parquet file; columns are its string (or numeric) columns.
    Parquet,
}

impl TableFormat {
    /// The format `Auto` stands for, from `path`'s name.
    pub fn resolve(self, path: &Path) -> TableFormat {
        if self != TableFormat::Auto {
            return self;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name = [".gz", ".zst", ".bz2"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        match name.rsplit_once('.').map(|(_, e)| e) {
            Some("jsonl" | "ndjson" | "json") => TableFormat::Jsonl,
            Some("csv") => TableFormat::Csv,
            Some("tsv") => TableFormat::Tsv,
            Some("parquet") => TableFormat::Parquet,
            _ => TableFormat::Text,
        }
    }
}

/// What one row of the stream is.
#[derive(Debug)]
pub enum Item {
    /// The requested columns' values, in the order asked for.
    Row {
        location: Location,
        fields: Vec<String>,
    },
    /// A blank line of a text file: not a row, not an error.
    Blank,
    Bad(BadRow),
}

/// The rows of one file; an `Err` (a message naming the place) is damage that ends the stream.
pub type Items = Box<dyn Iterator<Item = std::result::Result<Item, String>> + Send>;

/// Opens `path` as a table of `format` and streams the `columns` of each row (ignored for plain
/// text, whose one column is the line). Counts the bytes read and publishes the file's SHA-256 in
/// `progress` (a Parquet file is read once for that before its rows). A header or schema without a
/// requested column is an error here, naming the columns that are there.
pub fn open(
    path: &Path,
    format: TableFormat,
    columns: &[String],
    progress: Arc<Progress>,
) -> Result<Items> {
    let format = format.resolve(path);
    if format == TableFormat::Parquet {
        progress.hash_file(path).map_err(DataError::io(path))?;
        return parquet_rows(path, columns);
    }
    let file = File::open(path).map_err(DataError::io(path))?;
    let reader = decompressed(Tracked::new(file, path, progress)).map_err(DataError::io(path))?;
    let path = path.to_path_buf();
    Ok(match format {
        TableFormat::Csv | TableFormat::Tsv => {
            let delimiter = if format == TableFormat::Csv {
                b','
            } else {
                b'\t'
            };
            csv_rows(reader, path, delimiter, columns)?
        }
        TableFormat::Jsonl => {
            let columns = columns.to_vec();
            Box::new(lines(reader, path, move |p, n, text| {
                json_row(p, n, &text, &columns)
            }))
        }
        _ => Box::new(lines(reader, path, |_, n, text| Item::Row {
            location: Location::Line(n),
            fields: vec![text],
        })),
    })
}

/// Wraps `r` in the decompressor its first bytes call for (gzip, zstd, bzip2), or none.
fn decompressed(r: impl Read + Send + 'static) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let head = r.fill_buf()?.to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::new(zstd::stream::read::Decoder::with_buffer(r)?))
    } else if head.starts_with(b"BZh") {
        Box::new(BufReader::new(bzip2::bufread::MultiBzDecoder::new(r)))
    } else {
        Box::new(r)
    })
}

fn bad(path: &Path, location: Location, reason: Reason, detail: impl Into<String>) -> BadRow {
    BadRow {
        file: path.to_path_buf(),
        location,
        reason,
        detail: detail.into(),
    }
}

/// Why a line's bytes are not text, if they are not: invalid UTF-8, or NUL and other control bytes
/// that text does not contain.
fn not_text(bytes: &[u8]) -> Option<(Reason, String)> {
    if let Some(i) = bytes
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0x0c))
    {
        return Some((
            Reason::Binary,
            format!(
                "control byte 0x{:02x} at byte {i}: binary data, not text",
                bytes[i]
            ),
        ));
    }
    std::str::from_utf8(bytes).err().map(|e| {
        (
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
        )
    })
}

/// The lines of `r` (numbered from 1, `\r\n` or `\n`), each checked to be text of at most
/// [`MAX_LINE_BYTES`] and made a row by `row(path, line number, text)`; blank lines are
/// [`Item::Blank`]. A read or decompression error ends the stream.
fn lines(
    mut r: Box<dyn BufRead + Send>,
    path: PathBuf,
    row: impl Fn(&Path, usize, String) -> Item + Send,
) -> impl Iterator<Item = std::result::Result<Item, String>> + Send {
    let mut n = 0;
    let mut done = false;
    let mut buf = Vec::new();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        n += 1;
        buf.clear();
        let read = r
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf);
        let fail = |e: std::io::Error| format!("{}: line {n}: {e}", path.display());
        match read {
            Err(e) => {
                done = true;
                return Some(Err(fail(e)));
            }
            Ok(0) => return None,
            Ok(_) => {}
        }
        let loc = Location::Line(n);
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            if let Err(e) = r.skip_until(b'\n') {
                done = true;
                return Some(Err(fail(e)));
            }
            let detail = format!("longer than {MAX_LINE_BYTES} bytes");
            return Some(Ok(Item::Bad(bad(&path, loc, Reason::TooLong, detail))));
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some(Ok(match not_text(line) {
            Some((reason, detail)) => Item::Bad(bad(&path, loc, reason, detail)),
            None => {
                let text = String::from_utf8_lossy(line).into_owned();
                if text.trim().is_empty() {
                    Item::Blank
                } else {
                    row(&path, n, text)
                }
            }
        }))
    })
}

/// A JSON value as a column's text: strings as they are, numbers and booleans printed.
fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(x) => Some(x.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_row(path: &Path, n: usize, line: &str, columns: &[String]) -> Item {
    let loc = Location::Line(n);
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Item::Bad(bad(path, loc, Reason::MalformedJson, e.to_string())),
    };
    let Some(object) = value.as_object() else {
        let detail = "not a JSON object";
        return Item::Bad(bad(path, loc, Reason::MalformedJson, detail));
    };
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        match object.get(c).and_then(json_text) {
            Some(t) => fields.push(t),
            None => {
                let detail = format!("no string or number under key {c:?}");
                return Item::Bad(bad(path, loc, Reason::MissingField, detail));
            }
        }
    }
    Item::Row {
        location: loc,
        fields,
    }
}

fn csv_rows(
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    delimiter: u8,
    columns: &[String],
) -> Result<Items> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(reader);
    let header = csv.byte_headers().map_err(|e| DataError::Corrupt {
        path: path.clone(),
        message: format!("line 1: cannot read the header row: {e}"),
    })?;
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let index = column_indices(&path, columns, &names)?;
    let mut done = false;
    let mut record = csv::ByteRecord::new();
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match csv.read_byte_record(&mut record) {
            Err(e) => {
                done = true;
                let line = e.position().map_or(0, |p| p.line());
                Some(Err(format!("{}: line {line}: {e}", path.display())))
            }
            Ok(false) => None,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line()) as usize;
                Some(Ok(csv_item(&path, line, &record, &index)))
            }
        }
    })))
}

fn csv_item(path: &Path, line: usize, record: &csv::ByteRecord, index: &[usize]) -> Item {
    let loc = Location::Line(line);
    if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
        return Item::Blank;
    }
    let mut fields = Vec::with_capacity(index.len());
    for &i in index {
        let Some(raw) = record.get(i) else {
            let detail = format!("{} fields, the column is field {}", record.len(), i + 1);
            return Item::Bad(bad(path, loc, Reason::FieldCount, detail));
        };
        if let Some((reason, detail)) = not_text(raw) {
            return Item::Bad(bad(path, loc, reason, format!("field {}: {detail}", i + 1)));
        }
        fields.push(String::from_utf8_lossy(raw).into_owned());
    }
    Item::Row {
        location: loc,
        fields,
    }
}

/// The position of each requested column among `names`; a missing one is an error listing them.
fn column_indices(path: &Path, columns: &[String], names: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .ok_or_else(|| DataError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("no column {c:?}; the columns are {names:?}"),
                })
        })
        .collect()
}

fn parquet_rows(path: &Path, columns: &[String]) -> Result<Items> {
    let corrupt = |message: String| DataError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(DataError::io(path))?;
    let builder = catch_unwind(|| ParquetRecordBatchReaderBuilder::try_new(file))
        .map_err(|_| corrupt("malformed Parquet file (the parquet reader panicked)".into()))?
        .map_err(|e| corrupt(format!("not a readable Parquet file: {e}")))?;
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let index = column_indices(path, columns, &names)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), index.iter().copied());
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    // The projection keeps the file's column order; map each requested column to its place there.
    let mut sorted = index.clone();
    sorted.sort_unstable();
    let order: Vec<usize> = index
        .iter()
        .map(|i| sorted.iter().position(|s| s == i).unwrap_or(0))
        .collect();
    let path = path.to_path_buf();
    let mut row = 0usize;
    let mut reader = Some(reader);
    // parquet 60 panics on some corrupt column-chunk metadata instead of returning its error (found
    // by fuzzing): a panic there is damage like any other, and ends the stream.
    let batches = std::iter::from_fn(move || {
        let next = catch_unwind(AssertUnwindSafe(|| reader.as_mut()?.next()));
        next.unwrap_or_else(|_| {
            reader = None;
            Some(Err(ArrowError::ParquetError(
                "malformed Parquet file (the parquet reader panicked)".into(),
            )))
        })
    });
    Ok(Box::new(batches.flat_map(move |batch| {
        let items: Vec<std::result::Result<Item, String>> = match batch {
            Err(e) => vec![Err(format!("{}: row {row}: {e}", path.display()))],
            Ok(batch) => {
                let items = batch_items(&path, &batch, &order, row);
                row += batch.num_rows();
                items.into_iter().map(Ok).collect()
            }
        };
        items
    })))
}

/// The rows of one record batch; rows are numbered from 0 across the file.
fn batch_items(path: &Path, batch: &RecordBatch, order: &[usize], first: usize) -> Vec<Item> {
    let texts: Vec<Vec<Option<String>>> = order
        .iter()
        .map(|&c| column_texts(batch.column(c).as_ref()))
        .collect();
    (0..batch.num_rows())
        .map(|r| {
            let loc = Location::Row(first + r);
            let mut fields = Vec::with_capacity(texts.len());
            for (col, &c) in texts.iter().zip(order) {
                match &col[r] {
                    Some(t) => fields.push(t.clone()),
                    None => {
                        let name = batch.schema().field(c).name().clone();
                        let detail = format!("column {name:?} is null or not text");
                        return Item::Bad(bad(path, loc, Reason::MissingField, detail));
                    }
                }
            }
            Item::Row {
                location: loc,
                fields,
            }
        })
        .collect()
}

/// A column's values as text: string columns as they are, numeric ones printed (a score stored as
/// a number); nulls and other types are `None`.
fn column_texts(col: &dyn Array) -> Vec<Option<String>> {
    let text = |i: usize| -> Option<String> {
        Some(match col.data_type() {
            DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
            DataType::LargeUtf8 => col.as_string::<i64>().value(i).to_string(),
            DataType::Utf8View => col.as_string_view().value(i).to_string(),
            DataType::Float32 => col.as_primitive::<Float32Type>().value(i).to_string(),
            DataType::Float64 => col.as_primitive::<Float64Type>().value(i).to_string(),
            DataType::Int32 => col.as_primitive::<Int32Type>().value(i).to_string(),
            DataType::Int64 => col.as_primitive::<Int64Type>().value(i).to_string(),
            _ => return None,
        })
    };
    (0..col.len())
        .map(|i| if col.is_valid(i) { text(i) } else { None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::TableFormat;
    use std::path::Path;

    #[test]
    fn auto_format_comes_from_the_name_without_the_compression_suffix() {
        let f = |n: &str| TableFormat::Auto.resolve(Path::new(n));
        assert_eq!(f("a/reviews.jsonl.gz"), TableFormat::Jsonl);
        assert_eq!(f("x.CSV"), TableFormat::Csv);
        assert_eq!(f("x.tsv.zst"), TableFormat::Tsv);
        assert_eq!(f("x.parquet"), TableFormat::Parquet);
        assert_eq!(f("notes.txt.bz2"), TableFormat::Text);
        assert_eq!(f("README"), TableFormat::Text);
        assert_eq!(
            TableFormat::Csv.resolve(Path::new("x.txt")),
            TableFormat::Csv
        );
    }
}
