// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

use super::TrimFast;

/// LaTeX commands whose argument is kept and whose braces are dropped.
pub(super) const LATEX_WRAPPERS: [&str; 11] = [
    "\\text{",
    "\\textbf{",
    "\\textit{",
    "\\textrm{",
    "\\texttt{",
    "\\mathrm{",
    "\\mathbf{",
    "\\mathit{",
    "\\mbox{",
    "\\operatorname{",
    "\\boxed{",
];

/// LaTeX escapes and spacing, and what they become (a space collapses with its neighbours).
const LATEX_ESCAPES: [(&str, &str); 16] = [
    ("\\$", "$"),
    ("\\%", "%"),
    ("\\&", "&"),
    ("\\#", "#"),
    ("\\_", "_"),
    ("\\{", "{"),
    ("\\}", "}"),
    ("\\,", " "),
    ("\\;", " "),
    ("\\:", " "),
    ("\\ ", " "),
    ("\\!", ""),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("\\left", ""),
    ("\\right", ""),
];

pub(super) fn latex_escape(rest: &str) -> Option<(&'static str, &'static str)> {
    LATEX_ESCAPES.iter().copied().find(|(pattern, _)| {
        rest.starts_with(pattern)
            // `\left` must not match `\leftarrow`.
            && !(pattern.ends_with(|c: char| c.is_ascii_alphabetic())
                && rest[pattern.len()..].starts_with(|c: char| c.is_ascii_alphabetic()))
    })
}

/// `text` prepared for an exact comparison: lowercased, see [`normalize_text_with`].
///
/// ```
/// use reward_sdk::extract::normalize_text;
/// assert_eq!(normalize_text("  **\"Paris\"**. "), "paris");
/// assert_eq!(normalize_text("$\\text{New   York}$"), "new york");
/// assert_eq!(normalize_text("(B)"), "b");
/// ```
pub fn normalize_text(text: &str) -> String {
    normalize_text_with(text, true)
}

/// `text` prepared for an exact comparison.
///
/// - math delimiters around the whole text are removed (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`);
/// - `\text{…}`, `\textbf{…}`, `\mathrm{…}`, `\boxed{…}` and similar keep only their argument,
///   LaTeX escapes (`\%`, `\$`, …) become their character, LaTeX spacing becomes a space;
/// - letters are lowercased when `lowercase` is set (Unicode lowercase);
/// - runs of whitespace become one space;
/// - surrounding quotes, backticks, markdown `*`, trailing `.,;:!?`, and parentheses around the
///   whole text (unless it holds a comma: `(1, 2)` is a pair) are removed, a few layers deep.
///
/// One pass plus a bounded number of trims; allocates the result once.
pub fn normalize_text_with(text: &str, lowercase: bool) -> String {
    let t = strip_math_delimiters(text.trim_fast());
    let mut out = String::with_capacity(t.len());
    // For each open brace, whether it belongs to a wrapper command (and is dropped when closed).
    let mut braces: Vec<bool> = Vec::new();
    let mut space = false;
    let emit = |out: &mut String, c: char, space: &mut bool| {
        if c.is_whitespace() {
            *space = true;
            return;
        }
        if *space && !out.is_empty() {
            out.push(' ');
        }
        *space = false;
        if lowercase {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    };
    let mut i = 0;
    while let Some(c) = t[i..].chars().next() {
        let rest = &t[i..];
        if c == '\\' {
            if let Some(w) = LATEX_WRAPPERS.iter().find(|w| rest.starts_with(**w)) {
                braces.push(true);
                i += w.len();
                continue;
            }
            if let Some((pattern, replacement)) = latex_escape(rest) {
                replacement.chars().for_each(|r| emit(&mut out, r, &mut space));
                i += pattern.len();
                continue;
            }
        }
        match c {
            '{' => {
                braces.push(false);
                emit(&mut out, c, &mut space);
            }
            '}' => {
                if braces.pop() != Some(true) {
                    emit(&mut out, c, &mut space);
                }
            }
            _ => emit(&mut out, c, &mut space),
        }
        i += c.len_utf8();
    }
    let (start, end) = surrounding_trim(&out);
    out.truncate(end);
    out.drain(..start);
    out
}

fn strip_math_delimiters(t: &str) -> &str {
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if t.len() >= open.len() + close.len() && t.starts_with(open) && t.ends_with(close) {
            let inner = &t[open.len()..t.len() - close.len()];
            // `$x$ and $y$` is not one math span.
            if !inner.contains(open) {
                return inner.trim_fast();
            }
        }
    }
    t
}

/// The range of `s` left after removing surrounding punctuation, quotes and parentheses.
fn surrounding_trim(s: &str) -> (usize, usize) {
    const QUOTES: &[char] = &['"', '\'', '`', '*', '“', '”', '‘', '’', '«', '»'];
    const TRAILING: &[char] = &['.', ',', ';', ':', '!', '?'];
    let mut t = s;
    // Bounded, so nested parentheses cannot make this quadratic.
    for _ in 0..8 {
        let before = t.len();
        t = t.trim_matches(|c: char| c.is_whitespace() || QUOTES.contains(&c));
        t = t.trim_end_matches(|c: char| c.is_whitespace() || TRAILING.contains(&c) || QUOTES.contains(&c));
        t = strip_math_delimiters(t);
        if t.len() >= 2 && t.starts_with('(') && t.ends_with(')') && !t.contains(',') {
            let inner = &t[1..t.len() - 1];
            // Only when the first parenthesis closes at the end: not `(a) and (b)`.
            if matching_paren_is_last(t) {
                t = inner;
            }
        }
        if t.len() == before {
            break;
        }
    }
    let start = t.as_ptr() as usize - s.as_ptr() as usize;
    (start, start + t.len())
}

fn matching_paren_is_last(t: &str) -> bool {
    let mut depth = 0usize;
    for (i, b) in t.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i == t.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_text_cases() {
        assert_eq!(normalize_text("  The   Quick\n\tFox "), "the quick fox");
        assert_eq!(normalize_text("\"Paris.\""), "paris");
        assert_eq!(normalize_text("`yes`"), "yes");
        assert_eq!(normalize_text("$\\text{Paris}$"), "paris");
        assert_eq!(normalize_text("$$ 10\\text{ cm} $$"), "10 cm");
        assert_eq!(normalize_text("\\textbf{B}"), "b");
        assert_eq!(normalize_text("(C)"), "c");
        assert_eq!(normalize_text("((c))"), "c");
        assert_eq!(normalize_text("(1, 2)"), "(1, 2)");
        assert_eq!(normalize_text("(a) or (b)"), "(a) or (b)");
        assert_eq!(normalize_text("f(x)"), "f(x)");
        assert_eq!(normalize_text("\\frac{1}{2}"), "\\frac{1}{2}");
        assert_eq!(normalize_text("50\\%"), "50%");
        assert_eq!(normalize_text("\\left( x \\right)"), "x");
        assert_eq!(normalize_text("ÉCOLE"), "école");
        assert_eq!(normalize_text_with("Paris", false), "Paris");
        assert_eq!(normalize_text("..."), "");
        assert_eq!(normalize_text(""), "");
    }
}
