//! OpenAI grader templates: `{{ namespace.path }}` substitutions in a grader's `input` and
//! `reference`, parsed once when the config is read and rendered per rollout.
//!
//! Namespaces: `item` (the dataset row: the rollout's metadata, which holds the row's other
//! top-level fields; then `reference_answer`, the rollout's reference; then the keys of a
//! JSON-object reference) and `sample`
//! (`output_text`, the completion; `output_json`, the completion parsed as JSON). Paths are
//! dot-separated keys, with `[N]` (or a numeric segment) indexing arrays.
//!
//! A `pairwise` grader's `input` (our extension, not an OpenAI grader) has one more namespace,
//! `pair`: `{{pair.first}}` and `{{pair.second}}`, the two answers it compares, in the order of the
//! judge call ([`Template::parse_pairwise`]). Every other template refuses `pair` when it is parsed.

use std::fmt::Write as _;

use serde_json::Value;

/// A parsed template: literal text and variables, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Var(Var),
}

/// One `{{ ... }}` variable.
#[derive(Clone, Debug, PartialEq)]
struct Var {
    /// As written between the braces, trimmed: quoted in errors.
    source: String,
    namespace: Namespace,
    path: Vec<Segment>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Namespace {
    Item,
    OutputText,
    OutputJson,
    Pair(PairSide),
}

/// Which of the two answers a `pairwise` grader compares: `{{pair.first}}` or `{{pair.second}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairSide {
    /// `{{pair.first}}`.
    First,
    /// `{{pair.second}}`.
    Second,
}

/// The two answers of one `pairwise` judge call, in the order the judge sees them.
#[derive(Clone, Copy, Debug)]
pub struct Pair<'a> {
    /// `{{pair.first}}`.
    pub first: &'a str,
    /// `{{pair.second}}`.
    pub second: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// What a template is rendered against: one rollout.
pub struct Scope<'a> {
    /// The rollout's reference (`reference_answer`), parsed; `Null` when absent.
    pub reference: &'a Value,
    /// The rollout's other fields, parsed; `Null` when absent.
    pub metadata: &'a Value,
    /// The completion.
    pub output_text: &'a str,
    /// The completion parsed as JSON, computed on first use: `Err` says why it is not JSON.
    pub output_json: &'a dyn Fn() -> Result<&'a Value, String>,
}

impl<'a> Scope<'a> {
    /// The value of `item.NAME`: the row's own top-level field `NAME` first (the rollout's
    /// metadata: what OpenAI's `item.NAME` is), then, for `reference_answer`, the reference, then
    /// a key of a JSON-object reference (Nova rows nest the dataset's fields under
    /// `reference_answer`). `None` when no such field exists. Templates and the python grader's
    /// `item` dict both read fields through this one lookup.
    pub fn item_field(&self, name: &str) -> Option<&'a Value> {
        if let Some(v) = self.metadata.get(name) {
            Some(v)
        } else if name == "reference_answer" && !self.reference.is_null() {
            Some(self.reference)
        } else {
            self.reference.get(name)
        }
    }

    /// Every name `item.NAME` reaches in this rollout, each once: `reference_answer` (when there
    /// is a reference), the keys of a JSON-object reference, then the metadata's keys.
    pub fn item_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if !self.reference.is_null() {
            names.push("reference_answer".to_owned());
        }
        for v in [self.reference, self.metadata] {
            if let Value::Object(map) = v {
                for k in map.keys() {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
        }
        names
    }

    /// The whole `item` namespace as one JSON object: each of [`Scope::item_names`] with the
    /// value [`Scope::item_field`] gives it, so `item["NAME"]` in a python grader is what
    /// `{{item.NAME}}` renders in a template.
    pub fn item_object(&self) -> Value {
        let fields = self.item_names().into_iter().filter_map(|name| self.item_field(&name).map(|v| (name, v.clone())));
        Value::Object(fields.collect())
    }

    /// The `sample` namespace as one JSON object: `output_text`, the completion, and
    /// `output_json`, the completion parsed as JSON, or `null` when it is not JSON (OpenAI
    /// populates `output_json` only for a sample that is valid JSON). The other sample variables
    /// OpenAI lists (`output_tools`, `choices`, ...) are absent: rollouts arrive as text.
    pub fn sample_object(&self) -> Value {
        let output_json = (self.output_json)().cloned().unwrap_or(Value::Null);
        serde_json::json!({"output_text": self.output_text, "output_json": output_json})
    }
}

impl Template {
    /// Parses `text`; the error names the problem (and `field`, the config key it came from).
    /// `{{pair.*}}` is refused: only a `pairwise` grader's messages have a pair
    /// ([`Template::parse_pairwise`]).
    pub fn parse(field: &str, text: &str) -> Result<Template, String> {
        Template::parse_in(field, text, false)
    }

    /// Parses a `pairwise` grader's message `text`, where `{{pair.first}}` and `{{pair.second}}`
    /// are variables too.
    pub fn parse_pairwise(field: &str, text: &str) -> Result<Template, String> {
        Template::parse_in(field, text, true)
    }

    fn parse_in(field: &str, text: &str, pair: bool) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| format!("`{field}`: unclosed `{{{{` in template {text:?}"))?;
            let expr = after[..close].trim();
            parts.push(Part::Var(parse_var(field, expr, pair)?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Whether the template uses `{{pair.first}}` (`First`) or `{{pair.second}}` (`Second`).
    pub fn uses_pair(&self, side: PairSide) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(v) if v.namespace == Namespace::Pair(side)))
    }

    /// Whether the template uses `{{sample.output_json...}}`.
    pub fn uses_output_json(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(v) if v.namespace == Namespace::OutputJson))
    }

    /// Renders the template for one rollout. A missing field or a completion that is not JSON is
    /// an error naming the variable.
    pub fn render(&self, field: &str, scope: &Scope<'_>) -> Result<String, String> {
        self.render_with_pair(field, scope, None)
    }

    /// Renders the template for one rollout and, in a `pairwise` grader's messages, one pair of
    /// answers (`{{pair.first}}`, `{{pair.second}}`; `None` outside them).
    pub fn render_with_pair(&self, field: &str, scope: &Scope<'_>, pair: Option<Pair<'_>>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(var) => {
                    let value = resolve(var, scope, pair).map_err(|e| format!("`{field}`: {{{{{}}}}}: {e}", var.source))?;
                    match value {
                        Resolved::Str(s) => out.push_str(s),
                        Resolved::Json(v) => match v {
                            Value::String(s) => out.push_str(s),
                            other => {
                                let _ = write!(out, "{other}");
                            }
                        },
                    }
                }
            }
        }
        Ok(out)
    }
}

fn parse_var(field: &str, expr: &str, pair: bool) -> Result<Var, String> {
    let bad = |why: &str| format!("`{field}`: template variable {{{{{expr}}}}}: {why}");
    if expr.is_empty() {
        return Err(bad("empty; expected `item.FIELD` or `sample.output_text`"));
    }
    let mut segments = split_path(expr).map_err(|e| bad(&e))?;
    let Some(Segment::Key(namespace)) = segments.first().cloned() else {
        return Err(bad("must start with a namespace, `item` or `sample`"));
    };
    segments.remove(0);
    let (namespace, path) = match namespace.as_str() {
        "item" => {
            if segments.is_empty() {
                return Err(bad("names no field: write `item.FIELD`"));
            }
            (Namespace::Item, segments)
        }
        "sample" => {
            let Some(Segment::Key(var)) = segments.first().cloned() else {
                return Err(bad("names no sample variable: write `sample.output_text` or `sample.output_json`"));
            };
            segments.remove(0);
            match var.as_str() {
                "output_text" if segments.is_empty() => (Namespace::OutputText, segments),
                "output_text" => return Err(bad("`sample.output_text` is a string and has no fields")),
                "output_json" => (Namespace::OutputJson, segments),
                "output_tools" | "choices" | "output_audio" => {
                    return Err(bad(&format!(
                        "`sample.{var}` is not available: rollouts reach this server as text (only `sample.output_text` and `sample.output_json`)"
                    )));
                }
                other => return Err(bad(&format!("unknown sample variable `{other}`; expected `output_text` or `output_json`"))),
            }
        }
        "pair" if !pair => {
            return Err(bad("`pair` (the two answers compared) is only available in the `input` messages of a pairwise grader"));
        }
        "pair" => {
            let side = match segments.first() {
                Some(Segment::Key(k)) if k == "first" => PairSide::First,
                Some(Segment::Key(k)) if k == "second" => PairSide::Second,
                Some(Segment::Key(k)) => return Err(bad(&format!("unknown pair variable `{k}`; expected `first` or `second`"))),
                _ => return Err(bad("names no answer: write `pair.first` or `pair.second`")),
            };
            if segments.len() > 1 {
                return Err(bad("`pair.first` and `pair.second` are strings and have no fields"));
            }
            (Namespace::Pair(side), Vec::new())
        }
        other if pair => {
            return Err(bad(&format!("unknown namespace `{other}`; the namespaces are `item`, `sample` and `pair`")));
        }
        other => return Err(bad(&format!("unknown namespace `{other}`; the namespaces are `item` and `sample`"))),
    };
    Ok(Var { source: expr.to_owned(), namespace, path })
}

/// `a.b[0].c` -> [a, b, 0, c]. A segment of digits indexes an array (or is a key of an object).
fn split_path(expr: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    for piece in expr.split('.') {
        let (key, mut rest) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        let key = key.trim();
        if key.is_empty() && (out.is_empty() || rest.is_empty()) {
            return Err("empty path segment".to_owned());
        }
        if !key.is_empty() {
            if key.chars().any(|c| c.is_whitespace() || c == ']' || c == '{' || c == '}') {
                return Err(format!("bad path segment `{key}`"));
            }
            out.push(Segment::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or("unclosed `[`")?;
            let index = rest[1..close].trim();
            let index: usize = index.parse().map_err(|_| format!("`[{index}]` is not an array index"))?;
            out.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected `{rest}` after `]`"));
            }
        }
    }
    Ok(out)
}

enum Resolved<'a> {
    Str(&'a str),
    Json(&'a Value),
}

/// A variable's value: borrowed from the rollout (`'a`) or the pair (`'r`).
fn resolve<'r, 'a: 'r>(var: &Var, scope: &Scope<'a>, pair: Option<Pair<'r>>) -> Result<Resolved<'r>, String> {
    match var.namespace {
        Namespace::OutputText => Ok(Resolved::Str(scope.output_text)),
        Namespace::Pair(side) => {
            let pair = pair.ok_or("there is no pair of answers here (only a pairwise grader's messages have one)")?;
            Ok(Resolved::Str(if side == PairSide::First { pair.first } else { pair.second }))
        }
        Namespace::OutputJson => {
            let root = (scope.output_json)()?;
            walk(root, &var.path, "sample.output_json").map(Resolved::Json)
        }
        Namespace::Item => {
            let Segment::Key(first) = &var.path[0] else { unreachable!("item paths start with a key") };
            let Some(root) = scope.item_field(first) else {
                let mut found = scope.item_names();
                found.truncate(20);
                return Err(format!(
                    "the rollout has no field `{first}` (item fields: {})",
                    if found.is_empty() { "none".to_owned() } else { found.join(", ") }
                ));
            };
            walk(root, &var.path[1..], &format!("item.{first}")).map(Resolved::Json)
        }
    }
}

fn walk<'a>(mut value: &'a Value, path: &[Segment], start: &str) -> Result<&'a Value, String> {
    let mut at = start.to_owned();
    for segment in path {
        let next = match (segment, value) {
            (Segment::Key(k), Value::Object(map)) => map.get(k.as_str()),
            (Segment::Key(k), Value::Array(items)) => k.parse::<usize>().ok().and_then(|i| items.get(i)),
            (Segment::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => {
                let what = match segment {
                    Segment::Key(k) => format!("no field `{k}`"),
                    Segment::Index(i) => format!("no element [{i}]"),
                };
                return Err(format!("`{at}` has {what} (it is {})", describe(value)));
            }
        }
        match segment {
            Segment::Key(k) => {
                let _ = write!(at, ".{k}");
            }
            Segment::Index(i) => {
                let _ = write!(at, "[{i}]");
            }
        }
    }
    Ok(value)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().take(10).map(String::as_str).collect();
            format!("an object with keys {}", if keys.is_empty() { "none".to_owned() } else { keys.join(", ") })
        }
    }
}
