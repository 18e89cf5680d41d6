//! A user's own corpus through the corpus stage: every input format and compression gives the same
//! sentences; every kind of bad row is counted under its reason with its place; strict mode fails
//! and writes nothing. And a user's own STS file through `sts::import`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use simcse_artifact::read_sentences;
use simcse_data::split::Splitter;
use simcse_data::sts::{ImportOptions, import};
use simcse_data::table::TableFormat;
use simcse_data::wiki::{self, Filters, Input, Options, Summary};
use simcse_testkit::{bzip2, gzip};

/// Three documents; the second ends its sentences without punctuation, the third holds wiki-like
/// brackets that the Wikipedia stage would drop as markup.
const DOCS: [&str; 3] = [
    "배송이 정말 빨랐어요. 포장도 꼼꼼했습니다.",
    "생각보다 별로였다 가격 대비 품질이 아쉽다 ㅠㅠ",
    "제목은 [[내 방]]이라고 붙였다. 다음 글도 기대해 주세요!",
];

const EXPECTED: [&str; 6] = [
    "배송이 정말 빨랐어요.",
    "포장도 꼼꼼했습니다.",
    "생각보다 별로였다",
    "가격 대비 품질이 아쉽다 ㅠㅠ",
    "제목은 [[내 방]]이라고 붙였다.",
    "다음 글도 기대해 주세요!",
];

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn options(paths: Vec<PathBuf>, out: &Path, field: &str) -> Options {
    Options {
        input: Input::Corpus {
            paths,
            format: TableFormat::Auto,
            field: field.into(),
        },
        out: out.join("sentences.parquet"),
        threads: 2,
        filters: Filters {
            min_chars: 5,
            markup: false,
            ..Filters::default()
        },
        splitter: Splitter::General,
        sample: None,
        seed: 1,
        strict: false,
    }
}

fn run(opts: &Options) -> (Summary, Vec<(String, String)>) {
    let summary = wiki::run(opts).unwrap();
    let rows = read_sentences(&opts.out).unwrap();
    (
        summary,
        rows.into_iter().map(|s| (s.doc_id, s.text)).collect(),
    )
}

fn jsonl() -> String {
    DOCS.iter()
        .enumerate()
        .map(|(i, d)| format!("{{\"id\": {i}, \"text\": {}}}\n", serde_json::json!(d)))
        .collect()
}

fn csv(delimiter: char) -> String {
    let mut s = format!("id{delimiter}text\n");
    for (i, d) in DOCS.iter().enumerate() {
        s += &format!("{i}{delimiter}\"{d}\"\n");
    }
    s
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// A Parquet file with one string column, `text`.
fn parquet(path: &Path, texts: Vec<Option<&str>>) {
    let column: ArrayRef = Arc::new(StringArray::from(texts));
    write_parquet(
        path,
        &RecordBatch::try_from_iter([("text", column)]).unwrap(),
    );
}

#[test]
fn every_format_and_compression_gives_the_same_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = DOCS.join("\n") + "\n";
    let pq = d.join("docs.parquet");
    parquet(&pq, DOCS.iter().map(|s| Some(*s)).collect());
    let inputs = [
        (write(d, "docs.txt", text.as_bytes()), [1, 2, 3]),
        (write(d, "docs.jsonl", jsonl().as_bytes()), [1, 2, 3]),
        (write(d, "docs.csv", csv(',').as_bytes()), [2, 3, 4]),
        (write(d, "docs.tsv", csv('\t').as_bytes()), [2, 3, 4]),
        (pq, [0, 1, 2]),
        (write(d, "docs.txt.gz", &gzip(text.as_bytes())), [1, 2, 3]),
        (
            write(
                d,
                "docs.jsonl.zst",
                &zstd::encode_all(jsonl().as_bytes(), 3).unwrap(),
            ),
            [1, 2, 3],
        ),
        (
            write(d, "docs.csv.bz2", &bzip2(csv(',').as_bytes())),
            [2, 3, 4],
        ),
    ];
    for (path, lines) in inputs {
        let out = tempfile::tempdir().unwrap();
        let (summary, rows) = run(&options(vec![path.clone()], out.path(), "text"));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, EXPECTED, "{name}");
        let ids: Vec<String> = [0, 0, 1, 1, 2, 2]
            .iter()
            .map(|&k| format!("{name}:{}", lines[k]))
            .collect();
        let got: Vec<&String> = rows.iter().map(|(id, _)| id).collect();
        assert_eq!(got, ids.iter().collect::<Vec<_>>(), "{name}");
        assert!(
            summary.bad_rows.is_empty(),
            "{name}: {:?}",
            summary.bad_rows
        );
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(simcse_artifact::manifest_path(
                &out.path().join("sentences.parquet"),
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest["sources"][0]["sha256"].as_str().unwrap().len(),
            64,
            "{name}"
        );
    }
}

#[test]
fn every_bad_row_is_counted_under_its_reason_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut jsonl = b"{\"text\": \"\xec\xa2\x8b\xec\x9d\x80 \xec\xa0\x9c\xed\x92\x88\xec\x9e\x85\xeb\x8b\x88\xeb\x8b\xa4.\"}\n".to_vec();
    jsonl.extend_from_slice(b"{not json\n");
    jsonl.extend_from_slice(b"{\"body\": \"no text key\"}\n");
    jsonl.extend_from_slice(b"{\"text\": \"bad \xff utf8\"}\n");
    jsonl.extend_from_slice(b"\x00\x01\x02\x03 binary\n");
    jsonl.extend_from_slice(b"[1, 2]\n");
    let long = format!("{}\n", "가".repeat(simcse_data::table::MAX_LINE_BYTES));
    let text = format!("짧은 문장 하나입니다.\n{long}마지막 줄입니다.\n");
    let csv = "id,text\n1,\"첫 글입니다.\"\n2\n3,\"세 번째 글입니다.\"\n";
    let pq = d.join("c.parquet");
    parquet(&pq, vec![Some("파케이 첫 줄입니다."), None]);
    let paths = vec![
        write(d, "a.jsonl", &jsonl),
        write(d, "b.txt", text.as_bytes()),
        write(d, "c.csv", csv.as_bytes()),
        pq,
    ];
    let out = tempfile::tempdir().unwrap();
    let opts = options(paths.clone(), out.path(), "text");
    let (summary, rows) = run(&opts);
    let expected: [(&str, usize, &[&str]); 6] = [
        (
            "malformed_json",
            2,
            &["a.jsonl: line 2:", "a.jsonl: line 6: not a JSON object"],
        ),
        (
            "missing_field",
            2,
            &[
                "a.jsonl: line 3: no string or number under key \"text\"",
                "c.parquet: row 1: column \"text\" is null",
            ],
        ),
        ("invalid_utf8", 1, &["a.jsonl: line 4: invalid UTF-8"]),
        ("binary", 1, &["a.jsonl: line 5: control byte 0x00"]),
        ("too_long", 1, &["b.txt: line 2: longer than 1048576 bytes"]),
        ("field_count", 1, &["c.csv: line 3: 1 fields"]),
    ];
    for (reason, n, places) in expected {
        assert_eq!(
            summary.bad_rows.get(reason),
            Some(&n),
            "{reason}: {:?}",
            summary.bad_rows
        );
        for (example, place) in summary.bad_row_examples[reason].iter().zip(places) {
            assert!(
                example.contains(place),
                "{reason}: {example:?} lacks {place:?}"
            );
        }
    }
    assert_eq!(summary.bad_rows.values().sum::<usize>(), 8);
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "좋은 제품입니다.",
            "짧은 문장 하나입니다.",
            "마지막 줄입니다.",
            "첫 글입니다.",
            "세 번째 글입니다.",
            "파케이 첫 줄입니다."
        ]
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(simcse_artifact::manifest_path(&opts.out)).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["counts"]["bad_rows_missing_field"], 2);
    assert_eq!(manifest["sources"].as_array().unwrap().len(), 4);
    let first = &manifest["options"]["bad_row_examples"]["binary"][0];
    assert!(
        first.as_str().unwrap().contains("a.jsonl: line 5"),
        "{first}"
    );

    // Strict: the first bad row is the error, naming its file and line; nothing is written.
    let strict_out = tempfile::tempdir().unwrap();
    let strict = Options {
        strict: true,
        ..options(paths, strict_out.path(), "text")
    };
    let err = wiki::run(&strict).unwrap_err().to_string();
    assert!(
        err.contains("a.jsonl: line 2") && err.contains("strict"),
        "{err}"
    );
    assert!(!strict.out.exists());
}

#[test]
fn a_missing_column_or_field_is_an_error_naming_the_file_and_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "posts.csv", b"id,body\n1,hello\n");
    let out = tempfile::tempdir().unwrap();
    let err = wiki::run(&options(vec![csv], out.path(), "text"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("posts.csv") && err.contains("no column \"text\"") && err.contains("\"body\""),
        "{err}"
    );
}

#[test]
fn damaged_compressed_input_keeps_what_came_before_or_fails_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..2000)
        .map(|i| format!("{i}번째 문장은 여기에서 끝납니다.\n"))
        .collect();
    let gz = gzip(text.as_bytes());
    let path = write(dir.path(), "cut.txt.gz", &gz[..gz.len() / 2]);
    let out = tempfile::tempdir().unwrap();
    let opts = options(vec![path.clone()], out.path(), "text");
    let (summary, rows) = run(&opts);
    assert!(summary.damage.is_some());
    assert!(!rows.is_empty() && rows.len() < 2000, "{}", rows.len());
    let strict = Options {
        strict: true,
        ..options(vec![path], out.path(), "text")
    };
    assert!(
        wiki::run(&strict)
            .unwrap_err()
            .to_string()
            .contains("cut.txt.gz")
    );
}

fn sts_options(path: &Path, out: &Path) -> ImportOptions {
    ImportOptions {
        path: path.to_path_buf(),
        format: TableFormat::Auto,
        columns: ["a", "b", "label"].map(String::from),
        range: None,
        name: "mine".into(),
        out: out.join("mine.parquet"),
        strict: false,
    }
}

#[test]
fn an_sts_file_on_any_scale_is_imported_in_every_format_with_bad_rows_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tsv = "a\tb\tlabel\n고양이가 잔다\t고양이가 자고 있다\t10\n개가 짖는다\t차가 달린다\t0\n\t빈 문장\t3\n숫자가 아님\t점수\tabc\n비가 온다\t비가 내린다\t7.5\n";
    let csv = "label,a,b\n10,고양이가 잔다,고양이가 자고 있다\n0,개가 짖는다,차가 달린다\n3,,빈 문장\nabc,숫자가 아님,점수\n7.5,비가 온다,비가 내린다\n";
    let jsonl = r#"{"a": "고양이가 잔다", "b": "고양이가 자고 있다", "label": 10}
{"a": "개가 짖는다", "b": "차가 달린다", "label": "0"}
{"a": "", "b": "빈 문장", "label": 3}
{"a": "숫자가 아님", "b": "점수", "label": "abc"}
{"a": "비가 온다", "b": "비가 내린다", "label": 7.5}
"#;
    let pq = d.join("s.parquet");
    let col = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        (
            "a",
            col(vec![
                "고양이가 잔다",
                "개가 짖는다",
                "",
                "숫자가 아님",
                "비가 온다",
            ]),
        ),
        (
            "b",
            col(vec![
                "고양이가 자고 있다",
                "차가 달린다",
                "빈 문장",
                "점수",
                "비가 내린다",
            ]),
        ),
        (
            "label",
            Arc::new(Float64Array::from(vec![10.0, 0.0, 3.0, f64::NAN, 7.5])) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&pq, &batch);
    for path in [
        write(d, "s.tsv", tsv.as_bytes()),
        write(d, "s.csv", csv.as_bytes()),
        write(d, "s.jsonl", jsonl.as_bytes()),
        pq,
    ] {
        let out = tempfile::tempdir().unwrap();
        let opts = sts_options(&path, out.path());
        let imported = import(&opts).unwrap();
        assert_eq!(imported.pairs, 3, "{}", path.display());
        assert_eq!(imported.range, (0.0, 10.0));
        let skipped: Vec<(&str, usize)> = imported
            .log
            .skipped
            .iter()
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        assert_eq!(
            skipped,
            [("empty_sentence", 1), ("bad_score", 1)],
            "{}",
            path.display()
        );
        let pairs = simcse_artifact::read_sts(&opts.out).unwrap();
        let scores: Vec<f32> = pairs.iter().map(|p| p.score).collect();
        assert_eq!(scores, [5.0, 0.0, 3.75]);
        assert_eq!(pairs[0].sentence2, "고양이가 자고 있다");
        assert!(pairs.iter().all(|p| p.source == "mine"));
        let manifest = std::fs::read_to_string(simcse_artifact::manifest_path(&opts.out)).unwrap();
        assert!(manifest.contains("\"score_range\"") && manifest.contains("skipped_bad_score"));
    }
    // A fixed scale: rows outside it are counted, not rescaled.
    let out = tempfile::tempdir().unwrap();
    let path = write(d, "s2.tsv", tsv.as_bytes());
    let opts = ImportOptions {
        range: Some((0.0, 8.0)),
        ..sts_options(&path, out.path())
    };
    let imported = import(&opts).unwrap();
    assert_eq!(imported.pairs, 2);
    assert_eq!(imported.log.skipped.len(), 3);
}

#[test]
fn an_sts_file_without_usable_rows_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for (name, body, message) in [
        ("empty.tsv", "a\tb\tlabel\n", "0 usable rows"),
        ("one.tsv", "a\tb\tlabel\n가\t나\t1\n\t\t\n", "1 usable rows"),
        (
            "flat.tsv",
            "a\tb\tlabel\n가\t나\t1\n다\t라\t1\n",
            "range 1..1 is empty",
        ),
        ("cols.tsv", "x\ty\tz\n가\t나\t1\n", "no column \"a\""),
    ] {
        let path = write(dir.path(), name, body.as_bytes());
        let err = import(&sts_options(&path, out.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains(message), "{err}");
    }
}

/// A corrupt Parquet file on which the parquet crate panics (found by fuzzing) is an error naming
/// it, in the corpus stage, the STS import and the artifact readers.
#[test]
fn a_parquet_file_that_once_panicked_is_an_error() {
    let fixture = simcse_testkit::repo()
        .join("crates/simcse-data/tests/fixtures/fuzz/parquet-negative-offset.parquet");
    let out = tempfile::tempdir().unwrap();
    let opts = Options {
        strict: true,
        ..options(vec![fixture.clone()], out.path(), "sentence1")
    };
    let err = wiki::run(&opts).unwrap_err().to_string();
    assert!(err.contains("parquet-negative-offset.parquet"), "{err}");
    let mut sts = sts_options(&fixture, out.path());
    sts.columns = ["sentence1", "sentence2", "score"].map(String::from);
    let err = import(&sts).unwrap_err().to_string();
    assert!(err.contains("parquet-negative-offset.parquet"), "{err}");
    let err = simcse_artifact::read_sts(&fixture).unwrap_err().to_string();
    assert!(err.contains("parquet-negative-offset.parquet"), "{err}");
}
