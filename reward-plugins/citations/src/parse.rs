//! Reading an answer and its citations out of a completion, per citation style. Every parser
//! scans forwards once: linear in the answer's length.

/// What a citation points at.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cite {
    /// A quote (Nova `<source>`, `<cite>`).
    Quote(String),
    /// A numbered passage id (`[2]`).
    Passage(String),
}

/// One answer part: its text and the citations that support it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Part {
    pub(crate) text: String,
    pub(crate) cites: Vec<Cite>,
}

/// A parsed answer: the parts, or why the format is wrong.
pub(crate) type Parsed = Result<Vec<Part>, String>;

fn skip_ws(s: &str, i: usize) -> usize {
    i + (s[i..].len() - s[i..].trim_start().len())
}

/// Expects `open` at `i` (after whitespace) and returns the body up to the first `close`, and the
/// position after `close`.
fn element<'a>(s: &'a str, i: usize, open: &str, close: &str) -> Result<(&'a str, usize), String> {
    let i = skip_ws(s, i);
    if !s[i..].starts_with(open) {
        let found: String = s[i..].chars().take(20).collect();
        return Err(format!("expected {open}, found {found:?}"));
    }
    let body = i + open.len();
    match memchr::memmem::find(&s.as_bytes()[body..], close.as_bytes()) {
        Some(len) => Ok((&s[body..body + len], body + len + close.len())),
        None => Err(format!("{open} is not closed")),
    }
}

/// The Nova format, inside `<answer>…</answer>`: one or more
/// `<answer_part><text>…</text><sources><source>…</source>…</sources></answer_part>`, only
/// whitespace between elements; `<sources>` may be omitted. Bare text (no parts) is returned as
/// one part without citations: only a refusal may look like that, which the caller checks.
pub(crate) fn nova(answer: &str) -> Parsed {
    const PART: (&str, &str) = ("<answer_part>", "</answer_part>");
    let trimmed = answer.trim();
    if !trimmed.starts_with(PART.0) {
        if trimmed.contains('<') {
            return Err("text outside <answer_part> elements".into());
        }
        return Ok(vec![Part { text: trimmed.to_owned(), cites: Vec::new() }]);
    }
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        i = skip_ws(answer, i);
        if i == answer.len() {
            break;
        }
        let (body, next) = element(answer, i, PART.0, PART.1)?;
        i = next;
        let (text, mut j) = element(body, 0, "<text>", "</text>")?;
        let mut cites = Vec::new();
        j = skip_ws(body, j);
        if body[j..].starts_with("<sources>") {
            let (sources, after) = element(body, j, "<sources>", "</sources>")?;
            let mut k = 0;
            loop {
                k = skip_ws(sources, k);
                if k == sources.len() {
                    break;
                }
                let (src, next) = element(sources, k, "<source>", "</source>")?;
                cites.push(Cite::Quote(src.trim().to_owned()));
                k = next;
            }
            j = skip_ws(body, after);
        }
        if j != body.len() {
            return Err("unexpected content after </text> or </sources> in an <answer_part>".into());
        }
        parts.push(Part { text: text.trim().to_owned(), cites });
    }
    Ok(parts)
}

/// `<cite>quote</cite>` spans in running text: one part, its text with the tags removed (the
/// quoted words stay), each span a quote.
pub(crate) fn cite_spans(answer: &str) -> Parsed {
    let (open, close) = ("<cite>", "</cite>");
    let mut text = String::with_capacity(answer.len());
    let mut cites = Vec::new();
    let mut i = 0;
    while let Some(o) = memchr::memmem::find(&answer.as_bytes()[i..], open.as_bytes()) {
        let before = &answer[i..i + o];
        if before.contains(close) {
            return Err("</cite> without <cite>".into());
        }
        text.push_str(before);
        let body = i + o + open.len();
        let Some(len) = memchr::memmem::find(&answer.as_bytes()[body..], close.as_bytes()) else {
            return Err("<cite> is not closed".into());
        };
        let quote = &answer[body..body + len];
        if quote.contains(open) {
            return Err("nested <cite>".into());
        }
        text.push_str(quote);
        cites.push(Cite::Quote(quote.trim().to_owned()));
        i = body + len + close.len();
    }
    if answer[i..].contains(close) {
        return Err("</cite> without <cite>".into());
    }
    text.push_str(&answer[i..]);
    Ok(vec![Part { text: collapse(&text), cites }])
}

/// `[1]`, `[1, 2]`, `[1][3]` markers in running text: one part, its text with the markers removed.
pub(crate) fn numbered(answer: &str) -> Parsed {
    let mut text = String::with_capacity(answer.len());
    let mut cites = Vec::new();
    let mut i = 0;
    let bytes = answer.as_bytes();
    while let Some(o) = memchr::memchr(b'[', &bytes[i..]) {
        let at = i + o;
        text.push_str(&answer[i..at]);
        // A marker: digits, commas and spaces, at least one digit, then `]`.
        let mut j = at + 1;
        while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b',' || bytes[j] == b' ') {
            j += 1;
        }
        let inner = &answer[at + 1..j];
        if j < bytes.len() && bytes[j] == b']' && inner.bytes().any(|b| b.is_ascii_digit()) {
            for id in inner.split(',') {
                let id = id.trim();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("malformed citation marker [{inner}]"));
                }
                // `[01]` is passage 1.
                let id = id.trim_start_matches('0');
                cites.push(Cite::Passage(if id.is_empty() { "0".into() } else { id.to_owned() }));
            }
            i = j + 1;
        } else {
            text.push('[');
            i = at + 1;
        }
    }
    text.push_str(&answer[i..]);
    Ok(vec![Part { text: collapse(&text), cites }])
}

/// Whitespace runs collapsed, spaces before punctuation left by removed markers dropped.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        if !out.is_empty() && !w.starts_with(['.', ',', ';', ':', '!', '?']) {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}
