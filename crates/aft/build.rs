//! Links the `aft` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) when building on and for a GNU/Linux host whose glibc (2.36+) and GNU ld (2.38+)
//! support them. The position-independent binary carries ~80,000 relative relocations; as a
//! 2 MiB table the loader reads it at every start, as RELR it is 30 KiB. `aft run` peaks at
//! about 2 MiB less resident memory. Elsewhere the binary links as before.
//!
//! With rustc's own lld (the default linker for x86_64-unknown-linux-gnu since Rust 1.90), the
//! functions aft runs (start-up, a job, a service's request, an SFTP transfer) are laid out
//! together, in the order of `symbol-order.txt` (`bench/symbol-order.sh` writes it from a
//! profile), or of the file `AFT_SYMBOL_ORDER` names (packaging/build-deb.sh writes one for
//! the very binary it packs): `aft run` then maps about 2 MiB of code instead of 64 KiB
//! windows scattered over the whole 32 MB. Names the build no longer has are skipped; a
//! stale list costs memory, never correctness.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=AFT_SYMBOL_ORDER");
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
    // Only where rustc links with its lld: no linker set (RUSTC_LINKER) and none chosen in
    // the flags (`-C linker=`, `-C linker-features=-lld`, ...); GNU ld has no such option.
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    let default_lld = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("linker")
        && !rustflags.contains("link-self-contained");
    let order = match std::env::var_os("AFT_SYMBOL_ORDER") {
        Some(file) => {
            let file = std::path::PathBuf::from(file);
            println!("cargo:rerun-if-changed={}", file.display());
            file
        }
        None => std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("symbol-order.txt"),
    };
    if default_lld && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
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
