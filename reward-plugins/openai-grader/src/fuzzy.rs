//! `fuzzy_match`: rapidfuzz's `fuzz.WRatio(input, reference, processor=utils.default_process) / 100`,
//! the call the OpenAI graders guide's rapidfuzz example makes, reimplemented on Unicode scalar
//! values (rapidfuzz compares code points).
//!
//! Where this differs from rapidfuzz 3.14.6: `partial_ratio` with a shorter string of more than 64
//! characters. rapidfuzz's C++ core then aligns only around its matching blocks; here (as in
//! rapidfuzz's own pure-Python fallback) every window is scored, which can only find a better or equal
//! alignment. The oracle comparison measures the effect (README).

use crate::alnum;

/// `fuzz.WRatio` with `utils.default_process`, scaled to [0, 1].
pub fn wratio(input: &str, reference: &str) -> f64 {
    let a = default_process(input);
    let b = default_process(reference);
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    const UNBASE_SCALE: f64 = 0.95;
    let (len1, len2) = (a.len() as f64, b.len() as f64);
    let len_ratio = if len1 > len2 { len1 / len2 } else { len2 / len1 };
    let end = ratio(&a, &b);
    if len_ratio < 1.5 {
        return end.max(token_ratio(&a, &b) * UNBASE_SCALE) / 100.0;
    }
    let partial_scale = if len_ratio <= 8.0 { 0.9 } else { 0.6 };
    let end = end.max(partial_ratio(&a, &b) * partial_scale);
    end.max(partial_token_ratio(&a, &b) * UNBASE_SCALE * partial_scale) / 100.0
}

/// `utils.default_process`: every character that is not alphanumeric (rapidfuzz's table, see
/// `alnum.rs`) becomes a space, the rest is lowercased (simple case mapping), then the ends are
/// trimmed.
pub fn default_process(s: &str) -> Vec<char> {
    let mut out: Vec<char> = s
        .chars()
        .map(|c| {
            if !alnum::is_alnum(c) {
                ' '
            } else if c == '\u{130}' {
                'i'
            } else {
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ => c,
                }
            }
        })
        .collect();
    while out.last() == Some(&' ') {
        out.pop();
    }
    let lead = out.iter().take_while(|&&c| c == ' ').count();
    out.drain(..lead);
    out
}

/// Length of the longest common subsequence.
fn lcs(a: &[char], b: &[char]) -> usize {
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    if b.is_empty() {
        return 0;
    }
    let mut row = vec![0usize; b.len() + 1];
    for &ca in a {
        let mut diag = 0;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if ca == cb { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

/// Normalised Indel similarity in [0, 1] (1 when both are empty).
fn indel_similarity(a: &[char], b: &[char]) -> f64 {
    let lensum = a.len() + b.len();
    if lensum == 0 {
        return 1.0;
    }
    let dist = lensum - 2 * lcs(a, b);
    1.0 - dist as f64 / lensum as f64
}

/// `fuzz.ratio`, in [0, 100].
pub fn ratio(a: &[char], b: &[char]) -> f64 {
    indel_similarity(a, b) * 100.0
}

/// `100 - 100 * dist / lensum`, 100 when `lensum` is 0 (rapidfuzz's `_norm_distance`).
fn norm_distance(dist: usize, lensum: usize) -> f64 {
    if lensum == 0 { 100.0 } else { 100.0 - 100.0 * dist as f64 / lensum as f64 }
}

fn split(s: &[char]) -> Vec<&[char]> {
    s.split(|&c| c == ' ').filter(|t| !t.is_empty()).collect()
}

fn join(tokens: &[&[char]]) -> Vec<char> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.extend_from_slice(t);
    }
    out
}

fn sorted_set<'a>(tokens: &[&'a [char]]) -> Vec<&'a [char]> {
    let mut v = tokens.to_vec();
    v.sort();
    v.dedup();
    v
}

fn token_sort_ratio(a: &[char], b: &[char]) -> f64 {
    let mut ta = split(a);
    let mut tb = split(b);
    ta.sort();
    tb.sort();
    ratio(&join(&ta), &join(&tb))
}

fn token_set_ratio(a: &[char], b: &[char]) -> f64 {
    let sa = sorted_set(&split(a));
    let sb = sorted_set(&split(b));
    if sa.is_empty() || sb.is_empty() {
        return 0.0;
    }
    let intersect: Vec<&[char]> = sa.iter().filter(|t| sb.contains(t)).copied().collect();
    let diff_ab: Vec<&[char]> = sa.iter().filter(|t| !sb.contains(t)).copied().collect();
    let diff_ba: Vec<&[char]> = sb.iter().filter(|t| !sa.contains(t)).copied().collect();
    if !intersect.is_empty() && (diff_ab.is_empty() || diff_ba.is_empty()) {
        return 100.0;
    }
    let ab = join(&diff_ab);
    let ba = join(&diff_ba);
    let sect_len = join(&intersect).len();
    let sep = usize::from(sect_len != 0);
    let sect_ab_len = sect_len + sep + ab.len();
    let sect_ba_len = sect_len + sep + ba.len();
    let dist = ab.len() + ba.len() - 2 * lcs(&ab, &ba);
    let result = norm_distance(dist, sect_ab_len + sect_ba_len);
    if sect_len == 0 {
        return result;
    }
    let sect_ab_ratio = norm_distance(sep + ab.len(), sect_len + sect_ab_len);
    let sect_ba_ratio = norm_distance(sep + ba.len(), sect_len + sect_ba_len);
    result.max(sect_ab_ratio).max(sect_ba_ratio)
}

fn token_ratio(a: &[char], b: &[char]) -> f64 {
    token_set_ratio(a, b).max(token_sort_ratio(a, b))
}

/// The best `ratio` of `short` against the windows of `long` (`len(short) <= len(long)`), as
/// rapidfuzz's `_partial_ratio_impl` walks them; in [0, 1].
fn partial_impl(short: &[char], long: &[char]) -> f64 {
    let (len1, len2) = (short.len(), long.len());
    let in_short = |c: &char| short.contains(c);
    let mut best = 0.0f64;
    let mut consider = |window: &[char]| -> bool {
        let sim = indel_similarity(short, window);
        if sim > best {
            best = sim;
        }
        best == 1.0
    };
    for i in 1..len1 {
        if in_short(&long[i - 1]) && consider(&long[..i]) {
            return 1.0;
        }
    }
    for i in 0..len2 - len1 {
        if in_short(&long[i + len1 - 1]) && consider(&long[i..i + len1]) {
            return 1.0;
        }
    }
    for i in len2 - len1..len2 {
        if in_short(&long[i]) && consider(&long[i..]) {
            return 1.0;
        }
    }
    best
}

/// `fuzz.partial_ratio`, in [0, 100].
fn partial_ratio(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 100.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut best = partial_impl(short, long);
    if best != 1.0 && a.len() == b.len() {
        best = best.max(partial_impl(long, short));
    }
    best * 100.0
}

fn partial_token_ratio(a: &[char], b: &[char]) -> f64 {
    let ta = split(a);
    let tb = split(b);
    let sa = sorted_set(&ta);
    let sb = sorted_set(&tb);
    if sa.iter().any(|t| sb.contains(t)) {
        return 100.0;
    }
    let mut sorted_a = ta.clone();
    let mut sorted_b = tb.clone();
    sorted_a.sort();
    sorted_b.sort();
    let result = partial_ratio(&join(&sorted_a), &join(&sorted_b));
    // With no common token the differences are the sets themselves.
    if ta.len() == sa.len() && tb.len() == sb.len() {
        return result;
    }
    result.max(partial_ratio(&join(&sa), &join(&sb)))
}
