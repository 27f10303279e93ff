// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

use std::borrow::Cow;

use super::TrimFast;
use super::normalize::{LATEX_WRAPPERS, latex_escape};

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
}
