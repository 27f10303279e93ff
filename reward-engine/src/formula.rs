//! Formulas that combine component rewards into one score.
//!
//! The language is small on purpose: numbers; variables naming a component's score (`fmt`) or one
//! of its metrics (`fmt.tags_in_order`); `+ - * /`; comparisons `< <= > >= == !=` and `&& || !`,
//! which yield 1 or 0; and the functions `min(a, b, ...)`, `max(a, b, ...)`, `if(cond, then, else)`,
//! `clamp(x, lo, hi)` (NaN when `lo > hi`) and `abs(x)`. Gating reads naturally:
//! `if(fmt >= 1, correct, 0)`, or `0.1 * fmt + 0.9 * (fmt == 1) * correct`.
//!
//! Hand-written rather than taken from an expression crate: it is about 250 lines, evaluates over
//! `f64` only, and lets every error point at a column and every variable be resolved to a slot at
//! load time, so a typo fails when the config loads, never at the first rollout.

use std::fmt;

/// Longest formula accepted: 4,096 bytes. Bounds the expression tree (and so the recursion of
/// evaluating it) whatever its shape; a longer one is refused at load with the column.
pub const MAX_FORMULA_BYTES: usize = 4096;
/// Deepest nesting accepted (parentheses, function calls, unary operators): 64 levels. Parsing
/// and evaluating recurse once per level, so a deeply nested formula in a reloaded config cannot
/// overflow the stack of every replica at once; it is refused at load with the column.
pub const MAX_FORMULA_DEPTH: usize = 64;

/// A variable as written: a component alias and optionally one of its metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarRef {
    /// The component's alias.
    pub component: String,
    /// A metric of that component; `None` means its score.
    pub metric: Option<String>,
}

impl fmt::Display for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.metric {
            Some(m) => write!(f, "{}.{m}", self.component),
            None => f.write_str(&self.component),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Min,
    Max,
    If,
    Clamp,
    Abs,
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Num(f64),
    Var(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

/// A parsed formula; its variables are numbered in [`Formula::vars`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    source: String,
    expr: Expr,
    vars: Vec<VarRef>,
}

/// A formula that does not parse, with the 1-based column where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct FormulaError {
    /// What went wrong.
    pub message: String,
    /// 1-based column in the formula text.
    pub column: usize,
}

impl Formula {
    /// Parses a formula.
    pub fn parse(source: &str) -> Result<Formula, FormulaError> {
        if source.len() > MAX_FORMULA_BYTES {
            return Err(FormulaError {
                message: format!("formula is {} bytes, longer than the {MAX_FORMULA_BYTES} allowed", source.len()),
                // The column of the character that crosses the cap (which may start before it).
                column: source[..source.floor_char_boundary(MAX_FORMULA_BYTES)].chars().count() + 1,
            });
        }
        let mut parser = Parser { src: source, pos: 0, vars: Vec::new(), depth: 0 };
        let expr = parser.expr()?;
        parser.skip_ws();
        if parser.pos < source.len() {
            return Err(parser.error(format!("unexpected `{}`", parser.rest_token())));
        }
        Ok(Formula { source: source.to_owned(), expr, vars: parser.vars })
    }

    /// The variables the formula reads, in slot order.
    pub fn vars(&self) -> &[VarRef] {
        &self.vars
    }

    /// The formula as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `values[i]` as the value of `vars()[i]`.
    pub fn eval(&self, values: &[f64]) -> f64 {
        eval(&self.expr, values)
    }
}

fn truth(x: f64) -> bool {
    x != 0.0 && !x.is_nan()
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn eval(e: &Expr, v: &[f64]) -> f64 {
    match e {
        Expr::Num(n) => *n,
        Expr::Var(i) => v[*i],
        Expr::Neg(x) => -eval(x, v),
        Expr::Not(x) => flag(!truth(eval(x, v))),
        Expr::Bin(op, a, b) => {
            let a = eval(a, v);
            match op {
                BinOp::And => return flag(truth(a) && truth(eval(b, v))),
                BinOp::Or => return flag(truth(a) || truth(eval(b, v))),
                _ => {}
            }
            let b = eval(b, v);
            match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::Lt => flag(a < b),
                BinOp::Le => flag(a <= b),
                BinOp::Gt => flag(a > b),
                BinOp::Ge => flag(a >= b),
                BinOp::Eq => flag(a == b),
                BinOp::Ne => flag(a != b),
                BinOp::And | BinOp::Or => unreachable!("handled above"),
            }
        }
        Expr::Call(f, args) => match f {
            Func::Min => args.iter().map(|a| eval(a, v)).fold(f64::INFINITY, f64::min),
            Func::Max => args.iter().map(|a| eval(a, v)).fold(f64::NEG_INFINITY, f64::max),
            Func::If => {
                if truth(eval(&args[0], v)) {
                    eval(&args[1], v)
                } else {
                    eval(&args[2], v)
                }
            }
            Func::Clamp => {
                let (x, lo, hi) = (eval(&args[0], v), eval(&args[1], v), eval(&args[2], v));
                // `f64::clamp` panics on bounds out of order or NaN; such a clamp is NaN, which a
                // composite refuses as a non-finite score naming the formula.
                if lo <= hi { x.clamp(lo, hi) } else { f64::NAN }
            }
            Func::Abs => eval(&args[0], v).abs(),
        },
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    vars: Vec<VarRef>,
    /// Current nesting: parentheses, call arguments and unary operators being parsed.
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: String) -> FormulaError {
        FormulaError { message, column: self.src[..self.pos].chars().count() + 1 }
    }

    fn rest_token(&self) -> String {
        self.src[self.pos..].chars().take_while(|c| !c.is_whitespace()).take(12).collect()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.src[self.pos..].chars().next() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    /// Consumes `token` if it comes next (after white space).
    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), FormulaError> {
        if self.eat(token) {
            Ok(())
        } else if self.pos >= self.src.len() {
            Err(self.error(format!("expected `{token}`, found the end of the formula")))
        } else {
            Err(self.error(format!("expected `{token}`, found `{}`", self.rest_token())))
        }
    }

    /// Runs `parse` one nesting level deeper, refusing past [`MAX_FORMULA_DEPTH`].
    fn nested(&mut self, parse: impl FnOnce(&mut Self) -> Result<Expr, FormulaError>) -> Result<Expr, FormulaError> {
        if self.depth >= MAX_FORMULA_DEPTH {
            return Err(self.error(format!("formula nests deeper than {MAX_FORMULA_DEPTH} levels")));
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn expr(&mut self) -> Result<Expr, FormulaError> {
        self.nested(|p| {
            let mut lhs = p.and()?;
            while p.eat("||") {
                lhs = Expr::Bin(BinOp::Or, Box::new(lhs), Box::new(p.and()?));
            }
            Ok(lhs)
        })
    }

    fn and(&mut self) -> Result<Expr, FormulaError> {
        let mut lhs = self.cmp()?;
        while self.eat("&&") {
            lhs = Expr::Bin(BinOp::And, Box::new(lhs), Box::new(self.cmp()?));
        }
        Ok(lhs)
    }

    fn cmp(&mut self) -> Result<Expr, FormulaError> {
        let lhs = self.add()?;
        // Longest operators first, so `<=` is not read as `<`.
        for (token, op) in [("<=", BinOp::Le), (">=", BinOp::Ge), ("==", BinOp::Eq), ("!=", BinOp::Ne), ("<", BinOp::Lt), (">", BinOp::Gt)]
        {
            if self.eat(token) {
                return Ok(Expr::Bin(op, Box::new(lhs), Box::new(self.add()?)));
            }
        }
        Ok(lhs)
    }

    fn add(&mut self) -> Result<Expr, FormulaError> {
        let mut lhs = self.mul()?;
        loop {
            if self.eat("+") {
                lhs = Expr::Bin(BinOp::Add, Box::new(lhs), Box::new(self.mul()?));
            } else if self.eat("-") {
                lhs = Expr::Bin(BinOp::Sub, Box::new(lhs), Box::new(self.mul()?));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn mul(&mut self) -> Result<Expr, FormulaError> {
        let mut lhs = self.unary()?;
        loop {
            if self.eat("*") {
                lhs = Expr::Bin(BinOp::Mul, Box::new(lhs), Box::new(self.unary()?));
            } else if self.eat("/") {
                lhs = Expr::Bin(BinOp::Div, Box::new(lhs), Box::new(self.unary()?));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        if self.eat("-") {
            return self.nested(|p| Ok(Expr::Neg(Box::new(p.unary()?))));
        }
        self.skip_ws();
        if self.src[self.pos..].starts_with('!') && !self.src[self.pos..].starts_with("!=") {
            self.pos += 1;
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Err(self.error("expected a number, a name or `(`, found the end of the formula".into()));
        };
        if c == '(' {
            self.pos += 1;
            let e = self.expr()?;
            self.expect(")")?;
            return Ok(e);
        }
        if c.is_ascii_digit() || c == '.' {
            let len = rest
                .char_indices()
                .find(|&(i, ch)| {
                    !(ch.is_ascii_digit()
                        || ch == '.'
                        || ch == 'e'
                        || ch == 'E'
                        || ((ch == '-' || ch == '+') && i > 0 && matches!(rest.as_bytes()[i - 1], b'e' | b'E')))
                })
                .map_or(rest.len(), |(i, _)| i);
            let text = &rest[..len];
            let n: f64 = text.parse().map_err(|_| self.error(format!("`{text}` is not a number")))?;
            self.pos += len;
            return Ok(Expr::Num(n));
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let at = self.pos;
            let name = self.ident();
            if self.eat("(") {
                return self.call(&name, at);
            }
            let metric = if self.src[self.pos..].starts_with('.') {
                self.pos += 1;
                let m = self.ident();
                if m.is_empty() {
                    return Err(self.error(format!("expected a metric name after `{name}.`")));
                }
                Some(m)
            } else {
                None
            };
            let var = VarRef { component: name, metric };
            let slot = match self.vars.iter().position(|v| *v == var) {
                Some(i) => i,
                None => {
                    self.vars.push(var);
                    self.vars.len() - 1
                }
            };
            return Ok(Expr::Var(slot));
        }
        Err(self.error(format!("unexpected `{}`", self.rest_token())))
    }

    fn ident(&mut self) -> String {
        let rest = &self.src[self.pos..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_owned()
    }

    /// A call of `name` (which starts at `at`), its `(` read.
    fn call(&mut self, name: &str, at: usize) -> Result<Expr, FormulaError> {
        let (func, arity): (Func, Option<usize>) = match name {
            "min" => (Func::Min, None),
            "max" => (Func::Max, None),
            "if" => (Func::If, Some(3)),
            "clamp" => (Func::Clamp, Some(3)),
            "abs" => (Func::Abs, Some(1)),
            _ => {
                // At the name: white space may stand before the `(` (`sqrt (a)`).
                self.pos = at;
                return Err(self.error(format!("unknown function `{name}` (known: min, max, if, clamp, abs)")));
            }
        };
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    let found =
                        if self.pos >= self.src.len() { "the end of the formula".to_owned() } else { format!("`{}`", self.rest_token()) };
                    return Err(self.error(format!("expected `,` or `)` in the arguments of `{name}`, found {found}")));
                }
            }
        }
        let ok = match arity {
            Some(n) => args.len() == n,
            None => !args.is_empty(),
        };
        if !ok {
            let wanted = arity.map_or("at least 1".to_owned(), |n| n.to_string());
            return Err(self.error(format!("`{name}` takes {wanted} argument(s), got {}", args.len())));
        }
        Ok(Expr::Call(func, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_with(src: &str, bind: &[(&str, f64)]) -> f64 {
        let f = Formula::parse(src).unwrap();
        let values: Vec<f64> =
            f.vars().iter().map(|v| bind.iter().find(|(n, _)| *n == v.to_string()).unwrap_or_else(|| panic!("unbound {v}")).1).collect();
        f.eval(&values)
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval_with("1 + 2 * 3", &[]), 7.0);
        assert_eq!(eval_with("(1 + 2) * 3", &[]), 9.0);
        assert_eq!(eval_with("8 - 2 - 1", &[]), 5.0);
        assert_eq!(eval_with("8 / 2 / 2", &[]), 2.0);
        assert_eq!(eval_with("-2 * -3", &[]), 6.0);
        assert_eq!(eval_with("1.5e1 + 2E-1", &[]), 15.2);
    }

    #[test]
    fn gating_with_if_and_comparisons() {
        let f = "if(fmt >= 1, correct, 0)";
        assert_eq!(eval_with(f, &[("fmt", 1.0), ("correct", 0.7)]), 0.7);
        assert_eq!(eval_with(f, &[("fmt", 0.5), ("correct", 0.7)]), 0.0);
        let g = "0.1 * fmt + 0.9 * (fmt == 1) * correct";
        assert!((eval_with(g, &[("fmt", 1.0), ("correct", 1.0)]) - 1.0).abs() < 1e-12);
        assert!((eval_with(g, &[("fmt", 0.0), ("correct", 1.0)]) - 0.0).abs() < 1e-12);
    }

    #[test]
    fn logic_min_max_clamp_abs() {
        assert_eq!(eval_with("a && b", &[("a", 1.0), ("b", 0.0)]), 0.0);
        assert_eq!(eval_with("a || b", &[("a", 1.0), ("b", 0.0)]), 1.0);
        assert_eq!(eval_with("!a", &[("a", 0.0)]), 1.0);
        assert_eq!(eval_with("a != b", &[("a", 1.0), ("b", 0.0)]), 1.0);
        assert_eq!(eval_with("min(a, b, 0.5)", &[("a", 1.0), ("b", 0.7)]), 0.5);
        assert_eq!(eval_with("max(a, b)", &[("a", 1.0), ("b", 0.7)]), 1.0);
        assert_eq!(eval_with("clamp(a * 3, 0, 1)", &[("a", 0.7)]), 1.0);
        assert_eq!(eval_with("abs(a - 1)", &[("a", 0.25)]), 0.75);
    }

    #[test]
    fn metric_variables_are_distinct_slots() {
        let f = Formula::parse("fmt.tags_in_order * fmt + fmt").unwrap();
        assert_eq!(
            f.vars(),
            &[VarRef { component: "fmt".into(), metric: Some("tags_in_order".into()) }, VarRef { component: "fmt".into(), metric: None }]
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = Formula::parse("1 + * 2").unwrap_err();
        assert_eq!(e.column, 5, "{e}");
        let e = Formula::parse("min(a, b").unwrap_err();
        assert!(e.message.contains("expected `,` or `)` in the arguments of `min`, found the end"), "{e}");
        let e = Formula::parse("sqrt(a)").unwrap_err();
        assert!(e.message.contains("unknown function `sqrt`") && e.column == 1, "{e}");
        let e = Formula::parse("if(a, b)").unwrap_err();
        assert!(e.message.contains("takes 3 argument(s), got 2"), "{e}");
        let e = Formula::parse("a b").unwrap_err();
        assert!(e.message.contains("unexpected `b`") && e.column == 3, "{e}");
        let e = Formula::parse("").unwrap_err();
        assert!(e.message.contains("end of the formula"), "{e}");
        let e = Formula::parse("fmt.").unwrap_err();
        assert!(e.message.contains("metric name after `fmt.`"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_with_its_column() {
        // Run on a small stack: before the depth limit, 2,000 parentheses overflowed it.
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let parens = format!("{}a{}", "(".repeat(2000), ")".repeat(2000));
                let minus = format!("{}a", "-".repeat(3000));
                let calls = format!("{}a{}", "abs(".repeat(800), ")".repeat(800));
                [parens, minus, calls].map(|f| Formula::parse(&f).unwrap_err())
            })
            .unwrap()
            .join()
            .expect("parsing a deep formula must not overflow the stack");
        for e in &outcome {
            assert!(e.message.contains("nests deeper than 64 levels") || e.message.contains("longer than"), "{e}");
        }
        assert_eq!(outcome[0].column, 65, "just past the 64th `(`, which would open the 65th level: {}", outcome[0]);
        // 64 levels are fine.
        let ok = format!("{}a{}", "(".repeat(63), ")".repeat(63));
        assert!(Formula::parse(&ok).is_ok());
    }

    #[test]
    fn long_formulas_are_refused() {
        let long = vec!["a"; 3000].join("+");
        let e = Formula::parse(&long).unwrap_err();
        assert!(e.message.contains("longer than the 4096 allowed") && e.column == 4097, "{e}");
        // A long flat sum within the cap evaluates (the tree is a chain, its depth bounded by the cap).
        let sum = vec!["1"; 2000].join("+");
        assert_eq!(Formula::parse(&sum).unwrap().eval(&[]), 2000.0);
    }
}
