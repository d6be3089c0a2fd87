//! Tests of the flat XML reader and writer.

use super::read::declares_dtd_or_entity;
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
    assert!(matches!(bad.to_xml(), Err(Error::Pay(PayError::Xml(_)))));
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
        assert!(
            matches!(err, Error::Pay(PayError::Xml(_))),
            "{payload}: {err:?}"
        );
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
