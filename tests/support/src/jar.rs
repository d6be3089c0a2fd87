//! The browser's cookie jar, as RFC 6265 describes one, for what the servers here send: a cookie
//! belongs to a host (ports ignored, as browsers do, so that apps on several ports of
//! `127.0.0.1` share it; `Domain` widens it to subdomains), is sent to its `Path` and below, only
//! over HTTPS when `Secure`, and lives until `Max-Age` runs out (`Max-Age=0` or less deletes it).
//! `Expires` and `SameSite` are not read: a cookie without `Max-Age` lives as long as the jar.

use std::time::{Duration, Instant};

use url::Url;

/// One kept cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    /// The host it was set by, or its `Domain` (lowercase, no leading dot).
    domain: String,
    /// Whether it came without `Domain` (sent to that host only).
    host_only: bool,
    path: String,
    secure: bool,
    expires: Option<Instant>,
}

impl Cookie {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }

    fn applies_to(&self, url: &Url, now: Instant) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let domain_matches = if self.host_only {
            host == self.domain
        } else {
            host == self.domain || host.ends_with(&format!(".{}", self.domain))
        };
        domain_matches
            && path_matches(&self.path, url.path())
            && (!self.secure || url.scheme() == "https")
            && self.live(now)
    }
}

/// The cookies of one browser.
#[derive(Debug, Default, Clone)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

impl Jar {
    /// Keeps (or deletes) the cookie of a `Set-Cookie` value that `url` answered with. A value
    /// that is not a cookie (no `name=`), or whose `Domain` does not cover `url`'s host, is
    /// ignored, as a browser ignores it.
    pub fn store(&mut self, url: &Url, set_cookie: &str) {
        let now = Instant::now();
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return;
        };
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.trim().split_once('=')) else {
            return;
        };
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let mut cookie = Cookie {
            name: name.to_owned(),
            value: value.trim().to_owned(),
            domain: host.clone(),
            host_only: true,
            path: default_path(url.path()),
            secure: false,
            expires: None,
        };
        let mut deleted = false;
        for attribute in parts {
            let (key, val) = attribute
                .trim()
                .split_once('=')
                .map_or((attribute.trim(), ""), |(k, v)| (k.trim(), v.trim()));
            if key.eq_ignore_ascii_case("path") && val.starts_with('/') {
                val.clone_into(&mut cookie.path);
            } else if key.eq_ignore_ascii_case("domain") && !val.is_empty() {
                let domain = val.trim_start_matches('.').to_ascii_lowercase();
                if host != domain && !host.ends_with(&format!(".{domain}")) {
                    return;
                }
                cookie.domain = domain;
                cookie.host_only = false;
            } else if key.eq_ignore_ascii_case("secure") {
                cookie.secure = true;
            } else if key.eq_ignore_ascii_case("max-age") {
                match val.parse::<i64>() {
                    Ok(seconds) if seconds <= 0 => deleted = true,
                    Ok(seconds) => {
                        cookie.expires = Some(now + Duration::from_secs(seconds.unsigned_abs()));
                    }
                    Err(_) => {}
                }
            }
        }
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
                && c.live(now)
        });
        if !deleted {
            self.cookies.push(cookie);
        }
    }

    /// The `Cookie` header a request to `url` carries, if any cookie applies: longer paths
    /// first, as browsers order them.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let now = Instant::now();
        let mut applicable: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.applies_to(url, now))
            .collect();
        applicable.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = applicable
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The value of the cookie `name` a request to `url` would carry.
    pub fn get(&self, url: &Url, name: &str) -> Option<String> {
        let now = Instant::now();
        self.cookies
            .iter()
            .filter(|c| c.name == name && c.applies_to(url, now))
            .max_by_key(|c| c.path.len())
            .map(|c| c.value.clone())
    }

    /// Whether a live cookie named `name` is kept, for any host and path.
    pub fn contains(&self, name: &str) -> bool {
        let now = Instant::now();
        self.cookies.iter().any(|c| c.name == name && c.live(now))
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

/// Whether a cookie of path `cookie_path` is sent to `request_path` (RFC 6265 §5.1.4).
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// The path of a cookie set without `Path`: the request path's directory (RFC 6265 §5.1.4).
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => request_path[..i].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn cookies_follow_hosts_paths_and_max_age() {
        let mut jar = Jar::default();
        let app = url("http://127.0.0.1:3000/x/y");
        jar.store(&app, "s=abc; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax");
        jar.store(&app, "st=1; Path=/cb; Max-Age=600");
        jar.store(&app, "a=1");
        // Ports are ignored; other hosts get nothing.
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:4000/")).as_deref(),
            Some("s=abc")
        );
        assert_eq!(jar.header_for(&url("http://localhost:3000/")), None);
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:3000/cb?code=1"))
                .as_deref(),
            Some("st=1; s=abc")
        );
        assert_eq!(
            jar.get(&url("http://127.0.0.1/x/z"), "a").as_deref(),
            Some("1")
        );
        assert_eq!(jar.get(&url("http://127.0.0.1/xz"), "a"), None);
        assert_eq!(jar.get(&url("http://127.0.0.1/cbx"), "st"), None);
        // Max-Age=0 deletes (same name, host and path).
        jar.store(&url("http://127.0.0.1:3000/cb"), "st=; Path=/cb; Max-Age=0");
        assert!(!jar.contains("st"));
        assert!(jar.contains("s"));
        jar.clear();
        assert!(!jar.contains("s"));
    }

    #[test]
    fn secure_and_domain_cookies() {
        let mut jar = Jar::default();
        jar.store(&url("https://shop.example.com/"), "s=1; Path=/; Secure");
        assert_eq!(jar.get(&url("http://shop.example.com/"), "s"), None);
        assert_eq!(
            jar.get(&url("https://shop.example.com/"), "s").as_deref(),
            Some("1")
        );
        jar.store(&url("https://shop.example.com/"), "d=2; Domain=example.com");
        assert_eq!(
            jar.get(&url("https://www.example.com/"), "d").as_deref(),
            Some("2")
        );
        // A Domain that does not cover the host is refused.
        jar.store(
            &url("https://shop.example.com/"),
            "e=3; Domain=evil.example",
        );
        assert!(!jar.contains("e"));
    }
}
