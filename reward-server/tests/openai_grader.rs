//! The `openai-grader` plugin end to end: OpenAI grader JSON objects as rewards' `config` in a
//! rewards.toml, rollouts in both shapes scored by the real `reward-server score` binary, and
//! graders the plugin refuses failing at load time with the field named. `python` graders (and a
//! `multi` grader with one inside) run in the real `python-runner` interpreter, granted as the
//! `code` reward is in rewards.toml.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::server::Server;
use common::{plugin_path, repo_root, score_file};
use serde_json::{Value, json};

/// A rewards.toml in `dir` whose rewards all run the openai-grader plugin; `rewards` is the TOML
/// of the reward tables, with `PLUGIN` standing for the plugin's path.
fn rewards_toml(dir: &Path, rewards: &str) -> PathBuf {
    let path = dir.join("rewards.toml");
    let plugin = plugin_path("openai-grader");
    std::fs::write(&path, rewards.replace("PLUGIN", &plugin.display().to_string())).unwrap();
    path
}

const REWARDS: &str = r#"
[rewards.exact]
plugin = "PLUGIN"
description = "OpenAI string_check: the answer equals the dataset's reference_answer"
config = { type = "string_check", name = "exact", input = "{{sample.output_text}}", reference = "{{item.reference_answer}}", operation = "eq" }

[rewards.mentions_city]
plugin = "PLUGIN"
config = { type = "string_check", name = "mentions city", input = "{{ sample.output_text }}", reference = "{{item.city}}", operation = "ilike" }

[rewards.similar]
plugin = "PLUGIN"

[rewards.similar.config]
type = "text_similarity"
name = "rouge"
input = "{{sample.output_text}}"
reference = "{{item.reference_answer}}"
evaluation_metric = "rouge_l"
pass_threshold = 0.85

[rewards.fuzzy]
plugin = "PLUGIN"
config = { type = "text_similarity", name = "fuzzy", input = "{{sample.output_text}}", reference = "{{item.reference_answer}}", evaluation_metric = "fuzzy_match" }
"#;

fn nova(id: &str, answer: &str, reference: &str, extra: Value) -> Value {
    let mut row = json!({
        "id": id,
        "messages": [
            {"role": "user", "content": "Where is the cat?"},
            {"role": "nova_assistant", "content": [{"type": "text", "text": answer}]}
        ],
        "reference_answer": reference,
    });
    row.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    row
}

fn input() -> String {
    [
        nova("same", "the cat sat on the mat", "the cat sat on the mat", json!({"city": "Paris"})),
        nova("close", "the cat is on the mat", "the cat sat on the mat", json!({"city": "Paris"})),
        json!({"id": "plain", "prompt": "q", "completion": "wuzzy fuzzy was a bear in PARIS", "reference": "fuzzy wuzzy was a bear in paris"}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect()
}

fn score(config: &Path, reward: &str, input: &str) -> (Output, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("in.jsonl");
    std::fs::write(&input_path, input).unwrap();
    score_file(config, reward, &input_path)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn scores(config: &Path, reward: &str) -> Vec<(String, String, f64)> {
    let (out, lines) = score(config, reward, &input());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    lines
        .iter()
        .map(|l| (l["id"].as_str().unwrap().to_owned(), l["status"].as_str().unwrap().to_owned(), l["score"].as_f64().unwrap()))
        .collect()
}

fn ok(rows: &[(&str, f64)]) -> Vec<(String, String, f64)> {
    rows.iter().map(|(id, s)| ((*id).to_owned(), "OK".to_owned(), *s)).collect()
}

#[test]
fn string_check_scores_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = rewards_toml(dir.path(), REWARDS);
    assert_eq!(scores(&config, "exact"), ok(&[("same", 1.0), ("close", 0.0), ("plain", 0.0)]));

    // `item.city` is a top-level field of the Nova row (the rollout's metadata); `ilike` ignores
    // case. The plain row has no `city`: invalid input naming the variable, scored 0 (on_error
    // defaults to zero), the other rows unaffected.
    let (out, lines) = score(&config, "mentions_city", &input());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let statuses: Vec<&str> = lines.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["OK", "OK", "INVALID_INPUT"]);
    // "the cat sat on the mat" does not contain "Paris".
    assert_eq!(lines[0]["score"], 0.0);
    let error = lines[2]["error"].as_str().unwrap();
    assert!(error.contains("item.city") && error.contains("`reference`"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let config = rewards_toml(
        dir.path(),
        r#"
[rewards.city]
plugin = "PLUGIN"
config = { type = "string_check", input = "{{sample.output_text}}", reference = "{{item.city}}", operation = "ilike" }
"#,
    );
    let rows = [
        nova("in", "It sits in PARIS, on a mat.", "x", json!({"city": "paris"})),
        nova("out", "It sits in Lyon.", "x", json!({"city": "paris"})),
    ];
    let input: String = rows.iter().map(|v| format!("{v}\n")).collect();
    let (out, lines) = score(&config, "city", &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: Vec<(&str, f64)> = lines.iter().map(|l| (l["id"].as_str().unwrap(), l["score"].as_f64().unwrap())).collect();
    assert_eq!(got, [("in", 1.0), ("out", 0.0)]);
    assert_eq!(lines[0]["metrics"]["score"], 1.0);
}

#[test]
fn text_similarity_scores_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = rewards_toml(dir.path(), REWARDS);
    // rouge-score 0.1.2: ROUGE-L F of "the cat is on the mat" against "the cat sat on the mat" is
    // 5/6; the plain row's longest common subsequence is 6 of its 7 tokens each side (after the
    // lowercasing tokenizer: "wuzzy" or "fuzzy", then "was a bear in paris") = 6/7.
    let rouge = scores(&config, "similar");
    let want = [("same", 1.0), ("close", 5.0 / 6.0), ("plain", 6.0 / 7.0)];
    assert_eq!(rouge.len(), 3);
    for ((id, status, got), (want_id, want)) in rouge.iter().zip(want) {
        assert_eq!((id.as_str(), status.as_str()), (want_id, "OK"));
        assert!((got - want).abs() < 1e-12, "{id}: {got} != {want}");
    }
    // pass_threshold 0.85 is reported as the `passed` metric, not applied to the score.
    let (_, lines) = score(&config, "similar", &input());
    let passed: Vec<f64> = lines.iter().map(|l| l["metrics"]["passed"].as_f64().unwrap()).collect();
    assert_eq!(passed, [1.0, 0.0, 1.0]);

    // rapidfuzz 3.14.6: WRatio(..., processor=default_process) / 100, values from the Python package.
    let fuzzy = scores(&config, "fuzzy");
    assert_eq!(fuzzy[0], ("same".to_owned(), "OK".to_owned(), 1.0));
    for (row, want) in [(1, FUZZY_CLOSE), (2, FUZZY_PLAIN)] {
        assert_eq!(fuzzy[row].1, "OK");
        assert!((fuzzy[row].2 - want).abs() < 1e-12, "{:?} != {want}", fuzzy[row]);
    }
}

/// `fuzz.WRatio("the cat is on the mat", "the cat sat on the mat",
/// processor=utils.default_process) / 100` with rapidfuzz 3.14.6.
const FUZZY_CLOSE: f64 = 0.9302325581395349;
/// The same for "wuzzy fuzzy was a bear in PARIS" and "fuzzy wuzzy was a bear in paris": the token
/// sort ratio (100) scaled by 0.95.
const FUZZY_PLAIN: f64 = 0.95;

#[track_caller]
fn load_error(grader: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = rewards_toml(dir.path(), &format!("[rewards.graded]\nplugin = \"PLUGIN\"\nconfig = {grader}\n"));
    let (out, lines) = score(&config, "graded", &input());
    assert_ne!(out.status.code(), Some(0), "the config loaded: {grader}");
    assert!(lines.is_empty(), "nothing scored");
    stderr(&out)
}

#[test]
fn refused_graders_fail_at_load_naming_the_field() {
    let err = load_error(r#"{ type = "multi", name = "both", graders = {}, calculate_output = "a" }"#);
    assert!(err.contains("reward `graded`"), "{err}");
    assert!(err.contains("openai-grader") && err.contains("`graders` is empty"), "{err}");

    // A multi grader's formula and sub-graders are checked at load: the column of an unknown
    // name, the key of a broken sub-grader, a nested multi.
    let exact = r#"{ type = "string_check", input = "{{sample.output_text}}", reference = "{{item.reference_answer}}", operation = "eq" }"#;
    let err = load_error(&format!(r#"{{ type = "multi", graders = {{ exact = {exact} }}, calculate_output = "exact + fuzzy" }}"#));
    assert!(err.contains("`calculate_output`") && err.contains("column 9: unknown name `fuzzy`; the graders are exact"), "{err}");
    let err = load_error(&format!(r#"{{ type = "multi", graders = {{ exact = {exact} }}, calculate_output = "max(exact" }}"#));
    assert!(err.contains("column 10: expected `)` to close the `(` at column 4 of `max(`"), "{err}");
    let err = load_error(r#"{ type = "multi", graders = { a = { type = "string_check", input = "x" } }, calculate_output = "a" }"#);
    assert!(err.contains("`graders.a`: missing field `reference`"), "{err}");
    let err = load_error(&format!(
        r#"{{ type = "multi", graders = {{ inner = {{ type = "multi", graders = {{ exact = {exact} }}, calculate_output = "exact" }} }}, calculate_output = "inner" }}"#
    ));
    assert!(err.contains("`graders.inner`: a multi grader cannot contain another multi grader"), "{err}");
    let err = load_error(r#"{ type = "python", name = "py", source = 3 }"#);
    assert!(err.contains("`source` must be a string"), "{err}");

    let err = load_error(
        r#"{ type = "label_model", name = "l", model = "m", input = [{ role = "user", content = "x" }], labels = ["a"], passing_labels = ["b"] }"#,
    );
    assert!(err.contains("passing_labels"), "{err}");

    let err = load_error(r#"{ type = "string_check", input = "{{sample.output_text}}", reference = "x", operation = "contains" }"#);
    assert!(err.contains("`operation`") && err.contains("\"contains\""), "{err}");

    let err =
        load_error(r#"{ type = "text_similarity", input = "{{sample.output_text}}", reference = "x", evaluation_metric = "cosine_sim" }"#);
    assert!(err.contains("`evaluation_metric`") && err.contains("cosine_sim"), "{err}");

    let err = load_error(r#"{ type = "string_check", input = "{{sample.output_tools}}", reference = "x", operation = "eq" }"#);
    assert!(err.contains("`input`") && err.contains("sample.output_tools"), "{err}");
}

/// examples/openai-graders.toml (bare plugin name, `plugin_dir`) on examples/capitals.plain.jsonl.
#[test]
fn the_example_config_scores_the_example_rollouts() {
    plugin_path("openai-grader"); // built, or a clear message
    let config = repo_root().join("examples/openai-graders.toml");
    let input = repo_root().join("examples/capitals.plain.jsonl");
    let run = |reward: &str| {
        let (out, lines) = score_file(&config, reward, &input);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        lines.iter().map(|l| l["score"].as_f64().unwrap()).collect::<Vec<_>>()
    };
    // p1 "<think>Paris.</think><answer>Paris</answer>" / "Paris", p2 "...Final answer: Rome" /
    // "rome", p3 "<answer>Barcelona</answer>" / "Madrid": no completion is exactly its reference,
    // two mention it ignoring case.
    assert_eq!(run("exact_capital"), [0.0, 0.0, 0.0]);
    assert_eq!(run("mentions_capital"), [1.0, 1.0, 0.0]);
}

/// The model graders of `examples/openai-model-graders.toml` through the judge capability, with the
/// example's `[judges.local]` pointed at a scripted judge that grades by the rendered prompt: the
/// answer is right when the model answer mentions the reference (the stand-in reads both off the
/// prompt, so a wrongly rendered template fails the scores, not only the prompt check).
#[test]
fn the_model_graders_example_scores_through_a_judge() {
    use reward_server_harness::fake_judge::{FakeJudge, Reply, Script};
    let judge = FakeJudge::start(Script::new(Reply::echo(|request| {
        let messages = request["messages"].as_array().unwrap();
        let user = messages.last().unwrap()["content"].as_str().unwrap().to_owned();
        let (reference, answer) = user.strip_prefix("Reference: ").unwrap().split_once(". Model answer: ").unwrap();
        let right = answer.to_lowercase().contains(&reference.to_lowercase());
        let labels = messages.iter().any(|m| m["content"].as_str().unwrap().contains("correct or incorrect"));
        match (labels, right) {
            (true, true) => "correct".into(),
            (true, false) => "incorrect".into(),
            (false, right) => format!("{{\"result\": {}, \"steps\": []}}", if right { 1.0 } else { 0.0 }),
        }
    })));
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo_root().join("examples/openai-model-graders.toml")).unwrap();
    let plugins = plugin_path("openai-grader").parent().unwrap().display().to_string();
    let text = example
        .replace("http://127.0.0.1:8080/v1", &judge.url())
        .replace("plugin_dir = \"../target/plugins\"", &format!("plugin_dir = \"{plugins}\""));
    let config = dir.path().join("rewards.toml");
    std::fs::write(&config, text).unwrap();
    let input = repo_root().join("examples/capitals.plain.jsonl");
    for reward in ["judged_capital", "capital_label"] {
        let (out, lines) = score_file(&config, reward, &input);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let scores: Vec<f64> = lines.iter().map(|l| l["score"].as_f64().unwrap_or_else(|| panic!("{l}"))).collect();
        assert_eq!(scores, [1.0, 1.0, 0.0], "{reward}: {lines:?}");
        assert!(lines.iter().all(|l| l["metrics"]["judge_calls"] == 1.0), "{lines:?}");
    }
    let sent = judge.completions();
    assert_eq!(sent.len(), 6, "three rollouts, two graders, no repeats");
    let p3 = sent.iter().map(|r| r.body.clone().unwrap()).find(|b| b["messages"].to_string().contains("Barcelona")).unwrap();
    let messages = p3["messages"].as_array().unwrap();
    assert_eq!(
        messages.last().unwrap(),
        &json!({"role": "user", "content": "Reference: Madrid. Model answer: <answer>Barcelona</answer>"})
    );
    assert!(messages[0]["content"].as_str().unwrap().starts_with("You are an expert grader."), "{p3}");
    assert_eq!((p3["seed"].as_u64(), p3["max_tokens"].as_u64(), p3["temperature"].as_f64()), (Some(7), Some(256), Some(0.0)), "{p3}");

    // The pairwise grader against a judge that always prefers the first answer: its two orders
    // disagree, so every rollout scores 0.5 with pairwise_agreement 0 (position bias reported).
    let biased = FakeJudge::start(Script::new(Reply::text("A")));
    let text = std::fs::read_to_string(&config).unwrap().replace(&judge.url(), &biased.url());
    std::fs::write(&config, text).unwrap();
    let (out, lines) = score_file(&config, "capital_pairwise", &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for line in &lines {
        assert_eq!(line["score"], 0.5, "{line}");
        assert_eq!(
            (line["metrics"]["pairwise_agreement"].as_f64(), line["metrics"]["judge_calls"].as_f64()),
            (Some(0.0), Some(2.0)),
            "{line}"
        );
    }
    let orders: Vec<String> =
        biased.completions().iter().map(|r| r.body.as_ref().unwrap()["messages"][1]["content"].as_str().unwrap().to_owned()).collect();
    assert!(orders.contains(&"Answer A: <answer>Barcelona</answer>\nAnswer B: Madrid".to_owned()), "{orders:?}");
    assert!(orders.contains(&"Answer A: Madrid\nAnswer B: <answer>Barcelona</answer>".to_owned()), "{orders:?}");
}

/// `text_similarity` with `cosine`: the input's and the reference's embeddings from the judge's
/// `embedding_model` (the scripted judge embeds a text as its letter counts, so the expected
/// cosines are computed here from the texts themselves).
#[test]
fn cosine_similarity_asks_the_judges_embedding_model() {
    use reward_server_harness::fake_judge::{FakeJudge, Reply, Script, letter_embedding};
    let judge = FakeJudge::start(Script::new(Reply::text("unused")));
    let dir = tempfile::tempdir().unwrap();
    let config = rewards_toml(
        dir.path(),
        &format!(
            "[judges.j]\nurl = \"{}\"\nmodel = \"m\"\nembedding_model = \"text-embedding-3-large\"\n\n\
             [rewards.cos]\nplugin = \"PLUGIN\"\njudge = \"j\"\n\
             config = {{ type = \"text_similarity\", name = \"cos\", input = \"{{{{sample.output_text}}}}\", reference = \"{{{{item.reference_answer}}}}\", evaluation_metric = \"cosine\" }}\n",
            judge.url()
        ),
    );
    let input = repo_root().join("examples/capitals.plain.jsonl");
    let (out, lines) = score_file(&config, "cos", &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = std::fs::read_to_string(&input).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (row, line) in rows.iter().zip(&lines) {
        let (a, b) = (letter_embedding(row["completion"].as_str().unwrap()), letter_embedding(row["reference"].as_str().unwrap()));
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let expected = dot / (norm(&a) * norm(&b));
        let got = line["score"].as_f64().unwrap_or_else(|| panic!("{line}"));
        assert!((got - expected).abs() < 1e-6, "{}: {got} vs {expected}", row["id"]);
    }
    let asked: Vec<Value> = judge.requests().iter().filter(|r| r.path == "/v1/embeddings").map(|r| r.body.clone().unwrap()).collect();
    assert_eq!(asked.len(), 3, "one call per rollout, both texts in it");
    let p3 = json!({"model": "text-embedding-3-large", "input": ["<answer>Barcelona</answer>", "Madrid"]});
    assert!(asked.contains(&p3), "the input, then the reference: {asked:?}");
}

/// The interpreter grant of rewards.toml's `code` reward, pointing at the built python-runner.
fn interpreter_grant() -> String {
    format!(
        "interpreter = {{ plugin = {:?}, fuel = 10_000_000_000, timeout_ms = 10_000, memory_mib = 128, max_output_bytes = 65_536 }}",
        plugin_path("python-runner").display().to_string()
    )
}

/// Python graders and a multi grader over string_check + text_similarity + python; `GRANT`
/// stands for the interpreter grant.
const PYTHON_REWARDS: &str = r#"
[rewards.py]
plugin = "PLUGIN"
GRANT

[rewards.py.config]
type = "python"
name = "py city"
image_tag = "2025-05-08"
source = '''
def grade(sample, item):
    text = sample["output_text"].lower()
    score = 0.0
    if item["reference_answer"].lower() in text:
        score += 0.5
    if item["city"].lower() in text:
        score += 0.25
    if sample["output_json"] is None:
        score += 0.25
    return score
'''

[rewards.raises]
plugin = "PLUGIN"
GRANT
config = { type = "python", name = "py raises", source = "def grade(sample, item):\n    return item['no_such_field']\n" }

[rewards.string]
plugin = "PLUGIN"
GRANT
config = { type = "python", name = "py string", source = "def grade(sample, item):\n    return str(len(sample['output_text']))\n" }

[rewards.ungranted]
plugin = "PLUGIN"
config = { type = "python", name = "py ungranted", source = "def grade(sample, item):\n    return 1.0\n" }

[rewards.multi]
plugin = "PLUGIN"
GRANT

[rewards.multi.config]
type = "multi"
name = "combined"
calculate_output = "(exact + 2 * rouge + py) / 4"

[rewards.multi.config.graders]
exact = { type = "string_check", input = "{{sample.output_text}}", reference = "{{item.reference_answer}}", operation = "eq" }
rouge = { type = "text_similarity", input = "{{sample.output_text}}", reference = "{{item.reference_answer}}", evaluation_metric = "rouge_l" }
py = { type = "python", source = "def grade(sample, item):\n    return item['city'] in sample['output_text']\n" }
"#;

fn python_config(dir: &Path) -> PathBuf {
    rewards_toml(dir, &PYTHON_REWARDS.replace("GRANT", &interpreter_grant()))
}

/// The python grader reads `sample["output_text"]`, `sample["output_json"]` and the row's
/// fields (`item["reference_answer"]`, `item["city"]`, a top-level field of the Nova row) in
/// the real interpreter; its return value is the score.
#[test]
fn a_python_grader_reads_the_sample_and_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let config = python_config(dir.path());
    // same: the reference in it (0.5), no Paris, not JSON (0.25); close: only not JSON (0.25);
    // plain: no `city` field, so item["city"] raises.
    let (out, lines) = score(&config, "py", &input());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<(&str, &str)> = lines.iter().map(|l| (l["id"].as_str().unwrap(), l["status"].as_str().unwrap())).collect();
    assert_eq!(rows, [("same", "OK"), ("close", "OK"), ("plain", "PLUGIN_ERROR")], "{lines:?}");
    assert_eq!((lines[0]["score"].as_f64(), lines[1]["score"].as_f64()), (Some(0.75), Some(0.25)), "{lines:?}");
    assert_eq!(lines[0]["metrics"]["score"], 0.75);
    let error = lines[2]["error"].as_str().unwrap();
    assert!(error.contains("py city: grade(sample, item) raised KeyError: 'city'"), "{error}");

    // A JSON completion arrives parsed as `output_json`; Paris in the text counts.
    let rows = [nova("json", "{\"city\": \"Paris\"}", "Rome", json!({"city": "Paris"}))];
    let text: String = rows.iter().map(|v| format!("{v}\n")).collect();
    let (out, lines) = score(&config, "py", &text);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!((lines[0]["status"].as_str(), lines[0]["score"].as_f64()), (Some("OK"), Some(0.25)), "{lines:?}");
    assert!(lines[0]["instructions"].as_u64().unwrap_or(0) > 1_000_000, "the interpreter's instructions are the rollout's: {lines:?}");
}

/// A grader that raises, one that returns a string, and one without an interpreter grant fail
/// every rollout, naming the grader and what happened: never a silent 0.
#[test]
fn failing_python_graders_fail_the_rollout_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = python_config(dir.path());
    for (reward, every, first) in [
        ("raises", "py raises: grade(sample, item) raised KeyError: 'no_such_field'", "KeyError"),
        // "the cat sat on the mat" has 22 characters.
        ("string", "py string: grade(sample, item) must return a number (a float), returned a string: ", "a string: \"22\""),
        ("ungranted", "py ungranted: the python grader could not run: ", "this reward grants no interpreter"),
    ] {
        let (out, lines) = score(&config, reward, &input());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(lines.len(), 3);
        for line in &lines {
            assert_eq!(line["status"], "PLUGIN_ERROR", "{reward}: {line}");
            let error = line["error"].as_str().unwrap();
            assert!(error.contains(every), "{reward}: {error}");
        }
        let error = lines[0]["error"].as_str().unwrap();
        assert!(error.contains(first), "{reward}: {error}");
    }
}

/// string_check + text_similarity + python in one multi grader: each sub-score is a metric
/// named after its key, the formula's value the score.
#[test]
fn a_multi_grader_combines_string_check_similarity_and_python() {
    let dir = tempfile::tempdir().unwrap();
    let config = python_config(dir.path());
    let rows = [
        nova("same", "the cat sat in Paris", "the cat sat in Paris", json!({"city": "Paris"})),
        nova("close", "the cat is on the mat", "the cat sat on the mat", json!({"city": "Paris"})),
    ];
    let text: String = rows.iter().map(|v| format!("{v}\n")).collect();
    let (out, lines) = score(&config, "multi", &text);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let metrics = |i: usize| {
        let m = &lines[i]["metrics"];
        (m["exact"].as_f64(), m["rouge"].as_f64(), m["py"].as_f64())
    };
    assert_eq!(lines[0]["status"], "OK", "{lines:?}");
    // same: exact, ROUGE-L 1, Paris in it (True counts 1): (1 + 2 + 1) / 4.
    assert_eq!(metrics(0), (Some(1.0), Some(1.0), Some(1.0)), "{lines:?}");
    assert_eq!(lines[0]["score"], 1.0);
    // close: not exact, ROUGE-L 5/6 (rouge-score 0.1.2), no Paris: (0 + 2 * 5/6 + 0) / 4.
    assert_eq!(lines[1]["status"], "OK", "{lines:?}");
    let (exact, rouge, py) = metrics(1);
    assert_eq!((exact, py), (Some(0.0), Some(0.0)), "{lines:?}");
    assert!((rouge.unwrap() - 5.0 / 6.0).abs() < 1e-12, "{lines:?}");
    assert!((lines[1]["score"].as_f64().unwrap() - 5.0 / 12.0).abs() < 1e-12, "{lines:?}");
    let reason = lines[1]["reason"].as_str().unwrap();
    assert!(reason.starts_with("combined: (exact + 2 * rouge + py) / 4 = 0.41666"), "{reason}");

    // The plain row has no `city`: the python sub-grader (no `name`, so named `python`) raises,
    // and the rollout fails naming its key.
    let (out, lines) = score(&config, "multi", &input());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines[2]["status"], "PLUGIN_ERROR", "{lines:?}");
    let error = lines[2]["error"].as_str().unwrap();
    assert!(error.contains("combined: grader `py`: python: grade(sample, item) raised KeyError: 'city'"), "{error}");
}

// ---- OpenAI's grader API: POST /v1/fine_tuning/alpha/graders/run and .../graders/validate ----

/// A config of one reward and a `[graders]` table granting the real python-runner.
fn graders_config(dir: &Path) -> PathBuf {
    let graders = format!("\n[graders]\nplugin = \"PLUGIN\"\n{}\n", interpreter_grant());
    rewards_toml(dir, &format!("{}{graders}", &REWARDS[..REWARDS.find("[rewards.mentions_city]").unwrap()]))
}

/// `POST path` with a JSON body on a fresh connection: the status and the JSON answer.
fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let addr = server.http.trim_start_matches("http://");
    let mut conn = reward_server_harness::http1::Connection::open(addr, Duration::from_secs(60)).unwrap();
    let response = conn.post_json(path, &[], body).unwrap();
    let json = response.json().unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", response.text()));
    (response.status, json)
}

const RUN: &str = "/v1/fine_tuning/alpha/graders/run";
const VALIDATE: &str = "/v1/fine_tuning/alpha/graders/validate";

fn exact() -> Value {
    json!({"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "operation": "eq"})
}

/// The flags of `metadata.errors` that are set.
fn flags(answer: &Value) -> Vec<String> {
    let errors = answer["metadata"]["errors"].as_object().unwrap_or_else(|| panic!("no errors object: {answer}"));
    errors.iter().filter(|(_, v)| **v == Value::Bool(true)).map(|(k, _)| k.clone()).collect()
}

#[track_caller]
fn run_ok(server: &Server, body: Value) -> Value {
    let (status, answer) = post(server, RUN, &body);
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn graders_run_answers_in_openais_shape_and_flags_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&graders_config(dir.path()), &[]);

    let hit = run_ok(&server, json!({"grader": exact(), "model_sample": "Paris", "item": {"reference_answer": "Paris"}}));
    assert_eq!(hit["reward"], 1.0, "{hit}");
    assert_eq!(
        (&hit["metadata"]["name"], &hit["metadata"]["type"], &hit["metadata"]["status"]),
        (&json!("exact"), &json!("string_check"), &json!("OK"))
    );
    assert_eq!(flags(&hit), Vec::<String>::new(), "{hit}");
    assert!(hit["metadata"]["execution_time"].as_f64().unwrap() >= 0.0, "{hit}");
    assert_eq!((&hit["sub_rewards"], &hit["metadata"]["token_usage"]), (&json!({}), &Value::Null), "{hit}");
    let miss = run_ok(&server, json!({"grader": exact(), "model_sample": "Paris ", "item": {"reference_answer": "Paris"}}));
    assert_eq!((miss["reward"].as_f64(), flags(&miss)), (Some(0.0), vec![]), "a wrong answer is a 0 with no flag: {miss}");

    // The sample as JSON (`sample.output_json`), and the item's own fields.
    let json_city =
        json!({"type": "string_check", "input": "{{sample.output_json.city}}", "reference": "{{item.capital}}", "operation": "eq"});
    let r = run_ok(&server, json!({"grader": json_city, "model_sample": "{\"city\": \"Rome\"}", "item": {"capital": "Rome"}}));
    assert_eq!((r["reward"].as_f64(), r["metadata"]["name"].as_str()), (Some(1.0), Some("string_check")), "name defaults to the type: {r}");

    // A template naming a field the item lacks: INVALID_INPUT, flagged, the field named.
    let r = run_ok(&server, json!({"grader": json_city, "model_sample": "{\"city\": \"Rome\"}", "item": {}}));
    assert_eq!((r["reward"].as_f64(), flags(&r)), (Some(0.0), vec!["invalid_variable_error".to_owned()]), "{r}");
    assert_eq!(r["metadata"]["status"], "INVALID_INPUT", "{r}");
    assert!(r["metadata"]["error"].as_str().unwrap().contains("item.capital"), "{r}");

    // A python grader that raises, in the real interpreter: the runtime error and its details.
    let raising = json!({"type": "python", "source": "def grade(sample, item):\n    return item['answer']\n"});
    let r = run_ok(&server, json!({"grader": raising, "model_sample": "x"}));
    assert_eq!((r["reward"].as_f64(), flags(&r)), (Some(0.0), vec!["python_grader_runtime_error".to_owned()]), "{r}");
    let details = r["metadata"]["errors"]["python_grader_runtime_error_details"].as_str().unwrap();
    assert!(details.contains("KeyError: 'answer'"), "{details}");

    // multi: its graders' scores are the sub_rewards, the formula's value the reward.
    let multi = json!({
        "type": "multi",
        "graders": {"exact": exact(), "short": {"type": "python", "source": "def grade(sample, item):\n    return float(len(sample['output_text']) <= 5)\n"}},
        "calculate_output": "0.25 * exact + 0.75 * short",
    });
    let r = run_ok(&server, json!({"grader": multi, "model_sample": "Rome", "item": {"reference_answer": "Paris"}}));
    assert_eq!((r["reward"].as_f64(), &r["sub_rewards"]), (Some(0.75), &json!({"exact": 0.0, "short": 1.0})), "{r}");

    // A model grader with no judge granted by [graders]: the judge's error, flagged as the
    // model grader's server error.
    let model = json!({"type": "score_model", "input": [{"role": "user", "content": "Grade: {{sample.output_text}}"}]});
    let r = run_ok(&server, json!({"grader": model, "model_sample": "x"}));
    assert_eq!((r["metadata"]["status"].as_str(), flags(&r)), (Some("JUDGE_ERROR"), vec!["model_grader_server_error".to_owned()]), "{r}");
    assert!(r["metadata"]["errors"]["model_grader_server_error_details"].as_str().unwrap().contains("grants none"), "{r}");

    // The same grader again, its keys in another order: answered alike (the kept reward).
    let reordered: Value = serde_json::from_str(
        r#"{"operation": "eq", "reference": "{{item.reference_answer}}", "input": "{{sample.output_text}}", "name": "exact", "type": "string_check"}"#,
    )
    .unwrap();
    let again = run_ok(&server, json!({"grader": reordered, "model_sample": "Paris", "item": {"reference_answer": "Paris"}}));
    assert_eq!(again["reward"], 1.0, "{again}");
    // Every run is counted under one reward label, whatever the grader's name.
    let metrics = get(&server, "/metrics");
    assert!(metrics.contains("reward=\"graders/run\",transport=\"openai_graders\""), "{metrics}");
    assert!(!metrics.contains("reward=\"exact\",transport=\"openai_graders\""), "{metrics}");
}

/// `GET path`: the body text.
fn get(server: &Server, path: &str) -> String {
    let addr = server.http.trim_start_matches("http://");
    let mut conn = reward_server_harness::http1::Connection::open(addr, Duration::from_secs(60)).unwrap();
    conn.request("GET", path, &[], b"").unwrap().text()
}

#[test]
fn graders_refuses_what_it_cannot_run_and_names_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&graders_config(dir.path()), &[]);
    let refused = |path: &str, body: Value, names: &str| {
        let (status, answer) = post(&server, path, &body);
        // OpenAI's error shape, which its SDKs read.
        let error = &answer["error"];
        assert_eq!(
            (status, error["code"].as_str(), error["type"].as_str()),
            (400, Some("bad_request"), Some("invalid_request_error")),
            "{body}: {answer}"
        );
        let error = error["message"].as_str().unwrap();
        assert!(error.contains(names), "{body}: {error} should name {names}");
    };

    // validate: a good grader is echoed, a bad one refused naming its field (the plugin's check).
    let (status, answer) = post(&server, VALIDATE, &json!({"grader": exact()}));
    assert_eq!((status, &answer), (200, &json!({"grader": exact()})));
    let mut bad = exact();
    bad["operation"] = json!("equals");
    refused(VALIDATE, json!({"grader": bad}), "operation");
    let mut typo = exact();
    typo["refrence"] = json!("x");
    refused(RUN, json!({"grader": typo, "model_sample": "x"}), "refrence");
    refused(RUN, json!({"grader": {"type": "nope"}, "model_sample": "x"}), "nope");
    refused(RUN, json!({"grader": "string_check", "model_sample": "x"}), "must be a JSON object");

    // The request's own shape.
    refused(RUN, json!({"grader": exact()}), "model_sample");
    refused(RUN, json!({"grader": exact(), "model_sample": 3}), "expected a string");
    refused(RUN, json!({"grader": exact(), "model_sample": "x", "item": "Paris"}), "`item` must be a JSON object");
    refused(RUN, json!({"grader": exact(), "model_sample": "x", "items": {}}), "items");

    // A grader past 512 KiB is refused before any plugin runs.
    let source = format!("def grade(sample, item):\n    return 1.0\n# {}\n", "x".repeat(600 << 10));
    refused(RUN, json!({"grader": {"type": "python", "source": source}, "model_sample": "x"}), "more than the 524288 allowed");

    // Without a [graders] table the door is off: 404 saying how to turn it on.
    let dir = tempfile::tempdir().unwrap();
    let plain = Server::start(&rewards_toml(dir.path(), REWARDS), &[]);
    for path in [RUN, VALIDATE] {
        let (status, answer) = post(&plain, path, &json!({"grader": exact(), "model_sample": "x"}));
        assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_configured")), "{path}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("[graders]"), "{answer}");
    }
}

/// The engine's side: a grader is built once and kept by its JSON; every
/// built reward is `graders/run` with its own config hash; a bad `[graders]` table fails at load
/// naming it.
#[test]
fn a_grader_is_built_once_and_kept_by_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = graders_config(dir.path());
    let rewards = reward_server::config::Rewards::load(common::host(), &config).unwrap_or_else(|e| panic!("{e:#}"));
    let graders = rewards.graders().expect("the [graders] table");
    let first = graders.reward(&exact()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &graders.reward(&exact()).unwrap()), "the same grader is kept once");
    assert!(std::sync::Arc::ptr_eq(&first, &graders.kept(&exact()).unwrap()));
    assert_eq!(graders.kept_count(), 1);
    let mut other = exact();
    other["operation"] = json!("ilike");
    let second = graders.reward(&other).unwrap();
    assert_eq!((first.provenance.reward.as_str(), second.provenance.reward.as_str()), ("graders/run", "graders/run"));
    assert_ne!(first.provenance.config_hash, second.provenance.config_hash);
    assert_eq!(graders.kept_count(), 2);
    assert!(graders.reward(&json!({"type": "string_check"})).unwrap_err().contains("rejected by plugin"), "a refusal is not kept");
    assert_eq!(graders.kept_count(), 2);

    for (table, names) in [
        ("[graders]\nplugin = \"PLUGIN\"\njudge = \"nobody\"\n", "[graders]: `judge`: names judge `nobody`, which is not defined"),
        ("[graders]\nplugins = \"x\"\n", "unknown field `plugins`"),
        (
            "[graders]\nplugin = \"PLUGIN\"\nconfig = {}\n",
            "[graders]: takes `plugin`, `limits`, `interpreter`, `judge` and `on_error` only",
        ),
        ("[graders]\nplugin = \"no-such-plugin\"\n", "plugin `no-such-plugin` not found"),
    ] {
        let text = format!("{}\n{table}", &REWARDS[..REWARDS.find("[rewards.mentions_city]").unwrap()])
            .replace("PLUGIN", &plugin_path("openai-grader").display().to_string());
        let err = format!("{:#}", reward_server::config::Rewards::from_toml(common::host(), &text, dir.path()).unwrap_err());
        assert!(err.contains(names), "{table}: {err}");
    }
}

/// A model grader through graders/run, its judge granted by `[graders]`: the judge's tokens are
/// OpenAI's `token_usage` and `model_grader_token_usage_per_model` (by the grant's model), and an
/// answer that is not a score is the model grader's parse error, never a 0 read as wrong.
#[test]
fn graders_run_asks_the_judge_granted_by_the_graders_table() {
    use reward_server_harness::fake_judge::{FakeJudge, Reply, Script};
    let judge = FakeJudge::start({
        let scored = Reply::text_with_usage("{\"result\": 0.8, \"steps\": []}", 12, 3);
        Script::new(scored.clone()).then(scored).then(Reply::text("great"))
    });
    let dir = tempfile::tempdir().unwrap();
    let head = &REWARDS[..REWARDS.find("[rewards.mentions_city]").unwrap()];
    let text =
        format!("[judges.j]\nurl = \"{}\"\nmodel = \"grader-1\"\n\n{head}\n[graders]\nplugin = \"PLUGIN\"\njudge = \"j\"\n", judge.url());
    let server = Server::start(&rewards_toml(dir.path(), &text), &[]);
    let grader = json!({
        "type": "score_model",
        "name": "judged",
        "model": "o4-mini",
        "input": [{"role": "user", "content": "Reference: {{item.reference_answer}}. Answer: {{sample.output_text}}"}],
        "range": [0, 1],
    });
    let r = run_ok(&server, json!({"grader": grader, "model_sample": "Paris", "item": {"reference_answer": "Paris"}}));
    assert_eq!((r["reward"].as_f64(), flags(&r)), (Some(0.8), vec![]), "{r}");
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "cached_tokens": 0});
    assert_eq!(r["metadata"]["token_usage"], usage, "{r}");
    assert_eq!(r["model_grader_token_usage_per_model"], json!({"grader-1": usage}), "the grant's model, not the grader's: {r}");
    let scores = r["metadata"]["scores"].as_object().unwrap();
    assert_eq!(scores.get("judge_score_raw"), Some(&json!(0.8)), "the plugin's metrics are scores: {r}");
    assert!(!scores.contains_key("judge_calls") && !scores.contains_key("judge_prompt_tokens"), "the host's are token_usage: {r}");
    let sent = judge.completions();
    assert_eq!(sent.len(), 1);
    let body = sent[0].body.clone().unwrap();
    assert_eq!(body["model"], "grader-1", "{body}");
    assert!(body["messages"].to_string().contains("Reference: Paris. Answer: Paris"), "{body}");

    // Another sample: the judge answers prose, which is no score.
    let r = run_ok(&server, json!({"grader": grader, "model_sample": "Lyon", "item": {"reference_answer": "Paris"}}));
    assert_eq!((r["reward"].as_f64(), flags(&r)), (Some(0.0), vec!["model_grader_parse_error".to_owned()]), "{r}");
    assert_eq!(r["metadata"]["status"], "PLUGIN_ERROR", "{r}");
    assert!(r["metadata"]["error"].as_str().unwrap().contains("great"), "the answer is quoted: {r}");
    assert_eq!(judge.completions().len(), 2);

    // `samples` (ours): three calls through the host, seeds 5, 6, 7 (none cached: the seeds
    // differ), their tokens summed, the mean scored.
    let mut sampled = grader.clone();
    sampled["samples"] = json!(3);
    sampled["sampling_params"] = json!({"seed": 5, "temperature": 0.5});
    let r = run_ok(&server, json!({"grader": sampled, "model_sample": "Paris", "item": {"reference_answer": "Paris"}}));
    assert!((r["reward"].as_f64().unwrap() - 0.8).abs() < 1e-12, "{r}");
    assert_eq!(r["metadata"]["scores"]["judge_score_samples"], 3.0, "{r}");
    assert_eq!(r["metadata"]["token_usage"]["prompt_tokens"], 36, "{r}");
    let seeds: Vec<Value> = judge.completions()[2..].iter().map(|c| c.body.as_ref().unwrap()["seed"].clone()).collect();
    assert_eq!(seeds, [json!(5), json!(6), json!(7)]);
}

/// A label_model grader through graders/run on a real model (llama.cpp serving SmolLM2-135M):
/// the door asks it and reads its answer. A 135M model may answer no label; either way the
/// answer is a label's score with its tokens, or the model grader's parse error naming the
/// labels, and asking again gives the same answer (temperature 0, a fixed seed).
#[test]
fn graders_run_asks_a_real_model() {
    let Some(llama) = reward_server_harness::LlamaServer::start_or_skip() else {
        eprintln!("skipped: REWARD_JUDGE_SKIP is set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let head = &REWARDS[..REWARDS.find("[rewards.mentions_city]").unwrap()];
    let text = format!(
        "[judges.local]\nurl = \"{}\"\nmodel = \"{}\"\nmax_tokens = 8\ntimeout_ms = 60000\n\n{head}\n[graders]\nplugin = \"PLUGIN\"\njudge = \"local\"\n",
        llama.url(),
        llama.model_name()
    );
    let server = Server::start(&rewards_toml(dir.path(), &text), &[]);
    let grader = json!({
        "type": "label_model",
        "name": "capital check",
        "model": "gpt-4o-2024-08-06",
        "input": [
            {"role": "system", "content": "Is the answer the capital of France? Answer with exactly one word: yes or no."},
            {"role": "user", "content": "{{sample.output_text}}"},
        ],
        "labels": ["yes", "no"],
        "passing_labels": ["yes"],
    });
    let body = json!({"grader": grader, "model_sample": "Paris"});
    let first = run_ok(&server, body.clone());
    match first["metadata"]["status"].as_str() {
        Some("OK") => {
            assert!([Some(0.0), Some(1.0)].contains(&first["reward"].as_f64()), "{first}");
            assert!(first["metadata"]["token_usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{first}");
            assert!(first["model_grader_token_usage_per_model"].get(llama.model_name()).is_some(), "{first}");
        }
        Some("PLUGIN_ERROR") => {
            assert_eq!(flags(&first), ["model_grader_parse_error"], "{first}");
            assert!(first["metadata"]["error"].as_str().unwrap().contains("yes"), "the labels are named: {first}");
        }
        other => panic!("{other:?}: {first}"),
    }
    let again = run_ok(&server, body);
    assert_eq!((&again["reward"], &again["metadata"]["status"]), (&first["reward"], &first["metadata"]["status"]), "{again}");
}

/// A grader saved as a JSON file is a reward's `config_file`: the same reward as the grader
/// inline (the same config hash, the same scores), the file among what a server watches; a file
/// that is missing, not JSON or beside an inline `config` fails at load, named.
#[test]
fn a_grader_saved_as_json_is_a_rewards_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("graders")).unwrap();
    let saved = json!({"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "operation": "eq"});
    std::fs::write(dir.path().join("graders/exact.json"), serde_json::to_string_pretty(&saved).unwrap()).unwrap();
    let head = &REWARDS[..REWARDS.find("[rewards.mentions_city]").unwrap()];
    let config = rewards_toml(
        dir.path(),
        &format!(
            "{head}\n[rewards.saved]\nplugin = \"PLUGIN\"\ndescription = \"OpenAI string_check, from a JSON file\"\nconfig_file = \"graders/exact.json\"\n"
        ),
    );
    let rewards = reward_server::config::Rewards::load(common::host(), &config).unwrap_or_else(|e| panic!("{e:#}"));
    let (inline, from_file) = (rewards.get("exact").unwrap(), rewards.get("saved").unwrap());
    assert_eq!(inline.provenance.config_hash, from_file.provenance.config_hash, "one grader, one definition");
    assert_eq!(rewards.sources(), [dir.path().join("graders/exact.json")]);
    assert_eq!(scores(&config, "saved"), scores(&config, "exact"));

    let load_error = |table: &str| {
        let text = format!("{head}\n[rewards.saved]\nplugin = \"PLUGIN\"\n{table}\n")
            .replace("PLUGIN", &plugin_path("openai-grader").display().to_string());
        format!("{:#}", reward_server::config::Rewards::from_toml(common::host(), &text, dir.path()).unwrap_err())
    };
    std::fs::write(dir.path().join("graders/broken.json"), "{\"type\": \"string_check\",").unwrap();
    for (table, names) in [
        ("config_file = \"graders/none.json\"", "reward `saved`: `config_file`: opening"),
        ("config_file = \"graders/broken.json\"", "broken.json is not JSON: EOF while parsing"),
        ("config_file = \"graders/exact.json\"\nconfig = {}", "set `config` or `config_file`, not both"),
    ] {
        let err = load_error(table);
        assert!(err.contains(names), "{table}: {err}");
    }
}
