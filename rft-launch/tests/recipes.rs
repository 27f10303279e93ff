//! The launcher against the published Nova 2.0 Lite RFT recipes (`../shared/nova-recipes/`, the
//! files of aws/sagemaker-hyperpod-recipes; every test here skips when they are absent):
//!
//! - the launcher's copy of each recipe is the published file, key for key and value for value;
//! - `job hyperpod`'s `--override-parameters` compose with every HyperPod recipe through Hydra
//!   (hydra-core 1.3.2, as that repository pins), for the shipped example and each variant;
//! - `job smtj` writes the published SMTJ recipe with the spec's values on it, which Hydra
//!   composes too, and `InstanceCount` is `run.replicas`;
//! - every range of `nova_recipe_template_parameters.json` the launcher validates, at both edges;
//! - the SMTJ image of every region `nova_regional_parameters.json` lists.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rft_launch::recipes::{Allowed, Platform, RECIPES, RecipeInfo, smtj_image};
use rft_launch::spec::Spec;
use serde_json::{Map, Value, json};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/hydra_compose.py")
}

fn recipe_file(root: &Path, info: &RecipeInfo) -> PathBuf {
    root.join("recipes_collection/recipes").join(format!("{}.yaml", info.path()))
}

fn load_yaml(path: &Path) -> Value {
    serde_json::from_str(&common::python(&script(), &["load", path.to_str().unwrap()], "")).unwrap()
}

/// Composes `recipe` with `overrides` through Hydra: the composed value of each key, or Hydra's error.
fn compose(root: &Path, info: &RecipeInfo, overrides: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    use std::io::Write;
    let cluster = if info.platform == Platform::HyperPod { "k8s" } else { "sm_jobs" };
    let mut child = Command::new("python3")
        .arg(script())
        .args(["compose", root.to_str().unwrap(), &info.path(), cluster])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(Value::Object(overrides.clone()).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("ModuleNotFoundError"), "pip install -r rft-launch/tests/requirements.txt: {stderr}");
    if out.status.success() { Ok(serde_json::from_slice(&out.stdout).unwrap()) } else { Err(stderr) }
}

fn launch(dir: &Path, spec: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rft-launch"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .arg("--spec")
        .arg(spec)
        .args(args)
        .output()
        .expect("running rft-launch")
}

fn dry_run(dir: &Path, spec_text: &str, args: &[&str]) -> Result<Value, String> {
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = launch(dir, &spec, &all);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn example() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/nova-rft.toml")).unwrap()
}

fn find(name: &str) -> &'static RecipeInfo {
    RecipeInfo::find(name).unwrap()
}

#[test]
fn the_launchers_copy_of_each_recipe_is_the_published_one() {
    let Some(root) = common::nova_recipes("the_launchers_copy_of_each_recipe_is_the_published_one") else { return };
    for info in &RECIPES {
        assert_eq!(info.published().to_json(), load_yaml(&recipe_file(&root, info)), "{}", info.name);
    }
}

/// Every value a spec may set, for a recipe of `platform`, LoRA or not.
fn every_value(platform: Platform, lora: bool) -> String {
    let mut s = String::from(
        "replicas = 8\nmax_length = 16384\nglobal_batch_size = 128\nreasoning_effort = \"low\"\nnumber_generation = 4\n\
         max_new_tokens = 4096\ntemperature = 0.7\ntop_k = 20\nlambda_concurrency_limit = 64\nmax_steps = 200\nsave_steps = 50\n\
         learning_rate = 2e-6\nweight_decay = 0.01\nent_coeff = 0.002\n",
    );
    s.push_str(if platform == Platform::HyperPod { "clip_ratio_high = 0.25\n" } else { "kl_loss_coef = 0.002\n" });
    if lora {
        s.push_str("peft = \"lora\"\nlora_alpha = 64\nlora_plus_lr_ratio = 16.0\n");
    } else {
        s.push_str("peft = \"none\"\n");
    }
    s
}

/// The spec with `values` (TOML lines) in its `[recipe]` table, in place of its own values of
/// the same keys.
fn with_recipe_values(spec: &str, values: &str) -> String {
    let key = |l: &str| l.split('=').next().unwrap().trim().to_owned();
    let keys: Vec<String> = values.lines().map(key).collect();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in spec.lines() {
        if line.starts_with('[') {
            section = line.trim().to_owned();
            out.push(line.to_owned());
            if section == "[recipe]" {
                out.extend(values.lines().map(str::to_owned));
            }
        } else if !(section == "[recipe]" && keys.contains(&key(line))) {
            out.push(line.to_owned());
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn hyperpod_overrides_compose_with_every_hyperpod_recipe_through_hydra() {
    let Some(root) = common::nova_recipes("hyperpod_overrides_compose_with_every_hyperpod_recipe_through_hydra") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut composed = 0;
    for info in RECIPES.iter().filter(|r| r.platform == Platform::HyperPod) {
        let spec = example().replace(&find("nova_lite_2_0_p5_gpu_rft").path(), &info.path());
        for (what, text) in [
            ("the example", spec.clone()),
            ("every value", with_recipe_values(&spec, &every_value(Platform::HyperPod, info.lora))),
            ("a namespace", spec.replace("[hyperpod]\n", "[hyperpod]\nnamespace = \"rft-team\"\n")),
        ] {
            let plan = dry_run(dir.path(), &text, &["job", "hyperpod"]).unwrap_or_else(|e| panic!("{} / {what}: {e}", info.name));
            let args: Vec<&str> = plan[0]["run"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            assert_eq!(args[..3], ["start-job", "--recipe", info.path().as_str()]);
            let i = args.iter().position(|a| *a == "--override-parameters").unwrap();
            let overrides: Map<String, Value> = serde_json::from_str(args[i + 1]).unwrap();
            assert!(!overrides.contains_key("namespace"), "the namespace is the CLI's --namespace");
            if what == "a namespace" {
                assert_eq!(args[3..5], ["--namespace", "rft-team"]);
            }
            let got = compose(&root, info, &overrides).unwrap_or_else(|e| panic!("{} / {what}: Hydra refused: {e}", info.name));
            for (k, v) in &overrides {
                assert_eq!(&got[k], v, "{} / {what}: {k}", info.name);
            }
            assert_eq!(
                got["recipes.training_config.rollout.rewards.api_endpoint.lambda_arn"],
                "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward-bridge"
            );
            if what == "every value" {
                assert_eq!(
                    overrides.len(),
                    if info.lora { 25 } else { 23 },
                    "{}: every value set, and instance_type: {overrides:?}",
                    info.name
                );
                assert_eq!(overrides.contains_key("recipes.training_config.trainer.peft.lora_tuning.alpha"), info.lora);
            }
            composed += 1;
        }
        // The failure: a PEFT key on the full-rank recipe is what Hydra refuses.
        if !info.lora {
            let mut bad = Map::new();
            bad.insert("recipes.training_config.trainer.peft.peft_scheme".into(), json!("lora"));
            let e = compose(&root, info, &bad).unwrap_err();
            assert!(e.contains("Could not override 'recipes.training_config.trainer.peft.peft_scheme'"), "{e}");
        }
        // A value the recipe has no key for, and PEFT against the recipe's variant, are refused.
        let e = dry_run(dir.path(), &with_recipe_values(&spec, "kl_loss_coef = 0.01\n"), &["job", "hyperpod"]).unwrap_err();
        assert!(e.contains(&format!("recipe.kl_loss_coef: recipe {} has no key training_config.trainer.kl_loss_coef", info.name)), "{e}");
        let other = if info.lora { "none" } else { "lora" };
        let e = dry_run(dir.path(), &with_recipe_values(&spec, &format!("peft = \"{other}\"\n")), &["job", "hyperpod"]).unwrap_err();
        assert!(e.contains("recipe.peft") && e.contains("does not match recipe"), "{e}");
    }
    eprintln!("Hydra composed {composed} HyperPod override sets");
}

#[test]
fn hyperpod_refuses_validation_data_and_a_lambda_hyperpod_may_not_call() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example().replace("output_path = ", "validation_data = \"s3://my-bucket/rft/val.jsonl\"\noutput_path = ");
    let e = dry_run(dir.path(), &spec, &["job", "hyperpod"]).unwrap_err();
    assert!(e.contains("job.validation_data: recipe nova_lite_2_0_p5_gpu_rft has no validation data path"), "{e}");
    // The SageMaker rule is HyperPod's: bedrock and smtj take any function name; the case matters.
    let spec = example().replace("\"SageMaker-reward-bridge\"", "\"sagemaker-reward-bridge\"");
    let e = dry_run(dir.path(), &spec, &["job", "hyperpod"]).unwrap_err();
    assert!(e.contains("job.reward_lambda_arn: function \"sagemaker-reward-bridge\" must contain \"SageMaker\""), "{e}");
    dry_run(dir.path(), &spec, &["job", "bedrock"]).unwrap();
    dry_run(dir.path(), &spec, &["job", "smtj"]).unwrap();
}

fn smtj_recipe_of(plan: &Value) -> String {
    plan[0]["body"]["preview"].as_str().unwrap().to_owned()
}

fn leaves(v: &Value, prefix: &str, out: &mut Map<String, Value>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                leaves(x, &format!("{prefix}.{k}"), out);
            }
        }
        x => {
            out.insert(prefix.trim_start_matches('.').to_owned(), x.clone());
        }
    }
}

#[test]
fn smtj_writes_the_published_recipe_with_the_spec_on_it() {
    let Some(root) = common::nova_recipes("smtj_writes_the_published_recipe_with_the_spec_on_it") else { return };
    let dir = tempfile::tempdir().unwrap();
    for info in RECIPES.iter().filter(|r| r.platform == Platform::Smtj) {
        let peft = if info.lora { "lora" } else { "none" };
        let base = example().replace("[recipe]\n", &format!("[recipe]\npeft = \"{peft}\"\n"));
        for (what, text) in [
            ("the example", base.clone()),
            ("every value", with_recipe_values(&example(), &every_value(Platform::Smtj, info.lora)).replace("replicas = 8\n", "")),
        ] {
            let plan = dry_run(dir.path(), &text, &["job", "smtj"]).unwrap_or_else(|e| panic!("{} / {what}: {e}", info.name));
            let yaml = smtj_recipe_of(&plan);
            assert!(yaml.contains(&format!("from recipe {}", info.name)), "{yaml}");
            let file = dir.path().join("written.yaml");
            std::fs::write(&file, &yaml).unwrap();
            let (mut written, mut published) = (Map::new(), Map::new());
            leaves(&load_yaml(&file), "", &mut written);
            leaves(&load_yaml(&recipe_file(&root, info)), "", &mut published);
            let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&written), keys(&published), "{} / {what}: the published recipe's keys, no more, no fewer", info.name);
            // Set by the launcher or the spec; everything else is the published value.
            let spec = Spec::from_toml(&text).unwrap();
            let set = rft_launch::job::recipe_overrides(
                &spec,
                info,
                "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward-bridge",
                Some(written["run.replicas"].as_i64().unwrap()),
            )
            .unwrap();
            for (k, v) in &published {
                match set.iter().find(|(key, _)| key == k) {
                    Some((_, node)) => assert_eq!(&written[k], &node.to_json(), "{} / {what}: {k}", info.name),
                    None => assert_eq!(&written[k], v, "{} / {what}: {k} keeps the published value", info.name),
                }
            }
            if what == "the example" {
                assert_eq!(written["training_config.rollout.rewards.api_endpoint.lambda_concurrency_limit"], 12);
            }
            // One value: the instance count is run.replicas.
            assert_eq!(plan[1]["body"]["ResourceConfig"]["InstanceCount"], written["run.replicas"]);
            assert_eq!(written["run.replicas"], 4, "the example's smtj.instance_count");
            // Hydra composes the written recipe's every value onto the published one.
            let overrides: Map<String, Value> =
                written.iter().filter(|(_, v)| !v.is_null() || info.lora).map(|(k, v)| (format!("recipes.{k}"), v.clone())).collect();
            let got = compose(&root, info, &overrides).unwrap_or_else(|e| panic!("{} / {what}: Hydra refused: {e}", info.name));
            assert_eq!(got["recipes.training_config.trainer.max_steps"], written["training_config.trainer.max_steps"]);
        }
        // Full rank is YAML null, not the string "null".
        if !info.lora {
            let plan = dry_run(dir.path(), &base, &["job", "smtj"]).unwrap();
            assert!(smtj_recipe_of(&plan).contains("\n      peft_scheme: null\n"), "{}", smtj_recipe_of(&plan));
        }
    }
    // InstanceCount and run.replicas cannot disagree.
    let e = dry_run(dir.path(), &with_recipe_values(&example(), "replicas = 2\n"), &["job", "smtj"]).unwrap_err();
    assert!(e.contains("recipe.replicas = 2 differs from smtj.instance_count = 4"), "{e}");
}

fn template_param<'a>(params: &'a Value, info: &RecipeInfo, name: &str) -> &'a Value {
    &params["templates"][info.template]["recipe_override_parameters"][name]
}

/// Parameters of the templates with a range that the launcher does not validate, and why.
const NOT_VALIDATED: [(&str, &str); 1] = [("max_context_length", "not a key of the recipe (nor of its template's recipe_template)")];

/// A spec for `info` with one recipe value set.
fn spec_for(info: &RecipeInfo, field: &str, value: &str) -> String {
    let (section, key) = field.split_once('.').unwrap();
    let mut text = example();
    if info.platform == Platform::HyperPod {
        text = text.replace(&find("nova_lite_2_0_p5_gpu_rft").path(), &info.path());
    } else {
        text = text.replace("[smtj]\n", &format!("[smtj]\nrecipe = \"{}\"\n", info.name));
    }
    // Drop the example's own value of the field, then set it.
    let text: String = text.lines().filter(|l| l.split('=').next().unwrap().trim() != key).collect::<Vec<_>>().join("\n");
    text.replacen(&format!("[{section}]\n"), &format!("[{section}]\n{key} = {value}\n"), 1)
}

fn plan_for(info: &RecipeInfo, text: &str) -> Result<(), String> {
    let spec = Spec::from_toml(text).map_err(|e| e.to_string())?;
    spec.validate().map_err(|e| e.to_string())?;
    match info.platform {
        Platform::HyperPod => rft_launch::job::hyperpod::plan(&spec).map(drop).map_err(|e| e.to_string()),
        Platform::Smtj => rft_launch::job::smtj::plan(&spec).map(drop).map_err(|e| e.to_string()),
    }
}

#[test]
fn every_published_range_is_validated_at_both_edges() {
    let Some(root) = common::nova_recipes("every_published_range_is_validated_at_both_edges") else { return };
    let params: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("launcher/recipe_templatization/nova/nova_recipe_template_parameters.json")).unwrap(),
    )
    .unwrap();
    let mut edges = 0;
    for info in &RECIPES {
        let template = params["templates"][info.template]["recipe_override_parameters"].as_object().unwrap();
        // Every parameter of the template with a range or a set is validated (or listed as not).
        for (name, p) in template {
            if p.get("min").is_some() || p.get("enum").is_some() {
                assert!(
                    info.allowed.iter().any(|(n, _, _)| n == name) || NOT_VALIDATED.iter().any(|(n, _)| n == name),
                    "{}: the template's {name} has a range the launcher does not check",
                    info.name
                );
            }
        }
        for (name, field, allowed) in info.allowed {
            let p = template_param(&params, info, name);
            let ok = |v: &str| plan_for(info, &spec_for(info, field, v));
            let refused = |v: &str| {
                let e = ok(v).expect_err(&format!("{}: {field} = {v} accepted", info.name));
                assert!(e.starts_with(field), "{}: {field} = {v}: {e}", info.name);
            };
            match allowed {
                Allowed::Int(lo, hi) => {
                    assert_eq!((p["min"].as_i64(), p["max"].as_i64()), (Some(*lo), Some(*hi)), "{} {name}", info.name);
                    ok(&lo.to_string()).unwrap_or_else(|e| panic!("{} {field} = {lo}: {e}", info.name));
                    ok(&hi.to_string()).unwrap_or_else(|e| panic!("{} {field} = {hi}: {e}", info.name));
                    refused(&(lo - 1).to_string());
                    refused(&(hi + 1).to_string());
                }
                Allowed::Float(lo, hi) => {
                    assert_eq!((p["min"].as_f64(), p["max"].as_f64()), (Some(*lo), Some(*hi)), "{} {name}", info.name);
                    ok(&format!("{lo:e}")).unwrap_or_else(|e| panic!("{} {field} = {lo}: {e}", info.name));
                    ok(&format!("{hi:e}")).unwrap_or_else(|e| panic!("{} {field} = {hi}: {e}", info.name));
                    refused(&format!("{:e}", if *lo > 0.0 { lo * 0.99 } else { -1e-3 }));
                    refused(&format!("{:e}", hi * 1.01));
                }
                Allowed::IntEnum(set) => {
                    let file: Vec<i64> = p["enum"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
                    assert_eq!(file, *set, "{} {name}", info.name);
                    for v in *set {
                        ok(&v.to_string()).unwrap_or_else(|e| panic!("{} {field} = {v}: {e}", info.name));
                    }
                    refused(&(set[0] - 1).to_string());
                    refused(&(set[set.len() - 1] + 1).to_string());
                    refused(&(set[0] + 1).to_string());
                }
            }
            edges += 2;
        }
        // The recipes document low, high or null; Bedrock's medium is not one of them.
        let e = plan_for(info, &spec_for(info, "recipe.reasoning_effort", "\"medium\"")).unwrap_err();
        assert!(e.contains("recipe.reasoning_effort = \"medium\" is not allowed: one of low | high | none"), "{e}");
    }
    eprintln!("{edges} range edges checked against nova_recipe_template_parameters.json");
}

#[test]
fn smtj_images_are_the_published_ones_of_every_region() {
    let Some(root) = common::nova_recipes("smtj_images_are_the_published_ones_of_every_region") else { return };
    let path = root.join("launcher/recipe_templatization/nova/nova_regional_parameters.json");
    let regional: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for info in &RECIPES {
        let published = regional[info.name]["sm_jobs"]["container_image"]["prod"].as_object().cloned().unwrap_or_default();
        assert_eq!(published.is_empty(), info.platform == Platform::HyperPod, "{}", info.name);
        for (region, uri) in &published {
            assert_eq!(smtj_image(info, region, None).as_deref(), uri.as_str(), "{} {region}", info.name);
            assert_eq!(smtj_image(info, region, Some(&regional)).as_deref(), uri.as_str(), "{} {region}", info.name);
            let text = example().replace("us-east-1", region).replace("[smtj]\n", &format!("[smtj]\nrecipe = \"{}\"\n", info.name));
            let plan = dry_run(dir.path(), &text, &["job", "smtj"]).unwrap();
            assert_eq!(plan[1]["body"]["AlgorithmSpecification"]["TrainingImage"], *uri, "{} {region}", info.name);
            checked += 1;
        }
        for region in ["eu-west-1", "eu-west-2", "ap-southeast-2"] {
            assert_eq!(published.contains_key(region), smtj_image(info, region, None).is_some(), "{} {region}", info.name);
        }
    }
    // A region without a published image asks for smtj.image_uri and names the regions.
    let e = dry_run(dir.path(), &example().replace("us-east-1", "eu-west-1"), &["job", "smtj"]).unwrap_err();
    assert!(e.contains("smtj.image_uri: required in eu-west-1") && e.contains("us-east-1, us-west-2, ap-northeast-1"), "{e}");
    // With the published file given, the image is read from it.
    let text = example()
        .replace("us-east-1", "us-west-2")
        .replace("[smtj]\n", &format!("[smtj]\nregional_parameters = {:?}\n", path.to_str().unwrap()));
    let plan = dry_run(dir.path(), &text, &["job", "smtj"]).unwrap();
    assert!(plan[1]["body"]["AlgorithmSpecification"]["TrainingImage"].as_str().unwrap().ends_with(":SM-TJ-RFT-V2-latest"));
    eprintln!("{checked} published SMTJ images checked");
}
