//! Every reader of outside bytes in the data stage, fed mutated copies of real inputs
//! (`simcse_testkit::fuzz`): an error is fine, a panic is a failure. `SIMCSE_FUZZ_CASES` sets the
//! cases per reader (docs/reliability.md has the longer run).

use std::path::{Path, PathBuf};

use simcse_data::split::Splitter;
use simcse_data::wiki::{self, Filters, Format, Input, Options};
use simcse_data::{kornli, split, sts};
use simcse_testkit::{fuzz, shared_data};

/// The first `lines` lines of a public data file.
fn head(path: &Path, lines: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: String = text.lines().take(lines).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

/// Writes `bytes` to `dir/name` and returns the path (each case overwrites the last).
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn tsv_and_json_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let nlu = shared_data().join("kor-nlu");
    let korsts = vec![head(&nlu.join("sts-dev.tsv"), 30)];
    fuzz("korsts-tsv", &korsts, |b| {
        for strict in [false, true] {
            let _ = sts::read_korsts(&file(dir.path(), "sts.tsv", b), strict);
        }
    });
    let xnli = vec![head(&nlu.join("xnli.dev.ko.tsv"), 30)];
    fuzz("kornli-tsv", &xnli, |b| {
        let _ = kornli::read(&file(dir.path(), "nli.tsv", b), false)
            .map(|(rows, ..)| kornli::triples(&rows, kornli::TripleRule::PerEntailment));
        let _ = kornli::read(&file(dir.path(), "nli.tsv", b), true);
    });
    let klue: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_data().join("klue-sts/klue-sts-v1.1_dev.json")).unwrap(),
    )
    .unwrap();
    let few = serde_json::Value::Array(klue.as_array().unwrap()[..4].to_vec());
    let klue = vec![serde_json::to_vec_pretty(&few).unwrap()];
    fuzz("klue-json", &klue, |b| {
        for strict in [false, true] {
            let _ = sts::read_klue(&file(dir.path(), "klue.json", b), strict);
        }
    });
}

/// The splitter loses no text: its sentences hold every non-space character of the input, in order.
#[test]
fn markup_cleaner_and_splitter_never_panic_or_lose_text() {
    let xml = std::fs::read_to_string(repo_fixture()).unwrap();
    let wiki_text = vec![xml.clone().into_bytes(), head(&kowiki(), 40)];
    fuzz("wikitext-and-splitter", &wiki_text, |b| {
        let text = String::from_utf8_lossy(b);
        let _ = wiki::markup::paragraphs(&text);
        let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        for splitter in [Splitter::Wiki, Splitter::General] {
            let kept: String = split::sentences_with(&text, splitter).concat();
            assert_eq!(
                squeeze(&kept),
                squeeze(&text),
                "the {splitter:?} splitter lost text"
            );
        }
    });
}

fn repo_fixture() -> PathBuf {
    simcse_testkit::repo().join("crates/simcse-data/tests/fixtures/wiki/kowiki-mini.xml")
}

fn kowiki() -> PathBuf {
    shared_data().join("kowiki-sample/kss_bench_wikipedia.txt")
}

/// The XML dump reader, plain and through both bz2 paths (one stream; multistream, read in
/// parallel), on truncated and bit-flipped dumps, in the lenient and the strict mode.
#[test]
fn dump_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read(repo_fixture()).unwrap();
    let text = std::fs::read_to_string(repo_fixture()).unwrap();
    let cut = text.find("<page>").unwrap();
    let multi: Vec<u8> = [
        simcse_testkit::bzip2(&xml[..cut]),
        simcse_testkit::bzip2(&xml[cut..]),
    ]
    .concat();
    for (name, seed, file_name, threads) in [
        ("wiki-xml", xml.clone(), "dump.xml", 1),
        ("wiki-bz2", simcse_testkit::bzip2(&xml), "dump.xml.bz2", 1),
        ("wiki-bz2-multistream", multi, "dump.xml.bz2", 2),
    ] {
        fuzz(name, &[seed], |b| {
            for strict in [false, true] {
                let opts = Options {
                    input: Input::Wiki {
                        path: file(dir.path(), file_name, b),
                        format: Format::Auto,
                    },
                    out: dir.path().join("out.parquet"),
                    threads,
                    filters: Filters::default(),
                    splitter: Splitter::Wiki,
                    sample: None,
                    seed: 1,
                    strict,
                };
                let _ = wiki::run(&opts);
            }
        });
    }
}

/// Our own Parquet artifacts, truncated and corrupted, through every typed reader.
#[test]
fn artifact_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = simcse_testkit::prepared();
    let sts_pairs =
        simcse_artifact::read_sts(&prepared.path().join("sts/korsts_dev.parquet")).unwrap();
    simcse_artifact::write_sts(&dir.path().join("s.parquet"), &sts_pairs[..20]).unwrap();
    let triples =
        simcse_artifact::read_triples(&prepared.path().join("kornli_triples.parquet")).unwrap();
    let refs: Vec<_> = triples[..20]
        .iter()
        .map(|(t, s)| (t.clone(), s.as_str()))
        .collect();
    simcse_artifact::write_triples(&dir.path().join("t.parquet"), &refs).unwrap();
    let seeds = vec![
        std::fs::read(dir.path().join("s.parquet")).unwrap(),
        std::fs::read(dir.path().join("t.parquet")).unwrap(),
    ];
    fuzz("parquet-artifacts", &seeds, |b| {
        let p = file(dir.path(), "x.parquet", b);
        let _ = simcse_artifact::read_sts(&p);
        let _ = simcse_artifact::read_triples(&p);
        let _ = simcse_artifact::read_sentences(&p);
        let _ = simcse_artifact::read_sentence_texts(&p);
    });
}

/// The fuzzer itself reports a panicking reader (and saves the input).
#[test]
#[should_panic(expected = "panics on")]
fn the_fuzzer_catches_a_panic() {
    fuzz("self-check", &[b"three".to_vec()], |b| {
        assert_eq!(b.len(), 5)
    });
}

/// A user's corpus and STS files in every table format, plain and compressed, truncated and
/// corrupted, through the corpus stage and the STS import, lenient and strict.
#[test]
fn user_table_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = simcse_testkit::prepared();
    let pairs = simcse_artifact::read_sts(&prepared.path().join("sts/korsts_dev.parquet")).unwrap();
    let pq = dir.path().join("seed.parquet");
    simcse_artifact::write_sts(&pq, &pairs[..20]).unwrap();
    let mut jsonl = String::new();
    let mut csv = String::from("sentence1,sentence2,score\n");
    for p in &pairs[..20] {
        let row = serde_json::json!({"sentence1": p.sentence1, "sentence2": p.sentence2, "score": p.score});
        jsonl += &format!("{row}\n");
        csv += &format!("\"{}\",\"{}\",{}\n", p.sentence1, p.sentence2, p.score);
    }
    for (name, seed) in [
        ("t.jsonl", jsonl.clone().into_bytes()),
        ("t.csv", csv.clone().into_bytes()),
        ("t.tsv", csv.replace(',', "\t").into_bytes()),
        ("t.parquet", std::fs::read(&pq).unwrap()),
        ("t.jsonl.gz", simcse_testkit::gzip(jsonl.as_bytes())),
        ("t.csv.zst", zstd::encode_all(csv.as_bytes(), 1).unwrap()),
        ("t.txt.bz2", simcse_testkit::bzip2(jsonl.as_bytes())),
    ] {
        fuzz(&format!("table-{name}"), &[seed], |b| {
            let path = file(dir.path(), name, b);
            for strict in [false, true] {
                let opts = Options {
                    input: Input::Corpus {
                        paths: vec![path.clone()],
                        format: simcse_data::table::TableFormat::Auto,
                        field: "sentence1".into(),
                    },
                    out: dir.path().join("out.parquet"),
                    threads: 2,
                    filters: Filters::default(),
                    splitter: Splitter::General,
                    sample: None,
                    seed: 1,
                    strict,
                };
                let _ = wiki::run(&opts);
                let _ = sts::import(&sts::ImportOptions {
                    path: path.clone(),
                    format: simcse_data::table::TableFormat::Auto,
                    columns: ["sentence1", "sentence2", "score"].map(String::from),
                    range: None,
                    name: "x".into(),
                    out: dir.path().join("sts.parquet"),
                    strict,
                });
            }
        });
    }
}
