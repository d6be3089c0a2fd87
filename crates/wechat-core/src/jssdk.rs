//! The JS-SDK `wx.config` signature.
//!
//! Implements [JS-SDK appendix 1](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html#62)
//! (signature algorithm): `signature = hex(SHA1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…"))`,
//! where `url` is the page's full URL without its `#fragment`.
//!
//! [`Tokens::jssdk_config`](crate::token::Tokens::jssdk_config) does everything (ticket, nonce, time);
//! [`sign_jssdk`], [`jssdk_page_url`] and [`JsSdkConfig::sign`] are the pure parts, tested
//! against the official vector (see [`sign_jssdk`]). The URL signed is the page's
//! `location.href` without the fragment:
//!
//! ```
//! use wechat_core::jssdk::jssdk_page_url;
//!
//! assert_eq!(
//!     jssdk_page_url("https://shop.example.com/pay?item=1#/cart")?,
//!     "https://shop.example.com/pay?item=1"
//! );
//! # Ok::<(), wechat_core::Error>(())
//! ```

use rand::Rng;
use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::{AppId, Error, JsapiTicket, Result};

/// The JS-SDK signature of a page: lowercase hex SHA1 of
/// `jsapi_ticket=TICKET&noncestr=NONCE&timestamp=TIME&url=URL` with the values as given (no
/// escaping).
///
/// `url` is signed exactly as passed; prepare it with [`jssdk_page_url`] (or use
/// [`JsSdkConfig::sign`], which does). The algorithm is WeChat's
/// [JS-SDK appendix 1](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html#62).
///
/// # Security
/// Sign on the server: the ticket must never reach the browser.
pub fn sign_jssdk(ticket: &JsapiTicket, noncestr: &str, timestamp: u64, url: &str) -> String {
    let string1 = format!(
        "jsapi_ticket={}&noncestr={noncestr}&timestamp={timestamp}&url={url}",
        ticket.expose_secret()
    );
    hex::encode(Sha1::digest(string1.as_bytes()))
}

/// Prepares a page URL for signing the way the page itself reports it
/// (`location.href.split('#')[0]`): the `#fragment` is dropped, a bare domain gets the `/` path,
/// and the URL is normalised as browsers do (lowercase host, no default port).
///
/// # Errors
/// [`Error::InvalidPageUrl`] when the URL is not an absolute `http(s)` URL, or contains `&amp;`:
/// an HTML-escaped URL (copied from a template or an `href` attribute) signs a different string
/// than the page's `location.href`, which is the classic cause of `config:invalid signature`.
pub fn jssdk_page_url(url: &str) -> Result<String> {
    let url = url.trim();
    let before_fragment = url.split('#').next().unwrap_or_default();
    if before_fragment.to_ascii_lowercase().contains("&amp;") {
        return Err(Error::InvalidPageUrl(
            "the URL contains `&amp;`, so it is HTML-escaped: sign the URL the page reports \
             (location.href.split('#')[0]) with plain `&` separators; an escaped URL is the classic \
             cause of `config:invalid signature`"
                .to_owned(),
        ));
    }
    let mut parsed = url::Url::parse(url).map_err(|e| {
        Error::InvalidPageUrl(format!(
            "not an absolute URL ({e}); pass the page's full location.href"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::InvalidPageUrl(format!(
            "the scheme is {:?}; only http and https pages can use the JS-SDK",
            parsed.scheme()
        )));
    }
    parsed.set_fragment(None);
    Ok(parsed.into())
}

/// A random 16-character alphanumeric `nonceStr`.
pub(crate) fn random_nonce() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

/// The object a page passes to `wx.config(...)`: its JSON is exactly
/// `{"debug":false,"appId":…,"timestamp":…,"nonceStr":…,"signature":…,"jsApiList":[…],"openTagList":[…]}`.
///
/// The URL that was signed is not serialised; read it with [`signed_url`](Self::signed_url)
/// when a page reports `config:invalid signature` and compare it with the page's
/// `location.href.split('#')[0]`.
///
/// ```
/// use wechat_core::{AppId, JsapiTicket};
/// use wechat_core::jssdk::{JsSdkConfig, jssdk_page_url, sign_jssdk};
///
/// let ticket = JsapiTicket::new("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg");
/// // The official example (V1).
/// let signature = sign_jssdk(&ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value");
/// assert_eq!(signature, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
///
/// // The URL is prepared as the browser reports it: no fragment, a path on bare domains.
/// assert_eq!(jssdk_page_url("https://example.com#/cart")?, "https://example.com/");
///
/// let config = JsSdkConfig::sign(AppId::new("wx1234567890abcdef"), &ticket, "https://example.com/a?b=1#c", "Wm3WZYTPz0wzccnW", 1414587457)?
///     .with_js_api_list(["chooseWXPay"]);
/// assert_eq!(config.signed_url(), "https://example.com/a?b=1");
/// let json = serde_json::to_string(&config).unwrap();
/// assert!(json.starts_with(r#"{"debug":false,"appId":"wx1234567890abcdef","timestamp":1414587457,"nonceStr":"Wm3WZYTPz0wzccnW","signature":""#));
/// # Ok::<(), wechat_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsSdkConfig {
    debug: bool,
    app_id: AppId,
    timestamp: u64,
    nonce_str: String,
    signature: String,
    js_api_list: Vec<String>,
    open_tag_list: Vec<String>,
    #[serde(skip)]
    signed_url: String,
}

impl JsSdkConfig {
    /// Signs `page_url` (prepared with [`jssdk_page_url`]) for `appid` with `ticket`, which must
    /// be that app's jsapi_ticket; `nonce_str` and `timestamp` (unix seconds) are passed to
    /// `wx.config` unchanged. The API lists start empty.
    ///
    /// # Errors
    /// [`Error::InvalidPageUrl`] as [`jssdk_page_url`].
    pub fn sign(
        appid: AppId,
        ticket: &JsapiTicket,
        page_url: &str,
        nonce_str: &str,
        timestamp: u64,
    ) -> Result<Self> {
        let signed_url = jssdk_page_url(page_url)?;
        Ok(Self {
            debug: false,
            app_id: appid,
            timestamp,
            nonce_str: nonce_str.to_owned(),
            signature: sign_jssdk(ticket, nonce_str, timestamp, &signed_url),
            js_api_list: Vec::new(),
            open_tag_list: Vec::new(),
            signed_url,
        })
    }

    /// Sets `jsApiList`, the JS interfaces the page will call (e.g. `chooseWXPay`).
    #[must_use]
    pub fn with_js_api_list<I, S>(mut self, apis: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.js_api_list = apis.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `openTagList`, the open tags the page uses (e.g. `wx-open-launch-weapp`; JS-SDK ≥ 1.6.0).
    #[must_use]
    pub fn with_open_tag_list<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.open_tag_list = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `debug` (WeChat then alerts the result of every call; default `false`).
    #[must_use]
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// The exact URL that was signed (not part of the JSON).
    pub fn signed_url(&self) -> &str {
        &self.signed_url
    }

    /// `appId`.
    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    /// `timestamp` (unix seconds).
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// `nonceStr`.
    pub fn nonce_str(&self) -> &str {
        &self.nonce_str
    }

    /// `signature` (lowercase hex SHA1).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// `jsApiList`.
    pub fn js_api_list(&self) -> &[String] {
        &self.js_api_list
    }

    /// `openTagList`.
    pub fn open_tag_list(&self) -> &[String] {
        &self.open_tag_list
    }

    /// `debug`.
    pub fn debug(&self) -> bool {
        self.debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

    #[test]
    fn official_vector_v1() {
        let ticket = JsapiTicket::new(V1_TICKET);
        assert_eq!(
            sign_jssdk(
                &ticket,
                "Wm3WZYTPz0wzccnW",
                1414587457,
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }

    #[test]
    fn page_urls_are_prepared_like_location_href() {
        assert_eq!(
            jssdk_page_url("https://example.com/a/b?x=1&y=2#frag").unwrap(),
            "https://example.com/a/b?x=1&y=2"
        );
        assert_eq!(
            jssdk_page_url("https://example.com").unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            jssdk_page_url("http://mp.weixin.qq.com?params=value").unwrap(),
            "http://mp.weixin.qq.com/?params=value"
        );
        assert_eq!(
            jssdk_page_url("https://EXAMPLE.com:443/#/spa/route").unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            jssdk_page_url("http://127.0.0.1:3000/pay?").unwrap(),
            "http://127.0.0.1:3000/pay?"
        );
        // A `&amp;` only in the fragment is dropped with it.
        assert_eq!(
            jssdk_page_url("https://example.com/?a=1#x&amp;y").unwrap(),
            "https://example.com/?a=1"
        );
    }

    #[test]
    fn escaped_and_non_http_urls_are_refused() {
        for url in [
            "https://example.com/?a=1&amp;b=2",
            "https://example.com/?a=1&AMP;b=2",
        ] {
            let err = jssdk_page_url(url).unwrap_err();
            assert!(matches!(err, Error::InvalidPageUrl(_)), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("HTML-escaped") && msg.contains("invalid signature"),
                "{msg}"
            );
        }
        for url in [
            "ftp://example.com/",
            "javascript:alert(1)",
            "/relative/path",
            "",
        ] {
            assert!(
                matches!(jssdk_page_url(url), Err(Error::InvalidPageUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn config_serialises_as_wx_config_expects() {
        let config = JsSdkConfig::sign(
            AppId::new("wx1234567890abcdef"),
            &JsapiTicket::new(V1_TICKET),
            "http://mp.weixin.qq.com/?params=value#x",
            "Wm3WZYTPz0wzccnW",
            1414587457,
        )
        .unwrap()
        .with_js_api_list(["chooseWXPay", "updateAppMessageShareData"])
        .with_open_tag_list(["wx-open-launch-weapp"]);
        let expected_signature = sign_jssdk(
            &JsapiTicket::new(V1_TICKET),
            "Wm3WZYTPz0wzccnW",
            1414587457,
            "http://mp.weixin.qq.com/?params=value",
        );
        assert_eq!(config.signed_url(), "http://mp.weixin.qq.com/?params=value");
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            format!(
                r#"{{"debug":false,"appId":"wx1234567890abcdef","timestamp":1414587457,"nonceStr":"Wm3WZYTPz0wzccnW","signature":"{expected_signature}","jsApiList":["chooseWXPay","updateAppMessageShareData"],"openTagList":["wx-open-launch-weapp"]}}"#
            )
        );
        assert!(!format!("{config:?}").contains(V1_TICKET));
    }

    #[test]
    fn nonces_are_random_alphanumeric() {
        let (a, b) = (random_nonce(), random_nonce());
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
