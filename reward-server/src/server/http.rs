//! The HTTP API (axum). Handlers only translate between JSON and the scorer.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/score` | native API: `{reward, rollouts: [...]}` -> `{results: [...]}` (rollouts and results as in the offline JSONL) |
//! | `GET /v1/rewards` | the loaded rewards |
//! | `POST /v1/rewards/{name}/lambda` | the Nova RFT reward-Lambda contract |
//! | `POST /v1/rewards/{name}/get_reward` | OpenRLHF's remote reward contract |
//! | `POST /v1/rewards/{name}/slime` | slime's remote reward (`--rm-url`) |
//! | `POST /v1/rewards/{name}/verify` | NeMo Gym's resources-server `/verify` |
//! | `POST /verify`, `POST /seed_session` | the same, at the root where NeMo Gym calls them, for the reward `--nemo-gym-reward` names |
//! | `POST /v1/rewards/{name}/validate` | `validate`: hack probes and a determinism check |
//! | `POST /v1/fine_tuning/alpha/graders/run`, `.../validate` | OpenAI's grader API, with the config's `[graders]` table (`openai_graders`) |
//! | `POST /v1/admin/reload` | reload the rewards config and plugins |
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (503 while draining) |
//!
//! A caller deadline may be given as `x-timeout-ms` (milliseconds) or `grpc-timeout`; otherwise the
//! server's `--request-timeout` applies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::{ScoreError, from_json};
use super::scorer::Deadline;
use super::{AppState, ValidateAsk, metrics, nemo_gym, nova, openai_graders, openrlhf, slime};
use crate::engine::Item;
use crate::engine::Scored;
use crate::input::{Count, Records};
use crate::wire::ScoredJson;

/// The HTTP router over the shared state.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.options.max_body_bytes;
    Router::new()
        .route("/v1/score", post(score_native))
        .route("/v1/rewards", get(list_rewards))
        .route("/v1/rewards/{name}/lambda", post(score_lambda))
        .route("/v1/rewards/{name}/get_reward", post(score_openrlhf))
        .route("/v1/rewards/{name}/slime", post(score_slime))
        .route("/v1/rewards/{name}/verify", post(score_nemo_gym))
        .route("/verify", post(score_nemo_gym_root))
        .route("/seed_session", post(seed_session))
        .route("/v1/rewards/{name}/validate", post(validate))
        .route("/v1/fine_tuning/alpha/graders/run", post(run_grader))
        .route("/v1/fine_tuning/alpha/graders/validate", post(validate_grader))
        .route("/v1/admin/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(state.clone(), body_budget))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(state.options.connections.body_read_timeout))
        .with_state(state)
}

/// The bearer-token check ([`super::auth::Auth::check`]) in front of the scoring and admin routes.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match state.auth.check(request.headers().get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes())) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Reserves the request's bytes (its `Content-Length`, or `--max-body-bytes` when it gives none)
/// from the server's budget of request bytes read or held at once, for as long as the request
/// runs; a body that does not fit now is refused with 429 (read to nothing, never held). So
/// concurrent large bodies cannot take memory past `--max-inflight-body-bytes` (twice that at
/// the peak of reading, when a body's frames are joined).
async fn body_budget(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let max = state.options.max_body_bytes;
    let declared =
        request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    // Over the body cap: let the body limit answer 413 without reserving anything.
    let bytes = match declared {
        Some(n) if n > max => return next.run(request).await,
        Some(n) => n,
        None => max,
    };
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    match state.body_budget.clone().try_acquire_many_owned(kib) {
        Ok(permit) => {
            // A declared length is read into one buffer of that size, so the body is never held
            // twice (collecting its frames and then joining them would).
            let request = match declared {
                Some(n) => match read_declared(request, n, state.options.connections.body_read_timeout).await {
                    Ok(request) => request,
                    Err(e) => return e.into_response(),
                },
                None => request,
            };
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            metrics::rejected("body_budget");
            // Read the body to nothing (chunk by chunk, never held) so the client, still
            // sending, gets the 429 instead of a broken pipe.
            let mut chunks = request.into_body().into_data_stream();
            let mut seen = 0;
            while let Some(Ok(chunk)) = tokio_stream::StreamExt::next(&mut chunks).await {
                seen += chunk.len();
                if seen > max {
                    break;
                }
            }
            ScoreError::BodiesInFlight { bytes, max: state.options.max_inflight_body_bytes }.into_response()
        }
    }
}

/// Reads a body of declared length `n` into one buffer of that size and hands the request on
/// with it as a single frame.
async fn read_declared(request: Request, n: usize, timeout: Duration) -> Result<Request, ScoreError> {
    let (parts, body) = request.into_parts();
    let mut buffer = Vec::with_capacity(n);
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = tokio_stream::StreamExt::next(&mut chunks).await {
        let chunk = chunk.map_err(|e| unreadable_body(&e, timeout))?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(buffer)))
}

/// Why a body could not be read: its read timed out (`--body-read-timeout-ms`: 408), or the
/// client broke it off or sent a broken body (400).
fn unreadable_body(e: &(dyn std::error::Error + 'static), timeout: Duration) -> ScoreError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return ScoreError::BodyReadTimeout(timeout);
        }
        cause = c.source();
    }
    ScoreError::BadRequest(format!("could not read the request body: {e}"))
}

/// The request body as text: the rejection (too large, unreadable) or invalid UTF-8 as an error
/// that says what is wrong.
fn body_text<'a>(state: &AppState, body: &'a Result<Bytes, BytesRejection>) -> Result<&'a str, ScoreError> {
    let bytes = body.as_ref().map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ScoreError::BodyTooLarge { max: state.options.max_body_bytes }
        } else {
            unreadable_body(rejection, state.options.connections.body_read_timeout)
        }
    })?;
    std::str::from_utf8(bytes)
        .map_err(|e| ScoreError::BadRequest(format!("request body is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to())))
}

/// The caller's deadline (see [`super::caller_deadline`]).
fn deadline(state: &AppState, headers: &HeaderMap) -> Result<Deadline, ScoreError> {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    super::caller_deadline(header("x-timeout-ms"), header("grpc-timeout"), state.options.request_timeout)
}

/// One scoring endpoint: `count` counts the body's records without reading them (a body over
/// `--max-rollouts-per-request` is refused before anything is built from it), `parse` reads the
/// body text into the reward's name and the request's items (each record read once, straight
/// from the body), then the items are scored and answered with `answer(scores)`. Every error
/// becomes its HTTP status with a JSON `{error, kind}` body.
async fn endpoint(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    transport: &'static str,
    body: Result<Bytes, BytesRejection>,
    count: impl FnOnce(&str) -> Result<usize, ScoreError>,
    parse: impl FnOnce(&str) -> Result<(String, Vec<Item>), ScoreError>,
    answer: impl FnOnce(&[Scored]) -> Response,
) -> Response {
    let read = |text: &str| {
        state.scorer.check_request_size(count(text)?)?;
        parse(text)
    };
    let (name, items) = match body_text(state, &body).and_then(read) {
        Ok(parsed) => parsed,
        Err(e) => return rejected(e),
    };
    match state.score_request(&name, transport, deadline(state, headers), items).await {
        Ok(scored) => answer(&scored),
        Err(e) => e.into_response(),
    }
}

/// The native API's request: the same rollout records as the offline JSONL. `R` is [`Records`]
/// for the one-pass read of good records, `Vec<&RawValue>` to read them one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeRequest<R> {
    reward: String,
    rollouts: R,
}

/// What the native door counts before reading a request: its `rollouts`.
#[derive(Deserialize)]
struct NativeCount {
    rollouts: Count,
}

/// The native API's answer.
#[derive(Serialize)]
struct NativeResponse<'a> {
    results: Vec<ScoredJson<'a>>,
}

async fn score_native(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let parse = |text: &str| {
        if let Ok(NativeRequest { reward, rollouts: records }) = serde_json::from_str::<NativeRequest<Records>>(text)
            && let Some(rollouts) = records.into_rollouts("rollout")
        {
            return Ok((reward, rollouts.into_iter().map(Item::Rollout).collect()));
        }
        let request: NativeRequest<Vec<&RawValue>> = from_json(text)?;
        Ok((request.reward, Item::from_records(request.rollouts, "rollouts", "rollout")))
    };
    let answer = |scored: &[Scored]| Json(NativeResponse { results: scored.iter().map(ScoredJson::from).collect() }).into_response();
    let count = |text: &str| from_json::<NativeCount>(text).map(|c| c.rollouts.0);
    endpoint(&state, &headers, "http", body, count, parse, answer).await
}

async fn score_lambda(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = |scored: &[Scored]| Json(nova::response(scored)).into_response();
    let count = |text: &str| Ok(nova::count_request(text)?);
    endpoint(&state, &headers, "lambda", body, count, |text| Ok((name, nova::parse_request(text)?)), answer).await
}

async fn score_openrlhf(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = |scored: &[Scored]| Json(openrlhf::response(scored)).into_response();
    let parse = |text: &str| Ok((name, openrlhf::parse_request(from_json(text)?)?));
    endpoint(&state, &headers, "openrlhf", body, openrlhf::count_request, parse, answer).await
}

async fn score_slime(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<slime::Query>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let detail = match query {
        Ok(Query(q)) => q.detail,
        Err(e) => return rejected(ScoreError::BadRequest(format!("query string: {}", e.body_text()))),
    };
    let answer = |scored: &[Scored]| match scored {
        [one] => Json(slime::response(one, detail)).into_response(),
        _ => ScoreError::Internal(format!("{} answers to one sample", scored.len())).into_response(),
    };
    let parse = |text: &str| Ok((name, vec![slime::parse_request(from_json(text)?)]));
    endpoint(&state, &headers, "slime", body, |_| Ok(1), parse, answer).await
}

async fn score_nemo_gym(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    nemo_gym_verify(&state, name, &headers, body).await
}

/// `/verify` at the root, where NeMo Gym's server client calls a resources server: the reward
/// `--nemo-gym-reward` names.
async fn score_nemo_gym_root(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    match state.options.nemo_gym_reward.clone() {
        Some(name) => nemo_gym_verify(&state, name, &headers, body).await,
        None => no_nemo_gym_reward(),
    }
}

/// NeMo Gym's `/seed_session`, called before every rollout: the rewards keep no session, so it
/// only answers `{}` (when `--nemo-gym-reward` is set, as `/verify`).
async fn seed_session(State(state): State<Arc<AppState>>) -> Response {
    if state.options.nemo_gym_reward.is_none() {
        return no_nemo_gym_reward();
    }
    Json(serde_json::json!({})).into_response()
}

fn no_nemo_gym_reward() -> Response {
    ScoreError::NotConfigured(
        "this server answers NeMo Gym's /verify and /seed_session only when started with --nemo-gym-reward NAME \
         (or POST /v1/rewards/NAME/verify)",
    )
    .into_response()
}

async fn nemo_gym_verify(state: &Arc<AppState>, name: String, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    // The request's fields, from the read to the answer (a lock only to be `Sync` across the await).
    let echo = std::sync::Mutex::new(None);
    let parse = |text: &str| {
        let (fields, item) = nemo_gym::parse_request(text)?;
        *echo.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fields);
        Ok((name, vec![item]))
    };
    let answer = |scored: &[Scored]| match (scored, echo.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()) {
        ([one], Some(fields)) => Json(nemo_gym::response(fields, one)).into_response(),
        _ => ScoreError::Internal(format!("{} answers to one request", scored.len())).into_response(),
    };
    endpoint(state, headers, "nemo_gym", body, |_| Ok(1), parse, answer).await
}

/// The validate door's request: every field optional (an empty body validates on the reward's
/// built-in samples with the defaults).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest<'a> {
    #[serde(default, borrow)]
    rollouts: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    max_samples: Option<usize>,
}

async fn validate(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ask = body_text(&state, &body).and_then(|text| {
        let req: ValidateRequest = if text.trim().is_empty() { ValidateRequest::default() } else { from_json(text)? };
        if let Some(rollouts) = &req.rollouts {
            state.scorer.check_request_size(rollouts.len())?;
        }
        let samples = req.rollouts.map(|records| Item::from_records(records, "rollouts", "sample"));
        Ok(ValidateAsk { reward: name, samples, threshold: req.threshold, max_samples: req.max_samples })
    });
    let ask = match ask {
        Ok(ask) => ask,
        Err(e) => return rejected(e),
    };
    match state.validate(ask, "http_validate", deadline(&state, &headers)).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A request the door could not read: counted as rejected, answered with its error.
fn rejected(e: ScoreError) -> Response {
    metrics::rejected(e.kind());
    e.into_response()
}

async fn run_grader(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let read = state.graders().and_then(|graders| {
        let request: openai_graders::RunRequest = from_json(body_text(&state, &body)?)?;
        let item = openai_graders::rollout(request.model_sample, &request.item).map_err(ScoreError::BadRequest)?;
        Ok((graders, request.grader, item, deadline(&state, &headers)?))
    });
    let (graders, grader, item, deadline) = match read {
        Ok(read) => read,
        Err(e) => {
            metrics::rejected(e.kind());
            return openai_graders::error(e);
        }
    };
    let reward = state.grader_reward(graders, &grader, &deadline).await;
    let run = reward.as_ref().ok().cloned();
    let label = crate::engine::graders::GRADER_REWARD;
    match (state.score_reward(label, reward, "openai_graders", Ok(deadline), vec![item]).await, run) {
        (Ok(scored), Some(reward)) if scored.len() == 1 => Json(openai_graders::response(&grader, &reward, &scored[0])).into_response(),
        (Ok(scored), _) => openai_graders::error(ScoreError::Internal(format!("{} answers to one sample", scored.len()))),
        (Err(e), _) => openai_graders::error(e),
    }
}

async fn validate_grader(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let read = state.graders().and_then(|graders| {
        let request: openai_graders::ValidateRequest = from_json(body_text(&state, &body)?)?;
        Ok((graders, request.grader, deadline(&state, &headers)?))
    });
    let (graders, grader, deadline) = match read {
        Ok(read) => read,
        Err(e) => {
            metrics::rejected(e.kind());
            return openai_graders::error(e);
        }
    };
    match state.grader_reward(graders, &grader, &deadline).await {
        Ok(_) => Json(serde_json::json!({ "grader": grader })).into_response(),
        Err(e) => openai_graders::error(e),
    }
}

async fn list_rewards(State(state): State<Arc<AppState>>) -> Response {
    let rewards = state.scorer.rewards();
    let list: Vec<Value> = rewards.iter().map(|r| serde_json::to_value(super::RewardSummary::of(r)).unwrap_or_default()).collect();
    Json(serde_json::json!({ "rewards": list })).into_response()
}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    match state.reload().await {
        Ok(names) => Json(serde_json::json!({ "reloaded": true, "rewards": names })).into_response(),
        Err(e) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "reloaded": false, "error": format!("{e:#}") }))).into_response()
        }
    }
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.scorer.is_draining() { (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response() } else { "ready".into_response() }
}
