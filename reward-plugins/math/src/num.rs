//! The numbers answers evaluate to.
//!
//! - [`Q`]: an exact rational, held in two `i64`s while it fits (every operation is done in
//!   `i128` and reduced, so nothing overflows) and as a big rational beyond; a result over
//!   [`MAX_BITS`] is refused with [`TooBig`], so no computation can grow without bound.
//! - [`Surd`]: an exact element of Q(√m₁, √m₂, …, i): a sum of rational multiples of square roots
//!   of square-free integers, `i` being `√-1`. Its terms are kept sorted and reduced, so two equal
//!   surds have the same terms: `√12` and `2√3` are both `2·√3`, `1/√2` is `½·√2`.
//! - [`Approx`]: a complex double with a bound on its accumulated error, for what exact
//!   arithmetic cannot hold (π, e, logarithms, trigonometry, roots that are not square roots).
//! - [`Val`]: one of those, or a signed infinity.

use std::cmp::Ordering;

use num_bigint::{BigInt, Sign};
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};

/// The largest exact rational kept, in bits of numerator plus denominator. Beyond it a value is
/// approximated (or refused when the double overflows too). 16,384 bits is `2^{10000}` with room.
pub const MAX_BITS: u64 = 16_384;

/// The most terms a [`Surd`] keeps before it is approximated.
pub const MAX_SURD_TERMS: usize = 32;

/// Radicands are reduced to their square-free part by trial division only up to this size.
const MAX_RADICAND: u64 = 1_000_000_000_000;

/// Machine epsilon of a double.
pub const EPS: f64 = f64::EPSILON;

/// An exact result would exceed [`MAX_BITS`] (or a radicand could not be reduced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooBig;

/// Small values stay within this magnitude so that negation and `i128` products never overflow.
const SMALL_MAX: i128 = 1 << 62;

/// An exact rational number, always reduced, the denominator positive.
#[derive(Clone, Debug)]
pub enum Q {
    /// Numerator and denominator, both at most 2^62 in magnitude.
    S(i64, i64),
    /// Anything larger.
    B(Box<BigRational>),
}

fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// `gcd(a, b)` for an `a` that may not fit in 64 bits and a `b` that does: one `i128` remainder,
/// then 64-bit steps (128-bit arithmetic is emulated on wasm32).
fn gcd_wide(a: u128, b: u64) -> u64 {
    if let Ok(a) = u64::try_from(a) {
        return gcd_u64(a, b);
    }
    if b == 0 {
        return u64::try_from(a).unwrap_or(0);
    }
    gcd_u64((a % b as u128) as u64, b)
}

impl Q {
    /// The integer `n`.
    pub fn int(n: i64) -> Q {
        Q::from_i128(n as i128, 1)
    }

    /// Zero.
    pub fn zero() -> Q {
        Q::S(0, 1)
    }

    /// One.
    pub fn one() -> Q {
        Q::S(1, 1)
    }

    /// `n / d`, reduced; `d` must not be zero.
    pub fn from_i128(n: i128, d: i128) -> Q {
        debug_assert!(d != 0);
        let (mut n, mut d) = if d < 0 { (-n, -d) } else { (n, d) };
        let g = match u64::try_from(d) {
            Ok(d64) => gcd_wide(n.unsigned_abs(), d64) as i128,
            Err(_) => match u64::try_from(n.unsigned_abs()) {
                Ok(n64) => gcd_wide(d as u128, n64) as i128,
                Err(_) => {
                    let big = num_integer::Integer::gcd(&BigInt::from(n), &BigInt::from(d));
                    big.to_i128().unwrap_or(1)
                }
            },
        };
        if g > 1 {
            n /= g;
            d /= g;
        }
        if n.abs() <= SMALL_MAX && d <= SMALL_MAX {
            Q::S(n as i64, d as i64)
        } else {
            Q::B(Box::new(BigRational::new_raw(BigInt::from(n), BigInt::from(d))))
        }
    }

    /// `n / d` already reduced, `d > 0`.
    fn reduced(n: i128, d: i128) -> Q {
        if n == 0 {
            return Q::S(0, 1);
        }
        if n.abs() <= SMALL_MAX && d <= SMALL_MAX {
            Q::S(n as i64, d as i64)
        } else {
            Q::B(Box::new(BigRational::new_raw(BigInt::from(n), BigInt::from(d))))
        }
    }

    /// A big rational, demoted to the small form when it fits.
    pub fn from_big(r: BigRational) -> Q {
        if let (Some(n), Some(d)) = (r.numer().to_i64(), r.denom().to_i64())
            && (n as i128).abs() <= SMALL_MAX
            && (d as i128) <= SMALL_MAX
        {
            return Q::S(n, d);
        }
        Q::B(Box::new(r))
    }

    /// A big integer.
    pub fn from_bigint(n: BigInt) -> Q {
        Q::from_big(BigRational::from_integer(n))
    }

    /// This value as a big rational.
    pub fn to_big(&self) -> BigRational {
        match self {
            Q::S(n, d) => BigRational::new_raw(BigInt::from(*n), BigInt::from(*d)),
            Q::B(b) => (**b).clone(),
        }
    }

    /// Numerator and denominator as big integers.
    pub fn parts(&self) -> (BigInt, BigInt) {
        match self {
            Q::S(n, d) => (BigInt::from(*n), BigInt::from(*d)),
            Q::B(b) => (b.numer().clone(), b.denom().clone()),
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        matches!(self, Q::S(0, _))
    }

    /// Whether the value is one.
    pub fn is_one(&self) -> bool {
        matches!(self, Q::S(1, 1))
    }

    /// Whether the value is an integer.
    pub fn is_integer(&self) -> bool {
        match self {
            Q::S(_, d) => *d == 1,
            Q::B(b) => b.is_integer(),
        }
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        match self {
            Q::S(n, _) => n.signum() as i32,
            Q::B(b) => match b.numer().sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            },
        }
    }

    /// The value as an `i64` when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Q::S(n, 1) => Some(*n),
            _ => None,
        }
    }

    /// Whether the value is held as a big rational.
    pub fn is_big(&self) -> bool {
        matches!(self, Q::B(_))
    }

    /// Bits of numerator plus denominator.
    pub fn bits(&self) -> u64 {
        match self {
            Q::S(n, d) => (64 - n.unsigned_abs().leading_zeros() + 64 - d.unsigned_abs().leading_zeros()) as u64,
            Q::B(b) => b.numer().bits() + b.denom().bits(),
        }
    }

    fn checked(r: BigRational) -> Result<Q, TooBig> {
        let q = Q::from_big(r);
        if q.bits() > MAX_BITS { Err(TooBig) } else { Ok(q) }
    }

    /// `self + o`.
    pub fn add(&self, o: &Q) -> Result<Q, TooBig> {
        match (self, o) {
            (Q::S(a, b), Q::S(c, d)) => {
                // Knuth's addition of reduced fractions: every gcd is of 64-bit numbers.
                let (a, b, c, d) = (*a as i128, *b as u64, *c as i128, *d as u64);
                if b == d {
                    let n = a + c;
                    let g = gcd_wide(n.unsigned_abs(), b) as i128;
                    return Ok(Q::reduced(n / g, b as i128 / g));
                }
                let g = gcd_u64(b, d);
                if g == 1 {
                    return Ok(Q::reduced(a * d as i128 + c * b as i128, b as i128 * d as i128));
                }
                let t = a * (d / g) as i128 + c * (b / g) as i128;
                let g2 = gcd_wide(t.unsigned_abs(), g);
                Ok(Q::reduced(t / g2 as i128, (b / g) as i128 * (d / g2) as i128))
            }
            _ => Q::checked(self.to_big() + o.to_big()),
        }
    }

    /// `-self`.
    pub fn neg(&self) -> Q {
        match self {
            Q::S(n, d) => Q::S(-n, *d),
            Q::B(b) => Q::B(Box::new(-(**b).clone())),
        }
    }

    /// `self - o`.
    pub fn sub(&self, o: &Q) -> Result<Q, TooBig> {
        self.add(&o.neg())
    }

    /// `self * o`.
    pub fn mul(&self, o: &Q) -> Result<Q, TooBig> {
        match (self, o) {
            (Q::S(a, b), Q::S(c, d)) => {
                // Cross-reduce first: the product of reduced fractions is then reduced.
                let g1 = gcd_u64(a.unsigned_abs(), *d as u64) as i64;
                let g2 = gcd_u64(c.unsigned_abs(), *b as u64) as i64;
                let (g1, g2) = (g1.max(1), g2.max(1));
                let (x, y, u, v) = (a / g1, c / g2, b / g2, d / g1);
                if let (Some(n), Some(den)) = (x.checked_mul(y), u.checked_mul(v))
                    && (n as i128).abs() <= SMALL_MAX
                    && (den as i128) <= SMALL_MAX
                {
                    return Ok(if n == 0 { Q::S(0, 1) } else { Q::S(n, den) });
                }
                Ok(Q::reduced(x as i128 * y as i128, u as i128 * v as i128))
            }
            _ => {
                if self.is_zero() || o.is_zero() {
                    return Ok(Q::zero());
                }
                if self.bits() + o.bits() > 2 * MAX_BITS {
                    return Err(TooBig);
                }
                Q::checked(self.to_big() * o.to_big())
            }
        }
    }

    /// `1 / self`, `None` for zero.
    pub fn recip(&self) -> Option<Q> {
        match self {
            Q::S(0, _) => None,
            Q::S(n, d) => Some(if *n < 0 { Q::S(-d, -n) } else { Q::S(*d, *n) }),
            Q::B(b) => Some(Q::from_big(b.recip())),
        }
    }

    /// `self / o`, `None` when `o` is zero.
    pub fn div(&self, o: &Q) -> Option<Result<Q, TooBig>> {
        Some(self.mul(&o.recip()?))
    }

    /// `self ^ e` for an integer exponent; `None` for `0 ^ negative`.
    pub fn pow(&self, e: i64) -> Option<Result<Q, TooBig>> {
        if e < 0 {
            return self.recip()?.pow(e.checked_neg()?);
        }
        if self.is_zero() || self.is_one() || e == 0 || e == 1 {
            return Some(Ok(if e == 0 { Q::one() } else { self.clone() }));
        }
        if matches!(self, Q::S(-1, 1)) {
            return Some(Ok(if e % 2 == 0 { Q::one() } else { self.clone() }));
        }
        // Each factor has at least one bit; the result has about bits * e.
        let estimate = (self.bits().saturating_sub(1)).saturating_mul(e.unsigned_abs());
        if estimate > MAX_BITS || e > MAX_BITS as i64 {
            return Some(Err(TooBig));
        }
        let (n, d) = self.parts();
        let e = e as u32;
        Some(Q::checked(BigRational::new_raw(num_traits::pow(n, e as usize), num_traits::pow(d, e as usize))))
    }

    /// The exact `k`-th root when numerator and denominator are perfect `k`-th powers (a
    /// negative value only for odd `k`).
    pub fn root(&self, k: u32) -> Option<Q> {
        if k == 0 || (self.signum() < 0 && k.is_multiple_of(2)) {
            return None;
        }
        let (n, d) = self.parts();
        let rn = n.abs().nth_root(k);
        let rd = d.nth_root(k);
        if num_traits::pow(rn.clone(), k as usize) == n.abs() && num_traits::pow(rd.clone(), k as usize) == d {
            let rn = if n.is_negative() { -rn } else { rn };
            Some(Q::from_big(BigRational::new(rn, rd)))
        } else {
            None
        }
    }

    /// The nearest double (correctly rounded for small values).
    pub fn to_f64(&self) -> f64 {
        match self {
            Q::S(n, 1) => *n as f64,
            Q::S(n, d) => *n as f64 / *d as f64,
            Q::B(b) => b.to_f64().unwrap_or(f64::NAN),
        }
    }

    /// Compares two rationals.
    pub fn cmp_q(&self, o: &Q) -> Ordering {
        match (self, o) {
            (Q::S(a, b), Q::S(c, d)) => (*a as i128 * *d as i128).cmp(&(*c as i128 * *b as i128)),
            _ => self.to_big().cmp(&o.to_big()),
        }
    }

    /// The integer part toward negative infinity.
    pub fn floor(&self) -> Q {
        match self {
            Q::S(n, d) => Q::int(n.div_euclid(*d)),
            Q::B(b) => Q::from_big(b.floor()),
        }
    }

    /// `self` rounded to `k` decimal places (`k` may be negative: tens, hundreds): half away from
    /// zero when `round`, toward zero otherwise.
    pub fn to_places(&self, k: i32, round: bool) -> Result<Q, TooBig> {
        if k.unsigned_abs() > 4096 {
            return Err(TooBig);
        }
        let scale = Q::int(10).pow(k as i64).expect("ten is not zero")?;
        let scaled = self.mul(&scale)?;
        let negative = scaled.signum() < 0;
        let magnitude = if negative { scaled.neg() } else { scaled };
        let mut whole = magnitude.floor();
        if round {
            let frac = magnitude.sub(&whole)?;
            if frac.cmp_q(&Q::from_i128(1, 2)) != Ordering::Less {
                whole = whole.add(&Q::one())?;
            }
        }
        let whole = if negative { whole.neg() } else { whole };
        whole.div(&scale).expect("scale is not zero")
    }
}

impl PartialEq for Q {
    fn eq(&self, o: &Q) -> bool {
        match (self, o) {
            (Q::S(a, b), Q::S(c, d)) => a == c && b == d,
            // Both are reduced and small values are always held small.
            (Q::B(a), Q::B(b)) => a == b,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Square-free parts and small factorisations
// ---------------------------------------------------------------------------------------------

fn isqrt_u64(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r.saturating_mul(r) > n {
        r -= 1;
    }
    while (r + 1).saturating_mul(r + 1) <= n {
        r += 1;
    }
    r
}

/// `n = s² · m` with `m` square-free: `(s, m)`, for `1 <= n <= 10^12`.
pub fn squarefree_split(n: u64) -> Option<(u64, u64)> {
    if n == 0 || n > MAX_RADICAND {
        return None;
    }
    let (mut s, mut m, mut r) = (1u64, 1u64, n);
    let mut p = 2u64;
    // Once p³ > r, every prime below p is gone, so r is 1, a prime, a prime's square or a
    // product of two distinct primes.
    while p * p * p <= r {
        if r.is_multiple_of(p) {
            let mut e = 0;
            while r % p == 0 {
                r /= p;
                e += 1;
            }
            s *= p.pow(e / 2);
            if e % 2 == 1 {
                m *= p;
            }
        }
        p += if p == 2 { 1 } else { 2 };
    }
    let t = isqrt_u64(r);
    if r > 1 && t * t == r {
        s *= t;
    } else {
        m *= r;
    }
    Some((s, m))
}

/// The prime factors of a square-free `m >= 2`, or `None` when it is too large to factor here.
fn prime_factors(m: u64, out: &mut Vec<i64>) -> Option<()> {
    // At most 5,000 trial divisions.
    if m > 100_000_000 {
        return None;
    }
    let mut r = m;
    let mut p = 2u64;
    while p * p <= r {
        if r.is_multiple_of(p) {
            out.push(p as i64);
            r /= p;
        }
        p += if p == 2 { 1 } else { 2 };
    }
    if r > 1 {
        out.push(r as i64);
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------
// Surds
// ---------------------------------------------------------------------------------------------

/// An exact element of Q(√m₁, …, i): `Σ cₖ·√mₖ`, radicands square-free, distinct, sorted, non-zero
/// coefficients; `m = 1` is the rational part and `m = -1` is `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Surd(pub Vec<(i64, Q)>);

impl Surd {
    fn from_q(q: Q) -> Surd {
        if q.is_zero() { Surd(Vec::new()) } else { Surd(vec![(1, q)]) }
    }

    /// The value, as a rational when it has no radical left.
    fn into_val(self) -> Val {
        match self.0.len() {
            0 => Val::Q(Q::zero()),
            1 if self.0[0].0 == 1 => Val::Q(self.0.into_iter().next().expect("one term").1),
            _ => Val::Surd(self),
        }
    }

    fn add(&self, o: &Surd) -> Result<Surd, TooBig> {
        let (a, b) = (&self.0, &o.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let pick = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match pick {
                Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                Ordering::Equal => {
                    let c = a[i].1.add(&b[j].1)?;
                    if !c.is_zero() {
                        out.push((a[i].0, c));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(Surd(out))
    }

    fn neg(&self) -> Surd {
        Surd(self.0.iter().map(|(m, c)| (*m, c.neg())).collect())
    }

    fn scale(&self, q: &Q) -> Result<Surd, TooBig> {
        if q.is_zero() {
            return Ok(Surd(Vec::new()));
        }
        Ok(Surd(self.0.iter().map(|(m, c)| Ok((*m, c.mul(q)?))).collect::<Result<_, TooBig>>()?))
    }

    fn mul(&self, o: &Surd) -> Result<Surd, TooBig> {
        if self.0.len() * o.0.len() > MAX_SURD_TERMS * 4 {
            return Err(TooBig);
        }
        let mut terms: Vec<(i64, Q)> = Vec::with_capacity(self.0.len() * o.0.len());
        for (m1, c1) in &self.0 {
            for (m2, c2) in &o.0 {
                // √m1·√m2 = g·√(m1 m2 / g²) with g = gcd(|m1|, |m2|); i·i = -1.
                let g = gcd_u64(m1.unsigned_abs(), m2.unsigned_abs()) as i64;
                let (a, b) = (m1 / g, m2 / g);
                let m = a.checked_mul(b).ok_or(TooBig)?;
                let mut coef = c1.mul(c2)?.mul(&Q::int(g))?;
                if *m1 < 0 && *m2 < 0 {
                    // √m1·√m2 = i√|m1|·i√|m2| = -√(|m1 m2|); m is positive here. With one
                    // negative radicand m is negative, as it should be.
                    coef = coef.neg();
                }
                terms.push((m, coef));
            }
        }
        terms.sort_by_key(|t| t.0);
        let mut out: Vec<(i64, Q)> = Vec::with_capacity(terms.len());
        for (m, c) in terms {
            match out.last_mut() {
                Some((lm, lc)) if *lm == m => *lc = lc.add(&c)?,
                _ => out.push((m, c)),
            }
        }
        out.retain(|t| !t.1.is_zero());
        if out.len() > MAX_SURD_TERMS {
            return Err(TooBig);
        }
        Ok(Surd(out))
    }

    /// The surd with `√p` replaced by `-√p` (`p = -1`: `i` by `-i`).
    fn conjugate(&self, p: i64) -> Surd {
        Surd(
            self.0
                .iter()
                .map(|(m, c)| {
                    let flips = if p == -1 { *m < 0 } else { m % p == 0 };
                    (*m, if flips { c.neg() } else { c.clone() })
                })
                .collect(),
        )
    }

    /// `1 / self` by conjugating away one prime radicand (and `i`) at a time.
    fn recip(&self) -> Option<Result<Surd, TooBig>> {
        if self.0.is_empty() {
            return None;
        }
        let mut num = Surd::from_q(Q::one());
        let mut den = self.clone();
        for _ in 0..8 {
            if den.0.iter().all(|t| t.0 == 1) {
                let q = den.0.first().map(|t| t.1.clone())?;
                return Some(num.scale(&q.recip()?));
            }
            // i first (it negates every negative radicand at once), then one prime at a time.
            let p = if den.0.iter().any(|t| t.0 < 0) {
                -1
            } else {
                let m = den.0.iter().find(|t| t.0 != 1).expect("a radical term").0;
                let mut primes = Vec::new();
                if prime_factors(m.unsigned_abs(), &mut primes).is_none() {
                    return Some(Err(TooBig));
                }
                primes[0]
            };
            let c = den.conjugate(p);
            num = match num.mul(&c) {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            den = match den.mul(&c) {
                Ok(d) => d,
                Err(e) => return Some(Err(e)),
            };
            if den.0.is_empty() {
                // A zero divisor in disguise cannot happen for a non-zero surd; be safe.
                return None;
            }
        }
        Some(Err(TooBig))
    }

    fn to_approx(&self) -> Approx {
        let mut out = Approx::exact(0.0);
        for (m, c) in &self.0 {
            let r = (m.unsigned_abs() as f64).sqrt();
            let v = c.to_f64() * r;
            let t = if *m < 0 { Approx { re: 0.0, im: v, err: 2.0 * EPS * v.abs() } } else { Approx::rounded(v) };
            out = out.add(&t);
        }
        out
    }

    /// Whether every radicand is positive (the value is real).
    fn is_real(&self) -> bool {
        self.0.iter().all(|t| t.0 > 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Approximations
// ---------------------------------------------------------------------------------------------

/// A complex double `re + i·im` whose distance to the true value is at most `err`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Approx {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
    /// Bound on the error (of the complex value's distance to the exact one).
    pub err: f64,
}

impl Approx {
    /// A value known exactly.
    pub fn exact(v: f64) -> Approx {
        Approx { re: v, im: 0.0, err: 0.0 }
    }

    /// A real value off by at most one rounding.
    pub fn rounded(v: f64) -> Approx {
        Approx { re: v, im: 0.0, err: EPS * v.abs() }
    }

    /// A real value off by one rounding plus `err`.
    pub fn real(v: f64, err: f64) -> Approx {
        Approx { re: v, im: 0.0, err: err + EPS * v.abs() }
    }

    /// `|self|`.
    pub fn abs(&self) -> f64 {
        self.re.hypot(self.im)
    }

    /// Whether every part is finite.
    pub fn is_finite(&self) -> bool {
        self.re.is_finite() && self.im.is_finite() && self.err.is_finite()
    }

    /// Whether the value is real as far as its error tells.
    pub fn is_real(&self) -> bool {
        self.im.abs() <= self.err
    }

    fn with_rounding(mut self) -> Approx {
        self.err += 2.0 * EPS * self.abs();
        self
    }

    /// `self + o`.
    pub fn add(&self, o: &Approx) -> Approx {
        Approx { re: self.re + o.re, im: self.im + o.im, err: self.err + o.err }.with_rounding()
    }

    /// `-self`.
    pub fn neg(&self) -> Approx {
        Approx { re: -self.re, im: -self.im, err: self.err }
    }

    /// `self * o`.
    pub fn mul(&self, o: &Approx) -> Approx {
        let err = self.abs() * o.err + o.abs() * self.err + self.err * o.err;
        Approx { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re, err }.with_rounding()
    }

    /// `self / o`, `None` when `o` may be zero.
    pub fn div(&self, o: &Approx) -> Option<Approx> {
        let d = o.abs();
        if d <= o.err || d == 0.0 {
            return None;
        }
        let n2 = o.re * o.re + o.im * o.im;
        let re = (self.re * o.re + self.im * o.im) / n2;
        let im = (self.im * o.re - self.re * o.im) / n2;
        let q = re.hypot(im);
        let err = (self.err + q * o.err) / (d - o.err);
        Some(Approx { re, im, err }.with_rounding())
    }

    /// The principal square root.
    pub fn sqrt(&self) -> Approx {
        let r = self.abs();
        if r == 0.0 {
            return Approx { re: 0.0, im: 0.0, err: self.err.sqrt() };
        }
        // Principal branch: re >= 0.
        let re = ((r + self.re) / 2.0).max(0.0).sqrt();
        let im_mag = ((r - self.re) / 2.0).max(0.0).sqrt();
        let im = if self.im < 0.0 { -im_mag } else { im_mag };
        let s = re.hypot(im);
        // |√(x+d) - √x| <= min(|d| / √|x|, √|d|).
        let err = if self.err == 0.0 { 0.0 } else { (self.err / s).min(self.err.sqrt() * 2.0) };
        Approx { re, im, err }.with_rounding()
    }

    /// Whether `self` and `o` may be the same number given their errors: their distance is
    /// within a safety multiple of the error bounds, plus a relative floor of 1e-13 against
    /// errors the bounds underestimate.
    pub fn close(&self, o: &Approx) -> bool {
        let d = (self.re - o.re).hypot(self.im - o.im);
        let scale = self.abs().max(o.abs());
        d <= 16.0 * (self.err + o.err) + 1e-13 * scale
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// What an expression evaluates to.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// An exact rational.
    Q(Q),
    /// An exact surd with at least one radical (never only a rational part).
    Surd(Surd),
    /// An approximation.
    Approx(Approx),
    /// `+∞` (`false`) or `-∞` (`true`).
    Inf(bool),
}

/// Why an operation has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoValue {
    /// Outside the domain: division by zero, the logarithm of zero, `∞ - ∞`, ...
    Undefined,
    /// Too large to compute (an exponent, a factorial, a double that overflows).
    TooLarge,
}

/// The result of an operation on values.
pub type ValResult = Result<Val, NoValue>;

fn approx_val(a: Approx) -> ValResult {
    if a.is_finite() { Ok(Val::Approx(a)) } else { Err(NoValue::TooLarge) }
}

impl Val {
    /// An integer value.
    pub fn int(n: i64) -> Val {
        Val::Q(Q::int(n))
    }

    /// The value as an approximation (`None` for infinities).
    pub fn to_approx(&self) -> Option<Approx> {
        match self {
            Val::Q(q) => {
                let v = q.to_f64();
                Some(if matches!(q, Q::S(n, 1) if n.unsigned_abs() < (1 << 53)) {
                    Approx::exact(v)
                } else {
                    Approx::real(v, 2.0 * EPS * v.abs())
                })
            }
            Val::Surd(s) => Some(s.to_approx()),
            Val::Approx(a) => Some(*a),
            Val::Inf(_) => None,
        }
    }

    fn surd(&self) -> Option<Surd> {
        match self {
            Val::Q(q) => Some(Surd::from_q(q.clone())),
            Val::Surd(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Whether the value is exact (rational or surd).
    pub fn is_exact(&self) -> bool {
        matches!(self, Val::Q(_) | Val::Surd(_))
    }

    /// The rational value, if it is one.
    pub fn as_q(&self) -> Option<&Q> {
        match self {
            Val::Q(q) => Some(q),
            _ => None,
        }
    }

    /// Whether the value is certainly zero.
    pub fn is_zero(&self) -> bool {
        match self {
            Val::Q(q) => q.is_zero(),
            _ => false,
        }
    }

    /// The sign of a real value, when it can be told: -1, 0 or 1.
    pub fn sign(&self) -> Option<i32> {
        match self {
            Val::Q(q) => Some(q.signum()),
            Val::Inf(neg) => Some(if *neg { -1 } else { 1 }),
            Val::Surd(s) if s.is_real() => {
                let a = s.to_approx();
                // A non-zero surd is far from zero compared with its rounding error.
                (a.re.abs() > 16.0 * a.err).then_some(if a.re < 0.0 { -1 } else { 1 })
            }
            Val::Approx(a) if a.is_real() => (a.re.abs() > 16.0 * a.err).then_some(if a.re < 0.0 { -1 } else { 1 }),
            _ => None,
        }
    }

    /// `self + o`.
    pub fn add(&self, o: &Val) -> ValResult {
        match (self, o) {
            (Val::Q(a), Val::Q(b)) => {
                if let Ok(q) = a.add(b) {
                    return Ok(Val::Q(q));
                }
            }
            (Val::Inf(a), Val::Inf(b)) => return if a == b { Ok(self.clone()) } else { Err(NoValue::Undefined) },
            (Val::Inf(_), other) | (other, Val::Inf(_)) => {
                let inf = if matches!(self, Val::Inf(_)) { self } else { o };
                return match other.sign() {
                    Some(_) => Ok(inf.clone()),
                    None => Err(NoValue::Undefined),
                };
            }
            _ => {}
        }
        if let (Some(a), Some(b)) = (self.surd(), o.surd())
            && let Ok(s) = a.add(&b)
        {
            return Ok(s.into_val());
        }
        approx_val(self.to_approx().expect("finite").add(&o.to_approx().expect("finite")))
    }

    /// `-self`.
    pub fn neg(&self) -> Val {
        match self {
            Val::Q(q) => Val::Q(q.neg()),
            Val::Surd(s) => Val::Surd(s.neg()),
            Val::Approx(a) => Val::Approx(a.neg()),
            Val::Inf(n) => Val::Inf(!n),
        }
    }

    /// `self - o`.
    pub fn sub(&self, o: &Val) -> ValResult {
        self.add(&o.neg())
    }

    /// `self * o`.
    pub fn mul(&self, o: &Val) -> ValResult {
        match (self, o) {
            (Val::Q(a), Val::Q(b)) => {
                if let Ok(q) = a.mul(b) {
                    return Ok(Val::Q(q));
                }
            }
            (Val::Inf(_), _) | (_, Val::Inf(_)) => {
                let sign = |v: &Val| v.sign().filter(|s| *s != 0);
                return match (sign(self), sign(o)) {
                    (Some(a), Some(b)) => Ok(Val::Inf(a * b < 0)),
                    _ => Err(NoValue::Undefined),
                };
            }
            _ => {}
        }
        if let (Some(a), Some(b)) = (self.surd(), o.surd())
            && let Ok(s) = a.mul(&b)
        {
            return Ok(s.into_val());
        }
        approx_val(self.to_approx().expect("finite").mul(&o.to_approx().expect("finite")))
    }

    /// `self / o`.
    pub fn div(&self, o: &Val) -> ValResult {
        match (self, o) {
            (_, Val::Q(b)) if b.is_zero() => return Err(NoValue::Undefined),
            (Val::Q(a), Val::Q(b)) => {
                if let Some(Ok(q)) = a.div(b) {
                    return Ok(Val::Q(q));
                }
            }
            (Val::Inf(_), Val::Inf(_)) => return Err(NoValue::Undefined),
            (Val::Inf(_), _) => return self.mul(o),
            (_, Val::Inf(_)) => return if self.sign().is_some() { Ok(Val::int(0)) } else { Err(NoValue::Undefined) },
            _ => {}
        }
        if let (Some(a), Some(b)) = (self.surd(), o.surd())
            && let Some(Ok(inv)) = b.recip()
            && let Ok(s) = a.mul(&inv)
        {
            return Ok(s.into_val());
        }
        match self.to_approx().expect("finite").div(&o.to_approx().expect("finite")) {
            Some(a) => approx_val(a),
            None => Err(NoValue::Undefined),
        }
    }

    /// `self ^ n` for an integer `n`.
    pub fn powi(&self, n: i64) -> ValResult {
        match self {
            Val::Q(q) => match q.pow(n) {
                None => Err(NoValue::Undefined),
                Some(Ok(p)) => Ok(Val::Q(p)),
                Some(Err(TooBig)) => {
                    if n.unsigned_abs() > 1 << 20 {
                        return Err(NoValue::TooLarge);
                    }
                    let a = Approx::rounded(q.to_f64());
                    approx_powi(&a, n)
                }
            },
            Val::Surd(s) => {
                if n.unsigned_abs() <= 64 {
                    let base = if n < 0 {
                        match s.recip() {
                            Some(Ok(r)) => Some(r),
                            _ => None,
                        }
                    } else {
                        Some(s.clone())
                    };
                    if let Some(base) = base
                        && let Ok(p) = surd_pow(&base, n.unsigned_abs())
                    {
                        return Ok(p.into_val());
                    }
                }
                approx_powi(&s.to_approx(), n)
            }
            Val::Approx(a) => approx_powi(a, n),
            Val::Inf(neg) => match n.cmp(&0) {
                Ordering::Less => Ok(Val::int(0)),
                Ordering::Equal => Err(NoValue::Undefined),
                Ordering::Greater => Ok(Val::Inf(*neg && n % 2 == 1)),
            },
        }
    }

    /// The principal square root.
    pub fn sqrt(&self) -> ValResult {
        match self {
            Val::Q(q) => match sqrt_q(q) {
                Some(v) => Ok(v),
                None => approx_val(Approx::rounded(q.to_f64()).sqrt()),
            },
            Val::Inf(false) => Ok(self.clone()),
            Val::Inf(true) => Err(NoValue::Undefined),
            other => approx_val(other.to_approx().expect("finite").sqrt()),
        }
    }

    /// Exact equality of two exact values (`None` when either is approximate).
    pub fn exact_eq(&self, o: &Val) -> Option<bool> {
        match (self, o) {
            (Val::Q(a), Val::Q(b)) => Some(a == b),
            (Val::Surd(a), Val::Surd(b)) => Some(a == b),
            (Val::Q(_), Val::Surd(_)) | (Val::Surd(_), Val::Q(_)) => Some(false),
            (Val::Inf(a), Val::Inf(b)) => Some(a == b),
            (Val::Inf(_), _) | (_, Val::Inf(_)) => Some(false),
            _ => None,
        }
    }
}

fn surd_pow(base: &Surd, mut n: u64) -> Result<Surd, TooBig> {
    let mut result = Surd::from_q(Q::one());
    let mut b = base.clone();
    while n > 0 {
        if n & 1 == 1 {
            result = result.mul(&b)?;
        }
        n >>= 1;
        if n > 0 {
            b = b.mul(&b)?;
        }
    }
    Ok(result)
}

fn approx_powi(a: &Approx, n: i64) -> ValResult {
    if n == 0 {
        return Ok(Val::int(1));
    }
    let mut result = Approx::exact(1.0);
    let mut b = if n < 0 {
        match Approx::exact(1.0).div(a) {
            Some(r) => r,
            None => return Err(NoValue::Undefined),
        }
    } else {
        *a
    };
    let mut k = n.unsigned_abs();
    while k > 0 {
        if k & 1 == 1 {
            result = result.mul(&b);
        }
        k >>= 1;
        if k > 0 {
            b = b.mul(&b);
        }
        if !result.is_finite() || !b.is_finite() {
            return Err(NoValue::TooLarge);
        }
    }
    approx_val(result)
}

/// The exact square root of a rational, when its radicand can be reduced.
fn sqrt_q(q: &Q) -> Option<Val> {
    if q.is_zero() {
        return Some(Val::Q(Q::zero()));
    }
    let (n, d) = q.parts();
    let (n_abs, d) = (n.abs().to_u64()?, d.to_u64()?);
    let (s1, m1) = squarefree_split(n_abs)?;
    let (s2, m2) = squarefree_split(d)?;
    // √(s1² m1 / (s2² m2)) = s1 / (s2 m2) · √(m1 m2); m1 and m2 are coprime, so m1 m2 is
    // square-free.
    let coef = Q::from_i128(s1 as i128, s2 as i128 * m2 as i128);
    let m = (m1 as i128) * (m2 as i128);
    if m > SMALL_MAX {
        return None;
    }
    let m = if n.is_negative() { -(m as i64) } else { m as i64 };
    if m == 1 {
        return Some(Val::Q(coef));
    }
    Some(Val::Surd(Surd(vec![(m, coef)])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Val {
        Val::Q(Q::from_i128(n as i128, d as i128))
    }

    #[test]
    fn small_rationals_reduce_and_promote() {
        let a = Q::from_i128(6, -4);
        assert_eq!(a, Q::S(-3, 2));
        let big = Q::int(1 << 61).mul(&Q::int(1 << 61)).unwrap();
        assert!(matches!(big, Q::B(_)));
        let back = big.div(&Q::int(1 << 61)).unwrap().unwrap();
        assert_eq!(back, Q::int(1 << 61));
        assert_eq!(Q::int(2).pow(100).unwrap().unwrap().bits(), 102);
        assert_eq!(Q::int(10).pow(100_000).unwrap(), Err(TooBig));
    }

    #[test]
    fn small_paths_agree_with_big_rationals() {
        // A fixed xorshift sequence: numerators and denominators up to 2^62, both signs.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pick = |next: &mut dyn FnMut() -> u64| {
            let bits = 1 + next() % 62;
            let n = (next() >> (64 - bits)) as i64 * if next().is_multiple_of(2) { 1 } else { -1 };
            let d = 1 + (next() >> (64 - (1 + next() % 62))) as i64;
            // Small denominators share factors often.
            let d = if next().is_multiple_of(3) { 1 + d % 36 } else { d };
            Q::from_i128(n as i128, d as i128)
        };
        for _ in 0..20_000 {
            let (a, b) = (pick(&mut next), pick(&mut next));
            let (ba, bb) = (a.to_big(), b.to_big());
            assert_eq!(a.add(&b).unwrap(), Q::from_big(&ba + &bb), "{a:?} + {b:?}");
            assert_eq!(a.sub(&b).unwrap(), Q::from_big(&ba - &bb), "{a:?} - {b:?}");
            assert_eq!(a.mul(&b).unwrap(), Q::from_big(&ba * &bb), "{a:?} * {b:?}");
            if !b.is_zero() {
                assert_eq!(a.div(&b).unwrap().unwrap(), Q::from_big(&ba / &bb), "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn squarefree_parts() {
        assert_eq!(squarefree_split(12), Some((2, 3)));
        assert_eq!(squarefree_split(1), Some((1, 1)));
        assert_eq!(squarefree_split(72), Some((6, 2)));
        assert_eq!(squarefree_split(49), Some((7, 1)));
        assert_eq!(squarefree_split(999_983 * 999_983), Some((999_983, 1)));
        assert_eq!(squarefree_split(2 * 999_983 * 999_983 / 2), Some((999_983, 1)));
    }

    #[test]
    fn surds_are_canonical() {
        let s12 = q(12, 1).sqrt().unwrap();
        let two_s3 = q(2, 1).mul(&q(3, 1).sqrt().unwrap()).unwrap();
        assert_eq!(s12.exact_eq(&two_s3), Some(true));
        // 1/√2 = √2/2
        let inv = q(1, 1).div(&q(2, 1).sqrt().unwrap()).unwrap();
        let half = q(2, 1).sqrt().unwrap().div(&q(2, 1)).unwrap();
        assert_eq!(inv.exact_eq(&half), Some(true));
        // (1+√2)² = 3 + 2√2
        let one_plus = q(1, 1).add(&q(2, 1).sqrt().unwrap()).unwrap();
        let sq = one_plus.powi(2).unwrap();
        let want = q(3, 1).add(&q(2, 1).mul(&q(2, 1).sqrt().unwrap()).unwrap()).unwrap();
        assert_eq!(sq.exact_eq(&want), Some(true));
        // 1/(√2+√3) = √3-√2
        let den = q(2, 1).sqrt().unwrap().add(&q(3, 1).sqrt().unwrap()).unwrap();
        let r = q(1, 1).div(&den).unwrap();
        let want = q(3, 1).sqrt().unwrap().sub(&q(2, 1).sqrt().unwrap()).unwrap();
        assert_eq!(r.exact_eq(&want), Some(true));
        // √-4 = 2i, i² = -1, 1/(1+i) = (1-i)/2
        let i = q(-1, 1).sqrt().unwrap();
        assert_eq!(q(-4, 1).sqrt().unwrap().exact_eq(&q(2, 1).mul(&i).unwrap()), Some(true));
        assert_eq!(i.mul(&i).unwrap().exact_eq(&q(-1, 1)), Some(true));
        let r = q(1, 1).div(&q(1, 1).add(&i).unwrap()).unwrap();
        let want = q(1, 2).sub(&q(1, 2).mul(&i).unwrap()).unwrap();
        assert_eq!(r.exact_eq(&want), Some(true));
        // √-2·√-3 = -√6
        let p = q(-2, 1).sqrt().unwrap().mul(&q(-3, 1).sqrt().unwrap()).unwrap();
        assert_eq!(p.exact_eq(&q(6, 1).sqrt().unwrap().neg()), Some(true));
    }

    #[test]
    fn places_round_and_truncate() {
        let third = Q::from_i128(1, 3);
        assert_eq!(third.to_places(3, true).unwrap(), Q::from_i128(333, 1000));
        let two_thirds = Q::from_i128(2, 3);
        assert_eq!(two_thirds.to_places(2, true).unwrap(), Q::from_i128(67, 100));
        assert_eq!(two_thirds.to_places(2, false).unwrap(), Q::from_i128(66, 100));
        assert_eq!(two_thirds.neg().to_places(2, true).unwrap(), Q::from_i128(-67, 100));
        assert_eq!(Q::int(1234).to_places(-2, true).unwrap(), Q::int(1200));
    }

    #[test]
    fn approximations_track_error() {
        let pi = Approx::rounded(std::f64::consts::PI);
        let s = Approx::real(pi.re.sin(), pi.err);
        assert!(s.close(&Approx::exact(0.0)));
        assert!(!Approx::rounded(1e-10).close(&Approx::exact(0.0)));
        assert!(!Approx::rounded(0.333).close(&Approx::rounded(1.0 / 3.0)));
    }
}
