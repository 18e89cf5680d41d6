//! `cargo xtask <command> [args]`: runs the pipeline's stage binaries, nothing else.
//!
//! Each command maps to one stage binary; every argument after the command is passed on unchanged,
//! so `cargo xtask prepare --help` shows the stage's own help. The stage binaries work on their own
//! (`cargo run -p simcse-data --bin simcse-prepare -- --help`): xtask only saves typing.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

/// command -> (package, binary, subcommand of the binary), and what it does.
const COMMANDS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    (
        "prepare",
        "simcse-data",
        "simcse-prepare",
        Some("run"),
        "raw data -> Parquet artifacts (see data/README.md)",
    ),
    (
        "wiki",
        "simcse-data",
        "simcse-prepare",
        Some("wiki"),
        "Korean Wikipedia dump -> wiki_sentences.parquet (the unsupervised corpus)",
    ),
    (
        "split",
        "simcse-data",
        "simcse-prepare",
        Some("split"),
        "the Korean sentence splitter alone: one text a line in, one sentence a line out",
    ),
    (
        "download",
        "simcse-data",
        "simcse-prepare",
        Some("download"),
        "fetch the pinned public data sets into data/raw",
    ),
    (
        "train",
        "simcse-train",
        "simcse-train",
        None,
        "train a SimCSE encoder (--mode unsup|sup, --config FILE, --init DIR)",
    ),
    (
        "eval",
        "simcse-eval",
        "simcse-eval",
        None,
        "evaluate model folders on KorSTS / KLUE STS and write a report",
    ),
];

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask [--release] <command> [args...]\n\ncommands:\n");
    for (name, pkg, bin, sub, what) in COMMANDS {
        s += &format!(
            "  {name:<10} {what}\n             runs `{bin}{}` of {pkg}\n",
            sub.map(|s| format!(" {s}")).unwrap_or_default()
        );
    }
    s
}

fn main() -> Result<ExitCode> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let release = args.first().is_some_and(|a| a == "--release");
    if release {
        args.remove(0);
    }
    let Some(name) = args.first().cloned() else {
        eprint!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    if name == "--help" || name == "-h" || name == "help" {
        print!("{}", usage());
        return Ok(ExitCode::SUCCESS);
    }
    let Some((_, pkg, bin, sub, _)) = COMMANDS.iter().find(|c| c.0 == name) else {
        bail!("unknown command {name:?}\n\n{}", usage());
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--quiet", "--package", pkg, "--bin", bin]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(sub.iter()).args(&args[1..]);
    let status = cmd.status().with_context(|| format!("running {bin}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8)
    })
}
