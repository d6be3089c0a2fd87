//! The v2 XML reader against a reference: the quick-xml-based reader wechat-core used before
//! its own one-pass reader, with the same rules. On generated documents, valid and broken, both
//! must accept the same ones and read the same fields from them; the one difference allowed is
//! that wechat-core refuses an element without a name (`<>`), which quick-xml reads.

use proptest::collection::vec;
use proptest::prelude::*;
use quick_xml::Reader;
use quick_xml::events::Event;
use wechat_core::pay::v2::{MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_FIELDS, PayFields};

/// The reference's error: a description.
fn refused(detail: String) -> String {
    detail
}

/// The reader wechat-core used before its own: quick-xml, driven event by event, with the same
/// rules. Errors are strings (only whether it refuses is compared).
fn reference_parse(
    body: &[u8],
    root_name: &str,
    max_bytes: usize,
    max_fields: usize,
) -> Result<Vec<(String, String)>, String> {
    let limit = max_bytes;
    if body.len() > limit {
        return Err(refused(format!(
            "body of {} bytes exceeds the {limit}-byte limit",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| refused("body is not UTF-8".into()))?;
    // Belt and braces before the parser sees anything: no DTD, no entity declarations.
    if declares_dtd_or_entity(text.as_bytes()) {
        return Err(refused(
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
    let malformed = |e: &dyn std::fmt::Display| refused(format!("malformed XML: {e}"));

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
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut name = String::new();
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Decl(_) => {
                if state != State::Prolog || seen_decl || !fields.is_empty() {
                    return Err(refused("misplaced XML declaration".into()));
                }
                seen_decl = true;
            }
            Event::DocType(_) => {
                return Err(refused("DOCTYPE declarations are refused (XXE)".into()));
            }
            Event::PI(_) => return Err(refused("processing instructions are refused".into())),
            Event::Comment(_) => {
                if state == State::Field {
                    return Err(refused("comments inside a field are refused".into()));
                }
            }
            Event::Start(start) => {
                let tag = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| refused("element name is not UTF-8".into()))?
                    .to_owned();
                match state {
                    State::Prolog if tag == root_name => state = State::Root,
                    State::Prolog => {
                        return Err(refused(format!(
                            "the root element must be <{root_name}>, not <{tag}>"
                        )));
                    }
                    State::Root => {
                        name = tag;
                        value.clear();
                        state = State::Field;
                    }
                    State::Field => {
                        return Err(refused(format!(
                            "nested element <{tag}> inside <{name}> is refused"
                        )));
                    }
                    State::Done => return Err(refused("content after the root element".into())),
                }
            }
            Event::Empty(start) => {
                let tag = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| refused("element name is not UTF-8".into()))?
                    .to_owned();
                match state {
                    State::Root => push_field(&mut fields, tag, String::new(), max_fields)?,
                    State::Prolog if tag == root_name => state = State::Done,
                    _ => return Err(refused(format!("unexpected element <{tag}/>"))),
                }
            }
            Event::End(_) => match state {
                State::Field => {
                    push_field(
                        &mut fields,
                        std::mem::take(&mut name),
                        std::mem::take(&mut value),
                        max_fields,
                    )?;
                    state = State::Root;
                }
                State::Root => state = State::Done,
                _ => return Err(refused("unbalanced end tag".into())),
            },
            Event::Text(text) => {
                let decoded = text.decode().map_err(|e| malformed(&e))?;
                if state == State::Field {
                    value.push_str(&decoded);
                } else if !decoded.trim_ascii().is_empty() {
                    return Err(refused("text outside a field is refused".into()));
                }
            }
            Event::CData(cdata) => {
                if state != State::Field {
                    return Err(refused("CDATA outside a field is refused".into()));
                }
                value.push_str(&cdata.decode().map_err(|e| malformed(&e))?);
            }
            Event::GeneralRef(reference) => {
                if state != State::Field {
                    return Err(refused(
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
                            return Err(refused(format!("entity &{other}; is refused (XXE)")));
                        }
                    };
                    value.push(ch);
                }
            }
            Event::Eof => break,
        }
    }
    if state != State::Done {
        return Err(refused(format!(
            "incomplete document: no closed <{root_name}> element"
        )));
    }
    refuse_duplicates(&fields)?;
    Ok(fields)
}

/// Appends a field, refusing one more than `max_fields`.
fn push_field(
    fields: &mut Vec<(String, String)>,
    name: String,
    value: String,
    max_fields: usize,
) -> Result<(), String> {
    if fields.len() == max_fields {
        return Err(format!("more than {max_fields} fields: refused"));
    }
    fields.push((name, value));
    Ok(())
}

/// Two values for one name are refused.
fn refuse_duplicates(fields: &[(String, String)]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    match fields.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        Some((name, _)) => Err(format!("duplicate field <{name}>")),
        None => Ok(()),
    }
}

/// Whether `body` holds `<!DOCTYPE` or `<!ENTITY` in any case.
fn declares_dtd_or_entity(body: &[u8]) -> bool {
    memchr::memmem::find_iter(body, b"<!").any(|at| {
        let rest = &body[at + 2..];
        [&b"DOCTYPE"[..], b"ENTITY"].iter().any(|word| {
            rest.get(..word.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(word))
        })
    })
}

/// Pieces of documents: the markup both readers know, in valid and broken forms.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"<xml>",
        b"</xml>",
        b"</xml >",
        b"<xml/>",
        b"<xml a=\"1\">",
        b"<root>",
        b"</root>",
        b"<a>",
        b"</a>",
        b"</a\n>",
        b"<b/>",
        b"<b />",
        b"<c x='>'>",
        b"</c>",
        b"<c x=\"/\"/>",
        b"<d:e>",
        b"</d:e>",
        b"<>",
        b"</>",
        b"<![CDATA[",
        b"]]>",
        b"<![CDATA[x]]>",
        b"<![CDATA[<!DOCTYPE]]>",
        b"<![CDATA[]]>",
        b"&amp;",
        b"&lt;&gt;&quot;&apos;",
        b"&#x4E2D;",
        b"&#25991;",
        b"&#0;",
        b"&#xD800;",
        b"&#+65;",
        b"&#X41;",
        b"&bogus;",
        b"&",
        b";",
        b"<!DOCTYPE x>",
        b"<!doctype",
        b"<!ENTITY",
        b"<!ELEMENT x>",
        b"<?xml version=\"1.0\"?>",
        b"<?xml?>",
        b"<?xml-stylesheet x?>",
        b"<?pi?>",
        b"<!-- c -->",
        b"<!---->",
        b"<!-- a -- b -->",
        b"<!--->",
        b"<!-- x --->",
        b"<!-- <!ENTITY -->",
        b"<!--",
        b"-->",
        b"\xEF\xBB\xBF",
        b" ",
        b"\n",
        b"\t",
        b"\r\n",
        b"\x0C",
        b"SUCCESS",
        b"\xE4\xB8\xAD",
        b"<",
        b">",
        b"/",
        b"\"",
        b"'",
        b"=",
    ];
    prop_oneof![
        8 => prop::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => vec(any::<u8>(), 0..4),
    ]
}

/// What a field may hold: text, CDATA, entities and character references.
fn content_piece() -> impl Strategy<Value = Vec<u8>> {
    let valid: Vec<&'static [u8]> = vec![
        b"SUCCESS",
        b"\xE4\xB8\xAD",
        b" ",
        b"\n",
        b"&amp;",
        b"&lt;&gt;&quot;&apos;",
        b"&#x4E2D;",
        b"&#25991;",
        b"<![CDATA[x]]>",
        b"<![CDATA[<a>&amp;]]>",
        b"<![CDATA[]]>",
        b">",
        b"'\"=/;]",
    ];
    prop_oneof![
        12 => prop::sample::select(valid).prop_map(<[u8]>::to_vec),
        1 => piece(),
    ]
}

/// What may come between fields, and before and after the root: whitespace and comments.
fn between_piece() -> impl Strategy<Value = Vec<u8>> {
    let valid: Vec<&'static [u8]> = vec![b" ", b"\n  ", b"\r\n", b"<!-- c -->", b"<!---->"];
    prop_oneof![
        12 => prop::sample::select(valid).prop_map(<[u8]>::to_vec),
        1 => piece(),
    ]
}

/// A document that is mostly well formed: fields of generated content inside `<xml>`, with a
/// broken piece here and there, so that both readers get far into it.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let field = (
        prop::sample::select(vec!["a", "b", "sign", "total_fee", "coupon_fee_0", "x"]),
        vec(content_piece(), 0..4),
        any::<bool>(),
        prop::sample::select(vec!["", " ", " k=\"v>\""]),
    )
        .prop_map(|(name, content, empty, attributes)| {
            if empty && content.is_empty() {
                format!("<{name}{attributes}/>").into_bytes()
            } else {
                let mut out = format!("<{name}{attributes}>").into_bytes();
                out.extend(content.concat());
                out.extend(format!("</{name}>").into_bytes());
                out
            }
        });
    let prolog = prop::sample::select(vec![
        &b""[..],
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        b"\xEF\xBB\xBF<?xml version=\"1.0\"?>",
        b"<?xml?>",
    ]);
    (
        prolog,
        vec(between_piece(), 0..2),
        vec(prop_oneof![3 => field, 1 => between_piece()], 0..12),
        vec(between_piece(), 0..2),
    )
        .prop_map(|(declaration, before, inside, after)| {
            let mut out = declaration.to_vec();
            out.extend(before.concat());
            out.extend_from_slice(b"<xml>");
            out.extend(inside.concat());
            out.extend_from_slice(b"</xml>");
            out.extend(after.concat());
            out
        })
}

/// Whether the reference's reading has an element without a name, the one thing wechat-core
/// refuses and it does not.
fn has_nameless_element(fields: &[(String, String)]) -> bool {
    fields.iter().any(|(name, _)| name.is_empty())
}

fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    let reference = reference_parse(body, "xml", MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_FIELDS);
    let ours = PayFields::parse(body);
    match (&reference, &ours) {
        (Ok(expected), Ok(fields)) => {
            let read: Vec<(String, String)> = fields
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            prop_assert_eq!(&read, expected, "{:?}", String::from_utf8_lossy(body));
        }
        (Err(_), Err(_)) => {}
        (Ok(expected), Err(e)) => prop_assert!(
            has_nameless_element(expected) || body.windows(2).any(|w| w == b"<>"),
            "refused {:?} ({e}), the reference read {expected:?}",
            String::from_utf8_lossy(body)
        ),
        (Err(e), Ok(fields)) => prop_assert!(
            false,
            "read {:?} from {:?}, the reference refused it ({e})",
            fields,
            String::from_utf8_lossy(body)
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn documents_are_read_as_the_reference_reads_them(body in document()) {
        agree(&body)?;
    }

    #[test]
    fn piece_soup_is_read_as_the_reference_reads_it(parts in vec(piece(), 0..24)) {
        agree(&parts.concat())?;
    }
}

#[test]
fn the_field_cap_and_duplicates_agree() {
    for count in [
        MAX_NOTIFICATION_FIELDS - 1,
        MAX_NOTIFICATION_FIELDS,
        MAX_NOTIFICATION_FIELDS + 1,
    ] {
        let fields: String = (0..count).map(|i| format!("<f{i}>{i}</f{i}>")).collect();
        agree(format!("<xml>{fields}</xml>").as_bytes()).unwrap();
        agree(format!("<xml>{fields}<f0/></xml>").as_bytes()).unwrap();
    }
}

/// The generator is not vacuous: a good share of its documents are read by both, with fields,
/// and a good share refused by both.
#[test]
fn the_generated_documents_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut read, mut refused) = (0, 0);
    for _ in 0..2_000 {
        let body = document().new_tree(&mut runner).unwrap().current();
        agree(&body).unwrap();
        match PayFields::parse(&body) {
            Ok(fields) if !fields.is_empty() => read += 1,
            Ok(_) => {}
            Err(_) => refused += 1,
        }
    }
    assert!(
        read > 200 && refused > 200,
        "read {read}, refused {refused}"
    );
}
