//! A tiny independent WeChat Pay v3 client for the tests: requests signed and answers verified
//! with ring (never with the simulator's code), decryption, the pay sheet's parameters, and a
//! notify_url that records notifications.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wechat_sim::fixtures::{self, APIV3_KEY, MCH_ID, MerchantKeyPair};
use wechat_sim::{RunningSim, Simulator};

pub use super::{APPID, OPENID, WAIT};

/// The wall clock, unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

pub fn sign_with(private_pem: &str, message: &[u8]) -> String {
    let der = match rustls_pemfile::private_key(&mut private_pem.as_bytes())
        .expect("pem")
        .expect("a key")
    {
        rustls::pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("PKCS#8 expected"),
    };
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("RSA key");
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message,
        &mut sig,
    )
    .expect("signs");
    B64.encode(sig)
}

pub fn verify_with(public_pem: &str, message: &[u8], signature: &str) -> bool {
    let key = rsa::RsaPublicKey::from_public_key_pem(public_pem).expect("SPKI");
    let Ok(sig) = B64.decode(signature) else {
        return false;
    };
    ring::signature::RsaPublicKeyComponents {
        n: key.n().to_bytes_be(),
        e: key.e().to_bytes_be(),
    }
    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, &sig)
    .is_ok()
}

pub fn decrypt(key: &str, nonce: &str, aad: &str, ciphertext: &str) -> String {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_bytes()).expect("32 bytes"));
    let mut data = B64.decode(ciphertext).expect("base64");
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).expect("12 bytes");
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
        .expect("decrypts with the APIv3 key");
    String::from_utf8(plain.to_vec()).expect("utf-8")
}

pub fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Whether `Wechatpay-*` headers sign `body` with `public_pem`.
pub fn signed_by(headers: &HeaderMap, body: &[u8], public_pem: &str) -> bool {
    let mut message = format!(
        "{}\n{}\n",
        header(headers, "wechatpay-timestamp"),
        header(headers, "wechatpay-nonce")
    )
    .into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    verify_with(
        public_pem,
        &message,
        &header(headers, "wechatpay-signature"),
    )
}

/// How a test request is signed.
#[derive(Clone)]
pub struct Auth {
    pub private_pem: String,
    pub serial: String,
    pub mchid: String,
    pub timestamp: u64,
}

impl Auth {
    pub fn good() -> Self {
        let keys = MerchantKeyPair::shared();
        Self {
            private_pem: keys.private_key_pem.clone(),
            serial: keys.serial.clone(),
            mchid: MCH_ID.to_owned(),
            timestamp: now(),
        }
    }

    pub fn header(&self, method: &str, url: &str, body: &str) -> String {
        let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
        let message = format!("{method}\n{url}\n{}\n{nonce}\n{body}\n", self.timestamp);
        let signature = sign_with(&self.private_pem, message.as_bytes());
        // Fields in another order than the SDKs', which the simulator must accept.
        format!(
            r#"WECHATPAY2-SHA256-RSA2048 signature="{signature}",mchid="{}",nonce_str="{nonce}",serial_no="{}",timestamp="{}""#,
            self.mchid, self.serial, self.timestamp
        )
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub pay_public_pem: String,
}

impl Client {
    pub async fn new(sim: &RunningSim) -> Self {
        let http = super::client();
        let key: Value = http
            .get(format!(
                "{}/_sim/pay/v3/public-key?mch_id={MCH_ID}",
                sim.base_url()
            ))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(key["id"], fixtures::PAY_PUBLIC_KEY_ID);
        let pem = key["pem"].as_str().expect("pem").to_owned();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(
            sim.pay_public_key(MCH_ID),
            Some((fixtures::PAY_PUBLIC_KEY_ID.to_owned(), pem.clone()))
        );
        Self {
            http,
            base: sim.base_url(),
            pay_public_pem: pem,
        }
    }

    pub async fn send_with(
        &self,
        auth: Option<&Auth>,
        method: &str,
        url: &str,
        body: &str,
        serial: Option<&str>,
    ) -> Answer {
        let mut req = self
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{url}", self.base),
            )
            .header("Accept", "application/json")
            .header("User-Agent", "wechat-sim-tests");
        if !body.is_empty() {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        if let Some(auth) = auth {
            req = req.header("Authorization", auth.header(method, url, body));
        }
        if let Some(serial) = serial {
            req = req.header("Wechatpay-Serial", serial);
        }
        let response = req.send().await.expect("sent");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request signed with the test merchant's key; the answer must be signed by the
    /// simulator's WeChat Pay public key.
    pub async fn send(&self, method: &str, url: &str, body: &str) -> Answer {
        let answer = self
            .send_with(
                Some(&Auth::good()),
                method,
                url,
                body,
                Some(fixtures::PAY_PUBLIC_KEY_ID),
            )
            .await;
        assert!(!header(&answer.headers, "request-id").is_empty());
        assert_eq!(
            header(&answer.headers, "wechatpay-serial"),
            fixtures::PAY_PUBLIC_KEY_ID
        );
        assert_eq!(
            header(&answer.headers, "wechatpay-signature-type"),
            "WECHATPAY2-SHA256-RSA2048"
        );
        assert!(
            signed_by(&answer.headers, &answer.body, &self.pay_public_pem),
            "answer to {method} {url} not signed: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer
    }

    pub async fn prepay(&self, out_trade_no: &str, total: u64, notify_url: &str) -> Answer {
        let body = json!({
            "appid": APPID, "mchid": MCH_ID, "description": "Demo product",
            "out_trade_no": out_trade_no, "notify_url": notify_url,
            "amount": { "total": total, "currency": "CNY" },
            "payer": { "openid": OPENID },
        });
        self.send("POST", "/v3/pay/transactions/jsapi", &body.to_string())
            .await
    }

    pub async fn query(&self, out_trade_no: &str) -> Answer {
        self.send(
            "GET",
            &format!("/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={MCH_ID}"),
            "",
        )
        .await
    }

    /// A JSAPI order of `total` fen for the test payer, paid through the simulated pay sheet.
    pub async fn paid_order(&self, out_trade_no: &str, total: u64, notify_url: &str) {
        let a = self.prepay(out_trade_no, total, notify_url).await;
        assert_eq!(a.status, 200, "{:?}", a.json());
        let prepay_id = a.json()["prepay_id"]
            .as_str()
            .expect("prepay_id")
            .to_owned();
        let paid = self
            .control("/_sim/pay/confirm", &page_params(&prepay_id, "RSA"))
            .await;
        assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    }

    pub async fn control(&self, path: &str, body: &Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json")
    }
}

/// The `getBrandWCPayRequest` parameters of a v3 order, signed by the merchant's key.
pub fn page_params(prepay_id: &str, sign_type: &str) -> Value {
    let package = format!("prepay_id={prepay_id}");
    let (ts, nonce) = ("1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS");
    let message = format!("{APPID}\n{ts}\n{nonce}\n{package}\n");
    json!({
        "appId": APPID, "timeStamp": ts, "nonceStr": nonce, "package": package,
        "signType": sign_type,
        "paySign": sign_with(&MerchantKeyPair::shared().private_key_pem, message.as_bytes()),
    })
}

// ---- the merchant's notification endpoint ----

/// A notification as received.
#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A notify_url on 127.0.0.1 that records notifications and answers the scripted statuses
/// (204 once the script is exhausted).
pub async fn receiver(script: &[u16]) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/notify", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
    let app = Router::new().route(
        "/notify",
        post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            let script = Arc::clone(&script);
            async move {
                let _ = tx.send(Received { headers, body });
                let status = script.lock().expect("lock").pop_front().unwrap_or(204);
                let status = StatusCode::from_u16(status).expect("status");
                if status.is_success() {
                    (status, String::new())
                } else {
                    (status, r#"{"code":"FAIL","message":"失败"}"#.to_owned())
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a notification in time")
        .expect("open")
}

/// The decrypted resource of a notification.
pub fn resource(n: &Received) -> Value {
    let envelope: Value = serde_json::from_str(&n.body).expect("json");
    assert_eq!(envelope["resource_type"], "encrypt-resource");
    assert_eq!(envelope["resource"]["algorithm"], "AEAD_AES_256_GCM");
    assert_eq!(envelope["id"].as_str().map(str::len), Some(36));
    let r = &envelope["resource"];
    let plain = decrypt(
        APIV3_KEY,
        r["nonce"].as_str().expect("nonce"),
        r["associated_data"].as_str().expect("aad"),
        r["ciphertext"].as_str().expect("ciphertext"),
    );
    serde_json::from_str(&plain).expect("json resource")
}

pub fn config(platform_certificate: bool) -> String {
    format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "0123456789abcdef0123456789abcdef"
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "Alice"
{}"#,
        fixtures::v3_merchant_toml(MerchantKeyPair::shared(), platform_certificate)
    )
}

pub async fn start(platform_certificate: bool) -> RunningSim {
    Simulator::from_toml_str(&config(platform_certificate))
        .expect("valid config")
        .start()
        .await
        .expect("started")
}
