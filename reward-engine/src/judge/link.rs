//! The host side of the `judge` import: a plugin's call (`complete`, `embed`) goes to the judge its reward grants, is
//! counted against the rollout, and the rollout's wall-clock deadline restarts when the answer
//! comes back (the model's time is not the guest's; the judge's own timeout bounds it).

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use super::super::bindings::judge_wit as wit;
use super::super::plugin::StoreState;
use super::{ChatMessage, Completion, JUDGE_INTERFACE, JudgeError, Sampling};

/// Defines `reward:plugin/judge@{version}` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>, version: &str) -> wasmtime::Result<()> {
    let mut judge = linker.instance(&format!("{JUDGE_INTERFACE}@{version}"))?;
    judge.func_wrap(
        "complete",
        |mut store: StoreContextMut<'_, StoreState>, (messages, sampling): (Vec<wit::ChatMessage>, wit::Sampling)| {
            let messages = messages.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect();
            let sampling =
                Sampling { temperature: sampling.temperature, top_p: sampling.top_p, max_tokens: sampling.max_tokens, seed: sampling.seed };
            let state = store.data_mut();
            let answer = match state.grants.judge() {
                Ok(grant) => grant.clone().complete(state.meter.judge_mut(), messages, sampling),
                Err(not_granted) => Err(refused(state, not_granted)),
            };
            let ticks = store.data().meter.deadline_ticks();
            store.set_epoch_deadline(ticks);
            Ok((answer.map(completion).map_err(error),))
        },
    )?;
    judge.func_wrap("embed", |mut store: StoreContextMut<'_, StoreState>, (texts,): (Vec<String>,)| {
        let state = store.data_mut();
        let answer = match state.grants.judge() {
            Ok(grant) => grant.clone().embed(state.meter.judge_mut(), texts),
            Err(not_granted) => Err(refused(state, not_granted)),
        };
        let ticks = store.data().meter.deadline_ticks();
        store.set_epoch_deadline(ticks);
        Ok((answer.map(|e| e.vectors).map_err(error),))
    })?;
    Ok(())
}

/// Counts a call the reward has no grant for against the rollout (it fails it) and answers it.
fn refused(state: &mut StoreState, not_granted: JudgeError) -> JudgeError {
    state.meter.judge_mut().refused(&not_granted);
    not_granted
}

fn completion(c: Completion) -> wit::Completion {
    wit::Completion {
        text: c.text,
        model: c.model,
        finish_reason: c.finish_reason,
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        cached: c.cached,
    }
}

fn error(e: JudgeError) -> wit::JudgeError {
    match e {
        JudgeError::NotGranted(m) => wit::JudgeError::NotGranted(m),
        JudgeError::Refused(m) => wit::JudgeError::Refused(m),
        JudgeError::Timeout(m) => wit::JudgeError::Timeout(m),
        JudgeError::Unavailable(m) => wit::JudgeError::Unavailable(m),
        JudgeError::InvalidResponse(m) => wit::JudgeError::InvalidResponse(m),
        JudgeError::OverLimit(m) => wit::JudgeError::OverLimit(m),
    }
}
