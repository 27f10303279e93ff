//! One module per kind of job; each turns a validated [`Spec`] into a [`Plan`].

pub mod bedrock;
pub mod bridge;
pub mod hyperpod;
pub mod oss;
pub mod smtj;

use crate::spec::{Recipe, Spec, SpecError};
use crate::yaml::Node;

/// The resolved Nova RFT recipe: the spec's `[recipe]` values in the recipe's nested layout, with
/// the job's data paths and the reward Lambda in both of the recipe's ARN fields
/// (`run.reward_lambda_arn` and `training_config.rollout.rewards.api_endpoint.lambda_arn`).
pub fn recipe_tree(spec: &Spec, lambda_arn: &str) -> Result<Node, SpecError> {
    let job = spec.require_job()?;
    let r: &Recipe = spec.require_recipe()?;
    let mut run = vec![
        ("name".to_owned(), Node::s(&job.name)),
        ("model_type".to_owned(), Node::s(&r.model_type)),
        ("model_name_or_path".to_owned(), Node::s(&r.model_name_or_path)),
        ("replicas".to_owned(), Node::Int(r.replicas.into())),
        ("data_s3_path".to_owned(), Node::s(&job.train_data)),
    ];
    if let Some(v) = &job.validation_data {
        run.push(("validation_data_s3_path".to_owned(), Node::s(v)));
    }
    run.push(("output_s3_path".to_owned(), Node::s(&job.output_path)));
    run.push(("reward_lambda_arn".to_owned(), Node::s(lambda_arn)));
    let mut training = vec![
        ("max_length".to_owned(), Node::Int(r.max_length.into())),
        ("global_batch_size".to_owned(), Node::Int(r.global_batch_size.into())),
    ];
    if let Some(e) = &r.reasoning_effort {
        training.push(("reasoning_effort".to_owned(), Node::s(e)));
    }
    training.push((
        "rollout".to_owned(),
        Node::map([
            ("advantage_strategy", Node::map([("number_generation", Node::Int(r.number_generation.into()))])),
            (
                "generator",
                Node::map([
                    ("max_new_tokens", Node::Int(r.max_new_tokens.into())),
                    ("temperature", Node::Float(r.temperature)),
                    ("top_k", Node::Int(r.top_k.into())),
                ]),
            ),
            (
                "rewards",
                Node::map([(
                    "api_endpoint",
                    Node::map([
                        ("lambda_arn", Node::s(lambda_arn)),
                        ("lambda_concurrency_limit", Node::Int(r.lambda_concurrency_limit.into())),
                    ]),
                )]),
            ),
        ]),
    ));
    let peft = if r.peft == "lora" {
        Node::map([("peft_scheme", Node::s("lora")), ("lora_tuning", Node::map([("alpha", Node::Int(r.lora_alpha.into()))]))])
    } else {
        Node::map([("peft_scheme", Node::s("null"))])
    };
    training.push((
        "trainer".to_owned(),
        Node::map([
            ("max_steps", Node::Int(r.max_steps.into())),
            ("save_steps", Node::Int(r.save_steps.into())),
            ("clip_ratio_high", Node::Float(r.clip_ratio_high)),
            ("ent_coeff", Node::Float(r.ent_coeff)),
            ("optim_config", Node::map([("lr", Node::Float(r.learning_rate)), ("weight_decay", Node::Float(r.weight_decay))])),
            ("peft", peft),
        ]),
    ));
    Ok(Node::Map(vec![("run".to_owned(), Node::Map(run)), ("training_config".to_owned(), Node::Map(training))]))
}

/// `s3://bucket/key` -> (`bucket`, `key`).
pub fn split_s3(uri: &str) -> (&str, &str) {
    let rest = uri.strip_prefix("s3://").unwrap_or(uri);
    rest.split_once('/').unwrap_or((rest, ""))
}
