//! Host bindings for the plugin contract, generated from `reward-plugins/wit/reward.wit`
//! (contract version 0.1.0). The host binds the larger world, `reward-plugin-full`: a component
//! of the plain `reward-plugin` world (no imports) instantiates against it unchanged.

wasmtime::component::bindgen!({
    path: "../reward-plugins/wit",
    world: "reward-plugin-full",
    // Rollouts are lowered straight from the engine's strings, without cloning them first.
    ownership: Borrowing { duplicate_if_necessary: true },
});

/// The contract's types, under a short name.
pub(crate) use exports::reward::plugin::reward as wit;
/// The `fixtures` import the host provides.
pub(crate) use reward::plugin::fixtures;
/// The `judge` import's types (the host defines it in [`crate::judge`], with the store at hand).
pub(crate) use reward::plugin::judge as judge_wit;
/// The `programs` import the host provides (see [`crate::programs`]).
pub(crate) use reward::plugin::programs;

/// Host bindings for interpreter components (world `program-runner` of
/// `reward-plugins/wit/programs.wit`), which run the programs behind `programs`.
pub(crate) mod runner {
    wasmtime::component::bindgen!({
        path: "../reward-plugins/wit",
        world: "program-runner",
    });

    pub(crate) use exports::reward::plugin::interpreter;
    pub(crate) use reward::plugin::candidate;
}
