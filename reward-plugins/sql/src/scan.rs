//! Scanning SQL text outside its quoted parts, for the checks that run before (or instead of) a
//! parser: nesting depth, operator counts, the extent of a `CREATE TABLE` statement.

/// The bytes of `sql` from `start` on that stand outside quotes (`'...'`, `"..."`, `` `...` ``,
/// `[...]`), each with its position; the quote characters and what they enclose are skipped. An
/// unclosed quote runs to the end.
pub fn unquoted(sql: &[u8], start: usize) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut quote = None;
    sql.iter().copied().enumerate().skip(start).filter(move |&(_, b)| match quote {
        Some(q) => {
            if b == q {
                quote = None;
            }
            false
        }
        None => {
            quote = match b {
                b'\'' | b'"' | b'`' => Some(b),
                b'[' => Some(b']'),
                _ => return true,
            };
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_of_every_kind_are_skipped() {
        let text = |sql: &str, start| -> String { unquoted(sql.as_bytes(), start).map(|(_, b)| b as char).collect() };
        assert_eq!(text("a'(b'c\"d)\"e`f`g[h)]i", 0), "acegi");
        assert_eq!(text("x [a'b] 'c[d' y", 0), "x   y");
        assert_eq!(text("ab'unclosed (", 0), "ab");
        assert_eq!(text("(a)'b'(c)", 3), "(c)");
        let positions: Vec<usize> = unquoted(b"a'b'c", 0).map(|(i, _)| i).collect();
        assert_eq!(positions, [0, 4]);
    }
}
