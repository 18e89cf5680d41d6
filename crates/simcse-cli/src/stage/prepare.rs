//! `simcse-prepare`: the prepare stage. Raw data in `--raw-dir`, Parquet artifacts in `--out-dir`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use simcse_data::download::{self, Fetched, REMOTES};
use simcse_data::kornli::TripleRule;
use simcse_data::prepare::{self, Options};
use simcse_data::split::Splitter;
use simcse_data::table::TableFormat;
use simcse_data::wiki::{self, Filters, Format, Input};

#[derive(Parser)]
#[command(
    version,
    about = "Prepare stage of Korean SimCSE: raw public data sets -> Parquet artifacts (schemas: data/README.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// KorNLI -> kornli_triples.parquet; KorSTS and KLUE STS -> sts/<name>.parquet; a manifest beside each.
    ///
    /// Reads <raw-dir>/kor-nlu/{snli_1.0_train.ko,multinli.train.ko,xnli.dev.ko,xnli.test.ko}.tsv,
    /// <raw-dir>/kor-nlu/sts-{train,dev,test}.tsv and <raw-dir>/klue-sts/klue-sts-v1.1_{train,dev}.json,
    /// using the ones that are present.
    Run {
        /// Folder with the raw files in the layout `download` writes (a local mirror works too).
        #[arg(long, default_value = "data/raw")]
        raw_dir: PathBuf,
        /// Folder for the artifacts.
        #[arg(long, default_value = "data/processed")]
        out_dir: PathBuf,
        /// How (anchor, entailment, contradiction) triples are formed from the hypotheses of a premise.
        #[arg(long, value_enum, default_value_t = TripleRule::PerEntailment)]
        triples: TripleRule,
        /// Fail when any expected input file is missing, instead of warning and going on.
        #[arg(long)]
        require_all: bool,
        /// Fail on the first bad row, instead of reporting, counting and skipping it.
        #[arg(long)]
        strict: bool,
        /// Also build wiki_sentences.parquet from this Wikipedia dump / corpus (see `wiki --help`).
        #[arg(long)]
        wiki: Option<PathBuf>,
        /// Input format of the Wikipedia file; `auto` sniffs its first bytes.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        wiki_format: Format,
        #[command(flatten)]
        corpus_args: CorpusArgs,
    },
    /// Korean Wikipedia -> <out-dir>/wiki_sentences.parquet (text, doc_id, title) + manifest.
    ///
    /// INPUT is a kowiki pages-articles dump (.xml or .xml.bz2, single- or multistream), WikiExtractor
    /// output (--json lines or <doc> blocks) or plain text, one document or sentence a line. Articles
    /// only (ns 0; no redirects, disambiguation or empty pages); wikitext is cleaned, split into
    /// sentences and filtered. Damaged input: the pages before the damage are kept and the damage is
    /// logged and recorded in the manifest (--strict: fail and write nothing).
    Wiki {
        input: PathBuf,
        #[arg(long, default_value = "data/processed")]
        out_dir: PathBuf,
        #[arg(long)]
        strict: bool,
        /// Input format of the Wikipedia file; `auto` sniffs its first bytes.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        wiki_format: Format,
        #[command(flatten)]
        corpus_args: CorpusArgs,
    },
    /// Your own Korean text -> <out-dir>/sentences.parquet (text, doc_id, title) + manifest: the
    /// unsupervised corpus for `simcse-train --mode unsup --train-file`.
    ///
    /// FILES are plain text (one document or paragraph a line), JSONL (--field names the key),
    /// CSV or TSV with a header row (--field names the column) or Parquet (--field names the
    /// column); text formats may be gzip, zstd or bzip2 compressed. Each document is split into
    /// sentences (--splitter general by default: sentences may end without punctuation), filtered
    /// and deduplicated as the Wikipedia corpus is, without its wiki-markup filter. Bad rows
    /// (invalid UTF-8, binary bytes, JSON that does not parse, a missing field, lines over 1 MiB)
    /// are counted by reason, with the first places, in the summary and the manifest (--strict:
    /// fail on the first and write nothing). doc_id is `<file name>:<line>` (`:<row>` for Parquet).
    Corpus {
        /// Your files, read in this order into one corpus.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Folder for the artifact and its manifest.
        #[arg(long, default_value = "data/processed")]
        out_dir: PathBuf,
        /// Artifact file name inside --out-dir.
        #[arg(long, default_value = "sentences.parquet")]
        name: String,
        /// File format; `auto` goes by the name (.jsonl/.json/.ndjson, .csv, .tsv, .parquet, else
        /// text; a .gz/.zst/.bz2 suffix is looked through).
        #[arg(long, value_enum, default_value_t = TableFormat::Auto)]
        format: TableFormat,
        /// The JSON key or CSV/TSV/Parquet column holding the text (unused for plain text).
        #[arg(long, default_value = "text")]
        field: String,
        /// Fail on the first bad row (naming its file and line) and write nothing, instead of
        /// counting and skipping it.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        corpus_args: CorpusArgs,
    },
    /// Downloads the pinned public data files into the raw folder (resumable, SHA-256 verified).
    Download {
        /// Destination folder; `run --raw-dir` reads the same layout.
        #[arg(long, default_value = "data/raw")]
        dest: PathBuf,
        /// Skip the two large KorNLI train files (160 MB); fetch only the dev/test-sized ones.
        #[arg(long)]
        small: bool,
    },
    /// Sentence splitter alone: each input line is one text; writes one sentence a line to stdout.
    ///
    /// Every non-space character of the input is kept; blank input lines give no output.
    Split {
        /// A UTF-8 text file; standard input when absent or `-`.
        input: Option<PathBuf>,
        /// `wiki`: edited prose, sentences end in punctuation. `general`: any Korean text, also
        /// final endings without punctuation (`...했다 그리고`) and trailing emoticons.
        #[arg(long, value_enum, default_value_t = Splitter::Wiki)]
        splitter: Splitter,
    },
}

/// Options of the sentence corpus builders (Wikipedia and your own text).
#[derive(Args)]
struct CorpusArgs {
    /// Sentence splitter. Default: `wiki` for Wikipedia, `general` for your own text.
    #[arg(long, value_enum)]
    splitter: Option<Splitter>,
    /// Worker threads (cleaning, splitting, multistream bz2); one reader thread comes on top.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// Drop sentences shorter than this many characters.
    #[arg(long, default_value_t = Filters::default().min_chars)]
    min_chars: usize,
    /// Drop sentences longer than this many characters.
    #[arg(long, default_value_t = Filters::default().max_chars)]
    max_chars: usize,
    /// Drop sentences whose non-space characters are less than this share Hangul (0: keep all).
    #[arg(long, default_value_t = Filters::default().min_hangul)]
    min_hangul: f32,
    /// Keep exact duplicate sentences (by default only the first is kept).
    #[arg(long)]
    keep_duplicates: bool,
    /// Keep a seeded uniform sample of N sentences, in corpus order (official SimCSE: 1000000).
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl CorpusArgs {
    fn options(&self, input: Input, out: PathBuf, strict: bool) -> wiki::Options {
        let wiki = matches!(input, Input::Wiki { .. });
        let default_splitter = if wiki {
            Splitter::Wiki
        } else {
            Splitter::General
        };
        wiki::Options {
            input,
            out,
            threads: self.threads,
            filters: Filters {
                min_chars: self.min_chars,
                max_chars: self.max_chars,
                min_hangul: self.min_hangul,
                dedup: !self.keep_duplicates,
                markup: wiki,
            },
            splitter: self.splitter.unwrap_or(default_splitter),
            sample: self.sample,
            seed: self.seed,
            strict,
        }
    }
}

fn run_corpus(opts: &wiki::Options) -> Result<()> {
    let inputs: Vec<String> = opts
        .input
        .paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let summary = wiki::run(opts)
        .with_context(|| format!("building a sentence corpus from {}", inputs.join(", ")))?;
    print!("{}", summary.table());
    println!("wrote {}", opts.out.display());
    Ok(())
}

/// The binary's `main`.
pub fn main() -> Result<()> {
    crate::init_logging();
    match Cli::parse().command {
        Command::Run {
            raw_dir,
            out_dir,
            triples,
            require_all,
            strict,
            wiki,
            wiki_format,
            corpus_args,
        } => {
            if !raw_dir.is_dir() {
                bail!(
                    "raw folder {} does not exist: run `cargo xtask download` or pass --raw-dir",
                    raw_dir.display()
                );
            }
            let opts = Options {
                raw_dir,
                out_dir: out_dir.clone(),
                triples,
                require_all,
                strict,
            };
            let summary = prepare::run(&opts).context("prepare failed")?;
            print!("{}", summary.table());
            if let Some(path) = wiki {
                let input = Input::Wiki {
                    path,
                    format: wiki_format,
                };
                let out = out_dir.join("wiki_sentences.parquet");
                run_corpus(&corpus_args.options(input, out, strict))?;
            }
        }
        Command::Wiki {
            input,
            out_dir,
            strict,
            wiki_format,
            corpus_args,
        } => {
            let input = Input::Wiki {
                path: input,
                format: wiki_format,
            };
            let out = out_dir.join("wiki_sentences.parquet");
            run_corpus(&corpus_args.options(input, out, strict))?
        }
        Command::Corpus {
            files,
            out_dir,
            name,
            format,
            field,
            strict,
            corpus_args,
        } => {
            let input = Input::Corpus {
                paths: files,
                format,
                field,
            };
            run_corpus(&corpus_args.options(input, out_dir.join(name), strict))?
        }
        Command::Download { dest, small } => {
            for r in REMOTES.iter().filter(|r| !small || r.bytes < 50_000_000) {
                let path = dest.join(r.path);
                match download::fetch(r.url, &path, r.sha256)
                    .with_context(|| format!("downloading {}", r.url))?
                {
                    Fetched::AlreadyPresent => {
                        println!("{}: already present, SHA-256 ok", path.display())
                    }
                    Fetched::Downloaded { resumed_from: 0 } => {
                        println!("{}: downloaded, SHA-256 ok", path.display())
                    }
                    Fetched::Downloaded { resumed_from } => {
                        println!(
                            "{}: resumed at byte {resumed_from}, SHA-256 ok",
                            path.display()
                        )
                    }
                }
            }
        }
        Command::Split { input, splitter } => split(input.as_deref(), splitter)?,
    }
    Ok(())
}

fn split(input: Option<&Path>, splitter: Splitter) -> Result<()> {
    let reader: Box<dyn BufRead> = match input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(BufReader::new(
            File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
    };
    let name = input.map_or("<stdin>".into(), |p| p.display().to_string());
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: line {}: not UTF-8 text", n + 1))?;
        for s in simcse_data::split::sentences_with(&line, splitter) {
            writeln!(out, "{s}")?;
        }
    }
    out.flush()?;
    Ok(())
}
