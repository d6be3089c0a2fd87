//! The flat XML of WeChat Pay API v2: `<xml><name>value</name>…</xml>`.
//!
//! Parsing is deliberately strict, after WeChat Pay's 2018 XXE advisory (protocol reference
//! §4.9): bodies over a size limit, `<!DOCTYPE`, `<!ENTITY`, processing instructions other than
//! the XML declaration, entity references other than XML's five and character references,
//! nested elements inside a field, duplicate fields, and anything outside the root element are
//! all refused with [`Error::Xml`]. Only the direct children of the root (`<xml>`, or `<root>`
//! inside a refund notification's `req_info`) are read, into an ordered flat map.
//!
//! Writing puts plain values as text and everything else in CDATA, splitting `]]>` safely.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::{Error, Result};

/// The largest XML body accepted from a notification or `req_info` (64 KiB).
pub const MAX_NOTIFICATION_BODY: usize = 64 * 1024;
/// The largest XML body accepted in a reply from WeChat Pay (256 KiB: refund queries list many
/// refunds).
pub(crate) const MAX_REPLY_BODY: usize = 256 * 1024;
/// The most fields a notification (or its `req_info`) may have. WeChat's payment notification
/// has about 30, plus three per coupon; 256 leaves room for anything WeChat sends and bounds the
/// work spent on a body before its signature is checked.
pub const MAX_NOTIFICATION_FIELDS: usize = 256;
/// The most fields a reply may have: a refund query lists up to 50 refunds of about 15 fields
/// each, plus their coupons.
pub(crate) const MAX_REPLY_FIELDS: usize = 4096;

/// The size limits of one kind of document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most bytes.
    pub(crate) bytes: usize,
    /// The most fields.
    pub(crate) fields: usize,
}

impl Limits {
    /// A notification or its `req_info`.
    pub(crate) const NOTIFICATION: Limits = Limits {
        bytes: MAX_NOTIFICATION_BODY,
        fields: MAX_NOTIFICATION_FIELDS,
    };
    /// A reply from WeChat Pay.
    pub(crate) const REPLY: Limits = Limits {
        bytes: MAX_REPLY_BODY,
        fields: MAX_REPLY_FIELDS,
    };
}

/// The fields of one WeChat Pay v2 message, in the order they appeared, all as strings.
///
/// Built by parsing a reply or notification (then every received field is here, known or not,
/// which is what signature verification needs) or from pairs for a request.
///
/// ```
/// use wechat_core::pay::v2::PayFields;
///
/// let fields = PayFields::parse(b"<xml><return_code><![CDATA[SUCCESS]]></return_code><total_fee>1</total_fee></xml>")?;
/// assert_eq!(fields.get("return_code"), Some("SUCCESS"));
/// assert_eq!(fields.get("total_fee"), Some("1"));
/// assert!(PayFields::parse(b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml>&e;</xml>").is_err());
/// # Ok::<(), wechat_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayFields {
    fields: Vec<(String, String)>,
}

impl PayFields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `<xml>…</xml>` (at most [`MAX_NOTIFICATION_BODY`] bytes and
    /// [`MAX_NOTIFICATION_FIELDS`] fields) into its fields, in time linear in its size.
    ///
    /// # Errors
    /// [`Error::Xml`] when the body is too large or has too many fields, is not UTF-8, is
    /// malformed, not rooted at `<xml>`, or contains a DTD, an entity declaration, a nested
    /// element or a duplicate field.
    pub fn parse(body: &[u8]) -> Result<Self> {
        parse_flat(body, "xml", Limits::NOTIFICATION)
    }

    /// Sets a field, replacing an earlier value of the same name.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let index = self.fields.iter().position(|(n, _)| n == name)?;
        Some(self.fields.remove(index).1)
    }

    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a field when present and not empty.
    pub fn get_non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every field as `(name, value)`, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Writes `<xml>…</xml>`: plain values as text, any other value as CDATA (`]]>` split across
    /// two sections).
    ///
    /// # Errors
    /// [`Error::Xml`] when a field name is not a plain XML name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn to_xml(&self) -> Result<String> {
        write_xml(self.iter())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PayFields {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut fields = Self::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

impl<'a> IntoIterator for &'a PayFields {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        fn pair(p: &(String, String)) -> (&str, &str) {
            (p.0.as_str(), p.1.as_str())
        }
        self.fields.iter().map(pair)
    }
}

fn is_plain_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_plain_value(value: &str) -> bool {
    value.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'_' | b'-' | b'.' | b':' | b'+' | b'/' | b'=' | b'@' | b',' | b' '
            )
    })
}

/// Writes fields as `<xml>…</xml>`.
pub(crate) fn write_xml<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String> {
    let mut out = String::with_capacity(512);
    out.push_str("<xml>");
    for (name, value) in fields {
        if !is_plain_name(name) {
            return Err(Error::Xml(format!("{name:?} is not a valid field name")));
        }
        out.push('<');
        out.push_str(name);
        out.push('>');
        if is_plain_value(value) {
            out.push_str(value);
        } else {
            out.push_str("<![CDATA[");
            // `]]>` cannot appear inside CDATA: end the section after `]]` and start another
            // before `>`.
            out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</xml>");
    Ok(out)
}

/// Parses a flat document rooted at `<root_name>` into its direct children, in time linear in
/// the size of `body`.
pub(crate) fn parse_flat(body: &[u8], root_name: &str, limits: Limits) -> Result<PayFields> {
    let limit = limits.bytes;
    if body.len() > limit {
        return Err(Error::Xml(format!(
            "body of {} bytes exceeds the {limit}-byte limit",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| Error::Xml("body is not UTF-8".into()))?;
    // Belt and braces before the parser sees anything: no DTD, no entity declarations.
    if declares_dtd_or_entity(text.as_bytes()) {
        return Err(Error::Xml(
            "DOCTYPE and ENTITY declarations are refused (XXE)".into(),
        ));
    }
    let mut reader = Reader::from_str(text);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let malformed = |e: &dyn std::fmt::Display| Error::Xml(format!("malformed XML: {e}"));

    #[derive(PartialEq)]
    enum State {
        /// Before the root element: only the declaration, comments and whitespace.
        Prolog,
        /// Inside the root, between fields.
        Root,
        /// Inside a field.
        Field,
        /// After the root: only comments and whitespace.
        Done,
    }
    let mut state = State::Prolog;
    let mut seen_decl = false;
    let mut fields = PayFields::new();
    let mut name = String::new();
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Decl(_) => {
                if state != State::Prolog || seen_decl || !fields.is_empty() {
                    return Err(Error::Xml("misplaced XML declaration".into()));
                }
                seen_decl = true;
            }
            Event::DocType(_) => {
                return Err(Error::Xml("DOCTYPE declarations are refused (XXE)".into()));
            }
            Event::PI(_) => return Err(Error::Xml("processing instructions are refused".into())),
            Event::Comment(_) => {
                if state == State::Field {
                    return Err(Error::Xml("comments inside a field are refused".into()));
                }
            }
            Event::Start(start) => {
                let tag = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| Error::Xml("element name is not UTF-8".into()))?
                    .to_owned();
                match state {
                    State::Prolog if tag == root_name => state = State::Root,
                    State::Prolog => {
                        return Err(Error::Xml(format!(
                            "the root element must be <{root_name}>, not <{tag}>"
                        )));
                    }
                    State::Root => {
                        name = tag;
                        value.clear();
                        state = State::Field;
                    }
                    State::Field => {
                        return Err(Error::Xml(format!(
                            "nested element <{tag}> inside <{name}> is refused"
                        )));
                    }
                    State::Done => return Err(Error::Xml("content after the root element".into())),
                }
            }
            Event::Empty(start) => {
                let tag = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| Error::Xml("element name is not UTF-8".into()))?
                    .to_owned();
                match state {
                    State::Root => push_field(&mut fields, tag, String::new(), limits)?,
                    State::Prolog if tag == root_name => state = State::Done,
                    _ => return Err(Error::Xml(format!("unexpected element <{tag}/>"))),
                }
            }
            Event::End(_) => match state {
                State::Field => {
                    push_field(
                        &mut fields,
                        std::mem::take(&mut name),
                        std::mem::take(&mut value),
                        limits,
                    )?;
                    state = State::Root;
                }
                State::Root => state = State::Done,
                _ => return Err(Error::Xml("unbalanced end tag".into())),
            },
            Event::Text(text) => {
                let decoded = text.decode().map_err(|e| malformed(&e))?;
                if state == State::Field {
                    value.push_str(&decoded);
                } else if !decoded.trim_ascii().is_empty() {
                    return Err(Error::Xml("text outside a field is refused".into()));
                }
            }
            Event::CData(cdata) => {
                if state != State::Field {
                    return Err(Error::Xml("CDATA outside a field is refused".into()));
                }
                value.push_str(&cdata.decode().map_err(|e| malformed(&e))?);
            }
            Event::GeneralRef(reference) => {
                if state != State::Field {
                    return Err(Error::Xml(
                        "entity reference outside a field is refused".into(),
                    ));
                }
                if let Some(ch) = reference.resolve_char_ref().map_err(|e| malformed(&e))? {
                    value.push(ch);
                } else {
                    let entity = reference.decode().map_err(|e| malformed(&e))?;
                    let ch = match entity.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(Error::Xml(format!("entity &{other}; is refused (XXE)")));
                        }
                    };
                    value.push(ch);
                }
            }
            Event::Eof => break,
        }
    }
    if state != State::Done {
        return Err(Error::Xml(format!(
            "incomplete document: no closed <{root_name}> element"
        )));
    }
    refuse_duplicates(&fields)?;
    Ok(fields)
}

/// Appends a field, refusing one more than `limits` allows.
fn push_field(fields: &mut PayFields, name: String, value: String, limits: Limits) -> Result<()> {
    if fields.fields.len() == limits.fields {
        return Err(Error::Xml(format!(
            "more than {} fields: refused",
            limits.fields
        )));
    }
    fields.fields.push((name, value));
    Ok(())
}

/// Two values for one name make "which one was signed" ambiguous: refuse them, in one pass.
fn refuse_duplicates(fields: &PayFields) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    match fields.iter().find(|(name, _)| !seen.insert(*name)) {
        Some((name, _)) => Err(Error::Xml(format!("duplicate field <{name}>"))),
        None => Ok(()),
    }
}

/// Whether `body` holds `<!DOCTYPE` or `<!ENTITY` in any case: one vectorized pass over the
/// body for `<!`, and a look at the few bytes after each (comments and CDATA also start so).
fn declares_dtd_or_entity(body: &[u8]) -> bool {
    memchr::memmem::find_iter(body, b"<!").any(|at| {
        let rest = &body[at + 2..];
        [&b"DOCTYPE"[..], b"ENTITY"].iter().any(|word| {
            rest.get(..word.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(word))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_cdata_entities_and_empty_fields() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>101</total_fee>\n  <attach/>\n  <body>a &amp; b &lt;c&gt; &#x4E2D;&#25991;</body>\n  <mixed>x<![CDATA[<y>]]>z</mixed>\n  <empty></empty>\n  <!-- a comment -->\n</xml>\n";
        let fields = PayFields::parse(body.as_bytes()).unwrap();
        let collected: Vec<_> = fields.iter().collect();
        assert_eq!(
            collected,
            vec![
                ("return_code", "SUCCESS"),
                ("total_fee", "101"),
                ("attach", ""),
                ("body", "a & b <c> 中文"),
                ("mixed", "x<y>z"),
                ("empty", ""),
            ]
        );
    }

    #[test]
    fn cdata_round_trip() {
        let tricky = [
            "plain",
            "中文 & <tags> \"quotes\" 'apos'",
            "ends with ]]>",
            "]]>]]>x]]",
            "{\"json\":[1,2]}",
            "line\nbreak",
            " spaced ",
        ];
        let fields: PayFields = tricky
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("f{i}"), v.to_string()))
            .collect();
        let xml = fields.to_xml().unwrap();
        assert!(xml.starts_with("<xml>") && xml.ends_with("</xml>"), "{xml}");
        assert_eq!(PayFields::parse(xml.as_bytes()).unwrap(), fields);
    }

    #[test]
    fn writes_plain_values_as_text() {
        let fields: PayFields = [("appid", "wx1"), ("total_fee", "1"), ("body", "a<b")]
            .into_iter()
            .collect();
        assert_eq!(
            fields.to_xml().unwrap(),
            "<xml><appid>wx1</appid><total_fee>1</total_fee><body><![CDATA[a<b]]></body></xml>"
        );
        let bad: PayFields = [("a b", "x")].into_iter().collect();
        assert!(matches!(bad.to_xml(), Err(Error::Xml(_))));
    }

    #[test]
    fn xxe_payloads_are_refused() {
        let payloads = [
            "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><a>&xxe;</a></xml>",
            "<!doctype xml><xml><a>1</a></xml>",
            "<xml><a>&xxe;</a></xml>",
            "<xml><!ENTITY x \"y\"><a>1</a></xml>",
            "<?xml version=\"1.0\"?><?xml-stylesheet href=\"x\"?><xml><a>1</a></xml>",
            "<xml><a>&lol1;</a></xml>",
        ];
        for payload in payloads {
            let err = PayFields::parse(payload.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Xml(_)), "{payload}: {err:?}");
        }
    }

    #[test]
    fn size_limit() {
        let mut big = String::from("<xml><a>");
        big.push_str(&"x".repeat(1 << 20));
        big.push_str("</a></xml>");
        let err = PayFields::parse(big.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        let just_under = format!(
            "<xml><a>{}</a></xml>",
            "x".repeat(MAX_NOTIFICATION_BODY - 20)
        );
        assert!(PayFields::parse(just_under.as_bytes()).is_ok());
    }

    #[test]
    fn structure_is_strict() {
        let bad = [
            "",
            "not xml",
            "<xml><a>1</a>",
            "<xml><a>1</b></xml>",
            "<root><a>1</a></root>",
            "<xml><a><b>1</b></a></xml>",
            "<xml><a>1</a><a>2</a></xml>",
            "<xml>stray<a>1</a></xml>",
            "<xml><a>1</a></xml><xml></xml>",
            "<xml><a>1</a></xml>trailing",
            "<xml><![CDATA[x]]><a>1</a></xml>",
        ];
        for body in bad {
            assert!(
                PayFields::parse(body.as_bytes()).is_err(),
                "{body:?} was accepted"
            );
        }
        assert!(PayFields::parse(&[0xff, 0xfe]).is_err());
        assert_eq!(
            parse_flat(b"<root><a>1</a></root>", "root", Limits::NOTIFICATION)
                .unwrap()
                .get("a"),
            Some("1")
        );
        assert!(PayFields::parse(b"<xml></xml>").unwrap().is_empty());
        assert!(PayFields::parse(b"<xml/>").unwrap().is_empty());
    }

    #[test]
    fn field_count_is_capped() {
        // The body from the review: thousands of distinct empty elements in 64 KiB.
        let mut body = String::from("<xml>");
        let mut i = 0;
        while body.len() < MAX_NOTIFICATION_BODY - 16 {
            body.push_str(&format!("<f{i}/>"));
            i += 1;
        }
        body.push_str("</xml>");
        assert!(i > 8_000, "{i}");
        let err = PayFields::parse(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than 256 fields"), "{err}");

        let at_cap: String = (0..MAX_NOTIFICATION_FIELDS)
            .map(|i| format!("<f{i}>{i}</f{i}>"))
            .collect();
        let fields = PayFields::parse(format!("<xml>{at_cap}</xml>").as_bytes()).unwrap();
        assert_eq!(fields.len(), MAX_NOTIFICATION_FIELDS);
        let over = format!("<xml>{at_cap}<last/></xml>");
        assert!(PayFields::parse(over.as_bytes()).is_err());
        // Replies may carry more (refund queries), up to their own cap.
        let reply = format!("<xml>{at_cap}<last/></xml>");
        assert_eq!(
            parse_flat(reply.as_bytes(), "xml", Limits::REPLY)
                .unwrap()
                .len(),
            MAX_NOTIFICATION_FIELDS + 1
        );
    }

    #[test]
    fn duplicates_are_found_anywhere() {
        let many: String = (0..200).map(|i| format!("<f{i}>{i}</f{i}>")).collect();
        for dup in ["<f0>x</f0>", "<f199/>", "<f100>y</f100>"] {
            let body = format!("<xml>{many}{dup}</xml>");
            let err = PayFields::parse(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("duplicate field"), "{dup}: {err}");
        }
        let body = format!("<xml><z/>{many}<z/></xml>");
        assert!(PayFields::parse(body.as_bytes()).is_err());
    }

    #[test]
    fn dtd_and_entity_declarations_are_found_in_any_case() {
        for body in [
            &b"<!DOCTYPE x>"[..],
            b"<xml><!doctype x></xml>",
            b"<xml><a>1</a><!EnTiTy e \"v\"></xml>",
            b"<!-- --><!ENTITY",
        ] {
            assert!(declares_dtd_or_entity(body), "{body:?}");
        }
        for body in [
            &b"<xml><![CDATA[DOCTYPE]]></xml>"[..],
            b"<xml><!-- ENTITY --></xml>",
            b"<!DOCTYP",
            b"<!",
            b"DOCTYPE ENTITY",
        ] {
            assert!(!declares_dtd_or_entity(body), "{body:?}");
        }
    }

    #[test]
    fn values_are_not_trimmed() {
        let fields = PayFields::parse(b"<xml><a> 1 </a><b><![CDATA[ 2 ]]></b></xml>").unwrap();
        assert_eq!(fields.get("a"), Some(" 1 "));
        assert_eq!(fields.get("b"), Some(" 2 "));
    }

    #[test]
    fn insert_replaces_and_remove_removes() {
        let mut fields = PayFields::new();
        fields.insert("a", "1");
        fields.insert("b", "2");
        fields.insert("a", "3");
        assert_eq!(
            fields.iter().collect::<Vec<_>>(),
            vec![("a", "3"), ("b", "2")]
        );
        assert_eq!(fields.remove("a"), Some("3".to_owned()));
        assert_eq!(fields.len(), 1);
        assert_eq!(fields.get_non_empty("c"), None);
    }
}
