//! Configuration: the app's credentials, WeChat's base URLs and HTTP timeouts.

use std::time::Duration;

use crate::{AppId, AppSecret, Error, Result};

/// Where each WeChat host lives. Every URL has no trailing slash.
///
/// [`BaseUrls::wechat`] gives WeChat's production hosts; [`BaseUrls::all`] points every host at
/// one server, which is how tests and staging use `wechat-sim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls {
    /// `https://api.weixin.qq.com`: tokens, tickets, `sns/*`.
    pub api: String,
    /// `https://open.weixin.qq.com`: the OAuth authorize page.
    pub open: String,
    /// `https://api.mch.weixin.qq.com`: WeChat Pay.
    pub pay: String,
    /// `https://res.wx.qq.com`: where pages load the JS-SDK script from.
    pub res: String,
}

impl BaseUrls {
    /// WeChat's production hosts.
    pub fn wechat() -> Self {
        Self {
            api: "https://api.weixin.qq.com".to_owned(),
            open: "https://open.weixin.qq.com".to_owned(),
            pay: "https://api.mch.weixin.qq.com".to_owned(),
            res: "https://res.wx.qq.com".to_owned(),
        }
    }

    /// Every host at one base URL, e.g. a `wechat-sim` at `http://127.0.0.1:9000`.
    pub fn all(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self {
            api: base.clone(),
            open: base.clone(),
            pay: base.clone(),
            res: base,
        }
    }

    /// Checks that each URL is absolute http(s), and removes trailing slashes.
    pub fn validated(mut self) -> Result<Self> {
        for (name, url) in [
            ("api", &mut self.api),
            ("open", &mut self.open),
            ("pay", &mut self.pay),
            ("res", &mut self.res),
        ] {
            let trimmed = url.trim_end_matches('/').to_owned();
            let parsed = url::Url::parse(&trimmed).map_err(|e| {
                Error::config(
                    format!("BaseUrls::{name}"),
                    format!("{name} base URL {trimmed:?}: {e}"),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(Error::config(
                    format!("BaseUrls::{name}"),
                    format!("{name} base URL {trimmed:?} must be an absolute http(s) URL"),
                ));
            }
            *url = trimmed;
        }
        Ok(self)
    }
}

impl Default for BaseUrls {
    fn default() -> Self {
        Self::wechat()
    }
}

/// Which endpoint issues the basic access token.
///
/// The default is [`StableToken`](Self::StableToken): every process of a fleet gets the same
/// token from it, so instances whose shared store is down (or that share none) do not retire each
/// other's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `GET cgi-bin/token`: every call mints a new token and retires the previous one after
    /// 5 minutes, so only one process may fetch (share a store between instances). While the
    /// shared store is down, each process refetches at most once every 10 minutes, so that a
    /// fleet that keeps retiring its own tokens stays within the daily quota (2,000 calls).
    Token,
    /// `POST cgi-bin/stable_token` (the default): returns the same token while it is valid, so
    /// independent processes do not retire each other's tokens. `force_refresh` is used only
    /// after the current token has been rejected.
    #[default]
    StableToken,
}

/// An Official Account's configuration.
///
/// ```
/// use wechat_core::{BaseUrls, Config};
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
///     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
/// assert_eq!(config.base_urls().api, "http://127.0.0.1:9000");
/// // The secret never shows in Debug output.
/// assert!(!format!("{config:?}").contains("0123456789abcdef0123"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    appid: AppId,
    secret: AppSecret,
    base_urls: BaseUrls,
    token_endpoint: TokenEndpoint,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Config {
    /// A configuration for WeChat's production hosts, `cgi-bin/stable_token`, and a 10 s timeout.
    pub fn new(appid: impl Into<AppId>, secret: impl Into<AppSecret>) -> Self {
        Self {
            appid: appid.into(),
            secret: secret.into(),
            base_urls: BaseUrls::wechat(),
            token_endpoint: TokenEndpoint::StableToken,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Points the client at other hosts (a `wechat-sim`, a staging proxy).
    #[must_use]
    pub fn with_base_urls(mut self, base_urls: BaseUrls) -> Self {
        self.base_urls = base_urls;
        self
    }

    /// Chooses `cgi-bin/token` or `cgi-bin/stable_token` for the basic access token.
    #[must_use]
    pub fn with_token_endpoint(mut self, endpoint: TokenEndpoint) -> Self {
        self.token_endpoint = endpoint;
        self
    }

    /// The total timeout of one HTTP request to WeChat (default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout of one HTTP request to WeChat (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The app id.
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The AppSecret.
    pub fn secret(&self) -> &AppSecret {
        &self.secret
    }

    /// The base URLs.
    pub fn base_urls(&self) -> &BaseUrls {
        &self.base_urls
    }

    /// The token endpoint in use.
    pub fn token_endpoint(&self) -> TokenEndpoint {
        self.token_endpoint
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated_and_trimmed() {
        let urls = BaseUrls::all("http://127.0.0.1:9000/").validated().unwrap();
        assert_eq!(urls.pay, "http://127.0.0.1:9000");
        let bad = BaseUrls {
            api: "api.weixin.qq.com".into(),
            ..BaseUrls::wechat()
        };
        assert!(bad.validated().is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = Config::new("wx1", "topsecretvalue");
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecretvalue"), "{shown}");
        assert!(shown.contains("AppSecret([redacted])"), "{shown}");
    }
}
