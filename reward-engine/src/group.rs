//! GRPO groups: the completions of one prompt, scored together by a reward declared
//! `groups = true` (ranking, diversity, pass@k, majority-vote agreement).
//!
//! A rollout's group is the `group` its caller named (a record's `group` field, the proto's
//! `Rollout.group`); a rollout that names none belongs to the group of its prompt, the messages
//! before its answer, so trainers that send a step's completions prompt by prompt (TRL, veRL,
//! OpenRLHF, Nova) need not name groups. A named group and a prompt's group never merge, even when
//! the name happens to be a prompt's text.
//!
//! Groups live inside one request: the same group id in two requests is two groups. Within a
//! request, the engine never splits a group: the server's chunks of pool work, the plugin's calls
//! and the re-runs after a trap all cut between groups, and a groups reward's plugin is called with
//! exactly one group per `score-batch` call.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::{Message, Rollout};

/// Most rollouts one group may hold: 512. GRPO groups are 4 to 256 completions; a group is one
/// plugin call whose budget is its size times the reward's per-rollout budget (see
/// [`crate::Plugin::score_groups`]), so this also bounds what one call may run. The rollouts of a
/// larger group fail with `INVALID_INPUT` naming it.
pub const MAX_GROUP_ROLLOUTS: usize = 512;

/// What puts rollouts in one group, borrowed from the first rollout seen in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    /// The caller's `group`.
    Named(&'a str),
    /// No `group`: the conversation before the answer.
    Prompt(&'a [Message]),
}

fn key(rollout: &Rollout) -> Key<'_> {
    match &rollout.group {
        Some(name) => Key::Named(name),
        None => Key::Prompt(&rollout.messages[..rollout.messages.len().saturating_sub(1)]),
    }
}

/// The groups of `rollouts`: the positions of each group's rollouts in request order, the groups
/// in the order of their first rollout. Every position is in exactly one group.
pub fn partition(rollouts: &[Rollout]) -> Vec<Vec<usize>> {
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in rollouts.iter().enumerate() {
        match index.entry(key(r)) {
            Entry::Occupied(e) => groups[*e.get()].push(i),
            Entry::Vacant(e) => {
                e.insert(groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// Packs whole groups, in order, into units of about `target` rollouts: a unit takes groups until
/// it holds `target` or more, so no group is ever split and a group larger than `target` is a
/// unit of its own.
pub fn pack(groups: Vec<Vec<usize>>, target: usize) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for group in groups {
        current.extend(group);
        if current.len() >= target.max(1) {
            units.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// A rollout's group as a number, for a caller that meets a group's rollouts one at a time and
/// tells groups apart without keeping their prompts (offline scoring reads a file line by line):
/// xxh3-128 of the group key, a name and a prompt hashed apart.
pub fn fingerprint(rollout: &Rollout) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    match key(rollout) {
        Key::Named(name) => {
            field(b"named");
            field(name.as_bytes());
        }
        Key::Prompt(messages) => {
            field(b"prompt");
            for m in messages {
                field(m.role.as_bytes());
                field(m.content.as_bytes());
            }
        }
    }
    h.digest128()
}

/// A short, bounded label for the group of `rollout` in error texts: its name, or "the group of its
/// prompt".
pub fn describe(rollout: &Rollout) -> String {
    match &rollout.group {
        Some(name) if name.len() <= 64 => format!("group `{name}`"),
        Some(name) => format!("group `{}...`", &name[..name.floor_char_boundary(64)]),
        None => "the group of its prompt".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(id: &str, prompt: &str, group: Option<&str>) -> Rollout {
        let messages = vec![Message { role: "user".into(), content: prompt.into() }];
        Rollout::new(id.into(), messages, Some(format!("answer {id}")), "null".into(), "{}".into())
            .expect("a plain rollout")
            .in_group(group.map(str::to_owned))
    }

    #[test]
    fn rollouts_group_by_their_name_else_by_their_prompt() {
        let rollouts = [
            rollout("a1", "2+2?", None),
            rollout("b1", "3+3?", None),
            rollout("a2", "2+2?", None),
            rollout("n1", "2+2?", Some("g")),
            rollout("n2", "other", Some("g")),
            // A name equal to a prompt's text is still a name.
            rollout("x", "y", Some("2+2?")),
        ];
        assert_eq!(partition(&rollouts), vec![vec![0, 2], vec![1], vec![3, 4], vec![5]]);
    }

    #[test]
    fn the_prompt_is_every_message_before_the_answer() {
        let with_system = |id: &str, system: &str| {
            let messages = vec![
                Message { role: "system".into(), content: system.into() },
                Message { role: "user".into(), content: "2+2?".into() },
                Message { role: "assistant".into(), content: format!("answer {id}") },
            ];
            Rollout::new(id.into(), messages, None, "null".into(), "{}".into()).unwrap()
        };
        let rollouts = [with_system("a", "be brief"), with_system("b", "be brief"), with_system("c", "think")];
        assert_eq!(partition(&rollouts), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn packing_never_splits_a_group() {
        let groups = vec![vec![0, 1, 2], vec![3], vec![4, 5, 6, 7, 8], vec![9, 10]];
        assert_eq!(pack(groups.clone(), 4), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7, 8], vec![9, 10]]);
        assert_eq!(pack(groups.clone(), 1), groups);
        assert_eq!(pack(groups, 100), vec![(0..=10).collect::<Vec<_>>()]);
        assert!(pack(vec![], 4).is_empty());
    }

    #[test]
    fn fingerprints_tell_the_same_groups_apart_as_partition() {
        let rollouts =
            [rollout("a1", "2+2?", None), rollout("a2", "2+2?", None), rollout("n", "2+2?", Some("2+2?")), rollout("b", "3+3?", None)];
        let f: Vec<u128> = rollouts.iter().map(fingerprint).collect();
        assert_eq!(f[0], f[1]);
        assert_ne!(f[0], f[2], "a name is not a prompt");
        assert_ne!(f[0], f[3]);
    }

    #[test]
    fn a_long_group_name_is_cut_in_messages() {
        let r = rollout("a", "p", Some(&"é".repeat(100)));
        let label = describe(&r);
        assert!(label.len() < 80 && label.ends_with("...`"), "{label}");
    }
}
