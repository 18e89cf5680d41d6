//! `simcse-prepare`: the prepare stage. Raw data in `--raw-dir`, Parquet artifacts in `--out-dir`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use simcse_data::download::{self, Fetched, REMOTES};
use simcse_data::kornli::TripleRule;
use simcse_data::prepare::{self, Options};

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
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run {
            raw_dir,
            out_dir,
            triples,
            require_all,
            strict,
        } => {
            if !raw_dir.is_dir() {
                bail!(
                    "raw folder {} does not exist: run `cargo xtask download` or pass --raw-dir",
                    raw_dir.display()
                );
            }
            let opts = Options {
                raw_dir,
                out_dir,
                triples,
                require_all,
                strict,
            };
            let summary = prepare::run(&opts).context("prepare failed")?;
            print!("{}", summary.table());
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
    }
    Ok(())
}
