//! Streaming MediaWiki XML export reader: one [`Page`] at a time, memory bounded by the largest page.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::Event;

/// One `<page>` of a MediaWiki export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub id: String,
    pub title: String,
    /// `<ns>`: 0 for articles.
    pub ns: String,
    /// The page has a `<redirect>` element.
    pub redirect: bool,
    /// Wikitext of the (latest) revision.
    pub text: String,
}

/// Iterator over the pages of an export; the first error ends it.
pub struct Pages<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    done: bool,
    /// Title of the last complete page, to name where damage starts.
    last_title: Option<String>,
}

/// Which text field the reader is inside.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    None,
    Title,
    Ns,
    Id,
    Text,
}

impl<R: BufRead> Pages<R> {
    pub fn new(input: R) -> Self {
        Pages {
            reader: Reader::from_reader(input),
            buf: Vec::with_capacity(1 << 16),
            done: false,
            last_title: None,
        }
    }

    /// Bytes of XML consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn error(&self, message: impl std::fmt::Display) -> String {
        fail(&self.reader, &self.last_title, message)
    }

    fn next_page(&mut self) -> Result<Option<Page>, String> {
        let mut page: Option<Page> = None;
        let mut field = Field::None;
        let mut id_seen = false;
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(quick_xml::Error::Io(e)) => return Err(e.to_string()),
                Err(e) => return Err(self.error(e)),
            };
            match event {
                Event::Start(e) => match (e.local_name().as_ref(), page.as_mut()) {
                    (b"page", None) => page = Some(Page::default()),
                    (b"title", Some(_)) => field = Field::Title,
                    (b"ns", Some(_)) => field = Field::Ns,
                    // The page's own id comes first; revision and contributor ids follow.
                    (b"id", Some(_)) if !id_seen => field = Field::Id,
                    (b"text", Some(_)) => field = Field::Text,
                    (b"redirect", Some(p)) => p.redirect = true,
                    _ => {}
                },
                Event::Empty(e) => {
                    if let (b"redirect", Some(p)) = (e.local_name().as_ref(), page.as_mut()) {
                        p.redirect = true;
                    }
                }
                Event::End(e) => match e.local_name().as_ref() {
                    b"page" => {
                        let p = page
                            .take()
                            .ok_or_else(|| self.error("</page> without <page>"))?;
                        self.last_title = Some(p.title.clone());
                        return Ok(Some(p));
                    }
                    b"id" if field == Field::Id => {
                        id_seen = true;
                        field = Field::None;
                    }
                    _ => field = Field::None,
                },
                Event::Text(t) if field != Field::None => {
                    let s = t
                        .decode()
                        .map_err(|e| fail(&self.reader, &self.last_title, e))?;
                    push(&mut page, field, &s);
                }
                Event::CData(t) if field != Field::None => {
                    let s = t
                        .decode()
                        .map_err(|e| fail(&self.reader, &self.last_title, e))?;
                    push(&mut page, field, &s);
                }
                Event::GeneralRef(r) if field != Field::None => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r
                                .decode()
                                .map_err(|e| fail(&self.reader, &self.last_title, e))?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| {
                                    fail(
                                        &self.reader,
                                        &self.last_title,
                                        format!("unknown entity &{name};"),
                                    )
                                })?
                                .to_string()
                        }
                        Err(e) => return Err(fail(&self.reader, &self.last_title, e)),
                    };
                    push(&mut page, field, &resolved);
                }
                Event::Eof => {
                    return match page {
                        Some(p) => Err(self.error(format!(
                            "the input ends inside page {:?}: truncated",
                            p.title
                        ))),
                        None => Ok(None),
                    };
                }
                _ => {}
            }
        }
    }
}

/// An error message naming the XML byte offset and the last complete page.
fn fail<R>(
    reader: &Reader<R>,
    last_title: &Option<String>,
    message: impl std::fmt::Display,
) -> String {
    let after = match last_title {
        Some(t) => format!(" (after page {t:?})"),
        None => " (before the first page)".to_string(),
    };
    format!("XML byte {}{after}: {message}", reader.error_position())
}

fn push(page: &mut Option<Page>, field: Field, s: &str) {
    let Some(p) = page else { return };
    match field {
        Field::Title => p.title.push_str(s),
        Field::Ns => p.ns.push_str(s),
        Field::Id => p.id.push_str(s),
        Field::Text => p.text.push_str(s),
        Field::None => {}
    }
}

impl<R: BufRead> Iterator for Pages<R> {
    type Item = Result<Page, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_page().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::Pages;

    #[test]
    fn reads_pages_entities_and_reports_damage() {
        let xml = r#"<mediawiki><siteinfo><sitename>위키백과</sitename></siteinfo>
<page><title>가 &amp; 나</title><ns>0</ns><id>7</id><revision><id>99</id>
<text xml:space="preserve">본문 &lt;ref&gt; &#44032;</text></revision></page>
<page><title>넘김</title><ns>0</ns><id>8</id><redirect title="가" /><revision><id>100</id><text>#넘겨주기 [[가]]</text></revision></page>
<page><title>깨짐</title><ns>0</ns><id>9</id><revision><text>끝나지 않은"#;
        let pages: Vec<_> = Pages::new(xml.as_bytes()).collect();
        assert_eq!(pages.len(), 3);
        let first = pages[0].as_ref().unwrap();
        assert_eq!(
            (first.id.as_str(), first.title.as_str(), first.ns.as_str()),
            ("7", "가 & 나", "0")
        );
        assert_eq!(first.text, "본문 <ref> 가");
        assert!(!first.redirect);
        assert!(pages[1].as_ref().unwrap().redirect);
        let err = pages[2].as_ref().unwrap_err();
        assert!(err.contains("after page \"넘김\""), "{err}");
        assert!(err.contains("XML byte"), "{err}");
    }
}
