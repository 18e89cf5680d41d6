//! The downloader against a local HTTP server on 127.0.0.1 (no other address, no internet).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use simcse_artifact::sha256_hex;
use simcse_data::DataError;
use simcse_data::download::{Fetched, fetch};

/// A one-file HTTP/1.1 server that honours `Range: bytes=N-` (unless `ignore_range`), and records
/// the Range header of every request it served.
struct Server {
    url: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

fn serve(body: Vec<u8>, ignore_range: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/data.bin", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            seen.lock().unwrap().push(range.clone());
            let start = range
                .filter(|_| !ignore_range)
                .and_then(|r| r.parse::<usize>().ok());
            let (status, part) = match start {
                Some(s) if s >= body.len() => ("416 Range Not Satisfiable", &body[0..0]),
                Some(s) => ("206 Partial Content", &body[s..]),
                None => ("200 OK", &body[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(part);
        }
    });
    Server { url, ranges }
}

/// 12 MB: larger than ureq's in-memory default limit of 10 MB, so streaming is exercised.
fn payload() -> Vec<u8> {
    (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn fresh_download_then_already_present() {
    let body = payload();
    let server = serve(body.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/data.bin");
    let sha = sha256_hex(&body);
    assert_eq!(
        fetch(&server.url, &dest, &sha).unwrap(),
        Fetched::Downloaded { resumed_from: 0 }
    );
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(
        fetch(&server.url, &dest, &sha).unwrap(),
        Fetched::AlreadyPresent
    );
    assert_eq!(
        server.ranges.lock().unwrap().len(),
        1,
        "a verified file is not fetched again"
    );
}

#[test]
fn partial_download_is_resumed_with_a_range_request() {
    let body = payload();
    let server = serve(body.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    std::fs::write(dir.path().join("data.bin.part"), &body[..5_000_000]).unwrap();
    let got = fetch(&server.url, &dest, &sha256_hex(&body)).unwrap();
    assert_eq!(
        got,
        Fetched::Downloaded {
            resumed_from: 5_000_000
        }
    );
    assert_eq!(
        *server.ranges.lock().unwrap(),
        vec![Some("5000000".to_string())]
    );
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!dir.path().join("data.bin.part").exists());
}

#[test]
fn server_without_range_support_restarts_from_zero() {
    let body = payload();
    let server = serve(body.clone(), true);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    std::fs::write(dir.path().join("data.bin.part"), &body[..1_000]).unwrap();
    assert_eq!(
        fetch(&server.url, &dest, &sha256_hex(&body)).unwrap(),
        Fetched::Downloaded { resumed_from: 0 }
    );
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[test]
fn checksum_mismatch_is_an_error_and_leaves_no_file() {
    let body = payload();
    let server = serve(body.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    let wrong = "0".repeat(64);
    let err = fetch(&server.url, &dest, &wrong).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Checksum { .. }), "{msg}");
    assert!(
        msg.contains("data.bin: SHA-256 mismatch") && msg.contains(&sha256_hex(&body)),
        "{msg}"
    );
    assert!(
        !dest.exists() && !dir.path().join("data.bin.part").exists(),
        "bad file left in place"
    );
}

#[test]
fn http_errors_name_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/missing.tsv", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            while r.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let msg = fetch(&url, &dir.path().join("x"), &"0".repeat(64))
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&url) && msg.contains("404"), "{msg}");
}
