//! Deciding whether a predicted answer is equivalent to the gold one, and by which rule.
//!
//! Structures compare by shape first (a set is not a tuple, `[1, 2)` is not `(1, 2)`), then item
//! by item: tuples, intervals and matrices in order, sets and solution lists in any order (each
//! item of either side must match one of the other). An assignment `x = v` compares by its value
//! against anything but another assignment. Values compare:
//!
//! - **exact**: both sides evaluate exactly (rationals, surds): equal or not, no tolerance;
//! - **decimal**: one side is a decimal literal (`0.333`), the other a value it does not equal
//!   exactly (`1/3`): equal only when the decimal is that value rounded or truncated to the
//!   decimal's own places and within the relative tolerance ([`Tolerance`]);
//! - **numeric**: a side is approximate (π, logarithms, trigonometry): equal within the error
//!   bounds the approximations carry;
//! - **identity**: with variables, both sides are evaluated at [`POINTS`] fixed test points
//!   (rationals from a fixed seed, so every run agrees) and must agree at each; equations must be
//!   proportional (`x + y = 1` is `2x + 2y = 2`), inequalities positively so.

use reward_sdk::extract::normalize_text;

use crate::eval::{Env, EvalError, eval};
use crate::limits::{Budget, Refusal};
use crate::num::{Q, Val};
use crate::parse::{Answer, Delim, Id, Interval, Node, Parsed, Scalar};

/// Test points per identity test.
pub const POINTS: usize = 6;

/// Test points where both sides must be defined for an identity test to decide.
pub const MIN_DEFINED_POINTS: usize = 3;

/// Which rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The two answers are the same text once normalised.
    SameText,
    /// Exact arithmetic.
    Exact,
    /// A decimal against an exact value, within tolerance.
    Decimal,
    /// Approximate arithmetic within error bounds.
    Numeric,
    /// The seeded identity test (expressions in variables, equations, inequalities).
    Identity,
    /// Text answers, normalised.
    Text,
    /// The answers have different shapes (a set against a tuple, an open end against a closed one).
    Structure,
    /// The values carry different units.
    Unit,
}

impl Rule {
    /// The `rule` metric.
    pub fn code(self) -> f64 {
        match self {
            Rule::SameText => 1.0,
            Rule::Exact => 2.0,
            Rule::Decimal => 3.0,
            Rule::Numeric => 4.0,
            Rule::Identity => 5.0,
            Rule::Text => 6.0,
            Rule::Structure => 7.0,
            Rule::Unit => 8.0,
        }
    }

    /// The name used in reasons.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SameText => "same_text",
            Rule::Exact => "exact",
            Rule::Decimal => "decimal",
            Rule::Numeric => "numeric",
            Rule::Identity => "identity",
            Rule::Text => "text",
            Rule::Structure => "structure",
            Rule::Unit => "unit",
        }
    }

    /// How much a rule leans on approximation: the verdict of a structure is its weakest item's.
    fn rank(self) -> u8 {
        match self {
            Rule::SameText => 0,
            Rule::Exact | Rule::Structure | Rule::Unit => 1,
            Rule::Text => 2,
            Rule::Numeric => 3,
            Rule::Decimal => 4,
            Rule::Identity => 5,
        }
    }
}

/// The decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Equal(Rule),
    /// Not equivalent: the rule that found the difference and what it is.
    Differ(Rule, String),
}

/// Why no decision was reached.
#[derive(Clone, Debug, PartialEq)]
pub enum CompareError {
    /// The gold has no value (`1/0`) or is too large: the reference is unusable.
    Gold(String),
    /// A cap was hit while working on the prediction (or the budget ran out).
    Refused(Refusal),
    /// Both are well formed but the checker cannot tell (too few points where both are defined).
    Undecided(String),
}

type R<T> = Result<T, CompareError>;

/// How a decimal compares with an exact value; see the crate's README.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance of a decimal against a value it does not equal exactly. 0 requires
    /// exactness.
    pub rel_tol: f64,
    /// Whether the decimal must also be the value rounded or truncated to its own places.
    pub rounding: bool,
}

/// One side of a comparison.
pub struct Side<'a> {
    /// The parsed answer.
    pub parsed: &'a Parsed,
    /// The answer text, normalised as text (for text answers).
    pub text: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Gold,
    Pred,
}

/// A function to evaluate at the test points: an expression, or `var - expr` (an assignment seen
/// as an equation).
#[derive(Clone, Copy)]
enum Fx<'a> {
    Expr(Which, Id, u8),
    VarMinus(Which, &'a str, Id, u8),
}

/// The value of variable `name` at test point `k`: a rational `±(n + a/b)` with `b` a prime from
/// 7 to 31, `n` from 0 to 2, drawn from SplitMix64 seeded by the name and the point, so the same
/// name gets the same values on both sides and in every run. Signs alternate with the point, so
/// `|x|` and `x` differ.
pub fn point(name: &str, k: usize) -> Q {
    const PRIMES: [i64; 8] = [7, 11, 13, 17, 19, 23, 29, 31];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut state = h ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let b = PRIMES[(next() % 8) as usize];
    let a = 1 + (next() % (b as u64 - 1)) as i64;
    let n = (next() % 3) as i64;
    let sign = if (k + (h as usize & 1)).is_multiple_of(2) { 1 } else { -1 };
    Q::from_i128((sign * (n * b + a)) as i128, b as i128)
}

/// Compares gold and prediction.
pub struct Checker<'a> {
    gold: Side<'a>,
    pred: Side<'a>,
    tol: Tolerance,
    budget: Budget,
    /// The values of each side's variables at each test point (empty without variables).
    gold_points: Vec<Vec<Val>>,
    pred_points: Vec<Vec<Val>>,
}

fn points_for(parsed: &Parsed) -> Vec<Vec<Val>> {
    if parsed.ast.vars.is_empty() {
        return Vec::new();
    }
    (0..POINTS).map(|k| parsed.ast.vars.iter().map(|name| Val::Q(point(name, k))).collect()).collect()
}

fn weakest(a: Rule, b: Rule) -> Rule {
    if b.rank() > a.rank() { b } else { a }
}

fn differ(rule: Rule, why: impl Into<String>) -> R<Verdict> {
    Ok(Verdict::Differ(rule, why.into()))
}

fn kind(a: &Answer) -> &'static str {
    match a {
        Answer::Scalar(_) => "a value",
        Answer::Tuple(..) => "a tuple",
        Answer::Set(_) => "a set",
        Answer::List(_) => "a list",
        Answer::Interval(_) => "an interval",
        Answer::Union(_) => "a union",
        Answer::Matrix { .. } => "a matrix",
        Answer::Assign(..) => "an assignment",
        Answer::Equation(_) => "an equation",
        Answer::Relation(..) => "an inequality",
        Answer::Text(_) => "text",
    }
}

impl<'a> Checker<'a> {
    /// A checker with a work budget of `steps`.
    pub fn new(gold: Side<'a>, pred: Side<'a>, tol: Tolerance, steps: u64) -> Checker<'a> {
        let gold_points = points_for(gold.parsed);
        let pred_points = points_for(pred.parsed);
        Checker { gold, pred, tol, budget: Budget::new(steps), gold_points, pred_points }
    }

    /// The verdict on the whole answers.
    pub fn run(&mut self) -> R<Verdict> {
        let (g, p) = (&self.gold.parsed.answer, &self.pred.parsed.answer);
        self.compare(g, p)
    }

    fn side(&self, w: Which) -> &'a Parsed {
        match w {
            Which::Gold => self.gold.parsed,
            Which::Pred => self.pred.parsed,
        }
    }

    fn spend(&mut self, n: u64) -> R<()> {
        self.budget.spend(n).map_err(CompareError::Refused)
    }

    /// The value of an expression of one side at test point `k` (`None`: no variables bound, for
    /// constant expressions); `Ok(None)` where it is undefined.
    fn value(&mut self, w: Which, root: Id, signs: u8, k: Option<usize>) -> R<Option<Val>> {
        let parsed = self.side(w);
        let points = match w {
            Which::Gold => &self.gold_points,
            Which::Pred => &self.pred_points,
        };
        let vars: &[Val] = match k {
            Some(k) if !points.is_empty() => &points[k],
            _ => &[],
        };
        match eval(&parsed.ast, root, &Env { vars, signs }, &mut self.budget) {
            Ok(v) => Ok(Some(v)),
            Err(EvalError::Undefined) => Ok(None),
            Err(EvalError::Refused(r)) => Err(match (w, &r) {
                (_, Refusal::BudgetExhausted(_)) | (Which::Pred, _) => CompareError::Refused(r),
                (Which::Gold, r) => CompareError::Gold(format!("gold refused: {r}")),
            }),
        }
    }

    fn fx(&mut self, f: Fx<'_>, k: usize) -> R<Option<Val>> {
        match f {
            Fx::Expr(w, id, signs) => self.value(w, id, signs, Some(k)),
            Fx::VarMinus(w, name, id, signs) => {
                let Some(v) = self.value(w, id, signs, Some(k))? else { return Ok(None) };
                Ok(Val::Q(point(name, k)).sub(&v).ok())
            }
        }
    }

    fn compare(&mut self, g: &Answer, p: &Answer) -> R<Verdict> {
        self.spend(1)?;
        match (g, p) {
            (Answer::Assign(v, gv), Answer::Assign(w, pv)) => {
                if v == w {
                    return self.compare(gv, pv);
                }
                // `y = 2x` against `x = y/2`: the same equation in another form.
                match (&**gv, &**pv) {
                    (Answer::Scalar(a), Answer::Scalar(b)) => self.proportional(
                        Fx::VarMinus(Which::Gold, v, a.root, a.signs),
                        Fx::VarMinus(Which::Pred, w, b.root, b.signs),
                        false,
                    ),
                    _ => differ(Rule::Structure, format!("{v} = … against {w} = …")),
                }
            }
            (Answer::Assign(v, gv), Answer::Equation(e)) => match &**gv {
                Answer::Scalar(a) => self.proportional(Fx::VarMinus(Which::Gold, v, a.root, a.signs), Fx::Expr(Which::Pred, *e, 0), false),
                _ => differ(Rule::Structure, "an assignment against an equation"),
            },
            (Answer::Equation(e), Answer::Assign(w, pv)) => match &**pv {
                Answer::Scalar(b) => self.proportional(Fx::Expr(Which::Gold, *e, 0), Fx::VarMinus(Which::Pred, w, b.root, b.signs), false),
                _ => differ(Rule::Structure, "an equation against an assignment"),
            },
            (Answer::Assign(_, gv), other) => self.compare(gv, other),
            (other, Answer::Assign(_, pv)) => self.compare(other, pv),
            (Answer::Text(_), _) | (_, Answer::Text(_)) => {
                let same = self.gold.text == self.pred.text || (self.gold.text.replace(' ', "") == self.pred.text.replace(' ', ""));
                if same { Ok(Verdict::Equal(Rule::Text)) } else { differ(Rule::Text, "different text") }
            }
            (Answer::Scalar(a), Answer::Scalar(b)) => self.scalars(a, b),
            // `3` against `\{3\}`, or against the list `3, 3` (a double root).
            (Answer::Scalar(_), Answer::Set(items) | Answer::List(items)) => self.unordered(std::slice::from_ref(g), items),
            (Answer::Set(items) | Answer::List(items), Answer::Scalar(_)) => self.unordered(items, std::slice::from_ref(p)),
            (Answer::Set(a) | Answer::List(a), Answer::Set(b) | Answer::List(b)) => self.unordered(a, b),
            (Answer::Tuple(a, da), Answer::Tuple(b, db)) => {
                if a.len() != b.len() {
                    return differ(Rule::Structure, format!("{} items against {}", a.len(), b.len()));
                }
                if a.len() == 2 && da != db {
                    // (a, b) is also an open interval; [a, b] a closed one.
                    return differ(Rule::Structure, "different brackets");
                }
                self.ordered(a, b)
            }
            // A point written without its parentheses.
            (Answer::Tuple(a, Delim::Paren), Answer::List(b)) | (Answer::List(a), Answer::Tuple(b, Delim::Paren)) => {
                if a.len() != b.len() {
                    return differ(Rule::Structure, format!("{} items against {}", a.len(), b.len()));
                }
                self.ordered(a, b)
            }
            (Answer::Interval(a), Answer::Interval(b)) => self.intervals(a, b),
            (Answer::Interval(i), Answer::Tuple(items, Delim::Paren)) | (Answer::Tuple(items, Delim::Paren), Answer::Interval(i))
                if items.len() == 2 =>
            {
                if i.lo_closed || i.hi_closed {
                    return differ(Rule::Structure, "an open end against a closed one");
                }
                let (lo, hi) = (Answer::Scalar(i.lo.clone()), Answer::Scalar(i.hi.clone()));
                let ends = [lo, hi];
                if matches!(g, Answer::Interval(_)) { self.ordered(&ends, items) } else { self.ordered(items, &ends) }
            }
            (Answer::Union(a), Answer::Union(b)) => self.unordered(a, b),
            // `x < 1 \text{ or } x > 2` is a list of intervals: their union.
            (Answer::Union(a), Answer::List(b)) | (Answer::List(a), Answer::Union(b))
                if a.iter().chain(b).all(|x| matches!(x, Answer::Interval(_) | Answer::Tuple(_, Delim::Paren))) =>
            {
                self.unordered(a, b)
            }
            (Answer::Union(a), other) if a.len() == 1 => self.compare(&a[0], other),
            (other, Answer::Union(b)) if b.len() == 1 => self.compare(other, &b[0]),
            (Answer::Matrix { rows: r1, cols: c1, cells: a }, Answer::Matrix { rows: r2, cols: c2, cells: b }) => {
                if (r1, c1) != (r2, c2) {
                    return differ(Rule::Structure, format!("a {r1}×{c1} matrix against a {r2}×{c2} one"));
                }
                self.ordered_scalars(a, b)
            }
            // A column or row vector against a tuple.
            (Answer::Matrix { rows, cols, cells }, Answer::Tuple(items, _)) if *rows == 1 || *cols == 1 => {
                let cells: Vec<Answer> = cells.iter().cloned().map(Answer::Scalar).collect();
                if cells.len() != items.len() {
                    return differ(Rule::Structure, "vectors of different lengths");
                }
                self.ordered(&cells, items)
            }
            (Answer::Tuple(items, _), Answer::Matrix { rows, cols, cells }) if *rows == 1 || *cols == 1 => {
                let cells: Vec<Answer> = cells.iter().cloned().map(Answer::Scalar).collect();
                if cells.len() != items.len() {
                    return differ(Rule::Structure, "vectors of different lengths");
                }
                self.ordered(items, &cells)
            }
            (Answer::Equation(a), Answer::Equation(b)) => {
                self.proportional(Fx::Expr(Which::Gold, *a, 0), Fx::Expr(Which::Pred, *b, 0), false)
            }
            (Answer::Relation(a, sa), Answer::Relation(b, sb)) => {
                if sa != sb {
                    return differ(Rule::Structure, "a strict inequality against a non-strict one");
                }
                self.proportional(Fx::Expr(Which::Gold, *a, 0), Fx::Expr(Which::Pred, *b, 0), true)
            }
            _ => differ(Rule::Structure, format!("{} against {}", kind(g), kind(p))),
        }
    }

    fn ordered(&mut self, a: &[Answer], b: &[Answer]) -> R<Verdict> {
        let mut rule = Rule::Exact;
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match self.compare(x, y)? {
                Verdict::Equal(r) => rule = weakest(rule, r),
                Verdict::Differ(r, why) => return differ(r, format!("item {}: {why}", i + 1)),
            }
        }
        Ok(Verdict::Equal(rule))
    }

    fn ordered_scalars(&mut self, a: &[Scalar], b: &[Scalar]) -> R<Verdict> {
        let mut rule = Rule::Exact;
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match self.scalars(x, y)? {
                Verdict::Equal(r) => rule = weakest(rule, r),
                Verdict::Differ(r, why) => return differ(r, format!("entry {}: {why}", i + 1)),
            }
        }
        Ok(Verdict::Equal(rule))
    }

    /// Every item of each side matches some item of the other (sets: order and repeats do not
    /// matter).
    fn unordered(&mut self, a: &[Answer], b: &[Answer]) -> R<Verdict> {
        let mut rule = Rule::Exact;
        let mut b_matched = vec![false; b.len()];
        for (i, x) in a.iter().enumerate() {
            let mut found = None;
            // Unmatched items first, so a repeat on one side does not hide a missing item.
            for pass in 0..2 {
                for (j, y) in b.iter().enumerate() {
                    if b_matched[j] != (pass == 1) {
                        continue;
                    }
                    if let Verdict::Equal(r) = self.compare(x, y)? {
                        found = Some((j, r));
                        break;
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            match found {
                Some((j, r)) => {
                    b_matched[j] = true;
                    rule = weakest(rule, r);
                }
                None => return differ(Rule::Structure, format!("gold item {} has no match", i + 1)),
            }
        }
        for (j, y) in b.iter().enumerate() {
            if b_matched[j] {
                continue;
            }
            let mut found = false;
            for x in a {
                if let Verdict::Equal(r) = self.compare(x, y)? {
                    rule = weakest(rule, r);
                    found = true;
                    break;
                }
            }
            if !found {
                return differ(Rule::Structure, format!("predicted item {} has no match", j + 1));
            }
        }
        Ok(Verdict::Equal(rule))
    }

    fn intervals(&mut self, a: &Interval, b: &Interval) -> R<Verdict> {
        if a.lo_closed != b.lo_closed || a.hi_closed != b.hi_closed {
            return differ(Rule::Structure, "an open end against a closed one");
        }
        let lo = self.scalars(&a.lo, &b.lo)?;
        let Verdict::Equal(r1) = lo else { return Ok(lo) };
        let hi = self.scalars(&a.hi, &b.hi)?;
        let Verdict::Equal(r2) = hi else { return Ok(hi) };
        Ok(Verdict::Equal(weakest(r1, r2)))
    }

    fn scalars(&mut self, g: &Scalar, p: &Scalar) -> R<Verdict> {
        if let (Some(gu), Some(pu)) = (&g.unit, &p.unit)
            && !units_agree(gu, pu)
        {
            return differ(Rule::Unit, format!("units differ: {gu} against {pu}"));
        }
        if g.percent == p.percent {
            return self.values(g, p, Percent::Neither);
        }
        // A percent sign on one side only: the number it stands for (50% = 0.5), or, when the
        // number under the sign is a whole number, the number as written (GSM8K golds drop the
        // sign: gold 50, prediction 50%). A fraction under the sign is read only as a percent,
        // so 0.5 is not 0.5% (math-verify draws the same line); see the README.
        let direct = self.values(g, p, Percent::Neither)?;
        let direct_equal = matches!(direct, Verdict::Equal(_));
        if direct_equal && self.whole_under_percent(g, p)? {
            return Ok(direct);
        }
        let scaled = self.values(g, p, if g.percent { Percent::Gold } else { Percent::Pred })?;
        if matches!(scaled, Verdict::Equal(_)) || direct_equal { Ok(scaled) } else { Ok(direct) }
    }

    /// Whether the side written with the percent sign is a whole number, free of variables.
    fn whole_under_percent(&mut self, g: &Scalar, p: &Scalar) -> R<bool> {
        let (w, s) = if g.percent { (Which::Gold, g) } else { (Which::Pred, p) };
        let ast = match w {
            Which::Gold => &self.gold.parsed.ast,
            Which::Pred => &self.pred.parsed.ast,
        };
        if ast.has_vars(s.root) {
            return Ok(false);
        }
        Ok(self.value(w, s.root, s.signs, None)?.is_some_and(|v| v.as_q().is_some_and(|q| q.is_integer())))
    }

    fn values(&mut self, g: &Scalar, p: &Scalar, percent: Percent) -> R<Verdict> {
        let (gast, past) = (&self.gold.parsed.ast, &self.pred.parsed.ast);
        let with_vars = gast.has_vars(g.root) || past.has_vars(p.root);
        let hundredth = Val::Q(Q::from_i128(1, 100));
        let scale = |v: Val, on: bool| -> Option<Val> { if on { v.mul(&hundredth).ok() } else { Some(v) } };
        let (gs, ps) = (percent == Percent::Gold, percent == Percent::Pred);
        if with_vars {
            let mut defined = 0;
            for k in 0..POINTS {
                let a = self.value(Which::Gold, g.root, g.signs, Some(k))?.and_then(|v| scale(v, gs));
                let b = self.value(Which::Pred, p.root, p.signs, Some(k))?.and_then(|v| scale(v, ps));
                match (a, b) {
                    (None, None) => {}
                    (Some(_), None) | (None, Some(_)) => {
                        return differ(Rule::Identity, "defined at different test points");
                    }
                    (Some(a), Some(b)) => {
                        if !same_value(&a, &b) {
                            return differ(Rule::Identity, "different values at a test point");
                        }
                        defined += 1;
                    }
                }
            }
            if defined < MIN_DEFINED_POINTS {
                return Err(CompareError::Undecided(format!("both sides are defined at only {defined} of {POINTS} test points")));
            }
            return Ok(Verdict::Equal(Rule::Identity));
        }
        let Some(a) = self.value(Which::Gold, g.root, g.signs, None)? else {
            return Err(CompareError::Gold("the gold answer has no value (e.g. a division by zero)".into()));
        };
        let Some(b) = self.value(Which::Pred, p.root, p.signs, None)? else {
            return differ(Rule::Exact, "the prediction has no value");
        };
        let (Some(a), Some(b)) = (scale(a, gs), scale(b, ps)) else {
            return differ(Rule::Exact, "a value out of range");
        };
        let extra = |on: bool| if on { 2 } else { 0 };
        let gd = decimal_places(&self.gold.parsed.ast, g.root).map(|k| k + extra(gs));
        let pd = decimal_places(&self.pred.parsed.ast, p.root).map(|k| k + extra(ps));
        let decimal = |this: &Self| match (gd, pd) {
            (None, Some(k)) => b.as_q().is_some_and(|d| this.decimal_matches(d, k, &a)),
            (Some(k), None) => a.as_q().is_some_and(|d| this.decimal_matches(d, k, &b)),
            _ => false,
        };
        match a.exact_eq(&b) {
            Some(true) => Ok(Verdict::Equal(Rule::Exact)),
            Some(false) => {
                if decimal(self) {
                    Ok(Verdict::Equal(Rule::Decimal))
                } else {
                    differ(Rule::Exact, "different values")
                }
            }
            None => {
                if same_value(&a, &b) {
                    Ok(Verdict::Equal(Rule::Numeric))
                } else if decimal(self) {
                    Ok(Verdict::Equal(Rule::Decimal))
                } else {
                    differ(Rule::Numeric, "different values")
                }
            }
        }
    }

    /// Whether the decimal `d`, written with `k` places, stands for `x`: within the relative
    /// tolerance and (by default) `x` rounded or truncated to `k` places.
    fn decimal_matches(&self, d: &Q, k: i32, x: &Val) -> bool {
        let tol = self.tol;
        if tol.rel_tol <= 0.0 {
            return false;
        }
        match x {
            Val::Q(xq) => {
                let Ok(diff) = d.sub(xq) else { return false };
                if diff.to_f64().abs() > tol.rel_tol * xq.to_f64().abs() * TOL_SLACK {
                    return false;
                }
                !tol.rounding || xq.to_places(k, true).is_ok_and(|r| r == *d) || xq.to_places(k, false).is_ok_and(|t| t == *d)
            }
            Val::Surd(_) | Val::Approx(_) => {
                let Some(a) = x.to_approx() else { return false };
                if !a.is_real() {
                    return false;
                }
                let dv = d.to_f64();
                if (dv - a.re).abs() > tol.rel_tol * a.re.abs() * TOL_SLACK + a.err {
                    return false;
                }
                if !tol.rounding {
                    return true;
                }
                if k > 15 {
                    // Beyond a double's precision: within one unit of the last place.
                    return (dv - a.re).abs() <= 10f64.powi(-k) + 2.0 * a.err + 4.0 * f64::EPSILON * a.re.abs();
                }
                let s = 10f64.powi(k);
                let target = (dv * s).round();
                let (lo, hi) = ((a.re - a.err) * s, (a.re + a.err) * s);
                [lo.round(), hi.round(), lo.trunc(), hi.trunc()].contains(&target)
            }
            Val::Inf(_) => false,
        }
    }

    /// `f` and `g` are proportional as functions (`positive`: by a positive factor), tested at the
    /// test points.
    fn proportional(&mut self, f: Fx<'_>, g: Fx<'_>, positive: bool) -> R<Verdict> {
        let mut ratio: Option<Val> = None;
        let mut defined = 0;
        for k in 0..POINTS {
            let a = self.fx(f, k)?;
            let b = self.fx(g, k)?;
            let (a, b) = match (a, b) {
                (None, None) => continue,
                (Some(a), Some(b)) => (a, b),
                _ => return differ(Rule::Identity, "defined at different test points"),
            };
            defined += 1;
            let (za, zb) = (is_zero(&a), is_zero(&b));
            if za || zb {
                if za && zb {
                    continue;
                }
                return differ(Rule::Identity, "different solutions");
            }
            let Ok(r) = a.div(&b) else { return differ(Rule::Identity, "different solutions") };
            match &ratio {
                None => {
                    if positive && r.sign() != Some(1) {
                        return differ(Rule::Identity, "the inequality points the other way");
                    }
                    ratio = Some(r);
                }
                Some(c) => {
                    if !same_value(c, &r) {
                        return differ(Rule::Identity, "different solutions");
                    }
                }
            }
        }
        if defined < MIN_DEFINED_POINTS {
            return Err(CompareError::Undecided(format!("both sides are defined at only {defined} of {POINTS} test points")));
        }
        Ok(Verdict::Equal(Rule::Identity))
    }
}

/// A relative error exactly at the tolerance passes: six places of 1/3 (0.333333) are off by
/// exactly 1e-6 relative, and rounding in the check must not decide that.
const TOL_SLACK: f64 = 1.0 + 1e-9;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Percent {
    Neither,
    Gold,
    Pred,
}

fn is_zero(v: &Val) -> bool {
    match v {
        Val::Q(q) => q.is_zero(),
        Val::Approx(a) => a.close(&crate::num::Approx::exact(0.0)),
        _ => false,
    }
}

/// Equal exactly when both are exact, else within the approximations' error bounds.
fn same_value(a: &Val, b: &Val) -> bool {
    if let Some(eq) = a.exact_eq(b) {
        return eq;
    }
    match (a.to_approx(), b.to_approx()) {
        (Some(x), Some(y)) => x.close(&y),
        _ => false,
    }
}

/// The places of a decimal literal that is the whole expression (`0.33`, `-1.5`).
fn decimal_places(ast: &crate::parse::Ast, root: Id) -> Option<i32> {
    match ast.node(root) {
        Node::Dec(_, k) => Some(*k),
        Node::Neg(a) => match ast.node(*a) {
            Node::Dec(_, k) => Some(*k),
            _ => None,
        },
        _ => None,
    }
}

/// Whether two canonical units name the same unit. `units` (as in `square units`) is generic.
fn units_agree(a: &str, b: &str) -> bool {
    a == b || a.contains("unit") || b.contains("unit")
}

/// `text` normalised for comparing text answers.
pub fn text_key(text: &str) -> String {
    normalize_text(text)
}
