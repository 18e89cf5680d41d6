//! Rule-based Korean sentence splitter (no model), tuned for encyclopaedic prose.
//!
//! A boundary is a terminator (`. ? !`, their full-width forms, `…` after a final ending) followed by
//! whitespace or the end of the text, after any closing quotes, brackets and citation markers such
//! as `[2]` or `[참고 3]`, which stay with the sentence they follow. A `.` is not a boundary after
//! initials and abbreviations (`U.S.`, `Dr.`), in dates and numbered lists (`1950. 6. 25.`, `1.`),
//! before a lowercase word, or inside a bracket or quotation that closes later in the same text.
//! URLs, e-mail addresses and decimals never contain `.`+space, so they are never split. A short
//! parenthetical right after a sentence (`…하다. (6회 우승)`) is kept with it, as Wikipedia's gold
//! splits do. Every non-space character of the input ends up in exactly one sentence.

/// Splits `text` into sentences, trimmed, in order; text without final punctuation is one sentence.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in boundaries(text) {
        push_trimmed(&mut out, &text[start..end]);
        start = end;
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s);
    }
}

/// Byte offsets where a sentence ends (exclusive), strictly increasing, never at the text's end.
fn boundaries(text: &str) -> Vec<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let closes = closing_positions(&chars);
    let mut out = Vec::new();
    let mut depth_open: Vec<char> = Vec::new();
    let mut sentence_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if depth_open.last() == Some(&c) {
            depth_open.pop();
            i += 1;
            continue;
        }
        if let Some(close) = closer_of(c) {
            // Only a bracket that closes later counts: a stray opener must not swallow the text.
            if closes[i] {
                depth_open.push(close);
            }
            i += 1;
            continue;
        }
        if !is_terminator(c) {
            i += 1;
            continue;
        }
        // The run of terminators ("?!", "...", ".」") and what trails it on the same sentence.
        let term_start = i;
        while i < chars.len() && is_terminator(chars[i].1) {
            i += 1;
        }
        let term_end = i;
        let j = skip_trailers(&chars, i);
        // Closers right after the terminator end the quotation or bracket the sentence was in.
        for &(_, t) in &chars[term_end..j] {
            if depth_open.last() == Some(&t) {
                depth_open.pop();
            }
        }
        let at_space = j < chars.len() && chars[j].1.is_whitespace();
        if !at_space || !depth_open.is_empty() {
            i = j;
            continue;
        }
        if !ends_sentence(&chars, sentence_start, term_start, term_end, j) {
            i = j;
            continue;
        }
        let end = attach_parenthetical(&chars, j);
        if end < chars.len() {
            out.push(chars[end].0);
        }
        sentence_start = end;
        i = end;
    }
    out
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '。' | '？' | '！' | '…' | '‥')
}

fn closer_of(c: char) -> Option<char> {
    Some(match c {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '“' => '”',
        '‘' => '’',
        '「' => '」',
        '『' => '』',
        '《' => '》',
        '〈' => '〉',
        '«' => '»',
        '（' => '）',
        '"' => '"',
        _ => return None,
    })
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        ')' | ']' | '}' | '”' | '’' | '」' | '』' | '》' | '〉' | '»' | '）' | '"' | '\''
    )
}

/// For every opener, whether its closer appears later before a paragraph break.
fn closing_positions(chars: &[(usize, char)]) -> Vec<bool> {
    let mut out = vec![false; chars.len()];
    for (i, &(_, c)) in chars.iter().enumerate() {
        if let Some(close) = closer_of(c) {
            out[i] = chars[i + 1..]
                .iter()
                .take_while(|&&(_, d)| d != '\n')
                .take(400)
                .any(|&(_, d)| d == close);
        }
    }
    out
}

/// Skips closing quotes/brackets and citation markers like `[12]`, `[주 3]` after a terminator.
fn skip_trailers(chars: &[(usize, char)], mut j: usize) -> usize {
    loop {
        if j < chars.len() && is_closer(chars[j].1) {
            j += 1;
        } else if let Some(k) = citation_end(chars, j) {
            j = k;
        } else {
            return j;
        }
    }
}

/// `[` + at most 12 characters without brackets or line breaks + `]`, ending with a digit or letter.
fn citation_end(chars: &[(usize, char)], j: usize) -> Option<usize> {
    if chars.get(j)?.1 != '[' {
        return None;
    }
    let inner = chars[j + 1..]
        .iter()
        .take(13)
        .position(|&(_, c)| matches!(c, ']' | '[' | '\n'))?;
    let close = j + 1 + inner;
    (inner > 0 && chars[close].1 == ']' && chars[close - 1].1.is_alphanumeric())
        .then_some(close + 1)
}

/// Decides whether the terminators at `chars[start..end]`, followed by whitespace at `next_ws`, end
/// the sentence that began at `sentence`.
fn ends_sentence(
    chars: &[(usize, char)],
    sentence: usize,
    start: usize,
    end: usize,
    next_ws: usize,
) -> bool {
    let next = chars[next_ws..]
        .iter()
        .map(|&(_, c)| c)
        .find(|c| !c.is_whitespace());
    let prev = start.checked_sub(1).map(|p| chars[p].1);
    let run: String = chars[start..end].iter().map(|&(_, c)| c).collect();
    if run.contains(['?', '!', '？', '！', '。']) {
        return true;
    }
    if run.contains('…') || run.contains('‥') || run.len() > 1 {
        // An ellipsis usually trails off mid-sentence; after a final ending (…다…) it ends one.
        return matches!(prev, Some('다' | '요' | '죠' | '까'));
    }
    // A single '.'.
    if next.is_some_and(|c| c.is_lowercase()) {
        return false;
    }
    match prev {
        Some(p) if is_hangul(p) => true,
        Some(p) if p.is_ascii_digit() => !numeric_continues(chars, sentence, start, next),
        Some(p) if p.is_alphabetic() => !is_abbreviation(chars, start),
        _ => true,
    }
}

/// A number before `.` that is a list marker (`1.` opening the sentence), part of a date
/// (`1950. 6. 25.`) or followed by another number.
fn numeric_continues(
    chars: &[(usize, char)],
    sentence: usize,
    dot: usize,
    next: Option<char>,
) -> bool {
    if next.is_some_and(|c| c.is_ascii_digit()) {
        return true;
    }
    let mut k = dot;
    while k > 0 && (chars[k - 1].1.is_ascii_digit() || chars[k - 1].1 == ',') {
        k -= 1;
    }
    let before: String = chars[k.saturating_sub(12)..k]
        .iter()
        .map(|&(_, c)| c)
        .collect();
    let before = before.trim_end();
    if chars[sentence.min(k)..k]
        .iter()
        .all(|&(_, c)| c.is_whitespace())
    {
        return true;
    }
    // `YYYY. M. D.`: the number before is itself `<digits>.`.
    let tail: Vec<char> = before
        .chars()
        .rev()
        .take_while(|c| !c.is_whitespace())
        .collect();
    tail.len() >= 2 && tail[0] == '.' && tail[1..].iter().all(|c| c.is_ascii_digit())
}

/// Known abbreviations, case-insensitive, that do not end a sentence when followed by `.`.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "cf", "no", "vol", "pp", "inc", "ltd",
    "co", "corp", "fig", "gen", "col", "lt", "sgt", "capt", "mt", "ft", "rev", "ed", "eds", "op",
    "ca", "approx", "dept", "univ", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "etc", "al",
];

/// The Latin word before the `.` at `dot` is an initial (`J.`), a dotted abbreviation (`U.S.`) or in
/// [`ABBREVIATIONS`].
fn is_abbreviation(chars: &[(usize, char)], dot: usize) -> bool {
    let mut k = dot;
    while k > 0
        && (chars[k - 1].1.is_alphabetic() || chars[k - 1].1 == '.')
        && !is_hangul(chars[k - 1].1)
    {
        k -= 1;
    }
    let word: String = chars[k..dot].iter().map(|&(_, c)| c).collect();
    let single_initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
    single_initial || word.contains('.') || ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

/// After a boundary at `j` (whitespace), a parenthetical that ends the text or is followed by
/// whitespace, holds no terminator and is short, belongs to the sentence before. Returns the
/// boundary to use.
fn attach_parenthetical(chars: &[(usize, char)], j: usize) -> usize {
    let mut k = j;
    while k < chars.len() && chars[k].1.is_whitespace() {
        k += 1;
    }
    if chars.get(k).map(|&(_, c)| c) != Some('(') {
        return j;
    }
    let Some(len) = chars[k + 1..].iter().take(40).position(|&(_, c)| c == ')') else {
        return j;
    };
    let close = k + 1 + len;
    let inner = &chars[k + 1..close];
    if inner.iter().any(|&(_, c)| is_terminator(c) || c == '(') {
        return j;
    }
    let after = close + 1;
    if after == chars.len() {
        return after;
    }
    if chars[after].1.is_whitespace() {
        // Only when a new sentence follows: text that continues is a sentence opening with "(…)".
        after
    } else {
        j
    }
}

/// Hangul syllables and jamo.
pub fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

#[cfg(test)]
mod tests {
    use super::sentences;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(sentences(text), expected, "input: {text}");
    }

    #[test]
    fn korean_endings_and_punctuation() {
        check(
            "그는 학교에 갔다. 비가 왔나요? 정말 멋지죠! 끝",
            &["그는 학교에 갔다.", "비가 왔나요?", "정말 멋지죠!", "끝"],
        );
        check(
            "첫째다。 둘째다？ 셋째다！",
            &["첫째다。", "둘째다？", "셋째다！"],
        );
    }

    #[test]
    fn quotes_brackets_and_citations_stay_with_their_sentence() {
        check(
            "그는 “독재권을 거절하였다.” 이후 떠났다.[2] 다음 문장이다.[참고 3] 끝이다.",
            &[
                "그는 “독재권을 거절하였다.”",
                "이후 떠났다.[2]",
                "다음 문장이다.[참고 3]",
                "끝이다.",
            ],
        );
        check(
            "그는 \"밥을 먹었다. 그리고 잤다.\"라고 말했다. 다음이다.",
            &[
                "그는 \"밥을 먹었다. 그리고 잤다.\"라고 말했다.",
                "다음이다.",
            ],
        );
        check(
            "우승자이기도 하다. (6회 우승) 이후 은퇴했다.",
            &["우승자이기도 하다. (6회 우승)", "이후 은퇴했다."],
        );
    }

    #[test]
    fn numbers_dates_abbreviations_urls() {
        check(
            "원주율은 3.14이다. 버전 v1.2가 나왔다. 1950. 6. 25. 전쟁이 일어났다.",
            &[
                "원주율은 3.14이다.",
                "버전 v1.2가 나왔다.",
                "1950. 6. 25. 전쟁이 일어났다.",
            ],
        );
        check(
            "U.S. Army와 Dr. Kim은 J. R. R. Tolkien을 읽었다. 주소는 https://ko.wikipedia.org/wiki/A.B 이다. 메일은 a.b@c.kr 이다.",
            &[
                "U.S. Army와 Dr. Kim은 J. R. R. Tolkien을 읽었다.",
                "주소는 https://ko.wikipedia.org/wiki/A.B 이다.",
                "메일은 a.b@c.kr 이다.",
            ],
        );
        check(
            "1. 첫 항목이다. 2. 둘째 항목이다.",
            &["1. 첫 항목이다.", "2. 둘째 항목이다."],
        );
    }

    #[test]
    fn ellipsis_and_no_final_punctuation() {
        check(
            "친해지지만… 그녀는 구울! 그러나...",
            &["친해지지만… 그녀는 구울!", "그러나..."],
        );
        check("끝맺음이 없는 문장", &["끝맺음이 없는 문장"]);
        check("   ", &[]);
    }

    #[test]
    fn keeps_every_non_space_character() {
        let text = "가. 나? (다) [라] 《마》 “바… 사.” 1. 2. U.S. 끝";
        let joined: String = sentences(text).concat().split_whitespace().collect();
        let expected: String = text.split_whitespace().collect();
        assert_eq!(joined, expected);
    }
}
