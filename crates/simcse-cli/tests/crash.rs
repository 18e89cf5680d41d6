//! `kill -9` in the middle of training, again and again, then `--resume`: the run ends with the
//! same bytes as one that was never interrupted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The training options of both runs: a tiny BERT, 120 supervised updates, a checkpoint every 2.
fn args<'a>(init: &'a str, train: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--mode",
        "sup",
        "--init",
        init,
        "--train-file",
        train,
        "--out",
        out,
        "--dev-file",
        "",
        "--batch-size",
        "4",
        "--epochs",
        "20",
        "--max-len",
        "16",
        "--learning-rate",
        "1e-3",
        "--save-steps",
        "2",
        "--save-total-limit",
        "2",
        "--log-steps",
        "1",
        "--eval-steps",
        "0",
    ]
}

fn train(args: &[&str], cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_simcse-train"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let data = simcse_testkit::prepared();
    let w = data.path();
    let triples: Vec<_> = simcse_artifact::read_triples(&w.join("kornli_triples.parquet"))
        .unwrap()
        .into_iter()
        .take(24)
        .collect();
    let refs: Vec<_> = triples
        .iter()
        .map(|(t, s)| (t.clone(), s.as_str()))
        .collect();
    simcse_artifact::write_triples(&w.join("small.parquet"), &refs).unwrap();
    let texts: Vec<String> = triples
        .iter()
        .flat_map(|(t, _)| [t.anchor.clone(), t.positive.clone(), t.negative.clone()])
        .collect();
    std::fs::create_dir_all(w.join("init")).unwrap();
    simcse_testkit::tiny_init(&w.join("init"), &texts);

    let straight = train(&args("init", "small.parquet", "a"), w)
        .wait_with_output()
        .unwrap();
    assert_ok(&straight);

    // Run b is killed six times: each time once its log passes a seeded random update, then 0-4 ms
    // later (a checkpoint is written every 2 updates, so some kills land inside one). Each restart
    // resumes from the newest intact checkpoint; the seventh run finishes.
    let mut state = 0x5EED_u64;
    let mut targets: Vec<u64> = (0..6)
        .map(|_| 2 + simcse_model::rng::splitmix64(&mut state) % 110)
        .collect();
    targets.sort();
    let last_step = |run: &str| -> u64 {
        let text = std::fs::read_to_string(w.join(run).join("metrics.jsonl")).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["step"].as_u64())
            .unwrap_or(0)
    };
    let mut kills = 0;
    for target in targets.iter().copied().map(Some).chain([None]) {
        let mut a = args("init", "small.parquet", "b");
        if simcse_train::checkpoint::newest_good(&w.join("b")).is_ok() {
            a.push("--resume");
        }
        let mut child = train(&a, w);
        let Some(target) = target else {
            assert_ok(&child.wait_with_output().unwrap());
            break;
        };
        while last_step("b") < target && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(
            simcse_model::rng::splitmix64(&mut state) % 4000,
        ));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    println!("run b: killed {kills} times (after updates {targets:?}), then finished");
    assert_eq!(kills, 6);

    let read = |run: &str, f: &str| std::fs::read(w.join(run).join(f)).unwrap();
    for f in ["model/model.safetensors", "model/config.json"] {
        assert!(read("a", f) == read("b", f), "{f} differs");
    }
    // Each update logged exactly once, in order, in metrics.jsonl.
    let steps = |run: &str| -> Vec<u64> {
        String::from_utf8(read(run, "metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let n = steps("a").len() as u64;
    assert!(n >= 120, "{n} updates");
    assert_eq!(steps("b"), (1..=n).collect::<Vec<_>>());
    assert!(
        !w.join("b/.lock").exists(),
        "the finished run released its lock"
    );
}

/// Runs a stage binary in a shell that caps the size of any file it writes at `kib` KiB (`ulimit -f`,
/// which binds root too; SIGXFSZ ignored, so a write past it fails with EFBIG as on a full disk).
fn capped(bin: &str, args: &[&str], cwd: &Path, kib: usize) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {kib}; exec {bin} {}",
            quoted.join(" ")
        ))
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Fails the test with the process's stderr unless it succeeded.
fn assert_ok(out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A write that fails part-way (the disk fills up) is a clear error naming the file, and the files
/// written before stay as they were: the prepare stage's artifacts, a run's exported model and its
/// checkpoints.
#[test]
fn failed_writes_are_clear_errors_and_keep_the_previous_files() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let raw = simcse_testkit::shared_data();
    let prepare = [
        "run",
        "--raw-dir",
        raw.to_str().unwrap(),
        "--out-dir",
        "data",
    ];
    let ok = capped(env!("CARGO_BIN_EXE_simcse-prepare"), &prepare, w, 1 << 20);
    assert_ok(&ok);
    let before = snapshot(&w.join("data"));
    let full = capped(env!("CARGO_BIN_EXE_simcse-prepare"), &prepare, w, 64);
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success());
    assert!(err.contains("data") && err.contains("too large"), "{err}");
    assert_eq!(
        snapshot(&w.join("data")),
        before,
        "prepared artifacts changed"
    );

    // A finished run, then the same run resumed under the cap: its last export fails.
    let triples = simcse_artifact::read_triples(&w.join("data/kornli_triples.parquet")).unwrap();
    let texts: Vec<String> = triples[..8]
        .iter()
        .flat_map(|(t, _)| [t.anchor.clone(), t.positive.clone(), t.negative.clone()])
        .collect();
    std::fs::create_dir_all(w.join("init")).unwrap();
    simcse_testkit::tiny_init(&w.join("init"), &texts);
    let mut train = args("init", "data/kornli_triples.parquet", "r");
    train.extend(["--max-steps", "4"]);
    let ok = capped(env!("CARGO_BIN_EXE_simcse-train"), &train, w, 1 << 20);
    assert_ok(&ok);
    let before = snapshot(&w.join("r"));
    train.push("--resume");
    let full = capped(env!("CARGO_BIN_EXE_simcse-train"), &train, w, 40);
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success());
    assert!(err.contains("model") && err.contains("too large"), "{err}");
    let after = snapshot(&w.join("r"));
    // A resumed run rewrites these two on start; everything else must be untouched.
    let rewritten = |p: &Path| p.ends_with("metrics.jsonl") || p.ends_with("config.toml");
    for (path, bytes) in before.iter().filter(|(p, _)| !rewritten(p)) {
        let now = after.iter().find(|(p, _)| p == path).map(|(_, b)| b);
        assert!(now == Some(bytes), "{} changed", path.display());
    }
    let extra: Vec<_> = after
        .iter()
        .filter(|(p, _)| !before.iter().any(|(q, _)| q == p))
        .collect();
    assert!(
        extra.is_empty(),
        "left behind: {:?}",
        extra.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    // The folder still resumes (`train` ends with --resume) and finishes.
    let ok = capped(env!("CARGO_BIN_EXE_simcse-train"), &train, w, 1 << 20);
    assert_ok(&ok);
}
