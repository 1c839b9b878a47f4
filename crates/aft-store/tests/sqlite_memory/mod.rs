//! SQLite's own memory counters, for the tests that bound what the store keeps.
#![allow(dead_code)]

/// SQLite's page cache now, in bytes (all of it is "overflow": no fixed buffer is set up).
pub fn page_cache() -> i64 {
    let (mut cache, mut highwater) = (0i64, 0i64);
    // SAFETY: a plain read of SQLite's global counters, which it keeps thread-safe.
    unsafe {
        libsqlite3_sys::sqlite3_status64(
            libsqlite3_sys::SQLITE_STATUS_PAGECACHE_OVERFLOW,
            &mut cache,
            &mut highwater,
            0,
        );
    }
    cache
}

/// Bytes SQLite has allocated now, without its page cache (which the memory counter also
/// holds; its own setting, `cache_size`, bounds it).
pub fn statement_memory() -> i64 {
    // SAFETY: a plain read of SQLite's global counter, which it keeps thread-safe.
    let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
    used - page_cache()
}
