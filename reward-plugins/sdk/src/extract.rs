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

use std::borrow::Cow;
use std::fmt;

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

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

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
    /// (see [`lead_is_unique`]); true of every valid name.
    plain: bool,
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tag").field("name", &self.name).field("open", &self.open).field("close", &self.close).finish()
    }
}

impl Tag {
    /// `<answer>…</answer>`, the tag [`find_answer`] looks for.
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
fn tag_at(text: &str, start: usize, tags: &[Tag]) -> Option<TagEvent> {
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
struct TagOrder {
    expected: usize,
    seen: usize,
    content_start: usize,
    empty: Option<usize>,
    in_order: bool,
}

impl TagOrder {
    fn new(tags: &[Tag]) -> Self {
        TagOrder { expected: 2 * tags.len(), seen: 0, content_start: 0, empty: None, in_order: true }
    }

    /// Takes the next event; false once the order is broken (the rest need not be fed).
    fn feed(&mut self, text: &str, event: TagEvent) -> bool {
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
    fn finish(&self, text: &str, tags: &[Tag]) -> Result<(), TagError> {
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

// ---------------------------------------------------------------------------------------------
// Reasoning and solution wrappers
// ---------------------------------------------------------------------------------------------

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

/// [`check_tags_in_order`] and [`answer_region`] of the same text, for about the cost of one: both
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

// ---------------------------------------------------------------------------------------------
// Fenced code blocks
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// \boxed{…} and answer markers
// ---------------------------------------------------------------------------------------------

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
fn after_line_marker(text: &str) -> Option<Option<&str>> {
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

// ---------------------------------------------------------------------------------------------
// Putting it together
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/// LaTeX commands whose argument is kept and whose braces are dropped.
const LATEX_WRAPPERS: [&str; 11] = [
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

fn latex_escape(rest: &str) -> Option<(&'static str, &'static str)> {
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

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// The longest text [`parse_number`] reads, in bytes. Longer text is not a single number.
pub const MAX_NUMBER_LEN: usize = 256;

/// A number read by [`parse_number_detail`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParsedNumber {
    /// The value with a percent sign applied (`12.5%` is `0.125`) and scale words ignored
    /// (`1.2 million` is `1.2`).
    pub value: f64,
    /// The value with scale words applied as well (`1.2 million` is `1200000`).
    pub scaled: f64,
    /// Whether the text had a percent sign (or `percent`).
    pub percent: bool,
}

/// The single number written in `text`, or `None` if it is not exactly one number.
///
/// Same as [`parse_number_detail`]`(text).map(|n| n.value)`: a percent sign divides by 100
/// (`12.5%` is `0.125`, so it equals a reference written `0.125`) and scale words such as
/// `million` are ignored (`1,234 million` is `1234`), because datasets like FinQA state the unit
/// in the question and write the reference in it. [`ParsedNumber::scaled`] has the scaled value.
///
/// ```
/// use reward_sdk::extract::parse_number;
/// assert_eq!(parse_number("$1,234.5"), Some(1234.5));
/// assert_eq!(parse_number("(123)"), Some(-123.0));
/// assert_eq!(parse_number("12.5%"), Some(0.125));
/// assert_eq!(parse_number("−3.5e2"), Some(-350.0));
/// assert_eq!(parse_number("12 or 13"), None);
/// ```
pub fn parse_number(text: &str) -> Option<f64> {
    parse_number_detail(text).map(|n| n.value)
}

/// The single number written in `text`, with its percent and scale readings.
///
/// Accepted, around surrounding whitespace:
/// - digits with optional `,` thousands separators in groups of three (`1,234,567`), an
///   optional fraction (`.5`, `3.`), an optional exponent (`-3.5e2`); LaTeX separators `{,}` and
///   `\,` too;
/// - a sign: `-`, `+`, Unicode minus `−` or an en dash, before or after a currency symbol
///   (`-$5`, `$-5`); currency symbols `$ € £ ¥ ₹` before or after the number;
/// - accounting negatives: `(123)`, `($1,234)`;
/// - a simple fraction `3/4` or `\frac{3}{4}` (`\dfrac`, `\tfrac`, `\frac34`);
/// - a percent sign or the word `percent` (value divided by 100);
/// - a scale word right after the number: `thousand`, `k`, `million`, `mn`, `mm`, `mio`,
///   `billion`, `bn`, `trillion`, `tn` (plural forms too), applied only in
///   [`ParsedNumber::scaled`];
/// - a prefix `=`, `≈`, `~` or a one-letter variable and `=` (`x = 5`);
/// - math delimiters and `\text{…}` (`$12.5\%$`, `5\text{ cm}`), a final `.`, `,` or `;`;
/// - up to three trailing unit words (`42 apples`, `3 km/h`, `25 °C`) without digits and other
///   than `or`, `and`, `to`, so `12 or 13` and `12, 13` are not numbers.
///
/// Rejected: anything else, several numbers, non-finite results, a zero denominator, and text
/// longer than [`MAX_NUMBER_LEN`] bytes. Decimal digits are converted once with correct rounding
/// (`0.07%` is exactly the double nearest `0.0007`).
pub fn parse_number_detail(text: &str) -> Option<ParsedNumber> {
    if text.len() > MAX_NUMBER_LEN {
        return None;
    }
    if let Some(result) = parse_plain_number(text) {
        return result;
    }
    let cleaned = delatex(text)?;
    NumberParser { s: &cleaned, i: 0 }.parse()
}

/// The plain forms most answers take (`42`, `-7`, `0.125`, `12.5%`), read without the general
/// parser's many checks: `Some(result)` when `text`, trimmed, is an optional `-` or `+`, digits,
/// optionally `.` and more digits, and an optional `%`; `None` for any other text. On those texts
/// the general parser takes exactly these steps (no LaTeX, separators, currency, fraction, scale
/// or unit), so the result is the same.
fn parse_plain_number(text: &str) -> Option<Option<ParsedNumber>> {
    let b = text.trim_fast().as_bytes();
    let (negative, start) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    // The digits' value as an integer (meaningful while there are at most 17 of them, checked
    // below), the point ignored.
    let mut mantissa: u64 = 0;
    let mut i = start;
    let mut digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b[*i] - b'0'));
            *i += 1;
        }
        *i - from
    };
    let int_len = digits(&mut i);
    if int_len == 0 {
        return None;
    }
    let mut frac_len = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_len = digits(&mut i);
        if frac_len == 0 {
            return None;
        }
    }
    let end = i;
    let percent = i < b.len() && b[i] == b'%';
    if i + usize::from(percent) != b.len() {
        return None;
    }
    let shift = if percent { -2 } else { 0 };
    let number = &b[start..end];
    let fast = if int_len + frac_len <= 17 { exact_operands(mantissa, shift - frac_len as i32) } else { None };
    let value = match fast {
        Some(v) => v,
        None => {
            // Long or extreme: the general conversion, with the digits as `decimal` would store them.
            let mut d = Decimal { buf: [0; MAX_NUMBER_LEN + 16], len: 0, exp: 0 };
            number.iter().for_each(|&c| d.push(c));
            match d.to_f64(shift) {
                Some(v) => v,
                None => return Some(None),
            }
        }
    };
    let sign = if negative { -1.0 } else { 1.0 };
    // `-0` and `0` are the same answer.
    let value = sign * value + 0.0;
    Some(Some(ParsedNumber { value, scaled: value, percent }))
}

/// `mantissa * 10^exp` when both operands are exact doubles (the mantissa at most 2^53, the power
/// of ten between 10^-22 and 10^22): one multiplication or division then rounds correctly, so this
/// is the value `str::parse` gives for those digits, without the parsing. `None` otherwise.
fn exact_operands(mantissa: u64, exp: i32) -> Option<f64> {
    const POW10: [f64; 23] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
    if mantissa > 1 << 53 {
        return None;
    }
    let m = mantissa as f64;
    match exp {
        0 => Some(m),
        1..=22 => Some(m * POW10[exp as usize]),
        -22..=-1 => Some(m / POW10[(-exp) as usize]),
        _ => None,
    }
}

const FRACTIONS: [&str; 3] = ["\\frac", "\\dfrac", "\\tfrac"];

/// `text` with the LaTeX that can surround a number removed; `None` for other LaTeX.
fn delatex(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| matches!(b, b'\\' | b'{' | b'}')) {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        if rest.starts_with("{,}") {
            out.push(',');
            i += 3;
            continue;
        }
        if let Some(p) = ["^\\circ", "^{\\circ}"].iter().find(|p| rest.starts_with(**p)) {
            out.push('°');
            i += p.len();
            continue;
        }
        if c == '\\' {
            if let Some(f) = FRACTIONS.iter().find(|f| rest.starts_with(**f)) {
                let (num, den, used) = fraction_args(&rest[f.len()..])?;
                out.push_str(num);
                out.push('/');
                out.push_str(den);
                i += f.len() + used;
                continue;
            }
            if let Some(w) = LATEX_WRAPPERS.iter().find(|w| rest.starts_with(**w)) {
                // Its closing brace is dropped like any other.
                i += w.len();
                continue;
            }
            if let Some(p) = ["\\circ", "\\%", "\\$"].iter().find(|p| rest.starts_with(**p)) {
                out.push_str(match *p {
                    "\\%" => "%",
                    "\\$" => "$",
                    _ => "°",
                });
                i += p.len();
                continue;
            }
            if let Some((pattern, _)) = latex_escape(rest) {
                // Spacing inside a number is a thousands separator (`1\,234`): drop it.
                i += pattern.len();
                continue;
            }
            return None;
        }
        if c != '{' && c != '}' {
            out.push(c);
        }
        i += c.len_utf8();
    }
    Some(Cow::Owned(out))
}

/// `(numerator, denominator, bytes used)` after `\frac`: `{a}{b}` without nested braces, or two
/// digits (`\frac12`).
fn fraction_args(s: &str) -> Option<(&str, &str, usize)> {
    let group = |s: &str| -> Option<(usize, usize)> {
        let t = s.trim_start();
        let skip = s.len() - t.len();
        let body = t.strip_prefix('{')?;
        let close = body.find('}')?;
        (!body[..close].contains('{')).then_some((skip + 1, skip + 1 + close))
    };
    if let Some((ns, ne)) = group(s) {
        let (ds, de) = group(&s[ne + 1..])?;
        return Some((&s[ns..ne], &s[ne + 1 + ds..ne + 1 + de], ne + 1 + de + 1));
    }
    let b = s.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_digit() && b[1].is_ascii_digit()).then(|| (&s[..1], &s[1..2], 2))
}

const CURRENCIES: &[char] = &['$', '€', '£', '¥', '₹'];
const MINUS: &[char] = &['-', '−', '–'];
const SCALE_WORDS: [(&str, i32); 15] = [
    ("thousands", 3),
    ("thousand", 3),
    ("millions", 6),
    ("million", 6),
    ("billions", 9),
    ("billion", 9),
    ("trillions", 12),
    ("trillion", 12),
    ("mio", 6),
    ("mn", 6),
    ("mm", 6),
    ("bn", 9),
    ("tn", 12),
    ("k", 3),
    ("m", 0), // metres or million: ambiguous, so it is a unit word and scales nothing
];

/// Digits of a decimal number (`sign? digits . digits`) ready for `f64` parsing, and its exponent.
struct Decimal {
    // Digits and a point (at most the input's length), then room for `e-123456`.
    buf: [u8; MAX_NUMBER_LEN + 16],
    len: usize,
    exp: i32,
}

impl Decimal {
    /// Digits and the point fit: the input is at most `MAX_NUMBER_LEN` bytes and cleaning it
    /// only shrinks it. A digit that would not fit is counted but not stored, and `full` says so.
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf[..=MAX_NUMBER_LEN].get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
    }

    fn full(&self) -> bool {
        self.len > MAX_NUMBER_LEN + 1
    }

    /// The value times `10^extra_exp`, correctly rounded.
    fn to_f64(&self, extra_exp: i32) -> Option<f64> {
        let exp = self.exp + extra_exp;
        if let Some(v) = self.to_f64_exact_operands(exp) {
            return Some(v);
        }
        let v: f64 = if exp == 0 {
            std::str::from_utf8(&self.buf[..self.len]).ok()?.parse().ok()?
        } else {
            // `digits e exp`, written by hand: the exponent has at most 6 digits.
            let mut text = self.buf;
            let mut len = self.len;
            text[len] = b'e';
            len += 1;
            if exp < 0 {
                text[len] = b'-';
                len += 1;
            }
            let mut digits = [0u8; 10];
            let mut n = 0;
            let mut e = exp.unsigned_abs();
            loop {
                digits[n] = b'0' + (e % 10) as u8;
                n += 1;
                e /= 10;
                if e == 0 {
                    break;
                }
            }
            for &d in digits[..n].iter().rev() {
                text[len] = d;
                len += 1;
            }
            std::str::from_utf8(&text[..len]).ok()?.parse().ok()?
        };
        v.is_finite().then_some(v)
    }
}

impl Decimal {
    /// [`exact_operands`] on the digits, when they are few enough to be an exact integer.
    fn to_f64_exact_operands(&self, exp: i32) -> Option<f64> {
        if self.len > 17 {
            return None;
        }
        let mut mantissa: u64 = 0;
        let mut fraction_digits = 0;
        let mut point = false;
        for &b in &self.buf[..self.len] {
            if b == b'.' {
                point = true;
            } else {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                fraction_digits += i32::from(point);
            }
        }
        exact_operands(mantissa, exp - fraction_digits)
    }
}

struct NumberParser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> NumberParser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, set: &[char]) -> bool {
        match self.peek() {
            Some(c) if set.contains(&c) => {
                self.i += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.i += rest.len() - rest.trim_start().len();
    }

    /// Eats `word` (ASCII case-insensitive) when it is not followed by a letter.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let matches =
            rest.get(..word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word)) && !rest[word.len()..].starts_with(char::is_alphabetic);
        if matches {
            self.i += word.len();
        }
        matches
    }

    fn digits(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        self.i += n;
        &rest[..n]
    }

    /// An unsigned decimal: digits with optional thousands groups, fraction and exponent.
    fn decimal(&mut self) -> Option<Decimal> {
        let start = self.i;
        let mut d = Decimal { buf: [0; MAX_NUMBER_LEN + 16], len: 0, exp: 0 };
        let int = self.digits();
        let mut seen = !int.is_empty();
        int.bytes().for_each(|b| d.push(b));
        if (1..=3).contains(&int.len()) {
            // Thousands groups: `,ddd` not followed by another digit.
            loop {
                let b = self.rest().as_bytes();
                let group =
                    b.len() >= 4 && b[0] == b',' && b[1..4].iter().all(u8::is_ascii_digit) && !b.get(4).is_some_and(u8::is_ascii_digit);
                if !group {
                    break;
                }
                b[1..4].iter().for_each(|&x| d.push(x));
                self.i += 4;
            }
        }
        let b = self.rest().as_bytes();
        if b.first() == Some(&b'.') && b.get(1).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
            d.push(b'.');
            let frac = self.digits();
            frac.bytes().for_each(|x| d.push(x));
            seen = true;
        }
        if !seen || d.full() {
            self.i = start;
            return None;
        }
        // An exponent only when digits follow: `5 euros` has none.
        let b = self.rest().as_bytes();
        if matches!(b.first(), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(b.get(1), Some(b'+' | b'-')));
            let n = b[1 + sign..].iter().take_while(|x| x.is_ascii_digit()).count();
            if n > 0 {
                if n > 5 {
                    return None;
                }
                let text = &self.rest()[1..1 + sign + n];
                d.exp = text.parse().ok()?;
                self.i += 1 + sign + n;
            }
        }
        Some(d)
    }

    fn parse(mut self) -> Option<ParsedNumber> {
        let s = self.s.trim_fast().trim_end_matches(['.', ',', ';']).trim_end();
        self.s = s;
        // `x = 5`
        let b = s.as_bytes();
        if b.first().is_some_and(u8::is_ascii_alphabetic) && s[1..].trim_start().starts_with('=') {
            self.i = s.len() - s[1..].trim_start().len() + 1;
        }
        self.skip_ws();
        if self.eat(&['=', '≈', '~']) {
            self.skip_ws();
        }
        let paren = self.eat(&['(']);
        let mut negative = None;
        loop {
            self.skip_ws();
            if negative.is_none() && self.eat(MINUS) {
                negative = Some(true);
            } else if negative.is_none() && self.eat(&['+']) {
                negative = Some(false);
            } else if !self.eat(CURRENCIES) {
                break;
            }
        }
        let num = self.decimal()?;
        let den = {
            let save = self.i;
            self.skip_ws();
            if self.eat(&['/']) {
                self.skip_ws();
                let den = self.decimal();
                if den.is_none() {
                    self.i = save;
                }
                den
            } else {
                self.i = save;
                None
            }
        };
        self.skip_ws();
        // Every word eaten here starts with an ASCII letter.
        let letter = |p: &Self| p.rest().as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
        let mut percent = self.eat(&['%']) || (letter(&self) && (self.eat_word("percent") || self.eat_word("per cent")));
        self.skip_ws();
        let scale = if letter(&self) { SCALE_WORDS.iter().find(|(w, _)| self.eat_word(w)).map_or(0, |&(_, e)| e) } else { 0 };
        if paren {
            self.skip_ws();
            self.eat(CURRENCIES);
            self.skip_ws();
            if !self.eat(&[')']) {
                return None;
            }
            self.skip_ws();
            percent = percent || self.eat(&['%']);
        }
        if !trailing_units_ok(self.rest()) {
            return None;
        }
        let negative = negative.unwrap_or(paren);
        let shift = if percent { -2 } else { 0 };
        let (value, scaled) = match den {
            None => {
                let value = num.to_f64(shift)?;
                (value, if scale == 0 { value } else { num.to_f64(shift + scale)? })
            }
            Some(den) => {
                let q = num.to_f64(0)? / den.to_f64(0)?;
                let q = q * 10f64.powi(shift);
                (q, q * 10f64.powi(scale))
            }
        };
        if !value.is_finite() || !scaled.is_finite() {
            return None;
        }
        let sign = if negative { -1.0 } else { 1.0 };
        // `-0` and `0` are the same answer.
        Some(ParsedNumber { value: sign * value + 0.0, scaled: sign * scaled + 0.0, percent })
    }
}

fn trailing_units_ok(rest: &str) -> bool {
    let r = rest.trim_fast();
    if r.is_empty() {
        return true;
    }
    r.len() <= 40
        && r.chars().all(|c| c.is_alphabetic() || c.is_whitespace() || ".-/°'²³".contains(c) || CURRENCIES.contains(&c))
        && r.split_whitespace().count() <= 3
        && !r.split_whitespace().any(|w| ["or", "and", "to"].iter().any(|x| w.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn tags(names: &[&str]) -> Vec<Tag> {
        names.iter().map(|n| Tag::new(n)).collect()
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

    #[test]
    fn parse_number_accepts_what_models_write() {
        let cases: &[(&str, f64)] = &[
            ("42", 42.0),
            ("  -7 ", -7.0),
            ("+7", 7.0),
            ("1,234.5", 1234.5),
            ("1,234,567", 1234567.0),
            ("$1,234", 1234.0),
            ("-$5.50", -5.5),
            ("$-5.50", -5.5),
            ("€3", 3.0),
            ("3 €", 3.0),
            ("12%", 0.12),
            ("12.5 %", 0.125),
            ("12.5 percent", 0.125),
            ("0.07%", 0.0007),
            ("-3.5e2", -350.0),
            ("1E-3", 0.001),
            ("(123)", -123.0),
            ("($1,234)", -1234.0),
            ("(12.5%)", -0.125),
            ("−4", -4.0),
            ("–4", -4.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("42.", 42.0),
            ("3/4", 0.75),
            ("-1/8", -0.125),
            ("\\frac{3}{4}", 0.75),
            ("\\dfrac{1}{8}", 0.125),
            ("\\frac12", 0.5),
            ("$12.5\\%$", 0.125),
            ("\\$1{,}000", 1000.0),
            ("1\\,234", 1234.0),
            ("5\\text{ cm}", 5.0),
            ("\\boxed{9}", 9.0),
            ("x = 5", 5.0),
            ("=5", 5.0),
            ("≈ 2.72", 2.72),
            ("42 apples", 42.0),
            ("3 km/h", 3.0),
            ("25 °C", 25.0),
            ("90^\\circ", 90.0),
            ("1,234 million", 1234.0),
            ("5k", 5.0),
            ("0", 0.0),
            ("-0", 0.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_number(text), Some(*want), "{text:?}");
        }
        assert!(parse_number("-0").unwrap().is_sign_positive());
    }

    #[test]
    fn parse_number_rejects_what_is_not_one_number() {
        for text in [
            "",
            "abc",
            "12 or 13 or 14",
            "12, 13, 14",
            "12,13",
            "1,23",
            "1234,567",
            "12 to 14",
            "between 12 and 14",
            "1.234,5",
            "1/0",
            "1e999",
            "12 13",
            "(12",
            "five",
            "\\sqrt{2}",
            "The answer is 12",
            "12 and more",
            "inf",
            "NaN",
            "$",
            "-",
            "1e123456",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
        assert_eq!(parse_number(&"1".repeat(MAX_NUMBER_LEN + 1)), None);
    }

    #[test]
    fn parse_number_detail_scales() {
        let n = parse_number_detail("$1.2 billion").unwrap();
        assert_eq!((n.value, n.scaled, n.percent), (1.2, 1.2e9, false));
        let n = parse_number_detail("(3.5 mn)").unwrap();
        assert_eq!((n.value, n.scaled), (-3.5, -3.5e6));
        let n = parse_number_detail("12.5%").unwrap();
        assert_eq!((n.value, n.scaled, n.percent), (0.125, 0.125, true));
        // `m` is ambiguous (metres): no scaling.
        assert_eq!(parse_number_detail("5 m").unwrap().scaled, 5.0);
        assert_eq!(parse_number_detail("2 thousand").unwrap().scaled, 2000.0);
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
