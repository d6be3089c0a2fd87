//! [`WeChatRoutes`]: the JS-SDK config route, and the payment routes when configured.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::ConfigError;
#[cfg(feature = "pay")]
use crate::OpenId;
use crate::jssdk::jssdk_page_url;
use crate::response::{Audience, error_answer, json, json_error};
#[cfg(feature = "pay")]
use crate::routes::PayRoutes;
#[cfg(feature = "pay")]
use crate::session::SessionUser;
use crate::token::Tokens;

/// A JS-SDK domain: a host and, when not the scheme's default, a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsDomain {
    host: String,
    port: Option<u16>,
}

impl JsDomain {
    /// Parses `host`, `host:port` or an origin URL such as `https://shop.example.com`.
    fn parse(input: &str) -> std::result::Result<Self, ConfigError> {
        let trimmed = input.trim();
        let bad = |why: String| {
            ConfigError::new(
                "WeChatRoutesBuilder::jssdk_domain",
                format!(
                    "JS-SDK domain {trimmed:?} {why}; expected a host such as shop.example.com, \
                     127.0.0.1:3000, or an origin such as https://shop.example.com"
                ),
            )
        };
        let (as_url, default_port) = if trimmed.contains("://") {
            (trimmed.trim_end_matches('/').to_owned(), true)
        } else {
            (format!("http://{trimmed}"), false)
        };
        let parsed = url::Url::parse(&as_url).map_err(|e| bad(format!("is not valid ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must be http(s)".to_owned()));
        }
        if parsed.path() != "/"
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(bad(
                "must have no path, query, fragment or credentials".to_owned()
            ));
        }
        let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
            return Err(bad("has no host".to_owned()));
        };
        // `url` drops a scheme's default port; for a bare `host:80` keep what was written.
        let port = if default_port {
            parsed.port()
        } else {
            parsed.port().or_else(|| {
                trimmed
                    .rsplit_once(':')
                    .filter(|(h, _)| !h.ends_with(':'))
                    .and_then(|(_, p)| p.parse().ok())
            })
        };
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether the page URL (already normalised by [`jssdk_page_url`]) is on this domain.
    fn matches(&self, page: &url::Url) -> bool {
        let Some(host) = page.host_str() else {
            return false;
        };
        if !host.eq_ignore_ascii_case(&self.host) {
            return false;
        }
        match self.port {
            None => page.port().is_none(),
            Some(port) => page.port_or_known_default() == Some(port),
        }
    }
}

impl std::fmt::Display for JsDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// The routes' shared state: tokens, JS-SDK settings, client-IP policy and optional payment.
/// Cheap to clone (an `Arc` inside). Build it with [`WeChatRoutes::builder`].
///
/// Each route method takes plain values and returns a complete response, so an adapter only
/// extracts and sends. The routes, relative to the prefix they are mounted under:
/// `GET /jssdk/config?url=…` ([`jssdk_config`](Self::jssdk_config)), `POST /pay/orders`
/// ([`create_order`](Self::create_order)), `POST /pay/notify`
/// ([`payment_notify`](Self::payment_notify)), `POST /pay/refund-notify`
/// ([`refund_notify`](Self::refund_notify)), `GET /pay/orders/{out_trade_no}`
/// ([`order_status`](Self::order_status)). Exclude the two notification routes from login
/// ([`LoginConfigBuilder::exclude_notifications`](crate::login::LoginConfigBuilder::exclude_notifications)).
///
/// [`WeChatRoutes`] bundles what the routes need: the [`Tokens`] (for the jsapi_ticket), the
/// JS-SDK domains and API lists, whether a reverse proxy's headers are trusted for the client IP,
/// and optionally the [`PayRoutes`]. Every route method takes plain values (query string, body
/// bytes, the buyer) and returns a complete `http::Response<Bytes>`; an adapter only extracts
/// those values and sends the response. The routes, relative to the prefix they are mounted
/// under:
///
/// | route | method |
/// | --- | --- |
/// | `GET {prefix}/jssdk/config?url=<page url>` | [`WeChatRoutes::jssdk_config`] |
/// | `POST {prefix}/pay/orders` | [`WeChatRoutes::create_order`] |
/// | `POST {prefix}/pay/notify` | [`WeChatRoutes::payment_notify`] |
/// | `POST {prefix}/pay/refund-notify` | [`WeChatRoutes::refund_notify`] |
/// | `GET {prefix}/pay/orders/{out_trade_no}` | [`WeChatRoutes::order_status`] |
///
/// The two notification routes are called by WeChat's servers, which have no session: exclude
/// them from login with [`LoginConfigBuilder::exclude_notifications`](crate::login::LoginConfigBuilder::exclude_notifications) (or
/// [`notification_paths`](crate::routes::notification_paths)).
///
/// ```
/// use std::sync::Arc;
/// use wechat_core::{BaseUrls, Config};
/// use wechat_core::login::LoginConfig;
/// use wechat_core::token::{MemoryStore, Tokens};
/// use wechat_core::session::SessionKeys;
/// use wechat_core::routes::WeChatRoutes;
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
///     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
/// let tokens = Tokens::new(&config, reqwest::Client::new(), Arc::new(MemoryStore::new()));
/// let routes = WeChatRoutes::builder(tokens)
///     .jssdk_domain("https://shop.example.com")
///     .js_api_list(["chooseWXPay", "updateAppMessageShareData"])
///     .build()?;
/// assert_eq!(routes.jssdk_domains(), ["shop.example.com"]);
///
/// // The routes are mounted under /wechat: keep WeChat's notifications out of the login.
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .exclude_notifications("/wechat")
///     .build()?;
/// assert!(login.is_excluded("/wechat/pay/notify"));
/// assert!(login.is_excluded("/wechat/pay/refund-notify"));
/// # Ok::<(), wechat_core::Error>(())
/// ```
#[derive(Clone)]
pub struct WeChatRoutes {
    inner: Arc<RoutesInner>,
}

struct RoutesInner {
    tokens: Tokens,
    domains: Vec<JsDomain>,
    domain_names: Vec<String>,
    js_api_list: Vec<String>,
    open_tag_list: Vec<String>,
    #[cfg(feature = "pay")]
    pay: Option<PayRoutes>,
    trust_proxy: bool,
}

impl std::fmt::Debug for WeChatRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        let mut f = f.debug_struct("WeChatRoutes");
        f.field("tokens", &inner.tokens)
            .field("jssdk_domains", &inner.domain_names)
            .field("js_api_list", &inner.js_api_list)
            .field("open_tag_list", &inner.open_tag_list)
            .field("trust_proxy", &inner.trust_proxy);
        #[cfg(feature = "pay")]
        f.field("pay", &inner.pay);
        f.finish()
    }
}

/// Builds [`WeChatRoutes`]. Every setter takes its value; [`build`](Self::build) checks them
/// all.
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct WeChatRoutesBuilder {
    tokens: Tokens,
    domains: Vec<String>,
    js_api_list: Vec<String>,
    open_tag_list: Vec<String>,
    #[cfg(feature = "pay")]
    pay: Option<PayRoutes>,
    trust_proxy: bool,
}

impl WeChatRoutesBuilder {
    /// Allows pages on `domain` to get a `wx.config` (call once per domain). `domain` is a host
    /// (`shop.example.com`), a `host:port` (`127.0.0.1:3000`), or an origin
    /// (`https://shop.example.com`, e.g. the app's public URL). It must also be one of the
    /// Official Account's "JS interface safe domains", or WeChat answers
    /// `config:invalid url domain`.
    ///
    /// Matching is exact: `shop.example.com` does not cover `www.shop.example.com`, and a domain
    /// without a port covers only the scheme's default port.
    pub fn jssdk_domain(mut self, domain: &str) -> Self {
        self.domains.push(domain.to_owned());
        self
    }

    /// Sets `jsApiList` of every `wx.config` (the JS interfaces pages call, e.g. `chooseWXPay`,
    /// `updateAppMessageShareData`; default empty).
    pub fn js_api_list<I, S>(mut self, apis: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.js_api_list = apis.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `openTagList` of every `wx.config` (e.g. `wx-open-launch-weapp`; default empty).
    pub fn open_tag_list<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.open_tag_list = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Enables the payment routes with the application's [`PayRoutes`].
    #[cfg(feature = "pay")]
    pub fn pay(mut self, pay: PayRoutes) -> Self {
        self.pay = Some(pay);
        self
    }

    /// Whether the client IP (`spbill_create_ip` of new orders) is read from the first
    /// `X-Forwarded-For` entry, or else `X-Real-IP`, instead of the TCP peer (default `false`).
    ///
    /// # Security
    /// Enable it only when every request reaches the app through a reverse proxy that sets these
    /// headers itself: otherwise any client can claim any IP.
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// Checks the settings and finishes the routes.
    ///
    /// # Errors
    /// [`ConfigError`] naming [`jssdk_domain`](Self::jssdk_domain) when a domain is not a host,
    /// `host:port` or http(s) origin.
    pub fn build(self) -> std::result::Result<WeChatRoutes, ConfigError> {
        let mut domains: Vec<JsDomain> = Vec::with_capacity(self.domains.len());
        for domain in &self.domains {
            let domain = JsDomain::parse(domain)?;
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        let domain_names = domains.iter().map(ToString::to_string).collect();
        Ok(WeChatRoutes {
            inner: Arc::new(RoutesInner {
                tokens: self.tokens,
                domains,
                domain_names,
                js_api_list: self.js_api_list,
                open_tag_list: self.open_tag_list,
                #[cfg(feature = "pay")]
                pay: self.pay,
                trust_proxy: self.trust_proxy,
            }),
        })
    }
}

/// Parses one client-IP header entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`.
fn parse_ip_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|ip| ip.parse().ok())
        })
}

impl WeChatRoutes {
    /// The largest request body the routes accept (64 KiB): adapters read at most one byte more
    /// and pass what they read; the route methods answer 413 above it.
    pub const MAX_BODY: usize = 64 * 1024;

    /// Starts the routes over `tokens` (the app's access token and jsapi_ticket).
    ///
    /// Defaults: no JS-SDK domain (every `jssdk/config` request is refused with a message saying
    /// to configure one), empty API lists, no payment routes, the client IP from the TCP peer.
    pub fn builder(tokens: Tokens) -> WeChatRoutesBuilder {
        WeChatRoutesBuilder {
            tokens,
            domains: Vec::new(),
            js_api_list: Vec::new(),
            open_tag_list: Vec::new(),
            #[cfg(feature = "pay")]
            pay: None,
            trust_proxy: false,
        }
    }

    /// The tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    #[cfg(feature = "pay")]
    /// The payment routes, when configured. Adapters mount the payment routes only then.
    pub fn pay(&self) -> Option<&PayRoutes> {
        self.inner.pay.as_ref()
    }

    /// The JS-SDK domains, as `host` or `host:port`.
    pub fn jssdk_domains(&self) -> &[String] {
        &self.inner.domain_names
    }

    /// Whether proxy headers are trusted for the client IP.
    pub fn trusts_proxy(&self) -> bool {
        self.inner.trust_proxy
    }

    /// The client IP by the proxy policy; see [`adapter::client_ip`](crate::adapter::client_ip).
    pub(crate) fn client_ip(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: Option<&[u8]>,
        real_ip: Option<&[u8]>,
    ) -> Option<IpAddr> {
        let from_proxy = || {
            let first = |value: Option<&[u8]>| {
                let text = std::str::from_utf8(value?).ok()?;
                parse_ip_entry(text.split(',').next()?)
            };
            first(forwarded_for).or_else(|| first(real_ip))
        };
        let ip = if self.inner.trust_proxy {
            from_proxy().or(peer)
        } else {
            peer
        };
        ip.map(|ip| ip.to_canonical())
    }

    /// `GET {prefix}/jssdk/config?url=<page url>` with the request's raw query string: the
    /// `wx.config` JSON for the page (`{"debug","appId","timestamp","nonceStr","signature",
    /// "jsApiList","openTagList"}`).
    ///
    /// Statuses: 200; 400 with `{"error": …}` when `url` is missing, repeated or cannot be signed
    /// (not an absolute http(s) URL, HTML-escaped), or when its host is not one of the
    /// configured JS-SDK domains; 502 with WeChat's error message when the jsapi_ticket cannot be
    /// had (e.g. the IP whitelist error naming the IP to add).
    pub async fn jssdk_config(&self, query: Option<&str>) -> Response<Bytes> {
        let mut urls = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .filter(|(name, _)| name == "url")
            .map(|(_, value)| value);
        let page = match (urls.next(), urls.next()) {
            (Some(page), None) if !page.trim().is_empty() => page,
            (Some(_), Some(_)) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "the url parameter is repeated; pass the page's URL once",
                );
            }
            _ => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "missing url parameter: pass the page's URL, \
                     ?url=encodeURIComponent(location.href.split('#')[0])",
                );
            }
        };
        let signed = match jssdk_page_url(&page) {
            Ok(signed) => signed,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let parsed = match url::Url::parse(&signed) {
            Ok(parsed) => parsed,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        if !self.inner.domains.iter().any(|d| d.matches(&parsed)) {
            let host = match (parsed.host_str(), parsed.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            };
            let message = if self.inner.domains.is_empty() {
                format!(
                    "no JS-SDK domain is configured, so the page on {host} cannot be signed: add \
                     it with WeChatRoutesBuilder::jssdk_domain (and to the Official Account's JS \
                     interface safe domains)"
                )
            } else {
                format!(
                    "the page is on {host}, which is not a configured JS-SDK domain ({}): only \
                     pages of this site can be signed",
                    self.inner.domain_names.join(", ")
                )
            };
            return json_error(StatusCode::BAD_REQUEST, &message);
        }
        let apis: Vec<&str> = self.inner.js_api_list.iter().map(String::as_str).collect();
        let tags: Vec<&str> = self
            .inner
            .open_tag_list
            .iter()
            .map(String::as_str)
            .collect();
        match self.inner.tokens.jssdk_config(&signed, &apis, &tags).await {
            Ok(config) => json(StatusCode::OK, &config),
            Err(e) => error_answer(&e, Audience::JssdkScript),
        }
    }
}

#[cfg(feature = "pay")]
impl WeChatRoutes {
    fn pay_not_configured() -> Response<Bytes> {
        json_error(
            StatusCode::NOT_FOUND,
            "WeChat Pay is not configured on this server",
        )
    }

    /// `POST {prefix}/pay/orders` by the session's `buyer` from `client_ip` with the request's
    /// headers and body (JSON, `Content-Type: application/json`; empty means `{}`): see
    /// [`PayRoutes::create_order`] for the answer and statuses. Also 403 for a snapshot-page
    /// guest (their virtual openid cannot pay) and 404 when payment is not configured.
    pub async fn create_order(
        &self,
        buyer: &SessionUser,
        client_ip: IpAddr,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Response<Bytes> {
        let Some(pay) = self.pay() else {
            return Self::pay_not_configured();
        };
        if buyer.is_snapshot_user {
            return json_error(
                StatusCode::FORBIDDEN,
                "this page was opened as a WeChat snapshot (guest) page: open it in WeChat to pay",
            );
        }
        pay.create_order(&buyer.openid, client_ip, headers, body)
            .await
    }

    /// `POST {prefix}/pay/notify` with the request's headers and WeChat Pay's raw body: see
    /// [`PayRoutes::payment_notify`] (404 when payment is not configured).
    pub async fn payment_notify(&self, headers: &http::HeaderMap, body: &[u8]) -> Response<Bytes> {
        match self.pay() {
            Some(pay) => pay.payment_notify(headers, body).await,
            None => Self::pay_not_configured(),
        }
    }

    /// `POST {prefix}/pay/refund-notify` with the request's headers and WeChat Pay's raw body:
    /// see [`PayRoutes::refund_notify`] (404 when payment is not configured).
    pub async fn refund_notify(&self, headers: &http::HeaderMap, body: &[u8]) -> Response<Bytes> {
        match self.pay() {
            Some(pay) => pay.refund_notify(headers, body).await,
            None => Self::pay_not_configured(),
        }
    }

    /// The answer to a notification whose body could not be read (broke off, or larger than
    /// [`PayRoutes::MAX_BODY`]), in the configured version's format; adapters send it.
    pub fn notification_unreadable(&self, too_large: bool) -> Response<Bytes> {
        match self.pay() {
            Some(pay) => pay.notification_unreadable(too_large),
            None => Self::pay_not_configured(),
        }
    }

    /// `GET {prefix}/pay/orders/{out_trade_no}` by `viewer`: see [`PayRoutes::order_status`]
    /// (404 for anyone but the owner, and when payment is not configured).
    pub async fn order_status(&self, viewer: &OpenId, out_trade_no: &str) -> Response<Bytes> {
        match self.pay() {
            Some(pay) => pay.order_status(viewer, out_trade_no).await,
            None => Self::pay_not_configured(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use http::header::{self, HeaderMap, HeaderValue};
    use std::time::Duration;

    use super::*;
    use crate::adapter::require_user;
    use crate::login::{LoginConfig, LoginFlow};
    use crate::oauth::OAuthClient;
    use crate::response::captured_logs::{Logs, error_id_in};
    use crate::routes::notification_paths;
    use crate::session::SessionKeys;
    use crate::testing::json_request_headers as json_headers;
    use crate::token::MemoryStore;
    use crate::{BaseUrls, Config};

    fn tokens() -> Tokens {
        // Nothing listens on port 9: a ticket fetch fails fast.
        let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
            .with_base_urls(BaseUrls::all("http://127.0.0.1:9"))
            .with_timeout(Duration::from_secs(2));
        Tokens::new(
            &config,
            reqwest::Client::new(),
            Arc::new(MemoryStore::new()),
        )
    }

    fn routes(domains: &[&str], trust_proxy: bool) -> WeChatRoutes {
        let mut builder = WeChatRoutes::builder(tokens()).trust_proxy(trust_proxy);
        for domain in domains {
            builder = builder.jssdk_domain(domain);
        }
        builder.build().unwrap()
    }

    fn error_of(response: &Response<Bytes>) -> String {
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        body["error"].as_str().unwrap().to_owned()
    }

    #[test]
    fn domains_parse_hosts_ports_and_origins() {
        let routes = routes(
            &[
                "Shop.Example.com",
                "https://shop.example.com/",
                "127.0.0.1:3000",
                "http://localhost:8080",
                "[::1]:3000",
            ],
            false,
        );
        assert_eq!(
            routes.jssdk_domains(),
            [
                "shop.example.com",
                "127.0.0.1:3000",
                "localhost:8080",
                "[::1]:3000"
            ]
        );
        for bad in [
            "",
            "https://shop.example.com/path",
            "ftp://shop.example.com",
            "user@shop.example.com",
            "shop.example.com?x",
            "a b",
        ] {
            assert!(JsDomain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domain_matching_is_exact() {
        let page = |u: &str| url::Url::parse(&jssdk_page_url(u).unwrap()).unwrap();
        let bare = JsDomain::parse("shop.example.com").unwrap();
        assert!(bare.matches(&page("https://shop.example.com/a?b=1")));
        assert!(bare.matches(&page("http://SHOP.example.com:80/")));
        assert!(!bare.matches(&page("https://www.shop.example.com/")));
        assert!(!bare.matches(&page("https://shop.example.com:8443/")));
        assert!(!bare.matches(&page("https://shop.example.com.evil.com/")));
        let port = JsDomain::parse("127.0.0.1:3000").unwrap();
        assert!(port.matches(&page("http://127.0.0.1:3000/shop")));
        assert!(!port.matches(&page("http://127.0.0.1:3001/shop")));
        assert!(!port.matches(&page("http://127.0.0.1/shop")));
        let explicit_default = JsDomain::parse("shop.example.com:443").unwrap();
        assert!(explicit_default.matches(&page("https://shop.example.com/")));
    }

    #[tokio::test]
    async fn jssdk_config_refuses_bad_and_foreign_urls_with_400() {
        let routes = routes(&["127.0.0.1:3000"], false);
        for (query, expected) in [
            (None, "missing url parameter"),
            (Some("url="), "missing url parameter"),
            (Some("other=1"), "missing url parameter"),
            (
                Some("url=http%3A%2F%2F127.0.0.1%3A3000%2F&url=x"),
                "repeated",
            ),
            (Some("url=%2Fshop"), "not an absolute URL"),
            (Some("url=javascript%3Aalert(1)"), "scheme"),
            (
                Some("url=http%3A%2F%2F127.0.0.1%3A3000%2F%3Fa%3D1%26amp%3Bb%3D2"),
                "&amp;",
            ),
            (
                Some("url=https%3A%2F%2Fevil.example%2Fshop"),
                "evil.example, which is not a configured JS-SDK domain (127.0.0.1:3000)",
            ),
            (
                Some("url=http%3A%2F%2F127.0.0.1%3A3001%2Fshop"),
                "127.0.0.1:3001, which is not",
            ),
        ] {
            let response = routes.jssdk_config(query).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query:?}");
            let error = error_of(&response);
            assert!(error.contains(expected), "{query:?}: {error}");
        }
        let unconfigured = routes_without_domains()
            .jssdk_config(Some("url=https%3A%2F%2Fshop.example.com%2F"))
            .await;
        assert_eq!(unconfigured.status(), StatusCode::BAD_REQUEST);
        assert!(error_of(&unconfigured).contains("no JS-SDK domain is configured"));
    }

    fn routes_without_domains() -> WeChatRoutes {
        routes(&[], false)
    }

    #[tokio::test]
    async fn jssdk_config_reports_wechat_failures_as_502_with_an_error_id() {
        let (logs, _guard) = Logs::capture();
        let routes = routes(&["127.0.0.1:3000"], false);
        let response = routes
            .jssdk_config(Some(
                "url=http%3A%2F%2F127.0.0.1%3A3000%2Fshop%3Fx%3D1%23frag",
            ))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let error = error_of(&response);
        // The user gets a short message with an id; the log has the details under that id.
        assert!(!error.contains("/cgi-bin/stable_token"), "{error}");
        assert!(!error.contains("0123456789abcdef0123"), "{error}");
        let id = error_id_in(&error);
        let logged = logs.text();
        assert!(
            logged
                .lines()
                .any(|l| l.contains(&id) && l.contains("/cgi-bin/stable_token")),
            "{logged}"
        );
        assert!(!logged.contains("0123456789abcdef0123"), "{logged}");
    }

    #[test]
    fn client_ip_uses_proxy_headers_only_when_trusted() {
        let peer = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let xff: Option<&[u8]> = Some(b" 203.0.113.7 , 10.0.0.2");
        let real: Option<&[u8]> = Some(b"198.51.100.1");
        let direct = routes(&[], false);
        assert_eq!(direct.client_ip(peer, xff, real), peer);
        assert_eq!(direct.client_ip(None, xff, real), None);
        let proxied = routes(&[], true);
        assert_eq!(
            proxied.client_ip(peer, xff, real),
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
        );
        assert_eq!(
            proxied.client_ip(peer, Some(b"garbage"), real),
            Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        );
        assert_eq!(proxied.client_ip(peer, Some(b"garbage"), None), peer);
        assert_eq!(
            proxied.client_ip(None, Some(b"[2001:db8::1]:443"), None),
            Some(IpAddr::V6("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            proxied.client_ip(None, Some(b"203.0.113.7:5678"), None),
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
        );
        // IPv4-mapped peers (dual-stack listeners) become IPv4.
        let mapped = Some(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()));
        assert_eq!(
            direct.client_ip(mapped, None, None),
            Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
        );
        assert_eq!(
            direct.client_ip(Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), None, None),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(
            crate::adapter::client_ip_from_headers(&proxied, peer, &headers),
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)))
        );
        assert_eq!(
            crate::adapter::client_ip_from_headers(&direct, peer, &headers),
            peer
        );
    }

    #[test]
    fn notification_paths_and_exclusion() {
        assert_eq!(
            notification_paths("/wechat"),
            ["/wechat/pay/notify", "/wechat/pay/refund-notify"]
        );
        assert_eq!(
            notification_paths("/"),
            ["/pay/notify", "/pay/refund-notify"]
        );
        let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
            .exclude_notifications("/api/wechat/")
            .build()
            .unwrap();
        assert!(login.is_excluded("/api/wechat/pay/notify"));
        assert!(login.is_excluded("/api/wechat/pay/refund-notify"));
        assert!(!login.is_excluded("/api/wechat/pay/orders"));
        assert!(
            LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
                .exclude_notifications("wechat")
                .build()
                .is_err()
        );
    }

    #[test]
    fn require_user_names_the_missing_middleware() {
        let (parts, ()) = http::Request::post("/api/x").body(()).unwrap().into_parts();
        let user = SessionUser::new(OpenId::new("oAlice"), u64::MAX);
        assert_eq!(
            require_user(Some(&user), None, &parts, "`x::Layer`").unwrap(),
            user
        );
        let missing = require_user(None, None, &parts, "`x::Layer`").unwrap_err();
        assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            std::str::from_utf8(missing.body())
                .unwrap()
                .contains("Missing: `x::Layer`")
        );
        let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
        let flow = LoginFlow::new(
            OAuthClient::new(&config, reqwest::Client::new()),
            LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
                .build()
                .unwrap(),
        );
        let unauthorized = require_user(None, Some(&flow), &parts, "`x::Layer`").unwrap_err();
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_slice(unauthorized.body()).unwrap();
        assert_eq!(body["error"], "login_required");
    }

    #[tokio::test]
    async fn snapshot_guests_cannot_order() {
        let pay = crate::testing::pay_config(
            "http://127.0.0.1:9",
            "https://shop.example.com/wechat/pay/notify",
        )
        .build()
        .unwrap();
        let routes = WeChatRoutes::builder(tokens())
            .pay(PayRoutes::new(
                crate::pay::v2::PayClient::new(pay).unwrap(),
                Arc::new(crate::testing::MemoryOrders::without_products()),
            ))
            .build()
            .unwrap();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut guest = SessionUser::new(OpenId::new("oGuest"), u64::MAX);
        guest.is_snapshot_user = true;
        let refused = routes
            .create_order(&guest, ip, &json_headers(), b"{}")
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(error_of(&refused).contains("snapshot"));
        // A regular user reaches the backend (which refuses to price).
        let member = SessionUser::new(OpenId::new("oAlice"), u64::MAX);
        let priced = routes
            .create_order(&member, ip, &json_headers(), b"{}")
            .await;
        assert_eq!(priced.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&priced), "no products");
    }

    #[tokio::test]
    async fn pay_routes_are_404_when_not_configured() {
        let routes = routes(&[], false);
        let user = SessionUser::new(OpenId::new("oAlice"), u64::MAX);
        for response in [
            routes
                .create_order(
                    &user,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    &json_headers(),
                    b"{}",
                )
                .await,
            routes
                .payment_notify(&http::HeaderMap::new(), b"<xml/>")
                .await,
            routes
                .refund_notify(&http::HeaderMap::new(), b"<xml/>")
                .await,
            routes.order_status(&user.openid, "T1").await,
        ] {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert!(error_of(&response).contains("not configured"));
        }
    }
}
