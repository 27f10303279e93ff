//! The host side of the `judge` import: a plugin's call (`complete`, `embed`) goes to the judge its reward grants, is
//! counted against the rollout, and the rollout's wall-clock deadline restarts when the answer
//! comes back (the model's time is not the guest's; the judge's own timeout bounds it).

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use super::super::bindings::judge_wit as wit;
use super::super::plugin::StoreState;
use super::{ChatMessage, Completion, JUDGE_INTERFACE, JudgeError, JudgeGrant, JudgeUsage, Sampling};

/// Defines `reward:plugin/judge@{version}` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>, version: &str) -> wasmtime::Result<()> {
    let mut judge = linker.instance(&format!("{JUDGE_INTERFACE}@{version}"))?;
    judge.func_wrap(
        "complete",
        |mut store: StoreContextMut<'_, StoreState>, (messages, sampling): (Vec<wit::ChatMessage>, wit::Sampling)| {
            let messages = messages.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect();
            let sampling =
                Sampling { temperature: sampling.temperature, top_p: sampling.top_p, max_tokens: sampling.max_tokens, seed: sampling.seed };
            let answer = granted_call(&mut store, |grant, usage| grant.complete(usage, messages, sampling));
            Ok((answer.map(completion).map_err(error),))
        },
    )?;
    judge.func_wrap("embed", |mut store: StoreContextMut<'_, StoreState>, (texts,): (Vec<String>,)| {
        let answer = granted_call(&mut store, |grant, usage| grant.embed(usage, texts));
        Ok((answer.map(|e| e.vectors).map_err(error),))
    })?;
    Ok(())
}

/// One judge call of the plugin, whatever it asks (`ask` makes it through the grant, counting it
/// in the rollout's usage). A reward with no grant is refused, and the refusal is counted against
/// the rollout too (it fails it). Either way the rollout's epoch deadline restarts afterwards: the
/// time spent waiting on the model is not the guest's.
fn granted_call<A>(
    store: &mut StoreContextMut<'_, StoreState>,
    ask: impl FnOnce(&JudgeGrant, &mut JudgeUsage) -> Result<A, JudgeError>,
) -> Result<A, JudgeError> {
    let state = store.data_mut();
    let answer = match state.grants.judge() {
        Ok(grant) => ask(grant, state.meter.judge_mut()),
        Err(not_granted) => {
            state.meter.judge_mut().refused(&not_granted);
            Err(not_granted)
        }
    };
    let ticks = store.data().meter.deadline_ticks();
    store.set_epoch_deadline(ticks);
    answer
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
