//! Translation between actix-web 4 (`http` 0.2 types) and the `http` 1 types of wechat-core.
//! The only place where the two meet.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

/// The request head that [`wechat_core::login::LoginFlow`] reads, built from an actix request;
/// `None` when it is not valid HTTP for `http` 1 (answer 400).
pub(crate) fn login_parts(req: &HttpRequest) -> Option<http::request::Parts> {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    wechat_core::adapter::request_parts(
        req.method().as_str(),
        target,
        req.headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
}

/// The request's headers as `http` 1 headers (for the notification routes, whose v3
/// signature is in `Wechatpay-*` headers). A header `http` 1 refuses is left out; the
/// signature check then fails on a missing header, never on a changed one.
pub(crate) fn headers_of(req: &HttpRequest) -> http::HeaderMap {
    let mut headers = http::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// An actix response with the status, headers and body of a wechat-core response. The body is
/// shared, not copied.
pub(crate) fn to_actix(response: &http::Response<Bytes>) -> HttpResponse {
    let status = StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::with_body(status, response.body().clone());
    let headers = out.headers_mut();
    for (name, value) in response.headers() {
        // Both sides validate names and values the same way; nothing is skipped in practice.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    out.map_into_boxed_body()
}

/// The 400 for a request whose method or target `http` 1 refuses.
pub(crate) fn bad_request() -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body("bad request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;

    #[test]
    fn responses_keep_status_headers_and_body() {
        let mut core = http::Response::new(Bytes::from_static(b"{\"a\":1}"));
        *core.status_mut() = http::StatusCode::UNAUTHORIZED;
        core.headers_mut().append(
            http::header::SET_COOKIE,
            http::HeaderValue::from_static("a=1"),
        );
        core.headers_mut().append(
            http::header::SET_COOKIE,
            http::HeaderValue::from_static("b=2"),
        );
        let actix = to_actix(&core);
        assert_eq!(actix.status(), StatusCode::UNAUTHORIZED);
        let cookies: Vec<_> = actix
            .headers()
            .get_all("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        let body = actix.into_body().try_into_bytes().unwrap();
        assert_eq!(body, Bytes::from_static(b"{\"a\":1}"));
    }

    #[test]
    fn request_parts_keep_method_target_and_login_headers() {
        let req = TestRequest::post()
            .uri("/shop?item=1")
            .insert_header(("accept", "text/html"))
            .insert_header(("x-other", "1"))
            .to_http_request();
        let parts = login_parts(&req).unwrap();
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(parts.uri, "/shop?item=1");
        assert_eq!(parts.headers["accept"], "text/html");
        assert!(parts.headers.get("x-other").is_none());
    }
}
