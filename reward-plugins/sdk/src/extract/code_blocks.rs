// ---------------------------------------------------------------------------------------------
// Fenced code blocks
// ---------------------------------------------------------------------------------------------

use super::{TrimFast, find_byte};

/// A fenced code block found by [`code_blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeBlock<'a> {
    /// The first word of the info string (`python` in ```` ```python ````), or `""`.
    pub lang: &'a str,
    /// The lines between the fences, without the last line break.
    pub body: &'a str,
    /// Whether the block has a closing fence; an unclosed block runs to the end of the text.
    pub closed: bool,
}

/// The fenced code blocks of `text`, in order.
///
/// Follows CommonMark loosely: a fence is a line of three or more backticks or tildes indented by
/// at most three spaces, a backtick fence's info string has no backtick, and the closing fence
/// uses the same character, is at least as long and has nothing after it. Fences inside a block
/// are part of its body. One pass over the lines.
pub fn code_blocks(text: &str) -> CodeBlocks<'_> {
    CodeBlocks { text, pos: 0 }
}

/// Iterator returned by [`code_blocks`].
#[derive(Clone, Debug)]
pub struct CodeBlocks<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for CodeBlocks<'a> {
    type Item = CodeBlock<'a>;

    fn next(&mut self) -> Option<CodeBlock<'a>> {
        let text = self.text;
        while self.pos < text.len() {
            let (line, next) = line_at(text, self.pos);
            self.pos = next;
            let Some((fence, len, info)) = fence_open(line) else { continue };
            let lang = info.split_whitespace().next().unwrap_or("");
            let body_start = next;
            let mut p = next;
            while p < text.len() {
                let (line, next) = line_at(text, p);
                if fence_closes(line, fence, len) {
                    self.pos = next;
                    let body = &text[body_start..p];
                    let body = body.strip_suffix('\n').map_or(body, |b| b.strip_suffix('\r').unwrap_or(b));
                    return Some(CodeBlock { lang, body, closed: true });
                }
                p = next;
            }
            self.pos = text.len();
            return Some(CodeBlock { lang, body: &text[body_start.min(text.len())..], closed: false });
        }
        None
    }
}

/// The line starting at `pos` (without its line break) and where the next one starts.
fn line_at(text: &str, pos: usize) -> (&str, usize) {
    match find_byte(b'\n', &text.as_bytes()[pos..]) {
        Some(i) => {
            let line = &text[pos..pos + i];
            (line.strip_suffix('\r').unwrap_or(line), pos + i + 1)
        }
        None => (&text[pos..], text.len()),
    }
}

fn fence_indent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

/// `(fence character, fence length, info string)` if `line` opens a fenced block.
fn fence_open(line: &str) -> Option<(u8, usize, &str)> {
    let rest = fence_indent(line)?;
    let fence = *rest.as_bytes().first()?;
    if fence != b'`' && fence != b'~' {
        return None;
    }
    let len = rest.bytes().take_while(|&b| b == fence).count();
    let info = rest[len..].trim_fast();
    (len >= 3 && !(fence == b'`' && info.contains('`'))).then_some((fence, len, info))
}

fn fence_closes(line: &str, fence: u8, len: usize) -> bool {
    let Some(rest) = fence_indent(line) else { return false };
    let n = rest.bytes().take_while(|&b| b == fence).count();
    n >= len && rest[n..].is_blank()
}

/// The last fenced code block of `text`, or the last whose language is `lang` (ASCII
/// case-insensitive) when given.
pub fn last_code_block<'a>(text: &'a str, lang: Option<&str>) -> Option<CodeBlock<'a>> {
    code_blocks(text).filter(|b| lang.is_none_or(|l| b.lang.eq_ignore_ascii_case(l))).last()
}

/// `text` trimmed, without a code fence around the whole of it.
///
/// Handles a multi-line block (```` ```json\n{…}\n``` ````, the info line dropped) and the
/// one-line form models also emit (```` ```json {…}``` ````, a leading language word dropped).
/// Text that is not entirely one fenced block is returned trimmed.
pub fn strip_code_fence(text: &str) -> &str {
    let t = text.trim_fast();
    for fence in ['`', '~'] {
        let marker = if fence == '`' { "```" } else { "~~~" };
        if t.len() < 6 || !t.starts_with(marker) || !t.ends_with(marker) {
            continue;
        }
        let inner = t.trim_start_matches(fence).trim_end_matches(fence);
        // A fence inside would mean several blocks, not one.
        if inner.contains(marker) {
            return t;
        }
        return match inner.find('\n') {
            Some(i) => inner[i + 1..].trim_fast(),
            None => {
                let s = inner.trim_fast();
                match s.split_once(char::is_whitespace) {
                    Some((word, rest))
                        if !word.is_empty()
                            && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-_#.".contains(&b))
                            && !rest.is_blank() =>
                    {
                        rest.trim_fast()
                    }
                    _ => s,
                }
            }
        };
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_follow_fences() {
        let text = "intro\n```python\nprint(1)\n```\nmid\n~~~\nraw ``` inside\n~~~\n```json\n{\"a\": 1}\n```\n";
        let blocks: Vec<_> = code_blocks(text).collect();
        assert_eq!(blocks.len(), 3);
        assert_eq!((blocks[0].lang, blocks[0].body), ("python", "print(1)"));
        assert_eq!((blocks[1].lang, blocks[1].body), ("", "raw ``` inside"));
        assert_eq!(last_code_block(text, None).unwrap().body, "{\"a\": 1}");
        assert_eq!(last_code_block(text, Some("PYTHON")).unwrap().body, "print(1)");
        assert_eq!(last_code_block(text, Some("rust")), None);
        // A longer closing fence closes; a shorter one does not.
        let block = last_code_block("````\na\n```\nb\n`````\n", None).unwrap();
        assert_eq!((block.body, block.closed), ("a\n```\nb", true));
        // Unclosed: runs to the end.
        let block = last_code_block("```sql\nSELECT 1;", None).unwrap();
        assert_eq!((block.lang, block.body, block.closed), ("sql", "SELECT 1;", false));
        // CRLF line ends.
        assert_eq!(last_code_block("```\r\nx\r\n```\r\n", None).unwrap().body, "x");
        // Indented four spaces is not a fence.
        assert_eq!(last_code_block("    ```\n    x\n    ```", None), None);
    }

    #[test]
    fn strip_code_fence_handles_both_forms() {
        assert_eq!(strip_code_fence("```json\n{\"a\": 1}\n```"), "{\"a\": 1}");
        assert_eq!(strip_code_fence(" ```json {\"a\": 1}``` "), "{\"a\": 1}");
        assert_eq!(strip_code_fence("```{\"a\": 1}```"), "{\"a\": 1}");
        assert_eq!(strip_code_fence("{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(strip_code_fence("```a```\ntext\n```b```"), "```a```\ntext\n```b```");
    }
}
