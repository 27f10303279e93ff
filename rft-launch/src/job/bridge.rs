//! `bridge deploy`: package the bridge (a zip holding `bootstrap`), create or update the Lambda
//! (runtime `provided.al2023`), its VPC access to the server's internal load balancer, timeout,
//! memory and environment (server URL, reward, token, failure policy), then wait until active.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::bridge::{ENV_DEADLINE_MARGIN_MS, ENV_ON_ERROR, ENV_REWARD, ENV_SERVER_URL, ENV_TOKEN};
use crate::plan::{Plan, Request, Service, Step, ZIP_PLACEHOLDER, encode_segment};
use crate::spec::Spec;

/// A deployment package: a zip with one executable entry, `bootstrap` (mode 755).
pub fn package(binary: &[u8]) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default());
    zip.start_file("bootstrap", options)?;
    zip.write_all(binary)?;
    zip.finish()?;
    Ok(out.into_inner())
}

/// The Lambda's configuration (shared by CreateFunction and UpdateFunctionConfiguration).
fn configuration(spec: &Spec, token: Option<&str>) -> Result<Value> {
    let b = spec.require_bridge()?;
    let s = spec.require_server()?;
    let mut vars = serde_json::Map::new();
    vars.insert(ENV_SERVER_URL.into(), json!(s.url));
    vars.insert(ENV_REWARD.into(), json!(s.reward));
    vars.insert(ENV_ON_ERROR.into(), json!(s.on_error));
    vars.insert(ENV_DEADLINE_MARGIN_MS.into(), json!(s.deadline_margin_ms.to_string()));
    if let Some(t) = token {
        vars.insert(ENV_TOKEN.into(), json!(t));
    }
    Ok(json!({
        "Role": b.role_arn,
        "Handler": "bootstrap",
        "Runtime": "provided.al2023",
        "Timeout": b.timeout_s,
        "MemorySize": b.memory_mib,
        "Description": description(&s.reward, &s.url),
        "Environment": {"Variables": Value::Object(vars)},
        "VpcConfig": {"SubnetIds": b.subnet_ids, "SecurityGroupIds": b.security_group_ids},
    }))
}

/// The function's `Description`, cut to Lambda's 256 characters.
pub fn description(reward: &str, url: &str) -> String {
    format!("Nova RFT reward bridge: reward {reward} at {url}").chars().take(crate::spec::MAX_LAMBDA_DESCRIPTION).collect()
}

/// The warning printed when the token would travel unencrypted (`http://`, `grpc://`).
pub fn plain_text_warning(spec: &Spec, has_token: bool) -> Option<String> {
    let url = &spec.server.as_ref()?.url;
    let scheme = url.split("://").next()?;
    (has_token && (scheme == "http" || scheme == "grpc")).then(|| {
        format!(
            "warning: server.url {url:?} is plain {scheme}://: the bridge will send the bearer token unencrypted; use {scheme}s:// \
             (the server's --tls-* options) unless the network path is private end to end"
        )
    })
}

/// A Lambda API answer with every value of `Environment.Variables` whose name looks secret
/// (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`) replaced by `***`: an update answers with the
/// configuration it replaced, whose token the plan does not know.
pub fn mask_environment(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x.get("Variables").and_then(Value::as_object)) {
                        ("Environment", Some(vars)) => {
                            let mut x = x.clone();
                            let masked = vars
                                .iter()
                                .map(|(name, val)| {
                                    let upper = name.to_ascii_uppercase();
                                    let secret = ["TOKEN", "SECRET", "PASSWORD"].iter().any(|w| upper.contains(w));
                                    (name.clone(), if secret { Value::String("***".into()) } else { val.clone() })
                                })
                                .collect();
                            x["Variables"] = Value::Object(masked);
                            x
                        }
                        _ => mask_environment(x),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask_environment).collect()),
        other => other.clone(),
    }
}

/// The deploy plan. Reads the binary (and the token) now, so `--dry-run` shows the package's
/// size and hash; the token itself is never printed.
pub fn plan(spec: &Spec) -> Result<Plan> {
    let b = spec.require_bridge()?;
    let token = spec.require_server()?.resolve_token()?;
    let binary = std::fs::read(&b.binary).with_context(|| format!("bridge.binary: reading {}", b.binary.display()))?;
    plan_with_package(spec, token, Arc::new(package(&binary)?))
}

/// The deploy plan for a given package.
pub fn plan_with_package(spec: &Spec, token: Option<String>, zip: Arc<Vec<u8>>) -> Result<Plan> {
    let b = spec.require_bridge()?;
    let name = encode_segment(&b.function_name);
    let config = configuration(spec, token.as_deref())?;
    let mut create_body = config.clone();
    create_body["FunctionName"] = json!(b.function_name);
    create_body["Architectures"] = json!([b.architecture]);
    create_body["PackageType"] = json!("Zip");
    create_body["Code"] = json!({"ZipFile": ZIP_PLACEHOLDER});
    let mut create = Request::rest(Service::Lambda, "CreateFunction", "POST", "/2015-03-31/functions".into(), Some(create_body));
    create.zip = Some(zip.clone());
    let mut update_code = Request::rest(
        Service::Lambda,
        "UpdateFunctionCode",
        "PUT",
        format!("/2015-03-31/functions/{name}/code"),
        Some(json!({"ZipFile": ZIP_PLACEHOLDER, "Architectures": [b.architecture], "Publish": false})),
    );
    update_code.zip = Some(zip);
    let update_config = Request::rest(
        Service::Lambda,
        "UpdateFunctionConfiguration",
        "PUT",
        format!("/2015-03-31/functions/{name}/configuration"),
        Some(config),
    );
    let get = Request::rest(Service::Lambda, "GetFunction", "GET", format!("/2015-03-31/functions/{name}"), None);
    let get_config =
        Request::rest(Service::Lambda, "GetFunctionConfiguration", "GET", format!("/2015-03-31/functions/{name}/configuration"), None);
    Ok(Plan {
        steps: vec![
            Step::UpsertFunction { get, create, update_code, update_config },
            Step::WaitFunctionActive { get_config, timeout: Duration::from_secs(b.wait_s) },
        ],
        secrets: token.into_iter().collect(),
    })
}

/// Checks that a file looks like a Linux executable before it is shipped.
pub fn check_binary(path: &Path) -> Result<()> {
    let head = std::fs::read(path).with_context(|| format!("bridge.binary: reading {}", path.display()))?;
    anyhow::ensure!(head.starts_with(b"\x7fELF"), "bridge.binary: {} is not a Linux (ELF) executable", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn environment_secrets_are_masked_and_description_is_cut() {
        let a = serde_json::json!({"Configuration": {"Environment": {"Variables": {"REWARD_SERVER_TOKEN": "old", "REWARD_NAME": "math"}}}});
        let m = super::mask_environment(&a);
        assert_eq!(m["Configuration"]["Environment"]["Variables"]["REWARD_SERVER_TOKEN"], "***");
        assert_eq!(m["Configuration"]["Environment"]["Variables"]["REWARD_NAME"], "math");
        let d = super::description("math", &format!("https://{}.example", "a".repeat(300)));
        assert_eq!(d.chars().count(), crate::spec::MAX_LAMBDA_DESCRIPTION);
    }

    #[test]
    fn package_holds_an_executable_bootstrap() {
        let zip = super::package(b"\x7fELF binary").unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
    }
}
