//! Host bindings for the plugin contract, generated from `reward-plugins/wit/reward.wit`
//! (contract version 0.1.0).

wasmtime::component::bindgen!({
    path: "../reward-plugins/wit",
    world: "reward-plugin",
});

/// The contract's types, under a short name.
pub(crate) use exports::reward::plugin::reward as wit;
