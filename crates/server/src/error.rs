use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The one error contract at the HTTP edge: a status and a stable JSON body
/// `{ "code": "…", "message": "…" }`. Errors are cached briefly (`max-age=5`) so a CDN absorbs
/// a storm of requests for something missing without hiding a fix for long.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A 400 naming the rule broken as data (`monsoon_catalog::Rule`), for a translation.
    #[error("{}", .0.message)]
    Refused(monsoon_catalog::rules::Refusal),
    #[error("{0}")]
    Unauthorized(String),
    /// Known but not (yet) allowed, e.g. a film's manifests before its premiere.
    #[error("{0}")]
    Forbidden(String),
    /// The request does not fit the resource's state, e.g. cancelling a job that is over.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request did not arrive whole in time (its body, after `body_timeout`).
    #[error("{0}")]
    RequestTimeout(String),
    /// Shedding load: the client should retry after the given seconds.
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable machine-readable code, e.g. `not_found`.
    code: &'a str,
    /// What went wrong, for a person.
    message: String,
    /// The rule broken, with its values, when a person can mend what they sent (a refused
    /// file: `{"name": "track_duration", "audio_s": "3.0", …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<monsoon_catalog::Rule>,
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) | ApiError::Refused(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::TooManyRequests(..) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<monsoon_catalog::Error> for ApiError {
    fn from(e: monsoon_catalog::Error) -> Self {
        match e {
            monsoon_catalog::Error::Slug(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                code,
                message: self.to_string(),
                rule: match &self {
                    ApiError::Refused(refusal) => refusal.rule.clone(),
                    _ => None,
                },
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::TooManyRequests(_, retry) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            ApiError::Unauthorized(_) | ApiError::Unavailable(_) | ApiError::RequestTimeout(_) => {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            _ => {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
            }
        }
        response
    }
}

impl From<monsoon_audience::Error> for ApiError {
    fn from(e: monsoon_audience::Error) -> Self {
        use monsoon_audience::Error as A;
        match e {
            A::Token(_) => ApiError::Unauthorized(e.to_string()),
            A::UnknownSession(_) => ApiError::NotFound(e.to_string()),
            A::ViewerId(_) | A::Invalid(_) => ApiError::BadRequest(e.to_string()),
            A::ProofRequired(_) => ApiError::Forbidden(e.to_string()),
            A::Overloaded => ApiError::TooManyRequests(e.to_string(), 5),
            A::Store(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}
