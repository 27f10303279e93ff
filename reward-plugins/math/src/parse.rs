//! From tokens to an [`Answer`]: expressions in an arena ([`Ast`]), and the structure around
//! them (tuples, sets, lists, intervals, matrices, equations, inequalities, text).
//!
//! Recursive descent with a depth cap; every loop consumes a token, so reading is linear in the
//! number of tokens.
//!
//! Reading rules that decide meaning:
//! - `(a, b)` is a pair that is also the open interval; `[a, b]`, `(a, b]`, `[a, b)` are
//!   intervals; three or more items in `( )`, `[ ]` or `\langle \rangle` are a tuple;
//! - `\{…\}` is a set; items separated by `,`, `;`, `and`, `or` outside brackets are a list of
//!   solutions (unordered);
//! - `x = v` and `x \in S` (a lone variable on the left) are assignments, compared by their value;
//!   other equations compare as equations; `x > 3`, `-1 < x \le 2` (a lone variable, constant
//!   bounds) are intervals;
//! - a whole number directly followed by `\frac{p}{q}` of whole numbers (or `2 1/2` in plain
//!   text) is a mixed number, not a product;
//! - a trailing `\%`, `^\circ`, `\$` or words are the value's unit, kept aside;
//! - `\sin 2x` is `sin(2x)`, `\sin x \cos x` is a product of two functions, `\sin^2 x` is
//!   `(sin x)^2`, `\sin^{-1}` is `arcsin`, `\log_b`, `\log` is base 10, `\ln` base e.
//! - `a \pm b` stands for both `a + b` and `a - b`: an answer with `±` is the list of its
//!   sign choices.

use crate::lex::{self, Env, Func, LexError, Tok, Token};
use crate::limits::{MAX_ITEMS, MAX_PLUS_MINUS, MAX_RECURSION, MAX_VARIABLES, Refusal};
use crate::num::Q;

/// Index of a node in [`Ast::nodes`].
pub type Id = u32;

/// An expression node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An exact number (integer, fraction, repeating decimal).
    Num(Q),
    /// A decimal literal and its number of places.
    Dec(Q, i32),
    /// A variable, by index into [`Ast::vars`].
    Var(u32),
    Pi,
    E,
    I,
    Inf,
    Add(Id, Id),
    Mul(Id, Id),
    Neg(Id),
    Div(Id, Id),
    Pow(Id, Id),
    Sqrt(Id),
    /// `\sqrt[index]{radicand}`.
    Root(Id, Id),
    Func(Func, Id),
    /// `\log_{base} arg`.
    Log(Id, Id),
    Factorial(Id),
    Binom(Id, Id),
    Floor(Id),
    Ceil(Id),
    /// `x\%`: `x / 100`.
    Percent(Id),
    /// `x^\circ`: `x · π / 180`.
    Degrees(Id),
    /// `a ± b`: `a + b` when sign bit `k` of the evaluation is clear, `a - b` when set.
    Pm(u8, Id, Id),
}

/// The expressions of one answer.
#[derive(Clone, Debug, Default)]
pub struct Ast {
    /// All nodes; children come before their parents.
    pub nodes: Vec<Node>,
    /// Variable names.
    pub vars: Vec<Box<str>>,
    /// How many `±` signs there are.
    pub pm_count: u8,
}

impl Ast {
    fn push(&mut self, n: Node) -> Id {
        self.nodes.push(n);
        (self.nodes.len() - 1) as Id
    }

    /// The node `id`.
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id as usize]
    }

    /// Whether the expression at `id` mentions a variable. Linear in its size.
    pub fn has_vars(&self, id: Id) -> bool {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            match self.node(id) {
                Node::Var(_) => return true,
                Node::Num(_) | Node::Dec(..) | Node::Pi | Node::E | Node::I | Node::Inf => {}
                Node::Neg(a)
                | Node::Sqrt(a)
                | Node::Func(_, a)
                | Node::Factorial(a)
                | Node::Floor(a)
                | Node::Ceil(a)
                | Node::Percent(a)
                | Node::Degrees(a) => stack.push(*a),
                Node::Add(a, b)
                | Node::Mul(a, b)
                | Node::Div(a, b)
                | Node::Pow(a, b)
                | Node::Root(a, b)
                | Node::Log(a, b)
                | Node::Binom(a, b)
                | Node::Pm(_, a, b) => {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
        false
    }
}

/// Brackets of a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delim {
    /// `(` `)` (and `\langle` `\rangle`).
    Paren,
    /// `[` `]`.
    Brack,
}

/// One number-valued part of an answer: an expression and what was written around it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The expression.
    pub root: Id,
    /// Written with a percent sign (`root` is the number before it).
    pub percent: bool,
    /// Its unit, canonical (`cm`, `°`, `$`, or the words as written), if any.
    pub unit: Option<Box<str>>,
    /// Which `±` signs are `-` (bit k for sign k).
    pub signs: u8,
}

/// An interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub lo: Scalar,
    pub hi: Scalar,
    pub lo_closed: bool,
    pub hi_closed: bool,
}

/// Which way an inequality points once written `expr > 0` or `expr >= 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    Strict,
    Loose,
}

/// A whole answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Scalar(Scalar),
    /// An ordered tuple (a point, a vector), or a pair in parentheses (also an open interval).
    Tuple(Vec<Answer>, Delim),
    /// A set in braces: unordered.
    Set(Vec<Answer>),
    /// Items separated by commas or words outside brackets: a list of solutions, unordered.
    List(Vec<Answer>),
    Interval(Interval),
    /// `A \cup B \cup …`.
    Union(Vec<Answer>),
    Matrix {
        rows: usize,
        cols: usize,
        cells: Vec<Scalar>,
    },
    /// `x = value` or `x \in value`.
    Assign(Box<str>, Box<Answer>),
    /// An equation, as `lhs - rhs` (= 0).
    Equation(Id),
    /// An inequality, as `expr > 0` or `expr >= 0`.
    Relation(Id, Strictness),
    /// Text, normalised.
    Text(String),
}

/// An answer and its expressions.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub ast: Ast,
    pub answer: Answer,
}

/// Why an answer could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum ParseError {
    /// Not something the checker reads; the text says what.
    Syntax(String),
    /// A cap was hit.
    Refused(Refusal),
}

impl From<Refusal> for ParseError {
    fn from(r: Refusal) -> Self {
        ParseError::Refused(r)
    }
}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> Self {
        match e {
            LexError::Unsupported(s) => ParseError::Syntax(s),
            LexError::Refused(r) => ParseError::Refused(r),
        }
    }
}

type PResult<T> = Result<T, ParseError>;

fn syntax<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError::Syntax(msg.into()))
}

/// Reads an answer.
pub fn parse(text: &str) -> PResult<Parsed> {
    let toks = lex::lex(text)?;
    if toks.is_empty() {
        return syntax("empty answer");
    }
    let texty = matches!(toks[0].tok, Tok::Word(_));
    let has_words = toks.iter().any(|t| matches!(t.tok, Tok::Word(_)));
    let commas = comma_groups(&toks);
    let mut p = Parser { toks: &toks, pos: 0, ast: Ast::default(), commas, depth: 0, in_abs: 0, items: 0 };
    if texty {
        return Ok(text_answer(text, p));
    }
    match p.answer() {
        Ok(answer) => Ok(Parsed { ast: p.ast, answer }),
        Err(ParseError::Syntax(_)) if has_words => Ok(text_answer(text, Parser { ast: Ast::default(), ..p })),
        Err(e) => Err(e),
    }
}

/// Phrases that name the empty set.
const EMPTY_PHRASES: &[&str] = &["no solution", "no solutions", "no real solutions", "no real solution", "empty set", "the empty set"];

/// Phrases that name every real number.
const REALS_PHRASES: &[&str] = &["all real numbers", "all reals", "every real number", "all real x"];

/// A text answer; the phrases for the empty set and for every real number are those sets.
fn text_answer(text: &str, mut p: Parser<'_>) -> Parsed {
    let norm = reward_sdk::extract::normalize_text(text);
    let answer = if EMPTY_PHRASES.contains(&norm.as_str()) {
        Answer::Set(Vec::new())
    } else if REALS_PHRASES.contains(&norm.as_str()) {
        let (lo, hi) = (p.infinity(true), p.infinity(false));
        Answer::Interval(Interval { lo, hi, lo_closed: false, hi_closed: false })
    } else {
        Answer::Text(norm)
    };
    Parsed { ast: p.ast, answer }
}

/// For each opening bracket, whether a `,` or `;` sits directly inside it.
fn comma_groups(toks: &[Token]) -> Vec<bool> {
    let mut out = vec![false; toks.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen | Tok::LBrack | Tok::LBrace | Tok::LSet | Tok::LAngle | Tok::LFloor | Tok::LCeil | Tok::Begin(_) => stack.push(i),
            Tok::RParen | Tok::RBrack | Tok::RBrace | Tok::RSet | Tok::RAngle | Tok::RFloor | Tok::RCeil | Tok::End(_) => {
                stack.pop();
            }
            Tok::Comma | Tok::Semi => {
                if let Some(&open) = stack.last() {
                    out[open] = true;
                }
            }
            _ => {}
        }
    }
    out
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    ast: Ast,
    commas: Vec<bool>,
    depth: usize,
    /// Inside `|…|`: a `|` closes rather than opens.
    in_abs: usize,
    items: usize,
}

fn is_separator(t: &Tok) -> bool {
    matches!(t, Tok::Comma | Tok::Semi | Tok::And | Tok::Or)
}

fn is_relation(t: &Tok) -> bool {
    matches!(t, Tok::Eq | Tok::Lt | Tok::Gt | Tok::Le | Tok::Ge)
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&'t Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Option<&'t Tok> {
        let t = self.toks.get(self.pos).map(|t| &t.tok);
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> PResult<()> {
        if self.eat(tok) { Ok(()) } else { syntax(format!("expected {tok:?}, found {}", self.found())) }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("{t:?}"),
            None => "the end".into(),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_RECURSION { Err(Refusal::TooDeep.into()) } else { Ok(()) }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn count_item(&mut self) -> PResult<()> {
        self.items += 1;
        if self.items > MAX_ITEMS { Err(Refusal::TooManyItems.into()) } else { Ok(()) }
    }

    fn var(&mut self, name: &str) -> PResult<Id> {
        let idx = match self.ast.vars.iter().position(|v| &**v == name) {
            Some(i) => i,
            None => {
                if self.ast.vars.len() >= MAX_VARIABLES {
                    return Err(Refusal::TooManyVariables.into());
                }
                self.ast.vars.push(name.into());
                self.ast.vars.len() - 1
            }
        };
        Ok(self.ast.push(Node::Var(idx as u32)))
    }

    // -----------------------------------------------------------------------------------------
    // Structure
    // -----------------------------------------------------------------------------------------

    fn answer(&mut self) -> PResult<Answer> {
        let mut items = self.items_until(|_| false)?;
        if self.pos < self.toks.len() {
            return syntax(format!("unexpected {}", self.found()));
        }
        let answer = if items.len() == 1 { items.pop().expect("one item") } else { Answer::List(items) };
        self.expand_signs(answer)
    }

    /// Items separated by commas and connectives, up to a token `stop` accepts (not consumed).
    fn items_until(&mut self, stop: impl Fn(&Tok) -> bool) -> PResult<Vec<Answer>> {
        let mut items = Vec::new();
        loop {
            // Separators may repeat (`1, and 2`) and close a list (`1, 2,`).
            while self.peek().is_some_and(is_separator) && !items.is_empty() {
                self.pos += 1;
            }
            match self.peek() {
                None => break,
                Some(t) if stop(t) => break,
                _ => {}
            }
            self.count_item()?;
            items.push(self.item()?);
            match self.peek() {
                Some(t) if is_separator(t) => continue,
                _ => break,
            }
        }
        if items.is_empty() {
            return syntax("nothing where an answer was expected");
        }
        Ok(items)
    }

    fn item(&mut self) -> PResult<Answer> {
        self.enter()?;
        let result = self.item_inner();
        self.leave();
        result
    }

    fn item_inner(&mut self) -> PResult<Answer> {
        // `x = v`, `x \in S`: an assignment, compared by its value.
        if let (Some(Tok::Var(name)), Some(Tok::Eq | Tok::In)) = (self.peek(), self.peek_at(1)) {
            // Not `x = y = …` chains of expressions: the value is an item of its own.
            self.pos += 2;
            let value = self.item()?;
            return Ok(Answer::Assign(name.clone(), Box::new(value)));
        }
        if self.starts_structure() {
            let first = self.structure()?;
            if self.peek() != Some(&Tok::Cup) {
                return Ok(first);
            }
            let mut parts = vec![first];
            while self.eat(&Tok::Cup) {
                self.count_item()?;
                if !self.starts_structure() {
                    return syntax("\\cup of something other than intervals or sets");
                }
                parts.push(self.structure()?);
            }
            return Ok(Answer::Union(parts));
        }
        self.relation()
    }

    fn starts_structure(&self) -> bool {
        match self.peek() {
            Some(Tok::LSet | Tok::Empty | Tok::Reals | Tok::Begin(_)) => true,
            Some(Tok::LParen | Tok::LBrack | Tok::LAngle) => self.commas[self.pos],
            _ => false,
        }
    }

    fn structure(&mut self) -> PResult<Answer> {
        match self.bump() {
            Some(Tok::Empty) => Ok(Answer::Set(Vec::new())),
            Some(Tok::Reals) => {
                let (lo, hi) = (self.infinity(true), self.infinity(false));
                Ok(Answer::Interval(Interval { lo, hi, lo_closed: false, hi_closed: false }))
            }
            Some(Tok::LSet) => {
                if self.eat(&Tok::RSet) {
                    return Ok(Answer::Set(Vec::new()));
                }
                let items = self.items_until(|t| *t == Tok::RSet)?;
                self.expect(&Tok::RSet)?;
                Ok(Answer::Set(items))
            }
            Some(Tok::Begin(Env::Matrix)) => self.matrix(),
            Some(open @ (Tok::LParen | Tok::LBrack | Tok::LAngle)) => {
                let items = self.items_until(|t| matches!(t, Tok::RParen | Tok::RBrack | Tok::RAngle))?;
                let close = self.bump();
                let open_delim = if *open == Tok::LBrack { Delim::Brack } else { Delim::Paren };
                let close_delim = match close {
                    Some(Tok::RBrack) => Delim::Brack,
                    Some(Tok::RParen | Tok::RAngle) => Delim::Paren,
                    _ => return syntax("unclosed bracket"),
                };
                if *open == Tok::LAngle || items.len() != 2 {
                    if open_delim != close_delim {
                        return syntax("mismatched brackets around a tuple");
                    }
                    return Ok(Answer::Tuple(items, open_delim));
                }
                if open_delim == Delim::Paren && close_delim == Delim::Paren {
                    return Ok(Answer::Tuple(items, Delim::Paren));
                }
                let mut it = items.into_iter();
                match (it.next(), it.next()) {
                    (Some(Answer::Scalar(lo)), Some(Answer::Scalar(hi))) => Ok(Answer::Interval(Interval {
                        lo,
                        hi,
                        lo_closed: open_delim == Delim::Brack,
                        hi_closed: close_delim == Delim::Brack,
                    })),
                    (Some(a), Some(b)) if open_delim == close_delim => Ok(Answer::Tuple(vec![a, b], open_delim)),
                    _ => syntax("an interval whose ends are not numbers"),
                }
            }
            _ => syntax("expected a set, tuple, interval or matrix"),
        }
    }

    fn matrix(&mut self) -> PResult<Answer> {
        let mut cells = Vec::new();
        let mut rows = 0;
        let mut cols = None;
        loop {
            if self.eat(&Tok::End(Env::Matrix)) {
                break;
            }
            let mut n = 0;
            loop {
                self.count_item()?;
                cells.push(self.scalar()?);
                n += 1;
                if !self.eat(&Tok::Amp) {
                    break;
                }
            }
            rows += 1;
            match cols {
                None => cols = Some(n),
                Some(c) if c != n => return syntax("matrix rows of different lengths"),
                _ => {}
            }
            if self.eat(&Tok::RowSep) {
                continue;
            }
            self.expect(&Tok::End(Env::Matrix))?;
            break;
        }
        match cols {
            Some(cols) => Ok(Answer::Matrix { rows, cols, cells }),
            None => syntax("empty matrix"),
        }
    }

    fn infinity(&mut self, negative: bool) -> Scalar {
        let inf = self.ast.push(Node::Inf);
        let root = if negative { self.ast.push(Node::Neg(inf)) } else { inf };
        Scalar { root, percent: false, unit: None, signs: 0 }
    }

    /// An expression, possibly followed by relations: a value, an equation, an inequality.
    fn relation(&mut self) -> PResult<Answer> {
        let first = self.scalar()?;
        let mut chain: Vec<(Tok, Scalar)> = Vec::new();
        while let Some(t) = self.peek().filter(|t| is_relation(t)) {
            self.pos += 1;
            let rhs = self.scalar()?;
            chain.push((t.clone(), rhs));
            if chain.len() > 2 {
                return syntax("a chain of more than two relations");
            }
        }
        if chain.is_empty() {
            return Ok(Answer::Scalar(first));
        }
        let lone_var = |p: &Parser, s: &Scalar| match p.ast.node(s.root) {
            Node::Var(v) if s.unit.is_none() && !s.percent => Some(p.ast.vars[*v as usize].clone()),
            _ => None,
        };
        let constant = |p: &Parser, s: &Scalar| !p.ast.has_vars(s.root);
        if chain.len() == 1 {
            let (op, rhs) = chain.pop().expect("one relation");
            if op == Tok::Eq {
                if let Some(v) = lone_var(self, &first) {
                    return Ok(Answer::Assign(v, Box::new(Answer::Scalar(rhs))));
                }
                return Ok(Answer::Equation(self.difference(first.root, rhs.root)));
            }
            // `x > 3`, `3 < x`: intervals.
            let (var_left, var_right) = (lone_var(self, &first).is_some(), lone_var(self, &rhs).is_some());
            if var_left && constant(self, &rhs) || var_right && constant(self, &first) {
                // Written as `var op c`, then as an interval.
                let (c, op) = if var_left { (rhs, op) } else { (first, flip(&op)) };
                let closed = matches!(op, Tok::Le | Tok::Ge);
                let interval = if matches!(op, Tok::Gt | Tok::Ge) {
                    Interval { lo: c, hi: self.infinity(false), lo_closed: closed, hi_closed: false }
                } else {
                    Interval { lo: self.infinity(true), hi: c, lo_closed: false, hi_closed: closed }
                };
                return Ok(Answer::Interval(interval));
            }
            return Ok(self.inequality(first.root, &op, rhs.root));
        }
        // `a < x < b`: an interval when the middle is a lone variable and the ends constants.
        let (op2, c) = chain.pop().expect("two relations");
        let (op1, middle) = chain.pop().expect("two relations");
        let ascending = matches!(op1, Tok::Lt | Tok::Le) && matches!(op2, Tok::Lt | Tok::Le);
        let descending = matches!(op1, Tok::Gt | Tok::Ge) && matches!(op2, Tok::Gt | Tok::Ge);
        if lone_var(self, &middle).is_some() && constant(self, &first) && constant(self, &c) && (ascending || descending) {
            let (lo, hi, lo_op, hi_op) = if ascending { (first, c, op1, op2) } else { (c, first, op2, op1) };
            return Ok(Answer::Interval(Interval {
                lo,
                hi,
                lo_closed: matches!(lo_op, Tok::Le | Tok::Ge),
                hi_closed: matches!(hi_op, Tok::Le | Tok::Ge),
            }));
        }
        syntax("a chain of relations that is not an interval")
    }

    fn difference(&mut self, a: Id, b: Id) -> Id {
        let nb = self.ast.push(Node::Neg(b));
        self.ast.push(Node::Add(a, nb))
    }

    fn inequality(&mut self, lhs: Id, op: &Tok, rhs: Id) -> Answer {
        let strict = if matches!(op, Tok::Lt | Tok::Gt) { Strictness::Strict } else { Strictness::Loose };
        let expr = if matches!(op, Tok::Gt | Tok::Ge) { self.difference(lhs, rhs) } else { self.difference(rhs, lhs) };
        Answer::Relation(expr, strict)
    }

    /// An expression with its unit: `\$5`, `50\%`, `30^\circ`, `5\text{ cm}^2`.
    fn scalar(&mut self) -> PResult<Scalar> {
        let mut unit: Option<String> = None;
        if self.eat(&Tok::Dollar) {
            unit = Some("$".into());
        }
        let mut root = self.sum()?;
        let mut percent = false;
        // A percent or degree sign on the whole value is its unit.
        let (inner, negated) = match self.ast.node(root) {
            Node::Neg(a) => (*a, true),
            _ => (root, false),
        };
        match self.ast.node(inner).clone() {
            Node::Percent(x) => {
                percent = true;
                root = if negated { self.ast.push(Node::Neg(x)) } else { x };
            }
            Node::Degrees(x) => {
                unit = Some("°".into());
                root = if negated { self.ast.push(Node::Neg(x)) } else { x };
            }
            _ => {}
        }
        if self.eat(&Tok::Dollar) {
            unit.get_or_insert_with(|| "$".into());
        }
        // Unit words, maybe with a power (`\text{cm}^2`).
        let mut words = String::new();
        while let Some(Tok::Word(w)) = self.peek() {
            self.pos += 1;
            if !words.is_empty() {
                words.push(' ');
            }
            let canonical = canonical_unit(w);
            if canonical == "%" {
                percent = true;
                continue;
            }
            words.push_str(canonical);
            if self.peek() == Some(&Tok::Caret)
                && let Some(Tok::Num { value, places: None }) = self.peek_at(1)
            {
                self.pos += 2;
                words.push('^');
                words.push_str(&value.to_f64().to_string());
            }
        }
        if self.eat(&Tok::Percent) {
            percent = true;
        }
        if !words.is_empty() {
            unit = Some(match unit {
                Some(u) if u != words => format!("{u} {words}"),
                _ => words,
            });
        }
        Ok(Scalar { root, percent, unit: unit.map(String::into_boxed_str), signs: 0 })
    }

    // -----------------------------------------------------------------------------------------
    // Expressions
    // -----------------------------------------------------------------------------------------

    fn pm(&mut self, a: Id, b: Id) -> PResult<Id> {
        if self.ast.pm_count as usize >= MAX_PLUS_MINUS {
            return Err(Refusal::TooManyPlusMinus.into());
        }
        let k = self.ast.pm_count;
        self.ast.pm_count += 1;
        Ok(self.ast.push(Node::Pm(k, a, b)))
    }

    fn sum(&mut self) -> PResult<Id> {
        self.enter()?;
        let result = self.sum_inner();
        self.leave();
        result
    }

    fn sum_inner(&mut self) -> PResult<Id> {
        let mut acc = match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let t = self.term()?;
                self.ast.push(Node::Neg(t))
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.term()?
            }
            Some(Tok::Pm) => {
                self.pos += 1;
                let t = self.term()?;
                let zero = self.ast.push(Node::Num(Q::zero()));
                self.pm(zero, t)?
            }
            _ => self.term()?,
        };
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.pos += 1;
                    let t = self.term()?;
                    acc = self.ast.push(Node::Add(acc, t));
                }
                Some(Tok::Minus) => {
                    self.pos += 1;
                    let t = self.term()?;
                    let n = self.ast.push(Node::Neg(t));
                    acc = self.ast.push(Node::Add(acc, n));
                }
                Some(Tok::Pm) => {
                    self.pos += 1;
                    let t = self.term()?;
                    acc = self.pm(acc, t)?;
                }
                _ => return Ok(acc),
            }
        }
    }

    fn is_int_literal(&self, id: Id) -> bool {
        matches!(self.ast.node(id), Node::Num(q) if q.is_integer() && q.signum() >= 0)
    }

    fn term(&mut self) -> PResult<Id> {
        let mut acc = self.factor()?;
        let mut only_int = self.is_int_literal(acc) && matches!(self.toks[self.pos - 1].tok, Tok::Num { .. });
        loop {
            match self.peek() {
                Some(Tok::Times) => {
                    self.pos += 1;
                    let f = self.factor()?;
                    acc = self.ast.push(Node::Mul(acc, f));
                }
                Some(Tok::Slash) => {
                    self.pos += 1;
                    let f = self.factor()?;
                    acc = self.ast.push(Node::Div(acc, f));
                }
                Some(Tok::Frac) if only_int => {
                    // `2\frac{1}{2}`: a mixed number when the fraction is of whole numbers; a
                    // sign after it (`33\frac{1}{3}\%`) applies to the whole number.
                    let f = self.primary()?;
                    let mixed = matches!(self.ast.node(f), Node::Div(a, b) if self.is_int_literal(*a) && self.is_int_literal(*b));
                    if mixed {
                        let m = self.ast.push(Node::Add(acc, f));
                        acc = self.postfix(m)?;
                    } else {
                        let f = self.power_from(f)?;
                        acc = self.ast.push(Node::Mul(acc, f));
                    }
                }
                Some(Tok::Num { value, places: None })
                    if only_int
                        && value.is_integer()
                        && self.toks[self.pos].space
                        && self.peek_at(1) == Some(&Tok::Slash)
                        && matches!(self.peek_at(2), Some(Tok::Num { value, places: None }) if value.is_integer()) =>
                {
                    // `2 1/2` in plain text.
                    let a = self.primary()?;
                    self.pos += 1;
                    let b = self.primary()?;
                    let f = self.ast.push(Node::Div(a, b));
                    acc = self.ast.push(Node::Add(acc, f));
                }
                Some(t) if self.starts_primary(t) && !matches!(t, Tok::Num { .. }) => {
                    let f = self.power()?;
                    acc = self.ast.push(Node::Mul(acc, f));
                }
                _ => return Ok(acc),
            }
            only_int = false;
        }
    }

    fn starts_primary(&self, t: &Tok) -> bool {
        match t {
            Tok::Num { .. }
            | Tok::Var(_)
            | Tok::Pi
            | Tok::E
            | Tok::I
            | Tok::Infty
            | Tok::LParen
            | Tok::LBrace
            | Tok::Frac
            | Tok::Sqrt
            | Tok::Binom
            | Tok::Func(_)
            | Tok::LFloor
            | Tok::LCeil => true,
            Tok::LBrack => !self.commas[self.pos],
            Tok::Bar => self.in_abs == 0,
            _ => false,
        }
    }

    fn factor(&mut self) -> PResult<Id> {
        self.enter()?;
        let result = match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let f = self.factor()?;
                Ok(self.ast.push(Node::Neg(f)))
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.factor()
            }
            _ => self.power(),
        };
        self.leave();
        result
    }

    fn power(&mut self) -> PResult<Id> {
        let base = self.primary()?;
        self.power_from(base)
    }

    /// Postfix signs and a power after a primary already read.
    fn power_from(&mut self, base: Id) -> PResult<Id> {
        let mut base = self.postfix(base)?;
        if self.eat(&Tok::Caret) {
            let e = self.exponent()?;
            base = self.ast.push(Node::Pow(base, e));
            base = self.postfix(base)?;
        }
        Ok(base)
    }

    fn exponent(&mut self) -> PResult<Id> {
        if self.peek() == Some(&Tok::LBrace) {
            self.pos += 1;
            let e = self.sum()?;
            self.expect(&Tok::RBrace)?;
            return Ok(e);
        }
        self.factor()
    }

    fn postfix(&mut self, mut id: Id) -> PResult<Id> {
        loop {
            let node = match self.peek() {
                Some(Tok::Bang) => Node::Factorial(id),
                Some(Tok::Degree) => Node::Degrees(id),
                // A percent sign directly on a number; at the end of a value it is its unit.
                Some(Tok::Percent) => Node::Percent(id),
                _ => return Ok(id),
            };
            self.pos += 1;
            id = self.ast.push(node);
        }
    }

    /// A braced group, or a single primary (`\frac12`, `\sqrt2`, `\frac\pi2`).
    fn arg(&mut self) -> PResult<Id> {
        if self.eat(&Tok::LBrace) {
            let e = self.sum()?;
            self.expect(&Tok::RBrace)?;
            return Ok(e);
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<Id> {
        self.enter()?;
        let result = self.primary_inner();
        self.leave();
        result
    }

    fn primary_inner(&mut self) -> PResult<Id> {
        let Some(t) = self.bump() else {
            return syntax("an expression ends too early");
        };
        let node = match t {
            Tok::Num { value, places } => match places {
                Some(k) => Node::Dec(value.clone(), *k),
                None => Node::Num(value.clone()),
            },
            Tok::Var(name) => return self.var(name),
            Tok::Pi => Node::Pi,
            Tok::E => Node::E,
            Tok::I => Node::I,
            Tok::Infty => Node::Inf,
            Tok::LParen | Tok::LBrack => {
                if self.commas[self.pos - 1] {
                    return syntax("a tuple or interval inside an expression");
                }
                let close = if *t == Tok::LParen { Tok::RParen } else { Tok::RBrack };
                let e = self.sum()?;
                self.expect(&close)?;
                return Ok(e);
            }
            Tok::LBrace => {
                let e = self.sum()?;
                self.expect(&Tok::RBrace)?;
                return Ok(e);
            }
            Tok::Frac => {
                // `\frac12`: two one-digit arguments lexed as one number.
                if let Some(Tok::Num { value, places: None }) = self.peek()
                    && let Some(n) = value.as_i64()
                    && (10..=99).contains(&n)
                {
                    self.pos += 1;
                    let a = self.ast.push(Node::Num(Q::int(n / 10)));
                    let b = self.ast.push(Node::Num(Q::int(n % 10)));
                    return Ok(self.ast.push(Node::Div(a, b)));
                }
                let a = self.arg()?;
                let b = self.arg()?;
                Node::Div(a, b)
            }
            Tok::Sqrt => {
                if self.eat(&Tok::LBrack) {
                    let index = self.sum()?;
                    self.expect(&Tok::RBrack)?;
                    let a = self.arg()?;
                    Node::Root(index, a)
                } else {
                    let a = self.arg()?;
                    Node::Sqrt(a)
                }
            }
            Tok::Binom => {
                let a = self.arg()?;
                let b = self.arg()?;
                Node::Binom(a, b)
            }
            Tok::Func(f) => return self.call(*f),
            Tok::Bar => {
                if self.in_abs > 0 {
                    return syntax("nested |…| without \\left and \\right");
                }
                self.in_abs += 1;
                let e = self.sum();
                self.in_abs -= 1;
                let e = e?;
                self.expect(&Tok::Bar)?;
                Node::Func(Func::Abs, e)
            }
            Tok::LFloor => {
                let e = self.sum()?;
                self.expect(&Tok::RFloor)?;
                Node::Floor(e)
            }
            Tok::LCeil => {
                let e = self.sum()?;
                self.expect(&Tok::RCeil)?;
                Node::Ceil(e)
            }
            other => return syntax(format!("unexpected {other:?}")),
        };
        Ok(self.ast.push(node))
    }

    /// A named function and its argument.
    fn call(&mut self, mut f: Func) -> PResult<Id> {
        let mut power = None;
        if self.eat(&Tok::Caret) {
            let e = self.exponent()?;
            let minus_one = match self.ast.node(e) {
                Node::Neg(a) => matches!(self.ast.node(*a), Node::Num(q) if q.is_one()),
                Node::Num(q) => *q == Q::int(-1),
                _ => false,
            };
            match (minus_one, f.inverse()) {
                (true, Some(inv)) => f = inv,
                _ => power = Some(e),
            }
        }
        let mut base = None;
        if f == Func::Log && self.eat(&Tok::Underscore) {
            base = Some(self.arg()?);
        }
        let arg = match self.peek() {
            Some(Tok::LParen) if !self.commas[self.pos] => self.primary()?,
            Some(Tok::LBrace) => self.arg()?,
            _ => {
                // `\sin 2x`: the product of the factors up to an operator or another function.
                let mut acc = self.factor()?;
                while let Some(t) = self.peek() {
                    if !self.starts_primary(t) || matches!(t, Tok::Func(_) | Tok::Num { .. }) {
                        break;
                    }
                    let f = self.power()?;
                    acc = self.ast.push(Node::Mul(acc, f));
                }
                acc
            }
        };
        let call = match (f, base) {
            (Func::Log, Some(b)) => Node::Log(b, arg),
            (Func::Log, None) => {
                let ten = self.ast.push(Node::Num(Q::int(10)));
                Node::Log(ten, arg)
            }
            _ => Node::Func(f, arg),
        };
        let call = self.ast.push(call);
        Ok(match power {
            Some(p) => self.ast.push(Node::Pow(call, p)),
            None => call,
        })
    }

    // -----------------------------------------------------------------------------------------
    // ±
    // -----------------------------------------------------------------------------------------

    /// An answer with `±` signs stands for each choice of signs: a scalar becomes the list of
    /// its variants (inside structures, each scalar item expands in place).
    fn expand_signs(&self, answer: Answer) -> PResult<Answer> {
        if self.ast.pm_count == 0 {
            return Ok(answer);
        }
        let variants = 1u8 << self.ast.pm_count;
        let with_signs = |s: &Scalar, signs: u8| Answer::Scalar(Scalar { signs, ..s.clone() });
        let expand_into = |item: Answer, out: &mut Vec<Answer>| -> PResult<()> {
            match item {
                Answer::Scalar(s) => out.extend((0..variants).map(|signs| with_signs(&s, signs))),
                Answer::Assign(v, value) => match *value {
                    Answer::Scalar(s) => out.extend((0..variants).map(|signs| Answer::Assign(v.clone(), Box::new(with_signs(&s, signs))))),
                    _ => return syntax("± inside a structure"),
                },
                _ => return syntax("± inside a structure"),
            }
            Ok(())
        };
        let mut out = Vec::new();
        match answer {
            Answer::List(items) => {
                for item in items {
                    expand_into(item, &mut out)?;
                }
                Ok(Answer::List(out))
            }
            Answer::Set(items) => {
                for item in items {
                    expand_into(item, &mut out)?;
                }
                Ok(Answer::Set(out))
            }
            item => {
                expand_into(item, &mut out)?;
                Ok(Answer::List(out))
            }
        }
    }
}

fn flip(op: &Tok) -> Tok {
    match op {
        Tok::Lt => Tok::Gt,
        Tok::Gt => Tok::Lt,
        Tok::Le => Tok::Ge,
        Tok::Ge => Tok::Le,
        other => other.clone(),
    }
}

/// One canonical spelling per unit, so `5 \text{ centimeters}` and `5\text{ cm}` agree; words it
/// does not know are kept as written, without a plural `s`.
pub fn canonical_unit(w: &str) -> &str {
    match w {
        "cm" | "centimeter" | "centimeters" | "centimetre" | "centimetres" => "cm",
        "mm" | "millimeter" | "millimeters" | "millimetre" | "millimetres" => "mm",
        "km" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => "km",
        "m" | "meter" | "meters" | "metre" | "metres" => "m",
        "in" | "inch" | "inches" => "in",
        "ft" | "foot" | "feet" => "ft",
        "yd" | "yard" | "yards" => "yd",
        "mi" | "mile" | "miles" => "mi",
        "g" | "gram" | "grams" => "g",
        "kg" | "kilogram" | "kilograms" => "kg",
        "lb" | "lbs" | "pound" | "pounds" => "lb",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "min" | "mins" | "minute" | "minutes" => "min",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "dollar" | "dollars" | "$" => "$",
        "cent" | "cents" => "cent",
        "degree" | "degrees" | "°" => "°",
        "sq" | "square" => "square",
        "unit" | "units" => "unit",
        "l" | "liter" | "liters" | "litre" | "litres" => "l",
        "percent" => "%",
        other => other.strip_suffix('s').filter(|s| s.len() >= 2).unwrap_or(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_RECURSION;

    fn answer(s: &str) -> Answer {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}")).answer
    }

    #[test]
    fn structures() {
        assert!(matches!(answer("(1, 2)"), Answer::Tuple(v, Delim::Paren) if v.len() == 2));
        assert!(matches!(answer("[1, 2)"), Answer::Interval(Interval { lo_closed: true, hi_closed: false, .. })));
        assert!(matches!(answer("\\{1,2,3\\}"), Answer::Set(v) if v.len() == 3));
        assert!(matches!(answer("1, 2, 3"), Answer::List(v) if v.len() == 3));
        assert!(matches!(answer("(-\\infty, 1) \\cup (2, \\infty)"), Answer::Union(v) if v.len() == 2));
        assert!(matches!(answer("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"), Answer::Matrix { rows: 2, cols: 1, .. }));
        assert!(matches!(answer("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}"), Answer::Matrix { rows: 2, cols: 2, .. }));
        assert!(matches!(answer("x = 2"), Answer::Assign(v, _) if &*v == "x"));
        assert!(matches!(answer("x + y = 2"), Answer::Equation(_)));
        assert!(matches!(answer("x \\ge 2"), Answer::Interval(Interval { lo_closed: true, .. })));
        assert!(matches!(answer("-1 < x \\le 2"), Answer::Interval(Interval { lo_closed: false, hi_closed: true, .. })));
        assert!(matches!(answer("y > 2x"), Answer::Relation(_, Strictness::Strict)));
        assert!(matches!(answer("\\text{Monday}"), Answer::Text(t) if t == "monday"));
        assert!(matches!(answer("1 \\pm \\sqrt{2}"), Answer::List(v) if v.len() == 2));
    }

    #[test]
    fn units_are_kept_aside() {
        let Answer::Scalar(s) = answer("50\\%") else { panic!() };
        assert!(s.percent);
        let Answer::Scalar(s) = answer("30^\\circ") else { panic!() };
        assert_eq!(s.unit.as_deref(), Some("°"));
        let Answer::Scalar(s) = answer("\\$1,000") else { panic!() };
        assert_eq!(s.unit.as_deref(), Some("$"));
        let Answer::Scalar(s) = answer("5 \\text{ centimeters}") else { panic!() };
        assert_eq!(s.unit.as_deref(), Some("cm"));
        let Answer::Scalar(s) = answer("5\\text{ cm}^2") else { panic!() };
        assert_eq!(s.unit.as_deref(), Some("cm^2"));
    }

    #[test]
    fn refusals() {
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).is_ok());
        let deeper = format!("{}1", "-".repeat(MAX_RECURSION + 1));
        assert_eq!(parse(&deeper).unwrap_err(), ParseError::Refused(Refusal::TooDeep));
        let many = "1,".repeat(MAX_ITEMS + 1);
        assert_eq!(parse(&many).unwrap_err(), ParseError::Refused(Refusal::TooManyItems));
        assert_eq!(parse("a+b+c+d+f+g+h+j+k").unwrap_err(), ParseError::Refused(Refusal::TooManyVariables));
    }
}
