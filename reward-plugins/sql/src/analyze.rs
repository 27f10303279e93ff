//! What sqlparser (SQLite dialect) says about a query: whether it parses, whether it orders at
//! its top level, its structure (for the similarity metric) and its literals (for synthesis).
//! Diagnostic only: SQLite alone decides whether a query is valid.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, OrderByKind, Query, SelectItem, SetExpr, Statement, Value, visit_expressions, visit_relations,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::scan::unquoted;

/// The parser's recursion limit: deep nesting is a parse error, never a stack overflow.
const RECURSION_LIMIT: usize = 40;

/// Deepest parenthesis nesting handed to sqlparser; deeper queries count as not parsing (SQLite
/// still runs them). With [`RECURSION_LIMIT`] this keeps the parser's recursion well inside the
/// guest's stack.
const MAX_NESTING: usize = 20;

/// Most operators (and parentheses, AND, OR, NOT) handed to sqlparser. A parse tree is no deeper
/// than its operators, and the tree is walked recursively (similarity, literals), so a longer
/// chain counts as not parsing; SQLite still runs it under its own expression-depth limit.
const MAX_OPERATORS: usize = 120;

/// A parsed query, or why it does not parse.
pub fn parse(sql: &str) -> Result<Vec<Statement>, String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for (_, b) in unquoted(sql.as_bytes(), 0) {
        match b {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!("nested deeper than {MAX_NESTING} parentheses"));
    }
    if operators(sql) > MAX_OPERATORS {
        return Err(format!("more than {MAX_OPERATORS} operators: not analysed"));
    }
    Parser::new(&SQLiteDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| e.to_string())
}

/// Operator characters, parentheses and the words AND, OR, NOT outside quotes.
fn operators(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut n = 0;
    // A word's letters are not looked at again.
    let mut word_end = 0;
    for (i, b) in unquoted(bytes, 0) {
        if i < word_end {
            continue;
        }
        match b {
            b'(' | b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!' | b'|' | b'&' | b'~' => n += 1,
            b if b.is_ascii_alphabetic() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_') => {
                word_end = bytes[i..].iter().position(|c| !c.is_ascii_alphanumeric() && *c != b'_').map_or(bytes.len(), |p| i + p);
                if ["and", "or", "not"].iter().any(|w| sql[i..word_end].eq_ignore_ascii_case(w)) {
                    n += 1;
                }
            }
            _ => {}
        }
    }
    n
}

/// Whether the query orders its result at the top level (`ORDER BY` of the outermost query, not
/// of a subquery). Decided from the parse tree; when sqlparser cannot parse the query, from its
/// tokens: an `ORDER BY` outside every parenthesis.
pub fn orders_at_top_level(sql: &str, parsed: Option<&[Statement]>) -> bool {
    if let Some([Statement::Query(q)]) = parsed {
        return query_orders(q);
    }
    let Ok(tokens) = Tokenizer::new(&SQLiteDialect {}, sql).tokenize() else { return false };
    let mut depth = 0i32;
    let mut words = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_)));
    let mut prev_order = false;
    for t in words.by_ref() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => {
                if prev_order && w.keyword == Keyword::BY {
                    return true;
                }
                prev_order = w.keyword == Keyword::ORDER;
                continue;
            }
            _ => {}
        }
        prev_order = false;
    }
    false
}

fn query_orders(q: &Query) -> bool {
    match &q.order_by {
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(e) => !e.is_empty(),
            OrderByKind::All(_) => true,
        },
        // `(SELECT ... ORDER BY x)` as the whole query.
        None => matches!(q.body.as_ref(), SetExpr::Query(inner) if query_orders(inner)),
    }
}

/// The parts of a query the structural similarity compares, each a set of normalised strings.
#[derive(Debug, Default, PartialEq)]
pub struct Structure {
    tables: BTreeSet<String>,
    selected: BTreeSet<String>,
    predicates: BTreeSet<String>,
    grouping: BTreeSet<String>,
    ordering: BTreeSet<String>,
}

/// The structure of a parsed query (all its SELECTs, subqueries included).
pub fn structure(stmts: &[Statement]) -> Structure {
    let mut s = Structure::default();
    let _ = visit_relations(&stmts.to_vec(), |name| {
        s.tables.insert(norm(&name.to_string()));
        ControlFlow::<()>::Continue(())
    });
    for stmt in stmts {
        if let Statement::Query(q) = stmt {
            collect_query(q, &mut s);
        }
    }
    s
}

fn collect_query(q: &Query, s: &mut Structure) {
    if let Some(ob) = &q.order_by
        && let OrderByKind::Expressions(exprs) = &ob.kind
    {
        for e in exprs {
            let desc = matches!(e.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
            s.ordering.insert(format!("{} {}", column_text(&e.expr), if desc { "desc" } else { "asc" }));
        }
    }
    collect_set_expr(&q.body, s);
}

fn collect_set_expr(body: &SetExpr, s: &mut Structure) {
    match body {
        SetExpr::Select(sel) => {
            for item in &sel.projection {
                match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        s.selected.insert(column_text(e));
                    }
                    other => {
                        s.selected.insert(norm(&other.to_string()));
                    }
                }
            }
            for p in sel.selection.iter().chain(sel.having.iter()) {
                conjuncts(p, &mut |c| {
                    s.predicates.insert(column_text(c));
                });
            }
            if let GroupByExpr::Expressions(exprs, _) = &sel.group_by {
                for e in exprs {
                    s.grouping.insert(column_text(e));
                }
            }
        }
        SetExpr::Query(q) => collect_query(q, s),
        SetExpr::SetOperation { left, right, .. } => {
            collect_set_expr(left, s);
            collect_set_expr(right, s);
        }
        _ => {}
    }
}

fn conjuncts(e: &Expr, f: &mut impl FnMut(&Expr)) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(left, f);
            conjuncts(right, f);
        }
        Expr::Nested(inner) => conjuncts(inner, f),
        other => f(other),
    }
}

/// An expression as text, lowercased, with table qualifiers dropped (`T1.name` and `name` are the
/// same column for the similarity) and quotes removed.
fn column_text(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = sqlparser::ast::visit_expressions_mut(&mut e, |x| {
        if let Expr::CompoundIdentifier(parts) = x
            && let Some(last) = parts.last().cloned()
        {
            *x = Expr::Identifier(last);
        }
        ControlFlow::<()>::Continue(())
    });
    norm(&e.to_string())
}

fn norm(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '"' | '`' | '[' | ']')).flat_map(char::to_lowercase).collect()
}

impl Structure {
    /// The mean Jaccard similarity of the five parts (a part empty in both counts as equal).
    pub fn similarity(&self, other: &Structure) -> f64 {
        let parts = [
            (&self.tables, &other.tables),
            (&self.selected, &other.selected),
            (&self.predicates, &other.predicates),
            (&self.grouping, &other.grouping),
            (&self.ordering, &other.ordering),
        ];
        parts.iter().map(|(a, b)| jaccard(a, b)).sum::<f64>() / parts.len() as f64
    }
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// A literal of the gold query, for the synthesised databases.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A number as written.
    Number(f64),
    /// A string; `like` when it is a LIKE/GLOB pattern.
    Text { value: String, like: bool },
}

/// The literals of a query: those compared with a column, by the column's lowercase name, and
/// all of them (`""`) for columns the query does not compare directly.
///
/// `columns` are the schema's column names, lowercase: a double-quoted word that names no column
/// is a string in SQLite (`WHERE name = "Bob"`, common in sql-create-context), so it is taken as
/// a literal.
pub fn literals(stmts: &[Statement], columns: &BTreeSet<String>) -> BTreeMap<String, Vec<Literal>> {
    let mut out: BTreeMap<String, Vec<Literal>> = BTreeMap::new();
    let literal = |e: &Expr, like: bool| -> Option<Literal> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse().ok().map(Literal::Number),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Literal::Text { value: s.clone(), like }),
                _ => None,
            },
            Expr::UnaryOp { op: sqlparser::ast::UnaryOperator::Minus, expr } => match expr.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => n.parse::<f64>().ok().map(|n| Literal::Number(-n)),
                    _ => None,
                },
                _ => None,
            },
            Expr::Identifier(id) if id.quote_style == Some('"') && !columns.contains(&id.value.to_lowercase()) => {
                Some(Literal::Text { value: id.value.clone(), like })
            }
            _ => None,
        }
    };
    let column = |e: &Expr| -> Option<String> {
        match e {
            Expr::Identifier(id) if columns.contains(&id.value.to_lowercase()) => Some(id.value.to_lowercase()),
            Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_lowercase()),
            Expr::Nested(inner) => match inner.as_ref() {
                Expr::Identifier(id) => Some(id.value.to_lowercase()),
                _ => None,
            },
            _ => None,
        }
    };
    let _ = visit_expressions(&stmts.to_vec(), |e| {
        let mut pairs: Vec<(Option<String>, Literal)> = Vec::new();
        match e {
            Expr::BinaryOp { left, right, .. } => {
                if let Some(l) = literal(right, false) {
                    pairs.push((column(left), l));
                } else if let Some(l) = literal(left, false) {
                    pairs.push((column(right), l));
                }
            }
            Expr::In { expr, target: sqlparser::ast::InTarget::List(list), .. } => {
                for item in list {
                    if let Some(l) = literal(item, false) {
                        pairs.push((column(expr), l));
                    }
                }
            }
            Expr::Between { expr, low, high, .. } => {
                for b in [low, high] {
                    if let Some(l) = literal(b, false) {
                        pairs.push((column(expr), l));
                    }
                }
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                if let Some(l) = literal(pattern, true) {
                    pairs.push((column(expr), l));
                }
            }
            _ => {
                if let Some(l) = literal(e, false) {
                    pairs.push((None, l));
                }
            }
        }
        for (col, lit) in pairs {
            if let Some(col) = col {
                out.entry(col).or_default().push(lit.clone());
            }
            let all = out.entry(String::new()).or_default();
            if !all.contains(&lit) {
                all.push(lit);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// A comparison operator of an [`Atom`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` (also `==`, `IS`, an IN list item).
    Eq,
    /// `<>`, `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `LIKE` / `GLOB` with a literal pattern.
    Like,
}

/// One comparison of a column with a literal: `column op literal`.
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    /// The column's lowercase name (qualifier dropped).
    pub column: String,
    /// The operator, written with the column on the left.
    pub op: Op,
    /// The literal.
    pub literal: Literal,
}

/// What the gold's filters ask of the data, for targeted rows in synthesised databases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    /// Ways a row can pass a filter (WHERE, HAVING, ON) of the gold: each a conjunction of atoms
    /// (ORs split into separate conjunctions; conditions that are not a column compared with a
    /// literal are left out, they do not constrain the targeted rows).
    pub groups: Vec<Vec<Atom>>,
    /// Column pairs compared for equality (join keys), lowercase, qualifiers dropped.
    pub joins: Vec<(String, String)>,
    /// Columns some SELECT groups by (`GROUP BY col`), lowercase, qualifiers dropped.
    pub group_by: Vec<String>,
}

/// Most conjunctions kept per query (an AND of ORs multiplies them).
const MAX_GROUPS: usize = 16;

/// The conditions of a query: every WHERE, HAVING and JOIN ... ON of its SELECTs (subqueries in
/// FROM and set operations included), as conjunctions of column-literal atoms, the join keys and
/// the grouping columns.
pub fn conditions(stmts: &[Statement], columns: &BTreeSet<String>) -> Conditions {
    let mut out = Conditions::default();
    for stmt in stmts {
        if let Statement::Query(q) = stmt {
            conditions_query(q, columns, &mut out);
        }
    }
    let _ = visit_expressions(&stmts.to_vec(), |e| {
        if let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = e
            && let (Some(a), Some(b)) = (column_name(left, columns), column_name(right, columns))
            && !out.joins.contains(&(a.clone(), b.clone()))
        {
            out.joins.push((a, b));
        }
        ControlFlow::<()>::Continue(())
    });
    out.groups.retain(|g| !g.is_empty());
    out.groups.dedup();
    out.groups.truncate(MAX_GROUPS);
    out
}

fn conditions_query(q: &Query, columns: &BTreeSet<String>, out: &mut Conditions) {
    conditions_set_expr(&q.body, columns, out);
}

fn conditions_set_expr(body: &SetExpr, columns: &BTreeSet<String>, out: &mut Conditions) {
    match body {
        SetExpr::Select(sel) => {
            let mut filters: Vec<&Expr> = sel.selection.iter().chain(sel.having.iter()).collect();
            for twj in &sel.from {
                for j in &twj.joins {
                    if let Some(sqlparser::ast::JoinConstraint::On(e)) = join_constraint(&j.join_operator) {
                        filters.push(e);
                    }
                }
                if let sqlparser::ast::TableFactor::Derived { subquery, .. } = &twj.relation {
                    conditions_query(subquery, columns, out);
                }
            }
            if let GroupByExpr::Expressions(exprs, _) = &sel.group_by {
                for c in exprs.iter().filter_map(|e| column_name(e, columns)) {
                    if !out.group_by.contains(&c) {
                        out.group_by.push(c);
                    }
                }
            }
            // The filters of one SELECT hold together: their conjunctions are combined.
            let mut groups: Vec<Vec<Atom>> = vec![Vec::new()];
            for f in filters {
                groups = product(&groups, &disjuncts(f, columns));
            }
            out.groups.extend(groups);
        }
        SetExpr::Query(q) => conditions_query(q, columns, out),
        SetExpr::SetOperation { left, right, .. } => {
            conditions_set_expr(left, columns, out);
            conditions_set_expr(right, columns, out);
        }
        _ => {}
    }
}

fn join_constraint(op: &sqlparser::ast::JoinOperator) -> Option<&sqlparser::ast::JoinConstraint> {
    use sqlparser::ast::JoinOperator as J;
    match op {
        J::Join(c) | J::Inner(c) | J::Left(c) | J::LeftOuter(c) | J::Right(c) | J::RightOuter(c) | J::FullOuter(c) => Some(c),
        _ => None,
    }
}

fn product(a: &[Vec<Atom>], b: &[Vec<Atom>]) -> Vec<Vec<Atom>> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if out.len() == MAX_GROUPS {
                return out;
            }
            out.push(x.iter().chain(y).cloned().collect());
        }
    }
    out
}

/// The ways `e` can hold, each a conjunction of atoms (`[[]]`: no constraint known).
fn disjuncts(e: &Expr, columns: &BTreeSet<String>) -> Vec<Vec<Atom>> {
    let atom = |col: &Expr, op: Op, lit: &Expr| -> Option<Atom> {
        Some(Atom { column: column_name(col, columns)?, op, literal: literal_of(lit, columns, op == Op::Like)? })
    };
    let one = |a: Option<Atom>| vec![a.into_iter().collect::<Vec<_>>()];
    match e {
        Expr::Nested(inner) => disjuncts(inner, columns),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => product(&disjuncts(left, columns), &disjuncts(right, columns)),
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
            let mut v = disjuncts(left, columns);
            v.extend(disjuncts(right, columns));
            v.truncate(MAX_GROUPS);
            v
        }
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => (Op::Eq, Op::Eq),
                BinaryOperator::NotEq => (Op::Ne, Op::Ne),
                BinaryOperator::Lt => (Op::Lt, Op::Gt),
                BinaryOperator::LtEq => (Op::Le, Op::Ge),
                BinaryOperator::Gt => (Op::Gt, Op::Lt),
                BinaryOperator::GtEq => (Op::Ge, Op::Le),
                _ => return vec![Vec::new()],
            };
            one(atom(left, op.0, right).or_else(|| atom(right, op.1, left)))
        }
        Expr::Between { expr, negated: false, low, high } => {
            vec![[atom(expr, Op::Ge, low), atom(expr, Op::Le, high)].into_iter().flatten().collect()]
        }
        Expr::In { expr, target: sqlparser::ast::InTarget::List(list), negated: false, .. } => {
            let v: Vec<Vec<Atom>> = list.iter().filter_map(|l| atom(expr, Op::Eq, l)).map(|a| vec![a]).take(MAX_GROUPS).collect();
            if v.is_empty() { vec![Vec::new()] } else { v }
        }
        Expr::Like { expr, pattern, negated: false, .. } | Expr::ILike { expr, pattern, negated: false, .. } => {
            one(atom(expr, Op::Like, pattern))
        }
        _ => vec![Vec::new()],
    }
}

fn column_name(e: &Expr, columns: &BTreeSet<String>) -> Option<String> {
    match e {
        Expr::Identifier(id) if columns.contains(&id.value.to_lowercase()) => Some(id.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_lowercase()).filter(|c| columns.contains(c)),
        Expr::Nested(inner) => column_name(inner, columns),
        _ => None,
    }
}

fn literal_of(e: &Expr, columns: &BTreeSet<String>, like: bool) -> Option<Literal> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok().map(Literal::Number),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Literal::Text { value: s.clone(), like }),
            _ => None,
        },
        Expr::UnaryOp { op: sqlparser::ast::UnaryOperator::Minus, expr } => match literal_of(expr, columns, like)? {
            Literal::Number(n) => Some(Literal::Number(-n)),
            _ => None,
        },
        Expr::Identifier(id) if id.quote_style == Some('"') && !columns.contains(&id.value.to_lowercase()) => {
            Some(Literal::Text { value: id.value.clone(), like })
        }
        Expr::Nested(inner) => literal_of(inner, columns, like),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_counted_outside_quotes_and_words() {
        assert_eq!(operators("a AND b or NOT c"), 3);
        assert_eq!(operators("x + 'a+b' - [c-d] * \"e/f\""), 3);
        assert_eq!(operators("android, a_and, and_b, nor, (x)"), 1);
        assert_eq!(operators("NOT(x)AND y"), 3);
        assert_eq!(operators("'unclosed + -"), 0);
    }
}
