//! The fixture groups in `groups.jsonl`, with their scores pinned in every mode: three GRPO groups
//! (a math group with equivalent answers written differently, a GSM8K-style group with a tie and
//! a rollout without a boxed answer, a group of one). Each line is one rollout: its group, its
//! completion, its reference and the score it must get under each config of [`CONFIGS`]. The
//! groups are scored one `score-batch` call each, as the host calls a `groups = true` reward.

use reward_group::GroupPlugin;
use reward_sdk::{Message, Rollout};
use serde::Deserialize;
use serde_json::Value;

/// The configs the fixture pins, by the key of their score in `groups.jsonl`.
const CONFIGS: [(&str, &str); 4] = [
    ("majority", r#"{"mode": "majority", "extract": "boxed", "check": "math"}"#),
    ("diversity", r#"{"mode": "diversity", "extract": "boxed", "check": "math"}"#),
    ("pass_at_2", r#"{"mode": "pass_at_k", "k": 2, "extract": "boxed", "check": "math"}"#),
    ("length", r#"{"mode": "length", "extract": "boxed", "check": "math"}"#),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    group: String,
    completion: String,
    reference: Value,
    scores: std::collections::BTreeMap<String, f64>,
}

/// The fixture's groups, in file order, each with its lines in order.
fn groups() -> Vec<Vec<Line>> {
    let mut groups: Vec<Vec<Line>> = Vec::new();
    for (i, text) in include_str!("groups.jsonl").lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: Line = serde_json::from_str(text).unwrap_or_else(|e| panic!("groups.jsonl line {}: {e}", i + 1));
        match groups.last_mut() {
            Some(g) if g[0].group == line.group => g.push(line),
            _ => {
                assert!(groups.iter().all(|g| g[0].group != line.group), "groups.jsonl line {}: group {} is split", i + 1, line.group);
                groups.push(vec![line]);
            }
        }
    }
    groups
}

fn rollout(i: usize, line: &Line) -> Rollout {
    Rollout {
        id: format!("{}-{i}", line.group),
        messages: vec![
            Message { role: "user".into(), content: format!("question of group {}", line.group) },
            Message { role: "assistant".into(), content: line.completion.clone() },
        ],
        completion: line.completion.clone(),
        reference: line.reference.to_string(),
        metadata: "{}".into(),
    }
}

#[test]
fn fixture_groups_score_as_pinned() {
    let groups = groups();
    assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [4, 5, 1], "the fixture's group sizes");
    for (key, config) in CONFIGS {
        for group in &groups {
            let rollouts: Vec<Rollout> = group.iter().enumerate().map(|(i, l)| rollout(i, l)).collect();
            let results = reward_sdk::score_group_batch::<GroupPlugin>(config, &rollouts);
            assert_eq!(results.len(), group.len());
            for (line, result) in group.iter().zip(results) {
                let want = line.scores[key];
                let got = result.unwrap_or_else(|e| panic!("{key}, {:?}: {e:?}", line.completion));
                assert!(
                    (got.value - want).abs() < 1e-9,
                    "{key}, group {}, {:?}: {} ({}), pinned {want}",
                    line.group,
                    line.completion,
                    got.value,
                    got.reason.unwrap_or_default()
                );
            }
        }
    }
}
