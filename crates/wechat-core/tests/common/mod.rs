//! Helpers shared by the test files that use them (each includes this module).

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Query parameter `name` of a URL.
pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An OAuth client for `appid` with `secret`, against the simulator `sim`.
pub(crate) fn oauth_client(
    sim: &wechat_sim::RunningSim,
    appid: &str,
    secret: &str,
) -> wechat_core::oauth::OAuthClient {
    let config = wechat_core::Config::new(appid, secret)
        .with_base_urls(wechat_core::BaseUrls::all(&sim.base_url()))
        .with_timeout(std::time::Duration::from_secs(10));
    wechat_core::oauth::OAuthClient::new(&config, wechat_core::build_http_client(&config).unwrap())
}

/// An application's HTTP endpoint for the simulator to call (notifications): serves `handle` on
/// `listener` over HTTP/1.1 until the test ends.
pub(crate) fn serve<H, Fut>(listener: TcpListener, handle: H)
where
    H: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handle(request);
                    async move { Ok::<_, Infallible>(response.await.map(Full::new)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// API v3 notifications signed with the vectors' test key.
pub(crate) mod v3 {
    use std::path::PathBuf;
    use std::sync::Arc;

    use http::{HeaderMap, HeaderValue};
    use wechat_core::clock::ManualClock;
    use wechat_core::pay::v3::{MerchantKey, PayConfig, WechatPayKeys, WechatPayPublicKey};

    pub(crate) const MCH_ID: &str = "1230000109";
    pub(crate) const APPID: &str = "wxd678efh567hg6787";
    pub(crate) const API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
    /// What the test key is registered as on "WeChat Pay"'s side, as in the vectors.
    pub(crate) const WECHAT_SERIAL: &str = "F5765756002FDD77";
    /// The time the derived vectors are signed at.
    pub(crate) const SIGNED_AT: u64 = 1_624_523_846;

    /// A file of `tests/vectors/v3`.
    pub(crate) fn vector(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/v3")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// WeChat Pay's signing key, in these tests the vectors' test key.
    pub(crate) fn wechat_key() -> MerchantKey {
        MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), WECHAT_SERIAL).unwrap()
    }

    pub(crate) fn wechat_public_key() -> WechatPayPublicKey {
        WechatPayPublicKey::from_pem(WECHAT_SERIAL, &vector("rsa_test_public_key.pem")).unwrap()
    }

    /// The merchant's configuration with its clock at `now`.
    pub(crate) fn config_at(now: u64) -> PayConfig {
        // The merchant's own key does not matter for notifications; the test key stands in.
        PayConfig::builder(
            MCH_ID,
            APPID,
            wechat_key(),
            API_V3_KEY,
            "https://shop.example.com/pay/notify",
        )
        .wechat_pay_public_key(wechat_public_key())
        .clock(Arc::new(ManualClock::at(now)))
        .build()
        .unwrap()
    }

    pub(crate) fn keys() -> WechatPayKeys {
        WechatPayKeys::from(wechat_public_key())
    }

    /// The `Wechatpay-*` headers of `body` signed by `key` at `timestamp` as `serial`.
    pub(crate) fn signed_headers(
        key: &MerchantKey,
        timestamp: u64,
        serial: &str,
        body: &[u8],
    ) -> HeaderMap {
        let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
        let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        let signature = key.sign(&message).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("wechatpay-timestamp", timestamp.to_string()),
            ("wechatpay-nonce", nonce.to_owned()),
            ("wechatpay-signature", signature),
            ("wechatpay-serial", serial.to_owned()),
            (
                "wechatpay-signature-type",
                "WECHATPAY2-SHA256-RSA2048".to_owned(),
            ),
        ] {
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        headers
    }
}
