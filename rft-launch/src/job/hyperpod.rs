//! `job hyperpod`: the `hyperpod start-job` invocation (SageMaker HyperPod CLI) with
//! `--override-parameters`: the recipe path, instance type, data and output paths, the reward
//! Lambda (`recipes.run.reward_lambda_arn`, and the rollout's `lambda_arn`), batch size, steps and
//! every other recipe value of the spec, as dotted keys under `recipes.`.

use serde_json::{Map, Value};

use super::recipe_tree;
use crate::plan::{Plan, Step};
use crate::spec::{Spec, SpecError};

/// The `start-job` arguments.
pub fn plan(spec: &Spec) -> Result<Plan, SpecError> {
    let hp = spec.hyperpod.as_ref().ok_or_else(|| SpecError { field: "hyperpod".into(), message: ": section missing".into() })?;
    let lambda_arn = spec.reward_lambda_arn()?;
    let mut overrides = Map::new();
    overrides.insert("instance_type".into(), Value::String(hp.instance_type.clone()));
    if let Some(c) = &hp.container {
        overrides.insert("container".into(), Value::String(c.clone()));
    }
    if let Some(ns) = &hp.namespace {
        overrides.insert("namespace".into(), Value::String(ns.clone()));
    }
    for (key, node) in recipe_tree(spec, &lambda_arn)?.flatten("recipes") {
        overrides.insert(key, node.to_json());
    }
    let args = vec![
        "start-job".to_owned(),
        "--recipe".to_owned(),
        hp.recipe.clone(),
        "--override-parameters".to_owned(),
        Value::Object(overrides).to_string(),
    ];
    Ok(Plan { steps: vec![Step::Run { program: hp.cli.clone(), args }], secrets: vec![] })
}

/// `hyperpod get-job --job-name NAME`.
pub fn status(cli: &str, name: &str) -> Plan {
    Plan { steps: vec![Step::Run { program: cli.into(), args: vec!["get-job".into(), "--job-name".into(), name.into()] }], secrets: vec![] }
}

/// `hyperpod cancel-job --job-name NAME`.
pub fn stop(cli: &str, name: &str) -> Plan {
    Plan { steps: vec![Step::Run { program: cli.into(), args: vec!["cancel-job".into(), "--job-name".into(), name.into()] }], secrets: vec![] }
}
