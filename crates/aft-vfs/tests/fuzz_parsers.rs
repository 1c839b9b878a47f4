//! Property tests ("fuzzing" on stable Rust) of the parsers that read what a remote side or a
//! user hands aft: FTP `LIST`/`MLSD` lines and private key files (PuTTY `.ppk` above all).
//!
//! Each parser must never panic, must give the right answer for every well-formed input a
//! generator can build, and must stay bounded in time and memory on adversarial input. The
//! committed corpus (tests/corpus/ftp_list, tests/corpus/ppk, tests/corpus/openssh) holds
//! hand-picked and previously failing inputs; it is replayed on every run.

use std::time::{Duration, Instant};

use aft_vfs::ftp::parse_listing_line;
use aft_vfs::sftp::{KeyError, PPK_MAX_ARGON2_MEMORY_KIB, decode_private_key};
use aft_vfs::{Entry, join};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Utc};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;

mod fuzz_support;
use fuzz_support::{config, corpus};

/// The passphrase of the encrypted keys in tests/corpus/ppk.
const PASSPHRASE: &str = "fuzz-pass";

// ---------------------------------------------------------------------------------------
// FTP LIST / MLSD lines

/// What every entry a listing line gives must satisfy.
fn check_entry(dir: &str, line: &str, entry: &Entry) {
    let ctx = || format!("line {line:?} gave {entry:?}");
    assert!(!entry.name.is_empty(), "{}", ctx());
    assert!(entry.name != "." && entry.name != "..", "{}", ctx());
    assert!(!entry.name.contains('/'), "{}", ctx());
    assert_eq!(entry.path, join(dir, &entry.name), "{}", ctx());
    if entry.is_dir {
        assert_eq!(entry.size, 0, "{}", ctx());
    }
    if let Some(t) = entry.mtime {
        assert!(t.timestamp() > 0, "{}", ctx());
    }
}

/// Parse `line` both ways (LIST and MLSD) and check what comes out.
fn parse_both(dir: &str, line: &str) -> (Option<Entry>, Option<Entry>) {
    let list = parse_listing_line(dir, line, false);
    let mlsd = parse_listing_line(dir, line, true);
    for e in list.iter().chain(mlsd.iter()) {
        check_entry(dir, line, e);
    }
    (list, mlsd)
}

#[test]
fn ftp_list_corpus_replays_without_panics_or_bad_entries() {
    let mut lines = 0;
    let mut parsed = 0;
    for file in corpus("ftp_list") {
        let bytes = std::fs::read(&file).unwrap();
        // As FtpVfs::list reads a data connection: lossy UTF-8, line ends trimmed.
        for raw in bytes.split(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(raw);
            let line = text.trim_end_matches(['\r', '\n']);
            for dir in ["/", "/d", "/a b/ü"] {
                let (list, mlsd) = parse_both(dir, line);
                parsed += usize::from(list.is_some()) + usize::from(mlsd.is_some());
            }
            lines += 1;
        }
    }
    assert!(lines > 40, "{lines} corpus lines");
    assert!(parsed > 20, "only {parsed} corpus lines parsed");
}

#[test]
fn ftp_list_corpus_lines_give_the_known_answers() {
    let unix = |l: &str| parse_listing_line("/d", l, false);
    let mlsd = |l: &str| parse_listing_line("/d", l, true);
    let e =
        unix("-rw-r--r--    1 ftp      ftp    18446744073709551615 Nov  5  2019 huge.bin").unwrap();
    assert_eq!((e.name.as_str(), e.size), ("huge.bin", u64::MAX));
    // A size past u64 is not a file of a wrong size: the line is skipped.
    assert!(
        unix("-rw-r--r-- 1 ftp ftp 99999999999999999999999 Nov  5  2019 too-big.bin").is_none()
    );
    let l =
        unix("lrwxrwxrwx    1 0        0              11 Dec 31 23:59 link -> target/x").unwrap();
    assert_eq!(l.name, "link");
    assert!(unix("-rw-r--r-- 1 0 0 5 Jan  1 12:00 a/b").is_none());
    let d = unix("04-08-14  03:09 PM               1,403 spaced pm.txt").unwrap();
    assert_eq!((d.name.as_str(), d.size), ("spaced pm.txt", 1403));
    let m = mlsd("type=file;size=1; semi;colons and spaces; in name.txt").unwrap();
    assert_eq!(m.name, "semi;colons and spaces; in name.txt");
    assert!(mlsd("type=file;size=18446744073709551616;modify=20260101120000; x").is_none());
    let far = mlsd("type=file;modify=99991231235959; far.txt").unwrap();
    assert_eq!(far.mtime.map(|t| t.year()), Some(9999));
    assert!(mlsd("type=cdir;modify=20010203040506; /x").is_none());
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A file name a server may list: no `/`, no leading blank (ls pads before it), not `.`/`..`.
fn file_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9ü_.()#@-][A-Za-z0-9ü_.()#@ ;=-]{0,40}"
        .prop_filter("dot entries", |n| n != "." && n != "..")
}

/// A well-formed `ls -l` line and what it must parse to.
#[derive(Debug, Clone)]
struct PosixLine {
    line: String,
    name: String,
    size: u64,
    is_dir: bool,
    when: When,
}

/// (year, month, day) when the line carries a year, (month, day, hour, minute) else.
type When = Result<(i32, u32, u32), (u32, u32, u32, u32)>;

fn posix_line() -> impl Strategy<Value = PosixLine> {
    (
        prop::bool::ANY,
        "[-rwxsStT]{9}",
        0u32..5000,
        "[a-z0-9_]{1,10}",
        "[a-z0-9_]{1,10}",
        any::<u64>(),
        (1u32..=12, 1u32..=28),
        prop_oneof![
            (1971i32..2200).prop_map(Ok),
            (0u32..24, 0u32..60).prop_map(Err)
        ],
        file_name(),
        " {1,6}",
    )
        .prop_map(
            |(is_dir, perms, links, user, group, size, (month, day), time, name, pad)| {
                let when_text = match time {
                    Ok(year) => format!("{year}"),
                    Err((h, m)) => format!("{h:02}:{m:02}"),
                };
                let line = format!(
                    "{}{perms}{pad}{links} {user}{pad}{group}{pad}{size} {} {day:>2} {when_text} {name}",
                    if is_dir { 'd' } else { '-' },
                    MONTHS[month as usize - 1],
                );
                PosixLine {
                    line,
                    name,
                    size: if is_dir { 0 } else { size },
                    is_dir,
                    when: time.map(|y| (y, month, day)).map_err(|(h, m)| (month, day, h, m)),
                }
            },
        )
}

/// A well-formed DOS (IIS) line: (line, name, size, is_dir).
fn dos_line() -> impl Strategy<Value = (String, String, u64, bool)> {
    (
        (1u32..=12, 1u32..=28, 0u32..100),
        (1u32..=12, 0u32..60, prop::bool::ANY, prop::bool::ANY),
        prop::option::of(any::<u64>()),
        file_name(),
    )
        .prop_map(|((mo, d, y), (h, mi, pm, space), size, name)| {
            let ampm = if pm { "PM" } else { "AM" };
            let sep = if space { " " } else { "" };
            let what = size.map_or("<DIR>".to_string(), |s| s.to_string());
            let line =
                format!("{mo:02}-{d:02}-{y:02}  {h:02}:{mi:02}{sep}{ampm}  {what:>20} {name}");
            (line, name, size.unwrap_or(0), size.is_none())
        })
}

/// A well-formed MLSD line: (line, name, size, is_dir, modify).
type MlsdCase = (String, String, u64, bool, chrono::DateTime<Utc>);

fn mlsd_line() -> impl Strategy<Value = MlsdCase> {
    (
        prop::bool::ANY,
        any::<u64>(),
        (
            1971i32..9999,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        ),
        prop::bool::ANY,
        file_name(),
    )
        .prop_map(|(is_dir, size, (y, mo, d, h, mi, s), lower, name)| {
            let t = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
            let kind = if is_dir { "dir" } else { "file" };
            let facts = format!(
                "type={kind};size={size};modify={};UNIX.mode=0644;",
                t.format("%Y%m%d%H%M%S")
            );
            let facts = if lower { facts.to_lowercase() } else { facts };
            (
                format!("{facts} {name}"),
                name,
                if is_dir { 0 } else { size },
                is_dir,
                t,
            )
        })
}

/// `line` with a few characters inserted, removed or replaced.
fn mutated(line: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        line,
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
    )
        .prop_map(|(line, edits)| {
            let mut chars: Vec<char> = line.chars().collect();
            for (at, op, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn ftp_any_text_never_panics(line in any::<String>()) {
        parse_both("/d", &line);
    }

    #[test]
    fn ftp_listing_like_text_never_panics(
        line in "[-dlrwxsStT]{0,12}[ 0-9a-zA-Z:,<>;=./+-]{0,80}",
    ) {
        parse_both("/d", &line);
    }

    #[test]
    fn ftp_posix_lines_parse_to_their_fields(p in posix_line()) {
        let e = parse_listing_line("/d", &p.line, false)
            .unwrap_or_else(|| panic!("{:?} was not parsed", p.line));
        check_entry("/d", &p.line, &e);
        prop_assert_eq!(&e.name, &p.name);
        prop_assert_eq!(e.size, p.size);
        prop_assert_eq!(e.is_dir, p.is_dir);
        let t = e.mtime.expect("mtime");
        match p.when {
            Ok((y, m, d)) => prop_assert_eq!(
                t,
                NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc()
            ),
            Err((m, d, h, mi)) => {
                prop_assert_eq!((t.month(), t.day(), t.hour(), t.minute()), (m, d, h, mi));
                // Without a year, ls means the last 6 months or the next few days.
                let now = Utc::now();
                prop_assert!(t < now + chrono::Duration::days(181), "{t} is too far ahead");
                prop_assert!(t > now - chrono::Duration::days(366), "{t} is too far back");
            }
        }
    }

    #[test]
    fn ftp_dos_lines_parse_to_their_fields((line, name, size, is_dir) in dos_line()) {
        let e = parse_listing_line("/d", &line, false)
            .unwrap_or_else(|| panic!("{line:?} was not parsed"));
        check_entry("/d", &line, &e);
        prop_assert_eq!((e.name.as_str(), e.size, e.is_dir), (name.as_str(), size, is_dir));
    }

    #[test]
    fn ftp_mlsd_lines_parse_to_their_fields((line, name, size, is_dir, t) in mlsd_line()) {
        let e = parse_listing_line("/d", &line, true)
            .unwrap_or_else(|| panic!("{line:?} was not parsed"));
        check_entry("/d", &line, &e);
        prop_assert_eq!((e.name.as_str(), e.size, e.is_dir), (name.as_str(), size, is_dir));
        prop_assert_eq!(e.mtime, Some(t));
    }

    #[test]
    fn ftp_mutated_lines_never_panic(
        line in mutated(prop_oneof![
            posix_line().prop_map(|p| p.line),
            dos_line().prop_map(|d| d.0),
            mlsd_line().prop_map(|m| m.0),
        ]),
    ) {
        parse_both("/d", &line);
    }
}

#[test]
fn ftp_megabyte_lines_parse_in_bounded_time() {
    let name = "n".repeat(1 << 20);
    let started = Instant::now();
    let line = format!("-rw-r--r-- 1 0 0 5 Jan  1 2020 {name}");
    let e = parse_listing_line("/d", &line, false).unwrap();
    assert_eq!(e.name.len(), name.len());
    let e = parse_listing_line("/d", &format!("type=file;size=5; {name}"), true).unwrap();
    assert_eq!(e.name.len(), name.len());
    // Near misses that make a backtracking matcher work hard.
    for junk in [
        " ".repeat(1 << 20),
        "-rw-r--r-- ".repeat(100_000),
        format!("-rw-r--r-- 1 0 0 {} Jan", "9".repeat(1 << 20)),
        "0".repeat(1 << 20),
        ";".repeat(1 << 20),
        "type=file;".repeat(100_000),
        format!("10-19-20  03:19PM {}", "1,".repeat(500_000)),
    ] {
        parse_both("/d", &junk);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "1 MB lines took {took:?}");
}

// ---------------------------------------------------------------------------------------
// Private keys: PuTTY .ppk (and the other formats behind the same reader)

/// Decode with a time bound: a key file must never hang a connection.
fn decode_timed(text: &str, passphrase: Option<&str>) -> Result<(), KeyError> {
    let started = Instant::now();
    let result = decode_private_key(text, passphrase).map(|_| ());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "decoding took {took:?}: {text:?}"
    );
    if let Err(e) = &result {
        assert!(!e.to_string().trim().is_empty(), "empty error for {text:?}");
    }
    result
}

fn ppk_corpus() -> Vec<(String, String)> {
    corpus("ppk")
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The corpus keys that must load: the ones not named `bad-*`.
fn good_keys() -> Vec<(String, String)> {
    ppk_corpus()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("bad-"))
        .collect()
}

#[test]
fn ppk_corpus_good_keys_load_and_bad_ones_are_refused_by_name() {
    let corpus = ppk_corpus();
    assert!(corpus.iter().any(|(n, _)| n.starts_with("bad-")));
    for (name, text) in corpus {
        let encrypted = text.contains("Encryption: aes256-cbc");
        let with_pass = decode_timed(&text, Some(PASSPHRASE));
        let without = decode_timed(&text, None);
        if let Some(says) = name.strip_prefix("bad-") {
            // `bad-<what the error names>--<anything>.ppk`
            let says = says.split("--").next().unwrap().trim_end_matches(".ppk");
            for r in [with_pass, without] {
                let e = r.expect_err(&name).to_string();
                assert!(
                    e.to_lowercase()
                        .contains(&says.replace('_', " ").to_lowercase()),
                    "{name}: {e}"
                );
            }
        } else {
            with_pass.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(without.is_err(), encrypted, "{name} without a passphrase");
        }
        if encrypted {
            assert!(decode_timed(&text, Some("wrong")).is_err(), "{name}");
        }
    }
}

#[test]
fn ppk_huge_argon2_costs_are_refused_fast() {
    let (_, key) = good_keys()
        .into_iter()
        .find(|(n, _)| n == "ed25519-v3-encrypted.ppk")
        .unwrap();
    for (field, value) in [
        ("Argon2-Memory", u32::MAX.to_string()),
        ("Argon2-Memory", (PPK_MAX_ARGON2_MEMORY_KIB + 1).to_string()),
        ("Argon2-Passes", u32::MAX.to_string()),
        ("Argon2-Passes", "100000".to_string()),
    ] {
        let text = set_field(&key, field, &value);
        let e = decode_timed(&text, Some(PASSPHRASE)).unwrap_err();
        assert!(matches!(e, KeyError::OverLimit(_)), "{field}: {e}");
        assert!(e.to_string().contains(field), "{e}");
    }
}

/// The OpenSSH keys of tests/corpus/openssh (`ssh-keygen -N fuzz-pass`): name and text.
fn openssh_corpus() -> Vec<(String, String)> {
    corpus("openssh")
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn openssh_corpus_good_keys_load_and_bad_ones_are_refused_by_name() {
    let corpus = openssh_corpus();
    assert!(corpus.iter().any(|(n, _)| n.starts_with("bad-")));
    for (name, text) in corpus {
        let with_pass = decode_timed(&text, Some(PASSPHRASE));
        if let Some(says) = name.strip_prefix("bad-") {
            let says = says.split("--").next().unwrap().replace('_', " ");
            let e = with_pass.expect_err(&name).to_string();
            assert!(e.to_lowercase().contains(&says), "{name}: {e}");
            assert!(decode_timed(&text, None).is_err(), "{name}");
        } else {
            with_pass.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                decode_timed(&text, None).is_err(),
                "{name} without a passphrase"
            );
            assert!(decode_timed(&text, Some("wrong")).is_err(), "{name}");
        }
    }
}

/// The corpus's 16-round OpenSSH key claiming `rounds` bcrypt rounds instead.
fn openssh_with_rounds(rounds: u32) -> String {
    let (_, text) = openssh_corpus()
        .into_iter()
        .find(|(n, _)| n == "ed25519-encrypted-16-rounds.key")
        .unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut blob = B64.decode(body).unwrap();
    // magic (15), "aes256-ctr" (4 + 10), "bcrypt" (4 + 6), options length (4), salt (4 + 16)
    let at = 15 + 14 + 10 + 4 + 20;
    assert_eq!(blob[at..at + 4], 16u32.to_be_bytes());
    blob[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        B64.encode(blob)
    )
}

proptest! {
    #![proptest_config(config(32))]

    /// A key's bcrypt rounds are read before any work: over the limit it is refused at
    /// once, naming the rounds; at a few rounds it is judged by its passphrase as usual.
    #[test]
    fn openssh_bcrypt_rounds_are_bounded(
        rounds in prop_oneof![1u32..=40, 1025u32..=u32::MAX],
    ) {
        let text = openssh_with_rounds(rounds);
        let result = decode_timed(&text, Some(PASSPHRASE));
        match (rounds > 1024, &result) {
            (true, Err(KeyError::OverLimit(m))) => {
                prop_assert!(m.contains(&format!("{rounds} bcrypt rounds")), "{}", m);
            }
            (true, other) => prop_assert!(false, "{rounds} rounds: {other:?}"),
            (false, Err(KeyError::OverLimit(m))) => prop_assert!(false, "{rounds} rounds: {m}"),
            // Other rounds derive another key: the passphrase no longer opens it.
            (false, r) => prop_assert_eq!(r.is_ok(), rounds == 16, "{} rounds: {:?}", rounds, r),
        }
    }
}

/// `text` with the value of `field` replaced (every occurrence).
fn set_field(text: &str, field: &str, value: &str) -> String {
    text.lines()
        .map(|l| match l.split_once(": ") {
            Some((k, _)) if k == field => format!("{k}: {value}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A number for a .ppk field: small, at a boundary or absurd.
fn ppk_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..64).prop_map(|n| n.to_string()),
        Just(u32::MAX.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just(String::new()),
        (PPK_MAX_ARGON2_MEMORY_KIB..u64::MAX).prop_map(|n| n.to_string()),
    ]
}

/// One edit of a .ppk's lines.
#[derive(Debug, Clone)]
enum PpkEdit {
    SetNumber(prop::sample::Index, String),
    SetText(prop::sample::Index, String),
    Delete(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Insert(prop::sample::Index, String),
    Truncate(prop::sample::Index),
}

fn ppk_edit() -> impl Strategy<Value = PpkEdit> {
    let idx = any::<prop::sample::Index>;
    prop_oneof![
        (idx(), ppk_number()).prop_map(|(i, n)| PpkEdit::SetNumber(i, n)),
        (idx(), "\\PC{0,40}").prop_map(|(i, s)| PpkEdit::SetText(i, s)),
        idx().prop_map(PpkEdit::Delete),
        idx().prop_map(PpkEdit::Duplicate),
        (idx(), "[A-Za-z2-]{1,20}: [A-Za-z0-9+/=]{0,20}").prop_map(|(i, s)| PpkEdit::Insert(i, s)),
        idx().prop_map(PpkEdit::Truncate),
    ]
}

fn apply(text: &str, edits: &[PpkEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        match edit {
            PpkEdit::SetNumber(i, v) | PpkEdit::SetText(i, v) => {
                let at = i.index(lines.len());
                let l = &mut lines[at];
                *l = match l.split_once(": ") {
                    Some((k, _)) => format!("{k}: {v}"),
                    None => v.clone(),
                };
            }
            PpkEdit::Delete(i) => {
                lines.remove(i.index(lines.len()));
            }
            PpkEdit::Duplicate(i) => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at].clone());
            }
            PpkEdit::Insert(i, s) => lines.insert(i.index(lines.len() + 1), s.clone()),
            PpkEdit::Truncate(i) => lines.truncate(i.index(lines.len() + 1)),
        }
    }
    lines.join("\n")
}

/// An SSH `string`: a u32 length and the bytes.
fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An unencrypted v3 .ppk with `public` and `private` blobs and a MAC that matches them, so
/// the blobs reach the key decoders behind the MAC check.
fn signed_ppk_v3(algorithm: &str, public: &[u8], private: &[u8]) -> String {
    let mut mac_input = Vec::new();
    for part in [algorithm.as_bytes(), b"none", b"fuzz", public, private] {
        ssh_string(&mut mac_input, part);
    }
    // v3 without encryption: HMAC-SHA-256 with an empty key.
    let mut mac = Hmac::<Sha256>::new_from_slice(&[]).unwrap();
    mac.update(&mac_input);
    let mac = hex::encode(mac.finalize().into_bytes());
    let lines = |blob: &[u8]| {
        let b64 = B64.encode(blob);
        let chunks: Vec<String> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        (chunks.len(), chunks.join("\n"))
    };
    let (pn, pl) = lines(public);
    let (qn, ql) = lines(private);
    let mut text = format!(
        "PuTTY-User-Key-File-3: {algorithm}\nEncryption: none\nComment: fuzz\nPublic-Lines: {pn}\n"
    );
    if pn > 0 {
        text.push_str(&format!("{pl}\n"));
    }
    text.push_str(&format!("Private-Lines: {qn}\n"));
    if qn > 0 {
        text.push_str(&format!("{ql}\n"));
    }
    text.push_str(&format!("Private-MAC: {mac}\n"));
    text
}

/// The header algorithm and the decoded blobs of a plain v3 key of the corpus.
fn blobs(text: &str) -> (String, Vec<u8>, Vec<u8>) {
    let mut lines = text.lines();
    let algorithm = lines
        .next()
        .unwrap()
        .split_once(": ")
        .unwrap()
        .1
        .to_string();
    let (mut public, mut private) = (Vec::new(), Vec::new());
    while let Some(line) = lines.next() {
        let Some((k, v)) = line.split_once(": ") else {
            continue;
        };
        let target = match k {
            "Public-Lines" => &mut public,
            "Private-Lines" => &mut private,
            _ => continue,
        };
        let n: usize = v.parse().unwrap();
        let b64: String = (0..n).map(|_| lines.next().unwrap()).collect();
        *target = B64.decode(b64).unwrap();
    }
    (algorithm, public, private)
}

#[test]
fn ppk_resigned_corpus_keys_still_load() {
    // The signer above is right: re-signing an unchanged plain v3 key gives a loadable key.
    let mut resigned = 0;
    for (name, text) in good_keys() {
        if !text.starts_with("PuTTY-User-Key-File-3") || !text.contains("Encryption: none") {
            continue;
        }
        let (alg, public, private) = blobs(&text);
        let again = signed_ppk_v3(&alg, &public, &private);
        decode_timed(&again, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        resigned += 1;
    }
    assert!(resigned >= 3, "{resigned} plain v3 keys in the corpus");
}

/// `blob` with a few bytes flipped, cut or grown (a length prefix made huge, above all).
fn mutate_blob(blob: &[u8], edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    let mut b = blob.to_vec();
    for (at, op, byte) in edits {
        let i = at.index(b.len() + 1);
        match op % 4 {
            0 if i < b.len() => b[i] ^= byte | 1,
            1 => b.truncate(i),
            2 if i + 4 <= b.len() => b[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, *byte]),
            _ => b.insert(i, *byte),
        }
    }
    b
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn ppk_any_text_after_the_header_never_panics(
        version in prop_oneof![Just("2".to_string()), Just("3".to_string()), "[0-9]{1,4}"],
        algorithm in prop_oneof![
            Just("ssh-ed25519".to_string()), Just("ssh-rsa".to_string()),
            Just("ecdsa-sha2-nistp256".to_string()), "\\PC{0,20}",
        ],
        body in "\\PC{0,400}",
        passphrase in prop::option::of("\\PC{0,10}"),
    ) {
        let text = format!("PuTTY-User-Key-File-{version}: {algorithm}\n{body}");
        let _ = decode_timed(&text, passphrase.as_deref());
    }

    #[test]
    fn ppk_edited_corpus_keys_never_panic_or_hang(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(ppk_edit(), 1..5),
        pass in prop::bool::ANY,
    ) {
        let keys = good_keys();
        let (_, text) = &keys[which.index(keys.len())];
        let text = apply(text, &edits);
        let result = decode_timed(&text, pass.then_some(PASSPHRASE));
        if let Err(KeyError::OverLimit(m)) = &result {
            prop_assert!(m.contains("Argon2"), "{}", m);
        }
    }

    #[test]
    fn ppk_mutated_blobs_behind_a_good_mac_never_panic(
        which in any::<prop::sample::Index>(),
        public_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..4),
        private_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        let plain: Vec<(String, String)> = good_keys()
            .into_iter()
            .filter(|(_, t)| t.starts_with("PuTTY-User-Key-File-3") && t.contains("Encryption: none"))
            .collect();
        let (_, text) = &plain[which.index(plain.len())];
        let (alg, public, private) = blobs(text);
        let text = signed_ppk_v3(
            &alg,
            &mutate_blob(&public, &public_edits),
            &mutate_blob(&private, &private_edits),
        );
        let _ = decode_timed(&text, None);
    }

    #[test]
    fn private_key_reader_never_panics_on_other_formats(
        header in prop_oneof![
            Just("-----BEGIN OPENSSH PRIVATE KEY-----"),
            Just("-----BEGIN RSA PRIVATE KEY-----"),
            Just("-----BEGIN PRIVATE KEY-----"),
            Just("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        ],
        body in "[A-Za-z0-9+/=\n]{0,600}",
        passphrase in prop::option::of("[a-z]{0,8}"),
    ) {
        let end = header.replace("BEGIN", "END");
        let text = format!("{header}\n{body}\n{end}\n");
        let _ = decode_timed(&text, passphrase.as_deref());
    }
}
