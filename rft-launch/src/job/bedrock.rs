//! `job bedrock`: CreateModelCustomizationJob with `customizationType =
//! REINFORCEMENT_FINE_TUNING` and the bridge as the Lambda grader
//! (`customizationConfig.rftConfig.graderConfig.lambdaGrader.lambdaArn`), hyperparameters checked
//! against their documented ranges by [`crate::spec::BedrockHyperparameters::validate`].

use serde_json::{Map, Value, json};

use crate::plan::{Plan, Request, Service, Step, encode_segment};
use crate::spec::{Spec, SpecError};

/// CreateModelCustomizationJob.
pub fn plan(spec: &Spec) -> Result<Plan, SpecError> {
    let job = spec.require_job()?;
    let role = spec.require_role()?;
    let b = spec.bedrock.as_ref().ok_or_else(|| SpecError { field: "bedrock".into(), message: ": section missing".into() })?;
    let lambda_arn = spec.reward_lambda_arn()?;
    let h = &b.hyperparameters;
    let mut hp = Map::new();
    hp.insert("batchSize".into(), json!(h.batch_size));
    hp.insert("epochCount".into(), json!(h.epoch_count));
    hp.insert("learningRate".into(), json!(h.learning_rate));
    hp.insert("trainingSamplePerPrompt".into(), json!(h.training_sample_per_prompt));
    hp.insert("evalInterval".into(), json!(h.eval_interval));
    hp.insert("reasoningEffort".into(), json!(h.reasoning_effort));
    if let Some(v) = h.inference_max_tokens {
        hp.insert("inferenceMaxTokens".into(), json!(v));
    }
    if let Some(v) = h.max_prompt_length {
        hp.insert("maxPromptLength".into(), json!(v));
    }
    let mut body = json!({
        "jobName": job.name,
        "customModelName": b.custom_model_name,
        "roleArn": role,
        "baseModelIdentifier": b.base_model,
        "customizationType": "REINFORCEMENT_FINE_TUNING",
        "trainingDataConfig": {"s3Uri": job.train_data},
        "outputDataConfig": {"s3Uri": job.output_path},
        "customizationConfig": {"rftConfig": {
            "graderConfig": {"lambdaGrader": {"lambdaArn": lambda_arn}},
            "hyperParameters": Value::Object(hp),
        }},
    });
    if let Some(v) = &job.validation_data {
        body["validationDataConfig"] = json!({"validators": [{"s3Uri": v}]});
    }
    if !b.subnet_ids.is_empty() {
        body["vpcConfig"] = json!({"subnetIds": b.subnet_ids, "securityGroupIds": b.security_group_ids});
    }
    let req = Request::rest(Service::Bedrock, "CreateModelCustomizationJob", "POST", "/model-customization-jobs".into(), Some(body));
    Ok(Plan { steps: vec![Step::Call(req)], secrets: vec![] })
}

/// GetModelCustomizationJob (by name or ARN).
pub fn status(id: &str) -> Plan {
    let path = format!("/model-customization-jobs/{}", encode_segment(id));
    Plan { steps: vec![Step::Call(Request::rest(Service::Bedrock, "GetModelCustomizationJob", "GET", path, None))], secrets: vec![] }
}

/// StopModelCustomizationJob.
pub fn stop(id: &str) -> Plan {
    let path = format!("/model-customization-jobs/{}/stop", encode_segment(id));
    Plan { steps: vec![Step::Call(Request::rest(Service::Bedrock, "StopModelCustomizationJob", "POST", path, None))], secrets: vec![] }
}
