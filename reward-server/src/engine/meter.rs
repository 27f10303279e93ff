//! The `meter` import: per-rollout budgets inside one batched call. A plugin that imports it gets
//! a whole chunk of rollouts per `score-batch` call and brackets each with `begin(i)` / `end(i)`;
//! at `begin` the host gives the rollout a fresh fuel budget and deadline, at `end` it records the
//! instructions and time the rollout used. The work between rollouts (lowering, glue) runs on a
//! budget of the same size, charged to no rollout. So counts and timeouts are exact per rollout,
//! while the per-call cost (entering the guest, the config, the result list) is paid per chunk.

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use super::plugin::StoreState;

/// The interface name, without version.
pub const METER_INTERFACE: &str = "reward:plugin/meter";

/// What one rollout of a metered call used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Used {
    /// Fuel, in instructions.
    pub instructions: u64,
    /// Wall time between `begin` and `end`.
    pub latency: Duration,
}

/// The metering state of one call, kept in the store.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// Fuel each rollout, and each stretch between rollouts, may use.
    fuel: u64,
    /// Epoch deadline, in ticks, of each rollout and each stretch between rollouts.
    deadline_ticks: u64,
    /// The rollout between `begin` and `end`, and when it began.
    current: Option<(u32, Instant)>,
    /// Finished rollouts of this call, in order.
    done: Vec<Used>,
}

impl Meter {
    /// Starts a call whose rollouts (and the stretches between them) get `fuel` and `deadline_ticks` each.
    pub fn start(&mut self, fuel: u64, deadline_ticks: u64) {
        *self = Meter { fuel, deadline_ticks, current: None, done: Vec::new() };
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
}

/// Defines `reward:plugin/meter@{version}` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>, version: &str) -> wasmtime::Result<()> {
    let mut meter = linker.instance(&format!("{METER_INTERFACE}@{version}"))?;
    meter.func_wrap("begin", |mut store: StoreContextMut<'_, StoreState>, (index,): (u32,)| {
        let state = store.data_mut();
        let m = &mut state.meter;
        if m.current.is_some() || index as usize != m.done.len() {
            wasmtime::bail!("meter.begin({index}) out of order (expected begin({}) after end of the previous rollout)", m.done.len());
        }
        m.current = Some((index, Instant::now()));
        let (fuel, ticks) = (m.fuel, m.deadline_ticks);
        state.limiter.denied = None;
        store.set_fuel(fuel)?;
        store.set_epoch_deadline(ticks);
        Ok(())
    })?;
    meter.func_wrap("end", |mut store: StoreContextMut<'_, StoreState>, (index,): (u32,)| {
        let remaining = store.get_fuel()?;
        let m = &mut store.data_mut().meter;
        match m.current.take() {
            Some((current, started)) if current == index => {
                m.done.push(Used { instructions: m.fuel.saturating_sub(remaining), latency: started.elapsed() })
            }
            _ => wasmtime::bail!("meter.end({index}) without meter.begin({index})"),
        }
        let (fuel, ticks) = (m.fuel, m.deadline_ticks);
        store.set_fuel(fuel)?;
        store.set_epoch_deadline(ticks);
        Ok(())
    })?;
    Ok(())
}
