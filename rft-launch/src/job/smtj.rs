//! `job smtj`: a SageMaker Training Job from a Nova RFT recipe, as the SageMaker Python SDK
//! builds it: the resolved recipe YAML uploaded to S3 and passed as the reserved `recipe` input
//! channel, hyperparameters `sagemaker_recipe_local_path`, `base_model` (or
//! `base_model_location` for an S3 checkpoint) and `reward_lambda_arn`, the regional Nova RFT
//! image, and the `train` (and `validation`) channels.
//!
//! The recipe is the published one ([`crate::recipes::RecipeInfo::published`]) with the spec's
//! values on it, as the SDK writes it: every key of the published recipe, its defaults where the
//! spec is silent (`lambda_concurrency_limit: 12`, `kl_loss_coef`, ...). `run.replicas` and
//! `ResourceConfig.InstanceCount` are one value (`smtj.instance_count`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{check_recipe, recipe_overrides, split_s3};
use crate::plan::{Body, Plan, Request, Service, Step, encode_segment};
use crate::recipes::{Platform, RecipeInfo, smtj_image};
use crate::spec::{Spec, SpecError};

/// Where the training container finds the `recipe` channel.
pub const RECIPE_CHANNEL_DIR: &str = "/opt/ml/input/data/recipe";

fn channel(name: &str, uri: &str) -> Value {
    json!({
        "ChannelName": name,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri": uri,
            "S3DataDistributionType": "FullyReplicated",
        }},
    })
}

/// PutObject (the resolved recipe), then CreateTrainingJob.
pub fn plan(spec: &Spec) -> Result<Plan, SpecError> {
    let job = spec.require_job()?;
    let recipe = spec.require_recipe()?;
    let role = spec.require_role()?;
    let smtj = spec.smtj.clone().unwrap_or_else(|| toml::from_str("").expect("defaults"));
    let region = spec.region()?;
    let lambda_arn = spec.reward_lambda_arn()?;
    let info = choose_recipe(smtj.recipe.as_deref(), recipe.peft.as_deref())?;
    let replicas = match (smtj.instance_count, recipe.replicas) {
        (Some(a), Some(b)) if a != b => {
            return Err(SpecError {
                field: "recipe.replicas".into(),
                message: format!(
                    " = {b} differs from smtj.instance_count = {a}: on SageMaker Training Jobs they are one value (one replica per instance); set smtj.instance_count only"
                ),
            });
        }
        (a, b) => a.or(b),
    };
    check_recipe(recipe, info, None)?;
    let mut tree = info.published();
    for (key, value) in recipe_overrides(spec, info, &lambda_arn, replicas)? {
        tree.set(&key, value);
    }
    let instance_count = match tree.get("run.replicas") {
        Some(crate::yaml::Node::Int(n)) => *n,
        _ => unreachable!("the published SMTJ recipes have run.replicas"),
    };
    let image = match &smtj.image_uri {
        Some(i) => i.clone(),
        None => {
            let params = match &smtj.regional_parameters {
                Some(p) => Some(read_json(p)?),
                None => None,
            };
            smtj_image(info, &region, params.as_ref()).ok_or_else(|| SpecError {
                field: "smtj.image_uri".into(),
                message: format!(
                    ": required in {region}: recipe {} has no published SageMaker Training Jobs image there{}",
                    info.name,
                    if params.is_none() {
                        format!(
                            " (published: {})",
                            crate::recipes::SMTJ_IMAGE_ACCOUNTS.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
                        )
                    } else {
                        String::new()
                    }
                ),
            })?
        }
    };
    let yaml = format!("# Resolved by rft-launch for job {} from recipe {}\n{}", job.name, info.name, tree.to_yaml());
    let file = format!("{}.yaml", job.name);
    let prefix = smtj.recipe_s3_prefix.clone().unwrap_or_else(|| format!("{}/{}/recipe/", job.output_path.trim_end_matches('/'), job.name));
    let prefix = if prefix.ends_with('/') { prefix } else { format!("{prefix}/") };
    let recipe_uri = format!("{prefix}{file}");
    let (bucket, key) = split_s3(&recipe_uri);
    let put = Request {
        service: Service::S3,
        operation: "PutObject",
        method: "PUT",
        path: format!("/{}/{}", encode_segment(bucket), key.split('/').map(encode_segment).collect::<Vec<_>>().join("/")),
        headers: vec![("content-type".into(), "application/x-yaml".into())],
        body: Body::Bytes { data: Arc::new(yaml.clone().into_bytes()), preview: Some(yaml) },
        zip: None,
    };
    let mut hyper = serde_json::Map::new();
    hyper.insert("sagemaker_recipe_local_path".into(), json!(format!("{RECIPE_CHANNEL_DIR}/{file}")));
    if recipe.model_name_or_path.starts_with("s3://") {
        hyper.insert("base_model_location".into(), json!(recipe.model_name_or_path));
    } else {
        hyper.insert("base_model".into(), json!(recipe.model_name_or_path));
    }
    hyper.insert("reward_lambda_arn".into(), json!(lambda_arn));
    let mut channels = vec![channel("recipe", &recipe_uri), channel("train", &job.train_data)];
    if let Some(v) = &job.validation_data {
        channels.push(channel("validation", v));
    }
    let create = Request::json_rpc(
        Service::SageMaker,
        "SageMaker",
        "CreateTrainingJob",
        json!({
            "TrainingJobName": job.name,
            "RoleArn": role,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "HyperParameters": hyper,
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": job.output_path},
            "ResourceConfig": {
                "InstanceType": smtj.instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": smtj.volume_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": smtj.max_run_s},
        }),
    );
    Ok(Plan { steps: vec![Step::Call(put), Step::Call(create)], secrets: vec![] })
}

/// The published SMTJ recipe: `smtj.recipe` by name, else by `recipe.peft` (LoRA by default).
pub fn choose_recipe(name: Option<&str>, peft: Option<&str>) -> Result<&'static RecipeInfo, SpecError> {
    match name {
        Some(n) => RecipeInfo::find(n).filter(|r| r.platform == Platform::Smtj).ok_or_else(|| SpecError {
            field: "smtj.recipe".into(),
            message: format!(
                " = {n:?} is not a published SMTJ RFT recipe the launcher knows: one of {}",
                RecipeInfo::names(Platform::Smtj)
            ),
        }),
        None => {
            let lora = peft != Some("none");
            Ok(crate::recipes::RECIPES.iter().find(|r| r.platform == Platform::Smtj && r.lora == lora).expect("both variants"))
        }
    }
}

fn read_json(path: &std::path::Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError { field: "smtj.regional_parameters".into(), message: format!(": reading {}: {e}", path.display()) })?;
    serde_json::from_str(&text)
        .map_err(|e| SpecError { field: "smtj.regional_parameters".into(), message: format!(": {} is not JSON: {e}", path.display()) })
}

/// DescribeTrainingJob.
pub fn status(name: &str) -> Plan {
    Plan {
        steps: vec![Step::Call(Request::json_rpc(
            Service::SageMaker,
            "SageMaker",
            "DescribeTrainingJob",
            json!({"TrainingJobName": name}),
        ))],
        secrets: vec![],
    }
}

/// StopTrainingJob.
pub fn stop(name: &str) -> Plan {
    Plan {
        steps: vec![Step::Call(Request::json_rpc(Service::SageMaker, "SageMaker", "StopTrainingJob", json!({"TrainingJobName": name})))],
        secrets: vec![],
    }
}
