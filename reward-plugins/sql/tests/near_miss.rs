//! Near-miss mutations of schema-only golds (sql-create-context style: every column VARCHAR,
//! queries comparing them with numbers and strings). 240 golds are generated from a fixed seed
//! over varied schemas (WHERE with =, <, >, AND/OR, COUNT/SUM/AVG/MIN/MAX, GROUP BY,
//! ORDER BY ... LIMIT, two-table JOINs, DISTINCT); each is mutated (MIN/MAX, COUNT/SUM, `>`/`>=`,
//! `<`/`<=`, AND/OR, ASC/DESC, a compared literal off by one) and every mutation must be judged
//! different from the gold on the synthesised databases. Mutations that are equivalent to the gold
//! on every possible database are excluded by the rules in [`equivalent_by_rule`], counted and
//! printed. Equivalent rewrites of each gold must still score 1.0.
//!
//! Run with `-- --nocapture` to see the figures.

mod common;

use common::{fenced, rollout, scored};
use serde_json::json;

/// splitmix64, the test's own seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const COLUMNS: &[&str] = &[
    "year",
    "points",
    "team",
    "chassis",
    "engine",
    "rank",
    "player",
    "position",
    "school",
    "round",
    "pick",
    "country",
    "score",
    "attendance",
    "date",
    "opponent",
    "result",
    "week",
    "venue",
    "crowd",
    "laps",
    "grid",
    "driver",
    "gold",
    "silver",
    "bronze",
    "total",
    "nation",
    "election",
    "votes",
    "party",
    "district",
    "wins",
    "losses",
    "goals",
    "height",
];
const WORDS: &[&str] = &["ferrari", "lotus", "Brazil", "canada", "John Smith", "W", "L", "guard", "home", "away", "Ohio", "march"];

/// One generated gold: its schema (the `context`) and its SQL.
struct Gold {
    context: String,
    sql: String,
}

/// A comparison with a literal: `col op lit`, the literal a number (unquoted) or a string.
fn comparison(rng: &mut Rng, col: &str, numeric_only: bool) -> String {
    let numeric = numeric_only || rng.below(3) > 0;
    if numeric {
        let op = *rng.pick(&["=", ">", "<", ">", "<"]);
        let lit = match rng.below(3) {
            0 => 1980 + rng.below(40),
            1 => 1 + rng.below(20),
            _ => 10 + rng.below(90),
        };
        format!("{col} {op} {lit}")
    } else {
        let w = rng.pick(WORDS);
        if rng.below(2) == 0 { format!("{col} = \"{w}\"") } else { format!("{col} = '{w}'") }
    }
}

fn table(rng: &mut Rng, n: usize, width: usize) -> (String, Vec<&'static str>) {
    let mut cols: Vec<&'static str> = Vec::new();
    while cols.len() < width {
        let c = *rng.pick(COLUMNS);
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    (format!("table_name_{n}"), cols)
}

fn ddl(name: &str, cols: &[&str]) -> String {
    format!("CREATE TABLE {name} ({})", cols.iter().map(|c| format!("{c} VARCHAR")).collect::<Vec<_>>().join(", "))
}

/// The WHERE of a single-table gold over `cols` (never the selected column `sel` only).
fn filter(rng: &mut Rng, cols: &[&str], sel: &str) -> String {
    let others: Vec<&str> = cols.iter().copied().filter(|c| *c != sel).collect();
    let a = others[rng.below(others.len())];
    match rng.below(4) {
        0 => format!("WHERE {}", comparison(rng, a, false)),
        1 | 2 => {
            let b = others[(others.iter().position(|c| *c == a).unwrap() + 1 + rng.below(others.len() - 1)) % others.len()];
            format!("WHERE {} AND {}", comparison(rng, a, false), comparison(rng, b, true))
        }
        _ => {
            let b = others[(others.iter().position(|c| *c == a).unwrap() + 1 + rng.below(others.len() - 1)) % others.len()];
            let num = rng.below(2) == 0;
            let first = comparison(rng, a, false);
            format!("WHERE {first} OR {}", comparison(rng, b, num))
        }
    }
}

fn golds() -> Vec<Gold> {
    let mut rng = Rng(17);
    let mut out = Vec::new();
    for n in 0..240 {
        let width = 3 + rng.below(4);
        let (t, cols) = table(&mut rng, n, width);
        let sel = cols[rng.below(cols.len())];
        let kind = n % 12;
        let sql = match kind {
            0 | 1 => format!("SELECT {sel} FROM {t} {}", filter(&mut rng, &cols, sel)),
            2 => format!("SELECT COUNT({sel}) FROM {t} {}", filter(&mut rng, &cols, sel)),
            3 => {
                let agg = rng.pick(&["MIN", "MAX", "AVG"]);
                format!("SELECT {agg}({sel}) FROM {t} {}", filter(&mut rng, &cols, sel))
            }
            4 => {
                let agg = rng.pick(&["SUM", "AVG", "MIN", "MAX"]);
                format!("SELECT {agg}({sel}) FROM {t} {}", filter(&mut rng, &cols, sel))
            }
            5 => {
                let g = cols.iter().copied().find(|c| *c != sel).unwrap();
                let aggs = ["COUNT(*)".to_owned(), format!("MAX({sel})"), format!("SUM({sel})"), format!("MIN({sel})")];
                let agg = aggs[rng.below(4)].clone();
                if rng.below(2) == 0 {
                    format!("SELECT {g}, {agg} FROM {t} GROUP BY {g}")
                } else {
                    format!("SELECT {g}, {agg} FROM {t} {} GROUP BY {g}", filter(&mut rng, &cols, g))
                }
            }
            6 => {
                let o = cols.iter().copied().rev().find(|c| *c != sel).unwrap();
                let dir = rng.pick(&["ASC", "DESC"]);
                let limit = [1, 1, 3][rng.below(3)];
                if rng.below(2) == 0 {
                    format!("SELECT {sel} FROM {t} ORDER BY {o} {dir} LIMIT {limit}")
                } else {
                    format!("SELECT {sel} FROM {t} {} ORDER BY {o} {dir} LIMIT {limit}", filter(&mut rng, &cols, sel))
                }
            }
            7 => format!("SELECT DISTINCT {sel} FROM {t} {}", filter(&mut rng, &cols, sel)),
            8 => {
                let o = cols.iter().copied().find(|c| *c != sel).unwrap();
                format!("SELECT {sel} FROM {t} {} ORDER BY {o} DESC", filter(&mut rng, &cols, sel))
            }
            9 => {
                let g = cols.iter().copied().find(|c| *c != sel).unwrap();
                format!("SELECT {g} FROM {t} GROUP BY {g} ORDER BY COUNT(*) DESC LIMIT 1")
            }
            _ => {
                // Two tables joined on a shared key column.
                let width2 = 2 + rng.below(3);
                let (t2, mut cols2) = table(&mut rng, 1000 + n, width2);
                let key = *rng.pick(&["id", "team_id", "name", "code"]);
                cols2.retain(|c| !cols.contains(c));
                if cols2.is_empty() {
                    cols2.push("extra");
                }
                let mut c1 = cols.clone();
                c1.push(key);
                let mut c2 = cols2.clone();
                c2.insert(0, key);
                let context = format!("{}; {}", ddl(&t, &c1), ddl(&t2, &c2));
                let a = cols2[rng.below(cols2.len())];
                let b = cols.iter().copied().find(|c| *c != sel).unwrap();
                let head = match rng.below(4) {
                    0 => format!("SELECT T1.{sel}"),
                    1 => "SELECT COUNT(*)".to_string(),
                    2 => format!("SELECT {}(T1.{sel})", rng.pick(&["MIN", "MAX", "SUM"])),
                    _ => format!("SELECT DISTINCT T2.{a}"),
                };
                let w = if rng.below(2) == 0 {
                    format!("WHERE T2.{}", comparison(&mut rng, a, false))
                } else {
                    format!("WHERE T2.{} AND T1.{}", comparison(&mut rng, a, false), comparison(&mut rng, b, true))
                };
                out.push(Gold { context, sql: format!("{head} FROM {t} AS T1 JOIN {t2} AS T2 ON T1.{key} = T2.{key} {w}") });
                continue;
            }
        };
        out.push(Gold { context: ddl(&t, &cols), sql });
    }
    out
}

/// A near-miss mutation of a gold: the kind and the mutated SQL.
struct Mutant {
    kind: &'static str,
    sql: String,
}

fn is_number(tok: &str) -> bool {
    !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit())
}

/// Every single-token mutation of `sql` (tokens are separated by spaces in the generated golds).
fn mutants(sql: &str) -> Vec<Mutant> {
    let toks: Vec<&str> = sql.split(' ').collect();
    let mut out = Vec::new();
    let mut with = |i: usize, kind: &'static str, tok: String| {
        let mut t: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
        t[i] = tok;
        out.push(Mutant { kind, sql: t.join(" ") });
    };
    for (i, tok) in toks.iter().enumerate() {
        let swap = |a: &str, b: &str| tok.strip_prefix(a).map(|rest| format!("{b}{rest}"));
        let prev = if i > 0 { toks[i - 1] } else { "" };
        if let Some(t) = swap("MIN(", "MAX(").or_else(|| swap("MAX(", "MIN(")) {
            with(i, "MIN/MAX", t.clone());
        }
        if !tok.starts_with("COUNT(*)")
            && let Some(t) = swap("COUNT(", "SUM(").or_else(|| swap("SUM(", "COUNT("))
        {
            with(i, "COUNT/SUM", t);
        }
        match *tok {
            ">" => with(i, ">/>=", ">=".into()),
            "<" => with(i, "</<=", "<=".into()),
            "AND" => with(i, "AND/OR", "OR".into()),
            "OR" => with(i, "AND/OR", "AND".into()),
            "ASC" => with(i, "ASC/DESC", "DESC".into()),
            "DESC" => with(i, "ASC/DESC", "ASC".into()),
            _ => {}
        }
        if is_number(tok) && ["=", "<", ">"].contains(&prev) {
            let n: i64 = tok.parse().unwrap();
            with(i, "literal off by one", (n + 1).to_string());
            with(i, "literal off by one", (n - 1).to_string());
        }
    }
    out
}

/// Mutations equivalent to the gold on every database, by rule; `Some(rule)` excludes one.
///
/// - Both sides of the swapped AND/OR are the same comparison: `p AND p` is `p OR p`.
/// - MIN/MAX of a column that an `=` conjunct (no OR in the WHERE) fixes to one value: every
///   row that passes has the same value, so the minimum is the maximum.
/// - ASC/DESC of ORDER BY on a column fixed the same way: all sort keys are equal.
fn equivalent_by_rule(gold: &str, m: &Mutant) -> Option<&'static str> {
    let where_part = gold.split(" WHERE ").nth(1).unwrap_or("");
    let conjunctive = !where_part.contains(" OR ");
    let fixed = |col: &str| {
        conjunctive
            && where_part.split(" AND ").any(|c| {
                let mut p = c.split(' ');
                let lhs = p.next().unwrap_or("");
                let lhs = lhs.rsplit('.').next().unwrap();
                lhs == col && p.next() == Some("=")
            })
    };
    match m.kind {
        "MIN/MAX" => {
            let agg = gold.split(' ').find(|t| t.starts_with("MIN(") || t.starts_with("MAX("))?;
            let col = agg[4..].trim_end_matches([')', ',']);
            let col = col.rsplit('.').next().unwrap();
            fixed(col).then_some("MIN/MAX of a column fixed by an = conjunct")
        }
        "ASC/DESC" => {
            let after = gold.split(" ORDER BY ").nth(1)?;
            let col = after.split(' ').next()?;
            fixed(col).then_some("ASC/DESC on a column fixed by an = conjunct")
        }
        _ => None,
    }
}

/// Equivalent rewrites of a gold: each must still match.
fn rewrites(sql: &str) -> Vec<String> {
    // Keywords and identifiers in lower case (string literals kept), strings single-quoted.
    let lower: Vec<String> = sql.split(' ').map(|t| if t.contains(['"', '\'']) { t.replace('"', "'") } else { t.to_lowercase() }).collect();
    let mut out = vec![sql.to_owned(), lower.join(" ")];
    // `col op lit` written `lit op' col`.
    let toks: Vec<&str> = sql.split(' ').collect();
    let flip = |op: &str| match op {
        ">" => Some("<"),
        "<" => Some(">"),
        "=" => Some("="),
        _ => None,
    };
    let mut t: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
    let mut flipped = false;
    let mut i = 1;
    while i + 1 < toks.len() {
        let whole = |t: &str| {
            is_number(t) || (t.len() >= 2 && (t.starts_with('\'') && t.ends_with('\'') || t.starts_with('"') && t.ends_with('"')))
        };
        if let Some(f) = flip(toks[i])
            && !toks[i - 1].ends_with(')')
            && whole(toks[i + 1])
        {
            t[i - 1] = toks[i + 1].to_owned();
            t[i] = f.to_owned();
            t[i + 1] = toks[i - 1].to_owned();
            flipped = true;
            i += 3;
        } else {
            i += 1;
        }
    }
    if flipped {
        out.push(t.join(" "));
    }
    // `a AND b` as `b AND a` (a WHERE of two conjuncts, nothing after them but GROUP/ORDER).
    if let Some((head, w)) = sql.split_once(" WHERE ") {
        let (conds, tail) = match w.find(" GROUP BY ").or_else(|| w.find(" ORDER BY ")) {
            Some(k) => (&w[..k], &w[k..]),
            None => (w, ""),
        };
        for sep in [" AND ", " OR "] {
            if let Some((a, b)) = conds.split_once(sep)
                && !b.contains(" AND ")
                && !b.contains(" OR ")
            {
                out.push(format!("{head} WHERE {b}{sep}{a}{tail}"));
            }
        }
    }
    // COUNT(*) as COUNT(1).
    if sql.contains("COUNT(*)") {
        out.push(sql.replace("COUNT(*)", "COUNT(1)"));
    }
    out
}

fn score(g: &Gold, pred: &str, config: &str) -> reward_sdk::Score {
    scored(config, rollout("Write a SQLite query.", &fenced(pred), &json!({"answer": g.sql, "context": g.context})))
}

#[derive(Default)]
struct Tally {
    mutants: usize,
    excluded: Vec<String>,
    false_equivalences: Vec<String>,
    rewrites: usize,
    false_refusals: Vec<String>,
}

fn run(config: &str) -> Tally {
    let mut t = Tally::default();
    // With NEAR_MISS_JSONL=FILE, every scored pair is also written as a Nova record, for
    // measuring fuel through the sandboxed plugin (`reward-server score`, see BENCHMARKS.md).
    let mut jsonl = std::env::var_os("NEAR_MISS_JSONL").map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()));
    let mut record = |id: usize, g: &Gold, pred: &str| {
        if let Some(w) = jsonl.as_mut() {
            use std::io::Write;
            let r = json!({"id": format!("p{id}"), "messages": [
                {"role": "user", "content": "Write a SQLite query."},
                {"role": "assistant", "content": fenced(pred)}],
                "reference_answer": {"answer": g.sql, "context": g.context}});
            writeln!(w, "{r}").unwrap();
        }
    };
    for g in golds() {
        for m in mutants(&g.sql) {
            if let Some(rule) = equivalent_by_rule(&g.sql, &m) {
                t.excluded.push(format!("{rule}: {} vs {}", g.sql, m.sql));
                continue;
            }
            record(t.mutants + t.rewrites, &g, &m.sql);
            t.mutants += 1;
            let s = score(&g, &m.sql, config);
            assert_eq!(s.get("executes"), Some(1.0), "mutant must execute: {} ({:?})", m.sql, s.reason);
            if s.get("result_match") == Some(1.0) {
                t.false_equivalences.push(format!("[{}] {} | {} | {}", m.kind, g.context, g.sql, m.sql));
            }
        }
        for r in rewrites(&g.sql) {
            record(t.mutants + t.rewrites, &g, &r);
            t.rewrites += 1;
            let s = score(&g, &r, config);
            if s.value != 1.0 {
                t.false_refusals.push(format!("{} | {} | {} | {:?}", g.context, g.sql, r, s.reason));
            }
        }
    }
    t
}

#[test]
fn generated_set_is_large_and_varied() {
    let gs = golds();
    assert!(gs.len() >= 200);
    for needle in [
        " = ", " > ", " < ", " AND ", " OR ", "COUNT(", "SUM(", "AVG(", "MIN(", "MAX(", "GROUP BY", "ORDER BY", "LIMIT", " JOIN ",
        "DISTINCT",
    ] {
        let n = gs.iter().filter(|g| g.sql.contains(needle)).count();
        assert!(n >= 10, "only {n} golds use {needle:?}");
    }
    // Schema-only data: every column is VARCHAR.
    assert!(gs.iter().all(|g| {
        g.context.split(['(', ',', ')']).filter(|c| c.contains(' ') && !c.contains("CREATE")).all(|c| c.trim().ends_with("VARCHAR"))
    }));
}

#[test]
fn near_miss_mutations_of_schema_only_golds_are_never_equivalent() {
    let start = std::time::Instant::now();
    let t = run("{}");
    let elapsed = start.elapsed();
    let pairs = t.mutants + t.rewrites;
    println!(
        "{} golds: {} near-miss mutations scored, {} false equivalences ({:.1}%); {} excluded as equivalent by rule; \
         {} equivalent rewrites, {} false refusals; {:.0} us per pair (native, synthesis included)",
        golds().len(),
        t.mutants,
        t.false_equivalences.len(),
        100.0 * t.false_equivalences.len() as f64 / t.mutants as f64,
        t.excluded.len(),
        t.rewrites,
        t.false_refusals.len(),
        elapsed.as_micros() as f64 / pairs as f64,
    );
    for e in &t.excluded {
        println!("excluded: {e}");
    }
    for f in &t.false_equivalences {
        println!("false equivalence: {f}");
    }
    for f in &t.false_refusals {
        println!("false refusal: {f}");
    }
    assert!(t.mutants >= 600, "{} mutations", t.mutants);
    assert!(t.false_refusals.is_empty(), "{} equivalent rewrites refused", t.false_refusals.len());
    assert!(t.false_equivalences.is_empty(), "{} of {} near misses judged equivalent", t.false_equivalences.len(), t.mutants);
}
