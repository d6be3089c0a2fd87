//! Web OAuth against the simulator over real HTTP: authorize page, codes, sns/* calls.

mod common;

use common::*;
use serde_json::Value;
use url::Url;
use wechat_sim::RunningSim;

fn authorize_url(sim: &RunningSim, redirect_uri: &str, scope: &str, state: &str) -> String {
    let mut url = Url::parse(&format!("{}/connect/oauth2/authorize", sim.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("appid", APPID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", state);
    format!("{url}#wechat_redirect")
}

/// Follows the snsapi_base redirect and returns the Location's query pairs.
async fn base_login(sim: &RunningSim, http: &reqwest::Client) -> Vec<(String, String)> {
    let res = http
        .get(authorize_url(sim, CALLBACK, "snsapi_base", "xyz123"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:3000/wechat/oauth/callback?next=%2Fshop&code="),
        "{location}"
    );
    location.query_pairs().into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn exchange(sim: &RunningSim, http: &reqwest::Client, code: &str) -> Value {
    get_json(
        http,
        format!(
            "{}/sns/oauth2/access_token?appid={APPID}&secret={SECRET}&code={code}&grant_type=authorization_code",
            sim.base_url()
        ),
    )
    .await
}

async fn page(http: &reqwest::Client, url: String) -> String {
    let res = http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn snsapi_base_logs_in_the_first_user_and_codes_are_single_use() {
    let sim = start().await;
    let http = client();
    let pairs = base_login(&sim, &http).await;
    assert_eq!(param(&pairs, "next"), Some("/shop"));
    assert_eq!(param(&pairs, "state"), Some("xyz123"));
    let code = param(&pairs, "code").unwrap();

    let token = exchange(&sim, &http, code).await;
    assert_eq!(token["openid"], ALICE);
    assert_eq!(token["scope"], "snsapi_base");
    assert_eq!(token["expires_in"], 7200);
    assert!(
        token.get("unionid").is_none(),
        "unionid only with snsapi_userinfo"
    );
    assert!(token["refresh_token"].is_string());

    assert_errcode(&exchange(&sim, &http, code).await, 40163);
    assert_errcode(&exchange(&sim, &http, "nosuchcode").await, 40029);

    let access = token["access_token"].as_str().unwrap();
    let base = sim.base_url();
    let info = get_json(
        &http,
        format!("{base}/sns/userinfo?access_token={access}&openid={ALICE}&lang=zh_CN"),
    )
    .await;
    assert_errcode(&info, 48001);
    let auth = get_json(
        &http,
        format!("{base}/sns/auth?access_token={access}&openid={ALICE}"),
    )
    .await;
    assert_eq!(auth, serde_json::json!({"errcode": 0, "errmsg": "ok"}));
    let auth = get_json(
        &http,
        format!("{base}/sns/auth?access_token={access}&openid=oOther"),
    )
    .await;
    assert_errcode(&auth, 40003);
    let auth = get_json(
        &http,
        format!("{base}/sns/auth?access_token=bogus&openid={ALICE}"),
    )
    .await;
    assert_errcode(&auth, 40001);
}

#[tokio::test]
async fn codes_expire_after_five_minutes_of_sim_clock() {
    let sim = start().await;
    let http = client();
    let fresh = base_login(&sim, &http).await;
    advance(&sim, &http, 299).await;
    let ok = exchange(&sim, &http, param(&fresh, "code").unwrap()).await;
    assert_eq!(ok["openid"], ALICE);

    let stale = base_login(&sim, &http).await;
    advance(&sim, &http, 300).await;
    assert_errcode(
        &exchange(&sim, &http, param(&stale, "code").unwrap()).await,
        42003,
    );
}

#[tokio::test]
async fn exchange_errors() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let pairs = base_login(&sim, &http).await;
    let code = param(&pairs, "code").unwrap();
    let cases = [
        (
            format!("appid={APPID}&secret={SECRET}&grant_type=authorization_code"),
            41008,
        ),
        (
            format!("appid=wxunknown&secret={SECRET}&code={code}&grant_type=authorization_code"),
            40013,
        ),
        (
            format!("appid={APPID}&secret=wrong&code={code}&grant_type=authorization_code"),
            40125,
        ),
        (
            format!("secret={SECRET}&code={code}&grant_type=authorization_code"),
            41002,
        ),
        (
            format!("appid={APPID}&secret={SECRET}&code={code}&grant_type=nope"),
            40002,
        ),
    ];
    for (query, errcode) in cases {
        let body = get_json(&http, format!("{base}/sns/oauth2/access_token?{query}")).await;
        assert_errcode(&body, errcode);
    }
    // None of the failures consumed the code.
    assert_eq!(exchange(&sim, &http, code).await["openid"], ALICE);
    // Garbage in the query is answered with WeChat's JSON, not a framework error.
    let body = get_json(
        &http,
        format!("{base}/sns/oauth2/access_token?%zz&&=&appid"),
    )
    .await;
    assert_errcode(&body, 41002);
}

#[tokio::test]
async fn authorize_errors_show_wechat_error_pages() {
    let sim = start().await;
    let http = client();
    let other_domain = page(
        &http,
        authorize_url(&sim, "http://127.0.0.1:4000/cb", "snsapi_base", "s"),
    )
    .await;
    assert!(
        other_domain.contains(r#"id="sim-error-code">10003<"#),
        "{other_domain}"
    );
    let scope = page(&http, authorize_url(&sim, CALLBACK, "snsapi_login", "s")).await;
    assert!(scope.contains(">10005<"), "{scope}");
    let unknown = page(
        &http,
        format!("{}/connect/oauth2/authorize?appid=wxnope&redirect_uri=x&response_type=code&scope=snsapi_base", sim.base_url()),
    )
    .await;
    assert!(unknown.contains("invalid appid"), "{unknown}");
    let long_state = page(
        &http,
        authorize_url(&sim, CALLBACK, "snsapi_base", &"a".repeat(129)),
    )
    .await;
    assert!(long_state.contains("state"), "{long_state}");
}

#[tokio::test]
async fn snsapi_userinfo_consent_page_allow_and_deny() {
    let sim = start().await;
    let http = client();
    let html = page(
        &http,
        authorize_url(&sim, CALLBACK, "snsapi_userinfo", "st4te"),
    )
    .await;
    assert!(html.contains(r#"id="sim-consent-allow""#));
    assert!(html.contains(r#"id="sim-consent-deny""#));
    assert!(
        html.contains(&format!(r#"value="{ALICE}" checked"#)),
        "first user preselected"
    );
    assert!(html.contains("Bob"));
    assert!(html.contains(r#"<form method="post" action="/connect/oauth2/authorize""#));

    // What the browser sends when "allow" is clicked with Alice selected.
    let form = [
        ("appid", APPID),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "snsapi_userinfo"),
        ("state", "st4te"),
        ("openid", ALICE),
        ("action", "allow"),
    ];
    let authorize = format!("{}/connect/oauth2/authorize", sim.base_url());
    let res = http.post(&authorize).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let location = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(param(&pairs, "state"), Some("st4te"));
    let token = exchange(&sim, &http, param(&pairs, "code").unwrap()).await;
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(token["unionid"], ALICE_UNIONID);

    let access = token["access_token"].as_str().unwrap();
    let info = get_json(
        &http,
        format!(
            "{}/sns/userinfo?access_token={access}&openid={ALICE}&lang=en",
            sim.base_url()
        ),
    )
    .await;
    assert_eq!(info["nickname"], "Alice");
    assert_eq!(info["sex"], 2);
    assert_eq!(info["city"], "Shenzhen");
    assert_eq!(info["headimgurl"], "http://127.0.0.1:3000/avatar.png");
    assert_eq!(info["unionid"], ALICE_UNIONID);
    assert_eq!(info["privilege"], serde_json::json!([]));

    // Bob has no configured openid: he gets the derived one.
    let bob = wechat_sim::derive_openid(APPID, "Bob");
    assert_eq!(bob.len(), 28);
    assert!(html.contains(&bob));
    let mut bob_form = form;
    bob_form[5] = ("openid", &bob);
    let res = http.post(&authorize).form(&bob_form).send().await.unwrap();
    let location = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let token = exchange(&sim, &http, &code).await;
    assert_eq!(token["openid"], bob.as_str());
    assert!(token.get("unionid").is_none());

    // Deny: back to redirect_uri with the state and no code.
    let mut deny = form;
    deny[6] = ("action", "deny");
    let res = http.post(&authorize).form(&deny).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        "http://127.0.0.1:3000/wechat/oauth/callback?next=%2Fshop&state=st4te"
    );
}

#[tokio::test]
async fn refresh_keeps_a_valid_token_and_replaces_an_expired_one() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let pairs = base_login(&sim, &http).await;
    let token = exchange(&sim, &http, param(&pairs, "code").unwrap()).await;
    let (access, refresh) = (
        token["access_token"].as_str().unwrap(),
        token["refresh_token"].as_str().unwrap(),
    );
    let refresh_url = |rt: &str| {
        format!(
            "{base}/sns/oauth2/refresh_token?appid={APPID}&grant_type=refresh_token&refresh_token={rt}"
        )
    };

    let same = get_json(&http, refresh_url(refresh)).await;
    assert_eq!(same["access_token"], access);
    assert_eq!(same["refresh_token"], refresh);
    assert_eq!(same["openid"], ALICE);

    advance(&sim, &http, 7200).await;
    let auth = get_json(
        &http,
        format!("{base}/sns/auth?access_token={access}&openid={ALICE}"),
    )
    .await;
    assert_errcode(&auth, 42001);
    let renewed = get_json(&http, refresh_url(refresh)).await;
    let new_access = renewed["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    let auth = get_json(
        &http,
        format!("{base}/sns/auth?access_token={new_access}&openid={ALICE}"),
    )
    .await;
    assert_eq!(auth["errcode"], 0);

    assert_errcode(&get_json(&http, refresh_url("bogus")).await, 40030);
    let missing = format!("{base}/sns/oauth2/refresh_token?appid={APPID}&grant_type=refresh_token");
    assert_errcode(&get_json(&http, missing).await, 41003);
    advance(&sim, &http, 30 * 24 * 3600).await;
    assert_errcode(&get_json(&http, refresh_url(refresh)).await, 42002);
}
