//! SigV4 signing checked against published references:
//!
//! - every vector of the AWS SigV4 test suite (`tests/data/aws-sig-v4-test-suite/`, copied from
//!   botocore's `tests/unit/auth/aws4_testsuite/` with its LICENSE and NOTICE): canonical
//!   request, string to sign and Authorization;
//! - botocore's own signer (run offline through `tests/py/botocore_sign.py`) for the requests the
//!   launcher sends: Bedrock with a job ARN in the path, Lambda, SageMaker, S3.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rft_launch::aws::{Credentials, signature, signed_request};
use rft_launch::plan::{Plan, Request, Step};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn creds(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(str::to_owned),
    }
}

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-sig-v4-test-suite")
}

fn vectors(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            vectors(&p, out);
        } else if p.extension().is_some_and(|x| x == "req") {
            out.push(p);
        }
    }
}

/// A `.req` file: request line, headers (a line starting with white space continues the value
/// before it), a blank line, the body.
fn parse_req(text: &str) -> (String, String, String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let (method, rest) = first.split_once(' ').unwrap();
    let target = rest.rsplit_once(" HTTP/").unwrap().0;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().unwrap();
            last.1 = format!("{} {}", last.1, line.trim());
        } else {
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    (method.to_owned(), path.to_owned(), query.to_owned(), headers, body.as_bytes().to_vec())
}

#[test]
fn every_vector_of_the_sigv4_test_suite() {
    let mut reqs = Vec::new();
    vectors(&suite(), &mut reqs);
    reqs.sort();
    assert_eq!(reqs.len(), 34, "the suite has 34 requests");
    let mut failed = Vec::new();
    for req in &reqs {
        let stem = req.with_extension("");
        let read = |ext: &str| std::fs::read_to_string(stem.with_extension(ext)).unwrap().trim_end().to_owned();
        let (method, path, query, mut headers, body) = parse_req(&std::fs::read_to_string(req).unwrap());
        // With temporary credentials the signer adds the token (get-vanilla-with-session-token);
        // post-sts-header-after adds it only after signing, so its canonical request has none.
        let sreq = std::fs::read_to_string(stem.with_extension("sreq")).unwrap();
        let token = sreq.lines().find_map(|l| l.strip_prefix("X-Amz-Security-Token:"));
        let has = |h: &[(String, String)]| h.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"));
        if let Some(token) = token.filter(|_| !has(&headers) && read("creq").contains("\nx-amz-security-token:")) {
            headers.push(("X-Amz-Security-Token".into(), token.to_owned()));
        }
        let date = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-date")).unwrap().1.clone();
        let sig =
            signature(&creds(None), "us-east-1", "service", &method, &path, &query, &headers, &hex::encode(Sha256::digest(&body)), &date);
        let name = stem.file_name().unwrap().to_string_lossy().into_owned();
        if sig.canonical_request != read("creq") {
            failed.push(format!("{name}: canonical request\n{}\n--- expected\n{}", sig.canonical_request, read("creq")));
        } else if sig.string_to_sign != read("sts") {
            failed.push(format!("{name}: string to sign"));
        } else if sig.authorization != read("authz") {
            failed.push(format!("{name}: authorization"));
        }
    }
    assert!(failed.is_empty(), "{} of {} vectors failed:\n{}", failed.len(), reqs.len(), failed.join("\n\n"));
    eprintln!("SigV4 test suite: {} of {} vectors passed", reqs.len(), reqs.len());
}

/// `sign` (which adds x-amz-date and the session token itself) agrees with the suite.
#[test]
fn sign_adds_the_session_token_as_the_suite_does() {
    let stem = suite().join("get-vanilla-with-session-token/get-vanilla-with-session-token");
    let sreq = std::fs::read_to_string(stem.with_extension("sreq")).unwrap();
    let token = sreq.lines().find_map(|l| l.strip_prefix("X-Amz-Security-Token:")).unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let h = rft_launch::aws::sign(
        &creds(Some(token)),
        "us-east-1",
        "service",
        "GET",
        "/",
        "",
        &[("Host".into(), "example.amazonaws.com".into())],
        b"",
        t,
    );
    let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
    assert_eq!(auth, &std::fs::read_to_string(stem.with_extension("authz")).unwrap().trim_end());
}

const SPEC: &str = r#"
[aws]
region = "us-east-1"
account_id = "123456789012"
[server]
url = "https://reward.example:8443"
reward = "math"
[bridge]
function_name = "SageMaker-reward-bridge"
role_arn = "arn:aws:iam::123456789012:role/reward-bridge"
binary = "bootstrap"
subnet_ids = ["subnet-0123456789abcdef0"]
security_group_ids = ["sg-0123456789abcdef0"]
[job]
name = "rft-math-001"
role_arn = "arn:aws:iam::123456789012:role/SageMakerExecution"
train_data = "s3://my-bucket/rft/train data.jsonl"
output_path = "s3://my-bucket/rft/output"
[recipe]
model_name_or_path = "nova-lite-2/prod"
[bedrock]
base_model = "amazon.nova-2-lite-v1:0:256k"
custom_model_name = "math-rft"
"#;

fn requests(plan: &Plan, out: &mut Vec<Request>) {
    for s in &plan.steps {
        match s {
            Step::Call(r) => out.push(r.clone()),
            Step::UpsertFunction { get, create, update_code, update_config } => {
                out.extend([get.clone(), create.clone(), update_code.clone(), update_config.clone()])
            }
            Step::WaitFunctionActive { get_config, .. } => out.push(get_config.clone()),
            _ => {}
        }
    }
}

#[test]
fn the_launchers_calls_sign_as_botocore_signs_them() {
    use rft_launch::job;
    let spec = rft_launch::spec::Spec::from_toml(SPEC).unwrap();
    spec.validate().unwrap();
    let arn = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-2-lite-v1:0:256k/abc123";
    let mut reqs = Vec::new();
    for plan in [
        job::bedrock::status(arn),
        job::bedrock::stop(arn),
        job::bedrock::status("rft-math-001"),
        job::bedrock::plan(&spec).unwrap(),
        job::smtj::plan(&spec).unwrap(),
        job::smtj::status("rft-math-001"),
        job::smtj::stop("rft-math-001"),
        job::bridge::plan_with_package(&spec, Some("tok".into()), Arc::new(b"PK\x03\x04zip".to_vec())).unwrap(),
    ] {
        requests(&plan, &mut reqs);
    }
    let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let mut items = Vec::new();
    let mut ours = Vec::new();
    for token in [None, Some("session-token-example")] {
        for r in &reqs {
            let base = r.service.endpoint("us-east-1");
            let (url, headers, body, signed) = signed_request(r, &base, "us-east-1", &creds(token), t).unwrap();
            // botocore adds x-amz-date (and the token, content sha256) itself, and the host from the URL.
            let sent: Vec<(String, String)> = headers.iter().filter(|(k, _)| k != "host").cloned().collect();
            use base64::Engine;
            items.push(json!({
                "service": r.service.signing_name(), "region": "us-east-1", "method": r.method, "url": url.as_str(),
                "headers": sent, "body_b64": base64::engine::general_purpose::STANDARD.encode(&body), "token": token,
            }));
            ours.push((r.operation, url.to_string(), signed.iter().find(|(k, _)| k == "authorization").unwrap().1.clone()));
        }
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/botocore_sign.py");
    let theirs: Vec<Value> = serde_json::from_str(&common::python(&script, &[], &Value::Array(items).to_string())).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((op, url, auth), b) in ours.iter().zip(&theirs) {
        assert_eq!(auth, b["authorization"].as_str().unwrap(), "{op} {url}: botocore signed\n{}", b["canonical_request"].as_str().unwrap());
    }
    assert!(ours.iter().any(|(_, url, _)| url.contains("arn%3Aaws%3Abedrock")), "a Bedrock ARN in a path was signed");
    eprintln!("botocore: {} launcher requests signed alike", ours.len());
}
