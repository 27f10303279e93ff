//! The tests of a problem, read from the rollout's reference in the shapes the datasets use.
//!
//! - **stdin/stdout** (APPS, CodeContests, TACO): `{"input_output": {"inputs": [...], "outputs":
//!   [...]}}`, the object or its JSON text (APPS stores it as text); an input or output may be a
//!   list of lines. With `fn_name`, the problem is **call-based**: each input is the list of
//!   positional arguments, each output the expected return value.
//! - **HumanEval**: `{"prompt", "test", "entry_point"}`: one check, `test` defining
//!   `check(candidate)`.
//! - **MBPP**: `{"test_list": ["assert ...", ...], "test_setup_code", "test_imports"}`: one test
//!   per assert.

use reward_sdk::json_kind;
use serde_json::{Map, Value};

/// What the program is run against.
#[derive(Clone, Debug, PartialEq)]
pub enum Suite {
    /// Standard input and the expected standard output, per test.
    Io(Vec<(String, String)>),
    /// A function called with arguments (JSON array), and the expected value, per test.
    Call {
        /// The function the program must define.
        function: String,
        /// (arguments, expected value).
        tests: Vec<(Value, Value)>,
    },
    /// Assert-style tests run in an instance of their own (HumanEval, MBPP).
    Asserts {
        /// Code the program is prefixed with (HumanEval's prompt: imports, helpers, the signature).
        prefix: String,
        /// Code each test's instance runs first (imports, helpers, MBPP's `test_setup_code`).
        setup: String,
        /// The tests: code that raises when the program is wrong.
        tests: Vec<String>,
        /// The function the tests call, when the data names it (HumanEval's `entry_point`);
        /// otherwise every top-level function of the program.
        entry_point: Option<String>,
    },
}

impl Suite {
    /// How many tests the suite has.
    pub fn len(&self) -> usize {
        match self {
            Suite::Io(t) => t.len(),
            Suite::Call { tests, .. } => tests.len(),
            Suite::Asserts { tests, .. } => tests.len(),
        }
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the suite from the reference; the error names what is missing or malformed.
pub fn read(reference: &Value) -> Result<Suite, String> {
    let Value::Object(map) = reference else {
        return Err(format!(
            "the reference must be an object with the tests (input_output, test + entry_point, or test_list), not {}",
            json_kind(reference)
        ));
    };
    if let Some(io) = map.get("input_output") {
        return read_io(io);
    }
    if let Some(test) = map.get("test") {
        return read_humaneval(map, test);
    }
    if let Some(list) = map.get("test_list") {
        return read_mbpp(map, list);
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    Err(format!(
        "the reference has no tests: expected `input_output` (APPS/TACO), `test` + `entry_point` (HumanEval) or `test_list` (MBPP); it has {}",
        if keys.is_empty() { "no keys".to_owned() } else { keys.join(", ") }
    ))
}

fn read_io(io: &Value) -> Result<Suite, String> {
    let parsed;
    let io = match io {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|e| format!("`input_output` is text but not JSON: {e}"))?;
            &parsed
        }
        other => other,
    };
    let Value::Object(io) = io else {
        return Err(format!("`input_output` must be an object with `inputs` and `outputs`, not {}", json_kind(io)));
    };
    let list = |key: &str| match io.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("`input_output.{key}` must be an array, not {}", json_kind(other))),
        None => Err(format!("`input_output` has no `{key}`")),
    };
    let (inputs, outputs) = (list("inputs")?, list("outputs")?);
    if inputs.len() != outputs.len() {
        return Err(format!("`input_output` has {} inputs but {} outputs", inputs.len(), outputs.len()));
    }
    match io.get("fn_name") {
        Some(Value::String(function)) if !function.is_empty() => {
            let tests = inputs
                .iter()
                .zip(outputs)
                .enumerate()
                .map(|(i, (args, expected))| match args {
                    Value::Array(_) => Ok((args.clone(), expected.clone())),
                    other => {
                        Err(format!("`input_output.inputs[{i}]` must be the array of arguments to `{function}`, not {}", json_kind(other)))
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(Suite::Call { function: function.clone(), tests })
        }
        Some(Value::Null) | None => {
            let text = |what: &str, i: usize, v: &Value| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Array(lines) if lines.iter().all(Value::is_string) => {
                    Ok(lines.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
                }
                other => Err(format!("`input_output.{what}[{i}]` must be text (or a list of lines), not {}", json_kind(other))),
            };
            let tests = inputs
                .iter()
                .zip(outputs)
                .enumerate()
                .map(|(i, (input, output))| Ok((text("inputs", i, input)?, text("outputs", i, output)?)))
                .collect::<Result<_, String>>()?;
            Ok(Suite::Io(tests))
        }
        Some(other) => Err(format!("`input_output.fn_name` must be a function name, not {}", json_kind(other))),
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Ok(String::new()),
        Some(other) => Err(format!("`{key}` must be text, not {}", json_kind(other))),
    }
}

fn read_humaneval(map: &Map<String, Value>, test: &Value) -> Result<Suite, String> {
    let Value::String(test) = test else {
        return Err(format!("`test` must be the test code (text), not {}", json_kind(test)));
    };
    let entry_point = string_field(map, "entry_point")?;
    if !is_identifier(&entry_point) {
        return Err(format!("`entry_point` must name the function the test checks, got {entry_point:?}"));
    }
    let prompt = string_field(map, "prompt")?;
    // The tests run `check(candidate)` on the stand-in for the program's function; the prompt
    // (imports, helper functions the test may call) runs first in the test's instance.
    Ok(Suite::Asserts {
        prefix: prompt.clone(),
        setup: prompt,
        tests: vec![format!("{test}\n\ncheck({entry_point})\n")],
        entry_point: Some(entry_point),
    })
}

fn read_mbpp(map: &Map<String, Value>, list: &Value) -> Result<Suite, String> {
    let Value::Array(items) = list else {
        return Err(format!("`test_list` must be an array of assert statements, not {}", json_kind(list)));
    };
    let tests = items
        .iter()
        .enumerate()
        .map(|(i, t)| t.as_str().map(str::to_owned).ok_or_else(|| format!("`test_list[{i}]` must be text, not {}", json_kind(t))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut setup = String::new();
    match map.get("test_imports") {
        Some(Value::Array(imports)) => {
            for (i, line) in imports.iter().enumerate() {
                let line = line.as_str().ok_or_else(|| format!("`test_imports[{i}]` must be text"))?;
                setup.push_str(line);
                setup.push('\n');
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => return Err(format!("`test_imports` must be an array of import lines, not {}", json_kind(other))),
    }
    setup.push_str(&string_field(map, "test_setup_code")?);
    Ok(Suite::Asserts { prefix: String::new(), setup, tests, entry_point: None })
}

/// Whether `s` is a Python identifier (ASCII letters, digits and `_`, not starting with a digit).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic()) && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The top-level functions a program defines (`def NAME(` at the start of a line), in order and
/// without repeats: what an MBPP test may call.
pub fn top_level_functions(program: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in program.lines() {
        let rest = line.strip_prefix("async def ").or_else(|| line.strip_prefix("def "));
        if let Some(name) = rest.and_then(|r| r.split('(').next()).map(str::trim)
            && is_identifier(name)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn apps_io_as_text_or_object_with_line_lists() {
        let text = json!({"input_output": "{\"inputs\": [\"1 2\\n\"], \"outputs\": [\"3\\n\"]}"});
        assert_eq!(read(&text).unwrap(), Suite::Io(vec![("1 2\n".into(), "3\n".into())]));
        let lines = json!({"input_output": {"inputs": [["1", "2"]], "outputs": [["3"]], "fn_name": null}});
        assert_eq!(read(&lines).unwrap(), Suite::Io(vec![("1\n2".into(), "3".into())]));
    }

    #[test]
    fn call_based_keeps_the_arguments_as_json() {
        let r = json!({"input_output": {"fn_name": "add", "inputs": [[1, 2]], "outputs": [[3]]}});
        assert_eq!(read(&r).unwrap(), Suite::Call { function: "add".into(), tests: vec![(json!([1, 2]), json!([3]))] });
        let bad = json!({"input_output": {"fn_name": "add", "inputs": [1], "outputs": [3]}});
        assert!(read(&bad).unwrap_err().contains("inputs[0]` must be the array of arguments to `add`"));
    }

    #[test]
    fn humaneval_is_one_check_of_the_entry_point() {
        let r = json!({"prompt": "def f(x):\n", "test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "f"});
        let Suite::Asserts { tests, entry_point, setup, .. } = read(&r).unwrap() else { panic!() };
        assert_eq!(tests.len(), 1);
        assert!(tests[0].ends_with("check(f)\n"));
        assert_eq!(entry_point.as_deref(), Some("f"));
        assert_eq!(setup, "def f(x):\n");
        assert!(read(&json!({"test": "x", "entry_point": "f(x)"})).unwrap_err().contains("entry_point"));
    }

    #[test]
    fn mbpp_is_one_test_per_assert() {
        let r =
            json!({"test_list": ["assert f(1) == 2", "assert f(2) == 3"], "test_setup_code": "import math", "test_imports": ["import re"]});
        let Suite::Asserts { tests, setup, entry_point, .. } = read(&r).unwrap() else { panic!() };
        assert_eq!(tests.len(), 2);
        assert_eq!(setup, "import re\nimport math");
        assert_eq!(entry_point, None);
    }

    #[test]
    fn malformed_references_name_the_problem() {
        assert!(read(&json!("x")).unwrap_err().contains("must be an object"));
        assert!(read(&json!({"answer": 1})).unwrap_err().contains("it has answer"));
        assert!(read(&json!({"input_output": {"inputs": ["1"], "outputs": []}})).unwrap_err().contains("1 inputs but 0 outputs"));
        assert!(read(&json!({"input_output": "{"})).unwrap_err().contains("not JSON"));
        assert!(read(&json!({"test_list": [1]})).unwrap_err().contains("test_list[0]"));
    }

    #[test]
    fn top_level_functions_skip_methods_and_repeats() {
        let p = "import x\ndef a(n):\n    def inner(): pass\nclass C:\n    def m(self): pass\nasync def b():\n  pass\ndef a(n): pass\n";
        assert_eq!(top_level_functions(p), vec!["a", "b"]);
    }
}
