//! The rewards config: what loads, what is refused (with a message naming the problem), and how
//! composite rewards and failure policies score.

mod common;

use std::path::Path;

use common::{host, plugin_path, rollout};
use reward_server::config::Rewards;
use reward_server::engine::Status;

fn load(toml: &str) -> anyhow::Result<Rewards> {
    let guest = plugin_path("limits-guest");
    let text = toml.replace("GUEST", guest.to_str().unwrap());
    Rewards::from_toml(host(), &text, Path::new("/"))
}

fn load_err(toml: &str) -> String {
    format!("{:#}", load(toml).expect_err("config should be refused"))
}

const LENGTH: &str = r#"
[rewards.length]
plugin = "GUEST"
limits = { fuel = 20_000_000 }
"#;

#[test]
fn a_plugin_reward_loads_with_provenance() {
    let rewards = load(LENGTH).unwrap();
    let reward = rewards.get("length").unwrap();
    let scored = reward.score_batch(&[rollout("r1", "hello")]);
    assert_eq!(scored[0].id, "r1");
    assert_eq!(scored[0].score, Some(5.0));
    assert_eq!(scored[0].status, Status::Ok);
    assert!(scored[0].instructions > 0);
    assert_eq!(scored[0].provenance.reward, "length");
    assert_eq!(scored[0].provenance.plugin_sha256.len(), 64);
    assert_eq!(scored[0].provenance.config_hash.len(), 64);
}

#[test]
fn the_config_hash_changes_with_config_and_limits() {
    let a = load(LENGTH).unwrap();
    let b = load(&LENGTH.replace("20_000_000", "30_000_000")).unwrap();
    let c = load(&format!("{LENGTH}config = {{ x = 1 }}\n")).unwrap();
    let hash = |r: &Rewards| r.get("length").unwrap().provenance.config_hash.clone();
    assert_ne!(hash(&a), hash(&b));
    assert_ne!(hash(&a), hash(&c));
    assert_eq!(hash(&a), hash(&load(LENGTH).unwrap()), "same config, same hash");
}

#[test]
fn the_config_hash_is_a_documented_encoding() {
    // sha256 of compact JSON with sorted keys: the plugin's `config`, `fixtures` (the granted
    // directory or null), `limits` as the config file spells them, `on_error`. Written out here by
    // hand, so a change of encoding (which would change every result's provenance) is a decision.
    use sha2::{Digest, Sha256};
    let rewards = load(&format!("{LENGTH}config = {{ x = 1 }}\non_error = \"abstain\"\n")).unwrap();
    let canonical = concat!(
        r#"{"config":{"x":1},"fixtures":null,"#,
        r#""limits":{"fuel":20000000,"instance_reuse":1,"max_metrics":256,"max_reason_bytes":65536,"memory_mib":256,"timeout_ms":10000},"#,
        r#""on_error":"abstain"}"#
    );
    let expected: String = Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rewards.get("length").unwrap().provenance.config_hash, expected);
}

#[test]
fn unknown_keys_are_refused_by_name() {
    assert!(load_err("[rewards.x]\nplugn = \"GUEST\"\n").contains("unknown field `plugn`"));
    assert!(load_err("plugin_dirs = \"x\"\n").contains("unknown field `plugin_dirs`"));
    assert!(load_err("[rewards.x]\nplugin = \"GUEST\"\nlimits = { fule = 1 }\n").contains("unknown field `fule`"));
    assert!(load_err("[rewards.x]\nplugin = \"GUEST\"\non_error = \"ignore\"\n").contains("unknown variant `ignore`"));
}

#[test]
fn a_missing_plugin_names_the_path_and_the_fix() {
    let err = load_err("[rewards.x]\nplugin = \"nosuch\"\n");
    assert!(err.contains("reward `x`") && err.contains("plugin `nosuch` not found at /target/plugins/nosuch.wasm"), "{err}");
    assert!(err.contains("scripts/build-plugins.sh"), "{err}");
}

#[test]
fn bad_limits_are_refused() {
    let err = load_err("[rewards.x]\nplugin = \"GUEST\"\nlimits = { memory_mib = 0 }\n");
    assert!(err.contains("reward `x`") && err.contains("memory_mib must be at least 1"), "{err}");
    let err = load_err("[rewards.x]\nplugin = \"GUEST\"\nlimits = { instance_reuse = 0 }\n");
    assert!(err.contains("instance_reuse must be at least 1"), "{err}");
}

#[test]
fn an_empty_config_is_refused() {
    assert!(load_err("").contains("the config defines no rewards"));
    assert!(load_err("plugin_dir = \"x\"\n").contains("the config defines no rewards"));
}

#[test]
fn reward_shapes_are_checked() {
    assert!(load_err("[rewards.x]\n").contains("set `plugin` (a plugin reward) or `components` + `formula`"));
    assert!(load_err("[rewards.x]\nplugin = \"GUEST\"\nformula = \"1\"\n").contains("not both"));
    assert!(load_err("[rewards.x]\ncomponents = { a = \"y\" }\n").contains("needs a `formula`"));
    let err = load_err(&format!("{LENGTH}[rewards.x]\ncomponents = {{ a = \"length\" }}\nformula = \"a\"\nlimits = {{ fuel = 1 }}\n"));
    assert!(
        err.contains("a composite reward takes no `config`, `config_file`, `limits`, `fixtures`, `interpreter`, `judge` or `groups`"),
        "{err}"
    );
    let err = load_err(&format!("{LENGTH}[rewards.x]\ncomponents = {{ a = \"length\" }}\nformula = \"a\"\ngroups = true\n"));
    assert!(err.contains("set them on its components (a composite scores whole groups when one of its components does)"), "{err}");
    let err = load_err(&format!(
        "{LENGTH}[rewards.x]\ncomponents = {{ a = \"length\" }}\nformula = \"a\"\ninterpreter = {{ plugin = \"python-runner\" }}\n"
    ));
    assert!(err.contains("takes no `config`, `config_file`, `limits`, `fixtures`, `interpreter`, `judge` or `groups`"), "{err}");
    let err = load_err(&format!("{LENGTH}[rewards.y]\nplugin = \"GUEST\"\ninterpreter = {{ fuel = 1 }}\n"));
    assert!(err.contains("`interpreter`: `plugin` is missing"), "{err}");
    let err = load_err(&format!("{LENGTH}[rewards.y]\nplugin = \"GUEST\"\ninterpreter = {{ plugin = \"no-such-runner\" }}\n"));
    assert!(err.contains("interpreter `no-such-runner` not found"), "{err}");
}

#[test]
fn a_fixtures_directory_must_exist() {
    let err = load_err("[rewards.x]\nplugin = \"GUEST\"\nfixtures = \"no/such/dir\"\n");
    assert!(err.contains("reward `x`") && err.contains("`fixtures`: fixtures directory") && err.contains("no/such/dir"), "{err}");
}

#[test]
fn composite_errors_name_the_problem() {
    let composite = |components: &str, formula: &str| {
        load_err(&format!("{LENGTH}[rewards.c]\ncomponents = {{ {components} }}\nformula = \"{formula}\"\n"))
    };
    let err = composite("a = \"length\"", "a +");
    assert!(err.contains("reward `c`") && err.contains("`formula`: expected a number, a name or `(`") && err.contains("column 4"), "{err}");
    let err = composite("a = \"length\"", "b * 2");
    assert!(err.contains("`formula` names `b`, which is not one of its components (a)"), "{err}");
    let err = composite("a = \"nosuch\"", "a");
    assert!(err.contains("names component reward `nosuch`, which is not defined"), "{err}");
    let err = composite("a = \"length\"", "a.nope");
    assert!(err.contains("plugin \"limits-guest\" declares no metric `nope` (it declares: length)"), "{err}");
    let err = composite("\"a-b\" = \"length\"", "1");
    assert!(err.contains("component alias `a-b` must be a name usable in the formula"), "{err}");
}

#[test]
fn cycles_are_refused() {
    let err =
        load_err("[rewards.a]\ncomponents = { x = \"b\" }\nformula = \"x\"\n[rewards.b]\ncomponents = { y = \"a\" }\nformula = \"y\"\n");
    assert!(err.contains("rewards form a cycle: a -> b -> a"), "{err}");
}

#[test]
fn composites_combine_scores_and_metrics_and_propagate_failures() {
    let rewards = load(&format!(
        "{LENGTH}[rewards.capped]\ncomponents = {{ len = \"length\" }}\nformula = \"min(len.length / 10, 1) + (len >= 3)\"\n"
    ))
    .unwrap();
    let reward = rewards.get("capped").unwrap();
    let scored = reward.score_batch(&[rollout("short", "ab"), rollout("long", "abcdefghijklmnop"), rollout("bad", "loop")]);
    assert_eq!(scored[0].score, Some(0.2));
    assert_eq!(scored[1].score, Some(2.0));
    let names: Vec<&str> = scored[1].metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["len", "len.length"]);
    assert_eq!(scored[2].status, Status::Timeout);
    assert!(scored[2].error.as_deref().unwrap().starts_with("component `len`: plugin \"limits-guest\""), "{:?}", scored[2].error);
    assert_eq!(scored[2].score, Some(0.0), "on_error defaults to zero");
    assert_eq!(scored[2].instructions, 20_000_000);
}

#[test]
fn a_non_finite_formula_result_is_a_plugin_error() {
    let rewards = load(&format!("{LENGTH}[rewards.ratio]\ncomponents = {{ len = \"length\" }}\nformula = \"1 / (len - 2)\"\n")).unwrap();
    let scored = rewards.get("ratio").unwrap().score_batch(&[rollout("x", "ab")]);
    assert_eq!(scored[0].status, Status::PluginError);
    assert!(scored[0].error.as_deref().unwrap().contains("gave inf (division by zero?)"), "{:?}", scored[0].error);
}

#[test]
fn failure_policies() {
    let rewards = load(&format!(
        "{LENGTH}[rewards.abstaining]\nplugin = \"GUEST\"\non_error = \"abstain\"\n[rewards.strict]\nplugin = \"GUEST\"\non_error = \"fail\"\n"
    ))
    .unwrap();
    let batch = [rollout("ok", "abc"), rollout("bad", "panic")];

    let zero = rewards.get("length").unwrap();
    let scored = zero.score_batch(&batch);
    assert_eq!((scored[1].score, scored[1].status), (Some(0.0), Status::PluginError));
    assert!(zero.fatal(&scored).is_none());

    let abstain = rewards.get("abstaining").unwrap();
    let scored = abstain.score_batch(&batch);
    assert_eq!((scored[0].score, scored[1].score), (Some(3.0), None));
    assert!(abstain.fatal(&scored).is_none());

    let strict = rewards.get("strict").unwrap();
    let scored = strict.score_batch(&batch);
    assert_eq!(strict.fatal(&scored).map(|s| s.id.as_str()), Some("bad"));
    assert!(strict.fatal(&scored[..1]).is_none());
}

#[test]
fn unknown_reward_lists_the_known_ones() {
    let rewards = load(LENGTH).unwrap();
    let err = rewards.get("lenght").unwrap_err().to_string();
    assert_eq!(err, "unknown reward `lenght` (known: length)");
}

/// A process that serves one reward (the Lambda bridge in process) builds that reward and its
/// components only: a reward whose plugin is missing elsewhere in the file does not stop it, a
/// typo anywhere still does, and an unknown name lists the known ones.
#[test]
fn load_one_builds_the_named_reward_and_its_components_only() {
    let dir = tempfile::tempdir().unwrap();
    let guest = plugin_path("limits-guest");
    let path = dir.path().join("rewards.toml");
    let text = format!(
        "[rewards.length]\nplugin = {guest:?}\n\n[rewards.double]\ncomponents = {{ l = \"length\" }}\nformula = \"2 * l\"\n\n[rewards.broken]\nplugin = \"no-such-plugin\"\n"
    );
    std::fs::write(&path, &text).unwrap();
    let one = Rewards::load_one(host(), &path, "double").unwrap();
    let names: Vec<&str> = one.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["double", "length"]);
    let all = format!("{:#}", Rewards::load(host(), &path).unwrap_err());
    assert!(all.contains("plugin `no-such-plugin` not found"), "{all}");
    let unknown = format!("{:#}", Rewards::load_one(host(), &path, "lenght").unwrap_err());
    assert!(unknown.contains("unknown reward `lenght` (known: broken, double, length)"), "{unknown}");
    std::fs::write(&path, format!("{text}\n[rewards.typo]\nplugn = \"x\"\n")).unwrap();
    let typo = format!("{:#}", Rewards::load_one(host(), &path, "double").unwrap_err());
    assert!(typo.contains("plugn"), "{typo}");
}
