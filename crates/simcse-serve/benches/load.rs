//! Load on loopback: N clients POST /embed (one sentence each) for a fixed time, against the same
//! encoder called directly; prints requests/s and p50/p99 latency (BENCHMARKS.md "Serving").
//!
//! `cargo bench -p simcse-serve --bench load` (env: SIMCSE_MINILM_DIR or SIMCSE_MODEL, CLIENTS=8,
//! SECONDS=10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use simcse_model::Encoder;
use simcse_serve::{Batcher, Limits, State};

type B = burn::backend::Flex;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(what: &str, mut lat: Vec<Duration>, elapsed: f64) {
    lat.sort();
    println!(
        "| {what} | {:.1} | {:.1} | {:.1} | {} |",
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
}

fn main() {
    let model = std::env::var("SIMCSE_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| simcse_testkit::minilm());
    let clients = env("CLIENTS", 8);
    let seconds = env("SECONDS", 10) as f64;
    let load = {
        let model = model.clone();
        move || {
            let mut enc = Encoder::<B>::from_dir(&model, None, None, &Default::default()).unwrap();
            enc.batch_size = env("FORWARD_BATCH", 64);
            enc
        }
    };
    let sts =
        std::fs::read_to_string(simcse_testkit::shared_data().join("kor-nlu/sts-dev.tsv")).unwrap();
    let sentences: Vec<String> = sts
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(5))
        .map(String::from)
        .collect();
    println!(
        "model {}, {clients} clients, {seconds} s each, {} threads",
        model.display(),
        rayon::current_num_threads()
    );
    println!("| what | requests/s | p50 ms | p99 ms | requests |\n|---|---|---|---|---|");

    // The encoder called directly, one sentence a call, one caller: what a request costs alone.
    let enc = load();
    let (start, mut lat) = (Instant::now(), Vec::new());
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        enc.encode(&[sentences[lat.len() % sentences.len()].as_str()])
            .unwrap();
        lat.push(t.elapsed());
    }
    report(
        "encoder directly, 1 sentence a call",
        lat,
        start.elapsed().as_secs_f64(),
    );

    // The encoder directly, 64 sentences a call: the throughput batching can reach.
    let (start, mut lat) = (Instant::now(), Vec::new());
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        let from = (lat.len() * 64) % (sentences.len() - 64);
        let batch: Vec<&str> = sentences[from..from + 64]
            .iter()
            .map(String::as_str)
            .collect();
        enc.encode(&batch).unwrap();
        lat.push(t.elapsed());
    }
    let calls = lat.len();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "| encoder directly, 64 sentences a call (sentences/s) | {:.1} | | | {calls} calls |",
        (calls * 64) as f64 / elapsed
    );

    // The server: N clients, each one sentence a request, as fast as answers come.
    let state = Arc::new(State {
        batcher: Batcher::spawn(move || Ok(load()), 64).unwrap(),
        corpus: None,
        limits: Limits::default(),
        model: model.display().to_string(),
    });
    let addr = simcse_serve::spawn(state.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let start = Instant::now();
    let lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let sentences = &sentences;
                s.spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    let mut lat = Vec::new();
                    while start.elapsed().as_secs_f64() < seconds {
                        let text = &sentences[(c * 997 + lat.len()) % sentences.len()];
                        let body = serde_json::json!({ "inputs": [text] }).to_string();
                        let t = Instant::now();
                        let mut r = agent
                            .post(format!("http://{addr}/embed"))
                            .send(body.as_bytes())
                            .unwrap();
                        r.body_mut().read_to_string().unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let stats = &state.batcher.stats;
    let (requests, batches) = (
        stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
    );
    report(
        &format!("server /embed, {clients} clients, 1 sentence a request"),
        lat,
        elapsed,
    );
    println!(
        "\n{requests} requests in {batches} batches ({:.1} requests a batch)",
        requests as f64 / batches.max(1) as f64
    );
}
