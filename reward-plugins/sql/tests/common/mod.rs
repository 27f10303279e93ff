//! Shared by the integration tests: fixture databases built from the checked-in SQL scripts, and
//! rollouts scored through `reward_sdk::score_batch`, the entry point the component uses.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

use reward_sdk::{Message, Rollout, RolloutError, Score};
use reward_sql::SqlReward;

/// The fixture databases, `<name>.sqlite` built from `tests/fixtures/<name>.sql` into a
/// directory under the target dir; the SDK's native fixtures directory points there.
pub fn fixtures_dir() -> PathBuf {
    static BUILD: Once = Once::new();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sql-fixtures");
    BUILD.call_once(|| {
        reward_sql::fixtures::build(&reward_sql::fixtures::scripts_dir(), &dir).unwrap();
        reward_sdk::fixtures::set_native_dir(Some(dir.clone()));
    });
    dir
}

pub fn rollout(prompt: &str, completion: &str, reference: &serde_json::Value) -> Rollout {
    Rollout {
        id: "r".into(),
        messages: vec![
            Message { role: "user".into(), content: prompt.into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.to_string(),
        metadata: "{}".into(),
    }
}

pub fn run(config: &str, r: Rollout) -> Result<Score, RolloutError> {
    fixtures_dir();
    let mut out = reward_sdk::score_batch::<SqlReward>(config, &[r]);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

pub fn fenced(sql: &str) -> String {
    format!("The query:\n```sql\n{sql}\n```")
}

#[track_caller]
pub fn scored(config: &str, r: Rollout) -> Score {
    match run(config, r) {
        Ok(s) => s,
        Err(e) => panic!("expected a score, got {e:?}"),
    }
}
