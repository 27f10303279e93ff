//! Tokens of an answer written in LaTeX or plain text.
//!
//! One pass over the text. Spacing (`\,`, `\quad`, `~`, whitespace), sizing (`\left`, `\big`),
//! style (`\displaystyle`), box (`\boxed`, `\fbox`) commands and unescaped `$` are dropped;
//! number literals are read whole, with their thousands separators (`1,000`, `1{,}000`,
//! `1\,000`), decimals, exponents (`1.5e3`) and repeating parts (`0.\overline{3}`); `\text{…}`
//! becomes words; `^\circ` and `°` become a degree sign.

use num_bigint::BigInt;

use crate::limits::{MAX_DEPTH, MAX_DIGITS, MAX_TOKENS, Refusal};
use crate::num::Q;

/// A function written by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Exp,
    Ln,
    /// `\log`: base 10 unless a subscript gives one.
    Log,
    Abs,
}

impl Func {
    /// The inverse function, for `\sin^{-1}`.
    pub fn inverse(self) -> Option<Func> {
        Some(match self {
            Func::Sin => Func::Asin,
            Func::Cos => Func::Acos,
            Func::Tan => Func::Atan,
            _ => return None,
        })
    }
}

/// A matrix environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    /// `pmatrix`, `bmatrix`, `matrix`, `smallmatrix`, `Bmatrix`, `array`.
    Matrix,
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A number literal; `places` is `Some(k)` for a decimal written with `k` places after the
    /// point (an exponent shifts it: `1.5e3` has -2), `None` for an integer or repeating decimal.
    Num {
        value: Q,
        places: Option<i32>,
    },
    /// A variable: `x`, `x_1`, `theta`.
    Var(Box<str>),
    /// A word of text, lowercased: from `\text{…}` or a plain word of three or more letters.
    Word(Box<str>),
    Pi,
    E,
    I,
    Infty,
    /// `\mathbb{R}`: every real number.
    Reals,
    Plus,
    Minus,
    Times,
    Slash,
    Caret,
    Underscore,
    Bang,
    Pm,
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
    Ne,
    Comma,
    Semi,
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    /// `\{`
    LSet,
    /// `\}`
    RSet,
    LAngle,
    RAngle,
    LFloor,
    RFloor,
    LCeil,
    RCeil,
    Bar,
    Frac,
    Sqrt,
    Binom,
    Func(Func),
    Percent,
    Dollar,
    Degree,
    Cup,
    In,
    Empty,
    Amp,
    RowSep,
    Begin(Env),
    End(Env),
    And,
    Or,
    /// `\ldots` and friends: an answer the checker does not read.
    Ellipsis,
}

/// A token and whether whitespace came before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub space: bool,
}

/// Why the text could not be read into tokens.
#[derive(Clone, Debug, PartialEq)]
pub enum LexError {
    /// Something the checker does not read, named.
    Unsupported(String),
    /// A cap was hit.
    Refused(Refusal),
}

impl From<Refusal> for LexError {
    fn from(r: Refusal) -> Self {
        LexError::Refused(r)
    }
}

/// Commands that are dropped, with no argument.
const IGNORED: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "boxed",
    "fbox",
    "mathstrut",
    "quad",
    "qquad",
    "middle",
    "bf",
    "rm",
    "it",
];

const TEXT_COMMANDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textrm",
    "textsf",
    "texttt",
    "textnormal",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "mbox",
    "emph",
    "hbox",
    "textup",
    "operatorname",
];

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

fn func_named(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "cot" => Func::Cot,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "exp" => Func::Exp,
        "ln" => Func::Ln,
        "log" => Func::Log,
        "abs" => Func::Abs,
        _ => return None,
    })
}

/// Words of units, lowercased, that a plain-text answer may end with.
pub const UNIT_WORDS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "meter",
    "meters",
    "metre",
    "metres",
    "centimeter",
    "centimeters",
    "millimeter",
    "millimeters",
    "kilometer",
    "kilometers",
    "in",
    "inch",
    "inches",
    "ft",
    "foot",
    "feet",
    "yd",
    "yard",
    "yards",
    "mi",
    "mile",
    "miles",
    "g",
    "gram",
    "grams",
    "kg",
    "kilogram",
    "kilograms",
    "lb",
    "lbs",
    "pound",
    "pounds",
    "oz",
    "ounce",
    "ounces",
    "s",
    "sec",
    "second",
    "seconds",
    "min",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "unit",
    "units",
    "square",
    "sq",
    "cubic",
    "degree",
    "degrees",
    "mph",
    "l",
    "liter",
    "liters",
    "litre",
    "litres",
    "ml",
    "gallon",
    "gallons",
    "percent",
    "people",
    "students",
    "times",
    "ways",
    "points",
    "marbles",
];

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    out: Vec<Token>,
    space: bool,
    /// Bracket depth, for the thousands separator `,` (only at depth 0) and the nesting cap.
    depth: usize,
}

/// The tokens of `text`.
pub fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer { s: text, b: text.as_bytes(), i: 0, out: Vec::with_capacity(text.len() / 2 + 1), space: false, depth: 0 };
    lx.run()?;
    Ok(lx.out)
}

impl<'a> Lexer<'a> {
    fn push(&mut self, tok: Tok) -> Result<(), LexError> {
        if self.out.len() >= MAX_TOKENS {
            return Err(Refusal::TooManyTokens.into());
        }
        match tok {
            Tok::LParen | Tok::LBrack | Tok::LBrace | Tok::LSet | Tok::LAngle | Tok::LFloor | Tok::LCeil => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(Refusal::TooDeep.into());
                }
            }
            Tok::RParen | Tok::RBrack | Tok::RBrace | Tok::RSet | Tok::RAngle | Tok::RFloor | Tok::RCeil => {
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
        self.out.push(Token { tok, space: self.space });
        self.space = false;
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'~' => {
                    self.i += 1;
                    self.space = true;
                }
                // Math delimiters; `\$` is the currency sign.
                b'$' => self.i += 1,
                b'0'..=b'9' => self.number()?,
                b'.' if self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit) => self.number()?,
                b'\\' => self.command()?,
                b'a'..=b'z' | b'A'..=b'Z' => self.word()?,
                _ => self.symbol(c)?,
            }
        }
        Ok(())
    }

    fn symbol(&mut self, c: u8) -> Result<(), LexError> {
        let next = self.b.get(self.i + 1).copied();
        let (tok, len) = match c {
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'*' if next == Some(b'*') => (Tok::Caret, 2),
            b'*' => (Tok::Times, 1),
            b'/' => (Tok::Slash, 1),
            b'^' => {
                if let Some(len) = self.degree_after_caret() {
                    (Tok::Degree, len)
                } else {
                    (Tok::Caret, 1)
                }
            }
            b'_' => (Tok::Underscore, 1),
            b'!' if next == Some(b'=') => (Tok::Ne, 2),
            b'!' => (Tok::Bang, 1),
            b'=' if next == Some(b'=') => (Tok::Eq, 2),
            b'=' => (Tok::Eq, 1),
            b'<' if next == Some(b'=') => (Tok::Le, 2),
            b'<' => (Tok::Lt, 1),
            b'>' if next == Some(b'=') => (Tok::Ge, 2),
            b'>' => (Tok::Gt, 1),
            b',' => (Tok::Comma, 1),
            b';' => (Tok::Semi, 1),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBrack, 1),
            b']' => (Tok::RBrack, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'|' => (Tok::Bar, 1),
            b'&' => (Tok::Amp, 1),
            b'%' => (Tok::Percent, 1),
            // A final full stop, or one before a space.
            b'.' if next.is_none_or(|n| n.is_ascii_whitespace()) => {
                self.i += 1;
                return Ok(());
            }
            _ if c >= 0x80 => return self.unicode(),
            _ => return Err(LexError::Unsupported(format!("unexpected {:?}", c as char))),
        };
        self.i += len;
        self.push(tok)
    }

    fn unicode(&mut self) -> Result<(), LexError> {
        let ch = self.rest().chars().next().expect("not at the end");
        let tok = match ch {
            '−' | '–' | '—' => Tok::Minus,
            '×' | '·' | '⋅' | '∙' => Tok::Times,
            '÷' => Tok::Slash,
            '≤' | '⩽' => Tok::Le,
            '≥' | '⩾' => Tok::Ge,
            '≠' => Tok::Ne,
            '±' | '∓' => Tok::Pm,
            '°' => Tok::Degree,
            'π' => Tok::Pi,
            '∞' => Tok::Infty,
            '√' => Tok::Sqrt,
            '∪' => Tok::Cup,
            '∅' => Tok::Empty,
            '∈' => Tok::In,
            'ℝ' => Tok::Reals,
            '⟨' => Tok::LAngle,
            '⟩' => Tok::RAngle,
            '≈' => Tok::Eq,
            '\u{a0}' | '\u{2009}' | '\u{202f}' => {
                self.i += ch.len_utf8();
                self.space = true;
                return Ok(());
            }
            _ => return Err(LexError::Unsupported(format!("unexpected {ch:?}"))),
        };
        self.i += ch.len_utf8();
        self.push(tok)
    }

    /// After a `^`: the length of `^\circ`, `^{\circ}` (spaces allowed), if that is what follows.
    fn degree_after_caret(&self) -> Option<usize> {
        let rest = &self.s[self.i + 1..];
        let t = rest.trim_start();
        let skipped = rest.len() - t.len();
        if let Some(after) = t.strip_prefix("\\circ")
            && !after.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            return Some(1 + skipped + 5);
        }
        let inner = t.strip_prefix('{')?;
        let t2 = inner.trim_start();
        let after = t2.strip_prefix("\\circ")?;
        let t3 = after.trim_start();
        t3.strip_prefix('}')?;
        Some(1 + skipped + 1 + (inner.len() - t2.len()) + 5 + (after.len() - t3.len()) + 1)
    }

    fn digits(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// A thousands separator followed by exactly three digits at `self.i`: the separator's length.
    fn thousands_separator(&self) -> Option<usize> {
        let rest = self.rest();
        let len = if rest.starts_with("{,}") || rest.starts_with(",\\!") {
            3
        } else if rest.starts_with("\\,") || rest.starts_with("\\ ") {
            2
        } else if rest.starts_with(',') && self.depth == 0 {
            1
        } else {
            return None;
        };
        let after = &rest.as_bytes()[len..];
        let three = after.len() >= 3 && after[..3].iter().all(u8::is_ascii_digit);
        let fourth = after.get(3).is_some_and(u8::is_ascii_digit);
        (three && !fourth).then_some(len)
    }

    fn number(&mut self) -> Result<(), LexError> {
        let mut int = String::new();
        let first = self.digits();
        int.push_str(first);
        if (1..=3).contains(&first.len()) && !(first.starts_with('0')) {
            while let Some(len) = self.thousands_separator() {
                self.i += len;
                int.push_str(self.digits());
            }
        }
        let mut frac = "";
        let mut repeating = None;
        let mut decimal = false;
        if self.peek() == Some(b'.') {
            let after = &self.s[self.i + 1..];
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                self.i += 1;
                frac = self.digits();
                decimal = true;
            }
            // `0.\overline{3}`, `0.1\overline{6}`
            let after = &self.s[self.i..];
            let after = after.strip_prefix('.').unwrap_or(after);
            if let Some(body) = after.strip_prefix("\\overline{").or_else(|| after.strip_prefix("\\overline {")) {
                let end = body.find('}').ok_or_else(|| LexError::Unsupported("unclosed \\overline".into()))?;
                let digits = body[..end].trim();
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(LexError::Unsupported("\\overline over something other than digits".into()));
                }
                repeating = Some(digits);
                self.i = self.s.len() - body.len() + end + 1;
            }
        }
        let mut exp: i64 = 0;
        let mut has_exp = false;
        if matches!(self.peek(), Some(b'e' | b'E')) && repeating.is_none() {
            let after = &self.b[self.i + 1..];
            let sign = usize::from(matches!(after.first(), Some(b'+' | b'-')));
            if after.get(sign).is_some_and(u8::is_ascii_digit) {
                let negative = after.first() == Some(&b'-');
                self.i += 1 + sign;
                let e = self.digits();
                if e.len() > 6 {
                    return Err(Refusal::ExponentTooLarge.into());
                }
                exp = e.parse::<i64>().expect("digits");
                if negative {
                    exp = -exp;
                }
                has_exp = true;
            }
        }
        if int.len() + frac.len() + repeating.map_or(0, str::len) > MAX_DIGITS {
            return Err(Refusal::NumberTooLong.into());
        }
        let (value, places) = match repeating {
            Some(rep) => (repeating_value(&int, frac, rep), None),
            None => {
                let value = decimal_value(&int, frac, exp)?;
                let places = (decimal || has_exp).then(|| frac.len() as i32 - exp as i32);
                (value, places)
            }
        };
        self.push(Tok::Num { value, places })
    }

    fn command(&mut self) -> Result<(), LexError> {
        let rest = &self.b[self.i + 1..];
        let Some(&first) = rest.first() else {
            return Err(LexError::Unsupported("a lone backslash".into()));
        };
        if !first.is_ascii_alphabetic() {
            if !first.is_ascii() {
                return Err(LexError::Unsupported("a backslash before a non-ASCII character".into()));
            }
            self.i += 2;
            let tok = match first {
                b',' | b';' | b':' | b'!' | b' ' | b'>' => {
                    self.space = true;
                    return Ok(());
                }
                b'{' => Tok::LSet,
                b'}' => Tok::RSet,
                b'$' => Tok::Dollar,
                b'%' => Tok::Percent,
                b'\\' => Tok::RowSep,
                b'|' => Tok::Bar,
                b'(' | b')' | b'[' | b']' => return Ok(()),
                _ => return Err(LexError::Unsupported(format!("\\{}", first as char))),
            };
            return self.push(tok);
        }
        let len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let name = &self.s[self.i + 1..self.i + 1 + len];
        self.i += 1 + len;
        if IGNORED.contains(&name) {
            return Ok(());
        }
        if TEXT_COMMANDS.contains(&name) {
            let content = self.group()?;
            return self.text(content, name == "operatorname");
        }
        if GREEK.contains(&name) {
            return self.variable(name);
        }
        if let Some(f) = func_named(name) {
            return self.push(Tok::Func(f));
        }
        let tok = match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => Tok::Frac,
            "sqrt" => Tok::Sqrt,
            "binom" | "dbinom" | "tbinom" => Tok::Binom,
            "cdot" | "times" | "ast" => Tok::Times,
            "div" => Tok::Slash,
            "pm" | "mp" => Tok::Pm,
            "le" | "leq" | "leqslant" => Tok::Le,
            "ge" | "geq" | "geqslant" => Tok::Ge,
            "lt" => Tok::Lt,
            "gt" => Tok::Gt,
            "ne" | "neq" => Tok::Ne,
            "approx" | "eq" => Tok::Eq,
            "infty" | "infinity" => Tok::Infty,
            "pi" => Tok::Pi,
            "cup" => Tok::Cup,
            "in" => Tok::In,
            "emptyset" | "varnothing" => Tok::Empty,
            "lbrace" => Tok::LSet,
            "rbrace" => Tok::RSet,
            "langle" => Tok::LAngle,
            "rangle" => Tok::RAngle,
            "lfloor" => Tok::LFloor,
            "rfloor" => Tok::RFloor,
            "lceil" => Tok::LCeil,
            "rceil" => Tok::RCeil,
            "vert" | "lvert" | "rvert" | "mid" => Tok::Bar,
            "circ" | "degree" => Tok::Degree,
            "ldots" | "dots" | "cdots" => Tok::Ellipsis,
            "and" => Tok::And,
            "mathbb" => {
                let content = self.group()?;
                if content.trim() == "R" {
                    Tok::Reals
                } else {
                    return Err(LexError::Unsupported(format!("\\mathbb{{{content}}}")));
                }
            }
            "hspace" | "vspace" | "phantom" | "color" => {
                self.group()?;
                return Ok(());
            }
            "begin" | "end" => {
                let env = self.group()?.trim();
                let kind = match env {
                    "pmatrix" | "bmatrix" | "Bmatrix" | "matrix" | "smallmatrix" | "array" => Env::Matrix,
                    other => return Err(LexError::Unsupported(format!("\\{name}{{{other}}}"))),
                };
                if name == "begin" {
                    if env == "array" {
                        // The column specification.
                        self.group()?;
                    }
                    Tok::Begin(kind)
                } else {
                    Tok::End(kind)
                }
            }
            other => return Err(LexError::Unsupported(format!("\\{other}"))),
        };
        self.push(tok)
    }

    /// The raw text of the `{…}` group at the cursor (spaces before it skipped), braces balanced.
    fn group(&mut self) -> Result<&'a str, LexError> {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        if self.peek() != Some(b'{') {
            // A one-character argument: `\text x` is rare, `\mathbb R` is not.
            let ch = self.rest().chars().next().ok_or_else(|| LexError::Unsupported("missing argument".into()))?;
            let start = self.i;
            self.i += ch.len_utf8();
            return Ok(&self.s[start..self.i]);
        }
        let start = self.i + 1;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'\\' => self.i += 1,
                b'{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(Refusal::TooDeep.into());
                    }
                }
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(&self.s[start..self.i - 1]);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(LexError::Unsupported("unbalanced braces".into()))
    }

    /// The tokens of a `\text{…}` group: a connective, a one-letter symbol, or words.
    fn text(&mut self, content: &'a str, operator: bool) -> Result<(), LexError> {
        let t = content.trim();
        if t.is_empty() {
            self.space = true;
            return Ok(());
        }
        if operator && let Some(f) = func_named(t) {
            return self.push(Tok::Func(f));
        }
        match t {
            "and" | "," => return self.push(Tok::And),
            "or" => return self.push(Tok::Or),
            "e" => return self.push(Tok::E),
            "i" => return self.push(Tok::I),
            _ => {}
        }
        // `\text{ m}` (a space before the letter, the way units are written) is the unit metre,
        // `\text{m}` a symbol.
        if t.len() == 1 && content.starts_with(char::is_whitespace) && UNIT_WORDS.contains(&t.to_ascii_lowercase().as_str()) {
            return self.push(Tok::Word(t.to_ascii_lowercase().into()));
        }
        if t.len() == 1 && t.as_bytes()[0].is_ascii_alphabetic() {
            return self.push(Tok::Var(t.into()));
        }
        // Text with math inside (`\text{ cm}^2` is outside): one word per chunk.
        for word in t.split_whitespace() {
            let w = word.to_lowercase();
            let tok = match w.as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                _ => Tok::Word(w.into()),
            };
            self.push(tok)?;
        }
        Ok(())
    }

    fn variable(&mut self, name: &str) -> Result<(), LexError> {
        // A subscript makes a new name: `x_1`, `a_{n}`.
        if self.peek() == Some(b'_') {
            let save = self.i;
            self.i += 1;
            let sub = self.group()?;
            let sub = sub.trim();
            if !sub.is_empty() && sub.bytes().all(|c| c.is_ascii_alphanumeric()) {
                let full = format!("{name}_{sub}");
                return self.push(Tok::Var(full.into()));
            }
            self.i = save;
        }
        self.push(Tok::Var(name.into()))
    }

    /// A run of ASCII letters outside a command: a function or constant name, a connective, a
    /// word, or letters multiplied together (`xy`).
    fn word(&mut self) -> Result<(), LexError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        let run = &self.s[start..self.i];
        let lower = run.to_ascii_lowercase();
        if let Some(f) = func_named(&lower) {
            return self.push(Tok::Func(f));
        }
        let tok = match lower.as_str() {
            "sqrt" => Some(Tok::Sqrt),
            "pi" => Some(Tok::Pi),
            "inf" | "infty" | "infinity" | "oo" => Some(Tok::Infty),
            "and" => Some(Tok::And),
            "or" => Some(Tok::Or),
            _ => None,
        };
        if let Some(tok) = tok {
            return self.push(tok);
        }
        if run.len() >= 2 && UNIT_WORDS.contains(&lower.as_str()) || run.len() >= 3 {
            return self.push(Tok::Word(lower.into()));
        }
        // One or two letters: symbols multiplied together.
        let letters = &self.s[start..self.i];
        self.i = start;
        for (k, c) in letters.char_indices() {
            self.i = start + k + 1;
            match c {
                'e' => self.push(Tok::E)?,
                'i' => self.push(Tok::I)?,
                _ => {
                    let name = &letters[k..k + 1];
                    if k + 1 == letters.len() {
                        self.variable(name)?;
                    } else {
                        self.push(Tok::Var(name.into()))?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn pow10(n: usize) -> BigInt {
    num_traits::pow(BigInt::from(10u32), n)
}

/// `int.frac × 10^exp` exactly.
fn decimal_value(int: &str, frac: &str, exp: i64) -> Result<Q, LexError> {
    let digits_len = int.len() + frac.len();
    if digits_len <= 18 && exp == 0 {
        let mut n: i64 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            n = n * 10 + (c - b'0') as i64;
        }
        return Ok(Q::from_i128(n as i128, 10i128.pow(frac.len() as u32)));
    }
    let mut all = String::with_capacity(digits_len);
    all.push_str(int);
    all.push_str(frac);
    let n: BigInt = if all.is_empty() { BigInt::from(0) } else { all.parse().expect("digits") };
    let shift = exp - frac.len() as i64;
    if shift.unsigned_abs() > 4000 {
        return Err(Refusal::ExponentTooLarge.into());
    }
    let q = if shift >= 0 {
        Q::from_bigint(n * pow10(shift as usize))
    } else {
        Q::from_big(num_rational::BigRational::new(n, pow10((-shift) as usize)))
    };
    Ok(q)
}

/// `int.frac(rep)(rep)…` exactly.
fn repeating_value(int: &str, frac: &str, rep: &str) -> Q {
    // x = (int frac rep - int frac) / (10^len(frac) · (10^len(rep) - 1))
    let parse = |s: &str| -> BigInt { if s.is_empty() { BigInt::from(0) } else { s.parse().expect("digits") } };
    let whole = parse(&format!("{int}{frac}{rep}"));
    let head = parse(&format!("{int}{frac}"));
    let den = pow10(frac.len()) * (pow10(rep.len()) - 1);
    Q::from_big(num_rational::BigRational::new(whole - head, den))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn num(n: i64, d: i64, places: Option<i32>) -> Tok {
        Tok::Num { value: Q::from_i128(n as i128, d as i128), places }
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("1,000"), vec![num(1000, 1, None)]);
        assert_eq!(toks("1{,}000{,}000"), vec![num(1_000_000, 1, None)]);
        assert_eq!(toks("1\\,000"), vec![num(1000, 1, None)]);
        assert_eq!(toks("1, 2"), vec![num(1, 1, None), Tok::Comma, num(2, 1, None)]);
        assert_eq!(toks("(1,000)"), vec![Tok::LParen, num(1, 1, None), Tok::Comma, num(0, 1, None), Tok::RParen]);
        assert_eq!(toks("0.50"), vec![num(1, 2, Some(2))]);
        assert_eq!(toks(".5"), vec![num(1, 2, Some(1))]);
        assert_eq!(toks("1.5e3"), vec![num(1500, 1, Some(-2))]);
        assert_eq!(toks("2E-3"), vec![num(2, 1000, Some(3))]);
        assert_eq!(toks("0.\\overline{3}"), vec![num(1, 3, None)]);
        assert_eq!(toks("0.1\\overline{6}"), vec![num(1, 6, None)]);
        assert_eq!(toks("1.\\overline{142857}"), vec![num(8, 7, None)]);
        assert_eq!(toks("5."), vec![num(5, 1, None)]);
        assert!(matches!(lex(&"9".repeat(MAX_DIGITS + 1)), Err(LexError::Refused(Refusal::NumberTooLong))));
        assert!(matches!(lex("1e9999999"), Err(LexError::Refused(Refusal::ExponentTooLarge))));
    }

    #[test]
    fn commands_and_words() {
        assert_eq!(toks("\\dfrac{1}{2}")[0], Tok::Frac);
        assert_eq!(toks("30^\\circ"), vec![num(30, 1, None), Tok::Degree]);
        assert_eq!(toks("30^{\\circ}"), vec![num(30, 1, None), Tok::Degree]);
        assert_eq!(toks("5\\text{ cm}"), vec![num(5, 1, None), Tok::Word("cm".into())]);
        assert_eq!(toks("1 \\text{ or } 2"), vec![num(1, 1, None), Tok::Or, num(2, 1, None)]);
        assert_eq!(toks("xy"), vec![Tok::Var("x".into()), Tok::Var("y".into())]);
        assert_eq!(toks("x_1 + a_{n}"), vec![Tok::Var("x_1".into()), Tok::Plus, Tok::Var("a_n".into())]);
        assert_eq!(toks("\\theta"), vec![Tok::Var("theta".into())]);
        assert_eq!(toks("sqrt(2)*pi"), vec![Tok::Sqrt, Tok::LParen, num(2, 1, None), Tok::RParen, Tok::Times, Tok::Pi]);
        assert_eq!(toks("Monday"), vec![Tok::Word("monday".into())]);
        assert_eq!(toks("\\left( 1 \\right]"), vec![Tok::LParen, num(1, 1, None), Tok::RBrack]);
        assert_eq!(toks("$\\$5$"), vec![Tok::Dollar, num(5, 1, None)]);
        assert!(matches!(lex("\\foo"), Err(LexError::Unsupported(_))));
        assert!(matches!(lex("\\é"), Err(LexError::Unsupported(_))));
        assert!(matches!(lex("x \\"), Err(LexError::Unsupported(_))));
        let deep = "{".repeat(MAX_DEPTH + 1);
        assert!(matches!(lex(&deep), Err(LexError::Refused(Refusal::TooDeep))));
    }
}
