//! Training as processes: `kill -9` in the middle of training, again and again, then `--resume`
//! ends with the same bytes as a run never interrupted; failed writes keep the previous files;
//! several machines (processes here) train as several devices of one.

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

/// A prepared folder with `small.parquet` (24 KorNLI triples) and `init/` (a tiny BERT).
fn small_run() -> tempfile::TempDir {
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
    data
}

#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let data = small_run();
    let w = data.path();
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

/// Two machines (two processes here, through burn's multi-node mode: an orchestrator, then
/// websockets between the machines) train as two devices of one process: the same losses and
/// weights, bit for bit (a sum of two is exact in either order), in each machine's run folder. A
/// machine killed mid-run stops the other with an error, and both resume to the same bytes.
/// Machines that disagree stop with an error that says how.
#[test]
fn two_machines_train_as_two_devices_of_one() {
    let data = small_run();
    let w = data.path();
    let run = |out: &str, extra: &[&str]| {
        let mut a = args("init", "small.parquet", out);
        a.extend(extra);
        train(&a, w)
    };
    assert_ok(
        &run("one", &["--devices", "cpu,cpu"])
            .wait_with_output()
            .unwrap(),
    );

    // Each machine trains on one device (unless `extra` says otherwise), with --node-rank `ranks`.
    let port = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = |name: &str, ranks: [&str; 2], extra: [&[&str]; 2]| {
        let orchestrator_port = port().to_string();
        let orchestrator = Command::new(env!("CARGO_BIN_EXE_simcse-train"))
            .args(["orchestrator", "--port", &orchestrator_port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nodes: Vec<_> = (0..2)
            .map(|m| {
                let (out, address) = (format!("{name}{m}"), format!("ws://127.0.0.1:{}", port()));
                let orchestrator = format!("ws://127.0.0.1:{orchestrator_port}");
                let mut a = vec!["--nodes", "2", "--node-rank", ranks[m]];
                a.extend(["--orchestrator", &orchestrator, "--node-address", &address]);
                a.extend(extra[m]);
                run(&out, &a)
            })
            .collect();
        (orchestrator, nodes)
    };
    let end = |(mut orchestrator, nodes): (std::process::Child, Vec<std::process::Child>)| {
        let outs = nodes
            .into_iter()
            .map(|n| finished(n, 300))
            .collect::<Vec<_>>();
        orchestrator.kill().unwrap();
        orchestrator.wait().unwrap();
        outs
    };
    let read = |run: &str, f: &str| std::fs::read(w.join(run).join(f)).unwrap();
    let same_as_one = |m: &str| {
        let losses = |run: &str| -> Vec<f64> {
            (String::from_utf8(read(run, "metrics.jsonl"))
                .unwrap()
                .lines())
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
        };
        assert!(losses("one").len() >= 120);
        assert_eq!(losses(m), losses("one"), "{m}");
        let f = "model/model.safetensors";
        assert!(read(m, f) == read("one", f), "{m}: {f} differs");
    };
    for out in end(start("m", ["0", "1"], [&[], &[]])) {
        assert_ok(&out);
    }
    same_as_one("m0");
    same_as_one("m1");

    // kill -9 machine 1 after its tenth update: machine 0 stops with an error instead of waiting.
    let (orchestrator, mut nodes) = start("k", ["0", "1"], [&[], &[]]);
    let logged =
        |run: &str| std::fs::read_to_string(w.join(run).join("metrics.jsonl")).unwrap_or_default();
    while logged("k1").lines().count() < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    nodes[1].kill().unwrap();
    let outs = end((orchestrator, nodes));
    let stderr = String::from_utf8_lossy(&outs[0].stderr);
    assert!(
        !outs[0].status.success() && stderr.contains("lost touch with the other machines"),
        "{stderr}"
    );
    // Both resume from the newest checkpoint they both have (machine 0 may have one more).
    let newest = simcse_train::checkpoint::list(&w.join("k1"))
        .into_iter()
        .rev()
        .find(|c| {
            w.join("k0/checkpoints")
                .join(c.file_name().unwrap())
                .join("state.json")
                .is_file()
        });
    let step = newest
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let resume = [0, 1].map(|m| format!("k{m}/checkpoints/{step}"));
    let resume: [&[&str]; 2] = [&["--resume", &resume[0]], &["--resume", &resume[1]]];
    for out in end(start("k", ["0", "1"], resume)) {
        assert_ok(&out);
    }
    same_as_one("k0");
    same_as_one("k1");

    // Both machines given rank 0; machines with another temperature; with 1 and 2 devices.
    let fails = |outs: Vec<std::process::Output>, wanted: [&str; 2]| {
        for (out, wanted) in outs.iter().zip(wanted) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && stderr.contains(wanted), "{stderr}");
        }
    };
    let rank0 = "2 machines started with --node-rank 0";
    fails(end(start("same", ["0", "0"], [&[], &[]])), [rank0, rank0]);
    let temperature: [&[&str]; 2] = [&[], &["--temperature", "0.1"]];
    fails(
        end(start("t", ["0", "1"], temperature)),
        [
            "machine 1 runs another training than this one (0)",
            "machine 0 runs another training than this one (1)",
        ],
    );
    let devices: [&[&str]; 2] = [&[], &["--devices", "cpu,cpu"]];
    fails(
        end(start("dev", ["0", "1"], devices)),
        [
            "machine 1 trains on 2 device(s), this one (0) on 1",
            "machine 0 trains on 1 device(s), this one (1) on 2",
        ],
    );
}

/// `child`'s output once it exits; killed (and the test failed) after `seconds`.
fn finished(mut child: std::process::Child, seconds: u64) -> std::process::Output {
    use std::io::Read;
    // Read as it comes: a child blocked on a full pipe would never exit.
    let mut pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        pipe.read_to_end(&mut text).map(|_| text)
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > seconds {
            child.kill().unwrap();
            child.wait().unwrap();
            let text = stderr.join().unwrap().unwrap();
            panic!(
                "still running after {seconds} s: {}",
                String::from_utf8_lossy(&text)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr.join().unwrap().unwrap();
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
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
