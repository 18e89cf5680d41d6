//! The sentence splitters against gold splits: the real Wikipedia gold file, and gold sets of other
//! genres built here from public text whose sentence boundaries are known (see `gold_sets`).
//!
//! `SPLIT_GOLD_OUT=DIR cargo test --workspace --test split` also writes every set as `DIR/<genre>.txt`
//! (one sentence a line, paragraphs separated by blank lines), the format of
//! `../shared/tools/split_f1.py`, so other splitters (kss: `benches/kss_split.py`) are scored on
//! exactly the same text.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use simcse_data::split::{Splitter, sentences_with};

/// A gold set: paragraphs, each a list of sentences.
type Gold = Vec<Vec<String>>;

/// Sentences per generated genre (about; paragraphs hold 2 to 7).
const SENTENCES_PER_SET: usize = 400;

/// splitmix64: a seeded, dependency-free generator, so the sets are the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn tsv_column(path: &Path, column: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let i = header.iter().position(|h| *h == column).unwrap();
    lines
        .filter_map(|l| l.split('\t').nth(i))
        .map(str::to_string)
        .collect()
}

/// One sentence for sure: ends in a single `.`, `?` or `!` after Hangul, and has no other terminator
/// followed by a space, no quotes or brackets (they get their own genre), 10 to 150 characters.
fn single_sentence(s: &str) -> bool {
    let s = s.trim();
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    (10..=150).contains(&n)
        && matches!(chars[n - 1], '.' | '?' | '!')
        && simcse_data::split::is_hangul(chars[n - 2])
        && !chars[..n - 1]
            .windows(2)
            .any(|w| matches!(w[0], '.' | '?' | '!' | '…') && w[1] == ' ')
        && !s.contains([
            '"', '\'', '“', '”', '‘', '’', '(', ')', '[', ']', '「', '」', '…',
        ])
}

/// Distinct single sentences of `texts`, in first-seen order.
fn singles(texts: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    texts
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| single_sentence(s) && seen.insert(s.clone()))
        .collect()
}

fn without_final_punctuation(s: &str) -> String {
    s.trim_end_matches(['.', '?', '!']).to_string()
}

/// Groups a stream of sentences into paragraphs of 2 to 7 until `SENTENCES_PER_SET` are used.
fn paragraphs(rng: &mut Rng, mut next: impl FnMut(&mut Rng) -> String) -> Gold {
    let mut out = Vec::new();
    let mut total = 0;
    while total < SENTENCES_PER_SET {
        let n = 2 + rng.below(6);
        out.push((0..n).map(|_| next(rng)).collect::<Vec<_>>());
        total += n;
    }
    out
}

/// The last word of `s` (before its punctuation) ends in an ending of spoken Korean.
fn spoken(s: &str) -> bool {
    let word = without_final_punctuation(s);
    [
        "요", "죠", "까", "네", "니", "냐", "군", "구나", "거든", "잖아",
    ]
    .iter()
    .any(|e| word.ends_with(e))
}

/// The gold sets, by genre. Sources (all public, in `../shared/data`, see its SOURCES.md): KorNLI
/// XNLI-ko dev+test sentences (translated MultiNLI genres: fiction, telephone speech, letters,
/// travel, government), KorSTS train sentences (image captions, news headlines, forum posts) and the
/// kowiki sample gold split; and, held out while the general splitter's rules were written, KLUE
/// STS dev sentences (hotel reviews, policy news, Wikitree, parliament speeches). Only sentences that are one sentence for sure are used
/// (`single_sentence`), and each genre changes them in the one way it names:
/// - `nli`, `sts`, `klue`: as they are, joined by spaces.
/// - `nli_no_punct`, `sts_no_punct`, `wiki_no_punct`, `klue_no_punct`: every final `.`, `?`, `!` removed
///   (`...했다 그리고 ...`), the style of chats, comments and transcripts.
/// - `spoken`: NLI sentences whose last word ends in a spoken ending (-요, -죠, -까, -네, -니, -냐,
///   -구나, -거든, -잖아), half of them without final punctuation.
/// - `emoticons`: a trailer after the sentence (ㅋㅋ, ㅎㅎ, ㅠㅠ, ^^, ~, !!, ?!, ..., an emoji), with
///   or without the final punctuation; the trailer belongs to the sentence.
/// - `quotes`: a third of the sentences quoted whole (`"…"`, `“…”`, `「…」`), a third holding a
///   quotation of two sentences (`그는 "S1 S2"라고 말했다.`, one sentence), the rest as they are.
/// - `numbers_urls`: sentences with digits, a quarter of them with a bracketed URL or e-mail
///   address after their first word.
fn gold_sets() -> Vec<(&'static str, Gold)> {
    let data = simcse_testkit::shared_data();
    let nlu = data.join("kor-nlu");
    let mut nli_texts = Vec::new();
    for f in ["xnli.dev.ko.tsv", "xnli.test.ko.tsv"] {
        for c in ["sentence1", "sentence2"] {
            nli_texts.extend(tsv_column(&nlu.join(f), c));
        }
    }
    let nli = singles(nli_texts);
    let mut sts_texts = Vec::new();
    for c in ["sentence1", "sentence2"] {
        sts_texts.extend(tsv_column(&nlu.join("sts-train.tsv"), c));
    }
    let sts = singles(sts_texts);
    let wiki_gold =
        std::fs::read_to_string(data.join("kowiki-sample/kss_bench_wikipedia.txt")).unwrap();
    let wiki = singles(wiki_gold.lines().map(str::to_string));
    let klue_json = std::fs::read_to_string(data.join("klue-sts/klue-sts-v1.1_dev.json")).unwrap();
    let klue_rows: Vec<serde_json::Value> = serde_json::from_str(&klue_json).unwrap();
    let klue = singles(klue_rows.iter().flat_map(|r| {
        ["sentence1", "sentence2"].map(|k| r[k].as_str().unwrap_or_default().to_string())
    }));
    let spoken_nli: Vec<String> = nli.iter().filter(|s| spoken(s)).cloned().collect();
    let numbered: Vec<String> = sts
        .iter()
        .chain(&wiki)
        .filter(|s| s.contains(|c: char| c.is_ascii_digit()))
        .cloned()
        .collect();
    let mut rng = Rng(20_261_128);
    let as_is = |v: &[String]| {
        let v = v.to_vec();
        move |r: &mut Rng| r.pick(v.as_slice()).clone()
    };
    let no_punct = |v: &[String]| {
        let v = v.to_vec();
        move |r: &mut Rng| without_final_punctuation(r.pick::<String>(&v))
    };
    let mut sets: Vec<(&'static str, Gold)> = vec![
        ("nli", paragraphs(&mut rng, as_is(&nli))),
        ("sts", paragraphs(&mut rng, as_is(&sts))),
        ("nli_no_punct", paragraphs(&mut rng, no_punct(&nli))),
        ("sts_no_punct", paragraphs(&mut rng, no_punct(&sts))),
        ("wiki_no_punct", paragraphs(&mut rng, no_punct(&wiki))),
        ("klue", paragraphs(&mut rng, as_is(&klue))),
        ("klue_no_punct", paragraphs(&mut rng, no_punct(&klue))),
    ];
    sets.push((
        "spoken",
        paragraphs(&mut rng, |r| {
            let s = r.pick(&spoken_nli).clone();
            if r.chance(50) {
                without_final_punctuation(&s)
            } else {
                s
            }
        }),
    ));
    const TRAILERS: [&str; 12] = [
        " ㅋㅋ",
        " ㅋㅋㅋ",
        " ㅎㅎ",
        " ㅠㅠ",
        " ^^",
        "~",
        "~~",
        "!!",
        "?!",
        "...",
        " 😂",
        " :)",
    ];
    sets.push((
        "emoticons",
        paragraphs(&mut rng, |r| {
            let s = r.pick(&nli).clone();
            let trailer = *r.pick(&TRAILERS);
            match r.below(3) {
                0 => s,
                1 => format!("{s}{trailer}"),
                _ => format!("{}{trailer}", without_final_punctuation(&s)),
            }
        }),
    ));
    const QUOTES: [(&str, &str); 3] = [("\"", "\""), ("“", "”"), ("「", "」")];
    const SAYS: [&str; 4] = [
        "라고 말했다.",
        "라고 했다.",
        "라고 물었다.",
        "라는 답이 돌아왔다.",
    ];
    sets.push((
        "quotes",
        paragraphs(&mut rng, |r| {
            let (open, close) = *r.pick(&QUOTES);
            match r.below(3) {
                0 => format!("{open}{}{close}", r.pick(&nli)),
                1 => format!(
                    "그는 {open}{} {}{close}{}",
                    r.pick(&nli),
                    r.pick(&nli),
                    r.pick(&SAYS)
                ),
                _ => r.pick(&nli).clone(),
            }
        }),
    ));
    const LINKS: [&str; 4] = [
        "(https://ko.wikipedia.org/wiki/대한민국)",
        "(www.korea.kr/briefing/view.do?id=148)",
        "(문의: help.desk@example.kr)",
        "(https://www.example.co.kr/news/2024.html 참고)",
    ];
    sets.push((
        "numbers_urls",
        paragraphs(&mut rng, |r| {
            let s = r.pick(&numbered).clone();
            match s.split_once(' ') {
                Some((first, rest)) if r.chance(25) => format!("{first} {} {rest}", r.pick(&LINKS)),
                _ => s,
            }
        }),
    ));
    sets
}

/// The Wikipedia gold file: real prose, split by hand (see its SOURCE.md).
fn wikipedia_gold() -> Gold {
    let path = simcse_testkit::shared_data().join("kowiki-sample/kss_bench_wikipedia.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .split("\n\n")
        .map(|p| {
            p.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Precision, recall, F1 of sentence boundaries and the exact-match rate, scored as
/// `../shared/tools/split_f1.py` does (boundaries as offsets in the text without whitespace, the
/// paragraph's end not counted). Also checks that no non-space character is lost or moved.
fn score(gold: &Gold, splitter: Splitter) -> (f64, f64, f64, f64) {
    let ends = |sents: &[&str]| {
        let mut off = 0;
        sents
            .iter()
            .map(|s| {
                off += s.chars().filter(|c| !c.is_whitespace()).count();
                off
            })
            .collect::<BTreeSet<usize>>()
    };
    let (mut tp, mut npred, mut ngold, mut exact, mut total) = (0, 0, 0, 0, 0);
    for para in gold {
        let gold: Vec<&str> = para.iter().map(String::as_str).collect();
        let joined = gold.join(" ");
        let pred = sentences_with(&joined, splitter);
        let strip = |v: &[&str]| v.concat().split_whitespace().collect::<String>();
        assert_eq!(strip(&pred), strip(&gold), "non-space characters changed");
        let (g, p) = (ends(&gold), ends(&pred));
        let last = *g.last().unwrap();
        tp += g.intersection(&p).filter(|&&o| o != last).count();
        npred += p.len() - 1;
        ngold += g.len() - 1;
        exact += gold.iter().filter(|s| pred.contains(s)).count();
        total += gold.len();
        if std::env::var("SPLIT_SHOW").is_ok_and(|v| v == format!("{splitter:?}")) && g != p {
            for x in pred.iter().filter(|x| !gold.contains(x)) {
                println!("WRONG  {x}");
            }
        }
    }
    let precision = if npred == 0 {
        0.0
    } else {
        tp as f64 / npred as f64
    };
    let recall = tp as f64 / ngold.max(1) as f64;
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1, exact as f64 / total as f64)
}

fn write_gold(dir: &Path, name: &str, gold: &Gold) {
    std::fs::create_dir_all(dir).unwrap();
    let text: Vec<String> = gold.iter().map(|p| p.join("\n") + "\n").collect();
    std::fs::write(dir.join(format!("{name}.txt")), text.join("\n")).unwrap();
}

/// The wiki splitter keeps its score on real Wikipedia prose (0.998 when written).
#[test]
fn wiki_splitter_matches_the_gold_wikipedia_split() {
    let (p, r, f1, exact) = score(&wikipedia_gold(), Splitter::Wiki);
    println!("wiki splitter: P {p:.4} R {r:.4} F1 {f1:.4} exact {exact:.4}");
    assert!(f1 >= 0.99, "boundary F1 {f1:.4} below 0.99");
    assert!(exact >= 0.97, "exact-match rate {exact:.4}");
}

/// The general splitter on every genre, with the floors it reached when written (BENCHMARKS.md has
/// the table next to kss's), and above 0.99 on real Wikipedia prose.
#[test]
fn general_splitter_meets_its_floor_on_every_genre() {
    let floors: BTreeMap<&str, f64> = [
        ("wikipedia", 0.99),
        ("nli", 0.99),
        ("sts", 0.99),
        ("nli_no_punct", 0.98),
        ("sts_no_punct", 0.97),
        ("wiki_no_punct", 0.99),
        ("klue", 0.99),
        ("klue_no_punct", 0.93),
        ("spoken", 0.98),
        ("emoticons", 0.99),
        ("quotes", 0.99),
        ("numbers_urls", 0.99),
    ]
    .into_iter()
    .collect();
    let mut sets = gold_sets();
    sets.insert(0, ("wikipedia", wikipedia_gold()));
    let out = std::env::var_os("SPLIT_GOLD_OUT");
    let mut low = Vec::new();
    for (name, gold) in &sets {
        if let Some(dir) = &out {
            write_gold(Path::new(dir), name, gold);
        }
        let n: usize = gold.iter().map(Vec::len).sum();
        let (wp, wr, wf, _) = score(gold, Splitter::Wiki);
        let (p, r, f1, exact) = score(gold, Splitter::General);
        println!(
            "{name:14} {n:4} sentences  general P {p:.3} R {r:.3} F1 {f1:.3} exact {exact:.3}  |  wiki P {wp:.3} R {wr:.3} F1 {wf:.3}"
        );
        if f1 < floors[name] {
            low.push(format!("{name}: F1 {f1:.4} < {}", floors[name]));
        }
    }
    assert!(low.is_empty(), "below the floor: {low:?}");
}
