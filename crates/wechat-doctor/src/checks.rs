//! The checks that talk to WeChat. None changes anything or spends money: the access token comes
//! from `cgi-bin/stable_token` (which hands back the token the app already has, and never
//! retires it, unlike `cgi-bin/token`), and the WeChat Pay checks query an order number that
//! was never used.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wechat_core::PayError;

use rand::Rng as _;
use wechat_core::clock::{Clock as _, SystemClock};
use wechat_core::pay::v2::{self, OrderRef};
use wechat_core::pay::v3::{
    self, MerchantKey, PayApiErrorCode, PlatformCertificate, SignatureHeaders, WechatPayKeys,
    WechatPayPublicKey,
};
use wechat_core::token::{MemoryStore, Tokens};
use wechat_core::{
    ApiError, ApiErrorKind, ApiV3Key, Config, Error, OutTradeNo, PayApiKey, TokenEndpoint,
};

use crate::public_url::check_public_url;
use crate::report::{Check, Report};
use crate::settings::{PaySettings, Settings};

/// Where WeChat Pay would send notifications: never used (no order is placed), but the Pay
/// configurations require one.
const UNUSED_NOTIFY_URL: &str = "https://wechat-doctor.invalid/wechat/pay/notify";

/// The clock skew above which the clock check fails.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Where the merchant platform keeps the API keys and certificates.
const API_SECURITY: &str = "the merchant platform (pay.weixin.qq.com) → 账户中心 → API安全";

/// Runs every check against the setup `settings` describes and returns their outcomes, in the
/// order printed: `credentials`, `jsapi_ticket`, `public_url`, the WeChat Pay checks (`v2_key`,
/// or `v3_merchant_key`, `v3_apiv3_key`, `v3_public_key`, `v3_query`), `clock`.
///
/// No message contains a configured secret (AppSecret, WeChat Pay keys) or a token.
pub async fn run(settings: &Settings) -> Report {
    let config = Config::new(settings.appid.clone(), settings.secret.clone())
        .with_base_urls(settings.base_urls.clone())
        .with_token_endpoint(TokenEndpoint::StableToken);
    let mut report = Report::default();
    let http = match wechat_core::build_http_client(&config) {
        Ok(http) => http,
        Err(e) => {
            report.checks.push(Check::fail(
                "credentials",
                e,
                "The HTTP client cannot be built on this machine",
            ));
            return report;
        }
    };
    let tokens = Tokens::new(&config, http.clone(), Arc::new(MemoryStore::new()));
    let credentials = check_credentials(settings, &tokens).await;
    let have_token = credentials.status == crate::Status::Ok;
    report.checks.push(credentials);
    report.checks.push(if have_token {
        check_jsapi_ticket(&tokens).await
    } else {
        Check::skip("jsapi_ticket", "needs an access token (see credentials)")
    });
    report
        .checks
        .push(check_public_url(settings.public_url.as_deref()));
    match (&settings.pay, &settings.mch_id) {
        (Some(PaySettings::V2 { key, sign_type }), Some(mch_id)) => {
            report
                .checks
                .push(check_v2_key(settings, mch_id.as_str(), key.as_ref(), *sign_type).await);
        }
        (Some(PaySettings::V3 { .. }), Some(_)) => {
            report.checks.extend(check_v3(settings, &http).await);
        }
        _ => report.checks.push(Check::skip(
            "pay",
            "WECHAT_MCH_ID is unset: no WeChat Pay to check",
        )),
    }
    report.checks.push(check_clock(settings, &http).await);
    let mut secrets = settings.secrets();
    if have_token {
        if let Ok(token) = tokens.access_token().await {
            secrets.push(token.expose_secret().to_owned());
        }
        if let Ok(ticket) = tokens.jsapi_ticket().await {
            secrets.push(ticket.expose_secret().to_owned());
        }
    }
    report.redact(&secrets);
    report
}

/// `credentials`: an access token for the AppID and AppSecret.
async fn check_credentials(settings: &Settings, tokens: &Tokens) -> Check {
    const NAME: &str = "credentials";
    let appid = settings.appid.as_str();
    match tokens.access_token().await {
        Ok(_) => Check::ok(
            NAME,
            format!(
                "WECHAT_APPID {appid} and WECHAT_SECRET got an access token (cgi-bin/stable_token)"
            ),
        ),
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::IpNotWhitelisted { ip },
            errcode,
            ..
        })) => Check::fail(
            NAME,
            format!(
                "WeChat refused the token call from IP {ip} (errcode {errcode}: invalid ip, not in \
                 whitelist)"
            ),
            &format!(
                "Add {ip} to the IP whitelist in the Official Accounts Platform (mp.weixin.qq.com): \
                 设置与开发 → 基本配置 → IP白名单 (Development > Basic configuration > IP whitelist); \
                 behind NAT this is the egress IP of every server that fetches tokens"
            ),
        ),
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::InvalidAppSecret,
            errcode,
            ..
        })) => Check::fail(
            NAME,
            format!(
                "WeChat rejected WECHAT_SECRET for {appid} (errcode {errcode}: invalid appsecret)"
            ),
            "Copy the AppSecret again from the Official Accounts Platform: 设置与开发 → 基本配置 → \
             AppSecret (it changes when it is reset; the app and this check must use the current one)",
        ),
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::InvalidAppId,
            ..
        })) => Check::fail(
            NAME,
            format!("WeChat does not know WECHAT_APPID={appid} (errcode 40013: invalid appid)"),
            "Copy the AppID (wx…) from the Official Accounts Platform: 设置与开发 → 基本配置 (an \
             Official Account's, not a Mini Program's or an Open Platform app's)",
        ),
        Err(e) => Check::fail(
            NAME,
            e,
            "Check WECHAT_APPID, WECHAT_SECRET and WECHAT_API_BASE; errcodes are listed at \
             https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html",
        ),
    }
}

/// `jsapi_ticket`: the JS-SDK ticket, with the token.
async fn check_jsapi_ticket(tokens: &Tokens) -> Check {
    const NAME: &str = "jsapi_ticket";
    match tokens.jsapi_ticket().await {
        Ok(_) => Check::ok(NAME, "cgi-bin/ticket/getticket gave a jsapi_ticket"),
        Err(
            e @ Error::WeChat(ApiError {
                kind: ApiErrorKind::ScopeUnauthorized,
                ..
            }),
        ) => Check::fail(
            NAME,
            e,
            "The account may not use the JS-SDK: it needs a verified account (or a test account)",
        ),
        Err(
            e @ Error::WeChat(ApiError {
                kind: ApiErrorKind::QuotaExceeded,
                ..
            }),
        ) => Check::fail(
            NAME,
            e,
            "The ticket's daily quota is used up: share one ticket between the app's instances \
             (WECHAT_REDIS_URL) and wait until tomorrow or reset the quota",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("getticket failed: {e}"),
            "The access token works but the ticket does not: check the errcode above",
        ),
    }
}

/// A fresh order number no order ever had: `doctor` + 24 random digits.
fn unused_out_trade_no() -> OutTradeNo {
    let mut rng = rand::rng();
    let digits: String = (0..24)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    OutTradeNo::new(format!("doctor{digits}"))
}

/// `v2_key`: a signed `orderquery` of an order that does not exist must answer ORDERNOTEXIST.
async fn check_v2_key(
    settings: &Settings,
    mch_id: &str,
    key: Option<&PayApiKey>,
    sign_type: v2::SignType,
) -> Check {
    const NAME: &str = "v2_key";
    let Some(key) = key else {
        return Check::fail(
            NAME,
            "WECHAT_PAY_KEY is not set (WECHAT_PAY_VERSION is v2)",
            &format!(
                "Set it to the 32-character API v2 key from {API_SECURITY} → 设置APIv2密钥, or set \
                 WECHAT_PAY_VERSION=v3 for API v3 credentials"
            ),
        );
    };
    let config = match v2::PayConfig::builder(
        mch_id,
        settings.appid.clone(),
        key.clone(),
        UNUSED_NOTIFY_URL,
    )
    .sign_type(sign_type)
    .base_urls(&settings.base_urls)
    .build()
    {
        Ok(config) => config,
        Err(e) => {
            return Check::fail(
                NAME,
                e,
                &format!(
                    "WECHAT_PAY_KEY is the 32-character API v2 key from {API_SECURITY} (not the \
                     AppSecret, not the APIv3 key)"
                ),
            );
        }
    };
    let client = match v2::PayClient::new(config) {
        Ok(client) => client,
        Err(e) => return Check::fail(NAME, e, "The HTTP client cannot be built"),
    };
    let out_trade_no = unused_out_trade_no();
    let query = client
        .query_order(&OrderRef::OutTradeNo(out_trade_no.clone()))
        .await;
    let reset = format!(
        "The v2 API key (WECHAT_PAY_KEY) is wrong, or WECHAT_PAY_SIGN_TYPE is not the merchant's \
         ({}): reset it in {API_SECURITY} → 设置APIv2密钥 and configure the new one",
        sign_type.as_str()
    );
    match query {
        Err(Error::Pay(PayError::Business {
            code: v2::PayErrorCode::OrderNotExist,
            ..
        })) => Check::ok(
            NAME,
            format!(
                "a signed orderquery of an order that does not exist ({}) answered ORDERNOTEXIST: \
                 WECHAT_MCH_ID {mch_id} and WECHAT_PAY_KEY ({}) are right",
                out_trade_no.as_str(),
                sign_type.as_str()
            ),
        ),
        Err(Error::Pay(PayError::Return { return_msg, .. })) if return_msg.contains("签名错误") => {
            Check::fail(
                NAME,
                format!(
                    "WeChat Pay refused the orderquery's signature (return_code FAIL, {return_msg})"
                ),
                &reset,
            )
        }
        Err(Error::Pay(PayError::Business {
            code: v2::PayErrorCode::SignError,
            description,
            ..
        })) => Check::fail(
            NAME,
            format!("WeChat Pay refused the orderquery's signature (SIGNERROR, {description})"),
            &reset,
        ),
        Err(e @ Error::Pay(PayError::BadSignature(_))) => Check::fail(
            NAME,
            format!("the orderquery answer is not signed with WECHAT_PAY_KEY: {e}"),
            "Check WECHAT_PAY_BASE: the answer does not come from WeChat Pay for this merchant",
        ),
        Err(Error::Pay(PayError::Return { return_msg, .. })) => Check::fail(
            NAME,
            format!(
                "WeChat Pay refused the orderquery (return_code FAIL, return_msg {return_msg})"
            ),
            "Check WECHAT_MCH_ID and WECHAT_APPID (the merchant id and the AppID bound to it)",
        ),
        Err(Error::Pay(PayError::Business {
            code, description, ..
        })) => Check::fail(
            NAME,
            format!("WeChat Pay answered err_code {code} ({description}) instead of ORDERNOTEXIST"),
            "Check WECHAT_MCH_ID and WECHAT_APPID: APPID_MCHID_NOT_MATCH means the AppID is not \
             bound to the merchant (商户平台 → 产品中心 → AppID账号管理)",
        ),
        Err(e) => Check::fail(
            NAME,
            e,
            "Check WECHAT_PAY_BASE and that this server reaches WeChat Pay",
        ),
        Ok(_) => Check::ok(
            NAME,
            format!(
                "a signed orderquery of {} was answered and verified: WECHAT_PAY_KEY is right",
                out_trade_no.as_str()
            ),
        ),
    }
}

/// The v3 checks: `v3_merchant_key`, `v3_apiv3_key`, `v3_public_key`, `v3_query`.
async fn check_v3(settings: &Settings, http: &reqwest::Client) -> Vec<Check> {
    let Some(PaySettings::V3 {
        api_v3_key,
        merchant_key,
        merchant_serial,
        merchant_certificate,
        public_key,
        public_key_id,
    }) = &settings.pay
    else {
        return Vec::new();
    };
    let (key_check, key) = load_merchant_key(
        merchant_key.as_deref(),
        merchant_serial.as_deref(),
        merchant_certificate.as_deref(),
    );
    let (apiv3_check, apiv3_ok) = check_apiv3_key(api_v3_key.as_ref());
    let (public_check, public) = load_public_key(public_key.as_deref(), public_key_id.as_deref());
    let query = match (&key, &public) {
        (None, _) => Check::skip(
            "v3_query",
            "needs the merchant private key (see v3_merchant_key)",
        ),
        (Some(_), PublicKey::Invalid) => Check::skip(
            "v3_query",
            "needs a readable WeChat Pay public key (see v3_public_key)",
        ),
        (Some(_), PublicKey::None) if !apiv3_ok => Check::skip(
            "v3_query",
            "platform certificates are decrypted with the APIv3 key (see v3_apiv3_key)",
        ),
        (Some(key), public) => {
            check_v3_query(settings, http, key, public, api_v3_key.as_ref()).await
        }
    };
    vec![key_check, apiv3_check, public_check, query]
}

/// `v3_merchant_key`: the private key parses, matches the certificate, and the serial agrees.
fn load_merchant_key(
    key_path: Option<&std::path::Path>,
    serial: Option<&str>,
    certificate: Option<&std::path::Path>,
) -> (Check, Option<MerchantKey>) {
    const NAME: &str = "v3_merchant_key";
    let download = format!(
        "The merchant API certificate is downloaded as apiclient_key.pem and apiclient_cert.pem \
         from {API_SECURITY} → API证书"
    );
    let Some(key_path) = key_path else {
        return (
            Check::fail(
                NAME,
                "WECHAT_PAY_MCH_KEY is not set",
                &format!("Set it to the path of apiclient_key.pem. {download}"),
            ),
            None,
        );
    };
    let read = |name: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            Check::fail(
                NAME,
                format!("cannot read {name}={}: {e}", path.display()),
                "Check the path and that this user may read the file",
            )
        })
    };
    let key_pem = match read("WECHAT_PAY_MCH_KEY", key_path) {
        Ok(pem) => pem,
        Err(check) => return (check, None),
    };
    let Some(cert_path) = certificate else {
        let Some(serial) = serial else {
            return (
                Check::fail(
                    NAME,
                    "neither WECHAT_PAY_MCH_SERIAL nor WECHAT_PAY_CERT is set",
                    "Set WECHAT_PAY_MCH_SERIAL to the merchant API certificate's serial (API安全 \
                     shows it; `openssl x509 -in apiclient_cert.pem -noout -serial`), or \
                     WECHAT_PAY_CERT to apiclient_cert.pem",
                ),
                None,
            );
        };
        return match MerchantKey::from_pem(&key_pem, serial) {
            Ok(key) => (
                Check::ok(
                    NAME,
                    format!(
                        "WECHAT_PAY_MCH_KEY is an RSA private key; serial {} (without \
                         WECHAT_PAY_CERT the signed query below proves key and serial)",
                        key.serial_no()
                    ),
                ),
                Some(key),
            ),
            Err(e) => (
                Check::fail(
                    NAME,
                    e,
                    &format!("WECHAT_PAY_MCH_KEY must be apiclient_key.pem. {download}"),
                ),
                None,
            ),
        };
    };
    let cert_pem = match read("WECHAT_PAY_CERT", cert_path) {
        Ok(pem) => pem,
        Err(check) => return (check, None),
    };
    let key = match MerchantKey::from_pem_with_certificate(&key_pem, &cert_pem) {
        Ok(key) => key,
        Err(e) => {
            return (
                Check::fail(
                    NAME,
                    e,
                    &format!(
                        "WECHAT_PAY_MCH_KEY and WECHAT_PAY_CERT must be the apiclient_key.pem and \
                         apiclient_cert.pem of the same certificate. {download}"
                    ),
                ),
                None,
            );
        }
    };
    if let Some(serial) = serial {
        if !serial.trim().eq_ignore_ascii_case(key.serial_no()) {
            return (
                Check::fail(
                    NAME,
                    format!(
                        "WECHAT_PAY_MCH_SERIAL {serial} is not the serial of WECHAT_PAY_CERT ({})",
                        key.serial_no()
                    ),
                    "Unset WECHAT_PAY_MCH_SERIAL (the serial is read from the certificate) or set \
                     it to the certificate's",
                ),
                None,
            );
        }
    }
    let expiry = PlatformCertificate::from_pem(&cert_pem)
        .map(|c| c.not_after())
        .unwrap_or(0);
    let now = SystemClock.now_unix_secs();
    if expiry != 0 && expiry <= now {
        return (
            Check::fail(
                NAME,
                format!("the merchant certificate {} has expired", key.serial_no()),
                &format!("Renew it: {download}"),
            ),
            None,
        );
    }
    (
        Check::ok(
            NAME,
            format!(
                "the private key matches the merchant certificate, serial {}",
                key.serial_no()
            ),
        ),
        Some(key),
    )
}

/// `v3_apiv3_key`: exactly 32 bytes.
fn check_apiv3_key(key: Option<&ApiV3Key>) -> (Check, bool) {
    const NAME: &str = "v3_apiv3_key";
    let fix = format!(
        "Set WECHAT_PAY_V3_KEY to the 32-character APIv3 key set under {API_SECURITY} → 设置APIv3密钥 \
         (the API v2 key is another one); if it is lost, set a new one there"
    );
    match key.map(|k| k.expose_secret().len()) {
        None => (
            Check::fail(NAME, "WECHAT_PAY_V3_KEY is not set", &fix),
            false,
        ),
        Some(32) => (
            Check::ok(
                NAME,
                "WECHAT_PAY_V3_KEY has 32 bytes (it decrypts notifications: only a paid order \
                 proves it is the merchant's)",
            ),
            true,
        ),
        Some(n) => (
            Check::fail(
                NAME,
                format!("WECHAT_PAY_V3_KEY has {n} bytes, not 32"),
                &fix,
            ),
            false,
        ),
    }
}

/// How WeChat Pay's answers are verified.
enum PublicKey {
    /// The WeChat Pay public key.
    Key(WechatPayPublicKey),
    /// No public key configured: platform certificates.
    None,
    /// Configured but unusable (the `v3_public_key` check failed).
    Invalid,
}

/// Whether `id` is `PUB_KEY_ID_` followed by digits.
fn is_public_key_id(id: &str) -> bool {
    id.strip_prefix("PUB_KEY_ID_")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `v3_public_key`: the id's format and the PEM.
fn load_public_key(path: Option<&std::path::Path>, id: Option<&str>) -> (Check, PublicKey) {
    const NAME: &str = "v3_public_key";
    let where_ = format!("{API_SECURITY} → 微信支付公钥");
    let invalid = |check| (check, PublicKey::Invalid);
    match (path, id) {
        (None, None) => (
            Check::skip(
                NAME,
                "WECHAT_PAY_PUBLIC_KEY is unset: WeChat Pay is verified with platform certificates \
                 from /v3/certificates (see v3_query)",
            ),
            PublicKey::None,
        ),
        (Some(_), None) => invalid(Check::fail(
            NAME,
            "WECHAT_PAY_PUBLIC_KEY_ID is not set",
            &format!("Set it to the id shown beside the key (PUB_KEY_ID_…) under {where_}"),
        )),
        (None, Some(_)) => invalid(Check::fail(
            NAME,
            "WECHAT_PAY_PUBLIC_KEY is not set (WECHAT_PAY_PUBLIC_KEY_ID is)",
            &format!("Set it to the path of pub_key.pem, downloaded from {where_}"),
        )),
        (Some(_), Some(id)) if !is_public_key_id(id) => invalid(Check::fail(
            NAME,
            format!("WECHAT_PAY_PUBLIC_KEY_ID {id:?} is not PUB_KEY_ID_ followed by digits"),
            &format!("Copy the id shown beside the WeChat Pay public key under {where_}"),
        )),
        (Some(path), Some(id)) => {
            let pem = match std::fs::read(path) {
                Ok(pem) => pem,
                Err(e) => {
                    return invalid(Check::fail(
                        NAME,
                        format!("cannot read WECHAT_PAY_PUBLIC_KEY={}: {e}", path.display()),
                        "Check the path and that this user may read the file",
                    ));
                }
            };
            match WechatPayPublicKey::from_pem(id, &pem) {
                Ok(key) => (
                    Check::ok(
                        NAME,
                        format!(
                            "{id}: WECHAT_PAY_PUBLIC_KEY is an RSA public key (the signed query \
                             below proves it is this id's)"
                        ),
                    ),
                    PublicKey::Key(key),
                ),
                Err(e) => invalid(Check::fail(
                    NAME,
                    e,
                    &format!("WECHAT_PAY_PUBLIC_KEY must be pub_key.pem, downloaded from {where_}"),
                )),
            }
        }
    }
}

/// `v3_query`: a signed query of an order that does not exist must answer 404 ORDER_NOT_EXIST,
/// signed by the configured WeChat Pay key.
async fn check_v3_query(
    settings: &Settings,
    http: &reqwest::Client,
    key: &MerchantKey,
    public: &PublicKey,
    api_v3_key: Option<&ApiV3Key>,
) -> Check {
    const NAME: &str = "v3_query";
    let Some(mch_id) = &settings.mch_id else {
        return Check::skip(NAME, "WECHAT_MCH_ID is unset");
    };
    let keys: WechatPayKeys = match public {
        PublicKey::Key(key) => key.clone().into(),
        PublicKey::Invalid => return Check::skip(NAME, "no usable WeChat Pay public key"),
        PublicKey::None => {
            let Some(api_v3_key) = api_v3_key else {
                return Check::skip(NAME, "no APIv3 key");
            };
            match download_certificates(settings, key, api_v3_key).await {
                Ok(keys) => keys,
                Err(check) => return check,
            }
        }
    };
    let out_trade_no = unused_out_trade_no();
    let path = format!(
        "/v3/pay/transactions/out-trade-no/{}?mchid={}",
        out_trade_no.as_str(),
        mch_id.as_str()
    );
    let timestamp = SystemClock.now_unix_secs();
    let nonce: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let authorization =
        match v3::authorization(mch_id.as_str(), key, "GET", &path, timestamp, &nonce, b"") {
            Ok(value) => value,
            Err(e) => return Check::fail(NAME, e, "The request cannot be signed"),
        };
    let mut request = http
        .get(format!("{}{path}", settings.base_urls.pay))
        .header(http::header::AUTHORIZATION, authorization)
        .header(http::header::ACCEPT, "application/json");
    if let Some(serial) = keys.serial() {
        request = request.header("Wechatpay-Serial", serial);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("WeChat Pay cannot be reached: {}", e.without_url()),
                "Check WECHAT_PAY_BASE and this server's outbound https access",
            );
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("the answer could not be read: {}", e.without_url()),
                "Try again; check WECHAT_PAY_BASE",
            );
        }
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = json["code"].as_str().unwrap_or("").to_owned();
    let message = json["message"].as_str().unwrap_or("").to_owned();
    let answered = format!("{} {code} {message}", status.as_u16());
    if status.as_u16() == 401 && code == "SIGN_ERROR" {
        let fix = if message.contains("序列号") || message.contains("serial") {
            format!(
                "WECHAT_PAY_MCH_SERIAL ({}) is not the serial of the merchant API certificate: read \
                 it under {API_SECURITY} → API证书 or with `openssl x509 -in apiclient_cert.pem \
                 -noout -serial`, or set WECHAT_PAY_CERT instead",
                key.serial_no()
            )
        } else if message.contains("商户号") || message.contains("mchid") {
            "WECHAT_MCH_ID is not a WeChat Pay merchant: copy it from the merchant platform \
             (账户中心 → 商户信息)"
                .to_owned()
        } else if message.contains("时间") || message.contains("timestamp") {
            "This server's clock is off by 5 minutes or more: synchronize it (see clock)".to_owned()
        } else {
            format!(
                "WECHAT_PAY_MCH_KEY is not the private key of the merchant certificate {} (or the \
                 serial is another certificate's): use the apiclient_key.pem downloaded with that \
                 certificate from {API_SECURITY} → API证书",
                key.serial_no()
            )
        };
        return Check::fail(
            NAME,
            format!("WeChat Pay refused the request signature ({answered})"),
            &fix,
        );
    }
    let found = status.is_success();
    let not_exist = status.as_u16() == 404 && code == "ORDER_NOT_EXIST";
    if !(found || not_exist) {
        let fix = match PayApiErrorCode::from_code(&code) {
            PayApiErrorCode::NoAuth => {
                "API v3 is not enabled for this merchant, or the APIv3 key \
                                        was never set: set it under API安全 → 设置APIv3密钥"
            }
            PayApiErrorCode::MchNotExists | PayApiErrorCode::ParamError => {
                "Check WECHAT_MCH_ID (the merchant id)"
            }
            _ => "Check WECHAT_MCH_ID and WECHAT_PAY_BASE",
        };
        return Check::fail(
            NAME,
            format!(
                "a query of an order that does not exist answered {answered} instead of 404 ORDER_NOT_EXIST"
            ),
            fix,
        );
    }
    let Some(signature) = SignatureHeaders::from_headers(&headers) else {
        if found {
            return Check::fail(
                NAME,
                format!("the success answer ({answered}) carries no Wechatpay-Signature headers"),
                "Check WECHAT_PAY_BASE: WeChat Pay signs its answers, and an unsigned one is forged",
            );
        }
        // An error answer need not be signed (the SDKs verify 2xx answers only): the merchant
        // key and serial are proven, the WeChat Pay key is not.
        return Check::ok(
            NAME,
            format!(
                "a signed query of an order that does not exist ({}) answered 404 \
                 ORDER_NOT_EXIST: the merchant key and its serial {} are right; the answer was \
                 not signed, so the WeChat Pay key is proven only by the first verified answer or \
                 notification",
                out_trade_no.as_str(),
                key.serial_no()
            ),
        );
    };
    let download_again = format!(
        "WECHAT_PAY_PUBLIC_KEY does not match WECHAT_PAY_PUBLIC_KEY_ID: download it again from \
         {API_SECURITY} → 微信支付公钥 (pub_key.pem, with the id beside it)"
    );
    match v3::verify_signature(&keys, &signature, &body, &SystemClock) {
        Ok(()) => Check::ok(
            NAME,
            format!(
                "a signed query of an order that does not exist ({}) answered {} {}, signed by \
                 WeChat Pay key {}: the merchant key, its serial {} and the WeChat Pay key are right",
                out_trade_no.as_str(),
                status.as_u16(),
                if found { "(found)" } else { "ORDER_NOT_EXIST" },
                signature.serial,
                key.serial_no()
            ),
        ),
        Err(Error::Pay(PayError::UnknownSerial { serial })) => Check::fail(
            NAME,
            format!(
                "WeChat Pay signed its answer with key {serial}, which is not the configured one \
                 ({})",
                keys.serial().unwrap_or("none")
            ),
            &match public {
                PublicKey::Key(_) => format!(
                    "Set WECHAT_PAY_PUBLIC_KEY_ID and WECHAT_PAY_PUBLIC_KEY to the key shown under \
                     {API_SECURITY} → 微信支付公钥"
                ),
                _ => format!(
                    "WeChat Pay signs with its public key: download it from {API_SECURITY} → \
                     微信支付公钥 and set WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID"
                ),
            },
        ),
        Err(Error::Pay(PayError::BadSignature(reason))) if reason.contains("Timestamp") => {
            Check::fail(
                NAME,
                format!("the answer's signature was refused: {reason}"),
                "Synchronize this server's clock (see clock)",
            )
        }
        Err(Error::Pay(PayError::BadSignature(reason))) => Check::fail(
            NAME,
            format!(
                "the answer's signature does not verify with the configured WeChat Pay key {} \
                 ({reason})",
                signature.serial
            ),
            match public {
                PublicKey::Key(_) => &download_again,
                _ => {
                    "The downloaded platform certificate does not verify WeChat Pay's answers: \
                      check WECHAT_PAY_BASE"
                }
            },
        ),
        Err(e) => Check::fail(NAME, e, "Check WECHAT_PAY_BASE"),
    }
}

/// Platform-certificate mode: downloads and verifies the certificates (wechat-core's client).
async fn download_certificates(
    settings: &Settings,
    key: &MerchantKey,
    api_v3_key: &ApiV3Key,
) -> Result<WechatPayKeys, Check> {
    const NAME: &str = "v3_query";
    let mch_id = settings.mch_id.clone().unwrap_or_else(|| "".into());
    let config = v3::PayConfig::builder(
        mch_id,
        settings.appid.clone(),
        key.clone(),
        api_v3_key.clone(),
        UNUSED_NOTIFY_URL,
    )
    .platform_certificates()
    .base_urls(&settings.base_urls)
    .build()
    .map_err(|e| Check::fail(NAME, e, "Check the WeChat Pay v3 settings"))?;
    let client = v3::PayClient::new(config)
        .map_err(|e| Check::fail(NAME, e, "The HTTP client cannot be built"))?;
    match client.download_certificates().await {
        Ok(_) => client
            .wechat_pay_keys()
            .await
            .map(|keys| (*keys).clone())
            .map_err(|e| Check::fail(NAME, e, "Check WECHAT_PAY_BASE")),
        Err(Error::Pay(PayError::Api(e))) if e.code == PayApiErrorCode::ResourceNotExists => {
            Err(Check::fail(
                NAME,
                format!(
                    "WeChat Pay has no platform certificate for this merchant ({} {})",
                    e.status, e.code
                ),
                &format!(
                    "The merchant uses the WeChat Pay public key: download it from {API_SECURITY} → \
                 微信支付公钥 and set WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID"
                ),
            ))
        }
        Err(e) => Err(Check::fail(
            NAME,
            format!("downloading the platform certificates failed: {e}"),
            "A SIGN_ERROR means the merchant key or serial is wrong; a decryption failure means \
             WECHAT_PAY_V3_KEY is not the merchant's APIv3 key",
        )),
    }
}

/// `clock`: the `Date` header of an answer of `WECHAT_API_BASE` against this machine's clock.
async fn check_clock(settings: &Settings, http: &reqwest::Client) -> Check {
    const NAME: &str = "clock";
    let url = format!("{}/", settings.base_urls.api);
    let before = SystemTime::now();
    let response = match http.get(&url).send().await {
        Ok(response) => response,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{url} cannot be reached: {}", e.without_url()),
                "Check WECHAT_API_BASE and this server's outbound https access",
            );
        }
    };
    let after = SystemTime::now();
    let Some(date) = response
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return Check::skip(NAME, format!("the answer of {url} carries no Date header"));
    };
    let Ok(theirs) = httpdate::parse_http_date(&date) else {
        return Check::skip(NAME, format!("the Date header {date:?} cannot be read"));
    };
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    };
    let ours = (secs(before) + secs(after)) / 2.0;
    // Positive: WeChat's clock is ahead of ours. `Date` is truncated to whole seconds, so
    // WeChat's time was half a second later on average.
    let skew = (secs(theirs) + 0.5 - ours).round() as i64;
    if skew.unsigned_abs() > MAX_CLOCK_SKEW_SECS {
        let direction = if skew > 0 { "behind" } else { "ahead of" };
        return Check::fail(
            NAME,
            format!(
                "this server's clock is {} s {direction} WeChat's (Date: {date})",
                skew.unsigned_abs()
            ),
            "WeChat Pay API v3 refuses requests whose timestamp is 5 minutes or more away from \
             its clock, and wechat-core refuses WeChat Pay answers and notifications just as old \
             or new: synchronize the clock with NTP (e.g. `timedatectl set-ntp true`, chrony)",
        );
    }
    Check::ok(
        NAME,
        format!("{skew:+} s from WeChat's Date header (at most {MAX_CLOCK_SKEW_SECS} s allowed)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_ids() {
        assert!(is_public_key_id("PUB_KEY_ID_0119000001092025120100000001"));
        for bad in [
            "",
            "PUB_KEY_ID_",
            "PUB_KEY_ID_12AB",
            "pub_key_id_1",
            "12345",
        ] {
            assert!(!is_public_key_id(bad), "{bad}");
        }
    }

    #[test]
    fn unused_order_numbers_are_valid_and_fresh() {
        let (a, b) = (unused_out_trade_no(), unused_out_trade_no());
        assert_eq!(a.as_str().len(), 30);
        assert_ne!(a, b);
    }

    #[test]
    fn the_apiv3_key_has_32_bytes() {
        assert!(check_apiv3_key(Some(&ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01"))).1);
        let (check, ok) = check_apiv3_key(Some(&ApiV3Key::new("short")));
        assert!(!ok);
        assert!(
            check.message.contains("5 bytes, not 32"),
            "{}",
            check.message
        );
        assert!(!check_apiv3_key(None).1);
    }
}
