//! The server on loopback with a real model (all-MiniLM-L6-v2) and a real index (the kowiki
//! sample): the API, bad input, batching, and the web page in headless Chromium.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use simcse_embed::embed::{EmbedOptions, embed_file};
use simcse_embed::search::Corpus;
use simcse_model::Encoder;
use simcse_serve::{Batcher, Limits, State};

type B = burn::backend::Flex;

fn encoder() -> Encoder<B> {
    Encoder::<B>::from_dir(&simcse_testkit::minilm(), None, None, &Default::default()).unwrap()
}

/// The kowiki sample embedded with the test model into `dir`.
fn index(dir: &Path) -> PathBuf {
    let out = dir.join("kowiki.parquet");
    let opts = EmbedOptions {
        input: simcse_testkit::shared_data().join("kowiki-sample/kss_bench_wikipedia.txt"),
        format: simcse_data::table::TableFormat::Auto,
        field: "text".into(),
        id_field: None,
        out: out.clone(),
        normalize: true,
        chunk: 4096,
        strict: false,
        model: "all-MiniLM-L6-v2".into(),
    };
    embed_file(&encoder(), &opts).unwrap();
    out
}

/// Starts a server on a free loopback port in a thread of its own; returns its address.
fn start(index: Option<&Path>, limits: Limits) -> (SocketAddr, Arc<State>) {
    let batcher = Batcher::spawn(|| Ok(encoder()), 64).unwrap();
    let corpus = index.map(|p| Corpus::open(p, false).unwrap());
    let state = Arc::new(State {
        batcher,
        corpus,
        limits,
        model: "all-MiniLM-L6-v2".into(),
    });
    let addr = simcse_serve::spawn(state.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    (addr, state)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` to `path`; returns the status and the JSON answer.
fn post(addr: SocketAddr, path: &str, body: impl AsRef<[u8]>) -> (u16, serde_json::Value) {
    let mut r = agent()
        .post(format!("http://{addr}{path}"))
        .header("Content-Type", "application/json")
        .send(body.as_ref())
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (r.status().as_u16(), json)
}

#[test]
fn the_api_answers_tei_shapes_and_refuses_bad_input_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_body: 400_000,
        ..Limits::default()
    };
    let (addr, _) = start(Some(&index(dir.path())), limits);
    let direct = encoder();

    // /embed in text-embeddings-inference's shape: unit vectors equal to the encoder's own.
    let (status, rows) = post(
        addr,
        "/embed",
        r#"{"inputs": ["한 남자가 기타를 친다.", "여자가 노래한다."]}"#,
    );
    assert_eq!(status, 200);
    let want = direct
        .encode(&["한 남자가 기타를 친다.", "여자가 노래한다."])
        .unwrap();
    for (row, w) in rows.as_array().unwrap().iter().zip(&want) {
        let got: Vec<f32> = serde_json::from_value(row.clone()).unwrap();
        let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        let diff = got
            .iter()
            .zip(w)
            .map(|(g, w)| (g - w / norm).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{diff}");
    }
    let (status, one) = post(
        addr,
        "/embed",
        r#"{"inputs": "한 문장", "normalize": false}"#,
    );
    assert_eq!((status, one.as_array().unwrap().len()), (200, 1));

    // /similarity, both shapes, agree.
    let (_, scores) = post(
        addr,
        "/similarity",
        r#"{"inputs": {"source_sentence": "고양이가 잔다.", "sentences": ["고양이가 자고 있다.", "주식 시장이 올랐다."]}}"#,
    );
    let (_, m) = post(
        addr,
        "/similarity",
        r#"{"sentences": ["고양이가 잔다.", "고양이가 자고 있다.", "주식 시장이 올랐다."]}"#,
    );
    let s: Vec<f32> = serde_json::from_value(scores).unwrap();
    let m: Vec<Vec<f32>> = serde_json::from_value(m["matrix"].clone()).unwrap();
    assert!((s[0] - m[0][1]).abs() < 1e-5 && (s[1] - m[0][2]).abs() < 1e-5);
    assert!((m[1][1] - 1.0).abs() < 1e-4 && (m[1][2] - m[2][1]).abs() < 1e-6);

    // /search: a sentence of the index finds itself first.
    let text = "라면이 한국에 처음 도입된 것은 1963년 9월 15일이다.[2]";
    let (status, found) = post(addr, "/search", format!(r#"{{"query": "{text}", "k": 3}}"#));
    assert_eq!(status, 200);
    assert_eq!(found["hits"][0]["text"], text);
    assert_eq!(found["hits"].as_array().unwrap().len(), 3);

    // Bad input: 4xx with a JSON error that says what is wrong; the server keeps serving.
    let long = format!(r#"{{"inputs": "{}"}}"#, "가".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "/embed",
            br#"{"inputs": []}"#.to_vec(),
            422,
            "inputs is empty",
        ),
        (
            "/embed",
            br#"{"inputs": [""]}"#.to_vec(),
            422,
            "text 0 is empty",
        ),
        (
            "/embed",
            br#"{"inputs": ["ok", "   "]}"#.to_vec(),
            422,
            "text 1 is empty",
        ),
        ("/embed", long.into_bytes(), 413, "100000 characters"),
        ("/embed", br#"{"inputs": "#.to_vec(), 400, "not JSON"),
        ("/embed", br#"{"inputs": 5}"#.to_vec(), 422, "expected"),
        (
            "/embed",
            br#"{"inputs": ["a", 5]}"#.to_vec(),
            422,
            "expected",
        ),
        ("/embed", br#"{"text": "a"}"#.to_vec(), 422, "expected"),
        (
            "/embed",
            b"{\"inputs\": \"\xff\xfe\"}".to_vec(),
            400,
            "not UTF-8",
        ),
        ("/embed", vec![b'['; 500_000], 413, "length limit"),
        (
            "/embed",
            format!(r#"{{"inputs": {:?}}}"#, vec!["a"; 65]).into_bytes(),
            413,
            "65 texts",
        ),
        (
            "/similarity",
            br#"{"sentences": "a"}"#.to_vec(),
            422,
            "expected",
        ),
        (
            "/similarity",
            br#"{"inputs": {"source_sentence": "a", "sentences": []}}"#.to_vec(),
            422,
            "sentences is empty",
        ),
        (
            "/search",
            br#"{"query": "a", "k": 0}"#.to_vec(),
            422,
            "k must be",
        ),
        (
            "/search",
            br#"{"query": "a", "k": 1000}"#.to_vec(),
            422,
            "k must be",
        ),
        ("/search", br#"{"query": 3}"#.to_vec(), 422, "expected"),
        ("/nowhere", b"{}".to_vec(), 404, "no such route"),
    ];
    for (path, body, want, says) in cases {
        let (status, err) = post(addr, path, &body);
        let message = err["error"].as_str().unwrap_or_default();
        assert_eq!(
            status,
            want,
            "{path} {}: {err}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert!(
            message.contains(says),
            "{path}: {message:?} should say {says:?}"
        );
    }
    let health: serde_json::Value = serde_json::from_str(
        &agent()
            .get(format!("http://{addr}/health"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (health["status"].as_str(), health["dim"].as_u64()),
        (Some("ok"), Some(384))
    );
}

/// Without an index /search says how to get one.
#[test]
fn search_without_an_index_is_503_with_the_fix() {
    let (addr, _) = start(None, Limits::default());
    let (status, err) = post(addr, "/search", r#"{"query": "a"}"#);
    assert_eq!(status, 503);
    assert!(err["error"].as_str().unwrap().contains("--index"), "{err}");
}

/// Concurrent clients share forward passes, and each gets its own rows back.
#[test]
fn concurrent_requests_are_batched_and_each_gets_its_own_answer() {
    let (addr, state) = start(None, Limits::default());
    let clients = 8;
    let per_client = 6;
    std::thread::scope(|s| {
        for c in 0..clients {
            s.spawn(move || {
                for i in 0..per_client {
                    let a = format!("{c}번 손님의 {i}번째 문장입니다.");
                    let b = format!("다른 문장 {i}");
                    let body = serde_json::json!({ "sentences": [a, b, a] }).to_string();
                    let (status, m) = post(addr, "/similarity", body);
                    assert_eq!(status, 200);
                    // Rows 0 and 2 are the same sentence: any mix-up between requests shows here.
                    assert!(
                        (m["matrix"][0][2].as_f64().unwrap() - 1.0).abs() < 1e-4,
                        "{m}"
                    );
                }
            });
        }
    });
    let stats = &state.batcher.stats;
    let requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(requests, (clients * per_client) as u64);
    assert!(
        batches < requests,
        "{batches} batches for {requests} requests: nothing was batched"
    );
}

/// The page in a real browser: the pair's score, the heatmap and the search hits appear.
#[test]
fn the_web_page_works_in_headless_chromium() {
    let Some(chromium) = simcse_testkit::chromium("the_web_page_works_in_headless_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (addr, _) = start(Some(&index(dir.path())), Limits::default());
    let url = format!(
        "http://{addr}/?run=1&a={}&b={}&many={}&q={}",
        enc("고양이가 소파에서 잔다."),
        enc("소파 위에서 고양이가 자고 있다."),
        enc("한 남자가 기타를 친다.|남자가 악기를 연주한다.|여자가 요리를 한다."),
        enc("라면은 언제 한국에 들어왔나?"),
    );
    let browse = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=30000",
                "--window-size=1100,1700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap_or_else(|e| panic!("{chromium}: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = browse(&["--dump-dom"]);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish:\n{dom}"
    );
    let score = between(&dom, "id=\"pair-score\">", "<");
    let score: f32 = score
        .parse()
        .unwrap_or_else(|_| panic!("no score in the page: {score:?}\n{dom}"));
    assert!(score > 0.0 && score <= 1.0, "{score}");
    let cells = dom.matches("<td ").count();
    assert_eq!(cells, 9, "a 3x3 heatmap:\n{dom}");
    let hits = between(&dom, "id=\"hits\">", "</ol>");
    assert_eq!(hits.matches("<li").count(), 10, "{hits}");
    assert!(
        dom.contains("문장 · sentences (exact)"),
        "index line missing:\n{dom}"
    );
    assert!(dom.contains("두 문장 비교") && dom.contains("Two sentences"));
    // A screenshot to look at: in the test's temp folder, or where SIMCSE_SCREENSHOT says.
    let shot = std::env::var("SIMCSE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("page.png"));
    browse(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let Some(i) = s.find(start) else { return "" };
    let rest = &s[i + start.len()..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Mutated request bodies (truncated, bit-flipped, broken UTF-8, huge numbers...) on every route:
/// each answer is JSON, never a 5xx, and the server still answers afterwards.
#[test]
fn fuzzed_bodies_get_json_answers_and_never_a_server_error() {
    let (addr, _) = start(None, Limits::default());
    let seeds: Vec<Vec<u8>> = [
        r#"{"inputs": ["한 남자가 기타를 친다.", "여자가 노래한다."], "normalize": true}"#,
        r#"{"inputs": "고양이가 잔다."}"#,
        r#"{"inputs": {"source_sentence": "고양이", "sentences": ["개", "고양이가 잔다."]}}"#,
        r#"{"sentences": ["하나", "둘", "셋"]}"#,
        r#"{"query": "라면", "k": 10}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for path in ["/embed", "/similarity", "/search"] {
        simcse_testkit::fuzz(
            &format!("serve{}", path.replace('/', "-")),
            &seeds,
            |body| {
                let (status, answer) = post(addr, path, body);
                assert!(status < 500 || status == 503, "{path}: {status} {answer}");
                assert!(status == 200 || answer["error"].is_string(), "{answer}");
            },
        );
    }
    let (status, _) = post(addr, "/embed", r#"{"inputs": "아직 살아 있다."}"#);
    assert_eq!(status, 200);
}
