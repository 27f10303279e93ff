// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

use std::borrow::Cow;
use std::fmt;

use super::{TrimFast, eq_bytes, find_byte, find_str, find_unique_lead, rfind_str, rfind_unique_lead};

/// An XML-like tag such as `<answer>`, with its opening and closing text built once.
///
/// The search functions take `&Tag`, so build tags once (in a parsed config) and reuse them.
/// Tags match exactly: case-sensitive, no attributes, no whitespace inside the angle brackets.
#[derive(Clone, PartialEq, Eq)]
pub struct Tag {
    name: Cow<'static, str>,
    open: Cow<'static, str>,
    close: Cow<'static, str>,
    /// The name has no `<`, so a `<` in the text can only start the tag where the tag starts
    /// (see [`lead_is_unique`](super::lead_is_unique)); true of every valid name.
    plain: bool,
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tag").field("name", &self.name).field("open", &self.open).field("close", &self.close).finish()
    }
}

impl Tag {
    /// `<answer>…</answer>`, the tag [`find_answer`](super::find_answer) looks for.
    pub const ANSWER: Tag = Tag::fixed("answer", "<answer>", "</answer>");
    /// `<think>…</think>`.
    pub const THINK: Tag = Tag::fixed("think", "<think>", "</think>");

    const fn fixed(name: &'static str, open: &'static str, close: &'static str) -> Tag {
        Tag { name: Cow::Borrowed(name), open: Cow::Borrowed(open), close: Cow::Borrowed(close), plain: true }
    }

    /// The tag `<name>…</name>`. The name is not checked: see [`Tag::is_valid_name`].
    pub fn new(name: &str) -> Tag {
        Tag {
            name: Cow::Owned(name.to_owned()),
            open: Cow::Owned(format!("<{name}>")),
            close: Cow::Owned(format!("</{name}>")),
            plain: !name.contains('<'),
        }
    }

    /// The name, without angle brackets.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The opening text, `<name>`.
    pub fn open(&self) -> &str {
        &self.open
    }

    /// The closing text, `</name>`.
    pub fn close(&self) -> &str {
        &self.close
    }

    /// Whether `name` can name a tag: an ASCII letter or `_`, then ASCII letters, digits, `_`,
    /// `-`, `.` or `:`.
    pub fn is_valid_name(name: &str) -> bool {
        let mut bytes = name.bytes();
        match bytes.next() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
            _ => return false,
        }
        bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    }
}

/// Whether a [`TagEvent`] opens or closes its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagEdge {
    /// `<name>`.
    Open,
    /// `</name>`.
    Close,
}

/// One opening or closing tag found by [`tag_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagEvent {
    /// The tag's index in the slice given to [`tag_events`].
    pub tag: usize,
    /// Opening or closing.
    pub edge: TagEdge,
    /// Byte offset of the `<`.
    pub start: usize,
    /// Byte offset just past the `>`.
    pub end: usize,
}

/// The opening and closing tags of `tags` in `text`, in the order they appear.
///
/// One pass over the text: it stops at each `<` and compares what follows with each tag.
pub fn tag_events<'a>(text: &'a str, tags: &'a [Tag]) -> TagEvents<'a> {
    TagEvents { text, tags, pos: 0 }
}

/// Iterator returned by [`tag_events`].
#[derive(Clone, Debug)]
pub struct TagEvents<'a> {
    text: &'a str,
    tags: &'a [Tag],
    pos: usize,
}

impl Iterator for TagEvents<'_> {
    type Item = TagEvent;

    fn next(&mut self) -> Option<TagEvent> {
        while let Some(offset) = find_byte(b'<', &self.text.as_bytes()[self.pos..]) {
            let start = self.pos + offset;
            match tag_at(self.text, start, self.tags) {
                Some(event) => {
                    self.pos = event.end;
                    return Some(event);
                }
                None => self.pos = start + 1,
            }
        }
        self.pos = self.text.len();
        None
    }
}

/// The tag of `tags` that starts at the `<` at `start` in `text`, if any: the first that matches,
/// trying each tag's opening text, then its closing text.
#[inline]
pub(super) fn tag_at(text: &str, start: usize, tags: &[Tag]) -> Option<TagEvent> {
    let rest = &text.as_bytes()[start..];
    // Every pattern is at least two bytes, so only those whose second byte is the text's can
    // match: that skips the opening patterns at a `</` and the closing ones elsewhere.
    let &second = rest.get(1)?;
    for (tag, t) in tags.iter().enumerate() {
        for (edge, pattern) in [(TagEdge::Open, t.open()), (TagEdge::Close, t.close())] {
            let p = pattern.as_bytes();
            if p.get(1) == Some(&second) && rest.len() >= p.len() && eq_bytes(&rest[..p.len()], p) {
                return Some(TagEvent { tag, edge, start, end: start + p.len() });
            }
        }
    }
    None
}

/// What is wrong with a required tag; see [`check_tags_in_order`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TagProblem {
    /// Neither opened nor closed.
    Missing,
    /// Opened but never closed, or closed but never opened (or closed before it is opened).
    Unclosed,
    /// Opened or closed more than once.
    Repeated,
    /// Present once, but before the tag that should precede it, or inside another required tag.
    OutOfOrder,
    /// Opened and closed with only whitespace between.
    Empty,
}

/// A required tag that failed [`check_tags_in_order`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagError {
    /// The tag's name.
    pub tag: String,
    /// What is wrong with it.
    pub problem: TagProblem,
    /// How many times it was opened.
    pub opened: usize,
    /// How many times it was closed.
    pub closed: usize,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Pieces rather than one `write!`: this runs for every rollout that fails the check.
        f.write_str("<")?;
        f.write_str(&self.tag)?;
        let counts = match self.problem {
            TagProblem::Missing => return f.write_str("> is missing"),
            TagProblem::Unclosed => "> is not well formed (opened ",
            TagProblem::Repeated => "> appears more than once (opened ",
            TagProblem::OutOfOrder => return f.write_str("> is out of order"),
            TagProblem::Empty => return f.write_str("> is empty"),
        };
        f.write_str(counts)?;
        fmt::Display::fmt(&self.opened, f)?;
        f.write_str(" times, closed ")?;
        fmt::Display::fmt(&self.closed, f)?;
        f.write_str(" times)")
    }
}

impl std::error::Error for TagError {}

/// Checks that each of `tags` is opened and closed exactly once, with something other than
/// whitespace inside, one after the other in the given order (not nested in each other).
///
/// Text before, between and after the tags is allowed. Tags not in `tags` are ignored.
///
/// ## Return Value
///
/// `Ok(())` when every tag passes. Otherwise the first problem found, looking for missing tags
/// first, then malformed, repeated, misordered and empty ones. Allocates only on failure.
pub fn check_tags_in_order(text: &str, tags: &[Tag]) -> Result<(), TagError> {
    let mut order = TagOrder::new(tags);
    for event in tag_events(text, tags) {
        if !order.feed(text, event) {
            break;
        }
    }
    order.finish(text, tags)
}

/// The common case of [`check_tags_in_order`], fed the tag events in order: they must be exactly
/// open0, close0, open1, close1, ...
pub(super) struct TagOrder {
    expected: usize,
    seen: usize,
    content_start: usize,
    empty: Option<usize>,
    in_order: bool,
}

impl TagOrder {
    pub(super) fn new(tags: &[Tag]) -> Self {
        TagOrder { expected: 2 * tags.len(), seen: 0, content_start: 0, empty: None, in_order: true }
    }

    /// Takes the next event; false once the order is broken (the rest need not be fed).
    pub(super) fn feed(&mut self, text: &str, event: TagEvent) -> bool {
        let edge = if self.seen.is_multiple_of(2) { TagEdge::Open } else { TagEdge::Close };
        if self.seen < self.expected && event.tag == self.seen / 2 && event.edge == edge {
            match edge {
                TagEdge::Open => self.content_start = event.end,
                TagEdge::Close => {
                    if self.empty.is_none() && text[self.content_start..event.start].is_blank() {
                        self.empty = Some(event.tag);
                    }
                }
            }
            self.seen += 1;
            true
        } else {
            self.in_order = false;
            false
        }
    }

    /// The verdict once every event (or every one up to the first out of order) was fed.
    pub(super) fn finish(&self, text: &str, tags: &[Tag]) -> Result<(), TagError> {
        if self.in_order && self.seen == self.expected {
            return match self.empty {
                None => Ok(()),
                Some(i) => Err(tag_error(tags, i, TagProblem::Empty, (1, 1))),
            };
        }
        Err(tag_problem(text, tags))
    }
}

/// What is wrong with the tags of a text that failed the common case of [`check_tags_in_order`].
#[cold]
fn tag_problem(text: &str, tags: &[Tag]) -> TagError {
    // Something is off: count every tag to say what.
    #[derive(Clone, Copy)]
    struct Count {
        opened: usize,
        closed: usize,
        first_open: usize,
        first_close: usize,
    }
    const NONE: Count = Count { opened: 0, closed: 0, first_open: usize::MAX, first_close: usize::MAX };
    // On the stack for the usual few tags.
    let mut few = [NONE; 8];
    let mut many = Vec::new();
    let counts: &mut [Count] = if tags.len() <= few.len() {
        &mut few[..tags.len()]
    } else {
        many.resize(tags.len(), NONE);
        &mut many
    };
    for event in tag_events(text, tags) {
        let c = &mut counts[event.tag];
        match event.edge {
            TagEdge::Open => {
                c.opened += 1;
                c.first_open = c.first_open.min(event.start);
            }
            TagEdge::Close => {
                c.closed += 1;
                c.first_close = c.first_close.min(event.start);
            }
        }
    }
    let problem = |i: usize, p: TagProblem| tag_error(tags, i, p, (counts[i].opened, counts[i].closed));
    if let Some(i) = counts.iter().position(|c| c.opened == 0 && c.closed == 0) {
        return problem(i, TagProblem::Missing);
    }
    if let Some(i) = counts.iter().position(|c| c.opened == 0 || c.closed == 0 || c.opened != c.closed || c.first_close < c.first_open) {
        return problem(i, TagProblem::Unclosed);
    }
    if let Some(i) = counts.iter().position(|c| c.opened > 1 || c.closed > 1) {
        return problem(i, TagProblem::Repeated);
    }
    // Each tag once, each well formed: the order (or nesting) is what is wrong.
    let i = (1..tags.len()).find(|&i| counts[i].first_open < counts[i - 1].first_close).unwrap_or(0);
    problem(i, TagProblem::OutOfOrder)
}

fn tag_error(tags: &[Tag], i: usize, problem: TagProblem, (opened, closed): (usize, usize)) -> TagError {
    TagError { tag: tags[i].name().to_owned(), problem, opened, closed }
}

/// The trimmed content of the last complete `<tag>…</tag>` element in `text`.
///
/// "Last complete" means the last opening tag that has a closing tag after it, paired with the
/// first such closing tag, so the content never contains either tag. An unclosed opening tag at
/// the end (a truncated answer) is skipped in favour of the complete element before it; use
/// [`check_tags_in_order`] to reject such text.
pub fn last_tag_content<'a>(text: &'a str, tag: &Tag) -> Option<&'a str> {
    let (open, close) = (tag.open(), tag.close());
    type Search = fn(&str, &str) -> Option<usize>;
    let (find, rfind): (Search, Search) = if tag.plain { (find_unique_lead, rfind_unique_lead) } else { (find_str, rfind_str) };
    // Each search window ends where the previous (later) opening tag starts, so the windows are
    // disjoint and the whole search is linear.
    let mut end = text.len();
    while let Some(start) = rfind(&text[..end], open) {
        let body = start + open.len();
        if let Some(c) = find(&text[body..end], close) {
            return Some(text[body..body + c].trim_fast());
        }
        end = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::tests::tags;

    #[test]
    fn tags_are_built_once_and_checked() {
        let t = Tag::new("answer");
        assert_eq!(t, Tag::ANSWER);
        assert_eq!((t.open(), t.close(), t.name()), ("<answer>", "</answer>", "answer"));
        assert!(Tag::is_valid_name("tool_call"));
        assert!(Tag::is_valid_name("ns:a-b.c"));
        for bad in ["", "1x", "a b", "a>", "</a", "ä"] {
            assert!(!Tag::is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn last_tag_content_takes_the_last_complete_element() {
        let a = Tag::ANSWER;
        assert_eq!(last_tag_content("<answer> 1 </answer> x <answer>2</answer>", &a), Some("2"));
        assert_eq!(last_tag_content("<answer>1</answer><answer>2", &a), Some("1"));
        assert_eq!(last_tag_content("<answer>1</answer></answer>", &a), Some("1"));
        assert_eq!(last_tag_content("</answer><answer>", &a), None);
        assert_eq!(last_tag_content("<answer></answer>", &a), Some(""));
        assert_eq!(last_tag_content("nothing", &a), None);
        let tool = Tag::new("tool_call");
        assert_eq!(last_tag_content("<tool_call>{}</tool_call>", &tool), Some("{}"));
    }

    #[test]
    fn tags_in_order_accepts_the_r1_shape() {
        let t = tags(&["think", "answer"]);
        assert_eq!(check_tags_in_order("<think>\nwork\n</think>\n<answer>42</answer>", &t), Ok(()));
        assert_eq!(check_tags_in_order("intro <think>w</think> mid <answer>42</answer> end", &t), Ok(()));
        assert_eq!(check_tags_in_order("anything", &[]), Ok(()));
    }

    #[test]
    fn tags_in_order_names_each_problem() {
        let t = tags(&["think", "answer"]);
        let problem = |text: &str| check_tags_in_order(text, &t).map_err(|e| (e.tag, e.problem));
        assert_eq!(problem("<answer>42</answer>"), Err(("think".into(), TagProblem::Missing)));
        assert_eq!(problem("<think>w</think>"), Err(("answer".into(), TagProblem::Missing)));
        assert_eq!(problem("<think>w<answer>42</answer>"), Err(("think".into(), TagProblem::Unclosed)));
        assert_eq!(problem("<think>w</think><answer>42"), Err(("answer".into(), TagProblem::Unclosed)));
        assert_eq!(problem("</think>w<think><answer>1</answer>"), Err(("think".into(), TagProblem::Unclosed)));
        assert_eq!(problem("<think>w</think><answer>1</answer><answer>2</answer>"), Err(("answer".into(), TagProblem::Repeated)));
        assert_eq!(problem("<answer>1</answer><think>w</think>"), Err(("answer".into(), TagProblem::OutOfOrder)));
        assert_eq!(problem("<think>w<answer>1</answer></think>"), Err(("answer".into(), TagProblem::OutOfOrder)));
        assert_eq!(problem("<think> \n </think><answer>1</answer>"), Err(("think".into(), TagProblem::Empty)));
        assert_eq!(problem("<think>w</think><answer></answer>"), Err(("answer".into(), TagProblem::Empty)));
        let e = check_tags_in_order("<think>w</think><answer>42", &t).unwrap_err();
        assert_eq!(e.to_string(), "<answer> is not well formed (opened 1 times, closed 0 times)");
    }

    #[test]
    fn tag_events_reports_positions() {
        let t = tags(&["a", "b"]);
        let events: Vec<_> = tag_events("x<a>1</a><b></b><c>", &t).map(|e| (e.tag, e.edge, e.start, e.end)).collect();
        assert_eq!(
            events,
            vec![(0, TagEdge::Open, 1, 4), (0, TagEdge::Close, 5, 9), (1, TagEdge::Open, 9, 12), (1, TagEdge::Close, 12, 16)]
        );
    }
}
