//! WeChat-shaped replies and small request helpers shared by the handlers.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use rand::Rng as _;
use rand::distr::Alphanumeric;

/// An `api.weixin.qq.com` error: HTTP 200 with `{"errcode": N, "errmsg": "… rid: …"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxError {
    pub(crate) code: i64,
    pub(crate) msg: String,
}

impl WxError {
    /// The error with WeChat's usual message for `code`.
    pub(crate) fn code(code: i64) -> Self {
        Self {
            code,
            msg: errmsg(code).to_owned(),
        }
    }

    /// The error with a specific message (the ` rid: …` trailer is appended when replying).
    pub(crate) fn with_msg(code: i64, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
}

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        Json(serde_json::json!({
            "errcode": self.code,
            "errmsg": format!("{} rid: {}", self.msg, rid()),
        }))
        .into_response()
    }
}

/// WeChat's `errmsg` text for the codes the simulator returns.
pub(crate) fn errmsg(code: i64) -> &'static str {
    match code {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40030 => "invalid refresh_token",
        40097 => "invalid args",
        40125 => "invalid appsecret",
        40163 => "code been used",
        41001 => "access_token missing",
        41002 => "appid missing",
        41003 => "refresh_token missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        41009 => "missing openid",
        42001 => "access_token expired",
        42002 => "refresh_token expired",
        42003 => "code expired",
        43002 => "require POST method",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        47001 => "data format error",
        48001 => "api unauthorized",
        _ => "error",
    }
}

/// A request id in WeChat's shape, `64eed8de-4cdaca9b-1be8f193` (the first part is the time).
fn rid() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:08x}-{:08x}",
        now as u32,
        rng.random::<u32>(),
        rng.random::<u32>()
    )
}

/// The query string as a map; never rejects (WeChat answers bad input with its own errors).
/// The first occurrence of a name wins; empty values count as absent.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub(crate) fn parse(text: &str) -> Self {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    /// The value of `name`, or `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The names of the parameters that have a value.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query().unwrap_or("")))
    }
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page in the style of WeChat's in-app pages (title, then body HTML).
pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Helvetica Neue", Arial, sans-serif; background: #ededed; margin: 0; color: #111; }}
main {{ max-width: 420px; margin: 0 auto; padding: 24px 16px; }}
.card {{ background: #fff; border-radius: 8px; padding: 16px; margin-bottom: 16px; }}
.user {{ display: flex; align-items: center; gap: 12px; padding: 8px 0; }}
.user img {{ width: 40px; height: 40px; border-radius: 4px; background: #ddd; }}
button {{ display: block; width: 100%; padding: 12px; margin: 8px 0; border: 0; border-radius: 4px; font-size: 17px; }}
#sim-consent-allow {{ background: #07c160; color: #fff; }}
#sim-consent-deny {{ background: #f2f2f2; color: #07c160; }}
.muted {{ color: #888; font-size: 13px; word-break: break-all; }}
.code {{ font-size: 28px; font-weight: bold; }}
</style>
</head>
<body>
<main>
{body}
<p class="muted">wechat-sim</p>
</main>
</body>
</html>
"#,
        title = html_escape(title),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_first_wins_and_empty_is_absent() {
        let p = Params::parse("a=1&a=2&b=&c=x%20y+z");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y z"));
        assert_eq!(p.get("d"), None);
        assert_eq!(Params::parse("%zz=%").get("%zz"), Some("%"));
    }

    #[test]
    fn rid_has_wechat_shape() {
        let r = rid();
        let parts: Vec<&str> = r.split('-').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() == 8));
    }

    #[test]
    fn escape() {
        assert_eq!(
            html_escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
