//! One module per kind of job; each turns a validated [`Spec`] into a [`Plan`].

pub mod bedrock;
pub mod bridge;
pub mod hyperpod;
pub mod oss;
pub mod smtj;

use crate::recipes::{Allowed, Platform, RecipeInfo};
use crate::spec::{Recipe, Spec, SpecError};
use crate::yaml::Node;

fn out_of_range(field: &str, shown: String, allowed: String, recipe: &RecipeInfo) -> SpecError {
    SpecError { field: field.into(), message: format!(" = {shown} is {allowed} (recipe {})", recipe.name) }
}

/// A spec value checked against a published range.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn value_of(r: &Recipe, replicas: Option<i64>, field: &str) -> Option<Num> {
    use Num::{Float, Int};
    match field {
        "recipe.replicas" => replicas.map(Int),
        "recipe.learning_rate" => r.learning_rate.map(Float),
        "recipe.max_steps" => r.max_steps.map(Int),
        "recipe.global_batch_size" => r.global_batch_size.map(Int),
        "recipe.max_length" => r.max_length.map(Int),
        "recipe.number_generation" => r.number_generation.map(Int),
        "recipe.save_steps" => r.save_steps.map(Int),
        "recipe.lora_alpha" => r.lora_alpha.map(Int),
        "recipe.lora_plus_lr_ratio" => r.lora_plus_lr_ratio.map(Float),
        _ => None,
    }
}

/// Checks the spec's recipe values against the ranges `nova_recipe_template_parameters.json`
/// publishes for `recipe`'s template, and PEFT against the recipe's variant. `replicas` is the
/// value that becomes `run.replicas`.
pub fn check_recipe(r: &Recipe, info: &RecipeInfo, replicas: Option<i64>) -> Result<(), SpecError> {
    if let Some(p) = &r.peft
        && (p == "lora") != info.lora
    {
        let variant = if info.lora { "LoRA" } else { "full rank" };
        return Err(SpecError {
            field: "recipe.peft".into(),
            message: format!(
                " = {p:?} does not match recipe {} ({variant}): PEFT is the recipe's variant; choose the {} recipe",
                info.name,
                if p == "lora" { "_lora_rft" } else { "_rft (full rank)" }
            ),
        });
    }
    for (_, field, allowed) in info.allowed {
        let Some(v) = value_of(r, replicas, field) else { continue };
        match (allowed, v) {
            (Allowed::Int(lo, hi), Num::Int(v)) if !(lo..=hi).contains(&&v) => {
                return Err(out_of_range(field, v.to_string(), format!("out of range: allowed {lo}..={hi}"), info));
            }
            (Allowed::Float(lo, hi), Num::Float(v)) if !(*lo..=*hi).contains(&v) => {
                return Err(out_of_range(field, v.to_string(), format!("out of range: allowed {lo}..={hi}"), info));
            }
            (Allowed::IntEnum(set), Num::Int(v)) if !set.contains(&v) => {
                let set = set.iter().map(i64::to_string).collect::<Vec<_>>().join(" | ");
                return Err(out_of_range(field, v.to_string(), format!("not allowed: one of {set}"), info));
            }
            _ => {}
        }
    }
    // Values the template publishes no range for, in this recipe: the launcher's own bounds.
    if !info.allowed.iter().any(|(_, f, _)| *f == "recipe.number_generation")
        && let Some(n) = r.number_generation
        && !(2..=16).contains(&n)
    {
        return Err(out_of_range("recipe.number_generation", n.to_string(), "out of range: allowed 2..=16".into(), info));
    }
    Ok(())
}

/// The recipe keys the spec sets, with their values, in the recipe's layout: the job's name,
/// data and the reward Lambda (in both of the recipe's ARN fields), `run.replicas`, and every
/// `[recipe]` value given. A value the recipe has no key for is an error naming the field and
/// the key (Hydra would refuse it, and an SMTJ recipe would carry it unread).
pub fn recipe_overrides(spec: &Spec, info: &RecipeInfo, lambda_arn: &str, replicas: Option<i64>) -> Result<Vec<(String, Node)>, SpecError> {
    let job = spec.require_job()?;
    let r: &Recipe = spec.require_recipe()?;
    let published = info.published();
    let mut out = Vec::new();
    // (field in the spec, recipe key, value); `None` as field: set by the launcher, skipped when
    // the recipe has no such key (SMTJ takes the output path in OutputDataConfig).
    let int = |v: Option<i64>| v.map(Node::Int);
    let float = |v: Option<f64>| v.map(Node::Float);
    let replicas_field = if info.platform == Platform::Smtj { "smtj.instance_count" } else { "recipe.replicas" };
    let entries: Vec<(Option<&str>, &str, Option<Node>)> = vec![
        (None, "run.name", Some(Node::s(&job.name))),
        (Some("recipe.model_type"), "run.model_type", r.model_type.as_deref().map(Node::s)),
        (Some("recipe.model_name_or_path"), "run.model_name_or_path", Some(Node::s(&r.model_name_or_path))),
        (Some(replicas_field), "run.replicas", int(replicas)),
        (None, "run.data_s3_path", Some(Node::s(&job.train_data))),
        (None, "run.output_s3_path", Some(Node::s(&job.output_path))),
        (None, "run.reward_lambda_arn", Some(Node::s(lambda_arn))),
        (Some("recipe.max_length"), "training_config.max_length", int(r.max_length)),
        (Some("recipe.global_batch_size"), "training_config.global_batch_size", int(r.global_batch_size)),
        (
            Some("recipe.reasoning_effort"),
            "training_config.reasoning_effort",
            r.reasoning_effort.as_deref().map(|e| if e == "none" { Node::Null } else { Node::s(e) }),
        ),
        (Some("recipe.number_generation"), "training_config.rollout.advantage_strategy.number_generation", int(r.number_generation)),
        (Some("recipe.max_new_tokens"), "training_config.rollout.generator.max_new_tokens", int(r.max_new_tokens)),
        (Some("recipe.temperature"), "training_config.rollout.generator.temperature", float(r.temperature)),
        (Some("recipe.top_k"), "training_config.rollout.generator.top_k", int(r.top_k)),
        (None, "training_config.rollout.rewards.api_endpoint.lambda_arn", Some(Node::s(lambda_arn))),
        (
            Some("recipe.lambda_concurrency_limit"),
            "training_config.rollout.rewards.api_endpoint.lambda_concurrency_limit",
            int(r.lambda_concurrency_limit),
        ),
        (Some("recipe.max_steps"), "training_config.trainer.max_steps", int(r.max_steps)),
        (Some("recipe.save_steps"), "training_config.trainer.save_steps", int(r.save_steps)),
        (Some("recipe.clip_ratio_high"), "training_config.trainer.clip_ratio_high", float(r.clip_ratio_high)),
        (Some("recipe.ent_coeff"), "training_config.trainer.ent_coeff", float(r.ent_coeff)),
        (Some("recipe.kl_loss_coef"), "training_config.trainer.kl_loss_coef", float(r.kl_loss_coef)),
        (Some("recipe.learning_rate"), "training_config.trainer.optim_config.lr", float(r.learning_rate)),
        (Some("recipe.weight_decay"), "training_config.trainer.optim_config.weight_decay", float(r.weight_decay)),
        (Some("recipe.lora_alpha"), "training_config.trainer.peft.lora_tuning.alpha", int(r.lora_alpha)),
        (Some("recipe.lora_plus_lr_ratio"), info.lora_plus_key(), float(r.lora_plus_lr_ratio)),
    ];
    for (field, key, value) in entries {
        let Some(value) = value else { continue };
        match (published.get(key), field) {
            (Some(_), _) => out.push((key.to_owned(), value)),
            (None, None) => {}
            (None, Some(field)) => {
                return Err(SpecError {
                    field: field.into(),
                    message: format!(": recipe {} has no key {key}; leave it out for this recipe", info.name),
                });
            }
        }
    }
    Ok(out)
}

/// `s3://bucket/key` -> (`bucket`, `key`).
pub fn split_s3(uri: &str) -> (&str, &str) {
    let rest = uri.strip_prefix("s3://").unwrap_or(uri);
    rest.split_once('/').unwrap_or((rest, ""))
}
