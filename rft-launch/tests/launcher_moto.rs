//! The `rft-launch` binary against a local AWS API server (moto in server mode) for S3, Lambda,
//! SageMaker and Bedrock. Each test checks what the emulator stored and, where it drops fields
//! (Bedrock's customizationConfig), the request bodies the launcher recorded. Invalid specs fail
//! before any call.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ChildGuard, require_tool, start_on_free_port};
use serde_json::{Value, json};

struct Moto {
    url: String,
    _proc: ChildGuard,
}

impl Moto {
    fn start() -> Moto {
        require_tool("moto_server", "pip install \"moto[server]\"");
        let (port, child) = start_on_free_port("moto_server", |port| {
            Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting moto_server")
        });
        Moto { url: format!("http://127.0.0.1:{port}"), _proc: ChildGuard::new(child) }
    }

    /// An unsigned call; moto picks the service from the credential scope of the authorization.
    async fn call(&self, service: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, String) {
        let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", self.url)).header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// A spec in `dir` with every section; `tweak` edits its text.
fn spec(dir: &Path, moto: &str, tweak: impl Fn(String) -> String) -> PathBuf {
    let text = format!(
        r#"
[aws]
region = "us-east-1"
account_id = "123456789012"
endpoint_url = "{moto}"

[server]
url = "http://internal-reward-lb.example:8080"
reward = "math"
token_env = "TEST_REWARD_TOKEN"
on_error = "zero"

[bridge]
function_name = "SageMaker-reward-bridge"
role_arn = "arn:aws:iam::123456789012:role/reward-bridge"
binary = "{binary}"
timeout_s = 900
memory_mib = 1024
subnet_ids = ["subnet-0a1b2c3d"]
security_group_ids = ["sg-0a1b2c3d"]

[job]
name = "rft-math-1"
role_arn = "arn:aws:iam::123456789012:role/sagemaker"
train_data = "s3://rft-bucket/data/train.jsonl"
validation_data = "s3://rft-bucket/data/val.jsonl"
output_path = "s3://rft-bucket/output"

[recipe]
model_type = "amazon.nova-2-lite-v1:0:256k"
model_name_or_path = "nova-lite-2/prod"
global_batch_size = 64
number_generation = 8
max_steps = 50
save_steps = 10
learning_rate = 7e-7
reasoning_effort = "high"

[smtj]
instance_type = "ml.p5.48xlarge"
instance_count = 2

[hyperpod]
recipe = "fine-tuning/nova/nova_2_0/nova_lite/RFT/nova_lite_2_0_p5_gpu_rft"
instance_type = "ml.p5.48xlarge"

[bedrock]
base_model = "amazon.nova-2-lite-v1:0:256k"
custom_model_name = "math-rft"
[bedrock.hyperparameters]
batch_size = 64
epoch_count = 2
learning_rate = 1e-5
training_sample_per_prompt = 8
eval_interval = 10
reasoning_effort = "medium"
"#,
        binary = env!("CARGO_BIN_EXE_reward-lambda-bridge"),
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, tweak(text)).unwrap();
    path
}

fn whole_output(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn launch(dir: &Path, spec: &Path, args: &[&str]) -> Output {
    launch_with(dir, spec, args, &[])
}

fn launch_with(dir: &Path, spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rft-launch"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TEST_REWARD_TOKEN", "tok-secret-123")
        .env("RFT_LAUNCH_RECORD", dir.join("sent.jsonl"))
        .envs(env.iter().copied())
        .arg("--spec")
        .arg(spec)
        .args(args)
        .output()
        .expect("running rft-launch")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "rft-launch failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn sent(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("sent.jsonl")).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ops(sent: &[Value]) -> Vec<&str> {
    sent.iter().map(|r| r["operation"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn bridge_deploy_creates_then_updates_the_function() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    // moto checks that the execution role exists.
    create_role(&moto, "reward-bridge").await;
    let spec = spec(dir.path(), &moto.url, |t| t);
    let out = launch(dir.path(), &spec, &["bridge", "deploy"]);
    let all = whole_output(&out);
    ok(&out);
    assert!(all.contains("\"FunctionName\": \"SageMaker-reward-bridge\""), "the answers are printed: {all}");
    assert!(!all.contains("tok-secret-123"), "the token is in the output:\n{all}");
    assert!(all.contains("\"REWARD_SERVER_TOKEN\": \"***\""), "{all}");
    assert!(all.contains("warning: server.url \"http://internal-reward-lb.example:8080\" is plain http://"), "{all}");
    assert_eq!(ops(&sent(dir.path())), ["GetFunction", "CreateFunction", "GetFunctionConfiguration"]);
    let create = &sent(dir.path())[1];
    assert_eq!(create["body"]["Environment"]["Variables"]["REWARD_SERVER_TOKEN"], "***", "the token is never recorded");
    assert!(create["package"]["bytes"].as_u64().unwrap() > 1000);

    let (status, body) = moto.call("lambda", "GET", "/2015-03-31/functions/SageMaker-reward-bridge", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    let c = &f["Configuration"];
    assert_eq!(c["Runtime"], "provided.al2023");
    assert_eq!(c["Handler"], "bootstrap");
    assert_eq!(c["Timeout"], 900);
    assert_eq!(c["MemorySize"], 1024);
    let vars = &c["Environment"]["Variables"];
    assert_eq!(vars["REWARD_SERVER_URL"], "http://internal-reward-lb.example:8080");
    assert_eq!(vars["REWARD_NAME"], "math");
    assert_eq!(vars["REWARD_SERVER_TOKEN"], "tok-secret-123");
    assert_eq!(vars["REWARD_ON_ERROR"], "zero");
    assert_eq!(c["VpcConfig"]["SubnetIds"], json!(["subnet-0a1b2c3d"]));
    assert_eq!(c["VpcConfig"]["SecurityGroupIds"], json!(["sg-0a1b2c3d"]));

    // Again, with a new timeout: now an update.
    let spec = self::spec(dir.path(), &moto.url, |t| t.replace("timeout_s = 900", "timeout_s = 600"));
    std::fs::remove_file(dir.path().join("sent.jsonl")).unwrap();
    // An update answers with the configuration it replaced: its token (another one) is masked too.
    let out = launch_with(dir.path(), &spec, &["bridge", "deploy"], &[("TEST_REWARD_TOKEN", "tok-rotated-456"), ("RUST_LOG", "trace")]);
    let all = whole_output(&out);
    ok(&out);
    assert!(!all.contains("tok-secret-123") && !all.contains("tok-rotated-456"), "a token is in the output:\n{all}");
    assert_eq!(
        ops(&sent(dir.path())),
        ["GetFunction", "UpdateFunctionCode", "GetFunctionConfiguration", "UpdateFunctionConfiguration", "GetFunctionConfiguration"]
    );
    let (_, body) = moto.call("lambda", "GET", "/2015-03-31/functions/SageMaker-reward-bridge/configuration", &[], None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["Timeout"], 600);
}

async fn create_role(moto: &Moto, name: &str) {
    let form = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/", moto.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .body(form)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn smtj_uploads_the_recipe_and_creates_the_training_job() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let (status, body) = moto.call("s3", "PUT", "/rft-bucket", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let spec = spec(dir.path(), &moto.url, |t| t);
    ok(&launch(dir.path(), &spec, &["job", "smtj"]));
    let sent = sent(dir.path());
    assert_eq!(ops(&sent), ["PutObject", "CreateTrainingJob"]);
    assert_eq!(sent[1]["target"], "SageMaker.CreateTrainingJob");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward-bridge";

    // The recipe on S3: both ARN fields set, values in the recipe's layout, floats as floats.
    let (status, recipe) = moto.call("s3", "GET", "/rft-bucket/output/rft-math-1/recipe/rft-math-1.yaml", &[], None).await;
    assert_eq!(status, 200, "{recipe}");
    assert!(recipe.contains(&format!("  reward_lambda_arn: \"{arn}\"\n")), "{recipe}");
    assert!(recipe.contains(&format!("        lambda_arn: \"{arn}\"\n")), "{recipe}");
    assert!(recipe.contains("  global_batch_size: 64\n"), "{recipe}");
    assert!(recipe.contains("      lr: 7.0e-7\n"), "{recipe}");
    assert!(recipe.contains("  replicas: 2\n"), "run.replicas is smtj.instance_count: {recipe}");
    assert!(recipe.contains("        lambda_concurrency_limit: 12\n"), "the SMTJ recipe's own default: {recipe}");

    // The training job as SageMaker stored it.
    let (status, body) = moto
        .call(
            "sagemaker",
            "POST",
            "/",
            &[("x-amz-target", "SageMaker.DescribeTrainingJob"), ("content-type", "application/x-amz-json-1.1")],
            Some(json!({"TrainingJobName": "rft-math-1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        job["HyperParameters"],
        json!({
            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/rft-math-1.yaml",
            "base_model": "nova-lite-2/prod",
            "reward_lambda_arn": arn,
        })
    );
    let channels: Vec<&str> = job["InputDataConfig"].as_array().unwrap().iter().map(|c| c["ChannelName"].as_str().unwrap()).collect();
    assert_eq!(channels, ["recipe", "train", "validation"]);
    assert_eq!(
        job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"],
        "s3://rft-bucket/output/rft-math-1/recipe/rft-math-1.yaml"
    );
    assert_eq!(
        job["AlgorithmSpecification"]["TrainingImage"],
        "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-RFT-V2-latest"
    );
    assert_eq!(job["ResourceConfig"]["InstanceCount"], 2);

    // status and stop go through the launcher too.
    let out = ok(&launch(dir.path(), &spec, &["job", "status", "--kind", "smtj"]));
    assert!(out.contains("\"TrainingJobName\": \"rft-math-1\""), "{out}");
    // moto 5.2 does not implement StopTrainingJob (HTTP 500): check the request instead.
    let out = ok(&launch(dir.path(), &spec, &["--dry-run", "job", "stop", "--kind", "smtj"]));
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan[0]["target"], "SageMaker.StopTrainingJob");
    assert_eq!(plan[0]["body"], json!({"TrainingJobName": "rft-math-1"}));
}

#[tokio::test]
async fn smtj_with_an_s3_checkpoint_passes_base_model_location() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "http://127.0.0.1:9", |t| t.replace("\"nova-lite-2/prod\"", "\"s3://ckpt-bucket/step-100/\""));
    let out = ok(&launch(dir.path(), &spec, &["--dry-run", "job", "smtj"]));
    let plan: Value = serde_json::from_str(&out).unwrap();
    let hp = &plan[1]["body"]["HyperParameters"];
    assert_eq!(hp["base_model_location"], "s3://ckpt-bucket/step-100/");
    assert!(hp.get("base_model").is_none());
    assert!(!dir.path().join("sent.jsonl").exists(), "a dry run sends nothing");
}

#[tokio::test]
async fn bedrock_creates_an_rft_customization_job_with_the_lambda_grader() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), &moto.url, |t| t);
    ok(&launch(dir.path(), &spec, &["job", "bedrock"]));
    let sent = sent(dir.path());
    assert_eq!(ops(&sent), ["CreateModelCustomizationJob"]);
    // moto drops customizationConfig: check the body the launcher sent.
    assert_eq!(
        sent[0]["body"],
        json!({
            "jobName": "rft-math-1",
            "customModelName": "math-rft",
            "roleArn": "arn:aws:iam::123456789012:role/sagemaker",
            "baseModelIdentifier": "amazon.nova-2-lite-v1:0:256k",
            "customizationType": "REINFORCEMENT_FINE_TUNING",
            "trainingDataConfig": {"s3Uri": "s3://rft-bucket/data/train.jsonl"},
            "validationDataConfig": {"validators": [{"s3Uri": "s3://rft-bucket/data/val.jsonl"}]},
            "outputDataConfig": {"s3Uri": "s3://rft-bucket/output"},
            "customizationConfig": {"rftConfig": {
                "graderConfig": {"lambdaGrader": {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward-bridge"}},
                "hyperParameters": {"batchSize": 64, "epochCount": 2, "learningRate": 1e-5, "trainingSamplePerPrompt": 8, "evalInterval": 10, "reasoningEffort": "medium"},
            }},
        })
    );
    // And moto stored the job.
    let out = ok(&launch(dir.path(), &spec, &["job", "status", "--kind", "bedrock"]));
    let job: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["jobName"], "rft-math-1");
    assert_eq!(job["baseModelArn"].as_str().map(|s| s.contains("nova")), Some(true), "{job}");
}

fn no_validation_data(t: String) -> String {
    t.replace("validation_data = \"s3://rft-bucket/data/val.jsonl\"\n", "")
}

#[tokio::test]
async fn hyperpod_start_job_is_printed_with_its_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "http://127.0.0.1:9", no_validation_data);
    let out = ok(&launch(dir.path(), &spec, &["--dry-run", "job", "hyperpod"]));
    let plan: Value = serde_json::from_str(&out).unwrap();
    let run = &plan[0]["run"];
    assert_eq!(run["program"], "hyperpod");
    assert_eq!(run["args"][0], "start-job");
    assert_eq!(run["args"][2], "fine-tuning/nova/nova_2_0/nova_lite/RFT/nova_lite_2_0_p5_gpu_rft");
    assert_eq!(run["args"][3], "--override-parameters");
    let o: Value = serde_json::from_str(run["args"][4].as_str().unwrap()).unwrap();
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward-bridge";
    assert_eq!(o["instance_type"], "ml.p5.48xlarge");
    assert_eq!(o["recipes.run.reward_lambda_arn"], arn);
    assert_eq!(o["recipes.training_config.rollout.rewards.api_endpoint.lambda_arn"], arn);
    assert_eq!(o["recipes.run.data_s3_path"], "s3://rft-bucket/data/train.jsonl");
    assert_eq!(o["recipes.run.output_s3_path"], "s3://rft-bucket/output");
    assert_eq!(o["recipes.training_config.global_batch_size"], 64);
    assert_eq!(o["recipes.training_config.trainer.max_steps"], 50);
    // The full-rank recipe has no peft block; values not in the spec keep the recipe's defaults.
    let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
    assert!(!keys.iter().any(|k| k.contains("peft") || k.contains("lambda_concurrency_limit") || k.contains("validation")), "{keys:?}");
    assert!(run["shell"].as_str().unwrap().starts_with("hyperpod start-job --recipe fine-tuning/nova/"), "{run}");
}

/// A stand-in `hyperpod` CLI: prints its arguments and, for start-job, what Helm prints for the
/// renamed run.
fn fake_hyperpod(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cli = bin.join("hyperpod");
    std::fs::write(
        &cli,
        "#!/bin/sh\necho \"args: $*\" >> \"$(dirname \"$0\")/calls\"\n\
         if [ \"$1\" = start-job ]; then echo 'NAME: rft-math-1-q7z2k'; echo 'NAMESPACE: rft-team'; echo 'STATUS: deployed'; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn hyperpod_takes_the_real_job_name_and_the_namespace_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_hyperpod(dir.path());
    let spec = spec(dir.path(), "http://127.0.0.1:9", |t| {
        no_validation_data(t)
            .replace("[hyperpod]\n", &format!("[hyperpod]\nnamespace = \"rft-team\"\ncli = {:?}\n", bin.join("hyperpod").to_str().unwrap()))
    });
    let out = ok(&launch(dir.path(), &spec, &["job", "hyperpod"]));
    assert!(out.contains("HyperPod job name: rft-math-1-q7z2k"), "{out}");
    // status and stop take that name (the spec's job.name does not find the job) and the namespace.
    let out = launch(dir.path(), &spec, &["job", "status", "--kind", "hyperpod"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give the HyperPod job's name as `job hyperpod` printed it"));
    ok(&launch(dir.path(), &spec, &["job", "status", "--kind", "hyperpod", "rft-math-1-q7z2k"]));
    ok(&launch(dir.path(), &spec, &["job", "stop", "--kind", "hyperpod", "rft-math-1-q7z2k"]));
    let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert!(lines[0].starts_with("args: start-job --recipe fine-tuning/nova/nova_2_0/nova_lite/RFT/nova_lite_2_0_p5_gpu_rft --namespace rft-team --override-parameters "), "{calls}");
    assert_eq!(lines[1], "args: get-job --job-name rft-math-1-q7z2k --namespace rft-team");
    assert_eq!(lines[2], "args: cancel-job --job-name rft-math-1-q7z2k --namespace rft-team");
}

#[tokio::test]
async fn invalid_specs_fail_before_any_call() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for (tweak, args, expected) in [
        (
            ("global_batch_size = 64", "global_batch_size = 8"),
            &["job", "smtj"][..],
            "recipe.global_batch_size = 8 is out of range: allowed 16..=128 (recipe nova_lite_v2_smtj_p5_p5en_gpu_lora_rft)",
        ),
        (
            ("global_batch_size = 64", "global_batch_size = 512"),
            &["job", "hyperpod"][..],
            "recipe.global_batch_size = 512 is out of range: allowed 16..=256 (recipe nova_lite_2_0_p5_gpu_rft)",
        ),
        (
            ("reasoning_effort = \"high\"", "reasoning_effort = \"medium\""),
            &["job", "smtj"][..],
            "recipe.reasoning_effort = \"medium\" is not allowed: one of low | high | none",
        ),
        (
            ("epoch_count = 2", "epoch_count = 80"),
            &["job", "bedrock"][..],
            "bedrock.hyperparameters.epoch_count = 80 is out of range: allowed 1..=50",
        ),
        (
            ("reasoning_effort = \"medium\"", "reasoning_effort = \"max\""),
            &["job", "bedrock"][..],
            "bedrock.hyperparameters.reasoning_effort = \"max\" is not allowed: one of low | medium | high",
        ),
        (("timeout_s = 900", "timeout_s = 901"), &["bridge", "deploy"][..], "bridge.timeout_s = 901 is out of range: allowed 1..=900"),
        (
            ("SageMaker-reward-bridge\"", "reward-bridge\""),
            &["job", "hyperpod"][..],
            "job.reward_lambda_arn: function \"reward-bridge\" must contain \"SageMaker\"",
        ),
        (
            ("learning_rate = 7e-7", "learning_rate = 0.1"),
            &["job", "hyperpod"][..],
            "recipe.learning_rate = 0.1 is out of range: allowed 0.00000001..=0.001 (recipe nova_lite_2_0_p5_gpu_rft)",
        ),
    ] {
        let hyperpod = args[1] == "hyperpod";
        let spec = spec(dir.path(), &moto.url, |t| {
            let t = t.replacen(tweak.0, tweak.1, 1);
            if hyperpod { no_validation_data(t) } else { t }
        });
        let out = launch(dir.path(), &spec, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!dir.path().join("sent.jsonl").exists(), "{args:?}: a request was sent");
    }
    // Nothing reached the emulator either.
    let (_, body) = moto
        .call(
            "sagemaker",
            "POST",
            "/",
            &[("x-amz-target", "SageMaker.ListTrainingJobs"), ("content-type", "application/x-amz-json-1.1")],
            Some(json!({})),
        )
        .await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["TrainingJobSummaries"], json!([]), "{body}");
    let (_, body) = moto.call("lambda", "GET", "/2015-03-31/functions", &[], None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["Functions"], json!([]), "{body}");
}

#[test]
fn snippets_point_trainers_at_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "http://127.0.0.1:9", |t| t);
    let out = ok(&launch(dir.path(), &spec, &["snippet", "openrlhf"]));
    assert!(out.contains("--remote_rm_url http://internal-reward-lb.example:8080/v1/rewards/math/get_reward"), "{out}");
    let out = ok(&launch(dir.path(), &spec, &["snippet", "verl"]));
    assert!(out.contains("def compute_score(data_source, solution_str, ground_truth, extra_info=None)"), "{out}");
    let out = ok(&launch(dir.path(), &spec, &["snippet", "trl", "--reward", "exact_answer"]));
    assert!(out.contains("\"reward\": \"exact_answer\""), "{out}");
}
