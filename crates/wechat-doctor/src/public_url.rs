//! The public URL against WeChat's domain rules (a pure check, no network).
//!
//! The app's public origin is the host of its OAuth `redirect_uri` (the Official Account's
//! 网页授权域名, OAuth callback domain), of the pages that call `wx.config` (JS接口安全域名, JS
//! interface safe domain) and of its WeChat Pay `notify_url`. WeChat's rules for those: a
//! domain, not an IP address (a test account alone accepts a public IP); no port, so the app is
//! reached on 443 (or 80); the notify URL must be https (API v3) and without a query. The
//! origin itself carries no path: the app adds its routes (`/wechat/…`).

use std::net::IpAddr;

use crate::report::Check;

/// The check's name.
const NAME: &str = "public_url";

/// Checks `WECHAT_PUBLIC_URL` (`None`: unset, skipped).
///
/// Plain `http://` and any port are accepted for a loopback host only (`localhost`,
/// `127.0.0.1`, `::1`), which only a local `wechat-sim` can use: the line says so.
///
/// ```
/// use wechat_doctor::{Status, check_public_url};
///
/// assert_eq!(check_public_url(Some("https://shop.example.com")).status, Status::Ok);
/// assert_eq!(check_public_url(Some("https://shop.example.com:8443")).status, Status::Fail);
/// ```
pub fn check_public_url(value: Option<&str>) -> Check {
    let Some(value) = value else {
        return Check::skip(
            NAME,
            "WECHAT_PUBLIC_URL is unset (the demos then use http:// + LISTEN, which WeChat cannot \
             reach); set it to the https origin WeChat and browsers reach the app at",
        );
    };
    let fail = |problem: String, fix: &str| Check::fail(NAME, problem, fix);
    let url = match url::Url::parse(value) {
        Ok(url) => url,
        Err(e) => {
            return fail(
                format!("WECHAT_PUBLIC_URL={value:?} is not a URL ({e})"),
                "Set it to the app's origin, e.g. https://shop.example.com",
            );
        }
    };
    let Some(host) = url.host_str().map(str::to_owned) else {
        return fail(
            format!("WECHAT_PUBLIC_URL={value:?} has no host"),
            "Set it to the app's origin, e.g. https://shop.example.com",
        );
    };
    if !matches!(url.scheme(), "http" | "https") {
        return fail(
            format!("WECHAT_PUBLIC_URL={value:?} is not an http(s) URL"),
            "Set it to the app's https origin, e.g. https://shop.example.com",
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail(
            "WECHAT_PUBLIC_URL carries a user name or password".to_owned(),
            "Remove them: it is the origin browsers are sent to, e.g. https://shop.example.com",
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return fail(
            format!("WECHAT_PUBLIC_URL={value:?} has a query or fragment"),
            "WeChat Pay refuses a notify_url with a query: set the bare origin, e.g. https://shop.example.com",
        );
    }
    if url.path() != "/" {
        return fail(
            format!(
                "WECHAT_PUBLIC_URL={value:?} has the path {:?}; it is the app's origin and the \
                 routes (/wechat/…) are added to it",
                url.path()
            ),
            &format!(
                "Set it to {}://{host}{} and serve the app at the root of that host",
                url.scheme(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
        );
    }
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback());
    if loopback {
        return Check::ok(
            NAME,
            format!(
                "{value} is a loopback address: fine against a local wechat-sim (http:// and any \
                 port are allowed there only); real WeChat cannot reach it and needs an https domain"
            ),
        );
    }
    if url.scheme() != "https" {
        return fail(
            format!(
                "WECHAT_PUBLIC_URL={value:?} is plain http; http:// is allowed only for \
                 127.0.0.1/localhost (a local wechat-sim)"
            ),
            "Serve the app over https (WeChat Pay API v3 requires an https notify_url, and OAuth \
             codes and session cookies must not travel in clear) and set https://…",
        );
    }
    if ip.is_some() {
        return fail(
            format!("WECHAT_PUBLIC_URL={value:?} is an IP address"),
            "The OAuth callback domain (网页授权域名) and the JS interface safe domain (JS接口安全域名) of \
             an Official Account must be a registered (ICP-filed) domain, not an IP (only a test \
             account accepts a public IP): serve the app on a domain and set https://that-domain",
        );
    }
    if let Some(port) = url.port().filter(|p| !matches!(p, 80 | 443)) {
        return fail(
            format!("WECHAT_PUBLIC_URL={value:?} has the port {port}"),
            "The OAuth callback domain and the JS interface safe domain take no port, so WeChat \
             only redirects to and signs pages on 443 (or 80): serve the app on 443 (e.g. behind a \
             reverse proxy) and drop the port",
        );
    }
    Check::ok(
        NAME,
        format!(
            "{} is an https domain without port or path: set {host} as the OAuth callback domain \
             (网页授权域名) and a JS interface safe domain (JS接口安全域名) under 设置与开发 → 公众号设置 → \
             功能设置; payment notifications go to {}/wechat/pay/notify",
            value.trim_end_matches('/'),
            value.trim_end_matches('/')
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    fn status(url: &str) -> (Status, String) {
        let check = check_public_url(Some(url));
        (check.status, check.message)
    }

    #[test]
    fn an_https_domain_is_right() {
        for url in [
            "https://shop.example.com",
            "https://shop.example.com/",
            "https://shop.example.com:443",
        ] {
            let (s, message) = status(url);
            assert_eq!(s, Status::Ok, "{url}: {message}");
            assert!(message.contains("shop.example.com as the OAuth callback domain"));
        }
        assert_eq!(check_public_url(None).status, Status::Skip);
    }

    #[test]
    fn loopback_may_be_plain_http_on_any_port() {
        for url in [
            "http://127.0.0.1:3000",
            "http://localhost:8080/",
            "http://[::1]:3000",
            "https://127.0.0.1",
        ] {
            let (s, message) = status(url);
            assert_eq!(s, Status::Ok, "{url}: {message}");
            assert!(message.contains("wechat-sim"), "{message}");
        }
    }

    #[test]
    fn each_broken_rule_is_named_with_its_fix() {
        for (url, expected) in [
            ("shop.example.com", "not a URL"),
            ("ftp://shop.example.com", "not an http(s) URL"),
            (
                "http://shop.example.com",
                "allowed only for 127.0.0.1/localhost",
            ),
            ("https://shop.example.com:8443", "the port 8443"),
            ("https://203.0.113.7", "is an IP address"),
            ("https://[2001:db8::1]", "is an IP address"),
            ("https://shop.example.com/app", "has the path \"/app\""),
            ("https://shop.example.com/?a=1", "query"),
            ("https://shop.example.com/#top", "fragment"),
            ("https://user:pw@shop.example.com", "user name or password"),
        ] {
            let (s, message) = status(url);
            assert_eq!(s, Status::Fail, "{url}: {message}");
            assert!(message.contains(expected), "{url}: {message}");
        }
        let (_, message) = status("https://shop.example.com:8443");
        assert!(message.contains("serve the app on 443"), "{message}");
        let (_, message) = status("https://shop.example.com/app");
        assert!(
            message.contains("Set it to https://shop.example.com and"),
            "{message}"
        );
        let (_, message) = status("https://203.0.113.7");
        assert!(message.contains("ICP-filed"), "{message}");
    }
}
