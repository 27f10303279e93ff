//! Evaluating an expression at one assignment of its variables.
//!
//! Exact wherever the value stays in Q(√…, i): rational arithmetic, integer powers, square roots,
//! rational powers of perfect powers, `\log_b a` when it is rational, factorials, binomials,
//! floors, and the functions at the points where their value is rational (`\sin 0`, `\ln 1`).
//! Everything else (π, e, trigonometry, logarithms, other roots) is an [`Approx`] whose error
//! bound follows each operation.

use crate::lex::Func;
use crate::limits::{Budget, MAX_EXPONENT, MAX_FACTORIAL, Refusal};
use crate::num::{Approx, EPS, NoValue, Q, Surd, Val};
use crate::parse::{Ast, Id, Node};

/// Why an expression has no value at a point.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// Outside its domain there (division by zero, the logarithm of a negative number, ...).
    Undefined,
    /// A cap was hit.
    Refused(Refusal),
}

impl From<Refusal> for EvalError {
    fn from(r: Refusal) -> Self {
        EvalError::Refused(r)
    }
}

impl From<NoValue> for EvalError {
    fn from(e: NoValue) -> Self {
        match e {
            NoValue::Undefined => EvalError::Undefined,
            NoValue::TooLarge => EvalError::Refused(Refusal::ValueTooLarge),
        }
    }
}

type EResult = Result<Val, EvalError>;

/// Values of the variables (by index into [`Ast::vars`]) and the `±` signs.
pub struct Env<'a> {
    pub vars: &'a [Val],
    pub signs: u8,
}

/// Evaluates node `id` of `ast`.
pub fn eval(ast: &Ast, id: Id, env: &Env<'_>, budget: &mut Budget) -> EResult {
    budget.spend(1)?;
    let v = match ast.node(id) {
        Node::Num(q) | Node::Dec(q, _) => Val::Q(q.clone()),
        Node::Var(i) => env.vars.get(*i as usize).cloned().ok_or(EvalError::Undefined)?,
        Node::Pi => Val::Approx(Approx::rounded(std::f64::consts::PI)),
        Node::E => Val::Approx(Approx::rounded(std::f64::consts::E)),
        Node::I => Val::Surd(Surd(vec![(-1, Q::one())])),
        Node::Inf => Val::Inf(false),
        Node::Add(a, b) => {
            let x = eval(ast, *a, env, budget)?;
            let y = eval(ast, *b, env, budget)?;
            charge(budget, &x, &y)?;
            x.add(&y)?
        }
        Node::Mul(a, b) => {
            let x = eval(ast, *a, env, budget)?;
            let y = eval(ast, *b, env, budget)?;
            charge(budget, &x, &y)?;
            x.mul(&y)?
        }
        Node::Neg(a) => eval(ast, *a, env, budget)?.neg(),
        Node::Div(a, b) => {
            let x = eval(ast, *a, env, budget)?;
            let y = eval(ast, *b, env, budget)?;
            charge(budget, &x, &y)?;
            charge_radicals(budget, &y)?;
            x.div(&y)?
        }
        Node::Pm(k, a, b) => {
            let x = eval(ast, *a, env, budget)?;
            let y = eval(ast, *b, env, budget)?;
            if env.signs & (1 << k) != 0 { x.sub(&y)? } else { x.add(&y)? }
        }
        Node::Pow(a, b) => {
            let e = eval(ast, *b, env, budget)?;
            if matches!(ast.node(*a), Node::E) {
                return exp(&e);
            }
            let base = eval(ast, *a, env, budget)?;
            power(&base, &e, budget)?
        }
        Node::Sqrt(a) => {
            let x = eval(ast, *a, env, budget)?;
            charge_radicals(budget, &x)?;
            x.sqrt()?
        }
        Node::Root(k, a) => {
            let k = eval(ast, *k, env, budget)?;
            let x = eval(ast, *a, env, budget)?;
            match k.as_q().and_then(Q::as_i64) {
                Some(2) => x.sqrt()?,
                Some(k) if (1..=64).contains(&k) => root(&x, k as u32)?,
                _ => return Err(EvalError::Undefined),
            }
        }
        Node::Func(f, a) => {
            let x = eval(ast, *a, env, budget)?;
            func(*f, &x)?
        }
        Node::Log(b, a) => {
            let base = eval(ast, *b, env, budget)?;
            let x = eval(ast, *a, env, budget)?;
            log(&base, &x, budget)?
        }
        Node::Factorial(a) => {
            let x = eval(ast, *a, env, budget)?;
            factorial(&x, budget)?
        }
        Node::Binom(n, k) => {
            let n = eval(ast, *n, env, budget)?;
            let k = eval(ast, *k, env, budget)?;
            binom(&n, &k, budget)?
        }
        Node::Floor(a) => round_to_int(&eval(ast, *a, env, budget)?, false)?,
        Node::Ceil(a) => round_to_int(&eval(ast, *a, env, budget)?, true)?,
        Node::Percent(a) => eval(ast, *a, env, budget)?.div(&Val::int(100))?,
        Node::Degrees(a) => {
            let x = eval(ast, *a, env, budget)?;
            x.mul(&Val::Approx(Approx::rounded(std::f64::consts::PI / 180.0)))?
        }
    };
    Ok(v)
}

/// Bits held in big rationals (0 for values that fit in 64-bit parts, which cost a step).
fn big_bits(v: &Val) -> u64 {
    match v {
        Val::Q(q) if q.is_big() => q.bits(),
        Val::Surd(s) => s.0.iter().filter(|t| t.1.is_big()).map(|t| t.1.bits()).sum(),
        _ => 0,
    }
}

/// Big operands cost what big-rational arithmetic costs: every operation reduces its result by a
/// gcd, about (bits × 64-bit limbs) word operations; one step is about 20 of them.
fn charge(budget: &mut Budget, x: &Val, y: &Val) -> Result<(), Refusal> {
    let bits = big_bits(x).max(big_bits(y));
    let mut steps = if bits == 0 { 0 } else { bits * (bits / 64 + 1) / 20 + 1 };
    // Surds multiply term by term.
    let pairs = terms(x) * terms(y);
    if pairs > 1 {
        steps += 4 * pairs;
    }
    if steps > 0 { budget.spend(steps) } else { Ok(()) }
}

fn terms(v: &Val) -> u64 {
    match v {
        Val::Surd(s) => s.0.len() as u64,
        _ => 1,
    }
}

/// Dividing by a surd conjugates away each prime of its radicands (factored by trial division),
/// squaring the work each time; a square root factors its radicand.
fn charge_radicals(budget: &mut Budget, divisor_or_radicand: &Val) -> Result<(), Refusal> {
    match divisor_or_radicand {
        Val::Surd(s) => budget.spend(200 + 64 * (s.0.len() as u64).pow(2)),
        Val::Q(q) if q.bits() > 24 => budget.spend(200),
        _ => Ok(()),
    }
}

fn exp(e: &Val) -> EResult {
    if e.is_zero() {
        return Ok(Val::int(1));
    }
    let x = e.to_approx().ok_or(EvalError::Undefined)?;
    let m = x.re.exp();
    if x.is_real() {
        return approx(Approx::real(m, m * x.err));
    }
    // e^(a+bi) = e^a (cos b + i sin b); the error scales with the modulus.
    let (re, im) = (m * x.im.cos(), m * x.im.sin());
    approx(Approx { re, im, err: m * x.err * 2.0 + 4.0 * EPS * m })
}

/// A real approximation of `v`, or `Undefined` when it is not real.
fn real(v: &Val) -> Result<Approx, EvalError> {
    let a = v.to_approx().ok_or(EvalError::Undefined)?;
    if a.is_real() { Ok(Approx { im: 0.0, ..a }) } else { Err(EvalError::Undefined) }
}

fn approx(a: Approx) -> EResult {
    if a.is_finite() { Ok(Val::Approx(a)) } else { Err(EvalError::Refused(Refusal::ValueTooLarge)) }
}

/// `base ^ e`.
fn power(base: &Val, e: &Val, budget: &mut Budget) -> EResult {
    if let Some(q) = e.as_q() {
        if q.is_integer() {
            let trivial = match base {
                Val::Q(b) => b.is_zero() || b.is_one() || *b == Q::int(-1),
                _ => false,
            };
            match q.as_i64() {
                Some(n) if n.unsigned_abs() <= MAX_EXPONENT as u64 => {
                    let squarings = 1 + n.unsigned_abs().max(1).ilog2() as u64;
                    budget.spend(squarings * (1 + 4 * terms(base).pow(2)))?;
                    if n < 0 {
                        charge_radicals(budget, base)?;
                    }
                    let v = base.powi(n)?;
                    charge(budget, &v, &v)?;
                    return Ok(v);
                }
                _ if trivial => {
                    // 1^huge, 0^huge, (-1)^huge: by the sign and parity of the exponent.
                    let odd = q.parts().0.bit(0);
                    let n = if q.signum() < 0 {
                        -1
                    } else if odd {
                        1
                    } else {
                        2
                    };
                    return Ok(base.powi(n)?);
                }
                _ => return Err(Refusal::ExponentTooLarge.into()),
            }
        }
        // A rational exponent p/q.
        let (p, d) = q.parts();
        if let (Some(p), Some(d)) = (num_traits::ToPrimitive::to_i64(&p), num_traits::ToPrimitive::to_i64(&d))
            && d <= 64
            && p.abs() <= MAX_EXPONENT
        {
            let r = if d == 2 { base.sqrt()? } else { root(base, d as u32)? };
            return Ok(r.powi(p)?);
        }
        if q.bits() > 128 {
            return Err(Refusal::ExponentTooLarge.into());
        }
    }
    if matches!(e, Val::Inf(_)) || matches!(base, Val::Inf(_)) {
        return Err(EvalError::Undefined);
    }
    // General: exp(e · ln base) for a positive real base.
    let b = real(base)?;
    let x = real(e)?;
    if b.re <= b.err {
        if b.re == 0.0 && b.err == 0.0 && x.re > x.err {
            return Ok(Val::int(0));
        }
        return Err(EvalError::Undefined);
    }
    if x.re.abs() > 1e6 {
        return Err(Refusal::ExponentTooLarge.into());
    }
    let ln_b = b.re.ln();
    let v = (x.re * ln_b).exp();
    // d(b^x) = b^x (x/b db + ln b dx)
    let err = v * (x.re.abs() * b.err / b.re + ln_b.abs() * x.err);
    approx(Approx::real(v, err + 4.0 * EPS * v))
}

/// The real `k`-th root (k >= 1; of a negative number only for odd k).
fn root(x: &Val, k: u32) -> EResult {
    if k == 1 {
        return Ok(x.clone());
    }
    if let Some(q) = x.as_q()
        && let Some(r) = q.root(k)
    {
        return Ok(Val::Q(r));
    }
    let a = real(x)?;
    let negative = a.re < 0.0;
    if negative && k.is_multiple_of(2) {
        return Err(EvalError::Undefined);
    }
    if a.re.abs() <= a.err {
        return if x.is_zero() { Ok(Val::int(0)) } else { Err(EvalError::Undefined) };
    }
    let m = a.re.abs().powf(1.0 / k as f64);
    let v = if negative { -m } else { m };
    // d(x^(1/k)) = x^(1/k) / (k x) dx
    let err = m * a.err / (k as f64 * a.re.abs());
    approx(Approx::real(v, err + 2.0 * EPS * m))
}

fn func(f: Func, x: &Val) -> EResult {
    // Exact values at the points where they are rational.
    if x.is_zero() {
        match f {
            Func::Sin | Func::Tan | Func::Asin | Func::Atan | Func::Sinh | Func::Tanh | Func::Abs => {
                return Ok(Val::int(0));
            }
            Func::Cos | Func::Cosh | Func::Exp | Func::Sec => return Ok(Val::int(1)),
            Func::Ln | Func::Log | Func::Csc | Func::Cot => return Err(EvalError::Undefined),
            Func::Acos => {}
        }
    }
    if let Some(q) = x.as_q() {
        if q.is_one() {
            match f {
                Func::Ln | Func::Log => return Ok(Val::int(0)),
                Func::Acos => return Ok(Val::int(0)),
                _ => {}
            }
        }
        if f == Func::Abs {
            return Ok(Val::Q(if q.signum() < 0 { q.neg() } else { q.clone() }));
        }
    }
    if f == Func::Abs {
        return abs(x);
    }
    if let Val::Inf(neg) = x {
        return match (f, neg) {
            (Func::Exp, false) | (Func::Ln, false) | (Func::Sinh, false) | (Func::Cosh, _) => Ok(Val::Inf(false)),
            (Func::Sinh, true) => Ok(Val::Inf(true)),
            (Func::Exp, true) => Ok(Val::int(0)),
            (Func::Tanh, n) => Ok(Val::int(if *n { -1 } else { 1 })),
            _ => Err(EvalError::Undefined),
        };
    }
    let a = real(x)?;
    let (v, e) = (a.re, a.err);
    let (out, err) = match f {
        Func::Sin => (v.sin(), e),
        Func::Cos => (v.cos(), e),
        Func::Tan => {
            let c = v.cos();
            if c.abs() <= e + 4.0 * EPS {
                return Err(EvalError::Undefined);
            }
            let t = v.tan();
            (t, e * (1.0 + t * t) / (1.0 - e / c.abs()).max(0.5))
        }
        Func::Sec | Func::Csc | Func::Cot => {
            let d = match f {
                Func::Sec => v.cos(),
                _ => v.sin(),
            };
            if d.abs() <= e + 4.0 * EPS {
                return Err(EvalError::Undefined);
            }
            let n = if f == Func::Cot { v.cos() } else { 1.0 };
            let out = n / d;
            (out, 2.0 * e / (d * d))
        }
        Func::Asin | Func::Acos => {
            if v.abs() > 1.0 + e {
                return Err(EvalError::Undefined);
            }
            let c = v.clamp(-1.0, 1.0);
            let out = if f == Func::Asin { c.asin() } else { c.acos() };
            let slack = (1.0 - c * c).max(0.0);
            (out, if slack > 2.0 * e { e / (slack - e).sqrt() } else { (2.0 * e).sqrt() * 2.0 })
        }
        Func::Atan => (v.atan(), e),
        Func::Sinh => (v.sinh(), e * v.cosh()),
        Func::Cosh => (v.cosh(), e * v.sinh().abs()),
        Func::Tanh => (v.tanh(), e),
        Func::Exp => {
            let out = v.exp();
            (out, out * e)
        }
        Func::Ln | Func::Log => {
            if v <= e {
                return Err(EvalError::Undefined);
            }
            let out = if f == Func::Ln { v.ln() } else { v.log10() };
            (out, e / (v - e))
        }
        Func::Abs => unreachable!("handled above"),
    };
    approx(Approx::real(out, err + 2.0 * EPS * out.abs()))
}

fn abs(x: &Val) -> EResult {
    match x {
        Val::Inf(_) => Ok(Val::Inf(false)),
        Val::Surd(s) if s.0.iter().all(|t| t.0 > 0) => match x.sign() {
            Some(s) if s < 0 => Ok(x.neg()),
            Some(_) => Ok(x.clone()),
            None => Err(EvalError::Undefined),
        },
        Val::Surd(s) => {
            // |a + bi| = √(a² + b²): exact when the square is.
            let re = Val::Surd(Surd(s.0.iter().filter(|t| t.0 > 0).cloned().collect()));
            let im_terms: Vec<_> = s.0.iter().filter(|t| t.0 < 0).map(|(m, c)| (-m, c.clone())).collect();
            let im = Val::Surd(Surd(im_terms));
            let norm = re.mul(&re)?.add(&im.mul(&im)?)?;
            Ok(norm.sqrt()?)
        }
        other => {
            let a = other.to_approx().ok_or(EvalError::Undefined)?;
            approx(Approx::real(a.abs(), a.err))
        }
    }
}

/// `\log_base x`: exact when it is a rational p/q with q <= 12 (checked exactly: x^q = base^p).
fn log(base: &Val, x: &Val, budget: &mut Budget) -> EResult {
    if let (Some(b), Some(a)) = (base.as_q(), x.as_q()) {
        if b.signum() <= 0 || b.is_one() || a.signum() <= 0 {
            return Err(EvalError::Undefined);
        }
        if a.is_one() {
            return Ok(Val::int(0));
        }
        let r = a.to_f64().ln() / b.to_f64().ln();
        if r.is_finite() {
            for q in 1..=12i64 {
                let p = (r * q as f64).round();
                if (r * q as f64 - p).abs() > 1e-6 || p.abs() > 4096.0 {
                    continue;
                }
                budget.spend(8)?;
                let p = p as i64;
                let lhs = a.pow(q);
                let rhs = b.pow(p);
                if let (Some(Ok(l)), Some(Ok(r))) = (lhs, rhs)
                    && l == r
                {
                    return Ok(Val::Q(Q::from_i128(p as i128, q as i128)));
                }
            }
        }
    }
    let b = real(base)?;
    let a = real(x)?;
    if b.re <= b.err || a.re <= a.err {
        return Err(EvalError::Undefined);
    }
    let lb = b.re.ln();
    if lb.abs() <= b.err / b.re {
        return Err(EvalError::Undefined);
    }
    let la = a.re.ln();
    let v = la / lb;
    let err = (a.err / a.re + v.abs() * b.err / b.re) / lb.abs();
    approx(Approx::real(v, err + 4.0 * EPS * v.abs()))
}

fn factorial(x: &Val, budget: &mut Budget) -> EResult {
    let n = match x.as_q() {
        Some(q) if q.is_integer() && q.signum() >= 0 => q.as_i64().ok_or(Refusal::ValueTooLarge)?,
        _ => return Err(EvalError::Undefined),
    };
    if n > MAX_FACTORIAL {
        return Err(Refusal::ValueTooLarge.into());
    }
    budget.spend(n as u64)?;
    let mut acc = num_bigint::BigInt::from(1);
    for k in 2..=n {
        acc *= k;
    }
    Ok(Val::Q(Q::from_bigint(acc)))
}

fn binom(n: &Val, k: &Val, budget: &mut Budget) -> EResult {
    let Some(k) = k.as_q().and_then(Q::as_i64) else {
        return Err(EvalError::Undefined);
    };
    let Some(n) = n.as_q().and_then(Q::as_i64) else {
        // n(n-1)…(n-k+1)/k! for any n (a variable at a test point).
        if !(0..=64).contains(&k) {
            return Err(EvalError::Undefined);
        }
        budget.spend(4 * k as u64 + 1)?;
        let mut acc = Val::int(1);
        for i in 0..k {
            let factor = n.sub(&Val::int(i))?.div(&Val::int(i + 1))?;
            acc = acc.mul(&factor)?;
        }
        return Ok(acc);
    };
    if n < 0 || k < 0 {
        return Err(EvalError::Undefined);
    }
    if k > n {
        return Ok(Val::int(0));
    }
    let k = k.min(n - k);
    if k > MAX_FACTORIAL {
        return Err(Refusal::ValueTooLarge.into());
    }
    budget.spend(k as u64 + 1)?;
    let mut acc = num_bigint::BigInt::from(1);
    for i in 0..k {
        acc = acc * (n - i) / (i + 1);
    }
    Ok(Val::Q(Q::from_bigint(acc)))
}

/// Floor (`ceil` false) or ceiling; of an approximation only when no integer is within its error.
fn round_to_int(x: &Val, ceil: bool) -> EResult {
    if let Some(q) = x.as_q() {
        let f = q.floor();
        return Ok(Val::Q(if ceil && f != *q { f.add(&Q::one()).map_err(|_| Refusal::ValueTooLarge)? } else { f }));
    }
    let a = real(x)?;
    let r = if ceil { a.re.ceil() } else { a.re.floor() };
    let nearest = a.re.round();
    if (a.re - nearest).abs() <= 16.0 * a.err + 4.0 * EPS * a.re.abs() || r.abs() > 9e15 {
        return Err(EvalError::Undefined);
    }
    Ok(Val::int(r as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Answer, parse};

    fn value(s: &str) -> Result<Val, EvalError> {
        let p = parse(s).unwrap();
        let Answer::Scalar(sc) = &p.answer else { panic!("{s}: not a scalar") };
        let mut b = Budget::new(1_000_000);
        eval(&p.ast, sc.root, &Env { vars: &[], signs: 0 }, &mut b)
    }

    fn exact(s: &str, n: i64, d: i64) {
        match value(s) {
            Ok(Val::Q(q)) => assert_eq!(q, Q::from_i128(n as i128, d as i128), "{s}"),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn exact_values() {
        exact("\\frac{1}{2} + \\frac{1}{3}", 5, 6);
        exact("2^{10}", 1024, 1);
        exact("\\log_2 8", 3, 1);
        exact("\\log_{4} 8", 3, 2);
        exact("\\log 1000", 3, 1);
        exact("\\ln 1", 0, 1);
        exact("8^{2/3}", 4, 1);
        exact("\\sqrt[3]{-27}", -3, 1);
        exact("5!", 120, 1);
        exact("\\binom{10}{3}", 120, 1);
        exact("\\lfloor 7/2 \\rfloor", 3, 1);
        exact("\\lceil 7/2 \\rceil", 4, 1);
        exact("|-3|", 3, 1);
        exact("2\\frac{1}{2}", 5, 2);
        exact("-2\\frac{1}{2}", -5, 2);
        exact("50\\% \\cdot 4", 2, 1);
        exact("\\sqrt{2}\\sqrt{8}", 4, 1);
        exact("(1+\\sqrt{2})(1-\\sqrt{2})", -1, 1);
        exact("i^2", -1, 1);
        exact("|3+4i|", 5, 1);
        exact("\\frac12", 1, 2);
    }

    #[test]
    fn approximate_values() {
        let Ok(Val::Approx(a)) = value("\\sin \\frac{\\pi}{6}") else { panic!() };
        assert!(a.close(&Approx::exact(0.5)));
        let Ok(Val::Approx(a)) = value("\\cos 60^\\circ") else { panic!() };
        assert!(a.close(&Approx::exact(0.5)));
        let Ok(Val::Approx(a)) = value("e^{\\ln 2}") else { panic!() };
        assert!(a.close(&Approx::exact(2.0)));
        assert_eq!(value("\\ln 0"), Err(EvalError::Undefined));
        assert_eq!(value("1/0"), Err(EvalError::Undefined));
    }

    #[test]
    fn refusals() {
        assert_eq!(value("10^{10^{10}}"), Err(EvalError::Refused(Refusal::ExponentTooLarge)));
        assert_eq!(value("2^{100000}").map(|_| ()), Err(EvalError::Refused(Refusal::ValueTooLarge)));
        assert_eq!(value("1^{10^{10}}").ok().and_then(|v| v.as_q().cloned()), Some(Q::one()));
        assert_eq!(value("100000!"), Err(EvalError::Refused(Refusal::ValueTooLarge)));
    }
}
