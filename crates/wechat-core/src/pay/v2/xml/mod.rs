//! The flat XML of WeChat Pay API v2: `<xml><name>value</name>…</xml>`.
//!
//! Parsing is deliberately strict, after WeChat Pay's 2018 XXE advisory (protocol reference
//! §4.9): bodies over a size limit, `<!DOCTYPE`, `<!ENTITY`, processing instructions other than
//! the XML declaration, entity references other than XML's five and character references,
//! nested elements inside a field, duplicate fields, and anything outside the root element are
//! all refused with [`PayError::Xml`](crate::pay::PayError::Xml). Only the direct children of the root (`<xml>`, or `<root>`
//! inside a refund notification's `req_info`) are read, into an ordered flat map.
//!
//! The reader (`read.rs`) is written for this one shape of document: one pass over the body,
//! which never expands anything but XML's five entities and character references, and copies
//! every name and value into one buffer. A test (`tests/xml_reference.rs`) checks on generated
//! documents that it accepts and reads exactly what a general XML parser (quick-xml) configured
//! with the same rules does.
//!
//! Writing puts plain values as text and everything else in CDATA, splitting `]]>` safely.

mod read;
#[cfg(test)]
mod tests;

pub(crate) use read::parse_flat;

use crate::pay::PayError;
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

/// Where one field lives in [`PayFields`]' buffer: its name at `name_start..name_end`, its
/// value at `value_start..value_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    name_start: usize,
    name_end: usize,
    value_start: usize,
    value_end: usize,
}

/// The fields of one WeChat Pay v2 message, in the order they appeared, all as strings.
///
/// Built by parsing a reply or notification (then every received field is here, known or not,
/// which is what signature verification needs) or from pairs for a request. Every name and
/// value lives in one buffer (for a parsed message: a copy of the body, where they are read in
/// place), so a parsed message costs two allocations however many fields it has.
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
#[derive(Clone, Default)]
pub struct PayFields {
    /// Every name and value: a copy of the parsed body, then what was decoded or inserted.
    text: String,
    /// One span per field, in order.
    spans: Vec<Span>,
}

impl PayFields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `fields` fields totalling `bytes` bytes of names and values.
    fn with_capacity(fields: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// Parses `<xml>…</xml>` (at most [`MAX_NOTIFICATION_BODY`] bytes and
    /// [`MAX_NOTIFICATION_FIELDS`] fields) into its fields, in time linear in its size.
    ///
    /// # Errors
    /// [`PayError::Xml`](crate::pay::PayError::Xml) when the body is too large or has too many fields, is not UTF-8, is
    /// malformed, not rooted at `<xml>`, or contains a DTD, an entity declaration, a nested
    /// element or a duplicate field.
    pub fn parse(body: &[u8]) -> Result<Self> {
        parse_flat(body, "xml", Limits::NOTIFICATION)
    }

    /// Sets a field, replacing an earlier value of the same name (which keeps its place).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let name_start = self.text.len();
        self.text.push_str(&name);
        let name_end = self.text.len();
        self.text.push_str(&value);
        let span = Span {
            name_start,
            name_end,
            value_start: name_end,
            value_end: self.text.len(),
        };
        match self.position(&name) {
            // The replaced value's bytes stay in the buffer, unused: requests are built once.
            Some(index) => self.spans[index] = span,
            None => self.spans.push(span),
        }
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let index = self.position(name)?;
        let span = self.spans.remove(index);
        Some(self.text[span.value_start..span.value_end].to_owned())
    }

    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        let span = &self.spans[self.position(name)?];
        Some(&self.text[span.value_start..span.value_end])
    }

    /// The value of a field when present and not empty.
    pub fn get_non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every field as `(name, value)`, in order.
    pub fn iter(&self) -> Fields<'_> {
        Fields {
            text: &self.text,
            spans: self.spans.iter(),
        }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Writes `<xml>…</xml>`: plain values as text, any other value as CDATA (`]]>` split across
    /// two sections).
    ///
    /// # Errors
    /// [`PayError::Xml`](crate::pay::PayError::Xml) when a field name is not a plain XML name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn to_xml(&self) -> Result<String> {
        write_xml(self.iter())
    }

    /// The index of the field named `name`: names compared as bytes, no string made per field.
    fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.spans
            .iter()
            .position(|span| self.name_bytes(span) == name)
    }

    /// The name of the field at `span`.
    fn name_of(&self, span: &Span) -> &str {
        &self.text[span.name_start..span.name_end]
    }

    /// The name of the field at `span`, as bytes.
    fn name_bytes(&self, span: &Span) -> &[u8] {
        &self.text.as_bytes()[span.name_start..span.name_end]
    }
}

impl std::fmt::Debug for PayFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Two field lists are equal when they hold the same names and values in the same order,
/// however their buffers were filled.
impl PartialEq for PayFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PayFields {}

/// The fields of a [`PayFields`] as `(name, value)`, in order: [`PayFields::iter`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let span = self.spans.next()?;
        Some((
            &self.text[span.name_start..span.name_end],
            &self.text[span.value_start..span.value_end],
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Fields<'_> {}

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
    type IntoIter = Fields<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
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
            return Err(Error::Pay(PayError::Xml(format!(
                "{name:?} is not a valid field name"
            ))));
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
