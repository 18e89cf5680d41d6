//! KorNLI (SNLI, MNLI, XNLI in Korean) -> (anchor, positive, negative) triples for supervised SimCSE.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::rows::{Location, Reason, RowLog, check_header, lines, read_input, tsv_fields};

pub const HEADER: &str = "sentence1\tsentence2\tgold_label";

/// The KorNLI files the prepare stage looks for, with the `source` name their triples carry.
pub const FILES: [(&str, &str); 4] = [
    ("kor-nlu/snli_1.0_train.ko.tsv", "snli"),
    ("kor-nlu/multinli.train.ko.tsv", "mnli"),
    ("kor-nlu/xnli.dev.ko.tsv", "xnli_dev"),
    ("kor-nlu/xnli.test.ko.tsv", "xnli_test"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Entailment,
    Neutral,
    Contradiction,
}

/// One valid row of a KorNLI file.
#[derive(Debug, Clone, PartialEq)]
pub struct NliRow {
    pub premise: String,
    pub hypothesis: String,
    pub label: Label,
}

/// Reads a KorNLI TSV; bad rows are logged and counted in the returned `RowLog`.
pub fn read(path: &Path, strict: bool) -> Result<(Vec<NliRow>, RowLog, Vec<u8>)> {
    let bytes = read_input(path, "a KorNLI TSV file")?;
    let mut log = RowLog::new(path, strict);
    let mut it = lines(&bytes);
    check_header(path, it.next(), HEADER)?;
    let mut rows = Vec::new();
    for (line_no, raw) in it {
        log.rows_read += 1;
        let Some(f) = tsv_fields(&mut log, line_no, raw, 3)? else {
            continue;
        };
        let loc = Location::Line(line_no);
        let label = match f[2] {
            "entailment" => Label::Entailment,
            "neutral" => Label::Neutral,
            "contradiction" => Label::Contradiction,
            other => {
                log.skip(
                    loc,
                    Reason::UnknownLabel,
                    format!("unknown gold_label {other:?}"),
                )?;
                continue;
            }
        };
        if let Some(col) = empty_column(&f[..2], &["sentence1", "sentence2"]) {
            log.skip(loc, Reason::EmptySentence, format!("empty {col}"))?;
            continue;
        }
        rows.push(NliRow {
            premise: f[0].to_string(),
            hypothesis: f[1].to_string(),
            label,
        });
    }
    Ok((rows, log, bytes))
}

/// The name of the first column whose text is empty or only whitespace.
pub(crate) fn empty_column<'a>(values: &[&str], names: &[&'a str]) -> Option<&'a str> {
    values
        .iter()
        .zip(names)
        .find(|(v, _)| v.trim().is_empty())
        .map(|(_, n)| *n)
}

/// How triples are formed from the hypotheses of one premise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum TripleRule {
    /// One triple per entailment hypothesis of a premise that has a contradiction; contradictions
    /// are paired in file order, cycling when there are fewer of them than entailments.
    PerEntailment,
    /// One triple per premise: its last entailment and last contradiction in file order, exactly
    /// what KR-BERT-SimCSE's `train_supervised.py` builds (a dict overwritten row by row).
    OnePerPremise,
}

pub use simcse_artifact::Triple;

/// Groups rows by premise (in order of first appearance) and forms triples under `rule`.
pub fn triples(rows: &[NliRow], rule: TripleRule) -> Vec<Triple> {
    struct Group<'a> {
        premise: &'a str,
        ent: Vec<&'a str>,
        con: Vec<&'a str>,
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for r in rows {
        let i = *index.entry(&r.premise).or_insert_with(|| {
            groups.push(Group {
                premise: &r.premise,
                ent: vec![],
                con: vec![],
            });
            groups.len() - 1
        });
        match r.label {
            Label::Entailment => groups[i].ent.push(&r.hypothesis),
            Label::Contradiction => groups[i].con.push(&r.hypothesis),
            Label::Neutral => {}
        }
    }
    let triple = |g: &Group, e: &str, c: &str| Triple {
        anchor: g.premise.to_string(),
        positive: e.to_string(),
        negative: c.to_string(),
    };
    let mut out = Vec::new();
    for g in groups
        .iter()
        .filter(|g| !g.ent.is_empty() && !g.con.is_empty())
    {
        match rule {
            TripleRule::PerEntailment => {
                for (k, e) in g.ent.iter().enumerate() {
                    out.push(triple(g, e, g.con[k % g.con.len()]));
                }
            }
            TripleRule::OnePerPremise => {
                out.push(triple(g, g.ent[g.ent.len() - 1], g.con[g.con.len() - 1]))
            }
        }
    }
    out
}

/// Removes exact duplicate triples, keeping the first; `seen` spans all source files.
pub fn dedup(triples: Vec<Triple>, seen: &mut HashSet<Triple>) -> (Vec<Triple>, usize) {
    let before = triples.len();
    let kept: Vec<Triple> = triples
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: &str, h: &str, label: Label) -> NliRow {
        NliRow {
            premise: p.into(),
            hypothesis: h.into(),
            label,
        }
    }

    fn as_tuples(t: &[Triple]) -> Vec<(&str, &str, &str)> {
        t.iter()
            .map(|t| (t.anchor.as_str(), t.positive.as_str(), t.negative.as_str()))
            .collect()
    }

    #[test]
    fn triple_rules_pair_in_file_order() {
        use Label::*;
        let rows = vec![
            row("p1", "e1", Entailment),
            row("p2", "n", Neutral),
            row("p1", "c1", Contradiction),
            row("p1", "e2", Entailment),
            row("p1", "e3", Entailment),
            row("p1", "c2", Contradiction),
            row("p2", "e", Entailment), // p2 has no contradiction: no triple
            row("p3", "c", Contradiction),
            row("p3", "e", Entailment),
        ];
        assert_eq!(
            as_tuples(&triples(&rows, TripleRule::PerEntailment)),
            vec![
                ("p1", "e1", "c1"),
                ("p1", "e2", "c2"),
                ("p1", "e3", "c1"),
                ("p3", "e", "c")
            ]
        );
        assert_eq!(
            as_tuples(&triples(&rows, TripleRule::OnePerPremise)),
            vec![("p1", "e3", "c2"), ("p3", "e", "c")]
        );
    }

    #[test]
    fn dedup_keeps_first_across_calls() {
        let t = |a: &str| Triple {
            anchor: a.into(),
            positive: "e".into(),
            negative: "c".into(),
        };
        let mut seen = HashSet::new();
        let (kept, dropped) = dedup(vec![t("a"), t("b"), t("a")], &mut seen);
        assert_eq!((kept.len(), dropped), (2, 1));
        let (kept, dropped) = dedup(vec![t("b"), t("c")], &mut seen);
        assert_eq!((as_tuples(&kept), dropped), (vec![("c", "e", "c")], 1));
    }
}
