//! Batching a file for a reward that scores whole GRPO groups (`crate::engine::group`): a group's
//! lines must be consecutive in the file (as trainers and eval harnesses write them: a prompt's
//! samples one after another), and batches and read windows are cut only between groups, so every
//! group reaches the plugin whole.
//!
//! What does not fit fails line by line, never the run: a line whose group already ended earlier
//! in the file (another group came between) is `INVALID_INPUT` naming where its group began, and
//! every line of a group longer than [`MAX_GROUP_ROLLOUTS`] is `INVALID_INPUT` (the group cannot be
//! scored short, and the batcher does not hold an unbounded group in memory).

use std::collections::HashMap;

use super::Line;
use crate::engine::group::{self, MAX_GROUP_ROLLOUTS};
use crate::engine::{Failure, Status};
use crate::input::parse_record;

/// Cuts a file's lines into batches of whole groups.
#[derive(Debug, Default)]
pub(super) struct Grouper {
    /// The group being read: its fingerprint, its first line, how many lines it has.
    current: Option<Open>,
    /// Groups that ended: fingerprint to first line.
    ended: HashMap<u128, usize>,
    /// The first line of the next window, read to learn that the window's last group ended.
    carry: Option<(usize, Line)>,
}

#[derive(Debug)]
struct Open {
    key: u128,
    first_line: usize,
    len: usize,
    /// Where its lines start in the last batch.
    start: usize,
    /// Over [`MAX_GROUP_ROLLOUTS`]: its lines are failed.
    oversized: bool,
}

/// A batch of numbered lines.
pub(super) type Batch = Vec<(usize, Line)>;

impl Grouper {
    /// The line read ahead by the previous window, which opens this one.
    pub(super) fn take_carry(&mut self, batches: &mut Vec<Batch>, batch_size: usize) {
        if let Some((n, line)) = self.carry.take() {
            self.place(batches, n, line, batch_size);
        }
    }

    /// Whether the window may end before line `n`: it opens a new group (or the file ended). If
    /// so, the line is kept for the next window.
    pub(super) fn ends_window_before(&mut self, n: usize, line: Line) -> Option<Line> {
        let opens_group = fingerprint(&line).is_some_and(|k| self.current.as_ref().is_none_or(|g| g.key != k));
        if opens_group {
            self.carry = Some((n, line));
            None
        } else {
            Some(line)
        }
    }

    /// Adds line `n` to the batches: to its group, or opening one (in a new batch once the last
    /// holds `batch_size` lines). A line that is not a rollout joins the last batch; it is rejected
    /// in place later.
    pub(super) fn place(&mut self, batches: &mut Vec<Batch>, n: usize, line: Line, batch_size: usize) {
        let Some(key) = fingerprint(&line) else {
            push(batches, n, line);
            return;
        };
        if let Some(open) = self.current.as_mut().filter(|g| g.key == key) {
            open.len += 1;
            if open.oversized {
                push(batches, n, oversized(n, open.first_line));
                return;
            }
            if open.len > MAX_GROUP_ROLLOUTS {
                open.oversized = true;
                let batch = batches.last_mut().expect("an open group has lines in the last batch");
                for (m, line) in &mut batch[open.start..] {
                    if !matches!(line, Line::Bad(_)) {
                        *line = oversized(*m, open.first_line);
                    }
                }
                push(batches, n, oversized(n, open.first_line));
                return;
            }
            push(batches, n, line);
            return;
        }
        // A line of a group that ended is refused; the group being read stays open.
        if let Some(&first_line) = self.ended.get(&key) {
            let message = format!(
                "line {n}: its group began at line {first_line} and other lines came between; a group's lines must be consecutive (the whole group is scored in one call)"
            );
            push(batches, n, Line::Bad(Failure::new(Status::InvalidInput, message)));
            return;
        }
        if let Some(ended) = self.current.take() {
            self.ended.insert(ended.key, ended.first_line);
        }
        if batches.last().is_none_or(|b| b.len() >= batch_size) {
            batches.push(Vec::new());
        }
        let start = batches.last().map_or(0, Vec::len);
        self.current = Some(Open { key, first_line: n, len: 1, start, oversized: false });
        push(batches, n, line);
    }
}

fn push(batches: &mut Vec<Batch>, n: usize, line: Line) {
    match batches.last_mut() {
        Some(batch) => batch.push((n, line)),
        None => batches.push(vec![(n, line)]),
    }
}

fn oversized(n: usize, first_line: usize) -> Line {
    Line::Bad(Failure::new(
        Status::InvalidInput,
        format!(
            "line {n}: the group that begins at line {first_line} has more than {MAX_GROUP_ROLLOUTS} rollouts, more than a group may hold"
        ),
    ))
}

/// The group of a line that is a rollout.
fn fingerprint(line: &Line) -> Option<u128> {
    match line {
        Line::Text(text) => parse_record(text, "").ok().map(|r| group::fingerprint(&r)),
        Line::Bad(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(prompt: &str) -> Line {
        Line::Text(format!(r#"{{"prompt": "{prompt}", "completion": "c"}}"#))
    }

    fn lines(batches: &[Batch]) -> Vec<Vec<usize>> {
        batches.iter().map(|b| b.iter().map(|(n, _)| *n).collect()).collect()
    }

    fn bad(batches: &[Batch]) -> Vec<usize> {
        batches.iter().flatten().filter(|(_, l)| matches!(l, Line::Bad(_))).map(|(n, _)| *n).collect()
    }

    #[test]
    fn batches_are_cut_between_groups_only() {
        let mut g = Grouper::default();
        let mut batches = Vec::new();
        for (n, p) in ["a", "a", "a", "b", "c", "c", "c", "c", "d"].into_iter().enumerate() {
            g.place(&mut batches, n + 1, line(p), 2);
        }
        assert_eq!(lines(&batches), vec![vec![1, 2, 3], vec![4, 5, 6, 7, 8], vec![9]]);
        assert!(bad(&batches).is_empty());
    }

    #[test]
    fn a_group_that_comes_back_fails_line_by_line() {
        let mut g = Grouper::default();
        let mut batches = Vec::new();
        for (n, p) in ["a", "a", "b", "a", "b"].into_iter().enumerate() {
            g.place(&mut batches, n + 1, line(p), 64);
        }
        assert_eq!(bad(&batches), vec![4]);
        let Line::Bad(f) = &batches[0][3].1 else { unreachable!() };
        assert!(f.message.contains("began at line 1"), "{}", f.message);
    }

    #[test]
    fn an_oversized_group_fails_whole_and_the_next_is_scored() {
        let mut g = Grouper::default();
        let mut batches = Vec::new();
        let n = MAX_GROUP_ROLLOUTS + 2;
        for i in 1..=n {
            g.place(&mut batches, i, line("big"), 64);
        }
        g.place(&mut batches, n + 1, line("small"), 64);
        assert_eq!(bad(&batches), (1..=n).collect::<Vec<_>>());
        assert!(matches!(batches.last().unwrap().last().unwrap().1, Line::Text(_)));
    }

    #[test]
    fn a_window_ends_only_where_a_group_does() {
        let mut g = Grouper::default();
        let mut batches = Vec::new();
        g.place(&mut batches, 1, line("a"), 64);
        assert!(g.ends_window_before(2, line("a")).is_some(), "the group goes on");
        let bad_line = Line::Bad(Failure::new(Status::InvalidInput, "x"));
        assert!(g.ends_window_before(2, bad_line).is_some(), "a bad line opens no group");
        assert!(g.ends_window_before(2, line("b")).is_none(), "b opens a group: kept for the next window");
        let mut next = Vec::new();
        g.take_carry(&mut next, 64);
        assert_eq!(lines(&next), vec![vec![2]]);
    }
}
