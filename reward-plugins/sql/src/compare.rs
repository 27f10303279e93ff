//! Result comparison: `testsuite` (Spider's test-suite accuracy), `bird` (BIRD's execution
//! accuracy) and `strict`.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::exec::{Rows, Val};

/// How two results are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Multiset of rows, column order free; row order only when the gold orders at its top level.
    #[default]
    Testsuite,
    /// Set of rows (duplicates ignored), column order matters; row order never does.
    Bird,
    /// Same columns in the same order, same rows in the same order.
    Strict,
}

/// A value as compared: integers and reals are one kind (1 equals 1.0), NULL equals NULL.
/// SQLite has no NaN (it becomes NULL) and -0.0 is stored as 0.0, so the order is total.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    Null,
    Num(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Eq for Key {}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |k: &Key| match k {
            Key::Null => 0,
            Key::Num(_) => 1,
            Key::Text(_) => 2,
            Key::Blob(_) => 3,
        };
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            (Key::Blob(a), Key::Blob(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn key(v: &Val, decimals: Option<u32>) -> Key {
    let num = |x: f64| {
        let x = match decimals {
            Some(d) => {
                let p = 10f64.powi(d as i32);
                (x * p).round() / p
            }
            None => x,
        };
        // -0.0 and 0.0 are the same number.
        Key::Num(if x == 0.0 { 0.0 } else { x })
    };
    match v {
        Val::Null => Key::Null,
        Val::Int(i) => num(*i as f64),
        Val::Real(r) => num(*r),
        Val::Text(t) => Key::Text(t.clone()),
        Val::Blob(b) => Key::Blob(b.clone()),
    }
}

/// Most column permutations tried by `testsuite` before giving up (no match).
const MAX_PERMUTATIONS: usize = 5_000;

/// Whether `pred` answers like `gold`. `ordered`: the gold orders at its top level.
pub fn matches(gold: &Rows, pred: &Rows, mode: Mode, ordered: bool, decimals: Option<u32>) -> bool {
    let g: Vec<Vec<Key>> = gold.rows.iter().map(|r| r.iter().map(|v| key(v, decimals)).collect()).collect();
    let p: Vec<Vec<Key>> = pred.rows.iter().map(|r| r.iter().map(|v| key(v, decimals)).collect()).collect();
    match mode {
        Mode::Strict => gold.columns == pred.columns && g == p,
        Mode::Bird => {
            let mut a = g;
            let mut b = p;
            for v in [&mut a, &mut b] {
                v.sort();
                v.dedup();
            }
            a == b
        }
        Mode::Testsuite => {
            if gold.columns != pred.columns || g.len() != p.len() {
                return false;
            }
            testsuite(&g, &p, gold.columns, ordered)
        }
    }
}

/// Spider's test-suite rule: some permutation of the predicted columns gives the gold's rows
/// (as a multiset, or as a sequence when ordered). Columns are only paired when their multisets
/// of values agree, which keeps the search small.
fn testsuite(g: &[Vec<Key>], p: &[Vec<Key>], width: usize, ordered: bool) -> bool {
    let column = |rows: &[Vec<Key>], c: usize| {
        let mut col: Vec<Key> = rows.iter().map(|r| r[c].clone()).collect();
        col.sort();
        col
    };
    let gold_cols: Vec<Vec<Key>> = (0..width).map(|c| column(g, c)).collect();
    let pred_cols: Vec<Vec<Key>> = (0..width).map(|c| column(p, c)).collect();
    let candidates: Vec<Vec<usize>> = gold_cols.iter().map(|gc| (0..width).filter(|&j| &pred_cols[j] == gc).collect()).collect();
    if candidates.iter().any(Vec::is_empty) {
        return false;
    }
    let mut gold_sorted: Vec<&Vec<Key>> = g.iter().collect();
    if !ordered {
        gold_sorted.sort();
    }
    let mut perm = vec![usize::MAX; width];
    let mut used = vec![false; width];
    let mut tries = 0;
    search(0, &candidates, &mut perm, &mut used, &mut tries, &mut |perm| {
        let mut rows: Vec<Vec<Key>> = p.iter().map(|r| perm.iter().map(|&j| r[j].clone()).collect()).collect();
        if !ordered {
            rows.sort();
        }
        rows.iter().zip(&gold_sorted).all(|(a, b)| a == *b)
    })
}

fn search(
    i: usize,
    candidates: &[Vec<usize>],
    perm: &mut Vec<usize>,
    used: &mut Vec<bool>,
    tries: &mut usize,
    check: &mut impl FnMut(&[usize]) -> bool,
) -> bool {
    if i == candidates.len() {
        *tries += 1;
        return check(perm);
    }
    for &j in &candidates[i] {
        if used[j] || *tries >= MAX_PERMUTATIONS {
            continue;
        }
        used[j] = true;
        perm[i] = j;
        if search(i + 1, candidates, perm, used, tries, check) {
            return true;
        }
        used[j] = false;
    }
    false
}

/// A short description of a result, for reasons: `3 rows x 2 columns`.
pub fn describe(r: &Rows) -> String {
    format!(
        "{} row{} x {} column{}",
        r.rows.len(),
        if r.rows.len() == 1 { "" } else { "s" },
        r.columns,
        if r.columns == 1 { "" } else { "s" }
    )
}
