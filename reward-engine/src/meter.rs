//! The `meter` import: per-rollout budgets inside one batched call. A plugin that imports it gets
//! a whole chunk of rollouts per `score-batch` call and brackets each with `begin(i)` / `end(i)`;
//! at `begin` the host gives the rollout a fresh fuel budget and deadline, at `end` it records the
//! instructions and time the rollout used. The work between rollouts (lifting the arguments,
//! lowering results, the guest's glue) runs on **one** budget for the whole call, of the same size
//! as a rollout's, charged to no rollout. So counts and timeouts are exact per rollout, while the
//! per-call cost (entering the guest, the config, the result list) is paid per chunk.
//!
//! The protocol is checked: `begin(i)` must name the next rollout of *this call* (`i` below the
//! call's rollout count, in order, after the previous `end`), `end(i)` the rollout that began.
//! A plugin that breaks it (for instance looping `begin(k); end(k)` to refill its budget) is
//! stopped at once: the call traps, the instance is dropped and the call's rollouts fail with
//! `PLUGIN_ERROR` naming the violation. So a call runs at most `2 x rollouts + 1` stretches, each
//! on a bounded budget, and the host keeps at most one record per rollout.

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use super::judge::JudgeUsage;
use super::plugin::StoreState;

/// The interface name, without version.
pub const METER_INTERFACE: &str = "reward:plugin/meter";

/// What one rollout of a metered call used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Used {
    /// Fuel, in instructions.
    pub instructions: u64,
    /// Wall time between `begin` and `end`.
    pub latency: Duration,
    /// Its judge calls (the `judge` import).
    pub judge: JudgeUsage,
}

/// The metering state of one call, kept in the store.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// Fuel each rollout may use.
    fuel: u64,
    /// Epoch deadline, in ticks, of each rollout and each stretch between rollouts.
    deadline_ticks: u64,
    /// Rollouts in this call: `begin` may name `0..rollouts`. 0 outside `score-batch`, so a
    /// `begin` from `info` or `check-config` is a violation.
    rollouts: u32,
    /// Fuel left for the work between rollouts, shared by every stretch of the call.
    glue_fuel: u64,
    /// The rollout between `begin` and `end`, and when it began.
    current: Option<(u32, Instant)>,
    /// Finished rollouts of this call, in order (never more than `rollouts`).
    done: Vec<Used>,
    /// The first protocol violation of this call, if any.
    violation: Option<String>,
    /// Instructions of the programs the current rollout ran (the `programs` import), in their own
    /// instances: added to the rollout's count at `end`. For an unmetered call, the call's.
    nested: u64,
    /// The judge calls of the current rollout (the `judge` import). For an unmetered call, the call's.
    judge: JudgeUsage,
}

impl Meter {
    /// Starts a call of `rollouts` rollouts that get `fuel` and `deadline_ticks` each; the work
    /// between them shares one more `fuel`.
    pub fn start(&mut self, rollouts: usize, fuel: u64, deadline_ticks: u64) {
        let rollouts = u32::try_from(rollouts).unwrap_or(u32::MAX);
        *self = Meter {
            fuel,
            deadline_ticks,
            rollouts,
            glue_fuel: fuel,
            current: None,
            done: Vec::with_capacity(rollouts as usize),
            violation: None,
            nested: 0,
            judge: JudgeUsage::default(),
        };
    }

    /// Ends the call: nothing may be metered until the next [`Meter::start`].
    pub fn stop(&mut self) {
        self.rollouts = 0;
    }

    /// The rollout that was running when the call ended, if one was: the one a trap belongs to.
    pub fn current(&self) -> Option<u32> {
        self.current.map(|(index, _)| index)
    }

    /// The rollouts that finished, in order.
    pub fn done(&self) -> &[Used] {
        &self.done
    }

    /// The fuel each rollout may use.
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// Adds the instructions of a program run (in its own instances) to the current rollout.
    pub fn charge_nested(&mut self, instructions: u64) {
        self.nested = self.nested.saturating_add(instructions);
    }

    /// The program instructions charged since the call or the current rollout began.
    pub fn nested(&self) -> u64 {
        self.nested
    }

    /// The judge calls since the call or the current rollout began.
    pub fn judge(&self) -> &JudgeUsage {
        &self.judge
    }

    /// The judge calls of the current rollout, to count one more.
    pub fn judge_mut(&mut self) -> &mut JudgeUsage {
        &mut self.judge
    }

    /// The epoch deadline, in ticks, of each rollout and each stretch between rollouts.
    pub fn deadline_ticks(&self) -> u64 {
        self.deadline_ticks
    }

    /// How the plugin broke the protocol in this call, if it did.
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    /// Records a violation (the first one stays) and returns the trap that stops the call.
    fn violate(&mut self, what: String) -> wasmtime::Error {
        let error = wasmtime::Error::msg(what.clone());
        self.violation.get_or_insert(what);
        error
    }

    /// Checks a `begin(index)`; on success the rollout is current.
    fn begin(&mut self, index: u32) -> Result<(), wasmtime::Error> {
        if index >= self.rollouts {
            return Err(self.violate(format!(
                "meter.begin({index}) past the call's {} rollouts (indices 0 to {})",
                self.rollouts,
                self.rollouts.saturating_sub(1)
            )));
        }
        if self.current.is_some() || index as usize != self.done.len() {
            return Err(self.violate(format!(
                "meter.begin({index}) out of order (expected begin({}) after end of the previous rollout)",
                self.done.len()
            )));
        }
        self.current = Some((index, Instant::now()));
        self.nested = 0;
        self.judge = JudgeUsage::default();
        Ok(())
    }

    /// Checks an `end(index)` with `remaining` fuel; on success the rollout is done.
    fn end(&mut self, index: u32, remaining: u64) -> Result<(), wasmtime::Error> {
        match self.current.take() {
            Some((current, started)) if current == index => {
                let instructions = self.fuel.saturating_sub(remaining).saturating_add(self.nested);
                self.done.push(Used { instructions, latency: started.elapsed(), judge: std::mem::take(&mut self.judge) });
                Ok(())
            }
            _ => Err(self.violate(format!("meter.end({index}) without meter.begin({index})"))),
        }
    }
}

/// Defines `reward:plugin/meter@{version}` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>, version: &str) -> wasmtime::Result<()> {
    let mut meter = linker.instance(&format!("{METER_INTERFACE}@{version}"))?;
    meter.func_wrap("begin", |mut store: StoreContextMut<'_, StoreState>, (index,): (u32,)| {
        let glue_left = store.get_fuel()?;
        let state = store.data_mut();
        state.meter.begin(index)?;
        state.meter.glue_fuel = glue_left;
        let (fuel, ticks) = (state.meter.fuel, state.meter.deadline_ticks);
        state.limiter.clear_denial();
        store.set_fuel(fuel)?;
        store.set_epoch_deadline(ticks);
        Ok(())
    })?;
    meter.func_wrap("end", |mut store: StoreContextMut<'_, StoreState>, (index,): (u32,)| {
        let remaining = store.get_fuel()?;
        let m = &mut store.data_mut().meter;
        m.end(index, remaining)?;
        let (glue, ticks) = (m.glue_fuel, m.deadline_ticks);
        store.set_fuel(glue)?;
        store.set_epoch_deadline(ticks);
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_is_bounded_by_the_calls_rollouts() {
        let mut m = Meter::default();
        m.start(2, 100, 1);
        m.begin(0).unwrap();
        m.end(0, 40).unwrap();
        m.begin(1).unwrap();
        m.end(1, 100).unwrap();
        let err = m.begin(2).unwrap_err().to_string();
        assert!(err.contains("meter.begin(2) past the call's 2 rollouts"), "{err}");
        assert_eq!(m.violation(), Some(err.as_str()));
        assert_eq!(m.done().len(), 2, "no record past the call's rollouts");
        assert_eq!(m.done()[0].instructions, 60);
    }

    #[test]
    fn nothing_is_metered_outside_a_call() {
        let mut m = Meter::default();
        assert!(m.begin(0).unwrap_err().to_string().contains("past the call's 0 rollouts"));
        m.start(3, 10, 1);
        m.stop();
        assert!(m.begin(0).is_err(), "after the call ended");
    }

    #[test]
    fn out_of_order_and_unmatched_calls_are_violations() {
        let mut m = Meter::default();
        m.start(4, 10, 1);
        assert!(m.begin(1).unwrap_err().to_string().contains("out of order"));
        let mut m = Meter::default();
        m.start(4, 10, 1);
        assert!(m.end(0, 5).unwrap_err().to_string().contains("meter.end(0) without meter.begin(0)"));
        let mut m = Meter::default();
        m.start(4, 10, 1);
        m.begin(0).unwrap();
        assert!(m.begin(1).unwrap_err().to_string().contains("out of order"), "begin while one is running");
        // The first violation is the one reported.
        assert!(m.violation().unwrap().contains("begin(1)"));
    }
}
