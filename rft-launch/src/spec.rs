//! The job spec file (TOML) and its validation.
//!
//! Every value is checked before any AWS call: [`Spec::validate`] runs when the spec loads, and
//! each kind of job checks the sections it needs ([`Spec::require_job`], ...). Errors name the
//! field as written in the file and the allowed range, e.g.
//! `recipe.global_batch_size = 8 is out of range: allowed 16..=512`.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The Lambda payload limit, each way (synchronous invocation): 6 MB.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// The longest a Lambda may run: 900 s.
pub const MAX_LAMBDA_TIMEOUT_S: u32 = 900;
/// What a reward Lambda's name must contain for a HyperPod job to call it. This is not a Lambda
/// or SageMaker API rule: HyperPod's restricted instance groups run under a role that may invoke
/// only functions matching `arn:aws:lambda:*:*:function:*SageMaker*`, and IAM compares ARNs case
/// sensitively, so exactly this spelling. SMTJ and Bedrock jobs call the Lambda with the role
/// you give them, so the launcher checks it for `job hyperpod` only.
pub const BRIDGE_NAME_MARKER: &str = "SageMaker";
/// The longest Lambda `Description`: 256 characters.
pub const MAX_LAMBDA_DESCRIPTION: usize = 256;

/// A field that failed validation: its path in the spec file and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}{message}")]
pub struct SpecError {
    /// The field as written in the spec, e.g. `recipe.global_batch_size`.
    pub field: String,
    /// What is wrong, starting with the separator (` = 8 is out of range: allowed 16..=512`).
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Display) -> Self {
        SpecError { field: field.into(), message: format!(": {message}") }
    }
}

type Result<T, E = SpecError> = std::result::Result<T, E>;

fn range<T: PartialOrd + Display + Copy>(field: &str, v: T, lo: T, hi: T) -> Result<()> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(SpecError { field: field.into(), message: format!(" = {v} is out of range: allowed {lo}..={hi}") })
    }
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(SpecError { field: field.into(), message: format!(" = {v:?} is not allowed: one of {}", allowed.join(" | ")) })
    }
}

fn s3_uri(field: &str, v: &str) -> Result<()> {
    match v.strip_prefix("s3://") {
        Some(rest) if rest.split('/').next().is_some_and(|b| (3..=63).contains(&b.len())) => Ok(()),
        _ => Err(SpecError { field: field.into(), message: format!(" = {v:?} is not an S3 URI: expected s3://BUCKET/KEY") }),
    }
}

fn arn(field: &str, v: &str, service: &str) -> Result<()> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == service && !parts[5].is_empty() {
        Ok(())
    } else {
        Err(SpecError {
            field: field.into(),
            message: format!(" = {v:?} is not an ARN of {service}: expected arn:PARTITION:{service}:REGION:ACCOUNT:..."),
        })
    }
}

/// SageMaker and Bedrock job names: 1 to 63 characters, `[a-zA-Z0-9](-*[a-zA-Z0-9])*`.
fn job_name(field: &str, v: &str) -> Result<()> {
    let ok =
        (1..=63).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !v.starts_with('-') && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(SpecError {
            field: field.into(),
            message: format!(" = {v:?} is not a valid job name: 1 to 63 of [a-zA-Z0-9-], starting and ending alphanumeric"),
        })
    }
}

/// Bedrock's `customModelName`: `([0-9a-zA-Z][_-]?){1,63}`, at most 63 characters.
fn custom_model_name(field: &str, v: &str) -> Result<()> {
    let b = v.as_bytes();
    let ok = (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        && !b.windows(2).any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SpecError {
            field: field.into(),
            message: format!(
                " = {v:?} is not a valid custom model name: 1 to 63 of [a-zA-Z0-9_-], starting alphanumeric, no two of _ - in a row"
            ),
        })
    }
}

/// A parsed job spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Account, region and endpoint.
    pub aws: AwsSpec,
    /// The reward server the bridge forwards to.
    pub server: Option<ServerSpec>,
    /// The bridge Lambda.
    pub bridge: Option<BridgeSpec>,
    /// What every training job needs: name, role, data.
    pub job: Option<JobSpec>,
    /// The Nova RFT recipe (SageMaker Training Jobs and HyperPod).
    pub recipe: Option<Recipe>,
    /// SageMaker Training Job settings.
    pub smtj: Option<SmtjSpec>,
    /// SageMaker HyperPod settings.
    pub hyperpod: Option<HyperpodSpec>,
    /// Bedrock model customization settings.
    pub bedrock: Option<BedrockSpec>,
}

/// `[aws]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSpec {
    /// e.g. `us-east-1`. Falls back to `AWS_REGION` / `AWS_DEFAULT_REGION` when absent.
    pub region: Option<String>,
    /// The 12-digit account id; with `bridge.function_name` it gives the bridge's ARN.
    pub account_id: Option<String>,
    /// Sends every call to this endpoint instead of AWS (a local emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// The partition, `aws` unless in China or GovCloud.
    #[serde(default = "default_partition")]
    pub partition: String,
}

fn default_partition() -> String {
    "aws".into()
}

/// `[server]`: where the bridge sends the batches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// `http(s)://HOST[:PORT]` (the Lambda-JSON door) or `grpc(s)://HOST:PORT` (gRPC).
    pub url: String,
    /// The reward to score with.
    pub reward: String,
    /// The bearer token, inline (prefer `token_env`).
    pub token: Option<String>,
    /// An environment variable of the launcher holding the token.
    pub token_env: Option<String>,
    /// What a batch the server could not score answers: `zero` (0 with `reward_error` = 1),
    /// `abstain` (the same: the Lambda contract has no "no score") or `fail` (the invocation fails).
    #[serde(default = "default_on_error")]
    pub on_error: String,
    /// Time kept back from the Lambda's remaining time to answer after a slow server, in ms.
    #[serde(default = "default_margin")]
    pub deadline_margin_ms: u64,
}

fn default_on_error() -> String {
    "zero".into()
}
fn default_margin() -> u64 {
    crate::bridge::DEFAULT_DEADLINE_MARGIN.as_millis() as u64
}

impl ServerSpec {
    /// The token, read from `token` or the variable `token_env` names.
    pub fn resolve_token(&self) -> Result<Option<String>> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        match &self.token_env {
            Some(var) => std::env::var(var)
                .map(Some)
                .map_err(|_| SpecError::new("server.token_env", format!("environment variable {var} is not set"))),
            None => Ok(None),
        }
    }
}

/// `[bridge]`: the Lambda function.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// Must contain `SageMaker` (HyperPod refuses other functions).
    pub function_name: String,
    /// The execution role (needs VPC access when `subnet_ids` are set).
    pub role_arn: String,
    /// The bridge binary (`bootstrap`), built for the Lambda's architecture.
    pub binary: PathBuf,
    /// `x86_64` or `arm64`.
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// Seconds, 1..=900.
    #[serde(default = "default_timeout")]
    pub timeout_s: u32,
    /// MiB, 128..=10240.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Subnets that reach the server's internal load balancer.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Security groups allowed into the load balancer.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// How long to wait for the function to become active, in seconds.
    #[serde(default = "default_wait")]
    pub wait_s: u64,
}

fn default_arch() -> String {
    "x86_64".into()
}
fn default_timeout() -> u32 {
    300
}
fn default_memory() -> u32 {
    512
}
fn default_wait() -> u64 {
    300
}

/// `[job]`: common to every kind of training job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The job's name.
    pub name: String,
    /// The role the job runs as.
    pub role_arn: Option<String>,
    /// Training data, JSONL on S3.
    pub train_data: String,
    /// Validation data, JSONL on S3.
    pub validation_data: Option<String>,
    /// Where the job writes its output.
    pub output_path: String,
    /// The reward Lambda; defaults to the bridge's ARN (needs `aws.account_id`).
    pub reward_lambda_arn: Option<String>,
}

/// `[recipe]`: values for the published Nova RFT recipe, flat. Each is optional: a value not set
/// keeps the recipe's own default, and a value the chosen recipe has no key for is refused (see
/// [`crate::recipes`]). Ranges that `nova_recipe_template_parameters.json` publishes for the
/// chosen recipe are checked when the job is planned; the ranges below are the launcher's own
/// sanity checks for values that file does not cover.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// `run.model_type`, e.g. `amazon.nova-2-lite-v1:0:256k`.
    pub model_type: Option<String>,
    /// `run.model_name_or_path`: a base model (`nova-lite-2/prod`) or an S3 checkpoint.
    pub model_name_or_path: String,
    /// `run.replicas` (HyperPod; on SMTJ it is `smtj.instance_count`).
    pub replicas: Option<i64>,
    /// `training_config.max_length` (prompt + answer tokens).
    pub max_length: Option<i64>,
    /// `training_config.global_batch_size` (prompts per step).
    pub global_batch_size: Option<i64>,
    /// `training_config.reasoning_effort`: `low`, `high`, or `none` (YAML null: no reasoning),
    /// as the recipes document; Bedrock's `medium` does not exist for these recipes.
    pub reasoning_effort: Option<String>,
    /// `training_config.rollout.advantage_strategy.number_generation`.
    pub number_generation: Option<i64>,
    /// `training_config.rollout.generator.max_new_tokens`, 1..=32768, below `max_length`.
    pub max_new_tokens: Option<i64>,
    /// `training_config.rollout.generator.temperature`, 0..=2.
    pub temperature: Option<f64>,
    /// `training_config.rollout.generator.top_k`, 0..=1000 (0: off).
    pub top_k: Option<i64>,
    /// `training_config.rollout.rewards.api_endpoint.lambda_concurrency_limit`, 1..=1000.
    pub lambda_concurrency_limit: Option<i64>,
    /// `training_config.trainer.max_steps`.
    pub max_steps: Option<i64>,
    /// `training_config.trainer.save_steps` (0: only at the end; default: `max_steps`).
    pub save_steps: Option<i64>,
    /// `training_config.trainer.optim_config.lr`.
    pub learning_rate: Option<f64>,
    /// `training_config.trainer.optim_config.weight_decay`, 0..=1.
    pub weight_decay: Option<f64>,
    /// `training_config.trainer.ent_coeff`, 0..=1.
    pub ent_coeff: Option<f64>,
    /// `training_config.trainer.clip_ratio_high`, 0..=1 (HyperPod recipes only).
    pub clip_ratio_high: Option<f64>,
    /// `training_config.trainer.kl_loss_coef`, 0..=1 (SMTJ recipes only).
    pub kl_loss_coef: Option<f64>,
    /// `lora` or `none` (full rank). It selects the SMTJ recipe, and must match the HyperPod
    /// recipe chosen (PEFT is the recipe's variant, not a key to override).
    pub peft: Option<String>,
    /// `training_config.trainer.peft.lora_tuning.alpha` (LoRA recipes only).
    pub lora_alpha: Option<i64>,
    /// The LoRA+ learning-rate ratio: `...lora_tuning.loraplus_lr_ratio` (HyperPod) or
    /// `...lora_tuning.lora_plus_lr_ratio` (SMTJ) (LoRA recipes only).
    pub lora_plus_lr_ratio: Option<f64>,
}

fn opt_range<T: PartialOrd + Display + Copy>(field: &str, v: Option<T>, lo: T, hi: T) -> Result<()> {
    v.map_or(Ok(()), |v| range(field, v, lo, hi))
}

impl Recipe {
    /// The checks that hold whatever the recipe; [`crate::job::check_recipe`] checks the
    /// chosen recipe's published ranges.
    pub fn validate(&self) -> Result<()> {
        if self.model_type.as_deref() == Some("") {
            return Err(SpecError::new("recipe.model_type", "must not be empty"));
        }
        if self.model_name_or_path.starts_with("s3://") {
            s3_uri("recipe.model_name_or_path", &self.model_name_or_path)?;
        } else if self.model_name_or_path.is_empty() {
            return Err(SpecError::new("recipe.model_name_or_path", "must not be empty"));
        }
        if let Some(e) = &self.reasoning_effort {
            one_of("recipe.reasoning_effort", e, &["low", "high", "none"])?;
        }
        opt_range("recipe.max_new_tokens", self.max_new_tokens, 1, 32768)?;
        if let (Some(n), Some(l)) = (self.max_new_tokens, self.max_length)
            && n >= l
        {
            return Err(SpecError::new("recipe.max_new_tokens", format!("= {n} must be below recipe.max_length = {l}")));
        }
        opt_range("recipe.temperature", self.temperature, 0.0, 2.0)?;
        opt_range("recipe.top_k", self.top_k, 0, 1000)?;
        opt_range("recipe.lambda_concurrency_limit", self.lambda_concurrency_limit, 1, 1000)?;
        opt_range("recipe.weight_decay", self.weight_decay, 0.0, 1.0)?;
        opt_range("recipe.ent_coeff", self.ent_coeff, 0.0, 1.0)?;
        opt_range("recipe.clip_ratio_high", self.clip_ratio_high, 0.0, 1.0)?;
        opt_range("recipe.kl_loss_coef", self.kl_loss_coef, 0.0, 1.0)?;
        if let Some(p) = &self.peft {
            one_of("recipe.peft", p, &["lora", "none"])?;
        }
        Ok(())
    }
}

/// `[smtj]`: SageMaker Training Job resources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtjSpec {
    /// e.g. `ml.p5.48xlarge`.
    #[serde(default = "d_instance")]
    pub instance_type: String,
    /// `ResourceConfig.InstanceCount` and the recipe's `run.replicas` (one value: the job runs
    /// one replica per instance); default the recipe's `run.replicas` (4), or `recipe.replicas`.
    pub instance_count: Option<i64>,
    /// The published SMTJ recipe to start from, by name
    /// (`nova_lite_v2_smtj_p5_p5en_gpu_lora_rft` or `nova_lite_v2_smtj_p5_p5en_gpu_rft`);
    /// default: the LoRA one, or the full-rank one with `recipe.peft = "none"`.
    pub recipe: Option<String>,
    /// A `nova_regional_parameters.json` (from a newer release of the recipes repository) to
    /// read the image from instead of the launcher's copy of the published one.
    pub regional_parameters: Option<PathBuf>,
    /// The Nova RFT training image; defaults to the published one of the region (see [`crate::recipes::smtj_image`]).
    pub image_uri: Option<String>,
    /// Where the resolved recipe is uploaded; defaults to `<job.output_path>/<job.name>/recipe/`.
    pub recipe_s3_prefix: Option<String>,
    /// 3600..=2419200 (28 days).
    #[serde(default = "d_max_run")]
    pub max_run_s: u32,
    /// 1..=16384.
    #[serde(default = "d_volume")]
    pub volume_gb: u32,
}

fn d_instance() -> String {
    "ml.p5.48xlarge".into()
}
fn d_max_run() -> u32 {
    86400
}
fn d_volume() -> u32 {
    200
}

/// `[hyperpod]`: the `hyperpod start-job` invocation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperpodSpec {
    /// The recipe's path in the HyperPod recipes repository, without `.yaml`.
    pub recipe: String,
    /// e.g. `ml.p5.48xlarge`.
    #[serde(default = "d_instance")]
    pub instance_type: String,
    /// The training container, when the recipe's default is not wanted.
    pub container: Option<String>,
    /// The Kubernetes namespace: the CLI's `--namespace` on `start-job`, `get-job` and
    /// `cancel-job` (the CLI's default when absent).
    pub namespace: Option<String>,
    /// The HyperPod CLI program.
    #[serde(default = "d_cli")]
    pub cli: String,
}

fn d_cli() -> String {
    "hyperpod".into()
}

/// `[bedrock]`: CreateModelCustomizationJob settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockSpec {
    /// e.g. `amazon.nova-2-lite-v1:0:256k`.
    pub base_model: String,
    /// The name of the model the job creates.
    pub custom_model_name: String,
    /// RFT hyperparameters; each one not given takes its default.
    #[serde(default)]
    pub hyperparameters: BedrockHyperparameters,
    /// Subnets for the job's VPC access, optional.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Security groups for the job's VPC access, optional.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

/// `[bedrock.hyperparameters]`, with their documented ranges; a partial table takes the
/// default of each field it leaves out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BedrockHyperparameters {
    /// 16..=512.
    pub batch_size: u32,
    /// 1..=50.
    pub epoch_count: u32,
    /// 1e-7..=1e-3.
    pub learning_rate: f64,
    /// 2..=16.
    pub training_sample_per_prompt: u32,
    /// 1..=100.
    pub eval_interval: u32,
    /// `low`, `medium` or `high`.
    pub reasoning_effort: String,
    /// Optional: the longest answer generated, in tokens.
    pub inference_max_tokens: Option<u32>,
    /// Optional: the longest prompt, in tokens.
    pub max_prompt_length: Option<u32>,
}

impl Default for BedrockHyperparameters {
    fn default() -> Self {
        BedrockHyperparameters {
            batch_size: 64,
            epoch_count: 2,
            learning_rate: 7e-7,
            training_sample_per_prompt: 8,
            eval_interval: 10,
            reasoning_effort: "high".into(),
            inference_max_tokens: None,
            max_prompt_length: None,
        }
    }
}

impl BedrockHyperparameters {
    /// Checks each value against its documented range.
    pub fn validate(&self) -> Result<()> {
        let f = |n: &str| format!("bedrock.hyperparameters.{n}");
        range(&f("batch_size"), self.batch_size, 16, 512)?;
        range(&f("epoch_count"), self.epoch_count, 1, 50)?;
        range(&f("learning_rate"), self.learning_rate, 1e-7, 1e-3)?;
        range(&f("training_sample_per_prompt"), self.training_sample_per_prompt, 2, 16)?;
        range(&f("eval_interval"), self.eval_interval, 1, 100)?;
        one_of(&f("reasoning_effort"), &self.reasoning_effort, &["low", "medium", "high"])?;
        if let Some(v) = self.inference_max_tokens {
            range(&f("inference_max_tokens"), v, 1, 32768)?;
        }
        if let Some(v) = self.max_prompt_length {
            range(&f("max_prompt_length"), v, 1, 32768)?;
        }
        Ok(())
    }
}

/// A spec file that could not be read or parsed, or that failed validation.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Unreadable file.
    #[error("reading spec {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or an unknown or mistyped key.
    #[error("parsing spec {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why (with the line and column).
        source: toml::de::Error,
    },
    /// A value out of its range.
    #[error("invalid spec {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// The field and its range.
        source: SpecError,
    },
}

impl Spec {
    /// Reads, parses and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: shown.clone(), source })?;
        let spec = Spec::from_toml(&text).map_err(|source| LoadError::Parse { path: shown.clone(), source })?;
        spec.validate().map_err(|source| LoadError::Invalid { path: shown, source })?;
        Ok(spec)
    }

    /// Parses a spec without validating it.
    pub fn from_toml(text: &str) -> Result<Spec, toml::de::Error> {
        toml::from_str(text)
    }

    /// The region: `aws.region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn region(&self) -> Result<String> {
        self.aws
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| SpecError::new("aws.region", "not set (nor AWS_REGION / AWS_DEFAULT_REGION)"))
    }

    /// Checks every section present.
    pub fn validate(&self) -> Result<()> {
        let region = self.region()?;
        if !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(SpecError::new("aws.region", format!("{region:?} is not a region name")));
        }
        if let Some(a) = &self.aws.account_id
            && (a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(SpecError::new("aws.account_id", format!("{a:?} is not a 12-digit account id")));
        }
        if let Some(s) = &self.server {
            let scheme = s.url.split("://").next().unwrap_or("");
            if !s.url.contains("://") || !["http", "https", "grpc", "grpcs"].contains(&scheme) {
                return Err(SpecError::new("server.url", format!("{:?} must start with http://, https://, grpc:// or grpcs://", s.url)));
            }
            if s.url.split("://").nth(1).and_then(|rest| rest.split('/').next()).is_some_and(|auth| auth.contains('@')) {
                return Err(SpecError::new("server.url", "must not hold credentials (user:password@): give the token with token_env"));
            }
            if s.reward.is_empty() {
                return Err(SpecError::new("server.reward", "must not be empty"));
            }
            one_of("server.on_error", &s.on_error, &["zero", "abstain", "fail"])?;
            range("server.deadline_margin_ms", s.deadline_margin_ms, 100, 60_000)?;
        }
        if let Some(b) = &self.bridge {
            let name_ok = (1..=64).contains(&b.function_name.len())
                && b.function_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                return Err(SpecError::new("bridge.function_name", "1 to 64 of [a-zA-Z0-9-_]"));
            }
            arn("bridge.role_arn", &b.role_arn, "iam")?;
            one_of("bridge.architecture", &b.architecture, &["x86_64", "arm64"])?;
            range("bridge.timeout_s", b.timeout_s, 1, MAX_LAMBDA_TIMEOUT_S)?;
            range("bridge.memory_mib", b.memory_mib, 128, 10240)?;
            range("bridge.wait_s", b.wait_s, 1, 3600)?;
            if b.subnet_ids.is_empty() != b.security_group_ids.is_empty() {
                return Err(SpecError::new("bridge.security_group_ids", "subnet_ids and security_group_ids go together (both or neither)"));
            }
            if let Some(s) = &self.server {
                let margin_s = s.deadline_margin_ms.div_ceil(1000) as u32;
                if margin_s >= b.timeout_s {
                    return Err(SpecError::new(
                        "server.deadline_margin_ms",
                        format!("= {} must be shorter than bridge.timeout_s = {}", s.deadline_margin_ms, b.timeout_s),
                    ));
                }
            }
        }
        if let Some(j) = &self.job {
            job_name("job.name", &j.name)?;
            if let Some(r) = &j.role_arn {
                arn("job.role_arn", r, "iam")?;
            }
            s3_uri("job.train_data", &j.train_data)?;
            if let Some(v) = &j.validation_data {
                s3_uri("job.validation_data", v)?;
            }
            s3_uri("job.output_path", &j.output_path)?;
            if let Some(a) = &j.reward_lambda_arn {
                arn("job.reward_lambda_arn", a, "lambda")?;
            }
        }
        if let Some(r) = &self.recipe {
            r.validate()?;
        }
        if let Some(s) = &self.smtj {
            opt_range("smtj.instance_count", s.instance_count, 1, 64)?;
            if !s.instance_type.starts_with("ml.") {
                return Err(SpecError::new("smtj.instance_type", format!("{:?} must be an ml.* instance type", s.instance_type)));
            }
            range("smtj.max_run_s", s.max_run_s, 3600, 2_419_200)?;
            range("smtj.volume_gb", s.volume_gb, 1, 16384)?;
            if let Some(p) = &s.recipe_s3_prefix {
                s3_uri("smtj.recipe_s3_prefix", p)?;
            }
        }
        if let Some(h) = &self.hyperpod {
            if h.recipe.is_empty() || h.recipe.ends_with(".yaml") {
                return Err(SpecError::new("hyperpod.recipe", "the recipe's path in the recipes repository, without .yaml"));
            }
            if !h.instance_type.starts_with("ml.") {
                return Err(SpecError::new("hyperpod.instance_type", format!("{:?} must be an ml.* instance type", h.instance_type)));
            }
        }
        if let Some(b) = &self.bedrock {
            if b.base_model.is_empty() {
                return Err(SpecError::new("bedrock.base_model", "must not be empty"));
            }
            custom_model_name("bedrock.custom_model_name", &b.custom_model_name)?;
            b.hyperparameters.validate()?;
            if b.subnet_ids.is_empty() != b.security_group_ids.is_empty() {
                return Err(SpecError::new(
                    "bedrock.security_group_ids",
                    "subnet_ids and security_group_ids go together (both or neither)",
                ));
            }
        }
        Ok(())
    }

    /// `[job]`, or an error naming it.
    pub fn require_job(&self) -> Result<&JobSpec> {
        self.job.as_ref().ok_or_else(|| SpecError::new("job", "section missing"))
    }

    /// `[recipe]`, or an error naming it.
    pub fn require_recipe(&self) -> Result<&Recipe> {
        self.recipe.as_ref().ok_or_else(|| SpecError::new("recipe", "section missing"))
    }

    /// `[server]`, or an error naming it.
    pub fn require_server(&self) -> Result<&ServerSpec> {
        self.server.as_ref().ok_or_else(|| SpecError::new("server", "section missing"))
    }

    /// `[bridge]`, or an error naming it.
    pub fn require_bridge(&self) -> Result<&BridgeSpec> {
        self.bridge.as_ref().ok_or_else(|| SpecError::new("bridge", "section missing"))
    }

    /// `job.role_arn`, required by SageMaker and Bedrock jobs.
    pub fn require_role(&self) -> Result<&str> {
        self.require_job()?.role_arn.as_deref().ok_or_else(|| SpecError::new("job.role_arn", "required for this job kind"))
    }

    /// The reward Lambda's ARN: `job.reward_lambda_arn`, else the bridge's
    /// (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`, needs `aws.account_id`).
    pub fn reward_lambda_arn(&self) -> Result<String> {
        let job = self.require_job()?;
        if let Some(a) = &job.reward_lambda_arn {
            return Ok(a.clone());
        }
        match (&self.bridge, &self.aws.account_id) {
            (Some(b), Some(account)) => {
                Ok(format!("arn:{}:lambda:{}:{account}:function:{}", self.aws.partition, self.region()?, b.function_name))
            }
            _ => Err(SpecError::new(
                "job.reward_lambda_arn",
                "not set, and cannot be derived (needs [bridge].function_name and aws.account_id)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [aws]
        region = "us-east-1"
        account_id = "123456789012"
        [job]
        name = "rft-1"
        role_arn = "arn:aws:iam::123456789012:role/r"
        train_data = "s3://bucket/train.jsonl"
        output_path = "s3://bucket/out/"
        [recipe]
        model_type = "amazon.nova-2-lite-v1:0:256k"
        model_name_or_path = "nova-lite-2/prod"
    "#;

    fn check(extra: &str) -> Result<()> {
        Spec::from_toml(&format!("{BASE}\n{extra}")).unwrap().validate()
    }

    #[test]
    fn base_is_valid() {
        check("").unwrap();
    }

    #[test]
    fn out_of_range_names_field_and_range() {
        let text = BASE.replace("model_type", "temperature = 3.0\nmodel_type");
        let err = Spec::from_toml(&text).unwrap().validate().unwrap_err();
        assert_eq!(err.to_string(), "recipe.temperature = 3 is out of range: allowed 0..=2");
    }

    #[test]
    fn reasoning_effort_of_the_recipes_is_low_high_or_none() {
        for ok in ["low", "high", "none"] {
            Spec::from_toml(&BASE.replace("model_type", &format!("reasoning_effort = \"{ok}\"\nmodel_type"))).unwrap().validate().unwrap();
        }
        let err =
            Spec::from_toml(&BASE.replace("model_type", "reasoning_effort = \"medium\"\nmodel_type")).unwrap().validate().unwrap_err();
        assert_eq!(err.to_string(), "recipe.reasoning_effort = \"medium\" is not allowed: one of low | high | none");
    }

    #[test]
    fn a_partial_hyperparameters_table_takes_per_field_defaults() {
        let spec = Spec::from_toml(&format!(
            "{BASE}\n[bedrock]\nbase_model = \"m\"\ncustom_model_name = \"c\"\n[bedrock.hyperparameters]\nepoch_count = 3"
        ))
        .unwrap();
        spec.validate().unwrap();
        let h = &spec.bedrock.unwrap().hyperparameters;
        let d = BedrockHyperparameters::default();
        assert_eq!((h.epoch_count, h.batch_size, h.reasoning_effort.as_str()), (3, d.batch_size, d.reasoning_effort.as_str()));
    }

    #[test]
    fn custom_model_name_pattern() {
        for ok in ["math-rft", "math_rft_2", "a", "m-", &"a".repeat(63)] {
            custom_model_name("f", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "-math", "_m", "math--rft", "math_-rft", "math.rft", "math rft", &"a".repeat(64)] {
            assert!(custom_model_name("f", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_url_must_not_hold_credentials() {
        let err = check("[server]\nurl = \"https://user:pw@reward.example\"\nreward = \"math\"").unwrap_err();
        assert_eq!(err.field, "server.url");
    }

    #[test]
    fn bedrock_ranges() {
        let bedrock =
            |hp: &str| check(&format!("[bedrock]\nbase_model = \"m\"\ncustom_model_name = \"c\"\n[bedrock.hyperparameters]\n{hp}"));
        let full = "batch_size = 16\nepoch_count = 1\nlearning_rate = 1e-7\ntraining_sample_per_prompt = 2\neval_interval = 1\nreasoning_effort = \"low\"";
        bedrock(full).unwrap();
        for (from, to, field) in [
            ("batch_size = 16", "batch_size = 513", "batch_size = 513 is out of range: allowed 16..=512"),
            ("epoch_count = 1", "epoch_count = 51", "epoch_count = 51 is out of range: allowed 1..=50"),
            ("learning_rate = 1e-7", "learning_rate = 0.01", "learning_rate = 0.01 is out of range: allowed 0.0000001..=0.001"),
            (
                "training_sample_per_prompt = 2",
                "training_sample_per_prompt = 1",
                "training_sample_per_prompt = 1 is out of range: allowed 2..=16",
            ),
            ("eval_interval = 1", "eval_interval = 0", "eval_interval = 0 is out of range: allowed 1..=100"),
            ("\"low\"", "\"extreme\"", "reasoning_effort = \"extreme\" is not allowed: one of low | medium | high"),
        ] {
            let err = bedrock(&full.replace(from, to)).unwrap_err();
            assert_eq!(err.to_string(), format!("bedrock.hyperparameters.{field}"));
        }
    }

    #[test]
    fn bridge_name_without_sagemaker_loads() {
        // The rule is HyperPod's (see BRIDGE_NAME_MARKER); `job hyperpod` checks it.
        check("[bridge]\nfunction_name = \"reward-bridge\"\nrole_arn = \"arn:aws:iam::123456789012:role/l\"\nbinary = \"bootstrap\"")
            .unwrap();
    }

    #[test]
    fn cross_field_checks() {
        let err =
            Spec::from_toml(&BASE.replace("model_type", "max_new_tokens = 20000\nmax_length = 16384\nmodel_type")).unwrap().validate();
        assert_eq!(err.unwrap_err().field, "recipe.max_new_tokens");
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = Spec::from_toml(&format!("{BASE}\nglobal_batch = 3")).unwrap_err();
        assert!(err.to_string().contains("global_batch"), "{err}");
    }

    #[test]
    fn derived_lambda_arn() {
        let spec = Spec::from_toml(&format!(
            "{BASE}\n[bridge]\nfunction_name = \"SageMaker-reward\"\nrole_arn = \"arn:aws:iam::123456789012:role/l\"\nbinary = \"b\""
        ))
        .unwrap();
        assert_eq!(spec.reward_lambda_arn().unwrap(), "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward");
    }
}
