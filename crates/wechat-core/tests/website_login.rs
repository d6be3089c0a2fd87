//! Website QR-code login (an Open Platform website application, `snsapi_login`) against
//! wechat-sim on 127.0.0.1, in a desktop browser: the `qrconnect` page and its refusals, the code
//! exchanged with the website app's own credentials (and refused with the Official Account's),
//! the 10-minute single-use code, userinfo with the unionid, and the same person known under both
//! apps by one unionid.

use wechat_core::oauth::{EmbeddedQrLogin, Lang, Scope};
use wechat_core::{ApiErrorKind, Error, OpenId, UnionId};
use wechat_sim::{RunningSim, Simulator, fixtures};
use wechat_test_support::Browser;

mod common;

const OA: &str = fixtures::APPID;
const OA_SECRET: &str = fixtures::SECRET;
const WEBSITE: &str = "wxbdc5610cc59c1631";
const WEBSITE_SECRET: &str = "abcdef0123456789abcdef0123456789";
const CALLBACK: &str = "http://127.0.0.1:3000/wechat/oauth/callback";
/// Alice in the website application: another openid, the same unionid as in the Official
/// Account.
const ALICE_WEB: &str = "oWebAlice00000000000000000001";
const UNIONID: &str = fixtures::ALICE_UNIONID;

fn sim_toml() -> String {
    format!(
        r#"[[apps]]
appid = "{OA}"
secret = "{OA_SECRET}"
oauth_domains = ["127.0.0.1:3000"]

[[apps]]
appid = "{WEBSITE}"
secret = "{WEBSITE_SECRET}"
kind = "website"
oauth_domains = ["127.0.0.1:3000"]

[[users]]
appid = "{OA}"
openid = "{alice}"
unionid = "{UNIONID}"
nickname = "Alice"

[[users]]
appid = "{WEBSITE}"
openid = "{ALICE_WEB}"
unionid = "{UNIONID}"
nickname = "Alice"
"#,
        alice = fixtures::ALICE,
    )
}

async fn start() -> RunningSim {
    Simulator::from_toml_str(&sim_toml())
        .unwrap()
        .start()
        .await
        .unwrap()
}

use common::{oauth_client as client, param};

/// The desktop browser on the QR page, and the phone that scans it: `action` as `openid`;
/// returns where WeChat sends the browser.
async fn scan(url: &str, openid: &str, action: &str) -> String {
    let browser = Browser::desktop();
    let page = browser.page(url).send().await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!("sim-login-as-{openid}")),
        "{}",
        page.body
    );
    let query = url::Url::parse(url).unwrap();
    let mut form: Vec<(String, String)> = query
        .query_pairs()
        .filter(|(k, _)| {
            matches!(
                k.as_ref(),
                "appid" | "redirect_uri" | "response_type" | "scope" | "state"
            )
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("openid".into(), openid.into()));
    form.push(("action".into(), action.into()));
    let origin = url::Url::parse(url).unwrap();
    let answer = browser
        .submit(&format!(
            "{}/connect/qrconnect",
            origin.origin().ascii_serialization()
        ))
        .form(&form)
        .send()
        .await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    answer.location().unwrap().to_owned()
}

#[tokio::test]
async fn a_desktop_visitor_logs_in_by_qr_code_as_the_same_person_as_in_the_official_account() {
    let sim = start().await;
    let website = client(&sim, WEBSITE, WEBSITE_SECRET);
    let back = scan(&website.qrconnect_url(CALLBACK, "s1"), ALICE_WEB, "allow").await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    let code = param(&back, "code").expect("a code");

    let token = website.exchange_code(&code).await.unwrap();
    assert_eq!(token.appid.as_str(), WEBSITE);
    assert_eq!(token.openid, OpenId::new(ALICE_WEB));
    assert_eq!(token.scope, ["snsapi_login"]);
    assert_eq!(token.unionid, Some(UnionId::new(UNIONID)));
    let profile = website
        .userinfo(&token.access_token, &token.openid, Lang::ZhCn)
        .await
        .unwrap();
    assert_eq!(
        (
            profile.nickname.as_str(),
            profile.unionid.as_ref().map(UnionId::as_str)
        ),
        ("Alice", Some(UNIONID))
    );
    // The code is single use.
    assert!(matches!(
        website.exchange_code(&code).await,
        Err(Error::WeChat(e)) if e.kind == ApiErrorKind::CodeAlreadyUsed
    ));

    // Alice under the Official Account: another openid, the same unionid: the same person.
    let oa = client(&sim, OA, OA_SECRET);
    let back = Browser::wechat()
        .back_from_wechat(
            &oa.authorize_url(CALLBACK, Scope::UserInfo, "s2"),
            Some((fixtures::ALICE, "allow")),
        )
        .await;
    let oa_token = oa
        .exchange_code(&param(&back, "code").unwrap())
        .await
        .unwrap();
    assert_ne!(oa_token.openid, token.openid);
    assert_eq!(
        (oa_token.appid.as_str(), oa_token.unionid.as_ref()),
        (OA, token.unionid.as_ref())
    );

    // The embedded variant is the same page, framed.
    let embedded = website.embedded_qrconnect_url(
        CALLBACK,
        "s3",
        &EmbeddedQrLogin {
            self_redirect: true,
            white: true,
            href: None,
        },
    );
    assert!(
        embedded.contains("login_type=jssdk&self_redirect=true"),
        "{embedded}"
    );
    let back = scan(&embedded, ALICE_WEB, "allow").await;
    assert!(param(&back, "code").is_some(), "{back}");
}

#[tokio::test]
async fn refusing_on_the_phone_comes_back_without_a_code() {
    let sim = start().await;
    let website = client(&sim, WEBSITE, WEBSITE_SECRET);
    let back = scan(&website.qrconnect_url(CALLBACK, "s1"), ALICE_WEB, "deny").await;
    assert_eq!(
        (param(&back, "code"), param(&back, "state").as_deref()),
        (None, Some("s1"))
    );
}

#[tokio::test]
async fn the_qrconnect_page_refuses_what_wechat_refuses() {
    let sim = start().await;
    let open = sim.base_url();
    let page = |appid: &str, redirect: &str, scope: &str| {
        format!(
            "{open}/connect/qrconnect?appid={appid}&redirect_uri={}&response_type=code&scope={scope}&state=s#wechat_redirect",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    let cases = [
        (
            page("wx0000000000000000", CALLBACK, "snsapi_login"),
            "AppID 参数错误",
        ),
        (
            page(OA, CALLBACK, "snsapi_login"),
            "Scope 参数错误或没有 Scope 权限",
        ),
        (
            page(WEBSITE, CALLBACK, "snsapi_base"),
            "Scope 参数错误或没有 Scope 权限",
        ),
        (
            page(WEBSITE, "http://evil.example/cb", "snsapi_login"),
            "redirect_uri 参数错误",
        ),
    ];
    let browser = Browser::desktop();
    for (url, text) in cases {
        let answer = browser.page(&url).send().await;
        assert!(
            answer.body.contains(text),
            "{url}: expected {text}: {}",
            answer.body
        );
        assert!(!answer.body.contains("sim-login-as-"), "no login offered");
    }
    // The Official Account's authorize page refuses a website application's AppID (10016).
    let oa_page = Browser::wechat()
        .page(&client(&sim, WEBSITE, WEBSITE_SECRET).authorize_url(CALLBACK, Scope::Base, "s"))
        .send()
        .await;
    assert!(oa_page.body.contains("10016"), "{}", oa_page.body);
}

#[tokio::test]
async fn a_website_code_needs_the_website_apps_secret_and_lives_ten_minutes() {
    let sim = start().await;
    let website = client(&sim, WEBSITE, WEBSITE_SECRET);
    let fresh_code = || async {
        param(
            &scan(&website.qrconnect_url(CALLBACK, "s"), ALICE_WEB, "allow").await,
            "code",
        )
        .unwrap()
    };

    // With the Official Account's secret: refused; under the Official Account's AppID: not its code.
    let code = fresh_code().await;
    let wrong_secret = client(&sim, WEBSITE, OA_SECRET).exchange_code(&code).await;
    assert!(
        matches!(&wrong_secret, Err(Error::WeChat(e)) if e.kind == ApiErrorKind::InvalidAppSecret),
        "{wrong_secret:?}"
    );
    let other_app = client(&sim, OA, OA_SECRET).exchange_code(&code).await;
    assert!(
        matches!(&other_app, Err(Error::WeChat(e)) if e.kind == ApiErrorKind::InvalidCode),
        "{other_app:?}"
    );

    // Still good after 6 minutes (a web OAuth code would have expired), gone after 10.
    sim.advance_clock(6 * 60);
    assert!(website.exchange_code(&code).await.is_ok());
    let late = fresh_code().await;
    sim.advance_clock(10 * 60);
    assert!(
        matches!(website.exchange_code(&late).await, Err(Error::WeChat(e)) if e.kind == ApiErrorKind::InvalidCode)
    );
}
