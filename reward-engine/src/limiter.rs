//! The per-instance memory cap: every linear memory and every table of an instance counted
//! against one budget, so a component with several memories (a Python guest has a few dozen core
//! instances) cannot take the cap once per memory.

/// Bytes a table element is counted as: 8 (a function reference is a pointer on 64-bit hosts).
/// A table of a million elements thus counts 8 MiB against the instance's memory cap.
pub const TABLE_ELEMENT_BYTES: usize = 8;

/// Caps an instance's memories and tables together and remembers whether a growth was denied, so
/// the trap that follows (usually an abort in the guest's allocator) is reported as
/// `OUT_OF_MEMORY`.
///
/// What it does not cover: the host's own allocations for the instance (its store, the copies of
/// strings lifted out of the guest) and CPU; those are bounded by fuel, the deadline and the host's
/// caps on what a guest may hand back.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    /// The cap, in bytes, on the sum of all memories and tables of the instance.
    max_bytes: usize,
    /// Bytes granted so far: the sum of every memory's size and every table's counted size.
    granted: usize,
    /// The total the denied growth asked for, if one was denied since the last clear.
    denied: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter for a fresh instance, with nothing granted yet.
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter { max_bytes, granted: 0, denied: None }
    }

    /// Sets the cap for the next call (a reused instance may serve a reward with another limit).
    /// What is already granted stays granted.
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
    }

    /// The total the last denied growth asked for, since the last [`MemoryLimiter::clear_denial`].
    pub fn denied(&self) -> Option<usize> {
        self.denied
    }

    /// Forgets a denial: the next rollout starts clean.
    pub fn clear_denial(&mut self) {
        self.denied = None;
    }

    /// Bytes granted to the instance so far, over all its memories and tables.
    #[cfg(test)]
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// Grants growing something from `current` to `desired` bytes if the instance's total stays
    /// within the cap.
    fn grow(&mut self, kind: &'static str, current: usize, desired: usize) -> bool {
        let total = self.granted.saturating_sub(current).saturating_add(desired);
        if total > self.max_bytes {
            tracing::warn!(
                error.type = "memory_limit_exceeded",
                kind,
                current,
                desired,
                instance_total = total,
                max = self.max_bytes,
                "plugin memory growth denied"
            );
            self.denied = Some(total);
            return false;
        }
        self.granted = total;
        true
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow("memory", current, desired))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow("table", bytes(current), bytes(desired)))
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::*;

    #[test]
    fn memories_share_one_budget() {
        let mut l = MemoryLimiter::new(32 << 20);
        assert!(l.memory_growing(0, 20 << 20, None).unwrap(), "first memory, 20 of 32 MiB");
        assert!(!l.memory_growing(0, 20 << 20, None).unwrap(), "a second memory of 20 MiB passes the instance's 32");
        assert_eq!(l.denied(), Some(40 << 20));
        assert!(l.memory_growing(0, 12 << 20, None).unwrap(), "12 MiB more fits exactly");
        assert_eq!(l.granted(), 32 << 20);
    }

    #[test]
    fn growth_counts_only_the_difference() {
        let mut l = MemoryLimiter::new(10 << 20);
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(4 << 20, 9 << 20, None).unwrap());
        assert_eq!(l.granted(), 9 << 20);
        assert!(!l.memory_growing(9 << 20, 11 << 20, None).unwrap());
        assert_eq!(l.granted(), 9 << 20, "a denied growth grants nothing");
    }

    #[test]
    fn tables_count_against_the_same_cap() {
        let mut l = MemoryLimiter::new(8 << 20);
        assert!(l.memory_growing(0, 6 << 20, None).unwrap());
        // 512 Ki elements = 4 MiB: with the memory, over the cap.
        assert!(!l.table_growing(0, 512 << 10, None).unwrap());
        assert!(l.table_growing(0, 128 << 10, None).unwrap(), "1 MiB of table fits");
        assert_eq!(l.granted(), 7 << 20);
    }

    /// A real component with two core instances, each with its own memory, on the host's engine
    /// and limiter (the pooling allocator allows one memory per core module, up to 8 per
    /// component): each memory alone stays under the cap, together they do not.
    #[test]
    fn a_component_with_two_memories_is_capped_as_a_whole() {
        let host = crate::HostBuilder::new().cache_dir(None).max_instances(4).build().unwrap();
        let engine = host.engine();
        let wat = r#"(component
            (core module $m
              (memory 1)
              (func (export "grow") (drop (memory.grow (i32.const 40)))))
            (core instance $a (instantiate $m))
            (core instance $b (instantiate $m))
            (func (export "grow-a") (canon lift (core func $a "grow")))
            (func (export "grow-b") (canon lift (core func $b "grow"))))"#;
        let component = wasmtime::component::Component::new(engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(engine, MemoryLimiter::new(4 << 20));
        store.limiter(|l| l);
        store.set_fuel(1_000_000).unwrap();
        store.set_epoch_deadline(1_000);
        let linker = wasmtime::component::Linker::new(engine);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        for (name, denied) in [("grow-a", false), ("grow-b", true)] {
            let grow = instance.get_typed_func::<(), ()>(&mut store, name).unwrap();
            grow.call(&mut store, ()).unwrap();
            // 41 pages = 2.6 MiB each: the first fits the instance's 4 MiB, the second does not.
            assert_eq!(store.data().denied().is_some(), denied, "after {name}: granted {}", store.data().granted());
        }
        assert!(store.data().granted() <= 4 << 20);
    }
}
