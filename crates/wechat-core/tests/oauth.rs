//! Web OAuth against wechat-sim on 127.0.0.1: codes from the sim's authorize page (in the test
//! browser, as WeChat's in-app one), exchange, single use, userinfo, refresh, sns/auth.

use std::time::Duration;

use wechat_core::oauth::{Lang, OAuthClient, Scope, Sex};
use wechat_core::{
    ApiError, ApiErrorKind, BaseUrls, Config, Error, OpenId, RefreshToken, build_http_client,
};
use wechat_sim::{RunningSim, Simulator, fixtures};
use wechat_test_support::Browser;

mod common;

const APPID: &str = fixtures::APPID;
const SECRET: &str = fixtures::SECRET;
const CALLBACK: &str = "http://127.0.0.1:3000/wechat/oauth/callback";
const ALICE: &str = fixtures::ALICE;
const ALICE_UNIONID: &str = fixtures::ALICE_UNIONID;
const GUEST: &str = fixtures::GUEST;

const SIM_TOML: &str = fixtures::OAUTH_TOML;

async fn start() -> (RunningSim, OAuthClient, Browser) {
    let sim = Simulator::from_toml_str(SIM_TOML)
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = oauth_client(&sim, SECRET);
    (sim, client, Browser::wechat())
}

fn oauth_client(sim: &RunningSim, secret: &str) -> OAuthClient {
    common::oauth_client(sim, APPID, secret)
}

use common::param;

async fn code(client: &OAuthClient, browser: &Browser, scope: Scope, user: &str) -> String {
    let url = client.authorize_url(CALLBACK, scope, "teststate1");
    let choice = (scope == Scope::UserInfo).then_some((user, "allow"));
    let back = browser.back_from_wechat(&url, choice).await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("teststate1"));
    param(&back, "code").expect("a code")
}

#[tokio::test]
async fn base_code_exchange_is_single_use() {
    let (sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::Base, ALICE).await;
    let token = client.exchange_code(&code).await.unwrap();
    assert_eq!(token.openid, OpenId::new(ALICE));
    assert_eq!(token.scope, ["snsapi_base"]);
    assert!(token.grants(Scope::Base) && !token.grants(Scope::UserInfo));
    assert_eq!(token.expires_in, 7200);
    assert!(token.unionid.is_none() && !token.is_snapshot_user);
    assert!(!format!("{token:?}").contains(token.access_token.expose_secret()));

    let again = client.exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            again,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::CodeAlreadyUsed,
                ..
            })
        ),
        "{again:?}"
    );
    assert!(again.to_string().contains("40163"), "{again}");

    let invalid = client.exchange_code("not-a-code").await.unwrap_err();
    assert!(
        matches!(
            invalid,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidCode,
                errcode: 40029,
                ..
            })
        ),
        "{invalid:?}"
    );
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 3);
}

#[tokio::test]
async fn codes_expire_after_five_minutes() {
    let (sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::Base, ALICE).await;
    sim.advance_clock(301);
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidCode,
                errcode: 42003,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn userinfo_needs_the_userinfo_scope() {
    let (_sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::Base, ALICE).await;
    let token = client.exchange_code(&code).await.unwrap();
    let err = client
        .userinfo(&token.access_token, &token.openid, Lang::ZhCn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::ScopeUnauthorized,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("snsapi_userinfo"), "{err}");
}

#[tokio::test]
async fn userinfo_scope_gives_the_profile_and_unionid() {
    let (_sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::UserInfo, ALICE).await;
    let token = client.exchange_code(&code).await.unwrap();
    assert!(token.grants(Scope::UserInfo));
    assert_eq!(
        token.unionid.as_ref().map(|u| u.as_str()),
        Some(ALICE_UNIONID)
    );
    let info = client
        .userinfo(&token.access_token, &token.openid, Lang::En)
        .await
        .unwrap();
    assert_eq!(info.openid, OpenId::new(ALICE));
    assert_eq!(info.nickname, "Alice");
    assert_eq!(info.sex, Sex::Female);
    assert_eq!(
        (
            info.province.as_str(),
            info.city.as_str(),
            info.country.as_str()
        ),
        ("Guangdong", "Shenzhen", "CN")
    );
    assert_eq!(info.headimgurl, "http://127.0.0.1:3000/avatar.png");
    assert_eq!(
        info.unionid.as_ref().map(|u| u.as_str()),
        Some(ALICE_UNIONID)
    );
}

#[tokio::test]
async fn snapshot_users_are_flagged_and_have_no_userinfo() {
    let (_sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::UserInfo, GUEST).await;
    let token = client.exchange_code(&code).await.unwrap();
    assert!(token.is_snapshot_user);
    assert_eq!(token.openid, OpenId::new(GUEST));
    let err = client
        .userinfo(&token.access_token, &token.openid, Lang::ZhCn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::ScopeUnauthorized,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn refresh_and_check() {
    let (sim, client, browser) = start().await;
    let code = code(&client, &browser, Scope::UserInfo, ALICE).await;
    let token = client.exchange_code(&code).await.unwrap();
    assert!(
        client
            .check(&token.access_token, &token.openid)
            .await
            .unwrap()
    );
    assert!(
        !client
            .check(&token.access_token, &OpenId::new("someone-else"))
            .await
            .unwrap()
    );

    // Still valid: refreshing keeps working and belongs to the same user.
    let refreshed = client.refresh(&token.refresh_token).await.unwrap();
    assert_eq!(refreshed.openid, token.openid);
    assert!(refreshed.grants(Scope::UserInfo));

    // Expired access token: userinfo and sns/auth say so; a refresh gives a working one.
    sim.advance_clock(7201);
    let err = client
        .userinfo(&refreshed.access_token, &refreshed.openid, Lang::ZhCn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::OAuthTokenInvalid,
                errcode: 42001,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("refresh"), "{err}");
    assert!(
        !client
            .check(&refreshed.access_token, &refreshed.openid)
            .await
            .unwrap()
    );
    let renewed = client.refresh(&refreshed.refresh_token).await.unwrap();
    assert_ne!(renewed.access_token, refreshed.access_token);
    assert!(
        client
            .check(&renewed.access_token, &renewed.openid)
            .await
            .unwrap()
    );
    let info = client
        .userinfo(&renewed.access_token, &renewed.openid, Lang::ZhCn)
        .await
        .unwrap();
    assert_eq!(info.nickname, "Alice");

    let bad = client
        .refresh(&RefreshToken::new("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::RefreshTokenInvalid,
                errcode: 40030,
                ..
            })
        ),
        "{bad:?}"
    );
    let bad_token = wechat_core::OAuthAccessToken::new("garbage");
    assert!(!client.check(&bad_token, &renewed.openid).await.unwrap());
}

#[tokio::test]
async fn wrong_secret_is_named_and_never_shown() {
    let (sim, _client, browser) = start().await;
    let good = oauth_client(&sim, SECRET);
    let code = code(&good, &browser, Scope::Base, ALICE).await;
    let wrong = "ffffffffffffffffffffffffffffffff";
    let err = oauth_client(&sim, wrong)
        .exchange_code(&code)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppSecret,
                errcode: 40125,
                ..
            })
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");
}

#[tokio::test]
async fn denied_consent_comes_back_without_code() {
    let (_sim, client, browser) = start().await;
    let url = client.authorize_url(CALLBACK, Scope::UserInfo, "s1");
    let back = browser.back_from_wechat(&url, Some((ALICE, "deny"))).await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    assert_eq!(param(&back, "code"), None);
}

#[tokio::test]
async fn unreachable_wechat_is_a_transport_error_without_secrets() {
    let config = Config::new(APPID, SECRET)
        .with_base_urls(BaseUrls::all("http://127.0.0.1:9"))
        .with_timeout(Duration::from_secs(5));
    let client = OAuthClient::new(&config, build_http_client(&config).unwrap());
    let err = client.exchange_code("CODE").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Http {
                endpoint: "/sns/oauth2/access_token",
                ..
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}
