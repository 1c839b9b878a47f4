//! Links the `aft` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) when building on and for a GNU/Linux host whose glibc (2.36+) and GNU ld (2.38+)
//! support them. The position-independent binary carries ~80,000 relative relocations; as a
//! 2 MiB table the loader reads it at every start, as RELR it is 30 KiB. `aft run` peaks at
//! about 2 MiB less resident memory. Elsewhere the binary links as before.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    if !native || var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    let glibc = command_version(&["getconf", "GNU_LIBC_VERSION"]);
    let ld = command_version(&["ld", "--version"]);
    if glibc.is_some_and(|v| v >= (2, 36)) && ld.is_some_and(|v| v >= (2, 38)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The last `MAJOR.MINOR` in the first line a command prints (`glibc 2.36`,
/// `GNU ld (GNU Binutils for Debian) 2.40`); `None` if it cannot be run or has none.
fn command_version(cmd: &[&str]) -> Option<(u32, u32)> {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .rev()
        .find_map(|word| {
            let mut parts = word.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some((major, minor))
        })
}
