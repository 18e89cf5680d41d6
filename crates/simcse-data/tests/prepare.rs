//! The prepare stage on the real public files in `../shared/data`, and on deliberately broken copies.

use std::path::Path;

use simcse_testkit::shared_data as shared;

use simcse_artifact::{manifest_path, read_sts, read_triples, sha256_hex};
use simcse_data::kornli::TripleRule;
use simcse_data::prepare::{Options, Summary, run};
use simcse_data::{DataError, Location, Reason};

fn opts(raw: &Path, out: &Path, triples: TripleRule) -> Options {
    Options {
        raw_dir: raw.into(),
        out_dir: out.into(),
        triples,
        require_all: false,
        strict: false,
    }
}

fn rows_of(summary: &Summary, file: &str) -> (usize, usize) {
    let f = summary
        .files
        .iter()
        .find(|f| f.file.ends_with(file))
        .unwrap_or_else(|| panic!("{file} not in summary"));
    (f.rows_read, f.written)
}

#[test]
fn shared_data_row_counts_triples_and_round_trip() {
    let out = tempfile::tempdir().unwrap();
    let summary = run(&opts(&shared(), out.path(), TripleRule::PerEntailment)).unwrap();
    assert_eq!(rows_of(&summary, "sts-train.tsv"), (5_749, 5_749));
    assert_eq!(rows_of(&summary, "sts-dev.tsv"), (1_500, 1_500));
    assert_eq!(rows_of(&summary, "sts-test.tsv"), (1_379, 1_379));
    assert_eq!(rows_of(&summary, "klue-sts-v1.1_dev.json"), (519, 519));
    // Every XNLI premise has one hypothesis per label: one triple per premise under either rule.
    assert_eq!(rows_of(&summary, "xnli.dev.ko.tsv"), (2_490, 830));
    assert_eq!(rows_of(&summary, "xnli.test.ko.tsv"), (5_010, 1_670));
    assert!(
        summary.files.iter().all(|f| f.skipped.is_empty()),
        "the public files have no bad rows"
    );
    // The large train files are not in the mirror: named as missing, not fatal.
    assert!(
        summary
            .missing
            .iter()
            .any(|m| m.ends_with("snli_1.0_train.ko.tsv"))
    );
    assert!(
        summary
            .missing
            .iter()
            .any(|m| m.ends_with("klue-sts-v1.1_train.json"))
    );

    // Parquet round trip: what the readers give back equals what was parsed.
    let dev = read_sts(&out.path().join("sts/korsts_dev.parquet")).unwrap();
    let (parsed, _, _) =
        simcse_data::sts::read_korsts(&shared().join("kor-nlu/sts-dev.tsv"), true).unwrap();
    assert_eq!(dev, parsed);
    assert_eq!(dev[0].sentence1, "안전모를 가진 한 남자가 춤을 추고 있다.");
    assert_eq!(
        (dev[0].score, dev[0].source.as_str()),
        (5.0, "main-captions")
    );
    let klue = read_sts(&out.path().join("sts/klue_sts_dev.parquet")).unwrap();
    let k0 = klue[0].klue.expect("KLUE columns");
    assert_eq!((klue[0].score, k0.binary_label), (4.9, true));
    assert!((k0.real_label - 4.857_143).abs() < 1e-5);
    let triples = read_triples(&out.path().join("kornli_triples.parquet")).unwrap();
    assert_eq!(triples.len(), 2_500);
    assert_eq!(triples.iter().filter(|(_, s)| s == "xnli_dev").count(), 830);
    assert_eq!(
        triples[0].0.anchor,
        "그리고 그가 말했다, \"엄마, 저 왔어요.\""
    );
    assert_eq!(triples[0].0.positive, "그는 엄마에게 집에 갔다고 말했다.");
    assert_eq!(triples[0].0.negative, "그는 한마디도 하지 않았다.");

    // Manifests: row count, source hash, options.
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(manifest_path(&out.path().join("kornli_triples.parquet"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["rows"], 2_500);
    assert_eq!(m["options"]["triples"], "per-entailment");
    let dev_bytes = std::fs::read(shared().join("kor-nlu/xnli.dev.ko.tsv")).unwrap();
    assert_eq!(m["sources"][0]["sha256"], sha256_hex(&dev_bytes));
    assert!(out.path().join("sts/korsts_test.manifest.json").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.path().join("kornli_triples.parquet"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "artifacts are readable like any file");
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left behind");
}

#[test]
fn one_per_premise_rule_on_xnli() {
    let out = tempfile::tempdir().unwrap();
    let summary = run(&opts(&shared(), out.path(), TripleRule::OnePerPremise)).unwrap();
    assert_eq!(rows_of(&summary, "xnli.dev.ko.tsv"), (2_490, 830));
    assert_eq!(rows_of(&summary, "xnli.test.ko.tsv"), (5_010, 1_670));
}

const NLI_HEADER: &str = "sentence1\tsentence2\tgold_label\n";
const STS_HEADER: &str = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n";

/// A raw folder with one broken case per line; returns its path.
fn broken_raw() -> tempfile::TempDir {
    let raw = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(raw.path().join("kor-nlu")).unwrap();
    std::fs::create_dir_all(raw.path().join("klue-sts")).unwrap();
    let mut nli = NLI_HEADER.as_bytes().to_vec();
    nli.extend_from_slice("전제 하나\t함의 문장\tentailment\n".as_bytes()); // line 2 ok
    nli.extend_from_slice("전제 하나\t모순 문장\tcontradiction\n".as_bytes()); // 3 ok
    nli.extend_from_slice("전제 하나\t필드가 모자람\n".as_bytes()); // 4 field count
    nli.extend_from_slice("전제 하나\t무슨 문장\tmaybe\n".as_bytes()); // 5 unknown label
    nli.extend_from_slice("전제 둘\t \tentailment\n".as_bytes()); // 6 empty sentence2
    nli.extend_from_slice(b"\xed\x95\x9c \xff\xfe\tx\tneutral\n"); // 7 invalid UTF-8
    nli.extend_from_slice("전제 셋\t\"따옴표가 \"열린\" 문장\tentailment\n".as_bytes()); // 8 ok: quotes are text
    nli.extend_from_slice("전제 셋\t모순\tcontradiction".as_bytes()); // 9 ok, no final newline
    std::fs::write(raw.path().join("kor-nlu/xnli.dev.ko.tsv"), nli).unwrap();
    let sts = format!(
        "{STS_HEADER}main-news\tf\t2012\t1\t4.500\t좋은 문장 하나.\t좋은 문장 둘.\n\
         main-news\tf\t2012\t2\t5.500\t점수가 넘친다.\t문장.\n\
         main-news\tf\t2012\t3\tabc\t점수가 글자.\t문장.\n\
         main-news\tf\t2012\t4\t-0.1\t점수가 음수.\t문장.\n\
         main-news\tf\t2012\t5\t3.000\t\t빈 문장 1.\n\
         main-forum\tf\t2012\t6\t0.000\t마지막 문장.\t끝."
    );
    std::fs::write(raw.path().join("kor-nlu/sts-dev.tsv"), sts).unwrap();
    let klue = r#"[{"guid":"a","source":"wiki","sentence1":"첫 문장.","sentence2":"둘째 문장.","labels":{"label":3.2,"real-label":3.1,"binary-label":1}},
{"guid":"b","source":"wiki","sentence1":"점수 초과.","sentence2":"둘.","labels":{"label":7.0,"real-label":3.1,"binary-label":1}},
{"guid":"c","source":"wiki","sentence1":"라벨 없음.","sentence2":"둘."},
{"guid":"d","source":"wiki","sentence1":"잘린 원소","sentence2":"#;
    std::fs::write(raw.path().join("klue-sts/klue-sts-v1.1_dev.json"), klue).unwrap();
    raw
}

fn file<'a>(summary: &'a Summary, name: &str) -> &'a simcse_data::prepare::FileSummary {
    summary
        .files
        .iter()
        .find(|f| f.file.ends_with(name))
        .unwrap()
}

#[test]
fn broken_rows_are_named_counted_and_skipped() {
    let raw = broken_raw();
    let out = tempfile::tempdir().unwrap();
    let summary = run(&opts(raw.path(), out.path(), TripleRule::PerEntailment)).unwrap();

    let nli = file(&summary, "xnli.dev.ko.tsv");
    assert_eq!((nli.rows_read, nli.rows_kept), (8, 4));
    let counts = |f: &simcse_data::prepare::FileSummary| {
        f.skipped
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        counts(nli),
        "empty_sentence=1,field_count=1,invalid_utf8=1,unknown_label=1"
    );
    let triples = read_triples(&out.path().join("kornli_triples.parquet")).unwrap();
    let t: Vec<_> = triples
        .iter()
        .map(|(t, _)| (t.anchor.as_str(), t.positive.as_str(), t.negative.as_str()))
        .collect();
    assert_eq!(
        t,
        vec![
            ("전제 하나", "함의 문장", "모순 문장"),
            ("전제 셋", "\"따옴표가 \"열린\" 문장", "모순")
        ]
    );

    let sts = file(&summary, "sts-dev.tsv");
    assert_eq!((sts.rows_read, sts.written), (6, 2));
    assert_eq!(
        counts(sts),
        "bad_score=1,empty_sentence=1,score_out_of_range=2"
    );
    let pairs = read_sts(&out.path().join("sts/korsts_dev.parquet")).unwrap();
    assert_eq!(
        pairs
            .iter()
            .map(|p| p.sentence1.as_str())
            .collect::<Vec<_>>(),
        vec!["좋은 문장 하나.", "마지막 문장."]
    );

    let klue = file(&summary, "klue-sts-v1.1_dev.json");
    assert_eq!((klue.rows_read, klue.written), (4, 1));
    assert_eq!(counts(klue), "malformed_json=2,score_out_of_range=1");

    // The manifest carries the skip counts too.
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("sts/korsts_dev.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["counts"]["skipped_score_out_of_range"], 2);
    assert!(summary.table().contains("score_out_of_range=2"));
}

#[test]
fn messages_name_file_line_and_problem() {
    let raw = broken_raw();
    let nli = raw.path().join("kor-nlu/xnli.dev.ko.tsv");
    let (_, log, _) = simcse_data::kornli::read(&nli, false).unwrap();
    let msgs: Vec<String> = log.examples.iter().map(|b| b.to_string()).collect();
    let p = nli.display();
    assert_eq!(
        msgs,
        vec![
            format!("{p}: line 4: 2 tab-separated fields, expected 3 (field_count)"),
            format!("{p}: line 5: unknown gold_label \"maybe\" (unknown_label)"),
            format!("{p}: line 6: empty sentence2 (empty_sentence)"),
            format!("{p}: line 7: invalid UTF-8 at byte 4 of the line (invalid_utf8)"),
        ]
    );
    let sts = raw.path().join("kor-nlu/sts-dev.tsv");
    let (_, log, _) = simcse_data::sts::read_korsts(&sts, false).unwrap();
    assert_eq!(
        log.examples[0].to_string(),
        format!(
            "{}: line 3: score 5.5 outside 0..5 (score_out_of_range)",
            sts.display()
        )
    );
    assert_eq!(log.examples[1].detail, "score \"abc\" is not a number");
    let klue = raw.path().join("klue-sts/klue-sts-v1.1_dev.json");
    let (_, log, _) = simcse_data::sts::read_klue(&klue, false).unwrap();
    let truncated = &log.examples[0];
    assert_eq!(
        (truncated.location, truncated.reason),
        (Location::JsonIndex(3), Reason::MalformedJson)
    );
    assert!(
        truncated.detail.contains("EOF while parsing") && truncated.detail.contains("line 4"),
        "{}",
        truncated.detail
    );
    assert_eq!(log.examples[1].location, Location::JsonIndex(1));
    assert_eq!(
        log.examples[2].to_string(),
        format!(
            "{}: JSON index 2: missing number labels.label, labels.real-label or labels.binary-label (malformed_json)",
            klue.display()
        )
    );
}

#[test]
fn strict_mode_fails_on_the_first_bad_row() {
    let raw = broken_raw();
    let out = tempfile::tempdir().unwrap();
    let mut o = opts(raw.path(), out.path(), TripleRule::PerEntailment);
    o.strict = true;
    let err = run(&o).unwrap_err();
    match &err {
        DataError::BadRow(b) => assert_eq!(
            (b.location, b.reason),
            (Location::Line(4), Reason::FieldCount)
        ),
        other => panic!("expected a bad-row error, got {other}"),
    }
    assert!(err.to_string().contains("xnli.dev.ko.tsv: line 4"), "{err}");
    assert!(
        !out.path().join("kornli_triples.parquet").exists(),
        "nothing written after a fatal error"
    );
}

#[test]
fn missing_inputs_are_clear_errors() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = run(&opts(raw.path(), out.path(), TripleRule::PerEntailment)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{msg}");
    assert!(
        msg.contains("KorNLI")
            && msg.contains("xnli.dev.ko.tsv")
            && msg.contains("cargo xtask download"),
        "{msg}"
    );

    // --require-all: the shared mirror lacks the train files, so it must fail naming them.
    let mut o = opts(&shared(), out.path(), TripleRule::PerEntailment);
    o.require_all = true;
    let msg = run(&o).unwrap_err().to_string();
    assert!(
        msg.contains("snli_1.0_train.ko.tsv") && msg.contains("multinli.train.ko.tsv"),
        "{msg}"
    );

    // A file with the wrong header is refused, naming it.
    std::fs::create_dir_all(raw.path().join("kor-nlu")).unwrap();
    std::fs::write(
        raw.path().join("kor-nlu/xnli.dev.ko.tsv"),
        "premise\thypothesis\tlabel\n",
    )
    .unwrap();
    let msg = run(&opts(raw.path(), out.path(), TripleRule::PerEntailment))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("xnli.dev.ko.tsv: line 1: expected header"),
        "{msg}"
    );
}
