//! Pay v2 XML: a flat map of the direct children of the root element, parsed safely (§4.9), and
//! replies written as `<xml>` with CDATA.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Largest request body the Pay endpoints accept (WeChat's documents are a few KiB).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlError {
    /// The body is empty (`POST_DATA_EMPTY`).
    Empty,
    /// The body is larger than [`MAX_BODY`].
    TooLarge,
    /// The body is not UTF-8 (`NOT_UTF8`).
    NotUtf8,
    /// A DTD or entity declaration: refused outright (XXE).
    Dtd,
    /// Not well-formed, wrong root, duplicate field, unknown entity… (`XML_FORMAT_ERROR`).
    Format(String),
}

impl XmlError {
    /// The `return_msg` WeChat-style for this failure.
    pub(crate) fn return_msg(&self) -> &'static str {
        match self {
            Self::Empty => "post数据为空",
            Self::NotUtf8 => "编码格式错误，请使用UTF-8编码",
            Self::TooLarge | Self::Dtd | Self::Format(_) => "XML格式错误",
        }
    }
}

/// Whether `haystack` contains `needle`, ignoring ASCII case.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Parses `body` into the map of the direct children of `<root>` (`xml` for requests and
/// notifications, `root` for a decrypted refund `req_info`).
///
/// Refuses bodies over [`MAX_BODY`], non-UTF-8 bodies, any `<!DOCTYPE` or `<!ENTITY`, entity
/// references other than the five predefined ones and character references, a root of another
/// name, duplicate fields and anything after the root. Nested elements are ignored (their text
/// is not part of the parent's value).
pub(crate) fn parse(body: &[u8], root: &str) -> Result<BTreeMap<String, String>, XmlError> {
    if body.len() > MAX_BODY {
        return Err(XmlError::TooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(XmlError::Empty);
    }
    if contains_ignore_case(body, b"<!DOCTYPE") || contains_ignore_case(body, b"<!ENTITY") {
        return Err(XmlError::Dtd);
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let fmt = |e: &dyn std::fmt::Display| XmlError::Format(e.to_string());

    let mut map = BTreeMap::new();
    // 0 = before the root, 1 = inside the root, 2 = inside a field, >2 = nested deeper.
    let mut depth = 0usize;
    let mut root_done = false;
    let mut field: Option<(String, String)> = None;
    loop {
        let event = reader.read_event().map_err(|e| fmt(&e))?;
        match event {
            Event::Eof => break,
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Start(start) => {
                let name = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| XmlError::NotUtf8)?
                    .to_owned();
                if root_done {
                    return Err(XmlError::Format("content after the root element".into()));
                }
                match depth {
                    0 if name == root => {}
                    0 => {
                        return Err(XmlError::Format(format!(
                            "root element is <{name}>, expected <{root}>"
                        )));
                    }
                    1 => field = Some((name, String::new())),
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(start) => {
                let name = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| XmlError::NotUtf8)?
                    .to_owned();
                if root_done {
                    return Err(XmlError::Format("content after the root element".into()));
                }
                match depth {
                    0 if name == root => root_done = true,
                    0 => {
                        return Err(XmlError::Format(format!(
                            "root element is <{name}>, expected <{root}>"
                        )));
                    }
                    1 => insert(&mut map, name, String::new())?,
                    _ => {}
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    0 => root_done = true,
                    1 => {
                        if let Some((name, value)) = field.take() {
                            insert(&mut map, name, value)?;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| fmt(&e))?;
                match depth {
                    0 if !s.trim().is_empty() => {
                        return Err(XmlError::Format("text outside of the root element".into()));
                    }
                    2 => {
                        if let Some((_, value)) = field.as_mut() {
                            value.push_str(&s);
                        }
                    }
                    _ => {}
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| fmt(&e))?;
                match depth {
                    2 => {
                        if let Some((_, value)) = field.as_mut() {
                            value.push_str(&s);
                        }
                    }
                    0 => return Err(XmlError::Format("text outside of the root element".into())),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| fmt(&e))?
                } else {
                    let name = r.decode().map_err(|e| fmt(&e))?;
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .and_then(|s| s.chars().next())
                };
                let Some(c) = resolved else {
                    return Err(XmlError::Format("unknown entity reference".into()));
                };
                if depth == 0 {
                    return Err(XmlError::Format("text outside of the root element".into()));
                }
                if depth == 2 {
                    if let Some((_, value)) = field.as_mut() {
                        value.push(c);
                    }
                }
            }
        }
    }
    if !root_done || depth != 0 {
        return Err(XmlError::Format(format!(
            "missing or unclosed <{root}> element"
        )));
    }
    Ok(map)
}

fn insert(map: &mut BTreeMap<String, String>, name: String, value: String) -> Result<(), XmlError> {
    if map.contains_key(&name) {
        return Err(XmlError::Format(format!("duplicate field <{name}>")));
    }
    map.insert(name, value);
    Ok(())
}

/// Writes `fields` as `<root>` with one child each, values in CDATA (pure numbers bare, as
/// WeChat does).
pub(crate) fn write<'a>(
    root: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut out = format!("<{root}>");
    for (k, v) in fields {
        out.push('<');
        out.push_str(k);
        out.push('>');
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(v);
        } else {
            out.push_str("<![CDATA[");
            out.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(k);
        out.push('>');
    }
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    out
}

/// Writes a flat map as `<xml>`.
pub(crate) fn write_map(fields: &BTreeMap<String, String>) -> String {
    write("xml", fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cdata_text_and_entities() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<xml>
  <appid><![CDATA[wx1]]></appid>
  <total_fee>1</total_fee>
  <body>a &amp; b &#x4e2d;</body>
  <attach/>
  <!-- comment -->
  <detail><![CDATA[{"a":"]]]]><![CDATA[>"}]]></detail>
</xml>"#;
        let map = parse(body, "xml").expect("parses");
        assert_eq!(map["appid"], "wx1");
        assert_eq!(map["total_fee"], "1");
        assert_eq!(map["body"], "a & b 中");
        assert_eq!(map["attach"], "");
        assert_eq!(map["detail"], r#"{"a":"]]>"}"#);
        assert_eq!(map.len(), 5);
    }

    #[test]
    fn nested_elements_are_ignored() {
        let map = parse(b"<xml><a>1<b>2</b></a><c>3</c></xml>", "xml").expect("parses");
        assert_eq!(map["a"], "1");
        assert_eq!(map["c"], "3");
        assert!(!map.contains_key("b"));
    }

    #[test]
    fn refuses_xxe() {
        let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><appid>&xxe;</appid></xml>"#;
        assert_eq!(parse(xxe, "xml"), Err(XmlError::Dtd));
        assert_eq!(
            parse(b"<xml><!entity x 'y'></xml>", "xml"),
            Err(XmlError::Dtd)
        );
        // An undeclared entity is refused too.
        assert!(matches!(
            parse(b"<xml><a>&xxe;</a></xml>", "xml"),
            Err(XmlError::Format(_))
        ));
    }

    #[test]
    fn refuses_large_bodies() {
        let mut body = b"<xml><a>".to_vec();
        body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        body.extend_from_slice(b"</a></xml>");
        assert_eq!(parse(&body, "xml"), Err(XmlError::TooLarge));
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(parse(b"", "xml"), Err(XmlError::Empty));
        assert_eq!(parse(b"  \n", "xml"), Err(XmlError::Empty));
        assert_eq!(
            parse(b"<xml><a>\xff</a></xml>", "xml"),
            Err(XmlError::NotUtf8)
        );
        for bad in [
            &b"<xml><a>1</a>"[..],
            b"<xml><a>1</b></xml>",
            b"<root><a>1</a></root>",
            b"<xml><a>1</a><a>2</a></xml>",
            b"<xml></xml><xml></xml>",
            b"hello",
            b"<xml><a>1</a></xml>trailing",
        ] {
            assert!(
                matches!(parse(bad, "xml"), Err(XmlError::Format(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse(b"<root><a>1</a></root>", "root").is_ok());
    }

    #[test]
    fn write_round_trips() {
        let mut map = BTreeMap::new();
        map.insert("return_code".to_owned(), "SUCCESS".to_owned());
        map.insert("total_fee".to_owned(), "100".to_owned());
        map.insert("body".to_owned(), "<tricky> ]]> & stuff".to_owned());
        map.insert("empty".to_owned(), String::new());
        let text = write_map(&map);
        assert!(text.starts_with("<xml>"));
        assert!(text.contains("<total_fee>100</total_fee>"));
        assert!(text.contains("<return_code><![CDATA[SUCCESS]]></return_code>"));
        assert_eq!(parse(text.as_bytes(), "xml").expect("parses"), map);
    }
}
