//! Rule-based Korean sentence splitters (no model): `wiki` for edited prose, `general` for any text.
//!
//! A boundary is a terminator (`. ? !`, their full-width forms, `…` after a final ending) followed by
//! whitespace or the end of the text, after any closing quotes, brackets and citation markers such
//! as `[2]` or `[참고 3]`, which stay with the sentence they follow. A `.` is not a boundary after
//! initials and abbreviations (`U.S.`, `Dr.`), in dates and numbered lists (`1950. 6. 25.`, `1.`),
//! before a lowercase word, or inside a bracket or quotation that closes later in the same text.
//! URLs, e-mail addresses and decimals never contain `.`+space, so they are never split. A short
//! parenthetical right after a sentence (`…하다. (6회 우승)`) is kept with it, as Wikipedia's gold
//! splits do. Every non-space character of the input ends up in exactly one sentence.
//!
//! The `general` splitter adds what other genres need (chats, reviews, transcripts, comments): a
//! space after a word that ends in a sentence-final ending also ends the sentence (`…했다 그리고`,
//! `…거든요 그래서`), judged from the ending's last syllables and the consonant under the one
//! before (`했다`, `합니다`, `할까`; not `바다`, `필요`, `보다`), unless the next word continues it
//! (`하다 보면`); emoticons and trailers (`ㅋㅋ`, `^^`, `~`, emoji) stay with the sentence they
//! follow and end it. Not inside brackets or quotations. Measured per genre in BENCHMARKS.md.

/// Which rules split: `Wiki` for edited prose (punctuation ends sentences), `General` for any
/// Korean text (also final endings without punctuation, trailing emoticons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Splitter {
    #[default]
    Wiki,
    General,
}

/// Splits `text` with the wiki rules; see [`sentences_with`].
pub fn sentences(text: &str) -> Vec<&str> {
    sentences_with(text, Splitter::Wiki)
}

/// Splits `text` into sentences, trimmed, in order; text without a boundary is one sentence.
pub fn sentences_with(text: &str, splitter: Splitter) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in boundaries(text, splitter == Splitter::General) {
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
/// With `general`, also at a space after a final ending (see [`ending_boundary`]), and emoticons
/// after a boundary stay with the sentence they follow.
fn boundaries(text: &str, general: bool) -> Vec<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let closes = closing_positions(&chars);
    let mut out = Vec::new();
    let mut depth_open: Vec<char> = Vec::new();
    let mut sentence_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if general
            && c.is_whitespace()
            && depth_open.is_empty()
            && let Some(end) = ending_boundary(&chars, sentence_start, i)
        {
            if end < chars.len() {
                out.push(chars[end].0);
            }
            sentence_start = end;
            i = end + 1;
            continue;
        }
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
        let j = skip_trailers(&chars, i, general);
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
        if !ends_sentence(&chars, sentence_start, term_start, term_end, j, general) {
            i = j;
            continue;
        }
        let mut end = attach_parenthetical(&chars, j);
        if general {
            end = attach_emoticons(&chars, end);
        }
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

/// Skips closing quotes/brackets and citation markers like `[12]`, `[주 3]` after a terminator;
/// with `general` also emoticon characters written against it (`!ㅋㅋ`, `.😂`).
fn skip_trailers(chars: &[(usize, char)], mut j: usize, general: bool) -> usize {
    loop {
        if j < chars.len() && (is_closer(chars[j].1) || general && is_emoticon_char(chars[j].1)) {
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
    general: bool,
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
        return matches!(prev, Some('다' | '요' | '죠' | '까'))
            || general && final_ending(&chars[sentence..start]);
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

/// A space at `ws` ends the sentence begun at `sentence` when the word before it ends in a final
/// ending (after any emoticons written against it) and the next word does not continue it.
/// Returns the boundary: after the emoticon words that follow, if any.
fn ending_boundary(chars: &[(usize, char)], sentence: usize, ws: usize) -> Option<usize> {
    let mut end = ws;
    while end > sentence && is_emoticon_char(chars[end - 1].1) {
        end -= 1;
    }
    let last = chars[sentence..end].last().map(|&(_, c)| c)?;
    let (k, t) = next_word(chars, ws);
    if !is_hangul(last) || k == t {
        return None;
    }
    // Cheap tests first: this runs at every space of the text.
    let attached = end < ws;
    let may_be_emoticon = in_emoticon(chars[k].1);
    if !attached && !may_be_emoticon && !may_end_sentence(last) {
        return None;
    }
    let next = &chars[k..t];
    let start = chars[sentence..end]
        .iter()
        .rposition(|&(_, c)| c.is_whitespace())
        .map_or(sentence, |p| sentence + p + 1);
    let word = &chars[start..end];
    // An emoticon, written against the word or after it, closes what came before.
    let emoticon = attached || may_be_emoticon && is_emoticon_word(next);
    (emoticon || final_ending(word) && !continues(next)).then(|| attach_emoticons(chars, ws))
}

/// The last syllables of the endings [`final_ending`] knows.
fn may_end_sentence(c: char) -> bool {
    matches!(
        c,
        '다' | '요'
            | '죠'
            | '까'
            | '가'
            | '네'
            | '니'
            | '어'
            | '아'
            | '지'
            | '군'
            | '냐'
            | '라'
            | '오'
            | '자'
            | '래'
            | '줘'
            | '나'
            | '든'
            | '야'
            | '해'
    )
}

/// The bounds of the first word at or after `from` (`(k, k)` at the end of the text).
fn next_word(chars: &[(usize, char)], from: usize) -> (usize, usize) {
    let mut k = from;
    while k < chars.len() && chars[k].1.is_whitespace() {
        k += 1;
    }
    let mut t = k;
    while t < chars.len() && !chars[t].1.is_whitespace() {
        t += 1;
    }
    (k, t)
}

/// Whether the characters of `word` end with (`rev`: read backwards) those of `s`.
fn ends_with(word: &[(usize, char)], s: &str) -> bool {
    let mut w = word.iter().rev();
    s.chars()
        .rev()
        .all(|c| w.next().is_some_and(|&(_, d)| d == c))
}

/// The next word continues the sentence: `하다 보면`, `먹었다 생각한다`, `할까 봐`, or is
/// punctuation that belongs to it (`했다 :`).
fn continues(next: &[(usize, char)]) -> bool {
    next.first()
        .is_some_and(|(_, c)| matches!(c, ':' | ';' | ',' | ')' | ']' | '}' | '·' | '-'))
        || CONTINUATIONS.iter().any(|w| {
            let mut n = next.iter();
            w.chars().all(|c| n.next().is_some_and(|&(_, d)| d == c))
        })
}

/// Words that continue a sentence after a final form: auxiliaries and verbs of thinking and saying.
const CONTINUATIONS: &[&str] = &[
    "보니",
    "보면",
    "보다가",
    "보니까",
    "봐",
    "싶",
    "시피",
    "생각",
    "두려",
    "걱정",
    "해도",
    "하더라도",
    "하는",
    "하고",
    "말까",
    "말고",
    "불리",
    "불린",
    "부르",
    "부른",
];

/// Nouns ending in 요 (필요, 중요, 주요, ...): the syllable before it.
const NOUN_YO: &[char] = &[
    '필', '중', '주', '수', '강', '소', '동', '개', '화', '요', '교', '담',
];

/// Stems whose plain form (`…다`) ends sentences in written Korean, besides the tenses (했다) and
/// the present (한다, 먹는다): the copula (이다, 아니다), 하다, 되다 and common adjectives. Other
/// syllables before a final 다 are mostly nouns and particles (바다, 캐나다, 최다, 보다, 마다).
const PLAIN_STEMS: &[char] = &[
    '이', '니', '하', '되', '같', '않', '많', '좋', '싶', '높', '낮', '넓', '좁', '깊', '쉽', '렵',
    '춥', '덥', '싫', '옳', '짧', '길', '멀', '작', '적', '크', '쁘', '프', '르', '롭', '답', '있',
    '없', '지', '거',
];

/// Names that are words of their own and end like a final -ㄴ다 (not 내린다, 버린다).
const NOUNS_DA: &[&str] = &["린다", "완다", "우간다", "르완다", "아젠다", "브렌다"];

/// Indefinite pronouns ending in -ㄴ가, which open sentences rather than end them.
const PRONOUNS_GA: &[&str] = &["누군가", "언젠가", "어딘가", "무언가", "뭔가"];

/// The final consonant (jongseong index 0-27) of a Hangul syllable, `None` for other characters.
fn batchim(c: char) -> Option<u32> {
    matches!(c, '가'..='힣').then(|| (c as u32 - 0xAC00) % 28)
}

const NIEUN: u32 = 4;
const RIEUL: u32 = 8;
const BIEUP: u32 = 17;
const SSANG_SIOT: u32 = 20;

/// Whether `word` (no trailing punctuation) ends in a sentence-final ending: -다 after a tense, the
/// present or a plain stem (했다, 한다, 합니다, 크다), -요 but not in nouns (필요), -죠,
/// -까 (할까, 합니까), -ㄴ가 (무엇인가), -네, -니/-군/-어/-지 after a tense (했니, 했군, 했어,
/// 하겠지), -냐, -라 (해라), -지 말자, -ㄹ래, -줘, -시오, -구나, -거든, -잖아, -거야.
fn final_ending(word: &[(usize, char)]) -> bool {
    let n = word.len();
    let Some(&(_, last)) = word.last() else {
        return false;
    };
    let prev = (n >= 2).then(|| word[n - 2].1);
    let before = (n >= 3).then(|| word[n - 3].1);
    let jong = |c: Option<char>| c.and_then(batchim);
    let formal = prev == Some('니') && jong(before) == Some(BIEUP);
    let tense = jong(prev) == Some(SSANG_SIOT);
    let prev_in = |set: &str| prev.is_some_and(|p| set.contains(p));
    let prev_in_stems = prev.is_some_and(|p| PLAIN_STEMS.contains(&p));
    let ends = |s: &str| ends_with(word, s);
    match last {
        '다' => {
            (tense || formal || jong(prev) == Some(NIEUN) || prev_in_stems)
                && !NOUNS_DA
                    .iter()
                    .any(|w| w.chars().eq(word.iter().map(|&(_, c)| c)))
        }
        '요' => prev.is_some_and(|p| !NOUN_YO.contains(&p)),
        '죠' => n >= 2,
        '까' => formal || jong(prev) == Some(RIEUL),
        '가' => prev_in("인는은던한된떤") && !PRONOUNS_GA.iter().any(|p| ends(p)),
        '네' => tense || prev_in("하되좋많같않싫는이"),
        '니' => tense,
        '어' | '아' | '지' => tense && prev != Some('있') || ends("잖아"),
        '자' => prev == Some('말'),
        '래' => jong(prev) == Some(RIEUL),
        '줘' => n >= 2,
        '군' => tense || prev_in("는하이좋같많거"),
        '냐' => tense || prev_in("느이하되뭐니"),
        '라' => prev_in("어아여해거"),
        '오' => prev == Some('시'),
        _ => ends("구나") || ends("거든") || ends("거야") || ends("뭐야") || ends("야해"),
    }
}

/// Characters of emoticons and expressive trailers: Hangul jamo (ㅋㅋ, ㅠㅠ), `^ ~ ; :` and the like,
/// and pictographs (emoji, hearts, stars).
fn is_emoticon_char(c: char) -> bool {
    matches!(c,
        '\u{3131}'..='\u{318E}'
        | '^' | '~' | '_' | '♡' | '♥' | '☆' | '★' | '♪'
        | '\u{2600}'..='\u{27BF}'
        | '\u{1F000}'..='\u{1FAFF}'
        | '\u{FE0F}' | '\u{200D}')
}

/// A word that is an emoticon: emoticon characters, or ASCII faces such as `:)`, `T_T`, `:D`.
fn is_emoticon_word(word: &[(usize, char)]) -> bool {
    let all = word.iter().all(|&(_, c)| is_emoticon_char(c));
    let face = (2..=4).contains(&word.len())
        && word.iter().any(|(_, c)| matches!(c, ':' | ';' | '^' | '_'))
        && word.iter().all(|&(_, c)| in_emoticon(c));
    !word.is_empty() && (all || face)
}

/// A character an emoticon word may hold: an emoticon character or one of an ASCII face's.
fn in_emoticon(c: char) -> bool {
    is_emoticon_char(c) || matches!(c, ':' | ')' | '(' | 'D' | 'P' | 'T' | 'o' | 'O' | '-' | '*')
}

/// Moves a boundary at whitespace `j` past the emoticon words that follow it (`좋다 ㅋㅋ 다음`).
fn attach_emoticons(chars: &[(usize, char)], mut j: usize) -> usize {
    loop {
        let (k, t) = next_word(chars, j);
        if k == t || !is_emoticon_word(&chars[k..t]) {
            return j;
        }
        j = t;
    }
}

/// Hangul syllables and jamo.
pub fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

#[cfg(test)]
mod tests {
    use super::{Splitter, sentences, sentences_with};

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
    fn general_splitter_ends_sentences_without_punctuation_and_keeps_emoticons() {
        fn general(text: &str) -> Vec<&str> {
            sentences_with(text, Splitter::General)
        }
        assert_eq!(
            general("밥을 먹었다 그리고 잤어요 ㅋㅋ 내일 또 갈까 생각 중이에요~ 정말 좋네 ^^"),
            [
                "밥을 먹었다",
                "그리고 잤어요 ㅋㅋ",
                "내일 또 갈까 생각 중이에요~",
                "정말 좋네 ^^"
            ]
        );
        // Not endings: nouns (필요, 바다), particles (보다), connectives, quotations.
        assert_eq!(
            general("그 일은 필요 없다 바다 위에서 보다 큰 배를 봤다 그는 \"가자 이제\"라고 했다"),
            [
                "그 일은 필요 없다",
                "바다 위에서 보다 큰 배를 봤다",
                "그는 \"가자 이제\"라고 했다"
            ]
        );
        // The wiki splitter keeps these as one sentence.
        assert_eq!(sentences("밥을 먹었다 그리고 잤다").len(), 1);
    }

    #[test]
    fn keeps_every_non_space_character() {
        let text = "가. 나? (다) [라] 《마》 “바… 사.” 1. 2. U.S. 끝";
        let joined: String = sentences(text).concat().split_whitespace().collect();
        let expected: String = text.split_whitespace().collect();
        assert_eq!(joined, expected);
    }
}
