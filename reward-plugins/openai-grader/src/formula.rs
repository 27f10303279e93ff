//! `calculate_output`, the formula of a `multi` grader: the language OpenAI's graders guide
//! documents for it, parsed when the config loads and evaluated per rollout.
//!
//! - numbers: `2`, `0.5`, `.5`, `1e-3`;
//! - variables: the keys of the multi grader's `graders`, each the score of its sub-grader;
//! - operators: `+`, `-`, `*`, `/`, `^` (power, right-associative, binding tighter than a unary
//!   minus: `-2^2` is -4, as Python's `**`), unary `-` and `+`, parentheses;
//! - functions: `min` and `max` (one or more arguments), `abs`, `floor`, `ceil`, `exp`, `sqrt`
//!   and `log` (natural logarithm), one argument each.
//!
//! A parse error names the column (1-based, in characters) and what was expected there; an
//! unknown name lists the graders and functions. Evaluation fails, naming the column of the
//! operation, on a division by zero and on any step whose result is not a finite number (`sqrt`
//! of a negative number, `log` of 0, an overflowing `exp` or `^`): a broken formula must not
//! read as a score. A hand-written parser rather than an expression crate: the language is
//! five operators and eight functions, the crates in reach (evalexpr, fasteval, meval) each
//! accept more (comparisons, strings, assignments, other function names such as `math::ln`) or
//! give `log` another base, and their errors do not point at a column.

use std::fmt;

/// The functions a formula may call, as the guide lists them.
pub const FUNCTIONS: [&str; 8] = ["min", "max", "abs", "floor", "ceil", "exp", "sqrt", "log"];

/// A parsed formula.
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    root: Node,
}

/// One node of the formula, with the column (1-based, characters) it starts at.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    column: usize,
    expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Number(f64),
    /// A variable: its index in the names the formula was parsed with.
    Var(usize),
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    Call(Function, Vec<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Min,
    Max,
    Abs,
    Floor,
    Ceil,
    Exp,
    Sqrt,
    Log,
}

impl Function {
    fn parse(name: &str) -> Option<Function> {
        Some(match name {
            "min" => Function::Min,
            "max" => Function::Max,
            "abs" => Function::Abs,
            "floor" => Function::Floor,
            "ceil" => Function::Ceil,
            "exp" => Function::Exp,
            "sqrt" => Function::Sqrt,
            "log" => Function::Log,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Function::Min => "min",
            Function::Max => "max",
            Function::Abs => "abs",
            Function::Floor => "floor",
            Function::Ceil => "ceil",
            Function::Exp => "exp",
            Function::Sqrt => "sqrt",
            Function::Log => "log",
        }
    }

    fn variadic(self) -> bool {
        matches!(self, Function::Min | Function::Max)
    }
}

/// Why a formula does not parse or does not evaluate: the column (1-based, characters) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormulaError {
    /// Where in the formula, 1-based, in characters.
    pub column: usize,
    /// What went wrong there.
    pub message: String,
}

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(n) => format!("the number {n}"),
            Token::Name(n) => format!("`{n}`"),
            Token::Op(c) => format!("`{c}`"),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::Comma => "`,`".into(),
            Token::End => "the end of the formula".into(),
        }
    }
}

/// `x` for a message: plain decimals (`0.25`, `3`) in the usual range, scientific notation
/// (`1e200`, `2.5e-9`) outside it, where Rust's plain form would print hundreds of digits.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-6..1e16).contains(&x.abs()) { format!("{x}") } else { format!("{x:e}") }
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, FormulaError> {
    Err(FormulaError { column, message: message.into() })
}

/// Splits `text` into tokens, each with its 1-based column.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FormulaError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            match literal.parse::<f64>() {
                Ok(n) if n.is_finite() => tokens.push((column, Token::Number(n))),
                Ok(_) => return err(column, format!("the number `{literal}` is too large")),
                Err(_) => return err(column, format!("`{literal}` is not a number")),
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((column, Token::Name(chars[start..i].iter().collect())));
            continue;
        }
        let token = match c {
            '+' | '-' | '*' | '/' | '^' => Token::Op(c),
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            other => {
                return err(
                    column,
                    format!("unexpected character {other:?} (the operators are + - * / ^, with parentheses and function calls)"),
                );
            }
        };
        tokens.push((column, token));
        i += 1;
    }
    tokens.push((chars.len() + 1, Token::End));
    Ok(tokens)
}

/// A recursive-descent parser over the tokens: `sum := product (('+' | '-') product)*`,
/// `product := unary (('*' | '/') unary)*`, `unary := ('-' | '+') unary | power`,
/// `power := atom ('^' unary)?`, `atom := number | name | name '(' args ')' | '(' sum ')'`.
struct Parser<'a> {
    tokens: Vec<(usize, Token)>,
    at: usize,
    names: &'a [&'a str],
}

impl Parser<'_> {
    fn peek(&self) -> &(usize, Token) {
        &self.tokens[self.at]
    }

    fn next(&mut self) -> (usize, Token) {
        let token = self.tokens[self.at].clone();
        if token.1 != Token::End {
            self.at += 1;
        }
        token
    }

    fn expect_close(&mut self, opened_at: usize, what: &str) -> Result<(), FormulaError> {
        match self.next() {
            (_, Token::Close) => Ok(()),
            (column, token) => {
                err(column, format!("expected `)` to close the `(` at column {opened_at}{what}, found {}", token.describe()))
            }
        }
    }

    fn sum(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.product()?;
        while let (column, Token::Op(c @ ('+' | '-'))) = *self.peek() {
            self.next();
            let right = self.product()?;
            let op = if c == '+' { Op::Add } else { Op::Sub };
            left = Node { column, expr: Expr::Binary(op, Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.unary()?;
        while let (column, Token::Op(c @ ('*' | '/'))) = *self.peek() {
            self.next();
            let right = self.unary()?;
            let op = if c == '*' { Op::Mul } else { Op::Div };
            left = Node { column, expr: Expr::Binary(op, Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, FormulaError> {
        match *self.peek() {
            (column, Token::Op('-')) => {
                self.next();
                Ok(Node { column, expr: Expr::Neg(Box::new(self.unary()?)) })
            }
            (_, Token::Op('+')) => {
                self.next();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Node, FormulaError> {
        let base = self.atom()?;
        if let (column, Token::Op('^')) = *self.peek() {
            self.next();
            let exponent = self.unary()?;
            return Ok(Node { column, expr: Expr::Binary(Op::Pow, Box::new(base), Box::new(exponent)) });
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, FormulaError> {
        let (column, token) = self.next();
        match token {
            Token::Number(n) => Ok(Node { column, expr: Expr::Number(n) }),
            Token::Open => {
                let inner = self.sum()?;
                self.expect_close(column, "")?;
                Ok(inner)
            }
            Token::Name(name) => {
                let calls = self.peek().1 == Token::Open;
                if let Some(function) = Function::parse(&name) {
                    if !calls {
                        return err(column, format!("`{name}` is a function: call it as `{name}(...)`"));
                    }
                    return self.call(column, function);
                }
                if calls {
                    return err(column, format!("unknown function `{name}`; the functions are {}", FUNCTIONS.join(", ")));
                }
                match self.names.iter().position(|n| *n == name) {
                    Some(index) => Ok(Node { column, expr: Expr::Var(index) }),
                    None => err(
                        column,
                        format!(
                            "unknown name `{name}`; the graders are {} (and the functions {})",
                            self.names.join(", "),
                            FUNCTIONS.join(", ")
                        ),
                    ),
                }
            }
            other => err(column, format!("expected a number, a grader's name, a function call or `(`, found {}", other.describe())),
        }
    }

    fn call(&mut self, column: usize, function: Function) -> Result<Node, FormulaError> {
        let (open, _) = self.next();
        let mut args = Vec::new();
        if self.peek().1 != Token::Close {
            loop {
                args.push(self.sum()?);
                if self.peek().1 != Token::Comma {
                    break;
                }
                self.next();
            }
        }
        self.expect_close(open, &format!(" of `{}(`", function.name()))?;
        let fits = if function.variadic() { !args.is_empty() } else { args.len() == 1 };
        if !fits {
            let wanted = if function.variadic() { "one or more arguments" } else { "one argument" };
            return err(column, format!("`{}` takes {wanted}, got {}", function.name(), args.len()));
        }
        Ok(Node { column, expr: Expr::Call(function, args) })
    }
}

impl Formula {
    /// Parses `text` with `names` as its variables (a multi grader's keys).
    ///
    /// # Errors
    ///
    /// The column and what was expected there, or the unknown name.
    pub fn parse(text: &str, names: &[&str]) -> Result<Formula, FormulaError> {
        let mut parser = Parser { tokens: tokenize(text)?, at: 0, names };
        if parser.peek().1 == Token::End {
            return err(1, "the formula is empty");
        }
        let root = parser.sum()?;
        match parser.peek() {
            (_, Token::End) => Ok(Formula { root }),
            (column, token) => err(*column, format!("expected an operator or the end of the formula, found {}", token.describe())),
        }
    }

    /// The formula's value with `values[i]` for the i-th name it was parsed with.
    ///
    /// # Errors
    ///
    /// A division by zero, or a step whose result is not a finite number (the column of the
    /// operation and its operands).
    pub fn eval(&self, values: &[f64]) -> Result<f64, FormulaError> {
        eval(&self.root, values)
    }
}

fn eval(node: &Node, values: &[f64]) -> Result<f64, FormulaError> {
    let column = node.column;
    let finite = |v: f64, what: String| if v.is_finite() { Ok(v) } else { err(column, format!("{what} is not a finite number")) };
    match &node.expr {
        Expr::Number(n) => Ok(*n),
        Expr::Var(i) => Ok(values[*i]),
        Expr::Neg(inner) => Ok(-eval(inner, values)?),
        Expr::Binary(op, left, right) => {
            let (a, b) = (eval(left, values)?, eval(right, values)?);
            match op {
                Op::Add => finite(a + b, format!("{} + {}", number(a), number(b))),
                Op::Sub => finite(a - b, format!("{} - {}", number(a), number(b))),
                Op::Mul => finite(a * b, format!("{} * {}", number(a), number(b))),
                Op::Div if b == 0.0 => err(column, format!("division by zero ({} / {})", number(a), number(b))),
                Op::Div => finite(a / b, format!("{} / {}", number(a), number(b))),
                Op::Pow => finite(a.powf(b), format!("{} ^ {}", number(a), number(b))),
            }
        }
        Expr::Call(function, args) => {
            let args = args.iter().map(|a| eval(a, values)).collect::<Result<Vec<f64>, _>>()?;
            let x = args[0];
            let call = || format!("{}({})", function.name(), number(x));
            match function {
                Function::Min => Ok(args.iter().copied().fold(f64::INFINITY, f64::min)),
                Function::Max => Ok(args.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                Function::Abs => Ok(x.abs()),
                Function::Floor => Ok(x.floor()),
                Function::Ceil => Ok(x.ceil()),
                Function::Exp => finite(x.exp(), call()),
                Function::Sqrt => finite(x.sqrt(), call()),
                Function::Log => finite(x.ln(), call()),
            }
        }
    }
}
