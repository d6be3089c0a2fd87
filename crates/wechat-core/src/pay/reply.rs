//! What an application answers WeChat Pay's notifications, in the merchant's API version.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::v2::{NOTIFICATION_SUCCESS_XML, notification_fail_xml};

/// A WeChat Pay API version: v2 (XML signed with the API key) or v3 (JSON signed with RSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// API v2: XML, MD5 or HMAC-SHA256 with the merchant's API key.
    V2,
    /// API v3: JSON, RSA-signed requests and answers, AES-256-GCM notifications.
    V3,
}

impl ApiVersion {
    /// `v2` or `v3`, as logs and metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }
}

/// What to answer a WeChat Pay notification, in the merchant's API version.
///
/// - Accepted: v2 `200` with the `SUCCESS` XML; v3 `204 No Content`.
/// - Not accepted: a 4xx or 5xx with a short public message (v2 `FAIL` XML, v3
///   `{"code":"FAIL","message":…}`), never internal details; WeChat Pay sends the notification
///   again later.
///
/// ```
/// use wechat_core::pay::{ApiVersion, NotificationReply};
///
/// let ok = NotificationReply::success(ApiVersion::V3);
/// assert!(ok.is_success());
/// assert_eq!(ok.status(), http::StatusCode::NO_CONTENT);
/// let busy = NotificationReply::fail(ApiVersion::V2, http::StatusCode::INTERNAL_SERVER_ERROR, "not processed");
/// assert!(!busy.is_success());
/// assert!(std::str::from_utf8(busy.body()).unwrap().contains("FAIL"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationReply {
    version: ApiVersion,
    status: StatusCode,
    body: Bytes,
    accepted: bool,
}

impl NotificationReply {
    /// The notification was received and processed: v2 `200` with
    /// [`NOTIFICATION_SUCCESS_XML`](super::v2::NOTIFICATION_SUCCESS_XML), v3 `204`.
    pub fn success(version: ApiVersion) -> Self {
        let (status, body) = match version {
            ApiVersion::V2 => (
                StatusCode::OK,
                Bytes::from_static(NOTIFICATION_SUCCESS_XML.as_bytes()),
            ),
            ApiVersion::V3 => (StatusCode::NO_CONTENT, Bytes::new()),
        };
        Self {
            version,
            status,
            body,
            accepted: true,
        }
    }

    /// Not accepted, with `status` (4xx or 5xx) and a short public `message`: WeChat Pay sends
    /// the notification again later.
    pub fn fail(version: ApiVersion, status: StatusCode, message: &str) -> Self {
        let body = match version {
            ApiVersion::V2 => Bytes::from(notification_fail_xml(message)),
            ApiVersion::V3 => {
                Bytes::from(serde_json::json!({"code": "FAIL", "message": message}).to_string())
            }
        };
        Self {
            version,
            status,
            body,
            accepted: false,
        }
    }

    /// `413` for a body over [`MAX_NOTIFICATION_BODY`](super::v2::MAX_NOTIFICATION_BODY);
    /// adapters that stop reading at the limit answer this.
    pub fn too_large(version: ApiVersion) -> Self {
        Self::fail(version, StatusCode::PAYLOAD_TOO_LARGE, "body too large")
    }

    /// Whether this acknowledges the notification.
    pub fn is_success(&self) -> bool {
        self.accepted
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The API version it is written for.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The body: v2 XML; v3 JSON on failure, empty on success.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// An `http::Response`, with `Content-Type: text/xml; charset=utf-8` (v2) or
    /// `application/json` (a v3 failure).
    pub fn into_response(self) -> http::Response<Bytes> {
        let content_type = match (self.version, self.accepted) {
            (ApiVersion::V2, _) => Some("text/xml; charset=utf-8"),
            (ApiVersion::V3, false) => Some("application/json"),
            (ApiVersion::V3, true) => None,
        };
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        if let Some(content_type) = content_type {
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
        }
        response
    }

    /// The answer [`crate::response::error_answer`] gives WeChat Pay for a notification
    /// refused with `error`, as a reply the notification handlers return.
    pub(crate) fn refused(version: ApiVersion, error: &crate::Error) -> Self {
        let answer =
            crate::response::error_answer(error, crate::response::Audience::WeChatPay(version));
        Self {
            version,
            status: answer.status(),
            body: answer.into_body(),
            accepted: false,
        }
    }
}

impl From<NotificationReply> for http::Response<Bytes> {
    fn from(reply: NotificationReply) -> Self {
        reply.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_answers_in_its_own_format() {
        let v2 = NotificationReply::success(ApiVersion::V2).into_response();
        assert_eq!(v2.status(), StatusCode::OK);
        assert_eq!(
            v2.headers()[http::header::CONTENT_TYPE],
            "text/xml; charset=utf-8"
        );
        assert_eq!(v2.body().as_ref(), NOTIFICATION_SUCCESS_XML.as_bytes());
        let v3 = NotificationReply::success(ApiVersion::V3).into_response();
        assert_eq!(v3.status(), StatusCode::NO_CONTENT);
        assert!(v3.body().is_empty());
        assert!(v3.headers().get(http::header::CONTENT_TYPE).is_none());

        let fail = NotificationReply::fail(
            ApiVersion::V3,
            StatusCode::UNAUTHORIZED,
            "invalid signature",
        );
        assert!(!fail.is_success());
        let fail = fail.into_response();
        assert_eq!(
            fail.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(fail.body()).unwrap(),
            serde_json::json!({"code": "FAIL", "message": "invalid signature"})
        );
        let fail = NotificationReply::too_large(ApiVersion::V2);
        assert_eq!(fail.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!fail.is_success());
        assert!(
            std::str::from_utf8(fail.body())
                .unwrap()
                .contains("<return_code><![CDATA[FAIL]]>")
        );
    }
}
