//! The rewards config (TOML): named rewards, each a plugin with its config, limits and failure
//! policy, or a composite of other rewards with a formula. Parsed and checked completely at load
//! time (plugins loaded, configs accepted by their plugins, formulas resolved), so a typo fails at
//! start-up with a message that names the reward and the field.
//!
//! ```toml
//! plugin_dir = "target/plugins"      # where `plugin = "NAME"` looks for NAME.wasm (relative to this file)
//!
//! [rewards.answer_format]
//! plugin = "format"
//! on_error = "zero"                  # zero | abstain | fail
//! limits = { fuel = 100_000_000, timeout_ms = 2000, memory_mib = 64 }
//! config = { required_tags = ["think", "answer"] }
//!
//! [rewards.text_to_sql]
//! plugin = "sql"
//! fixtures = "fixtures/spider"       # grants the plugin read access to the files in this directory
//!
//! [rewards.code]
//! plugin = "code"
//! interpreter = { plugin = "python-runner", fuel = 1_000_000_000, timeout_ms = 5000, memory_mib = 128 }
//!                                    # grants an interpreter: each program run in fresh instances
//!
//! [rewards.agreement]
//! plugin = "group"
//! groups = true                      # scores whole GRPO groups, one group per call (`crate::group`)
//! config = { mode = "majority" }
//!
//! [rewards.math]
//! components = { fmt = "answer_format", correct = "numeric_answer" }
//! formula = "if(fmt >= 1, correct, 0)"
//!
//! [judges.local]                     # a model rewards may ask (see `crate::judge::JudgeSpec`)
//! url = "http://127.0.0.1:8080/v1"
//! model = "SmolLM2-135M-Instruct"
//! requests_per_minute = 600
//!
//! [rewards.helpful]
//! plugin = "openai-grader"
//! judge = "local"                    # or { name = "local", max_calls_per_rollout = 4 }
//! config = { type = "score_model", ... }
//!
//! [rewards.saved_grader]
//! plugin = "openai-grader"
//! config_file = "graders/exact.json" # the config as a JSON file (relative to this file)
//!
//! [graders]                          # the OpenAI graders door: rewards built from grader objects
//! judge = "local"                    #   callers send (`crate::graders`); every key as a reward's,
//! interpreter = { plugin = "python-runner" }   # plugin defaults to "openai-grader"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::formula::Formula;
use crate::graders::{DEFAULT_GRADER_PLUGIN, Graders};
use crate::judge::{DEFAULT_MAX_CALLS_PER_ROLLOUT, Judge, JudgeGrant, JudgeSpec};
use crate::programs::{Grant, Interpreter, RunBudget};
use crate::reward::{CompositeReward, OnError, PluginReward, Reward, RewardKind};
use crate::{Fixtures, Grants, Limits, Plugin, PluginHost, Provenance, sha256_hex};

/// Deepest nesting of rewards accepted: 64 levels (a plugin reward is one level, a composite one
/// more than its deepest component). Loading, scoring and dropping a reward recurse once per
/// level, so a long chain of composites in a reloaded config cannot overflow the stack of the
/// thread that loads or scores it (a chain of 2,000 did, on a 2 MiB thread); it is refused at load.
pub const MAX_REWARD_DEPTH: usize = 64;
/// Most plugin uses one rollout of a reward may cost: 256. A composite evaluates each of its
/// components, and a component shared by two parents once per parent, so the uses of a reward
/// are its paths down to plugin rewards: 20 levels of composites whose two components are the
/// same reward are 2^20 plugin calls (and twice as many metrics) per rollout from a 2 KB config.
/// Counted at load, sharing included; a reward over the cap is refused with its count.
pub const MAX_PLUGIN_USES: u64 = 256;
/// Largest `config_file` read: 4 MiB (a config is parsed whole, and kept with the reward).
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardsFile {
    /// Where bare plugin names resolve, relative to the config file. Defaults to `target/plugins`.
    plugin_dir: Option<PathBuf>,
    #[serde(default)]
    rewards: BTreeMap<String, RewardSpec>,
    /// Models rewards may ask (`[judges.NAME]`), each shared by the rewards granted it.
    #[serde(default)]
    judges: BTreeMap<String, JudgeSpec>,
    /// How grader objects sent to the graders door run (`[graders]`): a plugin reward's table
    /// without its `config` (each grader a caller sends is one), see [`Loader::graders`]. Absent,
    /// the door is off.
    graders: Option<RewardSpec>,
}

/// One `[rewards.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardSpec {
    description: Option<String>,
    plugin: Option<String>,
    config: Option<toml::Value>,
    /// The config in a JSON file instead (an OpenAI grader object as saved), relative to the
    /// config file; at most [`MAX_CONFIG_FILE_BYTES`]. Not with `config`.
    config_file: Option<PathBuf>,
    limits: Option<Limits>,
    /// A directory whose files the plugin may read (`fixtures.read`), relative to the config file.
    fixtures: Option<PathBuf>,
    /// An interpreter the plugin may run programs in (`programs`): `plugin` (resolved like a
    /// reward's) and the [`RunBudget`] fields.
    interpreter: Option<toml::Table>,
    /// A judge the plugin may ask (`judge`): a `[judges.NAME]` name, or `{ name, max_calls_per_rollout }`.
    judge: Option<toml::Value>,
    /// The plugin scores whole GRPO groups, one group per call (`crate::group`). Off by default.
    #[serde(default)]
    groups: bool,
    #[serde(default)]
    on_error: OnError,
    components: Option<BTreeMap<String, String>>,
    formula: Option<String>,
}

/// The loaded rewards, by name.
#[derive(Debug, Default)]
pub struct Rewards {
    by_name: BTreeMap<String, Arc<Reward>>,
    /// The `[graders]` table's rewards-on-demand, when the config has one.
    graders: Option<Arc<Graders>>,
    /// The files the load read besides the config file itself (`config_file`s), sorted.
    sources: Vec<PathBuf>,
}

impl Rewards {
    /// Loads and checks a rewards config file, loading every plugin it names through `host`.
    pub fn load(host: &PluginHost, path: &Path) -> Result<Rewards> {
        Self::load_selected(host, path, None)
    }

    /// Loads only the reward `name` of a config file, and the components it is made of: what a
    /// process that serves one reward (the Lambda bridge scoring in process) needs, without
    /// compiling the plugins of every other reward at a cold start. The other rewards' tables are
    /// still parsed (a typo anywhere fails), not built. An unknown `name` lists the known ones.
    pub fn load_one(host: &PluginHost, path: &Path, name: &str) -> Result<Rewards> {
        Self::load_selected(host, path, Some(name))
    }

    fn load_selected(host: &PluginHost, path: &Path, only: Option<&str>) -> Result<Rewards> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading rewards config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::build(host, &text, base, only).with_context(|| format!("in rewards config {}", path.display()))
    }

    /// Loads rewards from TOML text; relative plugin paths resolve against `base`.
    pub fn from_toml(host: &PluginHost, text: &str, base: &Path) -> Result<Rewards> {
        Self::build(host, text, base, None)
    }

    fn build(host: &PluginHost, text: &str, base: &Path, only: Option<&str>) -> Result<Rewards> {
        let file: RewardsFile = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        if file.rewards.is_empty() {
            // Also what a half-written file looks like to a reload: refuse rather than serve nothing.
            bail!("the config defines no rewards (add a [rewards.NAME] table)");
        }
        if let Some(name) = only
            && !file.rewards.contains_key(name)
        {
            return Err(UnknownReward { name: name.to_owned(), known: file.rewards.keys().cloned().collect::<Vec<_>>().join(", ") }.into());
        }
        for (name, spec) in &file.judges {
            spec.validate().with_context(|| format!("[judges.{name}]"))?;
        }
        let plugin_dir = base.join(file.plugin_dir.as_deref().unwrap_or(Path::new("target/plugins")));
        let mut loader = Loader {
            host,
            base: base.to_owned(),
            plugin_dir,
            specs: &file.rewards,
            judge_specs: &file.judges,
            judges: HashMap::new(),
            plugins: HashMap::new(),
            interpreters: HashMap::new(),
            done: BTreeMap::new(),
            depths: HashMap::new(),
            uses: HashMap::new(),
            sources: Vec::new(),
        };
        let graders = match only {
            Some(name) => {
                loader.resolve(name, &mut Vec::new())?;
                None // a process serving one reward serves no graders door
            }
            None => {
                for name in file.rewards.keys() {
                    loader.resolve(name, &mut Vec::new())?;
                }
                file.graders.as_ref().map(|spec| loader.graders(spec).context("[graders]")).transpose()?.map(Arc::new)
            }
        };
        let mut sources = loader.sources;
        sources.sort();
        sources.dedup();
        Ok(Rewards { by_name: loader.done, graders, sources })
    }

    /// The files the load read besides the config file (each reward's `config_file`): a server
    /// watches them with the config, so an edited grader JSON reloads too.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// What builds rewards from grader objects (the `[graders]` table); `None` when the config
    /// has no such table, and the graders door is off.
    pub fn graders(&self) -> Option<&Arc<Graders>> {
        self.graders.as_ref()
    }

    /// The reward with this name, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Arc<Reward>, UnknownReward> {
        self.by_name
            .get(name)
            .ok_or_else(|| UnknownReward { name: name.to_owned(), known: self.by_name.keys().cloned().collect::<Vec<_>>().join(", ") })
    }

    /// Every reward, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Reward>> {
        self.by_name.values()
    }
}

/// A reward name that is not in the config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown reward `{name}` (known: {known})")]
pub struct UnknownReward {
    /// The name asked for.
    pub name: String,
    /// The configured names, comma-separated.
    pub known: String,
}

struct Loader<'a> {
    host: &'a PluginHost,
    /// The config file's directory: plugin paths are relative to it.
    base: PathBuf,
    plugin_dir: PathBuf,
    specs: &'a BTreeMap<String, RewardSpec>,
    judge_specs: &'a BTreeMap<String, JudgeSpec>,
    /// The judges built so far (one per `[judges.NAME]` a loaded reward names, shared).
    judges: HashMap<String, Arc<Judge>>,
    plugins: HashMap<PathBuf, Arc<Plugin>>,
    interpreters: HashMap<PathBuf, Arc<Interpreter>>,
    done: BTreeMap<String, Arc<Reward>>,
    /// The nesting depth of each reward in `done` (see [`MAX_REWARD_DEPTH`]).
    depths: HashMap<String, usize>,
    /// The plugin uses of one rollout of each reward in `done` (see [`MAX_PLUGIN_USES`]).
    uses: HashMap<String, u64>,
    /// The `config_file`s read.
    sources: Vec<PathBuf>,
}

impl Loader<'_> {
    fn resolve(&mut self, name: &str, stack: &mut Vec<String>) -> Result<Arc<Reward>> {
        if let Some(r) = self.done.get(name) {
            return Ok(r.clone());
        }
        if stack.iter().any(|n| n == name) {
            bail!("rewards form a cycle: {} -> {name}", stack.join(" -> "));
        }
        let spec = self.specs.get(name).ok_or_else(|| {
            anyhow!("reward `{}` names component reward `{name}`, which is not defined", stack.last().map(String::as_str).unwrap_or("?"))
        })?;
        if stack.len() >= MAX_REWARD_DEPTH {
            bail!("rewards nest deeper than {MAX_REWARD_DEPTH} levels: {} -> ... -> {name}", stack[0]);
        }
        stack.push(name.to_owned());
        let reward = self.build(name, spec, stack).with_context(|| format!("reward `{name}`"))?;
        stack.pop();
        // Components loaded before this reward (by name order) did not count on the stack.
        let depth = match &reward.kind {
            RewardKind::Plugin(_) => 1,
            RewardKind::Composite(c) => 1 + c.components.iter().map(|(_, r)| self.depths[&r.name]).max().unwrap_or(0),
        };
        if depth > MAX_REWARD_DEPTH {
            bail!("reward `{name}`: rewards nest deeper than {MAX_REWARD_DEPTH} levels (it is {depth} levels deep)");
        }
        let uses = match &reward.kind {
            RewardKind::Plugin(_) => 1,
            RewardKind::Composite(c) => c.components.iter().fold(0u64, |n, (_, r)| n.saturating_add(self.uses[&r.name])),
        };
        if uses > MAX_PLUGIN_USES {
            bail!(
                "reward `{name}`: one rollout would cost {uses} plugin calls, more than the {MAX_PLUGIN_USES} allowed (a component shared by several parents is called once per parent)"
            );
        }
        let reward = Arc::new(reward);
        self.depths.insert(name.to_owned(), depth);
        self.uses.insert(name.to_owned(), uses);
        self.done.insert(name.to_owned(), reward.clone());
        Ok(reward)
    }

    fn build(&mut self, name: &str, spec: &RewardSpec, stack: &mut Vec<String>) -> Result<Reward> {
        match (&spec.plugin, &spec.components, &spec.formula) {
            (Some(plugin), None, None) => self.build_plugin(name, spec, plugin),
            (None, Some(components), Some(formula)) => {
                if spec.config.is_some()
                    || spec.config_file.is_some()
                    || spec.limits.is_some()
                    || spec.fixtures.is_some()
                    || spec.interpreter.is_some()
                    || spec.judge.is_some()
                    || spec.groups
                {
                    bail!(
                        "a composite reward takes no `config`, `config_file`, `limits`, `fixtures`, `interpreter`, `judge` or `groups`: set them on its components (a composite scores whole groups when one of its components does)"
                    );
                }
                self.build_composite(name, spec, components, formula, stack)
            }
            (None, Some(_), None) => bail!("`components` needs a `formula` that combines them"),
            (None, None, Some(_)) => bail!("`formula` needs `components` (alias = \"reward name\")"),
            (Some(_), _, _) => bail!("set either `plugin` or `components` + `formula`, not both"),
            (None, None, None) => bail!("set `plugin` (a plugin reward) or `components` + `formula` (a composite)"),
        }
    }

    fn plugin_path(&self, plugin: &str) -> PathBuf {
        if plugin.ends_with(".wasm") || plugin.contains('/') {
            self.base.join(plugin)
        } else {
            self.plugin_dir.join(format!("{plugin}.wasm"))
        }
    }

    /// The plugin `plugin_name` names (see [`Loader::plugin_path`]), loaded once per file.
    fn plugin(&mut self, plugin_name: &str) -> Result<Arc<Plugin>> {
        let path = self.plugin_path(plugin_name);
        if let Some(p) = self.plugins.get(&path) {
            return Ok(p.clone());
        }
        if !path.exists() {
            bail!("plugin `{plugin_name}` not found at {} (build the built-in plugins with scripts/build-plugins.sh)", path.display());
        }
        let p = self.host.load_file(&path)?;
        self.plugins.insert(path, p.clone());
        Ok(p)
    }

    fn build_plugin(&mut self, name: &str, spec: &RewardSpec, plugin_name: &str) -> Result<Reward> {
        let plugin = self.plugin(plugin_name)?;
        let config = match (&spec.config, &spec.config_file) {
            (Some(v), None) => serde_json::to_value(v).context("converting `config` to JSON")?,
            (None, Some(file)) => self.config_file(file).context("`config_file`")?,
            (None, None) => serde_json::Value::Object(Default::default()),
            (Some(_), Some(_)) => bail!("set `config` or `config_file`, not both"),
        };
        let (limits, grants) = self.limits_and_grants(spec)?;
        PluginParts {
            name,
            description: spec.description.clone(),
            plugin,
            config,
            limits,
            grants,
            on_error: spec.on_error,
            groups: spec.groups,
        }
        .build()
        .map_err(|e| anyhow!("{e}"))
    }

    /// A `config_file`: JSON, at most [`MAX_CONFIG_FILE_BYTES`], relative to the config file.
    fn config_file(&mut self, file: &Path) -> Result<serde_json::Value> {
        use std::io::Read;
        let path = self.base.join(file);
        let opened = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut text = String::new();
        opened
            .take(MAX_CONFIG_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {} (it must be UTF-8 JSON)", path.display()))?;
        if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
            bail!("{} is larger than {MAX_CONFIG_FILE_BYTES} bytes", path.display());
        }
        let config = serde_json::from_str(&text).map_err(|e| anyhow!("{} is not JSON: {e}", path.display()))?;
        self.sources.push(path);
        Ok(config)
    }

    /// The `[graders]` table's [`Graders`]: a plugin reward's table (`plugin`, default
    /// [`DEFAULT_GRADER_PLUGIN`], `limits`, `interpreter`, `judge`, `on_error`) whose config is
    /// each grader a caller sends; its plugin and grants are loaded as a reward's (sharing the
    /// judges and interpreters of the rewards).
    fn graders(&mut self, spec: &RewardSpec) -> Result<Graders> {
        if spec.config.is_some()
            || spec.config_file.is_some()
            || spec.description.is_some()
            || spec.fixtures.is_some()
            || spec.groups
            || spec.components.is_some()
            || spec.formula.is_some()
        {
            bail!("takes `plugin`, `limits`, `interpreter`, `judge` and `on_error` only: each grader a caller sends is the config");
        }
        let plugin = self.plugin(spec.plugin.as_deref().unwrap_or(DEFAULT_GRADER_PLUGIN))?;
        let (limits, grants) = self.limits_and_grants(spec)?;
        Ok(Graders::new(plugin, limits, grants, spec.on_error))
    }

    /// A plugin reward's `limits` (validated against the host) and what it grants: `fixtures`,
    /// `interpreter`, `judge`. An error names the key.
    fn limits_and_grants(&mut self, spec: &RewardSpec) -> Result<(Limits, Grants)> {
        let limits = spec.limits.clone().unwrap_or_default();
        limits.validate(self.host.max_memory_bytes()).map_err(|e| anyhow!("`limits`: {e}"))?;
        let fixtures = match &spec.fixtures {
            Some(dir) => Some(Arc::new(Fixtures::new(&self.base.join(dir)).map_err(|e| anyhow!("`fixtures`: {e}"))?)),
            None => None,
        };
        let programs = match &spec.interpreter {
            Some(table) => Some(self.interpreter_grant(table).context("`interpreter`")?),
            None => None,
        };
        let judge = match &spec.judge {
            Some(value) => Some(self.judge_grant(value).context("`judge`")?),
            None => None,
        };
        Ok((limits, Grants { fixtures, programs, judge }))
    }

    /// The judge a reward grants (see [`JudgeGrantSpec::read`]), its judge built once per
    /// `[judges.NAME]` and shared by every reward that names it.
    fn judge_grant(&mut self, value: &toml::Value) -> Result<JudgeGrant> {
        let JudgeGrantSpec { name, max_calls_per_rollout } = JudgeGrantSpec::read(value)?;
        let max_calls_per_rollout = max_calls_per_rollout.get();
        let judge = match self.judges.get(&name) {
            Some(judge) => judge.clone(),
            None => {
                let spec = self.judge_specs.get(&name).ok_or_else(|| {
                    let known = self.judge_specs.keys().cloned().collect::<Vec<_>>();
                    anyhow!(
                        "names judge `{name}`, which is not defined (add a [judges.{name}] table; defined: {})",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    )
                })?;
                let judge = Arc::new(Judge::new(&name, spec.clone(), &self.base).with_context(|| format!("[judges.{name}]"))?);
                self.judges.insert(name, judge.clone());
                judge
            }
        };
        Ok(JudgeGrant { judge, max_calls_per_rollout })
    }

    /// The interpreter a reward grants (see [`InterpreterSpec::read`]): `plugin` loaded (once
    /// per file) as an interpreter component, the other keys its [`RunBudget`].
    fn interpreter_grant(&mut self, table: &toml::Table) -> Result<Grant> {
        let InterpreterSpec { plugin: name, budget } = InterpreterSpec::read(table)?;
        budget.validate(self.host.max_memory_bytes()).map_err(|e| anyhow!("{e}"))?;
        let path = self.plugin_path(&name);
        let interpreter = match self.interpreters.get(&path) {
            Some(i) => i.clone(),
            None => {
                if !path.exists() {
                    bail!("interpreter `{name}` not found at {} (scripts/build-plugins.sh builds python-runner)", path.display());
                }
                let i = self.host.load_interpreter_file(&path)?;
                self.interpreters.insert(path, i.clone());
                i
            }
        };
        Ok(Grant { interpreter, budget })
    }

    fn build_composite(
        &mut self,
        name: &str,
        spec: &RewardSpec,
        components: &BTreeMap<String, String>,
        formula_text: &str,
        stack: &mut Vec<String>,
    ) -> Result<Reward> {
        if components.is_empty() {
            bail!("`components` is empty");
        }
        let formula = Formula::parse(formula_text).map_err(|e| anyhow!("`formula`: {e}"))?;
        let mut resolved = Vec::with_capacity(components.len());
        for (alias, target) in components {
            if alias.is_empty()
                || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || alias.starts_with(|c: char| c.is_ascii_digit())
            {
                bail!("component alias `{alias}` must be a name usable in the formula (letters, digits, `_`)");
            }
            resolved.push((alias.clone(), self.resolve(target, stack)?));
        }
        let mut slots = Vec::with_capacity(formula.vars().len());
        for var in formula.vars() {
            let index = resolved.iter().position(|(a, _)| *a == var.component).ok_or_else(|| {
                anyhow!(
                    "`formula` names `{}`, which is not one of its components ({})",
                    var.component,
                    components.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            if let Some(metric) = &var.metric {
                check_metric_declared(&resolved[index].1, metric).map_err(|e| anyhow!("`formula` names `{var}`: {e}"))?;
            }
            slots.push((index, var.metric.clone()));
        }
        let unused: Vec<&str> =
            resolved.iter().filter(|(a, _)| !formula.vars().iter().any(|v| &v.component == a)).map(|(a, _)| a.as_str()).collect();
        if !unused.is_empty() {
            tracing::warn!(reward = name, "components not used by the formula: {}", unused.join(", "));
        }
        let plugin_sha256 = hash_of(&serde_json::json!(
            resolved.iter().map(|(a, r)| (a.clone(), r.provenance.plugin_sha256.clone())).collect::<BTreeMap<_, _>>()
        ));
        let judge_models: std::collections::BTreeSet<&String> = resolved.iter().flat_map(|(_, r)| &r.provenance.judge_models).collect();
        let judge_models = judge_models.into_iter().cloned().collect();
        let config_hash = hash_of(&serde_json::json!({
            "formula": formula_text,
            "on_error": spec.on_error,
            "components": resolved.iter().map(|(a, r)| (a.clone(), r.provenance.config_hash.clone())).collect::<BTreeMap<_, _>>(),
        }));
        Ok(Reward {
            name: name.to_owned(),
            description: spec.description.clone().unwrap_or_else(|| format!("composite: {formula_text}")),
            kind: RewardKind::Composite(CompositeReward { components: resolved, formula, slots }),
            on_error: spec.on_error,
            provenance: Arc::new(Provenance { reward: name.to_owned(), plugin_sha256, config_hash, judge_models }),
        })
    }
}

/// A plugin reward's parts, its plugin loaded and its grants built: [`PluginParts::build`] is the
/// one place a plugin reward's config is checked and its provenance hashed, for a
/// `[rewards.NAME]` table and for a grader object sent to the graders door ([`Graders`]) alike.
pub(crate) struct PluginParts<'a> {
    pub name: &'a str,
    /// The reward's description; `None` for the plugin's own.
    pub description: Option<String>,
    pub plugin: Arc<Plugin>,
    /// The plugin's config, as JSON.
    pub config: serde_json::Value,
    /// Already validated against the host.
    pub limits: Limits,
    pub grants: Grants,
    pub on_error: OnError,
    pub groups: bool,
}

impl PluginParts<'_> {
    /// The reward, once its plugin accepts the config (the plugin's refusal, naming the plugin
    /// and its version, otherwise).
    pub(crate) fn build(self) -> Result<Reward, String> {
        let PluginParts { name, description, plugin, config, limits, grants, on_error, groups } = self;
        let config_json = config.to_string();
        plugin
            .check_config(&config_json)
            .map_err(|e| format!("`config` rejected by plugin \"{}\" version {}: {e}", plugin.info().name, plugin.info().version))?;
        let mut provenance = serde_json::json!({
            "config": config,
            "limits": limits.provenance_json(),
            "on_error": on_error,
            "fixtures": grants.fixtures.as_ref().map(|f| f.dir().display().to_string()),
        });
        // Only a reward that grants an interpreter has the key, so no other hash changes.
        if let Some(grant) = &grants.programs {
            provenance["interpreter"] =
                serde_json::json!({ "sha256": grant.interpreter.sha256(), "budget": grant.budget.provenance_json() });
        }
        // Likewise the judge: what is asked, and of which model, is part of the reward's definition.
        if let Some(grant) = &grants.judge {
            let spec = grant.judge.spec();
            provenance["judge"] = serde_json::json!({
                "url": spec.url, "model": spec.model, "seed": spec.seed, "max_tokens": spec.max_tokens,
                "max_calls_per_rollout": grant.max_calls_per_rollout,
            });
        }
        // And whether it scores groups: the same plugin and config score otherwise then.
        if groups {
            provenance["groups"] = serde_json::Value::Bool(true);
        }
        let config_hash = hash_of(&provenance);
        let judge_models = grants.judge.iter().map(|grant| grant.judge.spec().model.clone()).collect();
        let provenance =
            Arc::new(Provenance { reward: name.to_owned(), plugin_sha256: plugin.sha256().to_owned(), config_hash, judge_models });
        Ok(Reward {
            name: name.to_owned(),
            description: description.unwrap_or_else(|| plugin.info().description.clone()),
            kind: RewardKind::Plugin(PluginReward { plugin, config_json, limits, grants, groups }),
            on_error,
            provenance,
        })
    }
}

/// A reward's `judge`: `"NAME"`, or `{ name = "NAME", max_calls_per_rollout = N }`, NAME a
/// `[judges.NAME]` table.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct JudgeGrantSpec {
    /// The `[judges.NAME]` the reward may ask.
    name: String,
    /// Most calls one rollout may make. Defaults to [`DEFAULT_MAX_CALLS_PER_ROLLOUT`].
    #[serde(default = "default_max_calls_per_rollout")]
    max_calls_per_rollout: NonZeroU32,
}

fn default_max_calls_per_rollout() -> NonZeroU32 {
    NonZeroU32::new(DEFAULT_MAX_CALLS_PER_ROLLOUT).expect("the default is at least 1")
}

impl JudgeGrantSpec {
    /// Reads the short form (a name) or the table; an error names the offending key.
    fn read(value: &toml::Value) -> Result<JudgeGrantSpec> {
        match value {
            toml::Value::String(name) => Ok(JudgeGrantSpec { name: name.clone(), max_calls_per_rollout: default_max_calls_per_rollout() }),
            toml::Value::Table(_) => value.clone().try_into().map_err(|e| anyhow!("{}", table_error(e))),
            other => bail!("must be a judge's name or a table `{{ name = \"NAME\" }}`, not {}", other.type_str()),
        }
    }
}

/// A reward's `interpreter`: `{ plugin = "NAME", ... }`, `plugin` resolved like a reward's and the
/// other keys the [`RunBudget`] of each run.
#[derive(Debug, PartialEq, Eq)]
struct InterpreterSpec {
    /// The interpreter component: a name in the plugin directory or a `.wasm` path.
    plugin: String,
    /// What each run may spend.
    budget: RunBudget,
}

/// The `plugin` key of an `interpreter` table, the rest left to [`RunBudget`]: serde's `flatten`
/// cannot be combined with `deny_unknown_fields`, so the rest is collected here as any table and
/// read by `RunBudget`, which refuses unknown keys itself. `plugin` is the only key this struct
/// types, so an error reading it is about `plugin` (`flatten` buffers the values, and the error
/// loses its key).
#[derive(Debug, Deserialize)]
struct InterpreterTable {
    plugin: Option<String>,
    #[serde(flatten)]
    budget: toml::Table,
}

impl InterpreterSpec {
    /// Reads the table; an error names the missing or offending key.
    fn read(table: &toml::Table) -> Result<InterpreterSpec> {
        let InterpreterTable { plugin, budget } = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| anyhow!("`plugin`: {} (an interpreter name or a .wasm path)", table_error(e)))?;
        let Some(plugin) = plugin else {
            bail!("`plugin` is missing (e.g. `interpreter = {{ plugin = \"python-runner\" }}`)");
        };
        let budget: RunBudget = toml::Value::Table(budget).try_into().map_err(|e| anyhow!("{}", table_error(e)))?;
        Ok(InterpreterSpec { plugin, budget })
    }
}

/// A serde error from reading a small table, on one line: toml writes the key it was reading on a
/// line of its own (`in `max_calls_per_rollout``).
fn table_error(e: toml::de::Error) -> String {
    e.to_string().trim_end().replace('\n', " ")
}

/// A formula may name a plugin component's metric only if the plugin declares it (plugins that
/// declare no metrics are taken at their word at run time).
fn check_metric_declared(reward: &Reward, metric: &str) -> Result<(), String> {
    match &reward.kind {
        RewardKind::Plugin(p) => {
            let declared = &p.plugin.info().metrics;
            let host_metric = p.grants.judge.is_some() && metric.starts_with("judge_");
            if declared.is_empty() || host_metric || declared.iter().any(|m| m == metric) {
                Ok(())
            } else {
                Err(format!("plugin \"{}\" declares no metric `{metric}` (it declares: {})", p.plugin.info().name, declared.join(", ")))
            }
        }
        RewardKind::Composite(_) => Ok(()),
    }
}

/// The sha256 (hex) of `value` as compact JSON with its object keys sorted. A plugin reward's
/// `config_hash` hashes `{config, fixtures, limits, on_error}` (limits per
/// [`Limits::provenance_json`]); a composite's hashes `{formula, on_error, components}` with each
/// component's own hash. Pinned by a test: changing it changes every result's provenance.
fn hash_of(value: &serde_json::Value) -> String {
    // serde_json's maps are sorted (no `preserve_order`), so this text is canonical.
    sha256_hex(value.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> toml::Value {
        toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap().remove("v").unwrap()
    }

    fn judge(text: &str) -> Result<JudgeGrantSpec> {
        JudgeGrantSpec::read(&value(text))
    }

    fn interpreter(text: &str) -> Result<InterpreterSpec> {
        match value(text) {
            toml::Value::Table(table) => InterpreterSpec::read(&table),
            other => panic!("not a table: {other}"),
        }
    }

    fn calls(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn a_judge_grant_is_a_name_or_a_table() {
        let default = calls(DEFAULT_MAX_CALLS_PER_ROLLOUT);
        assert_eq!(judge("\"j\"").unwrap(), JudgeGrantSpec { name: "j".into(), max_calls_per_rollout: default });
        assert_eq!(judge("{ name = \"j\" }").unwrap(), JudgeGrantSpec { name: "j".into(), max_calls_per_rollout: default });
        assert_eq!(
            judge("{ name = \"j\", max_calls_per_rollout = 3 }").unwrap(),
            JudgeGrantSpec { name: "j".into(), max_calls_per_rollout: calls(3) }
        );
    }

    #[test]
    fn a_bad_judge_grant_names_the_key() {
        let err = |text: &str| format!("{:#}", judge(text).unwrap_err());
        let missing = err("{ max_calls_per_rollout = 3 }");
        assert!(missing.contains("`name`"), "{missing}");
        let typo = err("{ name = \"j\", max_calls = 3 }");
        assert!(typo.contains("max_calls") && typo.contains("max_calls_per_rollout"), "{typo}");
        for bad in ["0", "-1", "\"3\"", "4294967296"] {
            let e = err(&format!("{{ name = \"j\", max_calls_per_rollout = {bad} }}"));
            assert!(e.contains("max_calls_per_rollout"), "{bad}: {e}");
        }
        let wrong_type = err("3");
        assert!(wrong_type.contains("must be a judge's name or a table") && wrong_type.contains("integer"), "{wrong_type}");
    }

    #[test]
    fn an_interpreter_grant_is_a_plugin_and_a_budget() {
        let plain = interpreter("{ plugin = \"python-runner\" }").unwrap();
        assert_eq!(plain, InterpreterSpec { plugin: "python-runner".into(), budget: RunBudget::default() });
        let sized = interpreter("{ plugin = \"r.wasm\", fuel = 7, timeout_ms = 250 }").unwrap();
        assert_eq!(sized.plugin, "r.wasm");
        assert_eq!(sized.budget, RunBudget { fuel: 7, deadline: std::time::Duration::from_millis(250), ..RunBudget::default() });
    }

    #[test]
    fn a_bad_interpreter_grant_names_the_key() {
        let err = |text: &str| format!("{:#}", interpreter(text).unwrap_err());
        let missing = err("{ fuel = 1 }");
        assert!(missing.contains("`plugin` is missing"), "{missing}");
        let not_a_string = err("{ plugin = 3 }");
        assert!(not_a_string.starts_with("`plugin`: ") && not_a_string.contains("integer"), "{not_a_string}");
        let typo = err("{ plugin = \"r\", memory_mb = 64 }");
        assert!(typo.contains("memory_mb") && typo.contains("memory_mib"), "{typo}");
        let bad_budget = err("{ plugin = \"r\", fuel = \"lots\" }");
        assert!(bad_budget.contains("fuel"), "{bad_budget}");
    }
}
