//! The plugin host: one wasmtime `Engine` per process, configured for metered, isolated guests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::artifact_cache::{ArtifactCache, default_cache_dir, sha256_hex};
use super::plugin::{LoadError, Plugin};
use super::programs::Interpreter;

/// How often the epoch ticker advances: 10 ms, the resolution of wall-clock deadlines.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
/// Default number of plugin instances alive at once, across all plugins: 512.
pub const DEFAULT_MAX_INSTANCES: u32 = 512;
/// Default ceiling on any one instance's linear memory: 4 GiB (a reward's own limit is lower).
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 4 << 30;
/// Guest stack: 1 MiB. A deeper recursion is a stack-overflow trap (`PLUGIN_ERROR`).
pub const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;

/// The instance pool's totals per live component instance (`max_instances` of them): core
/// instances, memories and tables, on average. A Rust guest holds one of each; a Python
/// component (componentize-py) a few dozen core instances, so the averages leave room for a mix.
const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 4;
/// See [`POOL_CORE_INSTANCES_PER_COMPONENT`].
const POOL_MEMORIES_PER_COMPONENT: u32 = 2;
/// See [`POOL_CORE_INSTANCES_PER_COMPONENT`].
const POOL_TABLES_PER_COMPONENT: u32 = 4;
/// Most core instances one component may hold: 64 (a Python component holds a few dozen).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Most linear memories one component may hold: 8.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 8;
/// Most tables one component may hold: 32.
pub const MAX_TABLES_PER_COMPONENT: u32 = 32;
/// Most bytes of VM state (not linear memory) of one component instance: 1 MiB.
pub const MAX_COMPONENT_INSTANCE_STATE_BYTES: usize = 1 << 20;
/// Most bytes of VM state (not linear memory) of one core instance: 8 MiB.
pub const MAX_CORE_INSTANCE_STATE_BYTES: usize = 8 << 20;
/// Most elements of one table: 1 Mi. Each element also counts [`crate::TABLE_ELEMENT_BYTES`]
/// against the instance's memory cap, so a guest cannot grow tables past its memory.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// The guard region after each linear memory: 64 KiB (memories are reserved only up to their
/// cap, so a small guard keeps the pool's virtual footprint proportional to its size).
const MEMORY_GUARD_BYTES: u64 = 64 << 10;

/// Builds a [`PluginHost`].
#[derive(Clone, Debug)]
pub struct HostBuilder {
    max_instances: u32,
    max_memory_bytes: u64,
    cache_dir: Option<PathBuf>,
    epoch_tick: Duration,
    perf_map: bool,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            cache_dir: Some(default_cache_dir()),
            epoch_tick: DEFAULT_EPOCH_TICK,
            perf_map: false,
        }
    }
}

impl HostBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most plugin instances alive at once (the pooling allocator's size). Instantiating past it
    /// fails with `INTERNAL`; servers keep in-flight work below it. Defaults to 512.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// Ceiling on one instance's linear memory, in bytes; per-reward limits must stay under it.
    /// Defaults to 4 GiB.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Where compiled plugins are cached; `None` compiles on every load. Defaults to
    /// [`default_cache_dir`].
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Resolution of wall-clock deadlines. Defaults to 10 ms.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick;
        self
    }

    /// Writes `/tmp/perf-PID.map` as plugins load, so `perf record` / `perf report` name the guest's
    /// own functions (CPython's, a Rust plugin's) instead of anonymous JIT addresses. Off by default.
    pub fn perf_map(mut self, on: bool) -> Self {
        self.perf_map = on;
        self
    }

    /// Builds the engine and starts its epoch ticker (a thread that stops when the engine is dropped).
    pub fn build(self) -> Result<PluginHost> {
        anyhow::ensure!(self.max_instances > 0, "max_instances must be at least 1");
        anyhow::ensure!(!self.epoch_tick.is_zero(), "epoch_tick must be positive");
        let mut pool = PoolingAllocationConfig::new();
        // Sizes derive from one baseline, the number of live component instances. A Python
        // component holds a few dozen core instances, tables and memories; Rust ones one each.
        let n = self.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(POOL_MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(POOL_TABLES_PER_COMPONENT))
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_component_instance_size(MAX_COMPONENT_INSTANCE_STATE_BYTES)
            .max_core_instance_size(MAX_CORE_INSTANCE_STATE_BYTES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(usize::try_from(self.max_memory_bytes).context("max_memory_bytes")?);

        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(DEFAULT_MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Reserve only what a memory may grow to, not the default 4 GiB + guard, so the pool's
            // virtual footprint stays proportional to its size.
            .memory_reservation(self.max_memory_bytes)
            .memory_guard_size(MEMORY_GUARD_BYTES)
            .memory_reservation_for_growth(0)
            // Same score on every machine: NaNs produced by float arithmetic get the canonical bit
            // pattern (x86 and ARM differ otherwise, and a guest can read the bits), and relaxed
            // SIMD instructions take their deterministic semantics instead of the CPU's.
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .wasm_component_model(true);
        if self.perf_map {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("configuring the wasm engine")?;
        spawn_epoch_ticker(&engine, self.epoch_tick);
        let cache = ArtifactCache::new(&engine, self.cache_dir);
        Ok(PluginHost {
            inner: Arc::new(HostInner { engine, cache, epoch_tick: self.epoch_tick, max_memory_bytes: self.max_memory_bytes }),
        })
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("reward-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .expect("spawning the epoch ticker thread");
}

/// The process-wide plugin host. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) cache: ArtifactCache,
    pub(crate) epoch_tick: Duration,
    pub(crate) max_memory_bytes: u64,
}

impl HostInner {
    /// Compiles component bytes (or takes them from the cache); returns the component and the
    /// bytes' hex sha256. The error names `origin`.
    pub(crate) fn compile(&self, origin: &str, bytes: &[u8]) -> Result<(wasmtime::component::Component, String), LoadError> {
        let sha256 = sha256_hex(bytes);
        let component = self
            .cache
            .load(&self.engine, bytes, &sha256)
            .map_err(|e| LoadError::Compile { origin: origin.into(), message: format!("{e:#}") })?;
        Ok((component, sha256))
    }
}

impl PluginHost {
    /// A host with default settings.
    pub fn new() -> Result<Self> {
        HostBuilder::new().build()
    }

    /// The process's one wasmtime engine.
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The per-instance memory ceiling that per-reward limits must respect.
    pub fn max_memory_bytes(&self) -> u64 {
        self.inner.max_memory_bytes
    }

    /// Loads a plugin from a component file: checks its imports and contract version, compiles it
    /// (or takes it from the cache), instantiates it once and reads its metadata.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Arc<Plugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read { path: path.to_owned(), source: e })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads an interpreter component (the `program-runner` world) from a file, for rewards that
    /// grant it (see [`crate::programs`]).
    pub fn load_interpreter_file(&self, path: &std::path::Path) -> Result<Arc<Interpreter>, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read { path: path.to_owned(), source: e })?;
        Interpreter::load(self.inner.clone(), &path.display().to_string(), &bytes).map(Arc::new)
    }

    /// Loads a plugin from component bytes; `origin` names it in errors (a path, usually).
    pub fn load_bytes(&self, origin: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        Plugin::load(self.inner.clone(), origin, bytes).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a core module's `run` export (no params, one i64 or v128 result read as i64) on the
    /// host's engine.
    fn run_i64(wat: &str) -> i64 {
        let host = HostBuilder::new().cache_dir(None).max_instances(4).build().unwrap();
        let module = wasmtime::Module::new(host.engine(), wat::parse_str(wat).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(host.engine(), ());
        store.set_fuel(1_000_000).unwrap();
        store.set_epoch_deadline(1_000);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        instance.get_typed_func::<(), i64>(&mut store, "run").unwrap().call(&mut store, ()).unwrap()
    }

    /// `inf - inf` is a NaN whose sign bit x86 sets and ARM does not; canonicalised it is
    /// 0x7ff8000000000000 on both, so a guest reading the bits scores the same everywhere.
    #[test]
    fn nan_bits_are_canonical() {
        let bits = run_i64(
            r#"(module (func (export "run") (result i64)
                 (i64.reinterpret_f64 (f64.sub (f64.const inf) (f64.const inf)))))"#,
        );
        assert_eq!(bits as u64, 0x7ff8_0000_0000_0000, "got {:#x}", bits as u64);
    }

    /// Relaxed SIMD's truncation of NaN is 0 under the deterministic semantics (x86's native
    /// instruction gives i32::MIN).
    #[test]
    fn relaxed_simd_is_deterministic() {
        let lane = run_i64(
            r#"(module (func (export "run") (result i64)
                 (i64.extend_i32_s (i32x4.extract_lane 0
                   (i32x4.relaxed_trunc_f32x4_s (f32x4.splat (f32.const nan)))))))"#,
        );
        assert_eq!(lane, 0);
    }
}
