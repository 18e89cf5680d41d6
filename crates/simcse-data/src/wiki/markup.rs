//! Wikitext -> plain prose paragraphs.
//!
//! Passes, in an order that respects nesting: comments; elements whose content is not prose (`<ref>`,
//! `<math>`, `<gallery>`, ...); templates `{{…}}` and tables `{|…|}` (nested, removed, except
//! `{{lang|xx|text}}` which keeps its text); links `[[…]]` (files, categories and interlanguage
//! links removed, `[[target|label]]` -> label); external links `[url label]` -> label; remaining
//! HTML tags; bold/italic quotes; entities. Lines are then classified: headings, list items, table
//! rows, rules and preformatted lines end a paragraph and are dropped, so they never become
//! sentences. Unclosed markup is kept as literal text, as MediaWiki renders it.

/// Elements removed with everything inside them.
const DROPPED_ELEMENTS: &[&str] = &[
    "ref",
    "math",
    "gallery",
    "chem",
    "ce",
    "score",
    "timeline",
    "syntaxhighlight",
    "source",
    "pre",
    "graph",
    "mapframe",
    "templatedata",
    "imagemap",
    "hiero",
    "references",
    "table",
    "code",
];

/// Link namespaces whose links are not prose: files, images, media and categories.
const DROPPED_NAMESPACES: &[&str] = &[
    "파일",
    "file",
    "그림",
    "image",
    "미디어",
    "media",
    "분류",
    "category",
];

/// Cleans a page's wikitext into paragraphs of plain text (whitespace collapsed, never empty).
pub fn paragraphs(wikitext: &str) -> Vec<String> {
    let text = strip_comments(wikitext);
    let text = strip_elements(&text);
    let text = strip_templates(&text);
    let text = links(&text);
    let text = external_links(&text);
    let text = html_tags(&text);
    let text = text
        .replace("'''''", "")
        .replace("'''", "")
        .replace("''", "");
    let text = entities(&text);
    let mut out = Vec::new();
    let mut para = String::new();
    for line in text.lines() {
        let t = line.trim();
        let structural = t.is_empty()
            || line.starts_with(' ')
            || t.starts_with(['=', '*', '#', ':', ';', '|', '!'])
            || t.starts_with("----")
            || t.starts_with("{|")
            || t.starts_with("__")
            || numbered_item(t);
        if structural {
            flush(&mut para, &mut out);
        } else {
            para.push(' ');
            para.push_str(t);
        }
    }
    flush(&mut para, &mut out);
    out
}

/// A hand-numbered list line (`1. …`, `2) …`), which MediaWiki renders as text but is a list.
fn numbered_item(t: &str) -> bool {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && matches!(
            t.as_bytes().get(digits..digits + 2),
            Some([b'.' | b')', b' '])
        )
}

fn flush(para: &mut String, out: &mut Vec<String>) {
    let collapsed = para.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapsed.is_empty() {
        out.push(collapsed);
    }
    para.clear();
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i..].find("-->") {
            Some(j) => rest = &rest[i + j + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// ASCII-case-insensitive `find` of an ASCII needle.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// If `s` starts with an opening tag of `name` (`<name>`, `<name attr=…>` or `<name …/>`), returns
/// the tag's length and whether it closes itself.
fn open_tag(s: &str, name: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    let n = name.len();
    if b.len() < n + 2 || b[0] != b'<' || !b[1..=n].eq_ignore_ascii_case(name.as_bytes()) {
        return None;
    }
    if !matches!(b[n + 1], b'>' | b' ' | b'/' | b'\t' | b'\n') {
        return None;
    }
    let end = s.find('>')?;
    Some((end + 1, b[end - 1] == b'/'))
}

fn strip_elements(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let b = s.as_bytes();
    'outer: while i < s.len() {
        if b[i] == b'<' {
            for name in DROPPED_ELEMENTS {
                if let Some((len, self_closing)) = open_tag(&s[i..], name) {
                    if self_closing {
                        i += len;
                        continue 'outer;
                    }
                    let close = format!("</{name}");
                    if let Some(j) = find_ci(&s[i + len..], &close) {
                        let after = i + len + j;
                        i = s[after..].find('>').map_or(s.len(), |k| after + k + 1);
                        continue 'outer;
                    }
                }
            }
        }
        let ch = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch]);
        i += ch;
    }
    out
}

/// Removes `{{…}}` and `{|…|}` with nesting; keeps the text of `{{lang|xx|text}}`.
fn strip_templates(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut stack: Vec<(u8, usize)> = Vec::new(); // (kind, start offset)
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        let pair = &b[i..i + 2];
        let line_start = i == 0 || b[i - 1] == b'\n';
        if pair == b"{{" {
            if stack.is_empty() {
                out.push_str(&s[copied..i]);
            }
            stack.push((b'{', i));
            i += 2;
        } else if pair == b"{|" && line_start {
            if stack.is_empty() {
                out.push_str(&s[copied..i]);
            }
            stack.push((b'|', i));
            i += 2;
        } else if pair == b"}}" && stack.last().is_some_and(|t| t.0 == b'{') {
            let (_, start) = stack.pop().unwrap_or_default();
            i += 2;
            if stack.is_empty() {
                out.push_str(&lang_text(&s[start + 2..i - 2]));
                copied = i;
            }
        } else if pair == b"|}" && stack.last().is_some_and(|t| t.0 == b'|') {
            stack.pop();
            i += 2;
            if stack.is_empty() {
                copied = i;
            }
        } else {
            i += 1;
        }
    }
    match stack.first() {
        None => out.push_str(&s[copied..]),
        // Unclosed: the opener is literal text; what follows it is cleaned as usual.
        Some(&(_, start)) => {
            out.push_str(&s[start..start + 2]);
            out.push_str(&strip_templates(&s[start + 2..]));
        }
    }
    out
}

/// `lang|en|text` (and `lang-en|text`) -> `text`; any other template -> nothing.
fn lang_text(inner: &str) -> String {
    if inner.contains(['{', '[']) {
        return String::new();
    }
    let parts: Vec<&str> = inner.split('|').collect();
    let name = parts[0].trim().to_ascii_lowercase();
    match (name.as_str(), parts.len()) {
        ("lang", 3) => parts[2].trim().to_string(),
        (n, 2) if n.starts_with("lang-") => parts[1].trim().to_string(),
        _ => String::new(),
    }
}

/// Finds the `]]` matching the `[[` at the start of `s`, counting nested `[[`.
fn matching_link_end(s: &[u8]) -> Option<usize> {
    let mut depth = 0;
    let mut i = 0;
    while i + 1 < s.len() {
        match &s[i..i + 2] {
            b"[[" => {
                depth += 1;
                i += 2;
            }
            b"]]" => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("[[") {
        out.push_str(&rest[..i]);
        let Some(end) = matching_link_end(&rest.as_bytes()[i..]) else {
            out.push_str(&rest[i..i + 2]);
            rest = &rest[i + 2..];
            continue;
        };
        out.push_str(&link_text(&rest[i + 2..i + end - 2]));
        rest = &rest[i + end..];
    }
    out.push_str(rest);
    out
}

/// The visible text of a link's inside, or nothing for files, categories and interlanguage links.
fn link_text(inner: &str) -> String {
    let (target, label) = match split_top_level_pipe(inner) {
        Some(k) => (&inner[..k], Some(&inner[k + 1..])),
        None => (inner, None),
    };
    if let Some((ns, _)) = target.split_once(':') {
        let ns = ns.trim().to_lowercase();
        let interlanguage =
            (2..=12).contains(&ns.len()) && ns.bytes().all(|c| c.is_ascii_lowercase() || c == b'-');
        if DROPPED_NAMESPACES.contains(&ns.as_str()) || interlanguage {
            return String::new();
        }
    }
    match label {
        Some(l) if !l.trim().is_empty() => links(l),
        _ => target.trim_start_matches(':').to_string(),
    }
}

fn split_top_level_pipe(inner: &str) -> Option<usize> {
    let mut depth = 0i32;
    let b = inner.as_bytes();
    for (k, &c) in b.iter().enumerate() {
        match c {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b'|' if depth == 0 => return Some(k),
            _ => {}
        }
    }
    None
}

/// Rewrites every span that starts with `marker`: `f` gets the text after the marker and returns the
/// replacement and how many bytes of that text it consumed, or `None` to keep the marker as text.
fn rewrite(s: &str, marker: char, f: impl Fn(&str) -> Option<(String, usize)>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i]);
        let after = &rest[i + marker.len_utf8()..];
        match f(after) {
            Some((replacement, used)) => {
                out.push_str(&replacement);
                rest = &after[used..];
            }
            None => {
                out.push(marker);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[http://… label]` -> `label`; `[http://…]` -> nothing. Bare URLs stay.
fn external_links(s: &str) -> String {
    rewrite(s, '[', |after| {
        let is_url = ["http://", "https://", "//", "ftp://", "mailto:"]
            .iter()
            .any(|p| {
                after
                    .as_bytes()
                    .get(..p.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
            });
        let j = after
            .find([']', '\n'])
            .filter(|&j| is_url && after.as_bytes()[j] == b']')?;
        let label = after[..j].split_once(' ').map_or("", |(_, l)| l.trim());
        Some((label.to_string(), j + 1))
    })
}

/// Removes HTML-like tags (`<br>` becomes a space), keeping their content.
fn html_tags(s: &str) -> String {
    rewrite(s, '<', |after| {
        let name: String = after
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let is_tag = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let j = after
            .find(['>', '\n', '<'])
            .filter(|&j| is_tag && after.as_bytes()[j] == b'>')?;
        let replacement = if name.eq_ignore_ascii_case("br") {
            " "
        } else {
            ""
        };
        Some((replacement.to_string(), j + 1))
    })
}

/// HTML entities that survive XML unescaping in wikitext (`&nbsp;`, `&#91;`, ...).
fn entities(s: &str) -> String {
    rewrite(s, '&', |after| {
        let j = after.find(';').filter(|&j| j <= 10)?;
        entity(&after[..j]).map(|c| (c.to_string(), j + 1))
    })
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "middot" => '·',
        "times" => '×',
        "minus" => '−',
        "deg" => '°',
        "laquo" => '«',
        "raquo" => '»',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::paragraphs;

    #[test]
    fn removes_non_prose_and_keeps_labels() {
        let text = "{{정보상자 나라|이름={{lang|en|Korea}}|인구=5천만}}\n\
'''대한민국'''(大韓民國)은 [[동아시아]]의 [[한반도|반도]]에 있는 나라이다.<ref>{{cite web|url=x}}</ref> \
수도는 [[서울특별시|서울]]이다.<ref name=\"a\" />\n\
[[파일:Flag.svg|섬네일|[[국기]]의 모습]]\n\n\
== 역사 ==\n\
* 목록 항목\n\
{| class=\"wikitable\"\n|-\n| 셀 || {{틀}}\n|}\n\
<!-- 주석 -->고조선은 [http://example.com 기록]에 따르면 오래되었다.<math>x^2</math> 다음&nbsp;문장.<br/>끝.\n\
{{lang|en|Hello}} 세계.\n\
[[분류:국가]]\n[[en:South Korea]]";
        assert_eq!(
            paragraphs(text),
            vec![
                "대한민국(大韓民國)은 동아시아의 반도에 있는 나라이다. 수도는 서울이다.",
                "고조선은 기록에 따르면 오래되었다. 다음 문장. 끝. Hello 세계."
            ]
        );
    }

    #[test]
    fn unclosed_markup_is_literal() {
        assert_eq!(paragraphs("가 {{ 나 [[다"), vec!["가 {{ 나 [[다"]);
        assert_eq!(
            paragraphs("a < b 이고 c > d 이다."),
            vec!["a < b 이고 c > d 이다."]
        );
    }
}
