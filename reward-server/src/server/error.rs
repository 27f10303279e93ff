//! The one error type of the network API and its mapping to HTTP and gRPC codes, in one place.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::UnknownReward;

/// Why a request (not a single rollout) was not answered with scores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// No reward by that name.
    #[error(transparent)]
    UnknownReward(#[from] UnknownReward),
    /// The request itself is malformed (not JSON, wrong shape, mismatched lengths, ...).
    #[error("{0}")]
    BadRequest(String),
    /// More rollouts in one request than `--max-rollouts-per-request`.
    #[error("{got} rollouts in one request, more than --max-rollouts-per-request ({max})")]
    TooManyRollouts {
        /// Rollouts sent.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The body is larger than `--max-body-bytes`.
    #[error("request body over --max-body-bytes ({max} bytes)")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// In-flight work is at its budget's bound; retry after a short wait.
    #[error("overloaded: {inflight} {} in flight, the limit is {max} ({}); retry shortly", budget.counts(), budget.flag())]
    Overloaded {
        /// The budget that is full (the reward's: judge or not).
        budget: super::scorer::Budget,
        /// Rollouts of that budget in flight when the request arrived.
        inflight: usize,
        /// The budget's bound.
        max: usize,
    },
    /// The request bytes being read or held at once are at their bound; retry after a short wait.
    #[error(
        "overloaded: a body of {bytes} bytes does not fit in the request bytes in flight now (--max-inflight-body-bytes {max}); retry shortly"
    )]
    BodiesInFlight {
        /// The bytes this request would reserve.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// The request body did not arrive within `--body-read-timeout-ms`.
    #[error("the request body did not arrive within {0:?} (--body-read-timeout-ms)")]
    BodyReadTimeout(Duration),
    /// The caller's deadline passed before the work finished; unstarted work was dropped.
    #[error("deadline exceeded: the request was allowed {0:?}")]
    DeadlineExceeded(Duration),
    /// The server is draining for shutdown and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The bearer token is missing or wrong.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// A rollout failed under a reward whose policy is `on_error = "fail"`.
    #[error(transparent)]
    RolloutFailed(#[from] crate::engine::RolloutFailed),
    /// A door the server's config or flags leave off (its text says how to turn it on).
    #[error("{0}")]
    NotConfigured(&'static str),
    /// A bug or a broken invariant in the server; logged with its full chain.
    #[error("internal error")]
    Internal(String),
}

/// How long an overloaded caller should wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl ScoreError {
    /// The HTTP status and gRPC code for this error.
    pub fn codes(&self) -> (StatusCode, tonic::Code) {
        match self {
            ScoreError::UnknownReward(_) => (StatusCode::NOT_FOUND, tonic::Code::NotFound),
            ScoreError::BadRequest(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
            ScoreError::TooManyRollouts { .. } => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::InvalidArgument),
            ScoreError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::ResourceExhausted),
            ScoreError::Overloaded { .. } | ScoreError::BodiesInFlight { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, tonic::Code::ResourceExhausted)
            }
            ScoreError::BodyReadTimeout(_) => (StatusCode::REQUEST_TIMEOUT, tonic::Code::DeadlineExceeded),
            ScoreError::DeadlineExceeded(_) => (StatusCode::GATEWAY_TIMEOUT, tonic::Code::DeadlineExceeded),
            ScoreError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
            ScoreError::Unauthenticated => (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated),
            ScoreError::RolloutFailed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, tonic::Code::Aborted),
            ScoreError::NotConfigured(_) => (StatusCode::NOT_FOUND, tonic::Code::Unimplemented),
            ScoreError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, tonic::Code::Internal),
        }
    }

    /// A short label for metrics, e.g. `overloaded`.
    pub fn kind(&self) -> &'static str {
        match self {
            ScoreError::UnknownReward(_) => "unknown_reward",
            ScoreError::BadRequest(_) => "bad_request",
            ScoreError::TooManyRollouts { .. } => "too_many_rollouts",
            ScoreError::BodyTooLarge { .. } => "body_too_large",
            ScoreError::Overloaded { .. } | ScoreError::BodiesInFlight { .. } => "overloaded",
            ScoreError::BodyReadTimeout(_) => "body_read_timeout",
            ScoreError::DeadlineExceeded(_) => "deadline_exceeded",
            ScoreError::ShuttingDown => "shutting_down",
            ScoreError::Unauthenticated => "unauthenticated",
            ScoreError::RolloutFailed { .. } => "rollout_failed",
            ScoreError::NotConfigured(_) => "not_configured",
            ScoreError::Internal(_) => "internal",
        }
    }

    fn log_if_internal(&self) {
        if let ScoreError::Internal(chain) = self {
            tracing::error!(error = %chain, "internal error");
        }
    }
}

impl From<ScoreError> for tonic::Status {
    fn from(e: ScoreError) -> Self {
        e.log_if_internal();
        let mut status = tonic::Status::new(e.codes().1, e.to_string());
        if matches!(e, ScoreError::Overloaded { .. }) {
            // gRPC's retry-pushback header, in milliseconds.
            if let Ok(v) = RETRY_AFTER.as_millis().to_string().parse() {
                status.metadata_mut().insert("grpc-retry-pushback-ms", v);
            }
        }
        status
    }
}

impl IntoResponse for ScoreError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let (code, _) = self.codes();
        let body = axum::Json(serde_json::json!({ "error": self.to_string(), "kind": self.kind() }));
        let mut response = (code, body).into_response();
        if matches!(self, ScoreError::Overloaded { .. } | ScoreError::BodiesInFlight { .. } | ScoreError::ShuttingDown) {
            response.headers_mut().insert("retry-after", RETRY_AFTER.as_secs().max(1).into());
        }
        if matches!(self, ScoreError::Unauthenticated) {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Reads a request body of type `T` from its text, borrowing where `T` does. A body serde_json
/// refuses is a `BadRequest` that says whether it is truncated or malformed, and where.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, ScoreError> {
    Ok(crate::input::from_body(text)?)
}

impl From<crate::input::InputError> for ScoreError {
    fn from(e: crate::input::InputError) -> Self {
        ScoreError::BadRequest(e.0)
    }
}
