//! The built-in `sql` reward: does a generated SQL query answer the question the way the gold
//! query does? Both run in SQLite inside the sandbox, on a fixture database named by the
//! reference (`db_id`) or on databases synthesised from the schema, and their results are
//! compared the way Spider's test-suite accuracy or BIRD's execution accuracy does.
//!
//! The configuration ([`SqlConfig`]), reference shapes, metrics and limits are documented in
//! `README.md` next to this crate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use reward_sdk::extract::{self, Tag};
use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::Deserialize;
use serde_json::Value;

pub mod analyze;
pub mod compare;
pub mod exec;
#[cfg(not(target_arch = "wasm32"))]
pub mod fixtures;
mod scan;
pub mod synth;

#[cfg(target_arch = "wasm32")]
mod host;

pub use compare::Mode;
#[cfg(not(target_arch = "wasm32"))]
use exec::ExecError;
use exec::{Db, QueryLimits, Rows};

/// The sql reward.
pub struct SqlReward;

/// The plugin's version, reported by [`Reward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric the reward emits, in order.
pub const METRICS: [&str; 6] = ["format_ok", "parses", "executes", "result_match", "structural_similarity", "databases"];

/// Keys of the reference that may hold the gold SQL, in the order they are tried.
pub const GOLD_KEYS: [&str; 4] = ["gold_sql", "sql", "query", "answer"];
/// Keys of the reference that may name the fixture database, in order.
pub const DB_KEYS: [&str; 3] = ["db_id", "database", "db"];
/// Keys of the reference that may hold the schema (CREATE TABLE statements), in order.
pub const SCHEMA_KEYS: [&str; 3] = ["schema", "context", "create_table"];

/// Where the data comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The fixture named by `db_id` when the reference has one, else databases synthesised from
    /// the schema.
    #[default]
    Auto,
    /// Only the fixture database named by `db_id`.
    Fixtures,
    /// Only databases synthesised from the schema.
    Synthesize,
}

/// Where the schema comes from, for synthesised databases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaFrom {
    /// The reference's schema, else the CREATE TABLE statements of the prompt.
    #[default]
    Auto,
    /// Only the reference (`schema`, `context` or `create_table`).
    Reference,
    /// Only the CREATE TABLE statements in the conversation before the answer.
    Prompt,
}

/// Where the answer's SQL must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// A code fence, else the answer tag, else a bare statement.
    #[default]
    Any,
    /// The last fenced code block (language `sql`, `sqlite` or none).
    CodeFence,
    /// The content of the last `<answer>…</answer>` (a code fence inside is allowed).
    AnswerTag,
    /// The whole answer (after reasoning) is the statement: starts with SELECT or WITH.
    Bare,
}

/// Databases synthesised from a schema.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of databases; the prediction must agree with the gold on all. Default 4.
    #[serde(default = "d_databases")]
    pub databases: usize,
    /// Rows per table in the first database (each next one has 4 more). Default 10.
    #[serde(default = "d_rows")]
    pub rows: usize,
    /// The PRNG seed. Default 0.
    #[serde(default)]
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { databases: d_databases(), rows: d_rows(), seed: 0 }
    }
}

/// What each outcome pays.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Paid when the result matches the gold's on every database. Default 1.
    #[serde(default = "d_one")]
    pub result_match: f64,
    /// Paid when the query executes but does not match. Default 0.1.
    #[serde(default = "d_executes")]
    pub executes: f64,
    /// Paid when SQL was found where asked but does not execute. Default 0.
    #[serde(default)]
    pub format_ok: f64,
    /// Times the structural similarity, added to the above. Default 0 (reported, not paid).
    #[serde(default)]
    pub structural_similarity: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { result_match: 1.0, executes: d_executes(), format_ok: 0.0, structural_similarity: 0.0 }
    }
}

/// Caps on each query.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest query, in bytes. Default 20,000; at most 1,000,000.
    #[serde(default = "d_sql_bytes")]
    pub max_sql_bytes: usize,
    /// Most rows a result may have. Default 10,000.
    #[serde(default = "d_rows_cap")]
    pub max_rows: usize,
    /// Most bytes a result may have. Default 4 MiB.
    #[serde(default = "d_output_bytes")]
    pub max_output_bytes: usize,
    /// Deepest expression. Default 100.
    #[serde(default = "d_expr_depth")]
    pub max_expr_depth: i32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_sql_bytes: d_sql_bytes(),
            max_rows: d_rows_cap(),
            max_output_bytes: d_output_bytes(),
            max_expr_depth: d_expr_depth(),
        }
    }
}

/// The reward's configuration; every field is optional. See `README.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    #[serde(default)]
    data: DataSource,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    float_decimals: Option<u32>,
    #[serde(default)]
    answer_format: AnswerFormat,
    #[serde(default = "d_answer_tag")]
    answer_tag: String,
    #[serde(default)]
    schema_from: SchemaFrom,
    #[serde(default = "d_suffix")]
    fixture_suffix: String,
    #[serde(default)]
    synth: SynthConfig,
    #[serde(default)]
    weights: Weights,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default = "d_true")]
    require_data_read: bool,
}

fn d_databases() -> usize {
    4
}
fn d_rows() -> usize {
    10
}
fn d_one() -> f64 {
    1.0
}
fn d_executes() -> f64 {
    0.1
}
fn d_sql_bytes() -> usize {
    20_000
}
fn d_rows_cap() -> usize {
    10_000
}
fn d_output_bytes() -> usize {
    4 << 20
}
fn d_expr_depth() -> i32 {
    100
}
fn d_answer_tag() -> String {
    "answer".into()
}
fn d_suffix() -> String {
    ".sqlite".into()
}
fn d_true() -> bool {
    true
}

impl SqlConfig {
    fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            max_sql_bytes: self.limits.max_sql_bytes,
            max_rows: self.limits.max_rows,
            max_output_bytes: self.limits.max_output_bytes,
            max_expr_depth: self.limits.max_expr_depth,
        }
    }
}

impl Reward for SqlReward {
    type Config = SqlConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "sql".into(),
            version: VERSION.into(),
            description: "Text-to-SQL by execution in sandboxed SQLite: fixture or synthesised databases, Spider test-suite / BIRD / strict comparison".into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn validate(c: &SqlConfig) -> Result<(), String> {
        let w = &c.weights;
        for (name, v) in [
            ("weights.result_match", w.result_match),
            ("weights.executes", w.executes),
            ("weights.format_ok", w.format_ok),
            ("weights.structural_similarity", w.structural_similarity),
        ] {
            if !v.is_finite() {
                return Err(format!("{name} must be a finite number, got {v}"));
            }
        }
        if !(1..=16).contains(&c.synth.databases) {
            return Err(format!("synth.databases must be 1 to 16, got {}", c.synth.databases));
        }
        if !(1..=1000).contains(&c.synth.rows) {
            return Err(format!("synth.rows must be 1 to 1000, got {}", c.synth.rows));
        }
        if c.float_decimals.is_some_and(|d| d > 15) {
            return Err("float_decimals must be at most 15".into());
        }
        if !Tag::is_valid_name(&c.answer_tag) {
            return Err(format!("answer_tag {:?} is not a tag name", c.answer_tag));
        }
        if reward_sdk::fixtures::name_problem(&format!("x{}", c.fixture_suffix)).is_some() {
            return Err(format!("fixture_suffix {:?} must not contain a path separator", c.fixture_suffix));
        }
        let l = &c.limits;
        if !(1..=1_000_000).contains(&l.max_sql_bytes) {
            return Err(format!("limits.max_sql_bytes must be 1 to 1000000, got {}", l.max_sql_bytes));
        }
        if l.max_rows == 0 || l.max_output_bytes == 0 {
            return Err("limits.max_rows and limits.max_output_bytes must be positive".into());
        }
        if !(1..=1000).contains(&l.max_expr_depth) {
            return Err(format!("limits.max_expr_depth must be 1 to 1000, got {}", l.max_expr_depth));
        }
        Ok(())
    }

    fn score(c: &SqlConfig, r: &Rollout) -> Result<Score, RolloutError> {
        score(c, r)
    }
}

reward_sdk::export_reward!(SqlReward);

// ---------------------------------------------------------------------------------------------
// Reference and data source
// ---------------------------------------------------------------------------------------------

struct Reference {
    gold: String,
    db_id: Option<String>,
    schema: Option<String>,
}

fn invalid(msg: impl Into<String>) -> RolloutError {
    RolloutError::InvalidInput(msg.into())
}

fn reference(r: &Rollout) -> Result<Reference, RolloutError> {
    let value = r.reference_json()?;
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Array(items) => {
                let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                (!parts.is_empty() && parts.len() == items.len()).then(|| parts.join(";\n"))
            }
            _ => None,
        }
    };
    match &value {
        Value::String(s) if !s.trim().is_empty() => Ok(Reference { gold: s.clone(), db_id: None, schema: None }),
        Value::Object(map) => {
            let gold = GOLD_KEYS.iter().find_map(|k| map.get(*k).and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty()));
            let Some(gold) = gold else {
                return Err(invalid(format!("reference has no gold SQL (looked for a non-empty string under {})", GOLD_KEYS.join(", "))));
            };
            let db_id = DB_KEYS.iter().find_map(|k| map.get(*k).and_then(|v| v.as_str())).map(str::to_owned);
            let schema = SCHEMA_KEYS.iter().find_map(|k| map.get(*k).and_then(text));
            Ok(Reference { gold: gold.to_owned(), db_id, schema })
        }
        Value::Null => Err(invalid("no reference: the gold SQL is required")),
        _ => Err(invalid(format!("reference must be the gold SQL or an object with one of {}", GOLD_KEYS.join(", ")))),
    }
}

/// The CREATE TABLE statements in `text`, each up to its closing parenthesis.
pub fn create_tables(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("create table") {
        let start = from + i;
        let mut depth = 0i32;
        let mut end = None;
        for (j, b) in scan::unquoted(bytes, start) {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j + 1);
                        break;
                    }
                }
                b';' if depth == 0 => break,
                _ => {}
            }
        }
        match end {
            Some(e) => {
                out.push(&text[start..e]);
                from = e;
            }
            None => from = start + "create table".len(),
        }
    }
    out
}

fn prompt_schema(r: &Rollout) -> Option<String> {
    let before = r.messages.len().saturating_sub(1);
    let stmts: Vec<&str> = r.messages[..before]
        .iter()
        .filter(|m| m.role != "assistant" && m.role != "nova_assistant")
        .flat_map(|m| create_tables(&m.content))
        .collect();
    (!stmts.is_empty()).then(|| stmts.join(";\n"))
}

enum Source {
    Fixture(String),
    Synth(String),
}

fn schema_for(c: &SqlConfig, reference: &Reference, r: &Rollout) -> Option<String> {
    match c.schema_from {
        SchemaFrom::Reference => reference.schema.clone(),
        SchemaFrom::Prompt => prompt_schema(r),
        SchemaFrom::Auto => reference.schema.clone().or_else(|| prompt_schema(r)),
    }
}

// ---------------------------------------------------------------------------------------------
// Caches: instances are reused across batches, so databases and gold results are kept
// ---------------------------------------------------------------------------------------------

/// A set of databases a prediction is checked on, with a key naming it in the gold cache.
struct DbSet {
    key: String,
    names: Vec<String>,
    dbs: Vec<Db>,
}

/// What the gold's parse tree says, once per gold query.
struct GoldInfo {
    /// The gold orders its rows at the top level.
    ordered: bool,
    /// Its structure, when sqlparser parses it.
    structure: Option<analyze::Structure>,
}

/// Most fixture databases kept open; past it the cache starts over.
const MAX_CACHED_FIXTURES: usize = 16;
/// Most synthesised database sets kept; past it the cache starts over.
const MAX_CACHED_SYNTH: usize = 64;
/// Most gold results kept; past it the cache starts over.
const MAX_CACHED_GOLD: usize = 4096;

type GoldResult = Result<Rc<Rows>, String>;
type Loaded = Result<Rc<DbSet>, Rc<String>>;

thread_local! {
    static FIXTURES: RefCell<HashMap<String, Loaded>> = RefCell::new(HashMap::new());
    static SYNTH: RefCell<HashMap<u64, Loaded>> = RefCell::new(HashMap::new());
    static GOLD: RefCell<HashMap<(String, String), GoldResult>> = RefCell::new(HashMap::new());
    static GOLD_INFO: RefCell<HashMap<String, Rc<GoldInfo>>> = RefCell::new(HashMap::new());
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<K, V>>>,
    cap: usize,
    key: K,
    make: impl FnOnce() -> V,
) -> V {
    if let Some(v) = cache.with(|c| c.borrow().get(&key).cloned()) {
        return v;
    }
    let v = make();
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= cap {
            c.clear();
        }
        c.insert(key, v.clone());
    });
    v
}

fn fixture_set(c: &SqlConfig, db_id: &str) -> Result<Rc<DbSet>, String> {
    let plain = !db_id.is_empty()
        && db_id.len() <= 128
        && db_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !db_id.starts_with('.');
    if !plain {
        return Err(format!("db_id {db_id:?} is not a plain name (letters, digits, '_', '-', '.')"));
    }
    let file = format!("{db_id}{}", c.fixture_suffix);
    let made = cached(&FIXTURES, MAX_CACHED_FIXTURES, file.clone(), || {
        reward_sdk::fixtures::read(&file)
            .and_then(|bytes| Db::from_bytes(&bytes).map_err(|e| format!("fixture {file:?}: {e}")))
            .map(|db| Rc::new(DbSet { key: format!("fixture:{file}"), names: vec![file.clone()], dbs: vec![db] }))
            .map_err(Rc::new)
    });
    made.map_err(|e| (*e).clone())
}

fn synth_set(c: &SqlConfig, ddl: &str, gold: &str) -> Result<Rc<DbSet>, String> {
    let spec = synth::Spec { databases: c.synth.databases, rows: c.synth.rows, seed: c.synth.seed };
    let key = synth::fnv(format!("{ddl}\u{0}{gold}\u{0}{spec:?}").as_bytes());
    let made = cached(&SYNTH, MAX_CACHED_SYNTH, key, || -> Loaded {
        let schema = synth::Schema::parse(ddl).map_err(|e| Rc::new(format!("schema does not parse: {e}")))?;
        let (literals, conditions) = match analyze::parse(gold) {
            Ok(stmts) => {
                let columns = schema.column_names();
                (analyze::literals(&stmts, &columns), analyze::conditions(&stmts, &columns))
            }
            Err(_) => Default::default(),
        };
        let dbs =
            schema.synthesise(spec, &literals, &conditions).map_err(|e| Rc::new(format!("cannot synthesise data for the schema: {e}")))?;
        let names = (0..dbs.len()).map(|i| format!("synthesised database {}", i + 1)).collect();
        Ok(Rc::new(DbSet { key: format!("synth:{key:016x}"), names, dbs }))
    });
    made.map_err(|e: Rc<String>| (*e).clone())
}

fn gold_rows(set: &DbSet, i: usize, gold: &str, limits: &QueryLimits) -> GoldResult {
    cached(&GOLD, MAX_CACHED_GOLD, (format!("{}#{i}", set.key), gold.to_owned()), || {
        set.dbs[i].query(gold, limits).map(Rc::new).map_err(|e| e.to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// The answer's SQL
// ---------------------------------------------------------------------------------------------

/// The SQL of the answer, where `format` says it must be; `None` when it is not there.
pub fn find_sql(completion: &str, format: AnswerFormat, answer_tag: &str) -> Option<String> {
    let text = extract::strip_thinking(completion);
    let fence = || {
        extract::code_blocks(&text)
            .filter(|b| b.lang.is_empty() || b.lang.eq_ignore_ascii_case("sql") || b.lang.eq_ignore_ascii_case("sqlite"))
            .last()
            .map(|b| b.body.trim().to_owned())
    };
    let tag = || extract::last_tag_content(&text, &Tag::new(answer_tag)).map(|t| extract::strip_code_fence(t).trim().to_owned());
    let bare = || {
        let t = text.trim();
        let first: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        (first.eq_ignore_ascii_case("select") || first.eq_ignore_ascii_case("with")).then(|| t.to_owned())
    };
    let found = match format {
        AnswerFormat::CodeFence => fence(),
        AnswerFormat::AnswerTag => tag(),
        AnswerFormat::Bare => bare(),
        AnswerFormat::Any => fence().or_else(tag).or_else(bare),
    };
    found.filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

fn score(c: &SqlConfig, r: &Rollout) -> Result<Score, RolloutError> {
    let reference = reference(r)?;
    let gold = reference.gold.trim();
    let schema = || schema_for(c, &reference, r);
    let source = match (c.data, &reference.db_id) {
        (DataSource::Fixtures, Some(db)) | (DataSource::Auto, Some(db)) => Source::Fixture(db.clone()),
        (DataSource::Fixtures, None) => {
            return Err(invalid(format!("data = \"fixtures\" but the reference names no database ({})", DB_KEYS.join(", "))));
        }
        (DataSource::Synthesize, _) | (DataSource::Auto, None) => match schema() {
            Some(s) => Source::Synth(s),
            None => {
                return Err(invalid(format!(
                    "no schema to synthesise databases from: the reference has no {} and the prompt has no CREATE TABLE statement",
                    SCHEMA_KEYS.join(", ")
                )));
            }
        },
    };
    let set = match &source {
        Source::Fixture(db) => match fixture_set(c, db) {
            Ok(set) => set,
            // `auto` falls back to the schema when the fixture cannot be had.
            Err(e) => match (c.data, schema()) {
                (DataSource::Auto, Some(s)) => synth_set(c, &s, gold).map_err(invalid)?,
                _ => return Err(invalid(format!("database {db:?}: {e}"))),
            },
        },
        Source::Synth(s) => synth_set(c, s, gold).map_err(invalid)?,
    };
    let limits = c.query_limits();
    // Gold limits are the config's, with room for long gold queries.
    let gold_limits = QueryLimits { max_sql_bytes: limits.max_sql_bytes.max(gold.len()), ..limits };
    let mut golds = Vec::with_capacity(set.dbs.len());
    for i in 0..set.dbs.len() {
        let g = gold_rows(&set, i, gold, &gold_limits).map_err(|e| invalid(format!("gold SQL fails on {}: {e}", set.names[i])))?;
        golds.push(g);
    }
    let info = cached(&GOLD_INFO, MAX_CACHED_GOLD, gold.to_owned(), || {
        let parsed = analyze::parse(gold).ok();
        let ordered = analyze::orders_at_top_level(gold, parsed.as_deref());
        Rc::new(GoldInfo { ordered, structure: parsed.as_deref().map(analyze::structure) })
    });
    let ordered = info.ordered;

    let mut out = Outcome { databases: set.dbs.len(), ..Outcome::default() };
    let Some(pred) = find_sql(&r.completion, c.answer_format, &c.answer_tag) else {
        out.reason = format!("no SQL found in the answer (answer_format = {:?})", c.answer_format);
        return Ok(out.score(c));
    };
    out.format_ok = true;
    if pred.len() > limits.max_sql_bytes {
        out.reason = format!("query is {} bytes, over the cap of {}", pred.len(), limits.max_sql_bytes);
        return Ok(out.score(c));
    }
    let pred_parsed = analyze::parse(&pred);
    out.parses = matches!(&pred_parsed, Ok(s) if s.len() == 1 && matches!(s[0], sqlparser::ast::Statement::Query(_)));
    if let (Some(g), Ok(p)) = (&info.structure, &pred_parsed) {
        out.similarity = g.similarity(&analyze::structure(p));
    }
    out.executes = true;
    out.result_match = true;
    for (i, db) in set.dbs.iter().enumerate() {
        let rows = match db.query(&pred, &limits) {
            Ok(rows) => rows,
            #[cfg(not(target_arch = "wasm32"))]
            Err(ExecError::Budget) => {
                return Err(RolloutError::Failed(
                    "query ran past the native step budget (in the sandbox it runs out of fuel: TIMEOUT)".into(),
                ));
            }
            Err(e) => {
                out.executes = false;
                out.result_match = false;
                out.reason = format!("query does not execute on {}: {e}", set.names[i]);
                break;
            }
        };
        if !out.result_match {
            continue;
        }
        let g = &golds[i];
        if c.require_data_read && g.reads_data && !rows.reads_data {
            out.result_match = false;
            out.reason = "query reads no table, the gold does: a constant answer is not paid".into();
        } else if !compare::matches(g, &rows, c.mode, ordered, c.float_decimals) {
            out.result_match = false;
            out.reason = format!(
                "result differs on {}: gold {}, predicted {}{}",
                set.names[i],
                compare::describe(g),
                compare::describe(&rows),
                if ordered && c.mode == Mode::Testsuite { " (the gold orders its rows)" } else { "" }
            );
        }
    }
    if out.result_match {
        out.reason = format!("result matches the gold on {} database{}", out.databases, if out.databases == 1 { "" } else { "s" });
    }
    Ok(out.score(c))
}

#[derive(Default)]
struct Outcome {
    format_ok: bool,
    parses: bool,
    executes: bool,
    result_match: bool,
    similarity: f64,
    databases: usize,
    reason: String,
}

impl Outcome {
    fn score(self, c: &SqlConfig) -> Score {
        let w = &c.weights;
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        let tier = if self.result_match {
            w.result_match
        } else if self.executes {
            w.executes
        } else if self.format_ok {
            w.format_ok
        } else {
            0.0
        };
        let value = tier + w.structural_similarity * self.similarity;
        let s = Score::new(value)
            .reward("format_ok", b(self.format_ok))
            .metric("parses", b(self.parses))
            .reward("executes", b(self.executes))
            .reward("result_match", b(self.result_match));
        let s = if w.structural_similarity != 0.0 {
            s.reward("structural_similarity", self.similarity)
        } else {
            s.metric("structural_similarity", self.similarity)
        };
        s.metric("databases", self.databases as f64).with_reason(self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_tables_are_cut_at_their_closing_parenthesis() {
        let prompt = "Schema: CREATE TABLE a (x INTEGER, y VARCHAR(10), z TEXT DEFAULT ')'), CREATE TABLE \"b c\" (id INT); \
                      question: how many? create table   t2(q)";
        assert_eq!(
            create_tables(prompt),
            vec!["CREATE TABLE a (x INTEGER, y VARCHAR(10), z TEXT DEFAULT ')')", "CREATE TABLE \"b c\" (id INT)", "create table   t2(q)"]
        );
        assert!(create_tables("CREATE TABLE broken (a INT").is_empty());
        assert!(create_tables("no schema").is_empty());
    }

    #[test]
    fn find_sql_looks_where_asked() {
        let fence = "x\n```sql\nSELECT 1\n```";
        assert_eq!(find_sql(fence, AnswerFormat::Any, "answer").as_deref(), Some("SELECT 1"));
        assert_eq!(find_sql(fence, AnswerFormat::Bare, "answer"), None);
        assert_eq!(find_sql("```python\nprint(1)\n```", AnswerFormat::CodeFence, "answer"), None);
        assert_eq!(find_sql("<sql>SELECT 2</sql>", AnswerFormat::AnswerTag, "sql").as_deref(), Some("SELECT 2"));
        assert_eq!(
            find_sql("with x as (select 1) select * from x", AnswerFormat::Any, "answer").as_deref(),
            Some("with x as (select 1) select * from x")
        );
        assert_eq!(find_sql("<think>SELECT 9</think>", AnswerFormat::Any, "answer"), None);
    }
}
