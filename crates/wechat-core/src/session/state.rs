//! The signed OAuth `state`: CSRF protection for the callback and a return path that cannot be
//! turned into an open redirect.
//!
//! The details are on [`OAuthState`], where rustdoc shows them (this module is private).

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use crate::clock::Clock;
use crate::oauth::encode_component;
use crate::session::SessionKeys;
use crate::{AppId, Error, Result};

/// The longest `state` WeChat accepts (and the longest this module emits): 128 characters.
pub const STATE_MAX_LEN: usize = 128;
/// The name of the `redirect_uri` query parameter that carries the return path.
pub const RETURN_PARAM: &str = "r";
/// The longest return path kept; longer ones lose their query, then become `/`.
pub const MAX_RETURN_PATH_LEN: usize = 1024;

const NONCE_LEN: usize = 16;
const MAC_HEX_LEN: usize = 64;
/// v2: the MAC also covers the app id.
const STATE_LABEL: &[u8] = b"wechat-core/oauth-state/v2";

/// A signed OAuth `state`, issued before the redirect to WeChat and verified in the callback.
///
/// WeChat echoes `state` back to the callback and limits it to 128 characters of `a-zA-Z0-9`
/// (protocol reference §1.1). The state is
///
/// ```text
/// nonce (16 × [a-zA-Z0-9]) ‖ retry flag ("0" or "1") ‖ expiry (unix seconds, decimal) ‖ MAC (64 lowercase hex)
/// ```
///
/// e.g. 91 characters, where MAC = HMAC-SHA256 (under the current [`SessionKeys`] key, with a
/// label separating it from session cookies) over the nonce, the flag, the expiry and the return
/// path. The return path does not fit in the state, so it travels in the `redirect_uri`'s own
/// query (`{callback_url}?r=<percent-encoded path>`, left out when it is `/`) and comes back to the
/// callback with it; the MAC binds it. The nonce also goes into a short-lived cookie so that the
/// callback can check that the state was issued to this browser (see
/// [`LoginFlow`](crate::login::LoginFlow)).
///
/// ```
/// use std::time::Duration;
/// use wechat_core::clock::ManualClock;
/// use wechat_core::AppId;
/// use wechat_core::session::{OAuthState, SessionKeys};
///
/// let keys = SessionKeys::new([7u8; 32])?;
/// let app_id = AppId::new("wx1234567890abcdef");
/// let clock = ManualClock::at(1_700_000_000);
/// let state = OAuthState::issue(&keys, &app_id, "/shop?item=42", Duration::from_secs(600), false, &clock);
/// assert!(state.as_str().len() <= 128 && state.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
/// assert_eq!(
///     state.redirect_uri("https://shop.example.com/wechat/oauth/callback"),
///     "https://shop.example.com/wechat/oauth/callback?r=%2Fshop%3Fitem%3D42"
/// );
///
/// // In the callback: the state and the `r` parameter as they came back.
/// clock.advance(Duration::from_secs(5));
/// let verified = OAuthState::verify(&keys, &app_id, state.as_str(), Some("/shop?item=42"), &clock)?;
/// assert_eq!(verified.return_path(), "/shop?item=42");
/// assert_eq!(verified.nonce(), state.nonce());
/// // Another return path, or too late: refused.
/// assert!(OAuthState::verify(&keys, &app_id, state.as_str(), Some("/admin"), &clock).is_err());
/// // Another app sharing the keys: refused.
/// let other_app = AppId::new("wx0000000000000000");
/// assert!(OAuthState::verify(&keys, &other_app, state.as_str(), Some("/shop?item=42"), &clock).is_err());
/// clock.advance(Duration::from_secs(595));
/// assert!(OAuthState::verify(&keys, &app_id, state.as_str(), Some("/shop?item=42"), &clock).is_err());
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// - The MAC (HMAC-SHA256, compared in constant time with `Mac::verify_slice`) makes a state
///   unforgeable without the keys; the expiry bounds replay; the nonce, matched against a cookie
///   of the same browser, stops login CSRF (a victim's browser completing the attacker's login).
/// - Return paths are sanitized with [`safe_return_path`] both when a state is issued and after
///   it is verified: only same-site relative paths survive, anything else becomes `/`.
/// - The state is not secret (it is in URLs and logs of WeChat); it carries no user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    value: String,
    nonce: String,
    return_path: String,
    expires_at: u64,
    retry: bool,
}

/// Returns `candidate` if it is a same-site relative path, else `/`.
///
/// Kept: a path starting with a single `/` made of printable ASCII (no spaces, no control
/// characters, no `\`), at most [`MAX_RETURN_PATH_LEN`] bytes (a longer one loses its query
/// first). Replaced by `/`: absolute URLs (`http://…`), protocol-relative ones (`//evil`,
/// `/\evil`), relative paths without a leading `/`, and anything with a backslash, a control
/// character or non-ASCII text, which browsers may turn into another host.
///
/// ```
/// use wechat_core::session::safe_return_path;
///
/// assert_eq!(safe_return_path("/shop?item=1#top"), "/shop?item=1#top");
/// for evil in ["//evil.com", "/\\evil.com", "https://evil.com/", "/\t/evil.com", "evil", ""] {
///     assert_eq!(safe_return_path(evil), "/");
/// }
/// ```
pub fn safe_return_path(candidate: &str) -> &str {
    fn acceptable(path: &str) -> bool {
        let bytes = path.as_bytes();
        bytes.first() == Some(&b'/')
            && !matches!(bytes.get(1), Some(b'/' | b'\\'))
            && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
    }
    if !acceptable(candidate) {
        return "/";
    }
    if candidate.len() <= MAX_RETURN_PATH_LEN {
        return candidate;
    }
    let path_only = candidate.split(['?', '#']).next().unwrap_or("/");
    if path_only.len() <= MAX_RETURN_PATH_LEN {
        path_only
    } else {
        "/"
    }
}

impl OAuthState {
    /// Issues a state of `app_id`'s login for `return_path` (sanitized with
    /// [`safe_return_path`]) valid for `ttl` from now by `clock`. `retry` marks a login
    /// restarted after a used or invalid code, which must not be restarted again. The MAC covers
    /// the app id, so another app sharing `keys` does not accept the state.
    pub fn issue(
        keys: &SessionKeys,
        app_id: &AppId,
        return_path: &str,
        ttl: Duration,
        retry: bool,
        clock: &dyn Clock,
    ) -> Self {
        Self::issue_at(keys, app_id, return_path, ttl, retry, clock.now_unix_secs())
    }

    /// [`issue`](Self::issue) at `now` (unix seconds).
    pub(crate) fn issue_at(
        keys: &SessionKeys,
        app_id: &AppId,
        return_path: &str,
        ttl: Duration,
        retry: bool,
        now: u64,
    ) -> Self {
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), NONCE_LEN);
        let return_path = safe_return_path(return_path).to_owned();
        let expires_at = now.saturating_add(ttl.as_secs());
        let flag = if retry { "1" } else { "0" };
        let expiry = expires_at.to_string();
        let mac = keys.sign(
            STATE_LABEL,
            &[
                app_id.as_str().as_bytes(),
                nonce.as_bytes(),
                flag.as_bytes(),
                expiry.as_bytes(),
                return_path.as_bytes(),
            ],
        );
        let value = format!("{nonce}{flag}{expiry}{}", hex::encode(mac));
        Self {
            value,
            nonce,
            return_path,
            expires_at,
            retry,
        }
    }

    /// Verifies a state of `app_id`'s login that came back to the callback, with the
    /// callback's `r` parameter (`None` when absent, meaning `/`), at the time `clock` tells.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the state is malformed, its MAC does not match (forged,
    /// altered, another return path or app, or a key no longer configured), or it has expired.
    pub fn verify(
        keys: &SessionKeys,
        app_id: &AppId,
        state: &str,
        return_path: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<Self> {
        Self::verify_at(keys, app_id, state, return_path, clock.now_unix_secs())
    }

    /// [`verify`](Self::verify) at `now` (unix seconds).
    pub(crate) fn verify_at(
        keys: &SessionKeys,
        app_id: &AppId,
        state: &str,
        return_path: Option<&str>,
        now: u64,
    ) -> Result<Self> {
        let bytes = state.as_bytes();
        if bytes.len() < NONCE_LEN + 2 + MAC_HEX_LEN
            || bytes.len() > STATE_MAX_LEN
            || !bytes.iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(Error::InvalidState("malformed state"));
        }
        let (nonce, rest) = state.split_at(NONCE_LEN);
        let (middle, mac_hex) = rest.split_at(rest.len() - MAC_HEX_LEN);
        let (flag, expiry) = middle.split_at(1);
        let retry = match flag {
            "0" => false,
            "1" => true,
            _ => return Err(Error::InvalidState("malformed state")),
        };
        if expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidState("malformed state"));
        }
        let expires_at: u64 = expiry
            .parse()
            .map_err(|_| Error::InvalidState("malformed state"))?;
        let mac = hex::decode(mac_hex).map_err(|_| Error::InvalidState("malformed state"))?;
        let return_path = return_path.unwrap_or("/");
        if !keys.verify(
            STATE_LABEL,
            &[
                app_id.as_str().as_bytes(),
                nonce.as_bytes(),
                flag.as_bytes(),
                expiry.as_bytes(),
                return_path.as_bytes(),
            ],
            &mac,
        ) {
            crate::metrics::record_signature_failure(crate::metrics::SignatureKind::OAuthState);
            return Err(Error::InvalidState(
                "the state's signature does not match (forged or altered)",
            ));
        }
        if expires_at <= now {
            return Err(Error::InvalidState(
                "the login took too long and its state has expired",
            ));
        }
        Ok(Self {
            value: state.to_owned(),
            nonce: nonce.to_owned(),
            return_path: safe_return_path(return_path).to_owned(),
            expires_at,
            retry,
        })
    }

    /// The `state` parameter for the authorize URL.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The random nonce (16 × `[a-zA-Z0-9]`) to bind to the browser in a cookie.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The sanitized return path.
    pub fn return_path(&self) -> &str {
        &self.return_path
    }

    /// When the state expires, in unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether this login was already restarted once after a used or invalid code.
    pub fn is_retry(&self) -> bool {
        self.retry
    }

    /// The `redirect_uri` to send to WeChat: `callback_url` (absolute, e.g.
    /// `https://shop.example.com/wechat/oauth/callback`) plus the return path in its
    /// [`RETURN_PARAM`] query parameter (left out for `/`).
    pub fn redirect_uri(&self, callback_url: &str) -> String {
        if self.return_path == "/" {
            return callback_url.to_owned();
        }
        let separator = if callback_url.contains('?') { '&' } else { '?' };
        format!(
            "{callback_url}{separator}{RETURN_PARAM}={}",
            encode_component(&self.return_path)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const TTL: Duration = Duration::from_secs(600);

    fn keys() -> SessionKeys {
        SessionKeys::new([9u8; 32]).unwrap()
    }

    fn app() -> AppId {
        AppId::new("wx1234567890abcdef")
    }

    #[test]
    fn round_trip_and_format() {
        for (path, retry) in [("/", false), ("/a/b?c=d&e=%20f", true), ("/x#frag", false)] {
            let state = OAuthState::issue_at(&keys(), &app(), path, TTL, retry, NOW);
            let s = state.as_str();
            assert!(
                s.len() <= STATE_MAX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{s}"
            );
            assert_eq!(s.len(), 16 + 1 + 10 + 64);
            assert_eq!(&s[..16], state.nonce());
            assert_eq!(&s[16..17], if retry { "1" } else { "0" });
            assert_eq!(&s[17..27], (NOW + 600).to_string());
            let r = (path != "/").then_some(path);
            let back = OAuthState::verify_at(&keys(), &app(), s, r, NOW + 1).unwrap();
            assert_eq!(back, state);
            assert_eq!(back.is_retry(), retry);
            assert_eq!(back.return_path(), path);
        }
        let a = OAuthState::issue_at(&keys(), &app(), "/", TTL, false, NOW);
        let b = OAuthState::issue_at(&keys(), &app(), "/", TTL, false, NOW);
        assert_ne!(a.nonce(), b.nonce());
    }

    #[test]
    fn max_length_state_fits() {
        let state = OAuthState::issue_at(
            &keys(),
            &app(),
            "/",
            Duration::from_secs(u64::MAX),
            false,
            u64::MAX,
        );
        assert!(state.as_str().len() <= STATE_MAX_LEN);
        assert_eq!(state.expires_at(), u64::MAX);
    }

    #[test]
    fn tampering_is_refused() {
        let state = OAuthState::issue_at(&keys(), &app(), "/shop", TTL, false, NOW);
        let s = state.as_str();
        // Another return path.
        assert!(OAuthState::verify_at(&keys(), &app(), s, Some("/admin"), NOW).is_err());
        assert!(OAuthState::verify_at(&keys(), &app(), s, None, NOW).is_err());
        // Flipped retry flag, later expiry, other nonce, other MAC.
        let flip = |i: usize, to: char| {
            let mut v: Vec<char> = s.chars().collect();
            v[i] = to;
            v.into_iter().collect::<String>()
        };
        let retry_flipped = flip(16, '1');
        assert!(
            OAuthState::verify_at(&keys(), &app(), &retry_flipped, Some("/shop"), NOW).is_err()
        );
        let later = flip(17, '9');
        assert!(OAuthState::verify_at(&keys(), &app(), &later, Some("/shop"), NOW).is_err());
        let nonce = flip(0, if s.starts_with('a') { 'b' } else { 'a' });
        assert!(OAuthState::verify_at(&keys(), &app(), &nonce, Some("/shop"), NOW).is_err());
        let mac = flip(s.len() - 1, if s.ends_with('0') { '1' } else { '0' });
        assert!(OAuthState::verify_at(&keys(), &app(), &mac, Some("/shop"), NOW).is_err());
        // Another key.
        let other = SessionKeys::new([8u8; 32]).unwrap();
        assert!(OAuthState::verify_at(&other, &app(), s, Some("/shop"), NOW).is_err());
        // Another app with the same keys.
        let other_app = AppId::new("wx0000000000000000");
        assert!(OAuthState::verify_at(&keys(), &other_app, s, Some("/shop"), NOW).is_err());
        // Still fine with the right inputs.
        assert!(OAuthState::verify_at(&keys(), &app(), s, Some("/shop"), NOW).is_ok());
    }

    #[test]
    fn previous_keys_verify_states() {
        let state = OAuthState::issue_at(&keys(), &app(), "/", TTL, false, NOW);
        let rotated = SessionKeys::new([1u8; 32])
            .unwrap()
            .with_previous([9u8; 32])
            .unwrap();
        assert!(OAuthState::verify_at(&rotated, &app(), state.as_str(), None, NOW).is_ok());
    }

    #[test]
    fn expiry_is_enforced() {
        let state = OAuthState::issue_at(&keys(), &app(), "/", TTL, false, NOW);
        assert!(OAuthState::verify_at(&keys(), &app(), state.as_str(), None, NOW + 599).is_ok());
        let err =
            OAuthState::verify_at(&keys(), &app(), state.as_str(), None, NOW + 600).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn malformed_states_are_refused() {
        let long = "a".repeat(200);
        let good = OAuthState::issue_at(&keys(), &app(), "/", TTL, false, NOW);
        let with_dash = format!("{}-", &good.as_str()[..good.as_str().len() - 1]);
        let bad_flag = format!("{}x{}", &good.as_str()[..16], &good.as_str()[17..]);
        for bad in [
            "",
            "abc",
            long.as_str(),
            with_dash.as_str(),
            bad_flag.as_str(),
        ] {
            let err = OAuthState::verify_at(&keys(), &app(), bad, None, NOW).unwrap_err();
            assert!(matches!(err, Error::InvalidState(_)), "{bad}");
        }
    }

    #[test]
    fn open_redirects_become_root() {
        for evil in [
            "//evil.com",
            "//evil.com/path",
            "/\\evil.com",
            "/a\\b",
            "http://evil.com",
            "https://evil.com/x",
            "javascript:alert(1)",
            "evil.com",
            "",
            "/\t/evil.com",
            "/\n/evil.com",
            "/ /x",
            "/caf\u{e9}",
            "\u{0}/x",
        ] {
            assert_eq!(safe_return_path(evil), "/", "{evil:?}");
            let state = OAuthState::issue_at(&keys(), &app(), evil, TTL, false, NOW);
            assert_eq!(state.return_path(), "/");
            assert_eq!(
                state.redirect_uri("https://x.example/cb"),
                "https://x.example/cb"
            );
        }
        for fine in [
            "/",
            "/a",
            "/a/b?c=d&e=f",
            "/x#y",
            "/%2F%2Fevil.com",
            "/a//b",
        ] {
            assert_eq!(safe_return_path(fine), fine);
        }
        let long_query = format!("/page?{}", "q".repeat(2000));
        assert_eq!(safe_return_path(&long_query), "/page");
        let long_path = format!("/{}", "p".repeat(2000));
        assert_eq!(safe_return_path(&long_path), "/");
    }

    #[test]
    fn verified_return_path_is_sanitized_again() {
        // Even a correctly signed unsafe path (signed by a buggy or older issuer) is not followed.
        let keys = keys();
        let nonce = "AAAAAAAAAAAAAAAA";
        let expiry = (NOW + 60).to_string();
        let mac = keys.sign(
            STATE_LABEL,
            &[
                app().as_str().as_bytes(),
                nonce.as_bytes(),
                b"0",
                expiry.as_bytes(),
                b"//evil.com",
            ],
        );
        let state = format!("{nonce}0{expiry}{}", hex::encode(mac));
        let verified =
            OAuthState::verify_at(&keys, &app(), &state, Some("//evil.com"), NOW).unwrap();
        assert_eq!(verified.return_path(), "/");
    }

    #[test]
    fn redirect_uri_carries_the_return_path() {
        let state = OAuthState::issue_at(&keys(), &app(), "/a b?x=1&y=+", TTL, false, NOW);
        // A space is not a safe path character: the path is replaced.
        assert_eq!(state.return_path(), "/");
        let state = OAuthState::issue_at(&keys(), &app(), "/a?x=1&y=+%2B", TTL, false, NOW);
        assert_eq!(
            state.redirect_uri("https://h.example/cb"),
            "https://h.example/cb?r=%2Fa%3Fx%3D1%26y%3D%2B%252B"
        );
        assert_eq!(
            state.redirect_uri("https://h.example/cb?k=v"),
            "https://h.example/cb?k=v&r=%2Fa%3Fx%3D1%26y%3D%2B%252B"
        );
        let back: Vec<(String, String)> =
            url::form_urlencoded::parse(b"r=%2Fa%3Fx%3D1%26y%3D%2B%252B")
                .into_owned()
                .collect();
        assert_eq!(back[0].1, "/a?x=1&y=+%2B");
    }
}
