//! The browser side of WeChat: the JS-SDK script (`res.wx.qq.com/open/js/jweixin-1.6.0.js`) and
//! the `wx.config` check it calls (`POST /_sim/jssdk/verify`).
//!
//! Protocol reference §3.2: `signature = hex(SHA1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…"))`
//! over the page URL without its `#fragment`, checked against the app's current jsapi ticket.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use url::Url;

use crate::oauth::domain_allowed;
use crate::state::{Sim, lock};

/// The script served at `/open/js/jweixin-1.6.0.js`.
const JWEIXIN_JS: &str = include_str!("jweixin.js");

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/open/js/jweixin-1.6.0.js", get(script))
        .route("/_sim/jssdk/verify", post(verify))
}

async fn script() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JWEIXIN_JS,
    )
}

/// The JS-SDK signature: lowercase hex SHA-1 of
/// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…` (raw values, URL without fragment).
pub(crate) fn jsapi_signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let url = url.split('#').next().unwrap_or_default();
    let string1 =
        format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(string1.as_bytes()))
}

/// `{"ok": false, "errMsg": …}`.
fn fail(err_msg: &str) -> Json<Value> {
    Json(json!({"ok": false, "errMsg": err_msg}))
}

/// A JSON string, or a number written as the page passed it (`timestamp` may be either).
fn text_field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `POST /_sim/jssdk/verify` with `{appId, timestamp, nonceStr, signature, url}`: what WeChat
/// answers to `wx.config`.
async fn verify(State(sim): State<Arc<Sim>>, body: Bytes) -> Json<Value> {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return fail("config:fail, the request body is not JSON");
    };
    let field = |name| text_field(&body, name).unwrap_or_default();
    let (appid, timestamp, noncestr, signature, url) = (
        field("appId"),
        field("timestamp"),
        field("nonceStr"),
        field("signature"),
        field("url"),
    );
    let Some(app) = sim.app(&appid) else {
        return fail("config:invalid signature");
    };
    let page = url.split('#').next().unwrap_or_default();
    let domain_ok = Url::parse(page).is_ok_and(|u| domain_allowed(&u, &app.js_domains));
    if !domain_ok {
        return fail("config:invalid url domain");
    }
    let ticket = lock(&sim.tokens)
        .current_ticket(sim.now_secs(), &appid)
        .map(str::to_owned);
    let Some(ticket) = ticket else {
        return fail("config:invalid signature");
    };
    if jsapi_signature(&ticket, &noncestr, &timestamp, page) != signature {
        return fail("config:invalid signature");
    }
    Json(json!({"ok": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_vector() {
        let sig = jsapi_signature(
            "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com?params=value#frag",
        );
        assert_eq!(sig, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
    }
}
