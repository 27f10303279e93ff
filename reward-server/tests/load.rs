//! Loading plugins: what the sandbox refuses, and what it reads off a good plugin.

mod common;

use common::{host, plugin_path};
use reward_server::engine::LoadError;

#[test]
fn a_wasi_importing_plugin_is_refused_naming_the_import() {
    let component = wat::parse_str(
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance
               (export "get-arguments" (func (result (list string))))))
             (import "wasi:clocks/wall-clock@0.2.0" (instance)))"#,
    )
    .unwrap();
    let err = host().load_bytes("wasi-guest.wasm", &component).unwrap_err();
    assert!(matches!(err, LoadError::ForbiddenImport { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("plugin wasi-guest.wasm imports `wasi:cli/environment@0.2.0`"), "{message}");
    assert!(message.contains("and 1 more: wasi:clocks/wall-clock@0.2.0"), "{message}");
}

#[test]
fn a_component_without_the_contract_is_refused() {
    let component = wat::parse_str("(component)").unwrap();
    let err = host().load_bytes("empty.wasm", &component).unwrap_err();
    assert!(matches!(err, LoadError::Contract { .. }), "{err}");
    assert!(err.to_string().contains("does not export reward:plugin/reward@0.1.0"), "{err}");
}

#[test]
fn garbage_is_a_compile_error_naming_the_file() {
    let err = host().load_bytes("junk.wasm", b"not wasm at all").unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    assert!(err.to_string().starts_with("compiling plugin junk.wasm"), "{err}");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = host().load_file(std::path::Path::new("/nonexistent/x.wasm")).unwrap_err();
    assert!(err.to_string().contains("reading plugin /nonexistent/x.wasm"), "{err}");
}

#[test]
fn metadata_and_hash_are_read() {
    let path = plugin_path("limits-guest");
    let plugin = host().load_file(&path).unwrap();
    assert_eq!(plugin.info().name, "limits-guest");
    assert_eq!(plugin.info().version, "0.1.0");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(plugin.sha256(), reward_server::engine::sha256_hex(&bytes));
    assert!(plugin.check_config("{}").is_ok());
}

#[test]
fn the_compiled_artifact_is_cached_by_hash_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let host = reward_server::engine::HostBuilder::new().cache_dir(Some(dir.path().to_owned())).build().unwrap();
    let path = plugin_path("limits-guest");
    host.load_file(&path).unwrap();
    let sha = reward_server::engine::sha256_hex(&std::fs::read(&path).unwrap());
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].starts_with(&sha) && cached[0].ends_with(".cwasm"), "{cached:?}");
    // A second load comes from the cache and behaves the same; a corrupt artifact is recompiled.
    host.load_file(&path).unwrap();
    std::fs::write(dir.path().join(&cached[0]), b"corrupt").unwrap();
    let plugin = host.load_file(&path).unwrap();
    assert_eq!(plugin.info().name, "limits-guest");
    assert!(std::fs::read(dir.path().join(&cached[0])).unwrap().len() > 1000, "artifact rewritten");
}
