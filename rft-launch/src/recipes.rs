//! The published Nova 2.0 Lite RFT recipes the launcher knows, and what it may override in each.
//!
//! Official clients start from the published recipe and override a few keys: the HyperPod CLI
//! passes `--override-parameters` to Hydra, which refuses a key the recipe does not have ("Could
//! not override ..."), and the SageMaker Python SDK writes the published recipe with its
//! overrides applied. This module holds, for each of the four recipes of
//! aws/sagemaker-hyperpod-recipes (commit 2631995, Apache-2.0):
//!
//! - the recipe itself as a [`Node`] tree ([`RecipeInfo::published`]): the keys the launcher may
//!   override are exactly its keys, and `job smtj` writes this tree with the spec's values on it;
//! - the allowed values of each template parameter, as
//!   `launcher/recipe_templatization/nova/nova_recipe_template_parameters.json` gives them
//!   ([`RecipeInfo::allowed`]);
//! - the training images per region, in the layout of `nova_regional_parameters.json`
//!   (`<recipe>.sm_jobs.container_image.prod.<region>`, see [`smtj_image`]).
//!
//! The crate's tests compare all three with the published files (`../shared/nova-recipes/`) and
//! compose every recipe with the launcher's overrides through Hydra, so a new release of the
//! recipes that changes a key, a range or an image fails the tests rather than a user's job.

use crate::yaml::Node;

/// Where a recipe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// SageMaker HyperPod (EKS), started with `hyperpod start-job --recipe PATH`.
    HyperPod,
    /// SageMaker Training Jobs: the recipe is uploaded and passed as the `recipe` channel.
    Smtj,
}

/// The allowed values of one template parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowed {
    /// An integer in `min..=max`.
    Int(i64, i64),
    /// A float in `min..=max`.
    Float(f64, f64),
    /// One of these integers.
    IntEnum(&'static [i64]),
}

/// One published RFT recipe.
#[derive(Debug, Clone, Copy)]
pub struct RecipeInfo {
    /// The file's stem, e.g. `nova_lite_2_0_p5_gpu_rft`.
    pub name: &'static str,
    /// Where it runs.
    pub platform: Platform,
    /// LoRA (`true`) or full rank.
    pub lora: bool,
    /// Its template in `nova_recipe_template_parameters.json`.
    pub template: &'static str,
    /// Each template parameter the launcher validates: (parameter, spec field, allowed values).
    pub allowed: &'static [(&'static str, &'static str, Allowed)],
}

/// The directory of the Nova 2.0 Lite RFT recipes in the recipes repository.
pub const RECIPE_DIR: &str = "fine-tuning/nova/nova_2_0/nova_lite/RFT";

const REPLICAS: &[i64] = &[2, 4, 8, 16];
const LORA_ALPHA: &[i64] = &[16, 32, 64];

/// The four published Nova 2.0 Lite RFT recipes.
pub const RECIPES: [RecipeInfo; 4] = [
    RecipeInfo {
        name: "nova_lite_2_0_p5_gpu_rft",
        platform: Platform::HyperPod,
        lora: false,
        template: "nova_rft",
        allowed: &[
            ("replicas", "recipe.replicas", Allowed::IntEnum(REPLICAS)),
            ("learning_rate", "recipe.learning_rate", Allowed::Float(1e-8, 1e-3)),
            ("max_steps", "recipe.max_steps", Allowed::Int(5, 100_000)),
            ("global_batch_size", "recipe.global_batch_size", Allowed::Int(16, 256)),
            ("max_length", "recipe.max_length", Allowed::Int(4096, 32768)),
            ("number_generation", "recipe.number_generation", Allowed::Int(2, 16)),
            ("save_steps", "recipe.save_steps", Allowed::Int(0, 100_000)),
        ],
    },
    RecipeInfo {
        name: "nova_lite_2_0_p5_gpu_lora_rft",
        platform: Platform::HyperPod,
        lora: true,
        template: "nova_lora_rft",
        allowed: &[
            ("replicas", "recipe.replicas", Allowed::IntEnum(REPLICAS)),
            ("learning_rate", "recipe.learning_rate", Allowed::Float(1e-8, 1e-3)),
            ("max_steps", "recipe.max_steps", Allowed::Int(5, 100_000)),
            ("number_generation", "recipe.number_generation", Allowed::Int(2, 16)),
            ("lora_alpha", "recipe.lora_alpha", Allowed::IntEnum(LORA_ALPHA)),
            ("global_batch_size", "recipe.global_batch_size", Allowed::Int(16, 256)),
            ("max_length", "recipe.max_length", Allowed::Int(4096, 32768)),
            ("learning_rate_ratio", "recipe.lora_plus_lr_ratio", Allowed::Float(1.0, 70.0)),
            ("save_steps", "recipe.save_steps", Allowed::Int(0, 100_000)),
        ],
    },
    RecipeInfo {
        name: "nova_lite_v2_smtj_p5_p5en_gpu_rft",
        platform: Platform::Smtj,
        lora: false,
        template: "nova_smtj_rft",
        allowed: &[
            ("learning_rate", "recipe.learning_rate", Allowed::Float(1e-7, 1e-3)),
            ("global_batch_size", "recipe.global_batch_size", Allowed::Int(16, 256)),
            ("max_length", "recipe.max_length", Allowed::Int(4096, 32768)),
            ("max_steps", "recipe.max_steps", Allowed::Int(5, 100_000)),
            ("save_steps", "recipe.save_steps", Allowed::Int(0, 100_000)),
        ],
    },
    RecipeInfo {
        name: "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft",
        platform: Platform::Smtj,
        lora: true,
        template: "nova_smtj_lora_rft",
        allowed: &[
            ("learning_rate", "recipe.learning_rate", Allowed::Float(1e-7, 1e-3)),
            ("max_steps", "recipe.max_steps", Allowed::Int(5, 100_000)),
            ("lora_alpha", "recipe.lora_alpha", Allowed::IntEnum(LORA_ALPHA)),
            ("global_batch_size", "recipe.global_batch_size", Allowed::Int(16, 128)),
            ("max_length", "recipe.max_length", Allowed::Int(4096, 32768)),
            ("learning_rate_ratio", "recipe.lora_plus_lr_ratio", Allowed::Float(0.0, 100.0)),
            ("save_steps", "recipe.save_steps", Allowed::Int(0, 100_000)),
        ],
    },
];

impl RecipeInfo {
    /// The recipe's path in the recipes repository, without `.yaml` (what `--recipe` takes).
    pub fn path(&self) -> String {
        format!("{RECIPE_DIR}/{}", self.name)
    }

    /// Finds a recipe by name or path (with or without `.yaml`).
    pub fn find(name_or_path: &str) -> Option<&'static RecipeInfo> {
        let stem = name_or_path.trim_end_matches(".yaml").rsplit('/').next().unwrap_or_default();
        RECIPES.iter().find(|r| r.name == stem && (!name_or_path.contains('/') || name_or_path.trim_end_matches(".yaml") == r.path()))
    }

    /// The recipes of a platform, for error messages.
    pub fn names(platform: Platform) -> String {
        RECIPES.iter().filter(|r| r.platform == platform).map(|r| r.path()).collect::<Vec<_>>().join(", ")
    }

    /// The recipe's key for the LoRA+ learning-rate ratio (the two platforms spell it differently).
    pub fn lora_plus_key(&self) -> &'static str {
        match self.platform {
            Platform::HyperPod => "training_config.trainer.peft.lora_tuning.loraplus_lr_ratio",
            Platform::Smtj => "training_config.trainer.peft.lora_tuning.lora_plus_lr_ratio",
        }
    }

    /// The recipe as published (values and key order of the YAML file).
    pub fn published(&self) -> Node {
        match self.platform {
            Platform::HyperPod => hyperpod_recipe(self.lora),
            Platform::Smtj => smtj_recipe(self.lora),
        }
    }
}

fn i(v: i64) -> Node {
    Node::Int(v)
}
fn f(v: f64) -> Node {
    Node::Float(v)
}
fn s(v: &str) -> Node {
    Node::s(v)
}

const SAVE_STEPS_DEFAULT: &str = "${oc.select:training_config.trainer.max_steps}";

fn hyperpod_recipe(lora: bool) -> Node {
    let mut trainer = vec![
        ("max_steps".to_owned(), i(100)),
        ("save_steps".to_owned(), s(SAVE_STEPS_DEFAULT)),
        ("save_top_k".to_owned(), i(5)),
        ("refit_freq".to_owned(), i(4)),
        ("clip_ratio_high".to_owned(), f(0.2)),
        ("ent_coeff".to_owned(), f(0.001)),
        ("loss_scale".to_owned(), i(1)),
        (
            "optim_config".to_owned(),
            Node::map([("lr", f(7e-7)), ("weight_decay", f(0.0)), ("adam_beta1", f(0.9)), ("adam_beta2", f(0.95))]),
        ),
    ];
    if lora {
        trainer.push((
            "peft".to_owned(),
            Node::map([("peft_scheme", s("lora")), ("lora_tuning", Node::map([("alpha", i(32)), ("loraplus_lr_ratio", f(64.0))]))]),
        ));
    }
    Node::map([
        (
            "run",
            Node::map([
                ("name", s("my-rft-run")),
                ("model_type", s("amazon.nova-2-lite-v1:0:256k")),
                ("model_name_or_path", s("nova-lite-2/prod")),
                ("data_s3_path", s("s3://example-bucket/train.jsonl")),
                ("output_s3_path", s("")),
                ("replicas", i(2)),
                ("generation_replicas", i(2)),
                ("rollout_worker_replicas", i(1)),
                ("reward_lambda_arn", s("")),
                ("mlflow_tracking_uri", s("")),
                ("mlflow_experiment_name", s("my-rft-experiment")),
                ("mlflow_run_name", s("my-rft-run")),
            ]),
        ),
        (
            "training_config",
            Node::map([
                ("max_length", i(10240)),
                ("global_batch_size", i(256)),
                ("reasoning_effort", s("high")),
                ("data", Node::map([("shuffle", Node::Bool(false))])),
                (
                    "rollout",
                    Node::map([
                        ("rollout_strategy", Node::map([("type", s("off_policy_async")), ("age_tolerance", i(2))])),
                        ("advantage_strategy", Node::map([("number_generation", i(8))])),
                        (
                            "generator",
                            Node::map([
                                ("max_new_tokens", i(8192)),
                                ("set_random_seed", Node::Bool(true)),
                                ("temperature", i(1)),
                                ("top_k", i(0)),
                            ]),
                        ),
                        (
                            "rewards",
                            Node::map([(
                                "api_endpoint",
                                Node::map([("lambda_arn", s("${oc.select:run.reward_lambda_arn}")), ("lambda_concurrency_limit", i(100))]),
                            )]),
                        ),
                    ]),
                ),
                ("trainer", Node::Map(trainer)),
            ]),
        ),
    ])
}

fn smtj_recipe(lora: bool) -> Node {
    let placeholder_arn = "arn:aws:lambda:<region>:<account-id>:function:<function-name>";
    let peft = if lora {
        Node::map([("peft_scheme", s("lora")), ("lora_tuning", Node::map([("alpha", i(32)), ("lora_plus_lr_ratio", f(64.0))]))])
    } else {
        Node::map([("peft_scheme", Node::Null)])
    };
    Node::map([
        (
            "run",
            Node::map([
                ("name", s("my-rft-run")),
                ("model_type", s("amazon.nova-2-lite-v1:0:256k")),
                ("model_name_or_path", s("nova-lite-2/prod")),
                ("data_s3_path", s("s3://<bucket>/<data file>")),
                ("replicas", i(4)),
                ("reward_lambda_arn", s(placeholder_arn)),
            ]),
        ),
        (
            "training_config",
            Node::map([
                ("max_length", i(8192)),
                ("global_batch_size", i(64)),
                ("reasoning_effort", s("high")),
                (
                    "rollout",
                    Node::map([
                        ("advantage_strategy", Node::map([("number_generation", i(2))])),
                        (
                            "generator",
                            Node::map([
                                ("max_new_tokens", i(6000)),
                                ("set_random_seed", Node::Bool(true)),
                                ("temperature", i(1)),
                                ("top_k", i(1)),
                            ]),
                        ),
                        (
                            "rewards",
                            Node::map([(
                                "api_endpoint",
                                Node::map([("lambda_arn", s(placeholder_arn)), ("lambda_concurrency_limit", i(12))]),
                            )]),
                        ),
                    ]),
                ),
                (
                    "trainer",
                    Node::map([
                        ("max_steps", i(5)),
                        ("save_steps", s(SAVE_STEPS_DEFAULT)),
                        ("ent_coeff", f(0.0)),
                        ("kl_loss_coef", f(0.001)),
                        (
                            "optim_config",
                            Node::map([("lr", f(1e-4)), ("weight_decay", f(0.0)), ("adam_beta1", f(0.9)), ("adam_beta2", f(0.95))]),
                        ),
                        ("peft", peft),
                    ]),
                ),
            ]),
        ),
    ])
}

/// The regions with a published SageMaker Training Jobs image for the Nova 2.0 Lite RFT recipes,
/// and the image's ECR account there (`nova_regional_parameters.json`,
/// `<recipe>.sm_jobs.container_image.prod`).
pub const SMTJ_IMAGE_ACCOUNTS: [(&str, &str); 3] =
    [("us-east-1", "708977205387"), ("us-west-2", "176779409107"), ("ap-northeast-1", "878185805882")];

/// The image tag of the Nova 2.0 Lite RFT recipes on SageMaker Training Jobs.
pub const SMTJ_RFT_IMAGE_TAG: &str = "SM-TJ-RFT-V2-latest";

/// The published training image of an SMTJ recipe in a region, if the region has one. With
/// `regional_parameters` (a `nova_regional_parameters.json` of a newer release), it is read from
/// there instead: `<recipe>.sm_jobs.container_image.prod.<region>`.
pub fn smtj_image(recipe: &RecipeInfo, region: &str, regional_parameters: Option<&serde_json::Value>) -> Option<String> {
    if let Some(p) = regional_parameters {
        return p.get(recipe.name)?.get("sm_jobs")?.get("container_image")?.get("prod")?.get(region)?.as_str().map(str::to_owned);
    }
    if recipe.platform != Platform::Smtj {
        return None;
    }
    SMTJ_IMAGE_ACCOUNTS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(r, account)| format!("{account}.dkr.ecr.{r}.amazonaws.com/nova-fine-tune-repo:{SMTJ_RFT_IMAGE_TAG}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_by_name_or_path() {
        assert_eq!(RecipeInfo::find("nova_lite_2_0_p5_gpu_rft").unwrap().name, "nova_lite_2_0_p5_gpu_rft");
        assert!(RecipeInfo::find("fine-tuning/nova/nova_2_0/nova_lite/RFT/nova_lite_2_0_p5_gpu_lora_rft").unwrap().lora);
        assert!(RecipeInfo::find("other/dir/nova_lite_2_0_p5_gpu_rft").is_none());
        assert!(RecipeInfo::find("nova_micro_rft").is_none());
    }

    #[test]
    fn every_key_the_launcher_validates_is_a_key_of_the_recipe() {
        for r in &RECIPES {
            let tree = r.published();
            assert!(tree.get("training_config.trainer.max_steps").is_some(), "{}", r.name);
            assert_eq!(tree.get("training_config.trainer.peft").is_some(), r.lora || r.platform == Platform::Smtj, "{}", r.name);
            if r.lora {
                assert!(tree.get(r.lora_plus_key()).is_some(), "{}", r.name);
            }
        }
    }
}
