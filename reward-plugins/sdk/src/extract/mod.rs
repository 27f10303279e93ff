//! Finding the answer in what a model really emits.
//!
//! # Brief overview
//!
//! Completions wrap their answer in reasoning and markup. The helpers here peel it off, and return
//! a slice of their input wherever they can:
//!
//! - [`strip_thinking`] removes reasoning: `<think>…</think>`, `<thinking>…</thinking>` and
//!   `<|begin_of_thought|>…<|end_of_thought|>` blocks, an unclosed opening tag (the rest is
//!   reasoning) and a stray closing tag (everything before it is reasoning: the chat template put
//!   the opening tag in the prompt).
//! - [`solution_block`] takes the body of `<|begin_of_solution|>…<|end_of_solution|>`;
//!   [`answer_region`] applies both, leaving the text where the answer lives.
//! - One finder per kind of answer: [`last_tag_content`] (`<answer>…</answer>`, or any [`Tag`]),
//!   [`last_boxed`] (`\boxed{…}`), [`after_answer_marker`] (`Answer:` lines),
//!   [`last_code_block`] (fenced code). [`find_answer`] tries them in priority order on a region
//!   and [`final_answer`] does everything from the raw completion.
//! - [`normalize_text`] and [`parse_number`] prepare an answer for comparison.
//! - [`tag_events`] and [`check_tags_in_order`] check that required tags are present, well
//!   formed, non-empty and in order.
//!
//! # Cost
//!
//! Every function here runs in time linear in the length of its input: each scans forwards or
//! backwards with substring searches that never revisit a byte more than a constant number of
//! times, and none uses a regex. A 1 MB completion takes about a millisecond. The finders allocate
//! nothing; [`strip_thinking`] allocates only when the answer is split around a reasoning block,
//! and [`normalize_text`] allocates its result. [`parse_number`] refuses inputs longer than
//! [`MAX_NUMBER_LEN`] bytes without reading them.

mod answer;
mod code_blocks;
mod markers;
mod normalize;
mod numbers;
mod tags;
mod thinking;

pub use answer::{AnswerSource, final_answer, find_answer, refine_answer};
pub use code_blocks::{CodeBlock, CodeBlocks, code_blocks, last_code_block, strip_code_fence};
pub use markers::{after_answer_marker, last_boxed};
pub use normalize::{normalize_text, normalize_text_with};
pub use numbers::{MAX_NUMBER_LEN, ParsedNumber, parse_number, parse_number_detail};
pub use tags::{Tag, TagEdge, TagError, TagEvent, TagEvents, TagProblem, check_tags_in_order, last_tag_content, tag_events};
pub use thinking::{SOLUTION_WRAPPER, THINKING_WRAPPERS, answer_region, check_tags_and_answer_region, solution_block, strip_thinking};

// ---------------------------------------------------------------------------------------------
// Searching
// ---------------------------------------------------------------------------------------------

// The searches below jump between occurrences of one byte with `memchr`, which uses SIMD (SSE2 or
// AVX2 natively, simd128 on wasm32) where `str::find` scans byte by byte or builds a two-way
// searcher per call.

/// Whether `needle` is not empty and its first byte occurs nowhere else in it. Then a search that
/// jumps to each occurrence of that byte and compares the needle there is linear: a comparison
/// that fails at one candidate has only read bytes of the needle after its first, so it stops
/// before the next candidate. Every tag (`<name>`, `</name>`) and `\boxed` is such a needle.
fn lead_is_unique(needle: &[u8]) -> bool {
    match needle.split_first() {
        Some((&lead, rest)) => find_byte(lead, rest).is_none(),
        None => false,
    }
}

/// `a == b`. On wasm32 slice equality calls a `memcmp` that compares byte by byte; this compares
/// eight bytes at a time.
#[inline]
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    #[inline(always)]
    fn word(s: &[u8]) -> u64 {
        u64::from_le_bytes(s.try_into().expect("eight bytes"))
    }
    #[inline(always)]
    fn half(s: &[u8]) -> u32 {
        u32::from_le_bytes(s.try_into().expect("four bytes"))
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        if !a.chunks_exact(8).zip(b.chunks_exact(8)).all(|(x, y)| word(x) == word(y)) {
            return false;
        }
        // The last word again, overlapping the one before: covers the tail.
        return word(&a[n - 8..]) == word(&b[n - 8..]);
    }
    if n >= 4 {
        return half(&a[..4]) == half(&b[..4]) && half(&a[n - 4..]) == half(&b[n - 4..]);
    }
    (0..n).all(|i| a[i] == b[i])
}

/// Haystacks shorter than this are searched byte by byte: `memchr`'s setup costs more there.
const SHORT: usize = 16;

/// `memchr::memchr`.
#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < SHORT { hay.iter().position(|&b| b == needle) } else { memchr::memchr(needle, hay) }
}

/// `memchr::memrchr`.
#[inline]
fn rfind_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < SHORT { hay.iter().rposition(|&b| b == needle) } else { memchr::memrchr(needle, hay) }
}

/// `str::trim` and `str::trim().is_empty()` with the common case, ASCII text at both ends, decided
/// without decoding characters.
trait TrimFast {
    fn trim_fast(&self) -> &str;
    fn is_blank(&self) -> bool;
}

impl TrimFast for str {
    #[inline]
    fn trim_fast(&self) -> &str {
        // `char::is_whitespace` on ASCII: space, tab, line feed, vertical tab, form feed, return.
        let ws = |c: u8| c == b' ' || (b'\t'..=b'\r').contains(&c);
        let b = self.as_bytes();
        let mut start = 0;
        while start < b.len() && ws(b[start]) {
            start += 1;
        }
        let mut end = b.len();
        while end > start && ws(b[end - 1]) {
            end -= 1;
        }
        // Cut next to ASCII bytes, so on character boundaries.
        let t = &self[start..end];
        // A non-ASCII character at either end may be Unicode whitespace: `str::trim` decides.
        match (t.as_bytes().first(), t.as_bytes().last()) {
            (Some(&first), Some(&last)) if first >= 0x80 || last >= 0x80 => t.trim(),
            _ => t,
        }
    }

    #[inline]
    fn is_blank(&self) -> bool {
        for (i, &c) in self.as_bytes().iter().enumerate() {
            if c >= 0x80 {
                // After ASCII bytes only, so on a character boundary.
                return self[i..].chars().all(char::is_whitespace);
            }
            if !(c == b' ' || (b'\t'..=b'\r').contains(&c)) {
                return false;
            }
        }
        true
    }
}

/// `hay.starts_with(needle)`, with [`eq_bytes`].
#[inline]
fn starts_with(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len() && eq_bytes(&hay.as_bytes()[..needle.len()], needle.as_bytes())
}

/// `hay.find(needle)`.
fn find_str(hay: &str, needle: &str) -> Option<usize> {
    if lead_is_unique(needle.as_bytes()) { find_unique_lead(hay, needle) } else { hay.find(needle) }
}

/// `hay.rfind(needle)`.
fn rfind_str(hay: &str, needle: &str) -> Option<usize> {
    if lead_is_unique(needle.as_bytes()) { rfind_unique_lead(hay, needle) } else { hay.rfind(needle) }
}

/// `hay.find(needle)` for a needle whose first byte occurs only there ([`lead_is_unique`]).
fn find_unique_lead(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    debug_assert!(lead_is_unique(n));
    let mut pos = 0;
    while let Some(i) = find_byte(n[0], &h[pos..]) {
        let at = pos + i;
        if h.len() - at >= n.len() && eq_bytes(&h[at..at + n.len()], n) {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

/// `hay.rfind(needle)` for a needle whose first byte occurs only there ([`lead_is_unique`]).
fn rfind_unique_lead(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    debug_assert!(lead_is_unique(n));
    let mut end = h.len();
    while let Some(at) = rfind_byte(n[0], &h[..end]) {
        if h.len() - at >= n.len() && eq_bytes(&h[at..at + n.len()], n) {
            return Some(at);
        }
        end = at;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn tags(names: &[&str]) -> Vec<Tag> {
        names.iter().map(|n| Tag::new(n)).collect()
    }

    /// Inputs shaped to make a careless scanner quadratic; each must finish quickly.
    #[test]
    fn adversarial_inputs_stay_linear() {
        let n = 1 << 20;
        let started = std::time::Instant::now();
        let boxes = "\\boxed{".repeat(n / 7);
        assert_eq!(last_boxed(&boxes), None);
        let opens = "<answer>".repeat(n / 8);
        assert_eq!(last_tag_content(&opens, &Tag::ANSWER), None);
        let thinks = "<think>".repeat(n / 7);
        assert_eq!(strip_thinking(&thinks), "");
        let closes = "</think>".repeat(n / 8) + "end";
        assert_eq!(strip_thinking(&closes), "end");
        let lts = "<".repeat(n);
        assert_eq!(check_tags_in_order(&lts, &tags(&["think", "answer"])).unwrap_err().problem, TagProblem::Missing);
        let fences = "```\n".repeat(n / 4);
        assert!(code_blocks(&fences).count() > 0);
        let lines = "answer\n".repeat(n / 7);
        assert_eq!(after_answer_marker(&lines), None);
        let parens = "(".repeat(n / 2) + &")".repeat(n / 2);
        assert!(normalize_text(&parens).len() <= n);
        // A quadratic scan would take hours on these; linear ones take milliseconds (optimised).
        let elapsed = started.elapsed();
        let limit = if cfg!(debug_assertions) { 30.0 } else { 2.0 };
        assert!(elapsed.as_secs_f64() < limit, "took {elapsed:?}");
    }
}
