//! `job hyperpod`: the `hyperpod start-job` invocation (SageMaker HyperPod CLI) with
//! `--override-parameters`: the instance type (and container), then, as dotted keys under
//! `recipes.`, only keys the chosen published recipe has (see [`crate::recipes`]): the job's
//! name, data and output paths, the reward Lambda (`run.reward_lambda_arn` and the rollout's
//! `lambda_arn`) and every `[recipe]` value given. The Kubernetes namespace is the CLI's
//! `--namespace` flag, on `start-job`, `get-job` and `cancel-job` alike.
//!
//! The recipes launcher renames every Nova run to `name[:34]-xxxxx` (five random characters), so
//! the configured name never finds the job: [`job_name_in`] takes the real name from
//! `start-job`'s output, and `job status|stop --kind hyperpod` take that name.

use serde_json::{Map, Value};

use super::{check_recipe, recipe_overrides};
use crate::plan::{Plan, Step};
use crate::recipes::{Platform, RecipeInfo};
use crate::spec::{BRIDGE_NAME_MARKER, Spec, SpecError};

/// How much of the configured name the recipes launcher keeps before its `-xxxxx` suffix.
pub const NAME_PREFIX_LEN: usize = 34;

fn err(field: &str, message: String) -> SpecError {
    SpecError { field: field.into(), message }
}

/// The `start-job` arguments.
pub fn plan(spec: &Spec) -> Result<Plan, SpecError> {
    let hp = spec.hyperpod.as_ref().ok_or_else(|| err("hyperpod", ": section missing".into()))?;
    let info = RecipeInfo::find(&hp.recipe).filter(|r| r.platform == Platform::HyperPod).ok_or_else(|| {
        err(
            "hyperpod.recipe",
            format!(
                " = {:?} is not a published HyperPod RFT recipe the launcher knows: one of {}",
                hp.recipe,
                RecipeInfo::names(Platform::HyperPod)
            ),
        )
    })?;
    let job = spec.require_job()?;
    if job.validation_data.is_some() {
        return Err(err(
            "job.validation_data",
            format!(": recipe {} has no validation data path (no HyperPod RFT recipe reads one); leave it out", info.name),
        ));
    }
    let lambda_arn = spec.reward_lambda_arn()?;
    let function = lambda_arn.rsplit(':').next().unwrap_or_default();
    if !function.contains(BRIDGE_NAME_MARKER) {
        return Err(err(
            "job.reward_lambda_arn",
            format!(
                ": function {function:?} must contain \"{BRIDGE_NAME_MARKER}\" (this case) for a HyperPod job: the role of HyperPod's \
                 restricted instance groups may invoke only functions named *{BRIDGE_NAME_MARKER}*"
            ),
        ));
    }
    let r = spec.require_recipe()?;
    check_recipe(r, info, r.replicas)?;
    let mut overrides = Map::new();
    overrides.insert("instance_type".into(), Value::String(hp.instance_type.clone()));
    if let Some(c) = &hp.container {
        overrides.insert("container".into(), Value::String(c.clone()));
    }
    for (key, node) in recipe_overrides(spec, info, &lambda_arn, r.replicas)? {
        overrides.insert(format!("recipes.{key}"), node.to_json());
    }
    let mut args = vec!["start-job".to_owned(), "--recipe".to_owned(), info.path()];
    args.extend(namespace(spec));
    args.push("--override-parameters".to_owned());
    args.push(Value::Object(overrides).to_string());
    Ok(Plan { steps: vec![Step::Run { program: hp.cli.clone(), args, find_job_name: Some(job.name.clone()) }], secrets: vec![] })
}

fn namespace(spec: &Spec) -> Vec<String> {
    spec.hyperpod.as_ref().and_then(|h| h.namespace.clone()).map(|ns| vec!["--namespace".to_owned(), ns]).unwrap_or_default()
}

/// The job's real name in `start-job`'s output: the first word that is the configured name cut
/// to [`NAME_PREFIX_LEN`] characters, a `-`, and five lowercase letters or digits.
pub fn job_name_in(output: &str, configured: &str) -> Option<String> {
    let prefix: String = configured.chars().take(NAME_PREFIX_LEN).collect::<String>().to_ascii_lowercase();
    output
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .find(|w| {
            w.to_ascii_lowercase()
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|s| s.len() == 5 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// `hyperpod get-job --job-name NAME [--namespace NS]`.
pub fn status(cli: &str, spec: Option<&Spec>, name: &str) -> Plan {
    let mut args = vec!["get-job".into(), "--job-name".into(), name.into()];
    args.extend(spec.map(namespace).unwrap_or_default());
    Plan { steps: vec![Step::Run { program: cli.into(), args, find_job_name: None }], secrets: vec![] }
}

/// `hyperpod cancel-job --job-name NAME [--namespace NS]`.
pub fn stop(cli: &str, spec: Option<&Spec>, name: &str) -> Plan {
    let mut args = vec!["cancel-job".into(), "--job-name".into(), name.into()];
    args.extend(spec.map(namespace).unwrap_or_default());
    Plan { steps: vec![Step::Run { program: cli.into(), args, find_job_name: None }], secrets: vec![] }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_real_name_is_found_in_the_output() {
        let out = "NAME: rft-math-001-k3x9a\nLAST DEPLOYED: ...\nNAMESPACE: kubeflow\n";
        assert_eq!(super::job_name_in(out, "rft-math-001").as_deref(), Some("rft-math-001-k3x9a"));
        let long = "a-very-long-job-name-that-goes-past-the-limit";
        let out = "Launched a-very-long-job-name-that-goes-pas-0a1b2 in 3s";
        assert_eq!(super::job_name_in(out, long).as_deref(), Some("a-very-long-job-name-that-goes-pas-0a1b2"));
        assert_eq!(super::job_name_in("rft-math-001 started", "rft-math-001"), None);
    }
}
