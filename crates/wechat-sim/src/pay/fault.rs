//! How WeChat Pay v2 answers the faults `/_sim/fail` injects (see [`crate::fault`]): an
//! unsigned `return_code` `FAIL`, a signed business failure (applied by the handler once the
//! request is authenticated, since the merchant's key signs it), and a genuine answer re-signed
//! with a wrong key or stripped of its sign.

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::response::Response;

use super::sign::{self, SignType};
use super::xml;

/// A v2 business failure for the handler to answer: `return_code` `SUCCESS`, `result_code`
/// `FAIL`, this `err_code`, signed.
#[derive(Debug, Clone)]
pub(crate) struct BusinessFault {
    /// e.g. `SYSTEMERROR`.
    pub(crate) err_code: String,
    /// Its description.
    pub(crate) err_code_des: String,
}

/// A `return_code` `FAIL` answer (only `return_code` and `return_msg`, no sign).
pub(crate) fn return_fail(return_msg: &str) -> Response {
    super::api::fail(return_msg)
}

/// `response` (a v2 XML answer) with its `sign` made with a wrong key (the same algorithm, by
/// the sign's length), or removed when `unsigned`. A body that is not v2 XML is left alone.
pub(crate) async fn resign(response: Response, unsigned: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, xml::MAX_BODY)
        .await
        .unwrap_or_default();
    let Ok(mut fields) = xml::parse(&bytes, "xml") else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let sign_type = if fields.get("sign").is_some_and(|s| s.len() == 64) {
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    fields.remove("sign");
    if !unsigned {
        let wrong = sign::sign_map(&fields, sign::WRONG_KEY, sign_type);
        fields.insert("sign".into(), wrong);
    }
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(xml::write_map(&fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{XML_FRAGMENT, truncated};

    #[test]
    fn truncated_xml_does_not_parse() {
        let answer = "<xml><return_code><![CDATA[SUCCESS]]></return_code><m><![CDATA[中文中文中文中文]]></m></xml>";
        let cut = truncated(answer.as_bytes(), XML_FRAGMENT);
        assert!(std::str::from_utf8(&cut).is_ok(), "cut on a char boundary");
        assert!(xml::parse(&cut, "xml").is_err());
        assert!(xml::parse(XML_FRAGMENT.as_bytes(), "xml").is_err());
    }

    #[tokio::test]
    async fn resigned_answers_do_not_verify() {
        let key = "192006250b4c09247ec02edce69f6a2d";
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let mut fields = std::collections::BTreeMap::new();
            fields.insert("return_code".to_owned(), "SUCCESS".to_owned());
            fields.insert("nonce_str".to_owned(), "n".to_owned());
            let signature = sign::sign_map(&fields, key, sign_type);
            fields.insert("sign".to_owned(), signature);
            assert!(sign::verify_fields(&fields, key, sign_type));
            let answer = super::super::api::xml_response(xml::write_map(&fields));
            let bad = resign(answer, false).await;
            let body = axum::body::to_bytes(bad.into_body(), 4096).await.unwrap();
            let bad = xml::parse(&body, "xml").unwrap();
            assert_eq!(bad["sign"].len(), fields["sign"].len());
            assert!(!sign::verify_fields(&bad, key, sign_type));
            let answer = super::super::api::xml_response(xml::write_map(&fields));
            let body = axum::body::to_bytes(resign(answer, true).await.into_body(), 4096)
                .await
                .unwrap();
            assert!(!xml::parse(&body, "xml").unwrap().contains_key("sign"));
        }
    }
}
