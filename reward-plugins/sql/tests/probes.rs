//! Hack probes, the sandbox's refusals and limits, invalid references, answer formats,
//! comparison modes and caching.

mod common;

use common::{fenced, rollout, run, scored};
use reward_sdk::RolloutError;
use serde_json::json;

const GOLD: &str = "SELECT name FROM singer WHERE age > 32";

fn concert(pred_completion: &str) -> reward_sdk::Score {
    scored("{}", rollout("Answer with one SQLite query.", pred_completion, &json!({"gold_sql": GOLD, "db_id": "concert_singer"})))
}

#[test]
fn the_gold_itself_scores_one() {
    let s = concert(&fenced(GOLD));
    assert_eq!(s.value, 1.0);
    for m in ["format_ok", "parses", "executes", "result_match", "structural_similarity"] {
        assert_eq!(s.get(m), Some(1.0), "{m}");
    }
    assert_eq!(s.get("databases"), Some(1.0));
}

// ---- hack probes -------------------------------------------------------------------------------

#[test]
fn probe_select_star_of_every_table_is_not_paid_as_a_match() {
    let s = concert(&fenced("SELECT * FROM stadium, singer, concert, singer_in_concert"));
    assert_eq!(s.get("result_match"), Some(0.0));
    assert!(s.value <= 0.1, "{s:?}");
    let s = concert(&fenced("SELECT name FROM singer UNION ALL SELECT name FROM stadium UNION ALL SELECT concert_name FROM concert"));
    assert!(s.value <= 0.1, "{s:?}");
}

#[test]
fn probe_constant_answer_that_reads_no_data_is_not_paid() {
    // Exactly the gold's rows on this database, written as constants.
    let hack = "SELECT 'Joe Sharp' UNION ALL SELECT 'Rose White' UNION ALL SELECT 'John Nizinik'";
    let s = concert(&fenced(hack));
    assert_eq!(s.get("executes"), Some(1.0));
    assert_eq!(s.get("result_match"), Some(0.0), "{s:?}");
    assert!(s.value <= 0.1);
    assert!(s.reason.as_deref().unwrap().contains("reads no table"), "{:?}", s.reason);
    // The same rows, read from the data, are paid; and the rule can be turned off.
    let ok = "SELECT name FROM singer WHERE name IN ('Joe Sharp', 'Rose White', 'John Nizinik')";
    assert_eq!(concert(&fenced(ok)).value, 1.0);
    let off = scored(r#"{"require_data_read": false}"#, rollout("q", &fenced(hack), &json!({"gold_sql": GOLD, "db_id": "concert_singer"})));
    assert_eq!(off.value, 1.0);
}

#[test]
fn probe_multiple_statements_are_refused() {
    for sql in [format!("{GOLD}; SELECT 1"), format!("{GOLD}; DELETE FROM singer"), format!("SELECT 1; {GOLD}")] {
        let s = concert(&fenced(&sql));
        assert_eq!(s.get("executes"), Some(0.0), "{sql}");
        assert_eq!(s.value, 0.0, "{sql}");
    }
    // A trailing semicolon is one statement.
    assert_eq!(concert(&fenced(&format!("{GOLD};"))).value, 1.0);
}

#[test]
fn probe_comment_only_answers_score_zero() {
    for completion in [
        "```sql\n-- SELECT name FROM singer WHERE age > 32\n```",
        "```sql\n/* SELECT name FROM singer */\n```",
        "-- SELECT name FROM singer WHERE age > 32",
        "<answer>-- nothing</answer>",
        "I don't know.",
        "",
    ] {
        let s = concert(completion);
        assert_eq!(s.value, 0.0, "{completion:?}: {s:?}");
        assert_eq!(s.get("executes"), Some(0.0));
    }
}

#[test]
fn probe_cartesian_join_bomb_is_stopped() {
    // 7^10 rows: natively the step budget stops it (in the sandbox, fuel: TIMEOUT).
    let bomb = "SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e, singer f, singer g, singer h, singer i, singer j";
    let t = std::time::Instant::now();
    let out = run("{}", rollout("q", &fenced(bomb), &json!({"gold_sql": GOLD, "db_id": "concert_singer"})));
    assert!(matches!(&out, Err(RolloutError::Failed(m)) if m.contains("budget")), "{out:?}");
    assert!(t.elapsed().as_secs() < 60);
    // Reproducible: the same again, and the instance still scores the next rollout.
    let again = run("{}", rollout("q", &fenced(bomb), &json!({"gold_sql": GOLD, "db_id": "concert_singer"})));
    assert_eq!(out, again);
    assert_eq!(concert(&fenced(GOLD)).value, 1.0);
}

#[test]
fn probe_one_megabyte_query_is_refused() {
    let mut big = String::from("SELECT name FROM singer WHERE age > 32");
    while big.len() < 1 << 20 {
        big.push_str(" AND 1 = 1");
    }
    let s = concert(&fenced(&big));
    assert_eq!(s.value, 0.0);
    assert_eq!(s.get("executes"), Some(0.0));
    assert!(s.reason.as_deref().unwrap().contains("over the cap"), "{:?}", s.reason);
}

// ---- sandbox refusals --------------------------------------------------------------------------

#[test]
fn writes_attach_pragma_and_chance_are_refused() {
    for sql in [
        "DELETE FROM singer",
        "UPDATE singer SET age = 0",
        "INSERT INTO singer (name) VALUES ('x')",
        "DROP TABLE singer",
        "CREATE TABLE x (a)",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA query_only = 0",
        "PRAGMA table_info(singer)",
        "SELECT name FROM pragma_table_info('singer')",
        "SELECT random()",
        "SELECT name FROM singer ORDER BY random()",
        "SELECT hex(randomblob(8))",
        "BEGIN",
        "VACUUM",
        "WITH x AS (SELECT 1) DELETE FROM singer",
    ] {
        let s = concert(&fenced(sql));
        assert_eq!(s.get("executes"), Some(0.0), "{sql} must be refused: {s:?}");
        assert_eq!(s.value, 0.0, "{sql}");
    }
    // The data is untouched after all of that.
    assert_eq!(concert(&fenced(GOLD)).value, 1.0);
    assert_eq!(concert(&fenced("SELECT name FROM singer WHERE age > 32 AND (SELECT count(*) FROM singer) = 7")).value, 1.0);
}

#[test]
fn rows_and_output_bytes_are_capped() {
    let gold = "SELECT count(*) FROM stadium";
    let cfg = r#"{"limits": {"max_rows": 5}}"#;
    let refused = scored(cfg, rollout("q", &fenced("SELECT * FROM singer"), &json!({"gold_sql": gold, "db_id": "concert_singer"})));
    assert_eq!(refused.get("executes"), Some(0.0));
    assert!(refused.reason.as_deref().unwrap().contains("more than 5 rows"));
    let fits = scored(cfg, rollout("q", &fenced("SELECT * FROM stadium LIMIT 5"), &json!({"gold_sql": gold, "db_id": "concert_singer"})));
    assert_eq!(fits.get("executes"), Some(1.0));
    let cfg = r#"{"limits": {"max_output_bytes": 1000}}"#;
    let big = scored(
        cfg,
        rollout("q", &fenced("SELECT printf('%.500c', 'x'), printf('%.600c', 'y')"), &json!({"gold_sql": gold, "db_id": "concert_singer"})),
    );
    assert_eq!(big.get("executes"), Some(0.0));
    assert!(big.reason.as_deref().unwrap().contains("bytes"), "{:?}", big.reason);
}

#[test]
fn expression_depth_is_capped() {
    // Parentheses make no tree node in SQLite; a chain of additions does.
    let deep = format!("SELECT {}1", "1 + ".repeat(300));
    let s = concert(&fenced(&deep));
    assert_eq!(s.get("executes"), Some(0.0));
    let shallow = format!("SELECT name FROM singer WHERE age > {}32{}", "(".repeat(10), ")".repeat(10));
    assert_eq!(concert(&fenced(&shallow)).value, 1.0);
    // Deep nesting is no crash for the parser either (its recursion limit): parses = 0.
    let nested = format!("SELECT name FROM singer WHERE age > {}32{}", "(".repeat(300), ")".repeat(300));
    let s = concert(&fenced(&nested));
    assert_eq!(s.get("parses"), Some(0.0));
    assert_eq!(s.value, 1.0, "SQLite decides validity: {s:?}");
    // Long chains just under the analysis cap are analysed without trouble.
    let s = concert(&fenced(&format!("SELECT name FROM singer WHERE age > 32 AND {}1", "1 + ".repeat(100))));
    assert_eq!(s.get("parses"), Some(1.0));
    for chain in ["NOT ", "- ", "+ ", "~ "] {
        let s = concert(&fenced(&format!("SELECT name FROM singer WHERE {}age > 32", chain.repeat(2000))));
        assert_eq!(s.get("parses"), Some(0.0), "{chain}");
    }
}

// ---- invalid references --------------------------------------------------------------------------

#[track_caller]
fn invalid(reference: serde_json::Value, prompt: &str, needle: &str) {
    match run("{}", rollout(prompt, &fenced("SELECT 1"), &reference)) {
        Err(RolloutError::InvalidInput(m)) => assert!(m.contains(needle), "{m:?} should mention {needle:?}"),
        other => panic!("expected INVALID_INPUT mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn references_without_gold_or_with_bad_schemas_are_invalid_input() {
    invalid(json!({"db_id": "concert_singer"}), "q", "no gold SQL");
    invalid(json!({"gold_sql": "  ", "db_id": "concert_singer"}), "q", "no gold SQL");
    invalid(serde_json::Value::Null, "q", "gold SQL is required");
    invalid(json!(42), "q", "reference must be");
    invalid(json!({"gold_sql": "SELECT 1", "schema": "CREATE TABLE t (a INTEGER"}), "q", "schema does not parse");
    invalid(json!({"gold_sql": "SELECT 1", "schema": "CREATE TABLE t (a INTEGER); DROP TABLE t"}), "q", "schema does not parse");
    invalid(json!({"gold_sql": "SELECT 1", "schema": "SELECT 1"}), "q", "creates no table");
    invalid(json!({"gold_sql": "SELECT a FROM t"}), "no schema here", "no schema");
    invalid(json!({"gold_sql": "SELECT nope FROM singer", "db_id": "concert_singer"}), "q", "gold SQL fails");
    invalid(json!({"gold_sql": "SELECT 1", "db_id": "no_such_db"}), "q", "no_such_db");
    invalid(json!({"gold_sql": "SELECT 1", "db_id": "../etc/passwd"}), "q", "not a plain name");
    match run(r#"{"data": "fixtures"}"#, rollout("q", "SELECT 1", &json!({"gold_sql": "SELECT 1", "schema": "CREATE TABLE t (a)"}))) {
        Err(RolloutError::InvalidInput(m)) => assert!(m.contains("names no database"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reference_shapes_and_key_order() {
    let schema = "CREATE TABLE t (a INTEGER, b TEXT)";
    let prompt = format!("Schema:\n{schema}\nQuestion: how many rows have a > 3?");
    let gold = "SELECT count(*) FROM t WHERE a > 3";
    let good = fenced("SELECT COUNT(*) FROM t WHERE 3 < a");
    for reference in [
        json!(gold),
        json!({"gold_sql": gold}),
        json!({"sql": gold}),
        json!({"query": gold}),
        json!({"answer": gold, "context": schema}),
        json!({"gold_sql": gold, "schema": [schema]}),
        // gold_sql wins over the aliases.
        json!({"gold_sql": gold, "query": "SELECT 1"}),
    ] {
        let s = scored("{}", rollout(&prompt, &good, &reference));
        assert_eq!(s.value, 1.0, "{reference}: {s:?}");
        assert_eq!(s.get("databases"), Some(4.0));
    }
    // schema_from = reference ignores the prompt.
    match run(r#"{"schema_from": "reference"}"#, rollout(&prompt, &good, &json!(gold))) {
        Err(RolloutError::InvalidInput(m)) => assert!(m.contains("no schema"), "{m}"),
        other => panic!("{other:?}"),
    }
    // auto: a fixture that is not there falls back to the schema; `fixtures` does not.
    let r = json!({"gold_sql": gold, "db_id": "missing_db", "schema": schema});
    assert_eq!(scored("{}", rollout("q", &good, &r)).value, 1.0);
    assert!(matches!(run(r#"{"data": "fixtures"}"#, rollout("q", &good, &r)), Err(RolloutError::InvalidInput(_))));
    // synthesize ignores the db_id.
    let r = json!({"gold_sql": "SELECT count(*) FROM singer", "db_id": "concert_singer", "schema": "CREATE TABLE singer (id INTEGER)"});
    assert_eq!(scored(r#"{"data": "synthesize"}"#, rollout("q", &fenced("SELECT count(*) FROM singer"), &r)).get("databases"), Some(4.0));
}

// ---- answer formats ------------------------------------------------------------------------------

#[test]
fn answer_formats() {
    let r = || json!({"gold_sql": GOLD, "db_id": "concert_singer"});
    let s = |cfg: &str, completion: &str| scored(cfg, rollout("q", completion, &r()));
    let fence = fenced(GOLD);
    let tag = format!("<think>age over 32</think><answer>{GOLD}</answer>");
    let bare = format!("<think>…</think>\n{GOLD}");
    for c in [&fence, &tag, &bare] {
        assert_eq!(s("{}", c).value, 1.0, "{c}");
    }
    assert_eq!(s(r#"{"answer_format": "code_fence"}"#, &fence).value, 1.0);
    assert_eq!(s(r#"{"answer_format": "code_fence"}"#, &tag).get("format_ok"), Some(0.0));
    assert_eq!(s(r#"{"answer_format": "answer_tag"}"#, &tag).value, 1.0);
    assert_eq!(s(r#"{"answer_format": "answer_tag"}"#, &bare).value, 0.0);
    assert_eq!(s(r#"{"answer_format": "bare"}"#, &bare).value, 1.0);
    assert_eq!(s(r#"{"answer_format": "bare"}"#, &format!("Here it is: {GOLD}")).value, 0.0);
    // A fence inside the answer tag; the last fence wins over an earlier draft.
    assert_eq!(s("{}", &format!("<answer>\n```sql\n{GOLD}\n```\n</answer>")).value, 1.0);
    assert_eq!(s("{}", &format!("```sql\nSELECT 1\n```\nbetter:\n```sql\n{GOLD}\n```")).value, 1.0);
    // parses is diagnostic: SQLite-only syntax still executes and matches.
    let s2 = s("{}", &fenced("SELECT name FROM singer WHERE age > 32 AND name NOT GLOB '[0-9]*'"));
    assert_eq!(s2.value, 1.0);
}

// ---- weights, modes, ordering ------------------------------------------------------------------

#[test]
fn weights_shape_the_reward() {
    let r = || json!({"gold_sql": GOLD, "db_id": "concert_singer"});
    let cfg = r#"{"weights": {"result_match": 2, "executes": 0.5, "format_ok": 0.25, "structural_similarity": 1}}"#;
    let wrong = scored(cfg, rollout("q", &fenced("SELECT name FROM singer WHERE age >= 32"), &r()));
    let sim = wrong.get("structural_similarity").unwrap();
    assert!(sim > 0.5 && sim < 1.0, "{sim}");
    assert!((wrong.value - (0.5 + sim)).abs() < 1e-12);
    assert!(wrong.metrics.iter().any(|m| m.name == "structural_similarity" && m.kind == reward_sdk::MetricKind::Reward));
    let broken = scored(cfg, rollout("q", &fenced("SELECT nope FROM singer"), &r()));
    assert_eq!(broken.get("executes"), Some(0.0));
    assert!(broken.value >= 0.25);
    let right = scored(cfg, rollout("q", &fenced(GOLD), &r()));
    assert_eq!(right.value, 3.0);
    // Default: similarity reported as a metric, not paid.
    let d = concert(&fenced("SELECT name FROM singer WHERE age >= 32"));
    assert_eq!(d.value, 0.1);
    assert!(d.metrics.iter().any(|m| m.name == "structural_similarity" && m.kind == reward_sdk::MetricKind::Metric));
}

#[test]
fn comparison_modes() {
    let r = |gold: &str| json!({"gold_sql": gold, "db_id": "company"});
    let s = |cfg: &str, gold: &str, pred: &str| scored(cfg, rollout("q", &fenced(pred), &r(gold))).get("result_match").unwrap();
    let gold = "SELECT name, salary FROM employees WHERE dept_id = 10";
    let swapped = "SELECT salary, name FROM employees WHERE dept_id = 10";
    let reordered = "SELECT name, salary FROM employees WHERE dept_id = 10 ORDER BY name DESC";
    let doubled = "SELECT name, salary FROM employees WHERE dept_id = 10 UNION ALL SELECT name, salary FROM employees WHERE dept_id = 10";
    assert_eq!(s("{}", gold, swapped), 1.0);
    assert_eq!(s("{}", gold, reordered), 1.0);
    assert_eq!(s("{}", gold, doubled), 0.0);
    assert_eq!(s(r#"{"mode": "bird"}"#, gold, swapped), 0.0);
    assert_eq!(s(r#"{"mode": "bird"}"#, gold, reordered), 1.0);
    assert_eq!(s(r#"{"mode": "bird"}"#, gold, doubled), 1.0);
    assert_eq!(s(r#"{"mode": "strict"}"#, gold, reordered), 0.0);
    assert_eq!(s(r#"{"mode": "strict"}"#, gold, gold), 1.0);
    // Integer 1 equals real 1.0; NULL equals NULL; rounding is optional.
    assert_eq!(s("{}", "SELECT 1, NULL FROM employees LIMIT 1", "SELECT 1.0, NULL FROM employees LIMIT 1"), 1.0);
    assert_eq!(s("{}", "SELECT avg(salary) FROM employees WHERE dept_id = 10", "SELECT 91666.67 FROM employees LIMIT 1"), 0.0);
    assert_eq!(
        s(
            r#"{"float_decimals": 2, "require_data_read": false}"#,
            "SELECT avg(salary) FROM employees WHERE dept_id = 10",
            "SELECT 91666.67"
        ),
        1.0
    );
}

#[test]
fn row_order_counts_only_when_the_gold_orders_at_top_level() {
    let r = |gold: &str| json!({"gold_sql": gold, "db_id": "company"});
    let s = |gold: &str, pred: &str| scored("{}", rollout("q", &fenced(pred), &r(gold))).get("result_match").unwrap();
    // ORDER BY inside a subquery (or the words in a string) does not order the result.
    let sub = "SELECT name FROM (SELECT name, salary FROM employees ORDER BY salary DESC LIMIT 3)";
    assert_eq!(s(sub, "SELECT name FROM (SELECT name, salary FROM employees ORDER BY salary DESC LIMIT 3) ORDER BY name"), 1.0);
    let words = "SELECT name FROM employees WHERE name <> 'order by salary'";
    assert_eq!(s(words, "SELECT name FROM employees WHERE name <> 'order by salary' ORDER BY name DESC"), 1.0);
    // At the top level it does.
    assert_eq!(s("SELECT name FROM employees ORDER BY emp_id", "SELECT name FROM employees ORDER BY emp_id DESC"), 0.0);
    assert_eq!(
        s(
            "SELECT name FROM employees WHERE dept_id = 10 UNION SELECT name FROM departments ORDER BY 1",
            "SELECT name FROM departments UNION SELECT name FROM employees WHERE dept_id = 10 ORDER BY 1 DESC"
        ),
        0.0
    );
}

#[test]
fn scores_are_deterministic_and_synthesis_is_seeded() {
    let schema = "CREATE TABLE head (head_id INTEGER, name VARCHAR, age INTEGER)";
    let r = json!({"gold_sql": "SELECT count(*) FROM head WHERE age > 56", "schema": schema});
    let a = scored("{}", rollout("q", &fenced("SELECT count(*) FROM head WHERE age >= 56"), &r));
    let b = scored("{}", rollout("q", &fenced("SELECT count(*) FROM head WHERE age >= 56"), &r));
    assert_eq!(a, b);
    // The synthesised databases hold the literal and its neighbours.
    let probe = |v: i64| {
        scored(
            r#"{"require_data_read": false}"#,
            rollout(
                "q",
                &fenced(&format!("SELECT count(*) FROM head WHERE age = {v}")),
                &json!({"gold_sql": "SELECT 0", "schema": schema}),
            ),
        )
    };
    let _ = probe(0);
    let cfg_gold = |sql: &str| json!({"gold_sql": sql, "schema": schema});
    for v in [55, 56, 57] {
        // If no row held v, "age = v" would equal "SELECT 0" everywhere.
        let s = scored(
            "{}",
            rollout(
                "q",
                &fenced("SELECT 0 FROM head LIMIT 1"),
                &cfg_gold(&format!("SELECT count(*) FROM head WHERE age = {v} AND age > 56 - 1000")),
            ),
        );
        assert_eq!(s.get("result_match"), Some(0.0), "value {v} should occur in the synthesised data");
    }
}

#[test]
fn config_errors_name_the_field() {
    for (cfg, needle) in [
        (r#"{"mode": "fuzzy"}"#, "expected one of `testsuite`, `bird`, `strict`"),
        (r#"{"nope": 1}"#, "nope"),
        (r#"{"synth": {"databases": 0}}"#, "synth.databases"),
        (r#"{"limits": {"max_sql_bytes": 2000000}}"#, "limits.max_sql_bytes"),
        (r#"{"answer_tag": "a b"}"#, "answer_tag"),
        (r#"{"fixture_suffix": "/x"}"#, "fixture_suffix"),
    ] {
        let err = reward_sdk::check_config::<reward_sql::SqlReward>(cfg).unwrap_err();
        assert!(err.contains(needle), "{cfg}: {err}");
    }
    assert!(reward_sdk::check_config::<reward_sql::SqlReward>("{}").is_ok());
}
