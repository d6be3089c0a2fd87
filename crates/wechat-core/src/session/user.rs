//! Who is logged in: [`SessionUser`] and its [`Profile`].

use crate::oauth::{Sex, UserInfo};
use crate::{OpenId, UnionId};

/// The profile fields kept in the session for `snsapi_userinfo` logins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The nickname (cut to 64 characters in the cookie).
    pub nickname: String,
    /// The avatar URL (left out of the cookie when longer than 1024 bytes).
    pub headimgurl: String,
    /// The sex.
    pub sex: Sex,
    /// Province.
    pub province: String,
    /// City.
    pub city: String,
    /// Country.
    pub country: String,
}

impl From<&UserInfo> for Profile {
    fn from(info: &UserInfo) -> Self {
        Self {
            nickname: info.nickname.clone(),
            headimgurl: info.headimgurl.clone(),
            sex: info.sex,
            province: info.province.clone(),
            city: info.city.clone(),
            country: info.country.clone(),
        }
    }
}

/// The logged-in user, read from a valid session cookie.
///
/// The login middleware of `wechat-tower` and `wechat-actix` puts it into the request extensions
/// (see [`Decision::Proceed`](crate::login::Decision::Proceed)); handlers read it with the adapters'
/// extractors or [`SessionUser::from_extensions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The user's openid for this app (virtual for a snapshot user).
    pub openid: OpenId,
    /// The unionid, when WeChat returned one.
    pub unionid: Option<UnionId>,
    /// The profile, for `snsapi_userinfo` logins of non-snapshot users.
    pub profile: Option<Profile>,
    /// The user opened the page from a Moments snapshot: a guest with a virtual openid and no
    /// profile.
    pub is_snapshot_user: bool,
    /// When the session ends, in unix seconds.
    pub expires_at: u64,
}

impl SessionUser {
    /// A user with only an openid, whose session ends at `expires_at` (unix seconds).
    pub fn new(openid: OpenId, expires_at: u64) -> Self {
        Self {
            openid,
            unionid: None,
            profile: None,
            is_snapshot_user: false,
            expires_at,
        }
    }

    /// The user the login middleware put into `http` request extensions, if any (it puts an
    /// `Arc<SessionUser>` there, shared with its cache).
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<std::sync::Arc<Self>>().map(|user| &**user)
    }
}
