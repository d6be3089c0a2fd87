//! The shop page and its static assets, shared by both demos.
//!
//! [`Page::render`] fills `assets/index.html` for the logged-in [`SessionUser`]: nickname and
//! avatar rendered by the server (HTML-escaped), the JS-SDK script from
//! `{res_base}/open/js/jweixin-1.6.0.js`, and `assets/shop.js`, which configures the JS-SDK and
//! drives the payment. [`asset`] serves the files under [`ASSETS_PREFIX`].
//!
//! Stable element ids (tests and people's own scripts rely on them): `nickname`, `avatar`,
//! `pay`, `order-status`, plus `openid`, `order-no` and `jssdk-status`.

use wechat_core::session::SessionUser;

use crate::store::{PRODUCT_DESCRIPTION, PRODUCT_PRICE_FEN};

/// The URL path prefix of the static assets (excluded from login).
pub const ASSETS_PREFIX: &str = "/assets";

/// The `Content-Type` of the rendered page.
pub const PAGE_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// The path of WeChat's JS-SDK script on its resource host (`res.wx.qq.com`); wechat-sim serves
/// its stand-in at the same path.
pub const JSSDK_SCRIPT_PATH: &str = "/open/js/jweixin-1.6.0.js";

const TEMPLATE: &str = include_str!("../assets/index.html");

/// A static file of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const ASSETS: [(&str, Asset); 4] = [
    (
        "shop.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../assets/shop.js"),
        },
    ),
    (
        "avatar.svg",
        Asset {
            content_type: "image/svg+xml",
            body: include_bytes!("../assets/avatar.svg"),
        },
    ),
    (
        "avatar-xiaoming.svg",
        Asset {
            content_type: "image/svg+xml",
            body: include_bytes!("../assets/avatar-xiaoming.svg"),
        },
    ),
    (
        "avatar-xiaohong.svg",
        Asset {
            content_type: "image/svg+xml",
            body: include_bytes!("../assets/avatar-xiaohong.svg"),
        },
    ),
];

/// The asset at `name`, the part of the path after `/assets/` (e.g. `shop.js`); `None` for
/// anything else (no file system access, so no path traversal).
pub fn asset(name: &str) -> Option<Asset> {
    ASSETS
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, asset)| *asset)
}

/// Formats fen as yuan with two decimals (`1` → `0.01`).
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// The page renderer: where the JS-SDK script comes from, and whether a simulator is in use.
#[derive(Debug, Clone)]
pub struct Page {
    jssdk_script: String,
    logout_path: String,
    simulator: Option<String>,
}

impl Page {
    /// A page that loads the JS-SDK from `res_base` (`https://res.wx.qq.com`, or a wechat-sim's
    /// base URL) and links `logout_path`. `simulator`: the embedded simulator's base URL, shown
    /// in a banner.
    pub fn new(res_base: &str, logout_path: &str, simulator: Option<String>) -> Self {
        Self {
            jssdk_script: format!("{}{JSSDK_SCRIPT_PATH}", res_base.trim_end_matches('/')),
            logout_path: logout_path.to_owned(),
            simulator,
        }
    }

    /// The URL of the JS-SDK script the page loads.
    pub fn jssdk_script(&self) -> &str {
        &self.jssdk_script
    }

    /// The page for `user`, as UTF-8 HTML ([`PAGE_CONTENT_TYPE`]); serve it with
    /// `Cache-Control: no-store` since it is personal.
    ///
    /// # Security
    /// Every user-provided value (nickname, avatar URL, openid) is HTML-escaped; an avatar URL
    /// that is not http(s) is replaced by a placeholder image.
    pub fn render(&self, user: &SessionUser) -> String {
        let profile = user.profile.as_ref();
        let nickname = profile
            .map(|p| p.nickname.as_str())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("WeChat user");
        let avatar = profile
            .map(|p| p.headimgurl.as_str())
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            .map_or_else(|| format!("{ASSETS_PREFIX}/avatar.svg"), str::to_owned);
        let banner = self.simulator.as_ref().map_or_else(String::new, |sim| {
            format!(
                r#"<section class="card banner">Running against the embedded wechat-sim at <a href="{0}/_sim/stats">{0}</a>: no real WeChat account, no real money.</section>"#,
                escape_html(sim)
            )
        });
        let price = yuan(PRODUCT_PRICE_FEN);
        fill(TEMPLATE, |name| match name {
            "nickname" => Some(escape_html(nickname)),
            "avatar" => Some(escape_html(&avatar)),
            "openid" => Some(escape_html(user.openid.as_str())),
            "sim_banner" => Some(banner.clone()),
            "product" => Some(escape_html(PRODUCT_DESCRIPTION)),
            "price" => Some(price.clone()),
            "logout" => Some(escape_html(&self.logout_path)),
            "jssdk_script" => Some(escape_html(&self.jssdk_script)),
            _ => None,
        })
    }
}

/// Replaces every `{{name}}` in `template` with `value(name)` in one pass (so values are never
/// re-scanned); unknown names are left as they are.
fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => match value(&after[..end]) {
                Some(v) => {
                    out.push_str(&v);
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("{{");
                    rest = after;
                }
            },
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML element content and quoted attribute values: what WeChat returned (a
/// nickname, an avatar URL) goes into the page as text, never as markup.
fn escape_html(text: &str) -> String {
    const ENTITIES: [(char, &str); 5] = [
        ('&', "&amp;"),
        ('<', "&lt;"),
        ('>', "&gt;"),
        ('"', "&quot;"),
        ('\'', "&#39;"),
    ];
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match ENTITIES.iter().find(|(special, _)| *special == c) {
            Some((_, entity)) => out.push_str(entity),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use wechat_core::OpenId;
    use wechat_core::session::Profile;

    use super::*;

    fn user(nickname: &str, avatar: &str) -> SessionUser {
        let mut user = SessionUser::new(OpenId::new("oUser<1>"), 0);
        user.profile = Some(Profile {
            nickname: nickname.into(),
            headimgurl: avatar.into(),
            ..Profile::default()
        });
        user
    }

    #[test]
    fn renders_the_user_escaped() {
        let page = Page::new("http://127.0.0.1:9000/", "/wechat/oauth/logout", None);
        let html = page.render(&user(
            "微信用户小明<script>alert(1)</script>",
            "http://127.0.0.1:3000/assets/a.svg?x=\"><b>",
        ));
        assert!(html.contains(
            r#"<div id="nickname">微信用户小明&lt;script&gt;alert(1)&lt;/script&gt;</div>"#
        ));
        assert!(html.contains(
            r#"id="avatar" src="http://127.0.0.1:3000/assets/a.svg?x=&quot;&gt;&lt;b&gt;""#
        ));
        assert!(html.contains(r#"<span id="openid">oUser&lt;1&gt;</span>"#));
        assert!(
            html.contains(
                r#"<script src="http://127.0.0.1:9000/open/js/jweixin-1.6.0.js"></script>"#
            )
        );
        assert!(html.contains(r#"<button id="pay" type="button">Pay 0.01 yuan</button>"#));
        assert!(html.contains(r#"id="order-status""#));
        assert!(html.contains(r#"id="jssdk-status""#));
        assert!(!html.contains("{{"), "unfilled placeholder in {html}");
        assert!(!html.contains("wechat-sim at"));
    }

    #[test]
    fn unsafe_or_missing_profiles_get_placeholders() {
        let page = Page::new(
            "https://res.wx.qq.com",
            "/out",
            Some("http://127.0.0.1:1".into()),
        );
        let html = page.render(&user(" ", "javascript:alert(1)"));
        assert!(html.contains(r#"<div id="nickname">WeChat user</div>"#));
        assert!(html.contains(r#"src="/assets/avatar.svg""#));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("wechat-sim at"));
        let bare = page.render(&SessionUser::new(OpenId::new("o1"), 0));
        assert!(bare.contains(r#"<div id="nickname">WeChat user</div>"#));
    }

    #[test]
    fn assets_are_a_fixed_list() {
        assert_eq!(
            asset("shop.js").unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        assert!(asset("avatar-xiaoming.svg").is_some());
        for name in ["../Cargo.toml", "", "index.html", "shop.js/"] {
            assert!(asset(name).is_none(), "{name}");
        }
        let js = std::str::from_utf8(asset("shop.js").unwrap().body).unwrap();
        for needle in [
            "/wechat/jssdk/config?url=",
            "encodeURIComponent(pageUrl)",
            "getBrandWCPayRequest",
            "WeixinJSBridgeReady",
            "'/wechat/pay/orders/'",
            "'cancelled'",
        ] {
            assert!(js.contains(needle), "{needle}");
        }
    }

    #[test]
    fn fill_and_yuan() {
        assert_eq!(
            fill("a{{x}}b{{y}}{{", |n| (n == "x").then(|| "{{y}}".into())),
            "a{{y}}b{{y}}{{"
        );
        assert_eq!(yuan(1), "0.01");
        assert_eq!(yuan(12345), "123.45");
    }
}
