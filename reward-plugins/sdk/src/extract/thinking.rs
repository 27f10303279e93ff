// ---------------------------------------------------------------------------------------------
// Reasoning and solution wrappers
// ---------------------------------------------------------------------------------------------

use std::borrow::Cow;

use super::tags::{Tag, TagError, TagOrder, tag_at};
use super::{TrimFast, find_byte, find_unique_lead, rfind_unique_lead, starts_with};

/// The reasoning blocks [`strip_thinking`] removes, as (opening, closing) pairs.
pub const THINKING_WRAPPERS: [(&str, &str); 3] =
    [("<think>", "</think>"), ("<thinking>", "</thinking>"), ("<|begin_of_thought|>", "<|end_of_thought|>")];

/// The solution wrapper [`solution_block`] looks for, as (opening, closing).
pub const SOLUTION_WRAPPER: (&str, &str) = ("<|begin_of_solution|>", "<|end_of_solution|>");

/// `text` without its reasoning, trimmed.
///
/// Removes every reasoning block (see [`THINKING_WRAPPERS`]) with its tags. Two malformed cases
/// are common and handled:
///
/// - an opening tag that is never closed (the model ran out of tokens while thinking): everything
///   from it to the end is reasoning, so `"<think>still thinking"` gives `""`;
/// - a closing tag with no opening tag before it (the chat template ends the prompt with
///   `<think>`): everything before it is reasoning, so `"reasoning</think>42"` gives `"42"`.
///
/// Inside a block only its own closing tag matters. Borrows from `text` unless the answer is
/// split around a block (`"a<think>…</think>b"` gives an owned `"ab"`).
pub fn strip_thinking(text: &str) -> Cow<'_, str> {
    let mut stripper = ThinkStripper::new(text);
    let mut pos = 0;
    while let Some(offset) = find_byte(b'<', &text.as_bytes()[pos..]) {
        let at = pos + offset;
        stripper.feed(at);
        pos = at + 1;
    }
    stripper.finish()
}

/// [`strip_thinking`] as a state machine fed the position of every `<` of the text, in order (so
/// that one scan can feed it and [`TagOrder`] both). Every opening and closing text of
/// [`THINKING_WRAPPERS`] has a single `<`, its first byte.
struct ThinkStripper<'a> {
    kept: Kept<'a>,
    /// Where the text kept since the last block (or stray closing tag) starts.
    segment: usize,
    /// `<`s before this are inside a tag already read.
    next: usize,
    /// Inside a block: the closing text that ends it.
    inside: Option<&'static str>,
    /// Whether a `<` kept so far (since the last stray closing tag) starts a solution block.
    solution: bool,
}

impl<'a> ThinkStripper<'a> {
    fn new(text: &'a str) -> Self {
        ThinkStripper { kept: Kept::new(text), segment: 0, next: 0, inside: None, solution: false }
    }

    #[inline]
    fn feed(&mut self, at: usize) {
        if at < self.next {
            return;
        }
        let rest = &self.kept.text[at..];
        match self.inside {
            // Inside a block only its own closing tag matters.
            Some(close) => {
                if starts_with(rest, close) {
                    self.next = at + close.len();
                    self.segment = self.next;
                    self.inside = None;
                }
            }
            None => {
                if let Some(&(open, close)) = THINKING_WRAPPERS.iter().find(|(open, _)| starts_with(rest, open)) {
                    self.kept.push(self.segment, at);
                    self.next = at + open.len();
                    self.inside = Some(close);
                } else if let Some(&(_, close)) = THINKING_WRAPPERS.iter().find(|(_, close)| starts_with(rest, close)) {
                    // A stray closing tag: what came before it was reasoning.
                    self.kept.clear();
                    self.solution = false;
                    self.next = at + close.len();
                    self.segment = self.next;
                } else if starts_with(rest, SOLUTION_WRAPPER.0) {
                    self.solution = true;
                }
            }
        }
    }

    fn finish(mut self) -> Cow<'a, str> {
        // A block never closed: the rest of the text is reasoning.
        if self.inside.is_none() {
            self.kept.push(self.segment, self.kept.text.len());
        }
        self.kept.finish()
    }

    /// [`answer_region`]: what [`ThinkStripper::finish`] keeps, narrowed to its solution block.
    fn finish_region(self) -> Cow<'a, str> {
        let solution = self.solution;
        match self.finish() {
            // One piece of the text, whose every `<` was fed: none starts a solution block, so
            // there is nothing to search for.
            Cow::Borrowed(region) if !solution => Cow::Borrowed(region),
            stripped => solution_region(stripped),
        }
    }
}

/// The segments of a text that [`strip_thinking`] keeps; borrows while there is only one that is
/// not blank.
struct Kept<'a> {
    text: &'a str,
    first: Option<(usize, usize)>,
    gap: String,
    owned: Option<String>,
}

impl<'a> Kept<'a> {
    fn new(text: &'a str) -> Self {
        Kept { text, first: None, gap: String::new(), owned: None }
    }

    fn push(&mut self, start: usize, end: usize) {
        let s = &self.text[start..end];
        if s.is_empty() {
            return;
        }
        if let Some(owned) = &mut self.owned {
            owned.push_str(s);
            return;
        }
        let Some((fs, fe)) = self.first else {
            if !s.is_blank() {
                self.first = Some((start, end));
            }
            return;
        };
        if s.is_blank() {
            self.gap.push_str(s);
            return;
        }
        let first = &self.text[fs..fe];
        let mut owned = String::with_capacity(first.len() + self.gap.len() + s.len());
        owned.push_str(first);
        owned.push_str(&self.gap);
        owned.push_str(s);
        self.owned = Some(owned);
    }

    fn clear(&mut self) {
        self.first = None;
        self.gap.clear();
        self.owned = None;
    }

    fn finish(self) -> Cow<'a, str> {
        match (self.owned, self.first) {
            (Some(owned), _) => {
                let trimmed = owned.trim_fast();
                if trimmed.len() == owned.len() { Cow::Owned(owned) } else { Cow::Owned(trimmed.to_owned()) }
            }
            (None, Some((s, e))) => Cow::Borrowed(self.text[s..e].trim_fast()),
            (None, None) => Cow::Borrowed(""),
        }
    }
}

/// The trimmed body of the last `<|begin_of_solution|>` block: up to the next
/// `<|end_of_solution|>`, or to the end of the text when it is not closed. `None` without one.
pub fn solution_block(text: &str) -> Option<&str> {
    let (open, close) = SOLUTION_WRAPPER;
    let body = &text[rfind_unique_lead(text, open)? + open.len()..];
    Some(body[..find_unique_lead(body, close).unwrap_or(body.len())].trim_fast())
}

/// Where the answer lives: [`strip_thinking`], then the [`solution_block`] if there is one.
pub fn answer_region(text: &str) -> Cow<'_, str> {
    let mut stripper = ThinkStripper::new(text);
    let mut pos = 0;
    while let Some(offset) = find_byte(b'<', &text.as_bytes()[pos..]) {
        let at = pos + offset;
        stripper.feed(at);
        pos = at + 1;
    }
    stripper.finish_region()
}

/// [`check_tags_in_order`](super::check_tags_in_order) and [`answer_region`] of the same text, for about the cost of one: both
/// are decided at the text's `<`s, so one scan finds them for both.
pub fn check_tags_and_answer_region<'a>(text: &'a str, tags: &[Tag]) -> (Result<(), TagError>, Cow<'a, str>) {
    let mut order = TagOrder::new(tags);
    let mut ordered = true;
    let mut tags_next = 0;
    let mut stripper = ThinkStripper::new(text);
    let mut pos = 0;
    while let Some(offset) = find_byte(b'<', &text.as_bytes()[pos..]) {
        let at = pos + offset;
        pos = at + 1;
        // As `tag_events` would: from where the last event ended.
        if ordered && at >= tags_next {
            match tag_at(text, at, tags) {
                Some(event) => {
                    tags_next = event.end;
                    ordered = order.feed(text, event);
                }
                None => tags_next = at + 1,
            }
        }
        stripper.feed(at);
    }
    (order.finish(text, tags), stripper.finish_region())
}

/// The [`solution_block`] of a text without its reasoning, or all of it.
fn solution_region(stripped: Cow<'_, str>) -> Cow<'_, str> {
    match stripped {
        Cow::Borrowed(s) => Cow::Borrowed(solution_block(s).unwrap_or(s)),
        Cow::Owned(s) => match solution_block(&s) {
            Some(block) => Cow::Owned(block.to_owned()),
            None => Cow::Owned(s),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::final_answer;

    #[test]
    fn strip_thinking_removes_closed_blocks() {
        assert_eq!(strip_thinking("<think>6*7=42</think>\n\nThe answer is 42."), "The answer is 42.");
        assert_eq!(strip_thinking("<thinking>x</thinking>B"), "B");
        assert_eq!(strip_thinking("<|begin_of_thought|>long\nthought<|end_of_thought|>\n\nok"), "ok");
        // The common R1 shape borrows.
        assert!(matches!(strip_thinking("  <think>a</think> answer"), Cow::Borrowed("answer")));
        // Split around a block: owned, joined.
        assert_eq!(strip_thinking("first <think>x</think>second"), "first second");
        assert!(matches!(strip_thinking("a<think>x</think>b"), Cow::Owned(_)));
        assert_eq!(strip_thinking("no reasoning at all"), "no reasoning at all");
    }

    #[test]
    fn strip_thinking_handles_unclosed_and_stray_tags() {
        // Ran out of tokens while thinking: nothing is an answer.
        assert_eq!(strip_thinking("<think>let me see, 12? or 13"), "");
        assert_eq!(strip_thinking("Answer first. <think>then rambling"), "Answer first.");
        // The template opened the block in the prompt.
        assert_eq!(strip_thinking("so it is 12\n</think>\n\n**12**"), "**12**");
        // A stray close after a complete block still ends the reasoning.
        assert_eq!(strip_thinking("<think>a</think> draft </think> final"), "final");
        // Inside a block, other openers do not nest.
        assert_eq!(strip_thinking("<think>a <thinking> b</think>c"), "c");
    }

    #[test]
    fn solution_wrapper_is_the_answer() {
        let text = "<|begin_of_thought|>\nwork\n<|end_of_thought|>\n<|begin_of_solution|>\nThe total is \\boxed{7}\n<|end_of_solution|>";
        assert_eq!(answer_region(text), "The total is \\boxed{7}");
        assert_eq!(final_answer(text).as_deref(), Some("7"));
        assert_eq!(solution_block("<|begin_of_solution|> cut off"), Some("cut off"));
        assert_eq!(solution_block("plain"), None);
    }
}
