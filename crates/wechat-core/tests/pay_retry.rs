//! PayClient against a scripted fake WeChat Pay server on 127.0.0.1: SYSTEMERROR is retried
//! with the same body, a reply without a valid sign is never trusted, and a non-XML error page
//! becomes a clear error.

use std::sync::{Arc, Mutex};
use wechat_core::PayError;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use wechat_core::pay::v2::{
    OrderRef, PayClient, PayConfig, PayErrorCode, PayFields, SignType, TradeState, sign_pay_fields,
};
use wechat_core::{Error, OutTradeNo, PayApiKey};

mod common;

const APPID: &str = "wx1234567890abcdef";
const MCH_ID: &str = "1900000109";
const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// One scripted answer: HTTP status and body.
type Script = Vec<(u16, String)>;

/// Serves the script in order (the last answer repeats) and records every request body.
async fn fake_pay(script: Script) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let recorded = seen.clone();
    common::serve(listener, move |request: hyper::Request<Incoming>| {
        let (script, seen) = (script.clone(), recorded.clone());
        async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(String::from_utf8(body.to_vec()).unwrap());
                seen.len() - 1
            };
            let (status, text) = script[n.min(script.len() - 1)].clone();
            let mut response = http::Response::new(Bytes::from(text));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            response
        }
    });
    (format!("http://{addr}"), seen)
}

fn signed(pairs: &[(&str, &str)]) -> String {
    let mut fields: PayFields = pairs.iter().copied().collect();
    let sign = sign_pay_fields(&fields, &PayApiKey::new(API_KEY), SignType::Md5);
    fields.insert("sign", sign);
    fields.to_xml().unwrap()
}

fn system_error() -> String {
    signed(&[
        ("return_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "a"),
        ("result_code", "FAIL"),
        ("err_code", "SYSTEMERROR"),
        ("err_code_des", "系统错误"),
    ])
}

fn not_paid() -> String {
    signed(&[
        ("return_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "b"),
        ("result_code", "SUCCESS"),
        ("out_trade_no", "T1"),
        ("trade_state", "NOTPAY"),
        ("trade_state_desc", "订单未支付"),
    ])
}

fn client(base: &str) -> PayClient {
    PayClient::new(
        PayConfig::builder(MCH_ID, APPID, API_KEY, "https://shop.example/pay/notify")
            .base_url(base)
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn query() -> OrderRef {
    OrderRef::OutTradeNo(OutTradeNo::new("T1"))
}

#[tokio::test]
async fn system_error_is_retried_with_the_same_parameters() {
    let (base, seen) = fake_pay(vec![
        (200, system_error()),
        (200, system_error()),
        (200, not_paid()),
    ])
    .await;
    let answer = client(&base).query_order(&query()).await.unwrap();
    assert_eq!(answer.trade_state, TradeState::NotPay);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|body| *body == seen[0]),
        "every attempt must resend the same signed body"
    );
}

#[tokio::test]
async fn persistent_system_error_gives_up_after_three_attempts() {
    let (base, seen) = fake_pay(vec![(200, system_error())]).await;
    match client(&base).query_order(&query()).await {
        Err(
            e @ Error::Pay(PayError::Business {
                code: PayErrorCode::SystemError,
                ..
            }),
        ) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn business_errors_are_not_retried() {
    let paid = signed(&[
        ("return_code", "SUCCESS"),
        ("result_code", "FAIL"),
        ("err_code", "ORDERPAID"),
        ("err_code_des", "该订单已支付"),
    ]);
    let (base, seen) = fake_pay(vec![(200, paid)]).await;
    assert!(matches!(
        client(&base).close_order(&OutTradeNo::new("T1")).await,
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::OrderPaid,
            ..
        }))
    ));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unsigned_or_badly_signed_replies_are_not_trusted() {
    let unsigned = "<xml><return_code>SUCCESS</return_code><result_code>SUCCESS</result_code><trade_state>SUCCESS</trade_state></xml>".to_owned();
    let (base, _) = fake_pay(vec![(200, unsigned)]).await;
    assert!(matches!(
        client(&base).query_order(&query()).await,
        Err(Error::Pay(PayError::BadSignature(_)))
    ));

    let forged = not_paid().replace("NOTPAY", "SUCCESS");
    let (base, _) = fake_pay(vec![(200, forged)]).await;
    assert!(matches!(
        client(&base).query_order(&query()).await,
        Err(Error::Pay(PayError::BadSignature(_)))
    ));
}

#[tokio::test]
async fn error_pages_and_xxe_replies_are_clear_errors() {
    let (base, _) = fake_pay(vec![(502, "<html>Bad Gateway</html>".to_owned())]).await;
    match client(&base).query_order(&query()).await {
        Err(Error::UnexpectedResponse { endpoint, detail }) => {
            assert_eq!(endpoint, "/pay/orderquery");
            assert!(detail.contains("502"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let xxe = r#"<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><return_code>&x;</return_code></xml>"#.to_owned();
    let (base, _) = fake_pay(vec![(200, xxe)]).await;
    assert!(matches!(
        client(&base).query_order(&query()).await,
        Err(Error::Pay(PayError::Xml(_)))
    ));
    let fail = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[appid和mch_id不匹配]]></return_msg></xml>".to_owned();
    let (base, _) = fake_pay(vec![(200, fail)]).await;
    match client(&base).query_order(&query()).await {
        Err(e @ Error::Pay(PayError::Return { .. })) => {
            assert!(e.to_string().contains("appid和mch_id不匹配"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}
