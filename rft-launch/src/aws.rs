//! Sending a [`Plan`]: credentials, SigV4 signing, endpoints.
//!
//! Not the AWS SDK for Rust: `aws-config` alone (with its STS/SSO clients, hyper and aws-lc) took
//! about 12 minutes of a cold single-job build on the shared 2-core machine, and
//! `aws-sdk-sagemaker` (53 MB of generated source) more than the time box on top; the launcher
//! needs four JSON calls. So it signs with SigV4 itself (`hmac` + `sha2`, checked against AWS's
//! published test vector) and sends with `reqwest`.
//!
//! Credentials, in the standard order: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`; the shared files (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`,
//! static keys or `credential_process`); container credentials (ECS, EKS Pod Identity:
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`); EC2 instance metadata (IMDSv2).
//! Not covered: SSO and role chaining in profiles (use `credential_process =
//! aws configure export-credentials --format process`) and web identity (IRSA).
//!
//! The endpoint: `--endpoint-url`, else `aws.endpoint_url`, else `AWS_ENDPOINT_URL`, else the
//! regional AWS endpoint of each service.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::{Plan, Request, Step};

/// An access key, with its session token when temporary.
#[derive(Clone)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

/// Sections of an INI-style AWS shared file: `(section, key) -> value`.
fn ini(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn profile_values(profile: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    let creds = env("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| home().map(|h| h.join(".aws/credentials")));
    let config = env("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| home().map(|h| h.join(".aws/config")));
    if let Some(text) = creds.and_then(|p| std::fs::read_to_string(p).ok()) {
        values.extend(ini(&text).into_iter().filter(|(s, _, _)| s == profile).map(|(_, k, v)| (k, v)));
    }
    if let Some(text) = config.and_then(|p| std::fs::read_to_string(p).ok()) {
        let wanted = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
        values.extend(ini(&text).into_iter().filter(|(s, _, _)| *s == wanted).map(|(_, k, v)| (k, v)));
    }
    values
}

fn from_json(v: &Value, token_key: &str) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: v.get("AccessKeyId")?.as_str()?.to_owned(),
        secret_access_key: v.get("SecretAccessKey")?.as_str()?.to_owned(),
        session_token: v.get(token_key).and_then(Value::as_str).map(str::to_owned),
    })
}

/// The region from the profile, when neither the spec nor the environment gives one.
pub fn profile_region() -> Option<String> {
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    profile_values(&profile).into_iter().find(|(k, _)| k == "region").map(|(_, v)| v)
}

/// Finds credentials along the standard chain (see the module doc).
pub async fn load_credentials(http: &reqwest::Client) -> Result<Credentials> {
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials { access_key_id: id, secret_access_key: secret, session_token: env("AWS_SESSION_TOKEN") });
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let values = profile_values(&profile);
    let get = |key: &str| values.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
        return Ok(Credentials { access_key_id: id, secret_access_key: secret, session_token: get("aws_session_token") });
    }
    if let Some(cmd) = get("credential_process") {
        let out = std::process::Command::new("sh")
            .args(["-c", &cmd])
            .output()
            .with_context(|| format!("running credential_process of profile {profile}"))?;
        if !out.status.success() {
            bail!("credential_process of profile {profile} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("credential_process printed no JSON")?;
        return from_json(&v, "SessionToken")
            .ok_or_else(|| anyhow!("credential_process of profile {profile}: no AccessKeyId/SecretAccessKey"));
    }
    let container_url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .or_else(|| env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|p| format!("http://169.254.170.2{p}")));
    if let Some(url) = container_url {
        let mut req = http.get(&url).timeout(Duration::from_secs(5));
        let token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .or_else(|| env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").and_then(|f| std::fs::read_to_string(f).ok()));
        if let Some(t) = token {
            req = req.header("authorization", t.trim());
        }
        let v: Value = req.send().await?.error_for_status()?.json().await.context("container credentials")?;
        return from_json(&v, "Token").ok_or_else(|| anyhow!("container credentials at {url}: no AccessKeyId/SecretAccessKey"));
    }
    if env("AWS_EC2_METADATA_DISABLED").is_none_or(|v| !v.eq_ignore_ascii_case("true"))
        && let Ok(c) = imds(http).await
    {
        return Ok(c);
    }
    bail!(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE) with keys or \
         credential_process, or run where container or instance credentials are available"
    )
}

async fn imds(http: &reqwest::Client) -> Result<Credentials> {
    let base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
    let t = Duration::from_secs(1);
    let token = http
        .put(format!("{base}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .timeout(t)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let role = http.get(&path).header("x-aws-ec2-metadata-token", &token).timeout(t).send().await?.error_for_status()?.text().await?;
    let role = role.lines().next().unwrap_or_default().trim().to_owned();
    let v: Value = http
        .get(format!("{path}{role}"))
        .header("x-aws-ec2-metadata-token", &token)
        .timeout(t)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    from_json(&v, "Token").ok_or_else(|| anyhow!("instance metadata credentials: no AccessKeyId"))
}

type HmacSha256 = Hmac<Sha256>;
/// Header (name, value) pairs, in the order they are sent.
type Headers = Vec<(String, String)>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Percent-encodes as SigV4 wants: every byte but the unreserved `A-Za-z0-9-_.~` as `%XX`
/// (upper case); `/` kept when `keep_slash`.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The path with `.` and `..` segments resolved (RFC 3986, 5.2.4) and empty segments dropped, as
/// every service but S3 normalizes it before signing; a trailing `/` is kept.
pub fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        p.push('/');
    }
    p
}

/// SigV4's canonical URI of `path` as sent on the wire (already percent-encoded). S3 signs it as
/// is. Every other service signs it normalized and encoded a *second* time, so a request to
/// `/model-customization-jobs/arn%3Aaws%3A...` signs `/model-customization-jobs/arn%253Aaws%253A...`:
/// what botocore and the AWS SDKs compute, and what AWS checks.
pub fn canonical_uri(service: &str, path: &str) -> String {
    if service == "s3" {
        return if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    }
    uri_encode(normalize_path(path).as_bytes(), true)
}

/// SigV4's canonical query string: each name and value decoded, then encoded strictly, sorted by
/// name, then value; a parameter without `=` gets an empty value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// SigV4's canonical headers and signed-header list: names lower case and sorted, each value
/// trimmed with runs of white space made one space, the values of a repeated name joined by `,`
/// in the order given.
pub fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in headers {
        let name = k.trim().to_ascii_lowercase();
        let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    grouped.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical = grouped.iter().map(|(k, vs)| format!("{k}:{}\n", vs.join(","))).collect();
    let signed = grouped.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    (canonical, signed)
}

/// Every intermediate of a SigV4 signature, for tests against published vectors.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The `Authorization` header's value.
    pub authorization: String,
}

/// Signs a request whose `headers` already hold everything signed (`host`, `x-amz-date`, ...).
/// `date` is the `x-amz-date` value (`YYYYMMDDTHHMMSSZ`), `path` the path as sent and `query`
/// the query as sent (without `?`).
#[allow(clippy::too_many_arguments)]
pub fn signature(
    creds: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
    date: &str,
) -> Signature {
    let (canonical_headers, signed_headers) = canonical_headers(headers);
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_uri(service, path),
        canonical_query(query)
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    let k_date = hmac(format!("AWS4{}", creds.secret_access_key).as_bytes(), &date[..8]);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    let sig = hex::encode(hmac(&k_signing, &string_to_sign));
    let authorization =
        format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={sig}", creds.access_key_id);
    Signature { canonical_request, string_to_sign, authorization }
}

/// Signs a request with SigV4: returns the headers to add (`x-amz-date`, `x-amz-content-sha256`
/// for S3, `x-amz-security-token` when temporary, `authorization`). `headers` must include
/// `host`; `path` and `query` are as sent (percent-encoded; see [`canonical_uri`]).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Vec<(String, String)> {
    let date = amz_date(now);
    let payload_hash = hex::encode(Sha256::digest(body));
    let mut added = vec![("x-amz-date".to_owned(), date.clone())];
    if service == "s3" {
        added.push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    if let Some(t) = &creds.session_token {
        added.push(("x-amz-security-token".into(), t.clone()));
    }
    let all: Vec<(String, String)> = headers.iter().cloned().chain(added.iter().cloned()).collect();
    let sig = signature(creds, region, service, method, path, query, &all, &payload_hash, &date);
    added.push(("authorization".into(), sig.authorization));
    added
}

/// A request as the [`Executor`] sends it to `base`: the URL, its headers (with `host`), the
/// body, and the signing headers for time `now`.
pub fn signed_request(
    req: &Request,
    base: &str,
    region: &str,
    creds: &Credentials,
    now: SystemTime,
) -> Result<(reqwest::Url, Headers, Vec<u8>, Headers)> {
    let base = base.trim_end_matches('/');
    let url: reqwest::Url = format!("{base}{}", req.path).parse().with_context(|| format!("bad URL {base}{}", req.path))?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let body = req.body_bytes();
    let mut headers = req.headers.clone();
    headers.push(("host".into(), host));
    let signed = sign(creds, region, req.service.signing_name(), req.method, url.path(), url.query().unwrap_or(""), &headers, &body, now);
    Ok((url, headers, body, signed))
}

/// Carries out plans against AWS (or an endpoint override).
pub struct Executor {
    http: reqwest::Client,
    region: String,
    endpoint_url: Option<String>,
    creds: Credentials,
    record: Option<std::fs::File>,
}

/// An error answer from an AWS API.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: HTTP {status}: {body}")]
pub struct ApiError {
    /// The operation.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The answer's body.
    pub body: String,
}

impl Executor {
    /// Loads credentials; `endpoint_url` overrides every service's endpoint; `record` appends
    /// each request sent (as `--dry-run` shows it) to a JSON-lines file.
    pub async fn new(region: String, endpoint_url: Option<String>, record: Option<PathBuf>) -> Result<Executor> {
        let http = reqwest::Client::builder().build().context("building the HTTP client")?;
        let creds = load_credentials(&http).await?;
        let record = match record {
            Some(p) => {
                Some(std::fs::OpenOptions::new().create(true).append(true).open(&p).with_context(|| format!("opening {}", p.display()))?)
            }
            None => None,
        };
        Ok(Executor { http, region, endpoint_url, creds, record })
    }

    /// Sends one request; an error answer (HTTP >= 300) is an [`ApiError`].
    pub async fn send(&mut self, req: &Request, secrets: &[String]) -> Result<Value> {
        let base = self.endpoint_url.clone().unwrap_or_else(|| req.service.endpoint(&self.region));
        let (url, headers, body, signed) = signed_request(req, &base, &self.region, &self.creds, SystemTime::now())?;
        if let Some(f) = &mut self.record {
            let line = serde_json::to_string(&req.describe(secrets))?;
            writeln!(f, "{line}").context("recording the request")?;
        }
        let method: reqwest::Method = req.method.parse().expect("known method");
        let mut builder = self.http.request(method, url).timeout(Duration::from_secs(120)).body(body);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host").chain(signed.iter()) {
            builder = builder.header(k, v);
        }
        let resp = builder.send().await.with_context(|| format!("{} ({})", req.operation, req.service.signing_name()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status >= 300 {
            let body = crate::plan::redact_text(&text, secrets);
            return Err(ApiError { operation: req.operation, status, body }.into());
        }
        Ok(if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    /// Carries out every step in order; returns each call's answer.
    pub async fn run(&mut self, plan: &Plan) -> Result<Vec<Value>> {
        let mut answers = Vec::new();
        for step in &plan.steps {
            match step {
                Step::Call(r) => answers.push(self.send(r, &plan.secrets).await?),
                Step::UpsertFunction { get, create, update_code, update_config } => match self.send(get, &plan.secrets).await {
                    Ok(_) => {
                        answers.push(self.send(update_code, &plan.secrets).await?);
                        self.wait_update(get).await?;
                        answers.push(self.send(update_config, &plan.secrets).await?);
                    }
                    Err(e) if e.downcast_ref::<ApiError>().is_some_and(|a| a.status == 404) => {
                        answers.push(self.send(create, &plan.secrets).await?);
                    }
                    Err(e) => return Err(e),
                },
                Step::WaitFunctionActive { get_config, timeout } => {
                    answers.push(self.wait_active(get_config, *timeout).await?);
                }
                Step::Run { program, args, find_job_name } => {
                    answers.push(crate::plan::run_program(program, args, find_job_name.as_deref())?);
                }
                Step::Print(text) => println!("{text}"),
            }
        }
        Ok(answers)
    }

    async fn wait_update(&mut self, get: &Request) -> Result<()> {
        let mut poll = get.clone();
        poll.operation = "GetFunctionConfiguration";
        poll.path = format!("{}/configuration", get.path);
        self.wait_active(&poll, Duration::from_secs(300)).await.map(drop)
    }

    async fn wait_active(&mut self, get_config: &Request, timeout: Duration) -> Result<Value> {
        let started = Instant::now();
        loop {
            let c = self.send(get_config, &[]).await?;
            let state = c.get("State").and_then(Value::as_str).unwrap_or("Active");
            let update = c.get("LastUpdateStatus").and_then(Value::as_str).unwrap_or("Successful");
            if state == "Failed" || update == "Failed" {
                bail!(
                    "the function failed to become active: {}",
                    c.get("StateReason").or(c.get("LastUpdateStatusReason")).and_then(Value::as_str).unwrap_or("no reason given")
                );
            }
            if state == "Active" && update != "InProgress" {
                return Ok(c);
            }
            if started.elapsed() > timeout {
                bail!("the function is still {state}/{update} after {} s", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's SigV4 test suite, `get-vanilla`.
    #[test]
    fn sigv4_get_vanilla() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        assert_eq!(amz_date(t), "20150830T123600Z");
        let h = sign(&creds, "us-east-1", "service", "GET", "/", "", &[("host".into(), "example.amazonaws.com".into())], b"", t);
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn ini_sections() {
        let v = ini("[default]\naws_access_key_id = A\n[profile x]\nregion=eu-west-1\n");
        assert_eq!(v[1], ("profile x".into(), "region".into(), "eu-west-1".into()));
    }
}
