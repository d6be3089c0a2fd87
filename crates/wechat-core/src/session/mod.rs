//! Who is logged in, and proof that the login started here: the signed session cookie, its
//! keys, and the signed OAuth `state`.
//!
//! - [`SessionCookie`]: a stateless cookie holding the [`SessionUser`], authenticated with
//!   HMAC-SHA256 under [`SessionKeys`] that can be rotated, so that any number of instances (in
//!   either framework) accept it with no shared store.
//! - [`OAuthState`]: the `state` parameter of the authorize URL, signed and bound to the
//!   browser, carrying a return path that cannot become an open redirect
//!   ([`safe_return_path`]).
//!
//! It implements the `state` advice of WeChat's
//! [web page authorization](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html)
//! (CSRF protection of the callback) and keeps the result of the login in a cookie.
//!
//! ```
//! use wechat_core::session::{SessionCookie, SessionKeys};
//! use wechat_core::OpenId;
//!
//! let cookie = SessionCookie::new(SessionKeys::generate());
//! let user = cookie.new_user(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"));
//! let value = cookie.encode(&user)?;
//! assert_eq!(cookie.decode(&value), Some(user));
//! # Ok::<(), wechat_core::Error>(())
//! ```

mod cache;
mod cookie;
mod keys;
mod state;
#[cfg(test)]
mod tests;
mod user;

pub use cookie::{MAX_COOKIE_VALUE_LEN, SessionCookie, SessionCookieBuilder};
pub(crate) use cookie::{cookie_values, is_plain_path, set_cookie_value};
pub use keys::{MIN_KEY_LEN, SessionKeys};
pub use state::{MAX_RETURN_PATH_LEN, OAuthState, RETURN_PARAM, STATE_MAX_LEN, safe_return_path};
pub use user::{Profile, SessionUser};
