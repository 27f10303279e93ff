//! Comparing what a program printed (or returned) with what the test expects, outside the
//! program's interpreter.

use serde::Deserialize;
use serde_json::Value;

/// How a program's standard output is compared with the expected output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Byte for byte, but for one trailing line break on either side.
    Exact,
    /// Line by line, each line as its whitespace-separated tokens; blank lines at the start and
    /// the end are ignored (so trailing spaces, `\r\n` and a missing final newline pass, another
    /// word does not). What judges call a presentation error passes. The default.
    #[default]
    Whitespace,
    /// As `whitespace`, with tokens that both parse as numbers equal within `float_tol`.
    Float,
}

/// Whether `got` matches `expected` under `how`; numbers within `tol` (absolute, or relative to
/// the expected value when it is above 1) under [`Compare::Float`].
pub fn outputs_match(got: &str, expected: &str, how: Compare, tol: f64) -> bool {
    match how {
        Compare::Exact => strip_one_newline(got) == strip_one_newline(expected),
        Compare::Whitespace => lines_match(got, expected, &|a, b| a == b),
        Compare::Float => lines_match(got, expected, &|a, b| a == b || numbers_close(a, b, tol)),
    }
}

fn strip_one_newline(s: &str) -> &str {
    s.strip_suffix("\r\n").or_else(|| s.strip_suffix('\n')).unwrap_or(s)
}

/// The lines of `text` that are not blank at its start and end.
fn content_lines(text: &str) -> impl Iterator<Item = &str> {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(lines.len());
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(first, |i| i + 1);
    lines.into_iter().skip(first).take(last.saturating_sub(first))
}

fn lines_match(got: &str, expected: &str, token_eq: &dyn Fn(&str, &str) -> bool) -> bool {
    let mut got = content_lines(got);
    let mut expected = content_lines(expected);
    loop {
        match (got.next(), expected.next()) {
            (None, None) => return true,
            (Some(g), Some(e)) => {
                let (mut g, mut e) = (g.split_whitespace(), e.split_whitespace());
                loop {
                    match (g.next(), e.next()) {
                        (None, None) => break,
                        (Some(a), Some(b)) if token_eq(a, b) => {}
                        _ => return false,
                    }
                }
            }
            _ => return false,
        }
    }
}

fn numbers_close(a: &str, b: &str, tol: f64) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => (x - y).abs() <= tol * y.abs().max(1.0),
        _ => false,
    }
}

/// Whether a returned value (JSON) equals the expected one: arrays element by element (a tuple
/// comes back as an array), objects key by key, numbers within `tol` (as in [`outputs_match`]),
/// an integer equal to the same float. APPS-style data often wraps a call's expected value in a
/// one-element list: a value equal to that element matches too.
pub fn values_match(got: &Value, expected: &Value, tol: f64) -> bool {
    value_eq(got, expected, tol) || matches!(expected, Value::Array(items) if items.len() == 1 && value_eq(got, &items[0], tol))
}

fn value_eq(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_f64(), y.as_f64()) {
                (Some(f), Some(g)) => f == g || (f - g).abs() <= tol * g.abs().max(1.0),
                _ => x == y,
            },
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| value_eq(a, b, tol)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| value_eq(v, w, tol))),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whitespace_passes_presentation_errors_and_nothing_else() {
        let w = |a, b| outputs_match(a, b, Compare::Whitespace, 0.0);
        assert!(w("3\n", "3"));
        assert!(w("1 2  \r\n3\n\n\n", "1 2\n3\n"));
        assert!(w("\n 1   2\n", "1 2\n"));
        assert!(!w("1 2 3\n", "1 2\n"), "an extra token");
        assert!(!w("1\n2\n", "1 2\n"), "tokens on other lines");
        assert!(!w("", "0\n"));
        assert!(w("", "\n"), "nothing expected, nothing printed");
        assert!(!w("The answer is 3\n", "3\n"));
    }

    #[test]
    fn exact_is_exact_but_for_the_final_newline() {
        assert!(outputs_match("3\n", "3", Compare::Exact, 0.0));
        assert!(!outputs_match("3 \n", "3\n", Compare::Exact, 0.0));
    }

    #[test]
    fn float_compares_numeric_tokens_with_tolerance() {
        let f = |a, b| outputs_match(a, b, Compare::Float, 1e-6);
        assert!(f("0.3333333\n", "0.333333333"));
        assert!(f("1e6 x\n", "1000000.0000001 x"));
        assert!(!f("0.34\n", "0.333333"));
        assert!(f("nan\n", "nan"), "the same text is the same output");
        assert!(!f("nan\n", "0"), "NaN is no number's neighbour");
        assert!(!f("1 y\n", "1 x"), "words still compare exactly");
    }

    #[test]
    fn values_compare_structurally() {
        assert!(values_match(&json!([1, 2]), &json!([1, 2]), 0.0));
        assert!(values_match(&json!(3), &json!([3]), 0.0), "APPS wraps the value in a list");
        assert!(values_match(&json!(2), &json!(2.0), 0.0));
        assert!(values_match(&json!(0.1 + 0.2), &json!(0.3), 1e-9));
        assert!(!values_match(&json!(true), &json!(1), 0.0), "a bool is not a number");
        assert!(!values_match(&json!([1, 2]), &json!([2, 1]), 0.0));
        assert!(values_match(&json!({"a": [1]}), &json!({"a": [1]}), 0.0));
        assert!(!values_match(&json!("3"), &json!(3), 0.0));
    }
}
