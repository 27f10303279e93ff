//! Text normalisation and quote finding.
//!
//! The context is tokenised once (per distinct context text, see [`ContextCache`]) into
//! normalised tokens: maximal runs of Unicode letters and digits, lowercased; everything else
//! (whitespace, punctuation) separates tokens. The tokens are also kept joined by single spaces in
//! one string, padded with a space at both ends, so an exact quote is one `memmem` search for
//! `" tok tok tok "`: linear in the context, and token-aligned. Each token keeps its byte offset in
//! the original context (the offset map), which places numbered passages.
//!
//! Fuzzy matching never compares a quote with every window of the context: it seeds candidate
//! windows from the quote's rarest tokens (at most [`MAX_ANCHORS`] tokens, [`MAX_OCCURRENCES`]
//! occurrences each) and scores each window by token-bag F1, so its cost is bounded by the quote's
//! length, not the context's.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Rarest quote tokens used to seed fuzzy windows.
pub(crate) const MAX_ANCHORS: usize = 6;
/// Occurrences of one anchor token tried.
pub(crate) const MAX_OCCURRENCES: usize = 48;
/// Tokens per n-gram for the copy check.
pub(crate) const COPY_NGRAM: usize = 8;

/// Calls `f` with each normalised token of `text` and its byte range in `text`.
pub(crate) fn for_each_token(text: &str, mut f: impl FnMut(&str, usize, usize)) {
    let mut buf = String::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
                buf.clear();
            }
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else {
                buf.extend(c.to_lowercase());
            }
        } else if let Some(s) = start.take() {
            f(&buf, s, i);
        }
    }
    if let Some(s) = start {
        f(&buf, s, text.len());
    }
}

/// The normalised tokens of `text`.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t, _, _| out.push(t.to_owned()));
    out
}

/// SQuAD answer normalisation: lowercase, punctuation removed, articles removed, whitespace
/// collapsed; returns the tokens.
pub(crate) fn squad_tokens(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else if c.is_whitespace() {
            cleaned.push(' ');
        }
        // Punctuation and symbols are dropped (SQuAD deletes them: "1,000" is "1000").
    }
    cleaned.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).map(str::to_owned).collect()
}

/// Token-bag F1 of two token lists (SQuAD's `f1_score`); two empty lists score 1.
pub(crate) fn bag_f1<T: Ord + Clone>(pred: &[T], gold: &[T]) -> f64 {
    if pred.is_empty() || gold.is_empty() {
        return if pred.is_empty() && gold.is_empty() { 1.0 } else { 0.0 };
    }
    f1_of(common_count(pred, gold), pred.len(), gold.len())
}

/// F1 of `common` shared tokens between lists of `pred` and `gold` tokens.
fn f1_of(common: usize, pred: usize, gold: usize) -> f64 {
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / pred as f64;
    let r = common as f64 / gold as f64;
    2.0 * p * r / (p + r)
}

/// Size of the multiset intersection.
fn common_count<T: Ord + Clone>(a: &[T], b: &[T]) -> usize {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    sorted_common(&a, &b)
}

/// Size of the multiset intersection of two sorted lists (one merge pass).
fn sorted_common<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// A context prepared for quote search.
pub(crate) struct Context {
    /// The normalised tokens joined by single spaces, with a space at both ends.
    norm: String,
    /// Byte offset in `norm` where each token starts.
    norm_start: Vec<u32>,
    /// Byte offset in the original context where each token starts (the offset map).
    raw_start: Vec<u32>,
    /// Token ids.
    ids: Vec<u32>,
    vocab: HashMap<String, u32>,
    /// Positions of each id, in order.
    occurrences: Vec<Vec<u32>>,
    /// Numbered passages: id and token range.
    pub(crate) passages: Vec<(String, (usize, usize))>,
    /// Hashes of every [`COPY_NGRAM`]-token window, built on first use.
    ngrams: RefCell<Option<HashSet<u64>>>,
}

/// Where a quote was found: a token range of the context and how close the match was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// 1 for an exact (normalised) match, else the token-bag F1 with the best window.
    pub(crate) similarity: f64,
}

impl Context {
    pub(crate) fn new(text: &str) -> Context {
        let mut c = Context {
            norm: String::with_capacity(text.len() + 2),
            norm_start: Vec::new(),
            raw_start: Vec::new(),
            ids: Vec::new(),
            vocab: HashMap::new(),
            occurrences: Vec::new(),
            passages: Vec::new(),
            ngrams: RefCell::new(None),
        };
        c.norm.push(' ');
        for_each_token(text, |t, s, _| {
            // Look up before inserting: only a new word allocates.
            let id = match c.vocab.get(t) {
                Some(&id) => id,
                None => {
                    let id = c.vocab.len() as u32;
                    c.vocab.insert(t.to_owned(), id);
                    c.occurrences.push(Vec::new());
                    id
                }
            };
            c.occurrences[id as usize].push(c.ids.len() as u32);
            c.ids.push(id);
            c.norm_start.push(c.norm.len() as u32);
            c.raw_start.push(s as u32);
            c.norm.push_str(t);
            c.norm.push(' ');
        });
        c.passages = find_passages(text)
            .into_iter()
            .map(|(id, s, e)| (id, (c.token_at_or_after(s), c.token_at_or_after(e))))
            .filter(|(_, (s, e))| e > s)
            .collect();
        c
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn token_at_or_after(&self, raw: usize) -> usize {
        self.raw_start.partition_point(|&s| (s as usize) < raw)
    }

    /// The token range of the passage with this id.
    pub(crate) fn passage(&self, id: &str) -> Option<(usize, usize)> {
        self.passages.iter().find(|(p, _)| p == id).map(|(_, r)| *r)
    }

    /// Finds a quote (already tokenised): exactly when it can, else the best fuzzy window with a
    /// similarity of at least `threshold` (fuzzy search is skipped when `threshold >= 1`).
    pub(crate) fn find(&self, quote: &[String], threshold: f64) -> Option<Found> {
        if quote.is_empty() {
            return None;
        }
        let mut needle = String::with_capacity(quote.iter().map(|t| t.len() + 1).sum::<usize>() + 1);
        needle.push(' ');
        for t in quote {
            needle.push_str(t);
            needle.push(' ');
        }
        if let Some(at) = memchr::memmem::find(self.norm.as_bytes(), needle.as_bytes()) {
            // `at` is the space before the first token.
            let start = self.norm_start.partition_point(|&s| (s as usize) <= at);
            return Some(Found { start, end: start + quote.len(), similarity: 1.0 });
        }
        if threshold >= 1.0 {
            return None;
        }
        self.find_fuzzy(quote, threshold)
    }

    fn find_fuzzy(&self, quote: &[String], threshold: f64) -> Option<Found> {
        let m = quote.len();
        let qids: Vec<Option<u32>> = quote.iter().map(|t| self.vocab.get(t.as_str()).copied()).collect();
        let known = qids.iter().filter(|i| i.is_some()).count();
        // Even a perfect window cannot reach the threshold when too many tokens are unknown.
        if m == 0 || bag_f1_upper(known, m) < threshold {
            return None;
        }
        // The rarest distinct known tokens, with their position in the quote.
        let mut anchors: Vec<(usize, usize, u32)> = Vec::new();
        for (j, id) in qids.iter().enumerate() {
            if let Some(id) = *id
                && !anchors.iter().any(|a| a.2 == id)
            {
                anchors.push((self.occurrences[id as usize].len(), j, id));
            }
        }
        anchors.sort_unstable();
        anchors.truncate(MAX_ANCHORS);
        // Unknown quote tokens get ids no context token has.
        let mut q: Vec<u32> = qids.iter().enumerate().map(|(j, id)| id.unwrap_or(u32::MAX - j as u32)).collect();
        q.sort_unstable();
        let mut best: Option<Found> = None;
        let mut tried: Vec<usize> = Vec::new();
        let mut window: Vec<u32> = Vec::with_capacity(m);
        for &(_, j, id) in &anchors {
            for &p in self.occurrences[id as usize].iter().take(MAX_OCCURRENCES) {
                let start = (p as usize).saturating_sub(j);
                let end = (start + m).min(self.ids.len());
                if tried.contains(&start) {
                    continue;
                }
                tried.push(start);
                window.clear();
                window.extend_from_slice(&self.ids[start..end]);
                window.sort_unstable();
                let sim = sorted_f1(&window, &q);
                if sim >= threshold && best.is_none_or(|b| sim > b.similarity) {
                    best = Some(Found { start, end, similarity: sim });
                }
            }
        }
        best
    }

    /// Share of `text_tokens` covered by an n-gram ([`COPY_NGRAM`] tokens) that also occurs in
    /// the context.
    pub(crate) fn copy_ratio(&self, text_tokens: &[String]) -> f64 {
        let n = COPY_NGRAM;
        if text_tokens.len() < n || self.ids.len() < n {
            return 0.0;
        }
        let mut cache = self.ngrams.borrow_mut();
        let set = cache.get_or_insert_with(|| self.ids.windows(n).map(hash_ids).collect());
        let ids: Vec<u32> = text_tokens.iter().map(|t| self.vocab.get(t.as_str()).copied().unwrap_or(u32::MAX)).collect();
        let mut covered = vec![false; ids.len()];
        for (i, w) in ids.windows(n).enumerate() {
            if !w.contains(&u32::MAX) && set.contains(&hash_ids(w)) {
                covered[i..i + n].iter_mut().for_each(|c| *c = true);
            }
        }
        covered.iter().filter(|c| **c).count() as f64 / ids.len() as f64
    }
}

fn bag_f1_upper(known: usize, m: usize) -> f64 {
    // Best case: every known token matched, the window as long as the quote.
    known as f64 / m as f64
}

fn sorted_f1(a: &[u32], b: &[u32]) -> f64 {
    f1_of(sorted_common(a, b), a.len(), b.len())
}

fn hash_ids(w: &[u32]) -> u64 {
    // FNV-1a over the ids: no randomness (plugins have none), good enough for a set of windows.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &id in w {
        for b in id.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Numbered passages of a context: `[n] text` at the start of a line (to the next such line),
/// or `<passage id="n">text</passage>`. Returns the id and the byte range of the text.
pub(crate) fn find_passages(text: &str) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    // <passage id="n"> elements.
    let mut pos = 0;
    while let Some(i) = memchr::memmem::find(&text.as_bytes()[pos..], b"<passage") {
        let open = pos + i;
        let Some(gt) = text[open..].find('>').map(|g| open + g) else { break };
        let attrs = &text[open + "<passage".len()..gt];
        let body = gt + 1;
        let Some(close) = memchr::memmem::find(&text.as_bytes()[body..], b"</passage>").map(|c| body + c) else {
            break;
        };
        if let Some(id) = attr_id(attrs) {
            out.push((id, body, close));
        }
        pos = close + "</passage>".len();
    }
    if !out.is_empty() {
        return out;
    }
    // `[n]` line markers.
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix('[')
            && let Some(close) = rest.find(']')
            && close > 0
            && rest[..close].bytes().all(|b| b.is_ascii_digit())
        {
            let id = rest[..close].to_owned();
            let body = line_start + lead + 1 + close + 1;
            if let Some(last) = out.last_mut() {
                last.2 = line_start;
            }
            out.push((id, body, text.len()));
        }
        line_start += line.len();
    }
    out
}

fn attr_id(attrs: &str) -> Option<String> {
    let i = attrs.find("id=")?;
    let rest = &attrs[i + 3..];
    let quote = rest.chars().next()?;
    if quote == '"' || quote == '\'' {
        let inner = &rest[1..];
        let end = inner.find(quote)?;
        Some(inner[..end].trim().to_owned())
    } else {
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

/// The last prepared context, keyed by its full text: the members of a GRPO group share a prompt.
#[derive(Default)]
pub(crate) struct ContextCache(RefCell<Option<(String, Rc<Context>)>>);

impl std::fmt::Debug for ContextCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextCache")
    }
}

impl ContextCache {
    pub(crate) fn get(&self, text: &str) -> Rc<Context> {
        if let Some((key, ctx)) = &*self.0.borrow()
            && same_text(key, text)
        {
            return Rc::clone(ctx);
        }
        let ctx = Rc::new(Context::new(text));
        *self.0.borrow_mut() = Some((text.to_owned(), Rc::clone(&ctx)));
        ctx
    }
}

/// `a == b`, eight bytes at a time: on wasm32 `memcmp` goes byte by byte, and the cache compares
/// a whole context per rollout.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().expect("chunks of 8"));
    if (&mut x).zip(&mut y).any(|(p, q)| word(p) != word(q)) {
        return false;
    }
    x.remainder() == y.remainder()
}
