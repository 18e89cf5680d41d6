//! Wikipedia stage throughput: `cargo bench -p simcse-data --bench wiki`.
//!
//! Generates a synthetic multistream dump (default 300 MB of XML, `SIMCSE_WIKI_BENCH_MB` to change)
//! from the test fixture's two articles, numbered so that most sentences stay unique, then runs the
//! stage on it with 1 and 2 worker threads, each in a child process so that its peak memory (VmHWM)
//! is its own. Also times the splitter alone on the kss gold text. Prints MB/s (compressed and XML),
//! pages/s, sentences/s and peak memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bzip2::Compression;
use bzip2::write::BzEncoder;
use rayon::prelude::*;
use simcse_data::split::Splitter;
use simcse_data::wiki::{self, Filters, Format, Input, Options};

const CHILD: &str = "SIMCSE_WIKI_BENCH_CHILD";

fn fixture_pages() -> Vec<String> {
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wiki/kowiki-mini.xml"),
    )
    .expect("fixture dump");
    xml.match_indices("<page>")
        .map(|(i, _)| {
            let end = i + xml[i..].find("</page>").expect("page end") + "</page>".len();
            xml[i..end].to_string()
        })
        .collect()
}

/// Page `n` of the synthetic dump: a fixture page with its id, title and numbers made unique.
fn page(template: &str, n: usize) -> String {
    template
        .replace("<id>101</id>", &format!("<id>{n}</id>"))
        .replace("<id>106</id>", &format!("<id>{n}</id>"))
        .replace("마을", &format!("마을{n}"))
        .replace("차나무", &format!("{n}번 차나무"))
        .replace("1932년", &format!("{}년", 1000 + n % 1000))
        .replace("3.14%", &format!("{}.{}%", n % 97, n % 89))
        .replace("Dr. Kim", &format!("Dr. Kim{n}"))
        .replace("어떤 차가", &format!("{n}번째 차 가운데 어떤 차가"))
}

fn generate(path: &Path, mb: usize) -> std::io::Result<(u64, u64)> {
    let pages = fixture_pages();
    let header =
        "<mediawiki xml:lang=\"ko\">\n<siteinfo><sitename>위키백과</sitename></siteinfo>\n";
    let target = mb << 20;
    let mut streams: Vec<String> = vec![header.to_string()];
    let mut xml_bytes = header.len();
    let mut n = 0;
    while xml_bytes < target {
        // 100 pages a stream, as in Wikipedia's multistream dumps.
        let mut s = String::new();
        for _ in 0..100 {
            s += &page(&pages[n % pages.len()], n + 1000);
            s.push('\n');
            n += 1;
        }
        xml_bytes += s.len();
        streams.push(s);
    }
    streams.push("</mediawiki>\n".into());
    let compressed: Vec<Vec<u8>> = streams
        .par_iter()
        .map(|s| {
            let mut e = BzEncoder::new(Vec::new(), Compression::best());
            e.write_all(s.as_bytes()).expect("in-memory write");
            e.finish().expect("in-memory write")
        })
        .collect();
    let mut f = std::fs::File::create(path)?;
    for c in &compressed {
        f.write_all(c)?;
    }
    Ok((xml_bytes as u64, std::fs::metadata(path)?.len()))
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One measured run, in this (child) process.
fn child(input: PathBuf, threads: usize, xml_bytes: f64) {
    let out = tempfile::tempdir().expect("temp dir");
    let opts = Options {
        input: Input::Wiki {
            path: input,
            format: Format::Auto,
        },
        out: out.path().join("wiki_sentences.parquet"),
        threads,
        filters: Filters::default(),
        splitter: Splitter::Wiki,
        sample: None,
        seed: 42,
        strict: false,
    };
    let t = Instant::now();
    let s = wiki::run(&opts).expect("wiki stage");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "threads {threads}: {:.1} s, {:.1} MB/s bz2, {:.1} MB/s XML, {:.0} pages/s, {:.0} sentences/s split ({} written, {} duplicates), peak RSS {:.0} MB",
        secs,
        s.input_bytes as f64 / 1e6 / secs,
        xml_bytes / 1e6 / secs,
        s.pages_seen as f64 / secs,
        s.sentences_split as f64 / secs,
        s.sentences_written,
        s.sentences_dropped["duplicate"],
        peak_rss_mb()
    );
}

fn splitter_alone() {
    let gold = std::fs::read_to_string(
        simcse_testkit::shared_data().join("kowiki-sample/kss_bench_wikipedia.txt"),
    );
    let Ok(gold) = gold else {
        println!("splitter alone: ../shared/data/kowiki-sample not found, skipped");
        return;
    };
    // The gold text as it is, and without the final `.` of every sentence (the general splitter's
    // ending rules then do the work).
    let joined = |strip: bool| -> Vec<String> {
        gold.split("\n\n")
            .map(|p| {
                let lines = p.lines().map(str::trim);
                let lines: Vec<&str> = if strip {
                    lines.map(|l| l.trim_end_matches('.')).collect()
                } else {
                    lines.collect()
                };
                lines.join(" ")
            })
            .collect()
    };
    let reps = 200;
    for (text, paragraphs) in [
        ("kss gold text", joined(false)),
        ("gold without final '.'", joined(true)),
    ] {
        let bytes: usize = paragraphs.iter().map(String::len).sum();
        for splitter in [Splitter::Wiki, Splitter::General] {
            let t = Instant::now();
            let mut n = 0;
            for _ in 0..reps {
                for p in &paragraphs {
                    n += simcse_data::split::sentences_with(p, splitter).len();
                }
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "splitter {splitter:?}, one thread, {text} x{reps}: {n} sentences in {secs:.2} s: {:.0} sentences/s, {:.1} MB/s",
                n as f64 / secs,
                (bytes * reps) as f64 / 1e6 / secs
            );
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        let mut it = spec.splitn(3, ',');
        let threads = it.next().and_then(|t| t.parse().ok()).unwrap_or(1);
        let xml_bytes = it.next().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN);
        let input = PathBuf::from(it.next().unwrap_or_default());
        child(input, threads, xml_bytes);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    splitter_alone();
    let mb: usize = std::env::var("SIMCSE_WIKI_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dump = dir.join(format!("synthetic-kowiki-{mb}mb-multistream.xml.bz2"));
    let t = Instant::now();
    let (xml_bytes, bz2_bytes) = generate(&dump, mb).expect("writing the synthetic dump");
    println!(
        "synthetic dump: {:.0} MB XML, {:.1} MB bz2 multistream, made in {:.1} s: {}",
        xml_bytes as f64 / 1e6,
        bz2_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        dump.display()
    );
    let exe = std::env::current_exe().expect("own path");
    for threads in [1, 2] {
        let status = Command::new(&exe)
            .env(CHILD, format!("{threads},{xml_bytes},{}", dump.display()))
            .status()
            .expect("child run");
        assert!(status.success(), "bench child failed");
    }
    if std::env::var_os("SIMCSE_WIKI_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&dump);
    }
}
