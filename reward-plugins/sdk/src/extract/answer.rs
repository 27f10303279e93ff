// ---------------------------------------------------------------------------------------------
// Putting it together
// ---------------------------------------------------------------------------------------------

use std::borrow::Cow;

use super::TrimFast;
use super::code_blocks::{last_code_block, strip_code_fence};
use super::markers::{after_answer_marker, after_line_marker, last_boxed};
use super::tags::{Tag, last_tag_content};
use super::thinking::answer_region;

/// Where [`find_answer`] found the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerSource {
    /// The last `<answer>…</answer>`.
    Tag,
    /// The last `\boxed{…}`.
    Boxed,
    /// After the last answer marker ([`after_answer_marker`]).
    Marker,
    /// The body of the last fenced code block.
    CodeBlock,
    /// The whole region, for lack of anything better.
    Text,
}

/// The answer in `region` (usually from [`answer_region`]), and where it was found.
///
/// Tries, in order, taking the first that is not blank:
/// 1. the last `<answer>…</answer>` ([`last_tag_content`]), refined by [`refine_answer`];
/// 2. the last `\boxed{…}` ([`last_boxed`]);
/// 3. the text after the last answer marker ([`after_answer_marker`]), refined;
/// 4. the body of the last fenced code block ([`last_code_block`]);
/// 5. the whole region, trimmed.
///
/// `None` only when the region is blank.
pub fn find_answer(region: &str) -> Option<(&str, AnswerSource)> {
    let non_blank = |s: &&str| !s.is_empty();
    if let Some(a) = last_tag_content(region, &Tag::ANSWER).map(refine_answer).filter(non_blank) {
        return Some((a, AnswerSource::Tag));
    }
    if let Some(a) = last_boxed(region).filter(non_blank) {
        return Some((a, AnswerSource::Boxed));
    }
    if let Some(a) = after_answer_marker(region).map(refine_answer).filter(non_blank) {
        return Some((a, AnswerSource::Marker));
    }
    if let Some(a) = last_code_block(region, None).map(|b| b.body.trim_fast()).filter(non_blank) {
        return Some((a, AnswerSource::CodeBlock));
    }
    let t = region.trim_fast();
    (!t.is_empty()).then_some((t, AnswerSource::Text))
}

/// Narrows an answer that was found in a wrapper (an `<answer>` tag, after a marker): to the last
/// non-blank `\boxed{…}` inside it, else to the text after a line marker inside it
/// (`<answer>Final answer: 42</answer>`), else without a code fence around the whole of it.
///
/// Structured answers, those that start with `{` or `[` once unfenced (JSON), are only unfenced:
/// a `\boxed{…}` or `Answer:` inside one of their strings is data, not the answer.
pub fn refine_answer(answer: &str) -> &str {
    let unfenced = strip_code_fence(answer);
    if unfenced.starts_with(['{', '[']) {
        return unfenced;
    }
    if let Some(b) = last_boxed(answer).filter(|b| !b.is_empty()) {
        return b;
    }
    if let Some(Some(m)) = after_line_marker(answer) {
        return strip_code_fence(m);
    }
    unfenced
}

/// The answer in a raw completion, best effort: [`answer_region`] then [`find_answer`].
///
/// `None` when nothing but reasoning is left (an empty completion, or one still thinking).
///
/// ```
/// use reward_sdk::extract::final_answer;
/// let completion = "<think>6 * 7, carry the 4...</think>\nThe result is \\boxed{42}.";
/// assert_eq!(final_answer(completion).as_deref(), Some("42"));
/// assert_eq!(final_answer("<think>hmm, maybe 12").as_deref(), None);
/// ```
pub fn final_answer(text: &str) -> Option<Cow<'_, str>> {
    match answer_region(text) {
        Cow::Borrowed(region) => find_answer(region).map(|(a, _)| Cow::Borrowed(a)),
        Cow::Owned(region) => find_answer(&region).map(|(a, _)| Cow::Owned(a.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_answer_priority() {
        assert_eq!(find_answer("Answer: 1 \\boxed{2} <answer>3</answer>"), Some(("3", AnswerSource::Tag)));
        assert_eq!(find_answer("Answer: 1\n\\boxed{2}"), Some(("2", AnswerSource::Boxed)));
        assert_eq!(find_answer("```\nx\n```\nAnswer: 1"), Some(("1", AnswerSource::Marker)));
        assert_eq!(find_answer("code:\n```py\nx = 1\n```"), Some(("x = 1", AnswerSource::CodeBlock)));
        assert_eq!(find_answer(" Paris "), Some(("Paris", AnswerSource::Text)));
        assert_eq!(find_answer("  "), None);
        // Blank tags fall through instead of hiding a real answer.
        assert_eq!(find_answer("<answer> </answer>\nAnswer: 9"), Some(("9", AnswerSource::Marker)));
        // Answers inside a tag are refined.
        assert_eq!(find_answer("<answer>So \\boxed{5}</answer>"), Some(("5", AnswerSource::Tag)));
        assert_eq!(find_answer("<answer>\n```json\n{\"a\":1}\n```\n</answer>"), Some(("{\"a\":1}", AnswerSource::Tag)));
        assert_eq!(find_answer("<answer>work\nFinal answer: 8</answer>"), Some(("8", AnswerSource::Tag)));
        // JSON is data: nothing inside its strings is an answer marker.
        let json = "{\"note\": \"\\boxed{1}\",\n\"text\": \"x\nAnswer: 2\"}";
        assert_eq!(find_answer(&format!("<answer>```json\n{json}\n```</answer>")), Some((json, AnswerSource::Tag)));
    }

    #[test]
    fn final_answer_ignores_reasoning() {
        // The draft answer inside the reasoning does not count.
        assert_eq!(final_answer("<think>Answer: 12</think>Answer: 13").as_deref(), Some("13"));
        assert_eq!(final_answer("<think>\\boxed{1}</think>").as_deref(), None);
        assert_eq!(final_answer("").as_deref(), None);
        assert_eq!(final_answer("pre <think>x</think> <answer>y</answer>").as_deref(), Some("y"));
    }
}
