// ---------------------------------------------------------------------------------------------
// \boxed{…} and answer markers
// ---------------------------------------------------------------------------------------------

use super::{SHORT, TrimFast, find_byte, rfind_byte, rfind_unique_lead};

/// The trimmed content of the last `\boxed{…}` in `text`, braces balanced.
///
/// Backslash-escaped braces (`\{`, `\}`) do not count. A `\boxed{` whose braces never close is
/// skipped in favour of an earlier complete one. Also takes the brace-less form `\boxed 5`
/// (everything up to the next whitespace, `$` or `}`). The content may be empty.
pub fn last_boxed(text: &str) -> Option<&str> {
    const BOXED: &str = "\\boxed";
    // `window_end` only shrinks to the start of a later `\boxed{` that never closed: an earlier
    // one cannot close after that point either (its braces stay open through the later one's),
    // so every byte is scanned by at most one brace search.
    let mut window_end = text.len();
    let mut search_end = text.len();
    while let Some(at) = rfind_unique_lead(&text[..search_end], BOXED) {
        search_end = at;
        let after = at + BOXED.len();
        let rest = &text[after..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        let skipped = rest.len() - trimmed.len();
        if trimmed.starts_with('{') {
            let open = after + skipped;
            if let Some(close) = matching_brace(text, open, window_end.max(open + 1)) {
                return Some(text[open + 1..close].trim_fast());
            }
            window_end = at;
        } else if skipped > 0 || trimmed.starts_with(|c: char| c.is_ascii_digit()) {
            let end = trimmed.find(|c: char| c.is_whitespace() || c == '$' || c == '}').unwrap_or(trimmed.len());
            if end > 0 {
                return Some(&trimmed[..end]);
            }
        }
    }
    None
}

/// The byte offset of the `}` matching the `{` at `open`, searching no further than `limit`.
fn matching_brace(text: &str, open: usize, limit: usize) -> Option<usize> {
    let bytes = &text.as_bytes()[..limit.min(text.len())];
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            // Braces and backslashes are ASCII, so skipping one byte never lands on a brace that
            // is part of a multi-byte character.
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The answer after the last answer marker in `text`, trimmed.
///
/// Markers, searched from the last line backwards:
///
/// 1. a line starting (after whitespace and markdown `*`, `#`, `>`, `-`) with `Answer`,
///    `Final answer` or `Final Answer` in any case, then a `:` (bold allowed:
///    `**Final Answer:** 42`, `**Answer**: 42`); a heading with nothing after (`## Final Answer`)
///    counts too. The answer is the rest of the line, or when that is empty, all the text after;
/// 2. a GSM8K-style `#### 42` line (the rest must start with a digit, sign, `$` or `.`);
/// 3. only when no line marker exists: the last `answer is` in running text (`So the answer is
///    42.`), the rest of that line without a final full stop.
///
/// `None` when there is no marker or the last one has nothing after it.
pub fn after_answer_marker(text: &str) -> Option<&str> {
    if !may_have_marker(text) {
        return None;
    }
    match after_line_marker(text) {
        Some(found) => found,
        None => after_answer_phrase(text),
    }
}

/// Whether `text` has a `#`, `a` or `A`: every marker (`####`, `Answer`, `answer is`) has one, so
/// most short answers (`42`, `12.5%`) are ruled out in one search.
fn may_have_marker(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < SHORT { b.iter().any(|c| matches!(c, b'#' | b'a' | b'A')) } else { memchr::memchr3(b'#', b'a', b'A', b).is_some() }
}

/// `Some(answer)` for the last line marker (the answer `None` when nothing follows it), `None`
/// when there is no line marker at all.
pub(super) fn after_line_marker(text: &str) -> Option<Option<&str>> {
    if !may_have_marker(text) {
        return None;
    }
    let mut end = text.len();
    loop {
        let start = rfind_byte(b'\n', &text.as_bytes()[..end]).map_or(0, |i| i + 1);
        let line = &text[start..end];
        if let Some(offset) = line_marker(line) {
            let rest = clean_marked(&line[offset..]);
            if !rest.is_empty() {
                return Some(Some(rest));
            }
            let following = text[end..].trim_fast();
            return Some((!following.is_empty()).then_some(following));
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

/// Where the answer starts in `line` if it carries a marker.
fn line_marker(line: &str) -> Option<usize> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    if let Some(rest) = body.strip_prefix("####") {
        let value = rest.trim_start_matches('#').trim_start();
        if value.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '$' | '.' | '−')) {
            return Some(line.len() - value.len());
        }
        // Otherwise a markdown heading, maybe `#### Final Answer`.
    }
    let heading = body.starts_with('#');
    let words = body.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '#' | '>' | '-' | '_'));
    let mut i = indent + (body.len() - words.len());
    let b = line.as_bytes();
    let starts_ci = |at: usize, word: &str| line.get(at..at + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word));
    if starts_ci(i, "final answer") {
        i += "final answer".len();
    } else if starts_ci(i, "answer") {
        i += "answer".len();
    } else {
        return None;
    }
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'*' | b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b':' {
        return Some(i + 1);
    }
    // "## Final Answer" or "**Answer**" alone on its line: the answer follows.
    (i == b.len() && (heading || line[indent..].contains('*'))).then_some(i)
}

/// The answer text after a marker: trimmed, bold markers and a trailing `**` removed.
fn clean_marked(s: &str) -> &str {
    s.trim_fast().trim_matches('*').trim_fast()
}

fn after_answer_phrase(text: &str) -> Option<&str> {
    const PHRASE: &[u8] = b"answer is";
    let b = text.as_bytes();
    // Candidates are the `a`s and `A`s that leave room for the phrase, last first.
    let mut end = (b.len().checked_sub(PHRASE.len())?) + 1;
    while let Some(i) = memchr::memrchr2(b'a', b'A', &b[..end]) {
        if b[i..i + PHRASE.len()].eq_ignore_ascii_case(PHRASE)
            && (i == 0 || !b[i - 1].is_ascii_alphabetic())
            && !b.get(i + PHRASE.len()).is_some_and(u8::is_ascii_alphabetic)
        {
            let after = &text[i + PHRASE.len()..];
            let line = &after[..find_byte(b'\n', after.as_bytes()).unwrap_or(after.len())];
            let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == ':');
            let answer = clean_marked(line).trim_end_matches('.').trim_end();
            return (!answer.is_empty()).then_some(answer);
        }
        end = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_is_balanced_and_last() {
        assert_eq!(last_boxed("so \\boxed{\\frac{1}{2}} done"), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed("\\boxed{1} then \\boxed{ 2 }"), Some("2"));
        assert_eq!(last_boxed("\\boxed{\\{1,2\\}}"), Some("\\{1,2\\}"));
        // An unclosed later box falls back to the complete earlier one.
        assert_eq!(last_boxed("\\boxed{3} and \\boxed{4"), Some("3"));
        assert_eq!(last_boxed("\\boxed 5 apples"), Some("5"));
        assert_eq!(last_boxed("$\\boxed5$"), Some("5"));
        assert_eq!(last_boxed("\\boxed{}"), Some(""));
        assert_eq!(last_boxed("\\boxedtext"), None);
        assert_eq!(last_boxed("none"), None);
        assert_eq!(last_boxed("\\boxed{é{ü}}"), Some("é{ü}"));
    }

    #[test]
    fn answer_markers() {
        assert_eq!(after_answer_marker("work\nANSWER: C"), Some("C"));
        assert_eq!(after_answer_marker("Answer: 1\nmore\nFinal answer: 2\n"), Some("2"));
        assert_eq!(after_answer_marker("**Final Answer:** $42$"), Some("$42$"));
        assert_eq!(after_answer_marker("**Answer**: 7"), Some("7"));
        assert_eq!(after_answer_marker("## Final Answer\n\n\\[ x = 3 \\]"), Some("\\[ x = 3 \\]"));
        assert_eq!(after_answer_marker("Answer:\n```json\n{}\n```"), Some("```json\n{}\n```"));
        assert_eq!(after_answer_marker("steps\n#### 1,200"), Some("1,200"));
        assert_eq!(after_answer_marker("#### Step 2\nwork"), None);
        assert_eq!(after_answer_marker("#### Final Answer\n\n$x = 2$"), Some("$x = 2$"));
        assert_eq!(after_answer_marker("The answer island is 5"), None);
        assert_eq!(after_answer_marker("So the answer is 42.\nDone."), Some("42"));
        // A line marker beats a later phrase.
        assert_eq!(after_answer_marker("Answer: 13\nI hope the answer is right."), Some("13"));
        assert_eq!(after_answer_marker("Answers to the exercises below"), None);
        assert_eq!(after_answer_marker("Answer:"), None);
        assert_eq!(after_answer_marker(""), None);
    }
}
