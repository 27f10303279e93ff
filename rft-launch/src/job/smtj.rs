//! `job smtj`: a SageMaker Training Job from a Nova RFT recipe, as the SageMaker Python SDK
//! builds it: the resolved recipe YAML uploaded to S3 and passed as the reserved `recipe` input
//! channel, hyperparameters `sagemaker_recipe_local_path`, `base_model` (or
//! `base_model_location` for an S3 checkpoint) and `reward_lambda_arn`, the regional Nova RFT
//! image, and the `train` (and `validation`) channels.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{recipe_tree, split_s3};
use crate::plan::{Body, Plan, Request, Service, Step, encode_segment};
use crate::spec::{Spec, SpecError};

/// Where the training container finds the `recipe` channel.
pub const RECIPE_CHANNEL_DIR: &str = "/opt/ml/input/data/recipe";

/// The Nova RFT training image of a region, when known. Other regions need `smtj.image_uri`.
pub fn nova_rft_image(region: &str) -> Option<String> {
    match region {
        "us-east-1" => Some("708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-RFT-latest".into()),
        _ => None,
    }
}

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
    let image = match smtj.image_uri.clone().or_else(|| nova_rft_image(&region)) {
        Some(i) => i,
        None => {
            return Err(SpecError {
                field: "smtj.image_uri".into(),
                message: format!(": required in {region} (the launcher knows the Nova RFT image of us-east-1 only)"),
            });
        }
    };
    let yaml = format!("# Resolved by rft-launch for job {}\n{}", job.name, recipe_tree(spec, &lambda_arn)?.to_yaml());
    let file = format!("{}.yaml", job.name);
    let prefix = smtj
        .recipe_s3_prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{}/recipe/", job.output_path.trim_end_matches('/'), job.name));
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
                "InstanceCount": smtj.instance_count,
                "VolumeSizeInGB": smtj.volume_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": smtj.max_run_s},
        }),
    );
    Ok(Plan { steps: vec![Step::Call(put), Step::Call(create)], secrets: vec![] })
}

/// DescribeTrainingJob.
pub fn status(name: &str) -> Plan {
    Plan {
        steps: vec![Step::Call(Request::json_rpc(Service::SageMaker, "SageMaker", "DescribeTrainingJob", json!({"TrainingJobName": name})))],
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
