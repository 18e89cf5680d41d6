//! The prepare stage: raw public data sets in, documented Parquet artifacts out.
//!
//! Every reader validates row by row: a bad row is reported with its file and line (or JSON index),
//! counted under its reason and skipped, or made fatal with `strict`. See `data/README.md` for the
//! artifact schemas this crate writes (through `simcse-artifact`) and the later stages read.

pub mod download;
pub mod error;
pub mod kornli;
pub mod prepare;
pub mod rows;
pub mod split;
pub mod sts;
pub mod table;
pub mod wiki;

pub use error::{DataError, Result};
pub use rows::{BadRow, Location, Reason, RowLog};
