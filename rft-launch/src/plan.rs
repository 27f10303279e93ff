//! What a command will do, as data: a list of concrete steps (AWS requests with their JSON
//! bodies, a program to run, text to print). `--dry-run` prints the plan; [`crate::aws::Executor`]
//! carries it out. Tests assert the requests exactly.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The AWS services the launcher calls, with their SigV4 signing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 (REST, path-style addressing).
    S3,
    /// AWS Lambda (REST JSON).
    Lambda,
    /// Amazon SageMaker (awsJson1_1).
    SageMaker,
    /// Amazon Bedrock control plane (REST JSON).
    Bedrock,
}

impl Service {
    /// The SigV4 signing name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Lambda => "lambda",
            Service::SageMaker => "sagemaker",
            Service::Bedrock => "bedrock",
        }
    }

    /// The regional AWS endpoint.
    pub fn endpoint(self, region: &str) -> String {
        match self {
            Service::S3 => format!("https://s3.{region}.amazonaws.com"),
            Service::Lambda => format!("https://lambda.{region}.amazonaws.com"),
            Service::SageMaker => format!("https://api.sagemaker.{region}.amazonaws.com"),
            Service::Bedrock => format!("https://bedrock.{region}.amazonaws.com"),
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// JSON. A string value [`ZIP_PLACEHOLDER`] is replaced with the base64 of `zip` when sent.
    Json(Value),
    /// Raw bytes (an S3 object), with a printable description.
    Bytes {
        /// The content.
        data: Arc<Vec<u8>>,
        /// Shown by `--dry-run` instead of the bytes (e.g. the recipe YAML itself).
        preview: Option<String>,
    },
}

/// Stands in the plan for the base64 of the bridge's deployment package.
pub const ZIP_PLACEHOLDER: &str = "<base64 of the deployment package>";

/// One AWS API call.
#[derive(Debug, Clone)]
pub struct Request {
    /// The service.
    pub service: Service,
    /// The API operation, e.g. `CreateTrainingJob`.
    pub operation: &'static str,
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// Path and query, already percent-encoded.
    pub path: String,
    /// Extra headers (`X-Amz-Target`, `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// The deployment package a [`ZIP_PLACEHOLDER`] in the body stands for.
    pub zip: Option<Arc<Vec<u8>>>,
}

impl Request {
    /// An awsJson1_1 call (SageMaker): `POST /` with `X-Amz-Target: SageMaker.<operation>`.
    pub fn json_rpc(service: Service, prefix: &str, operation: &'static str, body: Value) -> Request {
        Request {
            service,
            operation,
            method: "POST",
            path: "/".into(),
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), format!("{prefix}.{operation}")),
            ],
            body: Body::Json(body),
            zip: None,
        }
    }

    /// A REST JSON call (Lambda, Bedrock).
    pub fn rest(service: Service, operation: &'static str, method: &'static str, path: String, body: Option<Value>) -> Request {
        let (headers, body) = match body {
            Some(v) => (vec![("content-type".to_owned(), "application/json".to_owned())], Body::Json(v)),
            None => (vec![], Body::Empty),
        };
        Request { service, operation, method, path, headers, body, zip: None }
    }

    /// The body bytes as sent.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Empty => Vec::new(),
            Body::Json(v) => {
                let v = match &self.zip {
                    Some(zip) => {
                        use base64::Engine;
                        replace_string(v, ZIP_PLACEHOLDER, &base64::engine::general_purpose::STANDARD.encode(zip.as_slice()))
                    }
                    None => v.clone(),
                };
                serde_json::to_vec(&v).expect("JSON serializes")
            }
            Body::Bytes { data, .. } => data.as_ref().clone(),
        }
    }

    /// How the request is shown by `--dry-run` and recorded: secrets replaced with `***`.
    pub fn describe(&self, secrets: &[String]) -> Value {
        let body = match &self.body {
            Body::Empty => Value::Null,
            Body::Json(v) => redact(v, secrets),
            Body::Bytes { data, preview } => json!({
                "bytes": data.len(),
                "sha256": hex::encode(Sha256::digest(data.as_slice())),
                "preview": preview,
            }),
        };
        let mut out = json!({
            "service": self.service.signing_name(),
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "body": body,
        });
        if let Some(target) = self.headers.iter().find(|(k, _)| k == "x-amz-target") {
            out["target"] = Value::String(target.1.clone());
        }
        if let Some(zip) = &self.zip {
            out["package"] = json!({"bytes": zip.len(), "sha256": hex::encode(Sha256::digest(zip.as_slice()))});
        }
        out
    }
}

fn replace_string(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) if s == from => Value::String(to.to_owned()),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_string(x, from, to)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), replace_string(x, from, to))).collect()),
        other => other.clone(),
    }
}

/// One step of a plan.
#[derive(Debug, Clone)]
// A plan holds a handful of steps, built once: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Send a request; fail on an error answer.
    Call(Request),
    /// Create the Lambda function, or update it when it exists: `get` decides (404: absent);
    /// an update sends the code, waits for it, then the configuration.
    UpsertFunction {
        /// GetFunction.
        get: Request,
        /// CreateFunction.
        create: Request,
        /// UpdateFunctionCode.
        update_code: Request,
        /// UpdateFunctionConfiguration.
        update_config: Request,
    },
    /// Poll GetFunctionConfiguration until `State` is `Active` and `LastUpdateStatus` is not
    /// `InProgress`; fail on `Failed` or after `timeout`.
    WaitFunctionActive {
        /// GetFunctionConfiguration.
        get_config: Request,
        /// How long to wait.
        timeout: Duration,
    },
    /// Run a program (the HyperPod CLI).
    Run {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// The configured job name, when the program renames the job and prints the new name
        /// (`hyperpod start-job`): the real name is found in its output and printed.
        find_job_name: Option<String>,
    },
    /// Print text (snippets for open-source trainers).
    Print(String),
}

/// What a command does, in order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
    /// Values never printed or recorded (the server token).
    pub secrets: Vec<String>,
}

impl Plan {
    /// The plan as JSON, one entry per step: what `--dry-run` prints.
    pub fn describe(&self) -> Value {
        let s = &self.secrets;
        Value::Array(
            self.steps
                .iter()
                .map(|step| match step {
                    Step::Call(r) => r.describe(s),
                    Step::UpsertFunction { get, create, update_code, update_config } => json!({
                        "upsert_function": {
                            "get": get.describe(s),
                            "if_absent": [create.describe(s)],
                            "if_present": [update_code.describe(s), update_config.describe(s)],
                        }
                    }),
                    Step::WaitFunctionActive { get_config, timeout } => json!({
                        "wait_until_active": {"poll": get_config.describe(s), "timeout_s": timeout.as_secs()}
                    }),
                    Step::Run { program, args, .. } => {
                        json!({"run": {"program": program, "args": args, "shell": shell_line(program, args)}})
                    }
                    Step::Print(text) => json!({"print": text}),
                })
                .collect(),
        )
    }
}

/// Runs a [`Step::Run`]: its output is passed through; with `find_job_name`, the job's real name
/// is taken from it and printed last, as `HyperPod job name: NAME` (what `job status|stop` take).
pub fn run_program(program: &str, args: &[String], find_job_name: Option<&str>) -> anyhow::Result<Value> {
    use anyhow::Context;
    use std::io::Write;
    eprintln!("running: {}", shell_line(program, args));
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {program} (is it installed and on PATH?)"))?;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    anyhow::ensure!(out.status.success(), "{program} exited with {}", out.status);
    let Some(configured) = find_job_name else { return Ok(json!({"exit": out.status.code()})) };
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match crate::job::hyperpod::job_name_in(&text, configured) {
        Some(name) => {
            println!("HyperPod job name: {name}");
            eprintln!("(the recipes launcher renames runs; use this name: rft-launch job status --kind hyperpod {name})");
            Ok(json!({"job_name": name}))
        }
        None => {
            eprintln!(
                "warning: no job name of the form {}-xxxxx in the output of {program}; find the job with `{program} list-jobs`",
                configured.chars().take(crate::job::hyperpod::NAME_PREFIX_LEN).collect::<String>()
            );
            Ok(json!({"exit": out.status.code()}))
        }
    }
}

/// Replaces every occurrence of each secret, in every string (and key) of `v`, with `***`.
pub fn redact(v: &Value, secrets: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(redact_text(s, secrets)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(x, secrets)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (redact_text(k, secrets), redact(x, secrets))).collect()),
        other => other.clone(),
    }
}

/// Replaces every occurrence of each secret in `s` with `***`.
pub fn redact_text(s: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|x| !x.is_empty()).fold(s.to_owned(), |s, x| s.replace(x.as_str(), "***"))
}

/// A command line a POSIX shell reads back as `program args...`.
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program).chain(args.iter().map(String::as_str)).map(shell_quote).collect::<Vec<_>>().join(" ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters kept).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_zip_substituted() {
        let mut r = Request::rest(
            Service::Lambda,
            "CreateFunction",
            "POST",
            "/2015-03-31/functions".into(),
            Some(json!({"Code": {"ZipFile": ZIP_PLACEHOLDER}, "Environment": {"Variables": {"T": "s3cret"}}})),
        );
        r.zip = Some(Arc::new(b"PK".to_vec()));
        let shown = r.describe(&["s3cret".into()]);
        assert_eq!(shown["body"]["Environment"]["Variables"]["T"], "***");
        let sent: Value = serde_json::from_slice(&r.body_bytes()).unwrap();
        assert_eq!(sent["Code"]["ZipFile"], "UEs=");
        assert_eq!(sent["Environment"]["Variables"]["T"], "s3cret");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_line("hyperpod", &["--x".into(), "{\"a\": 'b'}".into()]), "hyperpod --x '{\"a\": '\\''b'\\''}'");
    }
}
