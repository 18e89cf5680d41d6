//! The Wikipedia stage end to end on a small dump of our own: every markup case, every input format,
//! bz2 single- and multi-stream, and damaged input.

use std::io::Write;
use std::path::{Path, PathBuf};

use bzip2::Compression;
use bzip2::write::BzEncoder;
use simcse_artifact::{Sentence, read_sentences};
use simcse_data::split::Splitter;
use simcse_data::wiki::{self, Filters, Format, Input, Options, Summary};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wiki/kowiki-mini.xml")
}

/// The exact sentences the fixture dump must give, page by page.
const EXPECTED: &[(&str, &str)] = &[
    (
        "101",
        "푸른 언덕 마을(Blue Hill Village)은 가상의 나라 북부의 산골에 있는 작은 마을이다.",
    ),
    (
        "101",
        "인구는 약 3.2천 명이며, 주민 대부분이 차를 재배한다.",
    ),
    ("101", "마을 이름은 1950. 6. 25. 이전부터 쓰였다고 전한다."),
    ("101", "U.S. Army의 기록에도 이 이름이 나온다!"),
    ("101", "마을 회관은 옛 기록에 따르면 1932년에 세워졌다."),
    ("101", "주민들은 그 회관을 \"큰집\"이라고 불렀다."),
    ("101", "마을의 축제는 매년 가을에 열린다."),
    ("101", "축제에는 이웃 마을 사람들도 많이 온다 … 정말일까?"),
    ("106", "차 재배는 차나무를 기르는 일이다."),
    ("106", "버전 v1.2의 지침은 3.14%의 오차를 허용한다."),
    (
        "106",
        "자세한 내용은 https://example.org/tea.html 에서 볼 수 있다.",
    ),
    (
        "106",
        "Dr. Kim은 \"차는 천천히 자란다. 그러니 기다려야 한다.\"라고 말했다.",
    ),
    ("106", "어떤 차가 가장 좋을까?"),
];

fn options(input: &Path, out: &Path, threads: usize) -> Options {
    Options {
        input: Input::Wiki {
            path: input.to_path_buf(),
            format: Format::Auto,
        },
        out: out.join("wiki_sentences.parquet"),
        threads,
        filters: Filters::default(),
        splitter: Splitter::Wiki,
        sample: None,
        seed: 42,
        strict: false,
    }
}

fn run(input: &Path, threads: usize) -> (Summary, Vec<Sentence>) {
    let out = tempfile::tempdir().unwrap();
    let opts = options(input, out.path(), threads);
    let summary = wiki::run(&opts).unwrap();
    let rows = read_sentences(&opts.out).unwrap();
    (summary, rows)
}

fn texts(rows: &[Sentence]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r.doc_id.as_str(), r.text.as_str()))
        .collect()
}

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut enc = BzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A multistream file as Wikipedia makes them: the header, each page, and the footer as separate
/// bz2 streams, concatenated.
fn multistream(xml: &str) -> Vec<u8> {
    let mut cuts: Vec<usize> = xml.match_indices("<page>").map(|(i, _)| i).collect();
    cuts.insert(0, 0);
    cuts.push(xml.find("</mediawiki>").unwrap());
    cuts.push(xml.len());
    cuts.windows(2)
        .flat_map(|w| bz2(&xml.as_bytes()[w[0]..w[1]]))
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn xml_dump_gives_the_exact_sentences_and_counts() {
    let (summary, rows) = run(&fixture(), 2);
    assert_eq!(texts(&rows), EXPECTED);
    assert!(rows.iter().all(|r| !r.title.is_empty()));
    assert_eq!(rows[0].title, "푸른 언덕 마을");
    assert_eq!(summary.format, "xml");
    assert_eq!(summary.pages_seen, 7);
    assert_eq!(summary.pages_kept, 2);
    let skipped = |k: &str| summary.pages_skipped.get(k).copied().unwrap_or(0);
    assert_eq!(
        skipped("redirect"),
        2,
        "<redirect> element and #REDIRECT text"
    );
    assert_eq!(skipped("not_main_namespace"), 1);
    assert_eq!(skipped("disambiguation"), 1);
    assert_eq!(skipped("empty"), 1);
    assert_eq!(summary.sentences_dropped["duplicate"], 1);
    assert_eq!(summary.sentences_written, EXPECTED.len());
    assert!(summary.damage.is_none());
    // Nothing structural leaks: headings, list items, tables, comments, refs, files, categories.
    for r in &rows {
        for bad in [
            "목록",
            "차밭",
            "찻잎",
            "옛 그림",
            "thumb",
            "항목",
            "==",
            "wikitable",
            "주석",
            "웹 인용",
            "전경",
            "분류",
            "青い",
            "x^2",
        ] {
            assert!(!r.text.contains(bad), "{bad:?} leaked into {:?}", r.text);
        }
    }
}

#[test]
fn bz2_single_and_multistream_give_the_same_corpus_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(fixture()).unwrap();
    let single = write(dir.path(), "single.xml.bz2", &bz2(xml.as_bytes()));
    let multi_bytes = multistream(&xml);
    assert!(simcse_data::wiki::bz2::is_multistream(&multi_bytes));
    assert_eq!(simcse_data::wiki::bz2::stream_starts(&multi_bytes).len(), 9);
    let multi = write(dir.path(), "multi.xml.bz2", &multi_bytes);
    for input in [&single, &multi] {
        for threads in [1, 2] {
            let (summary, rows) = run(input, threads);
            assert_eq!(
                texts(&rows),
                EXPECTED,
                "{} on {threads} threads",
                input.display()
            );
            assert_eq!(summary.input_bytes, std::fs::metadata(input).unwrap().len());
        }
    }
}

#[test]
fn damaged_bz2_keeps_the_pages_before_the_damage_and_names_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(fixture()).unwrap();
    let multi = multistream(&xml);
    let starts = simcse_data::wiki::bz2::stream_starts(&multi);
    // Cut inside the stream of page 106: pages up to 105 survive, page 101's sentences with them.
    let cut = starts[6] + 40;
    let cases = [
        ("truncated-multi.xml.bz2", multi[..cut].to_vec(), 2),
        ("truncated-multi-seq.xml.bz2", multi[..cut].to_vec(), 1),
        (
            "truncated-single.xml.bz2",
            {
                let s = bz2(xml.as_bytes());
                s[..s.len() * 3 / 4].to_vec()
            },
            1,
        ),
        (
            "corrupt-multi.xml.bz2",
            {
                let mut m = multi.clone();
                for b in &mut m[starts[6] + 20..starts[6] + 60] {
                    *b ^= 0x5a;
                }
                m
            },
            2,
        ),
    ];
    for (name, bytes, threads) in cases {
        let input = write(dir.path(), name, &bytes);
        let out = tempfile::tempdir().unwrap();
        let opts = options(&input, out.path(), threads);
        let summary = wiki::run(&opts).unwrap();
        let damage = summary.damage.clone().unwrap_or_default();
        assert!(damage.contains("compressed byte"), "{name}: {damage}");
        let rows = read_sentences(&opts.out).unwrap();
        if name != "truncated-single.xml.bz2" {
            assert_eq!(
                texts(&rows),
                &EXPECTED[..8],
                "{name}: page 101 kept, 106 lost"
            );
        }
        let manifest =
            std::fs::read_to_string(out.path().join("wiki_sentences.manifest.json")).unwrap();
        assert!(
            manifest.contains("compressed byte"),
            "{name}: damage not in the manifest"
        );

        let strict_out = tempfile::tempdir().unwrap();
        let strict = Options {
            strict: true,
            ..options(&input, strict_out.path(), threads)
        };
        let err = wiki::run(&strict).unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("compressed byte"),
            "{err}"
        );
        assert!(!strict.out.exists(), "strict mode must write nothing");
    }
}

#[test]
fn malformed_xml_names_the_byte_offset_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(fixture())
        .unwrap()
        .replace("<title>차 재배</title>", "<title>차 재배</titel>");
    let input = write(dir.path(), "bad.xml", xml.as_bytes());
    let (summary, rows) = run(&input, 2);
    let damage = summary.damage.unwrap();
    assert!(damage.contains("XML byte"), "{damage}");
    assert!(damage.contains("after page \"빈 문서\""), "{damage}");
    assert_eq!(texts(&rows), &EXPECTED[..8]);
}

#[test]
fn extractor_json_doc_blocks_and_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = "{\"id\": \"7\", \"url\": \"u\", \"title\": \"고양이\", \"text\": \"고양이\\n\\n고양이는 작은 육식 동물이다. 사람과 함께 산다.\"}\n\
                 not json\n\
                 {\"id\": \"8\", \"title\": \"개\", \"text\": \"개\\n개는 충성스러운 동물이다.\"}\n";
    let doc = "<doc id=\"7\" url=\"u\" title=\"고양이\">\n고양이\n\n고양이는 작은 육식 동물이다. 사람과 함께 산다.\n</doc>\n\
               <doc id=\"8\" url=\"u\" title=\"개\">\n개\n개는 충성스러운 동물이다.\n</doc>\n";
    let text = "고양이는 작은 육식 동물이다. 사람과 함께 산다.\n\n개는 충성스러운 동물이다.\n";
    for (name, data, format, ids) in [
        ("a.jsonl", jsonl, "jsonl", ["7", "7", "8"]),
        ("a.txt", doc, "doc", ["7", "7", "8"]),
        ("b.txt", text, "text", ["1", "1", "3"]),
    ] {
        let input = write(dir.path(), name, data.as_bytes());
        let (summary, rows) = run(&input, 2);
        assert_eq!(summary.format, format, "{name}");
        let got: Vec<(&str, &str)> = texts(&rows);
        assert_eq!(
            got,
            vec![
                (ids[0], "고양이는 작은 육식 동물이다."),
                (ids[1], "사람과 함께 산다."),
                (ids[2], "개는 충성스러운 동물이다."),
            ],
            "{name}"
        );
        if format == "jsonl" {
            assert_eq!(summary.bad_rows["malformed_json"], 1);
            assert!(summary.bad_row_examples["malformed_json"][0].contains("line "));
        }
        if format != "text" {
            assert_eq!(rows[0].title, "고양이");
        }
    }
}

#[test]
fn sample_is_seeded_and_keeps_corpus_order() {
    let out = tempfile::tempdir().unwrap();
    let mut picks = Vec::new();
    for seed in [1, 1, 2] {
        let opts = Options {
            sample: Some(5),
            seed,
            ..options(&fixture(), out.path(), 2)
        };
        let summary = wiki::run(&opts).unwrap();
        assert_eq!(summary.sentences_written, 5);
        assert_eq!(summary.sentences_dropped["not_sampled"], EXPECTED.len() - 5);
        let rows = read_sentences(&opts.out).unwrap();
        let positions: Vec<usize> = rows
            .iter()
            .map(|r| EXPECTED.iter().position(|e| e.1 == r.text).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        picks.push(positions);
    }
    assert_eq!(picks[0], picks[1], "same seed, same sample");
    assert_ne!(picks[0], picks[2], "another seed, another sample");
}

#[test]
fn filters_are_configurable() {
    let out = tempfile::tempdir().unwrap();
    let opts = Options {
        filters: Filters {
            min_chars: 30,
            dedup: false,
            ..Filters::default()
        },
        ..options(&fixture(), out.path(), 1)
    };
    let summary = wiki::run(&opts).unwrap();
    let rows = read_sentences(&opts.out).unwrap();
    assert!(rows.iter().all(|r| r.text.chars().count() >= 30));
    assert_eq!(summary.sentences_dropped["duplicate"], 0);
    let kept_long = EXPECTED
        .iter()
        .filter(|e| e.1.chars().count() >= 30)
        .count();
    // The duplicate sentence ("마을 회관은 …", 29 characters) is short, so only the long ones remain.
    assert_eq!(rows.len(), kept_long);
    assert_eq!(
        summary.sentences_dropped["too_short"],
        summary.sentences_split - kept_long
    );
}
