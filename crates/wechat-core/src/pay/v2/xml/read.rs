//! The reader of flat v2 XML: one pass over the body, every name and value copied once.
//!
//! The document it accepts, and what it refuses (each with [`PayError::Xml`](crate::pay::PayError::Xml)):
//!
//! - a prolog of an optional XML declaration (`<?xml …?>`, once), comments and whitespace;
//!   any other processing instruction is refused;
//! - the root element (`<xml>` or `<root>`; attributes are ignored), or `<xml/>`;
//! - inside the root, fields separated by whitespace and comments: `<name>` text, CDATA, XML's
//!   five entities and character references `</name>`, or `<name/>`; text outside a field,
//!   nested elements, comments inside a field and unknown entities are refused;
//! - after the root, only comments and whitespace;
//! - `<!DOCTYPE` and `<!ENTITY`, in any case, are refused wherever they appear, even inside a
//!   comment, a CDATA section or an attribute, as the earlier pre-scan of the whole body did.
//!
//! Every region is looked at once (memchr for the next `<` or `&` in text, for the `>` of the
//! `]]>` after a CDATA section, of the `-->` after a comment, of a tag), so the time is linear
//! in the body.

use crate::pay::PayError;
use memchr::{memchr, memchr_iter, memchr2, memchr3};

use super::{Limits, PayFields, Span};
use crate::{Error, Result};

/// The fields a body is first given room for: a payment notification has 17 to 30.
const EXPECTED_FIELDS: usize = 32;
/// Up to this many fields, duplicates are found by comparing every pair (no hashing, no
/// allocation); above it, with a hash set.
const PAIRWISE_DUPLICATE_CHECK: usize = 32;

/// Parses a flat document rooted at `<root_name>` into its direct children, in time linear in
/// the size of `body`.
pub(crate) fn parse_flat(body: &[u8], root_name: &str, limits: Limits) -> Result<PayFields> {
    let limit = limits.bytes;
    if body.len() > limit {
        return Err(Error::Pay(PayError::Xml(format!(
            "body of {} bytes exceeds the {limit}-byte limit",
            body.len()
        ))));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::Pay(PayError::Xml("body is not UTF-8".into())))?;
    // The buffer starts with a copy of the body, where names and most values are read in
    // place; a value of several pieces (entities, CDATA beside text) is decoded after it.
    let mut fields = PayFields::with_capacity(EXPECTED_FIELDS.min(limits.fields), body.len() + 64);
    fields.text.push_str(text);
    // A byte order mark may open the body (and says UTF-8, which it must be).
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut reader = Reader { text, pos: start };
    if reader.prolog(root_name)? {
        reader.fields(root_name, limits.fields, &mut fields)?;
    }
    Ok(fields)
}

/// Where the reader is in the body.
struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

/// What starts at the reader's position, once whitespace is skipped.
enum Next {
    /// The end of the body.
    End,
    /// `<?xml?>`, or `<?xml` and whitespace: the XML declaration.
    Declaration,
    /// `<?` other than the declaration.
    ProcessingInstruction,
    /// `<!--`.
    Comment,
    /// `<![CDATA[`.
    CData,
    /// `<!` other than a comment or CDATA.
    Bang,
    /// `</`.
    EndTag,
    /// `<` and anything else.
    StartTag,
    /// `&`.
    Reference,
    /// Any other character.
    Text,
}

/// A field's value as it is read.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// Nothing yet.
    Empty,
    /// One piece of the body (text without references, or one CDATA section's content), at
    /// these offsets of the body and so of its copy at the start of the buffer.
    Piece(usize, usize),
    /// Several pieces, decoded onto the end of the buffer from this offset.
    Decoded(usize),
}

impl Value {
    /// Adds `body[start..end]`.
    fn piece(&mut self, body: &str, start: usize, end: usize, out: &mut String) {
        if start == end {
            return;
        }
        match *self {
            Value::Empty => *self = Value::Piece(start, end),
            Value::Piece(first_start, first_end) => {
                *self = Value::Decoded(out.len());
                out.push_str(&body[first_start..first_end]);
                out.push_str(&body[start..end]);
            }
            Value::Decoded(_) => out.push_str(&body[start..end]),
        }
    }

    /// Adds a decoded character.
    fn char(&mut self, body: &str, ch: char, out: &mut String) {
        match *self {
            Value::Empty => *self = Value::Decoded(out.len()),
            Value::Piece(first_start, first_end) => {
                *self = Value::Decoded(out.len());
                out.push_str(&body[first_start..first_end]);
            }
            Value::Decoded(_) => {}
        }
        out.push(ch);
    }

    /// Where the value is in the buffer, now `len` bytes long.
    fn range(self, len: usize) -> (usize, usize) {
        match self {
            Value::Empty => (0, 0),
            Value::Piece(start, end) => (start, end),
            Value::Decoded(start) => (start, len),
        }
    }
}

fn malformed(detail: &str) -> Error {
    Error::Pay(PayError::Xml(format!("malformed XML: {detail}")))
}

fn incomplete(root_name: &str) -> Error {
    Error::Pay(PayError::Xml(format!(
        "incomplete document: no closed <{root_name}> element"
    )))
}

/// The separators of a tag's name from its attributes (quick-xml's, and XML's).
fn is_tag_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `region` holds `<!DOCTYPE` or `<!ENTITY` in any case: one vectorized pass for `<`,
/// and a look at the few bytes after each.
pub(super) fn declares_dtd_or_entity(region: &[u8]) -> bool {
    memchr_iter(b'<', region)
        .any(|at| region.get(at + 1) == Some(&b'!') && names_declaration(&region[at + 2..]))
}

/// Where `terminator` (`?>`, `-->`, `]]>`: bytes ending in `>`) first starts in `haystack`:
/// found by its `>`, which is rare inside what it ends, so that no substring searcher is built
/// for each of the many short regions of a body.
fn find_terminator(haystack: &[u8], terminator: &[u8]) -> Option<usize> {
    let head = terminator.len() - 1;
    memchr_iter(b'>', haystack)
        .filter(|&gt| gt >= head)
        .map(|gt| gt - head)
        .find(|&start| haystack[start..].starts_with(terminator))
}

/// Whether `after_bang` (what follows a `<!`) starts with `DOCTYPE` or `ENTITY`, in any case.
fn names_declaration(after_bang: &[u8]) -> bool {
    [&b"DOCTYPE"[..], b"ENTITY"].iter().any(|word| {
        after_bang
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word))
    })
}

fn refuse_declarations(region: &[u8]) -> Result<()> {
    if declares_dtd_or_entity(region) {
        Err(Error::Pay(PayError::Xml(
            "DOCTYPE and ENTITY declarations are refused (XXE)".into(),
        )))
    } else {
        Ok(())
    }
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes()[self.pos..]
    }

    /// Skips ASCII whitespace, and says what follows.
    #[inline]
    fn next(&mut self) -> Next {
        let skipped = self
            .rest()
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.rest().len());
        self.pos += skipped;
        self.peek()
    }

    /// What starts at the position.
    #[inline]
    fn peek(&self) -> Next {
        let rest = self.rest();
        match rest {
            [] => Next::End,
            [b'&', ..] => Next::Reference,
            [b'<', b'/', ..] => Next::EndTag,
            [b'<', b'?', b'x', b'm', b'l', b'?', b'>', ..] => Next::Declaration,
            [b'<', b'?', b'x', b'm', b'l', space, ..] if is_tag_whitespace(*space) => {
                Next::Declaration
            }
            [b'<', b'?', ..] => Next::ProcessingInstruction,
            [b'<', b'!', b'-', b'-', ..] => Next::Comment,
            [b'<', b'!', ..] if rest.starts_with(b"<![CDATA[") => Next::CData,
            [b'<', b'!', ..] => Next::Bang,
            [b'<', ..] => Next::StartTag,
            _ => Next::Text,
        }
    }

    /// Reads up to the root's start tag. Returns whether the root has content to read (`false`
    /// for `<xml/>`, whose epilog has then been read too).
    fn prolog(&mut self, root_name: &str) -> Result<bool> {
        let mut seen_declaration = false;
        loop {
            match self.next() {
                Next::End => return Err(incomplete(root_name)),
                Next::Declaration if !seen_declaration => {
                    seen_declaration = true;
                    self.declaration()?;
                }
                Next::Comment => self.comment()?,
                Next::StartTag => {
                    let (name, empty) = self.start_tag()?;
                    if name != root_name {
                        return Err(Error::Pay(PayError::Xml(if empty {
                            format!("unexpected element <{name}/>")
                        } else {
                            format!("the root element must be <{root_name}>, not <{name}>")
                        })));
                    }
                    if empty {
                        self.epilog()?;
                    }
                    return Ok(!empty);
                }
                other => return Err(self.misplaced(other)),
            }
        }
    }

    /// Reads the root's fields, its end tag and the epilog.
    fn fields(&mut self, root_name: &str, max_fields: usize, fields: &mut PayFields) -> Result<()> {
        loop {
            match self.next() {
                Next::End => return Err(incomplete(root_name)),
                Next::Comment => self.comment()?,
                Next::EndTag => {
                    self.end_tag(root_name)?;
                    break;
                }
                Next::StartTag => {
                    if fields.spans.len() == max_fields {
                        return Err(Error::Pay(PayError::Xml(format!(
                            "more than {max_fields} fields: refused"
                        ))));
                    }
                    self.field(fields, root_name)?;
                }
                other => return Err(self.misplaced(other)),
            }
        }
        refuse_duplicates(fields)?;
        self.epilog()
    }

    /// After the root: comments and whitespace only.
    fn epilog(&mut self) -> Result<()> {
        loop {
            match self.next() {
                Next::End => return Ok(()),
                Next::Comment => self.comment()?,
                Next::StartTag => {
                    return Err(Error::Pay(PayError::Xml(
                        "content after the root element".into(),
                    )));
                }
                other => return Err(self.misplaced(other)),
            }
        }
    }

    /// The error for what may not appear where it is, outside a field.
    fn misplaced(&self, next: Next) -> Error {
        match next {
            Next::Declaration => Error::Pay(PayError::Xml("misplaced XML declaration".into())),
            Next::ProcessingInstruction => {
                Error::Pay(PayError::Xml("processing instructions are refused".into()))
            }
            Next::CData => Error::Pay(PayError::Xml("CDATA outside a field is refused".into())),
            Next::Bang => self.bang(),
            Next::EndTag => Error::Pay(PayError::Xml("unbalanced end tag".into())),
            Next::Reference => Error::Pay(PayError::Xml(
                "entity reference outside a field is refused".into(),
            )),
            Next::Text => Error::Pay(PayError::Xml("text outside a field is refused".into())),
            Next::End | Next::Comment | Next::StartTag => malformed("unexpected markup"),
        }
    }

    /// The error for a `<!` that opens neither a comment nor CDATA.
    fn bang(&self) -> Error {
        if names_declaration(&self.rest()[2..]) {
            Error::Pay(PayError::Xml(
                "DOCTYPE and ENTITY declarations are refused (XXE)".into(),
            ))
        } else {
            malformed("unknown <! markup")
        }
    }

    /// Skips `<?xml …?>`.
    fn declaration(&mut self) -> Result<()> {
        let start = self.pos + "<?xml".len();
        let end = find_terminator(&self.bytes()[start..], b"?>")
            .ok_or_else(|| malformed("unclosed XML declaration"))?;
        refuse_declarations(&self.bytes()[start..start + end])?;
        self.pos = start + end + "?>".len();
        Ok(())
    }

    /// Skips `<!-- … -->`, which may not hold `--`.
    fn comment(&mut self) -> Result<()> {
        let start = self.pos + "<!--".len();
        let end = find_terminator(&self.bytes()[start..], b"-->")
            .ok_or_else(|| malformed("unclosed comment"))?;
        let content = &self.bytes()[start..start + end];
        let double_hyphen = memchr_iter(b'-', content).any(|at| content.get(at + 1) == Some(&b'-'));
        if double_hyphen || content.last() == Some(&b'-') {
            return Err(malformed("`--` inside a comment"));
        }
        refuse_declarations(content)?;
        self.pos = start + end + "-->".len();
        Ok(())
    }

    /// Reads `<name …>` or `<name …/>`: the name, and whether the element is empty. Quoted
    /// attribute values may hold `>`; attributes are otherwise ignored.
    fn start_tag(&mut self) -> Result<(&'a str, bool)> {
        let start = self.pos + 1;
        let bytes = self.bytes();
        // The common `<name>` and `<name/>`: a name, then `>` or `/>`. Anything else (whitespace,
        // attributes, quotes, a `<`) takes the general path below.
        let name_len = bytes[start..]
            .iter()
            .position(|&b| is_tag_whitespace(b) || matches!(b, b'>' | b'/' | b'"' | b'\'' | b'<'))
            .unwrap_or(bytes.len() - start);
        let after = start + name_len;
        let empty = match &bytes[after..] {
            [b'>', ..] => Some(false),
            [b'/', b'>', ..] => Some(true),
            _ => None,
        };
        if let (Some(empty), true) = (empty, name_len > 0) {
            self.pos = after + if empty { 2 } else { 1 };
            // Bounded by ASCII delimiters: whole characters.
            return Ok((&self.text[start..after], empty));
        }
        // The first `>` outside quotes: one search when the tag has no attributes.
        let mut at = start;
        let end = loop {
            let found = memchr3(b'>', b'"', b'\'', &bytes[at..])
                .ok_or_else(|| malformed("unclosed tag"))?;
            let quote = bytes[at + found];
            if quote == b'>' {
                break at + found;
            }
            let open = at + found + 1;
            let close = memchr(quote, &bytes[open..]).ok_or_else(|| malformed("unclosed tag"))?;
            at = open + close + 1;
        };
        let mut content = &bytes[start..end];
        refuse_declarations(content)?;
        let empty = content.last() == Some(&b'/');
        if empty {
            content = &content[..content.len() - 1];
        }
        let name_len = content
            .iter()
            .position(|&b| is_tag_whitespace(b))
            .unwrap_or(content.len());
        if name_len == 0 {
            return Err(malformed("an element without a name"));
        }
        self.pos = end + 1;
        // The tag's bytes are bounded by ASCII delimiters, so they are whole characters.
        Ok((&self.text[start..start + name_len], empty))
    }

    /// Reads `</name>` (whitespace allowed before `>`), which must close `name`.
    fn end_tag(&mut self, name: &str) -> Result<()> {
        let start = self.pos + "</".len();
        // The common `</name>`.
        let rest = &self.bytes()[start..];
        if rest.starts_with(name.as_bytes()) && rest.get(name.len()) == Some(&b'>') {
            self.pos = start + name.len() + 1;
            return Ok(());
        }
        let end =
            memchr(b'>', &self.bytes()[start..]).ok_or_else(|| malformed("unclosed end tag"))?;
        let closing = self.bytes()[start..start + end].trim_ascii_end();
        if closing != name.as_bytes() {
            return Err(malformed(&format!(
                "</{}> does not close <{name}>",
                String::from_utf8_lossy(closing)
            )));
        }
        self.pos = start + end + 1;
        Ok(())
    }

    /// Reads one field, from its start tag to its end tag, into `fields`, whose buffer starts
    /// with a copy of the body: the name, and a value of one piece, are where they are in it.
    fn field(&mut self, fields: &mut PayFields, root_name: &str) -> Result<()> {
        let name_start = self.pos + 1;
        let (name, empty) = self.start_tag()?;
        let mut value = Value::Empty;
        if !empty {
            self.value(name, &mut value, &mut fields.text, root_name)?;
        }
        let (value_start, value_end) = value.range(fields.text.len());
        fields.spans.push(Span {
            name_start,
            name_end: name_start + name.len(),
            value_start,
            value_end,
        });
        Ok(())
    }

    /// Reads a field's content up to and including `</name>` into `value`.
    fn value(
        &mut self,
        name: &str,
        value: &mut Value,
        out: &mut String,
        root_name: &str,
    ) -> Result<()> {
        loop {
            // A value is often one CDATA section: no search when markup comes first.
            let rest = self.rest();
            let found = match rest.first() {
                Some(b'<' | b'&') => Some(0),
                _ => memchr2(b'<', b'&', rest),
            };
            let Some(at) = found else {
                return Err(incomplete(root_name));
            };
            // Text up to an ASCII delimiter: whole characters.
            value.piece(self.text, self.pos, self.pos + at, out);
            self.pos += at;
            match self.peek() {
                Next::Reference => {
                    let ch = self.reference()?;
                    value.char(self.text, ch, out);
                }
                Next::EndTag => return self.end_tag(name),
                Next::CData => {
                    let (start, end) = self.cdata()?;
                    value.piece(self.text, start, end, out);
                }
                Next::Comment => {
                    return Err(Error::Pay(PayError::Xml(
                        "comments inside a field are refused".into(),
                    )));
                }
                Next::StartTag => {
                    let (nested, _) = self.start_tag()?;
                    return Err(Error::Pay(PayError::Xml(format!(
                        "nested element <{nested}> inside <{name}> is refused"
                    ))));
                }
                other => return Err(self.misplaced(other)),
            }
        }
    }

    /// Reads `<![CDATA[…]]>`: where its content is.
    fn cdata(&mut self) -> Result<(usize, usize)> {
        let start = self.pos + "<![CDATA[".len();
        let end = find_terminator(&self.bytes()[start..], b"]]>")
            .ok_or_else(|| malformed("unclosed CDATA section"))?;
        refuse_declarations(&self.bytes()[start..start + end])?;
        self.pos = start + end + "]]>".len();
        Ok((start, start + end))
    }

    /// Reads `&…;`: one of XML's five entities or a character reference.
    fn reference(&mut self) -> Result<char> {
        let start = self.pos + 1;
        let end =
            memchr(b';', &self.bytes()[start..]).ok_or_else(|| malformed("unclosed reference"))?;
        let entity = &self.text[start..start + end];
        let ch = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => match entity.strip_prefix('#') {
                Some(number) => character_reference(number)?,
                None => {
                    return Err(Error::Pay(PayError::Xml(format!(
                        "entity &{entity}; is refused (XXE)"
                    ))));
                }
            },
        };
        self.pos = start + end + 1;
        Ok(ch)
    }
}

/// The character of `&#…;`: decimal, or hexadecimal after `x`; never NUL.
fn character_reference(number: &str) -> Result<char> {
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    // Digits only: `from_str_radix` alone would also take a sign.
    let code = digits
        .bytes()
        .all(|b| char::from(b).is_digit(radix))
        .then(|| u32::from_str_radix(digits, radix).ok())
        .flatten();
    code.filter(|&code| code != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| malformed(&format!("invalid character reference &#{number};")))
}

/// Two values for one name make "which one was signed" ambiguous: refuse them, in time linear
/// in the number of fields.
fn refuse_duplicates(fields: &PayFields) -> Result<()> {
    let spans = &fields.spans;
    let duplicate = if spans.len() <= PAIRWISE_DUPLICATE_CHECK {
        // Every pair compared by a key of the name's length and first 8 bytes, and only pairs
        // of equal keys by their bytes: a few integer comparisons per pair.
        let mut keys = [(0u64, 0usize); PAIRWISE_DUPLICATE_CHECK];
        for (key, span) in keys.iter_mut().zip(spans) {
            *key = name_key(fields.name_bytes(span));
        }
        let keys = &keys[..spans.len()];
        (1..spans.len()).find_map(|i| {
            let name = fields.name_bytes(&spans[i]);
            keys[..i]
                .iter()
                .zip(spans)
                .any(|(key, earlier)| *key == keys[i] && fields.name_bytes(earlier) == name)
                .then(|| fields.name_of(&spans[i]))
        })
    } else {
        let mut seen = std::collections::HashSet::with_capacity(spans.len());
        spans
            .iter()
            .map(|span| fields.name_of(span))
            .find(|name| !seen.insert(*name))
    };
    match duplicate {
        Some(name) => Err(Error::Pay(PayError::Xml(format!(
            "duplicate field <{name}>"
        )))),
        None => Ok(()),
    }
}

/// A name's first 8 bytes (as an integer) and its length: equal for equal names.
fn name_key(name: &[u8]) -> (u64, usize) {
    let prefix = name
        .iter()
        .take(8)
        .fold(0u64, |key, &byte| (key << 8) | u64::from(byte));
    (prefix, name.len())
}
