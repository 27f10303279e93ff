//! The five host hooks SQLite's wasm build (`sqlite-wasm-rs`) links against, defined
//! deterministically so that the sandbox stays pure: a query scores the same on every run.
//!
//! - clock: fixed at 2000-01-01T00:00:00Z, so `date('now')` and `CURRENT_TIMESTAMP` are constants;
//! - `random`: a fixed byte pattern (SQLite only seeds its PRNG from it; `random()` and
//!   `randomblob()` are refused by the authorizer anyway, see `exec`);
//! - entropy and local time: "unsupported";
//! - sleep: returns at once (nothing in a read-only in-memory database waits).

/// The fixed clock, in Unix milliseconds: 2000-01-01T00:00:00Z.
pub const FIXED_EPOCH_MS: i64 = 946_684_800_000;

const UNSUPPORTED: i32 = 1;

#[unsafe(no_mangle)]
extern "C" fn rust_sqlite_wasm_host_sleep(_seconds: u64, _nanoseconds: u32) {}

#[unsafe(no_mangle)]
unsafe extern "C" fn rust_sqlite_wasm_host_random(buf: *mut u8, len: usize) -> usize {
    // SAFETY: SQLite passes a writable buffer of `len` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    for (i, b) in out.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(0x9d).wrapping_add(0x3b);
    }
    len
}

#[unsafe(no_mangle)]
unsafe extern "C" fn rust_sqlite_wasm_host_epoch_timestamp_in_ms(out: *mut i64) -> i32 {
    // SAFETY: SQLite passes a valid, aligned pointer.
    unsafe { *out = FIXED_EPOCH_MS };
    0
}

#[unsafe(no_mangle)]
extern "C" fn rust_sqlite_wasm_host_fill_entropy(_buf: *mut u8, _len: usize) -> i32 {
    UNSUPPORTED
}

#[unsafe(no_mangle)]
extern "C" fn rust_sqlite_wasm_host_localtime(_unix_seconds: i64, _out: *mut u8) -> i32 {
    UNSUPPORTED
}
