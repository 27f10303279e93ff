//! The one request item every door builds, and the step every door shares: the records that are
//! not rollouts are answered in place, the rest are scored, and the answers come back in request
//! order.
//!
//! A door converts its wire shape into [`Item`]s (a record that does not convert becomes an
//! [`Item::Rejected`] naming what is wrong, so one bad record never fails its batch), then either
//! calls [`crate::Reward::score_items`] or, when the scoring happens elsewhere (the server's pool
//! and cache, a remote server), [`split`]s the items and [`Placement::assemble`]s the answers.

use serde_json::value::RawValue;

use crate::input::{self, Rejection};
use crate::{Failure, Rollout, Status};

/// One item of a request: a rollout to score, or a record that failed to convert, kept in place
/// so the answers stay in request order.
#[derive(Clone, Debug)]
pub enum Item {
    /// Score this.
    Rollout(Rollout),
    /// Answer this failure, under the reward's failure policy.
    Rejected {
        /// The id to answer with: the record's own, or its fallback.
        id: String,
        /// Why it could not be converted.
        failure: Failure,
    },
}

impl Item {
    /// A record that is not a rollout: `INVALID_INPUT` with `message`.
    pub fn invalid(id: String, message: impl Into<String>) -> Item {
        Item::Rejected { id, failure: Failure::new(Status::InvalidInput, message) }
    }

    /// The id the item is answered with.
    pub fn id(&self) -> &str {
        match self {
            Item::Rollout(r) => &r.id,
            Item::Rejected { id, .. } => id,
        }
    }

    /// Converts JSON rollout records (Nova or plain shape, [`input::parse_record`]) into items,
    /// in order. A record that is not a rollout becomes a rejected item whose error names it as
    /// `{label}[i]`; a record without an id is called `{fallback}-{i}`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a RawValue>, label: &str, fallback: &str) -> Vec<Item> {
        records.into_iter().enumerate().map(|(i, record)| Item::from_record(record.get(), i, label, fallback)).collect()
    }

    /// One record's item: see [`Item::from_records`]; `index` is its place in the request.
    pub fn from_record(text: &str, index: usize, label: &str, fallback: &str) -> Item {
        Item::from_record_or(text, index, label, format!("{fallback}-{index}"))
    }

    /// [`Item::from_record`] with the whole id of a record that carries none.
    pub fn from_record_or(text: &str, index: usize, label: &str, fallback_id: String) -> Item {
        match input::parse_record(text, &fallback_id) {
            Ok(r) => Item::Rollout(r),
            Err(Rejection { id, error }) => Item::invalid(id.unwrap_or(fallback_id), format!("{label}[{index}]: {error}")),
        }
    }
}

/// Where each answer of a request goes once its rollouts were taken out by [`split`]: the
/// request's position of every rollout, and the rejected items with theirs.
#[derive(Clone, Debug)]
pub struct Placement {
    len: usize,
    positions: Vec<usize>,
    rejected: Vec<(usize, String, Failure)>,
}

/// Takes a request's rollouts out of its items, in order, and says where their answers go.
pub fn split(items: Vec<Item>) -> (Vec<Rollout>, Placement) {
    let len = items.len();
    let mut rollouts = Vec::with_capacity(len);
    let mut placement = Placement { len, positions: Vec::with_capacity(len), rejected: Vec::new() };
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Item::Rollout(r) => {
                placement.positions.push(i);
                rollouts.push(r);
            }
            Item::Rejected { id, failure } => placement.rejected.push((i, id, failure)),
        }
    }
    (rollouts, placement)
}

/// The answers for a request came back short or long: `got` for `expected` rollouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{got} answers for {expected} rollouts")]
pub struct Mismatch {
    /// Answers received.
    pub got: usize,
    /// Rollouts sent.
    pub expected: usize,
}

impl Placement {
    /// The request's position of each rollout [`split`] took out, in the same order.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The rejected items: (position, id, failure), in request order.
    pub fn rejected(&self) -> impl Iterator<Item = (usize, &str, &Failure)> {
        self.rejected.iter().map(|(i, id, f)| (*i, id.as_str(), f))
    }

    /// The request's answers in order: `scored` holds one answer per rollout (in the order
    /// [`split`] gave them), `reject` answers a rejected item from its id and failure.
    pub fn assemble<T>(self, scored: Vec<T>, mut reject: impl FnMut(&str, Failure) -> T) -> Result<Vec<T>, Mismatch> {
        if scored.len() != self.positions.len() {
            return Err(Mismatch { got: scored.len(), expected: self.positions.len() });
        }
        let mut answers = InOrder::new(self.len);
        for (i, s) in self.positions.into_iter().zip(scored) {
            answers.put(i, s);
        }
        for (i, id, failure) in self.rejected {
            answers.put(i, reject(&id, failure));
        }
        Ok(answers.finish().expect("every position is a rollout's or a rejected item's"))
    }
}

/// Answers that arrive in any order (chunks finishing on a pool, a stream), handed back in request
/// order once all are in.
#[derive(Debug)]
pub struct InOrder<T> {
    slots: Vec<Option<T>>,
}

impl<T> InOrder<T> {
    /// Room for a request of `len` items.
    pub fn new(len: usize) -> Self {
        InOrder { slots: std::iter::repeat_with(|| None).take(len).collect() }
    }

    /// The answer at `position`; a later one for the same position replaces it.
    ///
    /// # Panics
    ///
    /// When `position` is not below the request's length.
    pub fn put(&mut self, position: usize, answer: T) {
        self.slots[position] = Some(answer);
    }

    /// The answers in order, or the first position that has none.
    pub fn finish(self) -> Result<Vec<T>, usize> {
        self.slots.into_iter().enumerate().map(|(i, s)| s.ok_or(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(id: &str) -> Item {
        Item::Rollout(Rollout::new(id.into(), vec![], Some("a".into()), "null".into(), "{}".into()).expect("a plain rollout"))
    }

    #[test]
    fn answers_come_back_in_request_order_with_the_rejected_in_place() {
        let items = vec![Item::invalid("x".into(), "bad"), rollout("a"), Item::invalid("y".into(), "worse"), rollout("b")];
        let (rollouts, placement) = split(items);
        assert_eq!(rollouts.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(placement.positions(), [1, 3]);
        let scored = rollouts.iter().map(|r| format!("scored {}", r.id)).collect();
        let answers = placement.assemble(scored, |id, f| format!("rejected {id}: {}", f.message)).unwrap();
        assert_eq!(answers, ["rejected x: bad", "scored a", "rejected y: worse", "scored b"]);
    }

    #[test]
    fn a_short_answer_is_a_mismatch_not_a_shifted_batch() {
        let (_, placement) = split(vec![rollout("a"), rollout("b")]);
        assert_eq!(placement.assemble(vec![1], |_, _| 0).unwrap_err(), Mismatch { got: 1, expected: 2 });
    }

    #[test]
    fn in_order_names_the_first_missing_position() {
        let mut answers = InOrder::new(3);
        answers.put(2, 'c');
        answers.put(0, 'a');
        assert_eq!(answers.finish(), Err(1));
    }

    #[test]
    fn records_that_are_not_rollouts_are_rejected_with_their_place() {
        let body: Vec<&RawValue> = serde_json::from_str(r#"[{"id": "a", "completion": "4"}, 7, {"completion": 5}]"#).unwrap();
        let items = Item::from_records(body, "item", "item");
        assert_eq!(items.iter().map(Item::id).collect::<Vec<_>>(), ["a", "item-1", "item-2"]);
        let Item::Rejected { failure, .. } = &items[2] else { panic!("accepted {:?}", items[2]) };
        assert_eq!(failure.status, Status::InvalidInput);
        assert!(failure.message.starts_with("item[2]: `completion` must be a string"), "{}", failure.message);
    }
}
