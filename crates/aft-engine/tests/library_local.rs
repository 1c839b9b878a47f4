//! The script library's local pieces run through SyncJS against the real tools: Info-ZIP
//! `zip`/`unzip`, 7-Zip (AES zips), GNU `tar`, GnuPG, and local processes.

mod library_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aft_engine::{HaltFlag, MemoryHost, Outcome};
use library_support::{Gpg, js, run, run_with};

fn tool(program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not installed ({e}); ci/install.sh installs it from ci/peers/gnupg.apt"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("in/sub")).unwrap();
    std::fs::write(root.join("in/report.csv"), "id,amount\n1,10\n2,20\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("in/sub/data.bin"), big).unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    for rel in ["report.csv", "sub/data.bin"] {
        assert_eq!(
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
            "{rel} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn zip_written_by_aft_is_read_by_unzip_and_zip_written_by_zip_is_read_by_aft() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    sample_tree(root);
    let ran = run(
        &format!(
            "check(Zip({src}, {zip}), 'Zip'); check(Zip([{csv}], {one}, {{Level: 9}}), 'Zip one file');",
            src = js(&root.join("in").to_string_lossy()),
            zip = js(&root.join("aft.zip").to_string_lossy()),
            csv = js(&root.join("in/report.csv").to_string_lossy()),
            one = js(&root.join("one.zip").to_string_lossy()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    tool("unzip", &["-t", "aft.zip"], root);
    tool("unzip", &["-q", "aft.zip", "-d", "by-unzip"], root);
    same_tree(&root.join("in"), &root.join("by-unzip/in"));
    let listing = String::from_utf8(tool("unzip", &["-l", "one.zip"], root).stdout).unwrap();
    assert!(listing.contains("report.csv"), "{listing}");

    // The reverse: Info-ZIP writes (plain and with its ZipCrypto password), aft reads.
    tool("zip", &["-qr", "by-zip.zip", "in"], root);
    tool(
        "zip",
        &["-qr", "-P", "zippass", "by-zip-pw.zip", "in"],
        root,
    );
    let ran = run(
        &format!(
            "check(Unzip({a}, {out}), 'Unzip'); check(Unzip({b}, {out2}, {{Password: 'zippass'}}), 'Unzip with password');",
            a = js(&root.join("by-zip.zip").to_string_lossy()),
            out = js(&root.join("by-aft").to_string_lossy()),
            b = js(&root.join("by-zip-pw.zip").to_string_lossy()),
            out2 = js(&root.join("by-aft-pw").to_string_lossy()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    same_tree(&root.join("in"), &root.join("by-aft/in"));
    same_tree(&root.join("in"), &root.join("by-aft-pw/in"));
}

#[test]
fn aes256_zip_from_aft_opens_in_7zip_and_7zip_aes_zip_opens_in_aft() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    sample_tree(root);
    let host = MemoryHost::new().with_secret("zip-pass", "Tr0ub4dor&3");
    let ran = run(
        &format!(
            "check(Zip({src}, {zip}, {{PasswordFromSecret: 'zip-pass'}}), 'Zip AES');",
            src = js(&root.join("in").to_string_lossy()),
            zip = js(&root.join("aes.zip").to_string_lossy()),
        ),
        host,
    );
    ran.assert_ok();
    // The password must not be readable without it.
    let out = Command::new("7z")
        .args(["t", "-pwrong", "aes.zip"])
        .current_dir(root)
        .output()
        .expect("7z (p7zip-full) is installed by ci/install.sh");
    assert!(!out.status.success(), "7z accepted a wrong password");
    tool(
        "7z",
        &["x", "-y", "-pTr0ub4dor&3", "-oby7z", "aes.zip"],
        root,
    );
    same_tree(&root.join("in"), &root.join("by7z/in"));
    let info =
        String::from_utf8(tool("7z", &["l", "-slt", "-pTr0ub4dor&3", "aes.zip"], root).stdout)
            .unwrap();
    assert!(
        info.contains("AES-256"),
        "7z does not report AES-256:\n{info}"
    );

    tool(
        "7z",
        &["a", "-tzip", "-mem=AES256", "-p7zpass", "by7z.zip", "in"],
        root,
    );
    let ran = run(
        &format!(
            "check(Unzip({z}, {out}, {{Password: '7zpass'}}), 'Unzip 7z AES');",
            z = js(&root.join("by7z.zip").to_string_lossy()),
            out = js(&root.join("from7z").to_string_lossy()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    same_tree(&root.join("in"), &root.join("from7z/in"));
}

#[test]
fn corrupt_zip_or_wrong_password_returns_false_with_the_reason_and_the_job_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    sample_tree(root);
    std::fs::write(
        root.join("corrupt.zip"),
        b"PK\x03\x04garbage that is not a zip at all",
    )
    .unwrap();
    let ran = run(
        &format!(
            r#"
            check(Unzip({bad}, {out}) === false, 'corrupt zip gives false');
            check(Zip({src}, {zip}, {{Password: 'right'}}), 'Zip');
            check(Unzip({zip}, {out}, {{Password: 'wrong'}}) === false, 'wrong password gives false');
            check(Unzip({zip}, {out}) === false, 'missing password gives false');
            Log('still running');
            "#,
            bad = js(&root.join("corrupt.zip").to_string_lossy()),
            out = js(&root.join("out").to_string_lossy()),
            src = js(&root.join("in").to_string_lossy()),
            zip = js(&root.join("pw.zip").to_string_lossy()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    let w = ran.warnings().join("\n");
    assert!(w.contains("corrupt.zip is not a readable zip file"), "{w}");
    assert!(w.contains("wrong password"), "{w}");
    assert!(w.contains("password protected"), "{w}");
    assert!(ran.log().contains("still running"));
}

#[test]
fn targz_written_by_aft_is_read_by_tar_and_the_reverse() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    sample_tree(root);
    run(
        &format!(
            "check(TarGz({src}, {t}), 'TarGz');",
            src = js(&root.join("in").to_string_lossy()),
            t = js(&root.join("aft.tar.gz").to_string_lossy()),
        ),
        MemoryHost::new(),
    )
    .assert_ok();
    std::fs::create_dir_all(root.join("by-tar")).unwrap();
    tool("tar", &["-xzf", "aft.tar.gz", "-C", "by-tar"], root);
    same_tree(&root.join("in"), &root.join("by-tar/in"));

    tool("tar", &["-czf", "gnu.tar.gz", "in"], root);
    run(
        &format!(
            "check(UnTarGz({t}, {out}), 'UnTarGz'); check(UnTarGz({bad}, {out}) === false, 'not a tar');",
            t = js(&root.join("gnu.tar.gz").to_string_lossy()),
            out = js(&root.join("by-aft").to_string_lossy()),
            bad = js(&root.join("in/report.csv").to_string_lossy()),
        ),
        MemoryHost::new(),
    )
    .assert_ok();
    same_tree(&root.join("in"), &root.join("by-aft/in"));
}

fn pgp_round_trips_with_gnupg(algo: &str) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let gpg = Gpg::new("Partner <partner@example.com>", "partner-pass", algo);
    let (public, secret) = gpg.export("partner@example.com", "partner-pass", root, "partner");
    let plain = root.join("payroll.csv");
    std::fs::write(&plain, "name,salary\nada,100\n".repeat(5000)).unwrap();
    let p = |n: &str| root.join(n).to_string_lossy().into_owned();

    // aft encrypts (binary and armored) and signs; GnuPG decrypts and verifies.
    let host =
        MemoryHost::new().with_secret("partner-pgp", &std::fs::read_to_string(&secret).unwrap());
    run(
        &format!(
            r#"
            check(PgpEncryptFile({plain}, {bin}, {public}), 'encrypt');
            check(PgpEncryptFile({plain}, {asc}, [{public}], {{Armor: true}}), 'encrypt armored');
            check(PgpSignFile({plain}, {sig}, 'secret:partner-pgp', {{Passphrase: 'partner-pass'}}), 'sign');
            "#,
            plain = js(&p("payroll.csv")),
            bin = js(&p("payroll.csv.gpg")),
            asc = js(&p("payroll.csv.asc")),
            public = js(&public),
            sig = js(&p("payroll.csv.sig")),
        ),
        host,
    )
    .assert_ok();
    for enc in ["payroll.csv.gpg", "payroll.csv.asc"] {
        let out = gpg.ok(&[
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "partner-pass",
            "--decrypt",
            &p(enc),
        ]);
        assert_eq!(
            out.stdout,
            std::fs::read(&plain).unwrap(),
            "gpg decrypting {enc}"
        );
    }
    gpg.ok(&["--verify", &p("payroll.csv.sig"), &p("payroll.csv")]);

    // GnuPG encrypts and signs; aft decrypts (passphrase from a secret) and verifies.
    gpg.ok(&[
        "--batch",
        "--trust-model",
        "always",
        "-r",
        "partner@example.com",
        "-o",
        &p("from-gpg.gpg"),
        "-e",
        &p("payroll.csv"),
    ]);
    gpg.ok(&[
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "partner-pass",
        "--armor",
        "-o",
        &p("from-gpg.sig"),
        "--detach-sign",
        &p("payroll.csv"),
    ]);
    let host = MemoryHost::new().with_secret("pgp-pass", "partner-pass");
    run(
        &format!(
            r#"
            check(PgpDecryptFile({enc}, {out}, {secret}, {{PassphraseFromSecret: 'pgp-pass'}}), 'decrypt');
            check(PgpVerifyFile({plain}, {sig}, {public}), 'verify');
            "#,
            enc = js(&p("from-gpg.gpg")),
            out = js(&p("decrypted.csv")),
            secret = js(&secret),
            plain = js(&p("payroll.csv")),
            sig = js(&p("from-gpg.sig")),
            public = js(&public),
        ),
        host,
    )
    .assert_ok();
    assert_eq!(
        std::fs::read(p("decrypted.csv")).unwrap(),
        std::fs::read(&plain).unwrap()
    );
}

#[test]
fn pgp_with_gnupg_default_keys_both_ways() {
    pgp_round_trips_with_gnupg("default");
}

#[test]
fn pgp_with_gnupg_ed25519_cv25519_keys_both_ways() {
    pgp_round_trips_with_gnupg("ed25519");
}

#[test]
fn pgp_wrong_passphrase_wrong_key_and_tampering_give_false_with_reasons() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let p = |n: &str| root.join(n).to_string_lossy().into_owned();
    let alice = Gpg::new("Alice <alice@example.com>", "alice-pass", "ed25519");
    let mallory = Gpg::new("Mallory <mallory@example.com>", "mallory-pass", "ed25519");
    let (alice_pub, alice_sec) = alice.export("alice@example.com", "alice-pass", root, "alice");
    let (mallory_pub, mallory_sec) =
        mallory.export("mallory@example.com", "mallory-pass", root, "mallory");
    std::fs::write(p("doc.txt"), "pay 100 to bob\n").unwrap();
    let ran = run(
        &format!(
            r#"
            check(PgpEncryptFile({doc}, {enc}, {alice_pub}), 'encrypt');
            check(PgpDecryptFile({enc}, {out}, {alice_sec}, 'not-the-passphrase') === false, 'wrong passphrase');
            check(PgpDecryptFile({enc}, {out}, {mallory_sec}, 'mallory-pass') === false, 'wrong key');
            check(PgpDecryptFile({enc}, {out}, {alice_pub}, 'alice-pass') === false, 'public key cannot decrypt');
            check(PgpDecryptFile({enc}, {out}, {alice_sec}, 'alice-pass'), 'right key');
            check(PgpSignFile({doc}, {sig}, {alice_sec}, 'alice-pass'), 'sign');
            check(PgpVerifyFile({doc}, {sig}, {mallory_pub}) === false, 'other key does not verify');
            WriteTextFile({doc}, 'pay 999 to mallory\n');
            check(PgpVerifyFile({doc}, {sig}, {alice_pub}) === false, 'tampered file does not verify');
            let threw = false;
            try {{ PgpEncryptFile({doc}, {enc}, []); }} catch (e) {{ threw = String(e).includes('at least one public key'); }}
            check(threw, 'no key is a programming error');
            "#,
            doc = js(&p("doc.txt")),
            enc = js(&p("doc.txt.gpg")),
            out = js(&p("doc.out")),
            sig = js(&p("doc.sig")),
            alice_pub = js(&alice_pub),
            alice_sec = js(&alice_sec),
            mallory_pub = js(&mallory_pub),
            mallory_sec = js(&mallory_sec),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    let w = ran.warnings().join("\n");
    assert!(w.contains("passphrase"), "{w}");
    assert!(w.contains("not an OpenPGP private key"), "{w}");
    assert!(w.contains("does not match"), "{w}");
    assert!(
        !w.contains("alice-pass"),
        "a passphrase leaked into the log: {w}"
    );
}

#[test]
fn pgp_refuses_to_encrypt_to_expired_or_revoked_keys() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let p = |n: &str| root.join(n).to_string_lossy().into_owned();
    std::fs::write(p("doc.txt"), "quarterly report\n").unwrap();

    // Expired: the primary key and its encryption subkey get a one-second lifetime.
    let old = Gpg::new("Old <old@example.com>", "old-pass", "ed25519");
    let fpr = old.fingerprint("old@example.com");
    for target in [vec![], vec!["*"]] {
        let mut args = vec![
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "old-pass",
            "--quick-set-expire",
            &fpr,
            "seconds=1",
        ];
        args.extend(target);
        old.ok(&args);
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (old_pub, _) = old.export("old@example.com", "old-pass", root, "old");

    // Revoked: import the revocation certificate GnuPG made with the key.
    let gone = Gpg::new("Gone <gone@example.com>", "gone-pass", "ed25519");
    let fpr = gone.fingerprint("gone@example.com");
    let rev = std::fs::read_to_string(gone.home().join(format!("openpgp-revocs.d/{fpr}.rev")))
        .unwrap()
        .replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
    std::fs::write(p("gone.rev"), rev).unwrap();
    gone.ok(&["--batch", "--import", &p("gone.rev")]);
    let (gone_pub, _) = gone.export("gone@example.com", "gone-pass", root, "gone");

    let fresh = Gpg::new("Fresh <fresh@example.com>", "fresh-pass", "ed25519");
    let (fresh_pub, _) = fresh.export("fresh@example.com", "fresh-pass", root, "fresh");

    let ran = run(
        &format!(
            r#"
            check(PgpEncryptFile({doc}, {enc}, {old_pub}) === false, 'expired key refused');
            check(PgpEncryptFile({doc}, {enc}, {gone_pub}) === false, 'revoked key refused');
            check(PgpEncryptFile({doc}, {enc}, [{fresh_pub}, {gone_pub}]) === false, 'one revoked key among several refuses all');
            check(!FileExists({enc}), 'nothing written');
            check(PgpEncryptFile({doc}, {enc}, {fresh_pub}), 'a valid key still works');
            "#,
            doc = js(&p("doc.txt")),
            enc = js(&p("doc.txt.gpg")),
            old_pub = js(&old_pub),
            gone_pub = js(&gone_pub),
            fresh_pub = js(&fresh_pub),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    let w = ran.warnings().join("\n");
    assert!(w.contains("expired on"), "{w}");
    assert!(w.contains("revoked"), "{w}");
}

#[test]
fn local_files_hashes_and_text_helpers_from_a_script() {
    let d = tempfile::tempdir().unwrap();
    let dir = js(&d.path().to_string_lossy());
    let ran = run(
        &format!(
            r#"
            const root = {dir};
            check(MakeDir(root + '/a/b'), 'MakeDir');
            check(WriteTextFile(root + '/a/one.csv', 'x,y\n'), 'WriteTextFile');
            check(AppendTextFile(root + '/a/one.csv', '1,2\n'), 'AppendTextFile');
            check(ReadTextFile(root + '/a/one.csv') === 'x,y\n1,2\n', 'ReadTextFile');
            check(CopyFile(root + '/a/one.csv', root + '/a/b'), 'CopyFile into folder');
            check(FileExists(root + '/a/b/one.csv'), 'copied');
            check(MoveFile(root + '/a/b/one.csv', root + '/a/b/two.csv'), 'MoveFile');
            check(!FileExists(root + '/a/b/one.csv') && FileExists(root + '/a/b/two.csv'), 'moved');
            check(JSON.stringify(FindFiles(root, '**/*.csv').map(p => p.slice(root.length))) === '["/a/b/two.csv","/a/one.csv"]', 'FindFiles ' + JSON.stringify(FindFiles(root, '**/*.csv')));
            const info = FileInfo(root + '/a/one.csv');
            check(info.Size === 8 && !info.IsDir && info.Name === 'one.csv' && info.ModTime instanceof Date, 'FileInfo');
            check(FileInfo(root + '/nope') === null, 'FileInfo of a missing file');
            check(HashString('abc', 'sha256') === 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256');
            check(HashFile(root + '/a/one.csv', 'md5') === HashString('x,y\n1,2\n', 'md5'), 'md5 of file');
            check(HashString('abc', 'CRC32') === '352441c2', 'crc32');
            check(HashFile(root + '/missing', 'sha1') === null, 'hash of a missing file');
            let threw = false;
            try {{ HashString('abc', 'sha3'); }} catch (e) {{ threw = String(e).includes('unknown hash algorithm'); }}
            check(threw, 'unknown algorithm throws');
            check(DelFile(root + '/a/one.csv'), 'DelFile');
            check(DelFile(root + '/a/one.csv') === false, 'DelFile twice');
            const t = MakeTempDir();
            check(DirExists(t), 'MakeTempDir');
            check(DelTree(root + '/a') && !DirExists(root + '/a'), 'DelTree');
            check(btoa('hello') === 'aGVsbG8=' && atob('aGVsbG8=') === 'hello', 'base64');
            const bytes = new TextEncoder().encode('héllo');
            check(bytes instanceof Uint8Array && bytes.length === 6, 'TextEncoder');
            check(new TextDecoder().decode(bytes) === 'héllo', 'TextDecoder');
            check(FormatDate(new Date(Date.UTC(2026, 2, 4, 5, 6, 7)), '%Y%m%d-%H%M%S', 'UTC') === '20260304-050607', 'FormatDate');
            check(FormatDate(Date.UTC(2026, 6, 15, 12, 0, 0), '%H:%M', 'Europe/Rome') === '14:00', 'FormatDate IANA zone');
            let zoneError = '';
            try {{ FormatDate(0, '%H', 'Mars/Olympus'); }} catch (e) {{ zoneError = String(e); }}
            check(zoneError.includes('Mars/Olympus'), 'FormatDate unknown zone throws: ' + zoneError);
            "#
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    assert!(
        ran.warnings().iter().any(|w| w.contains("DelFile:")),
        "{:?}",
        ran.warnings()
    );
}

#[test]
fn run_program_captures_output_and_a_hanging_program_is_killed_at_its_timeout() {
    let ran = run(
        r#"
        const r = RunProgram('/bin/sh', ['-c', 'echo "$GREETING $1"; echo oops >&2; exit 4', 'sh', 'world'], {Env: {GREETING: 'hello'}});
        check(r.ExitCode === 4 && r.Stdout === 'hello world\n' && r.Stderr === 'oops\n' && !r.Ok, JSON.stringify(r));
        const ok = RunProgram('echo', ['*', '$HOME']);
        check(ok.Ok && ok.Stdout === '* $HOME\n', 'no shell unless asked: ' + JSON.stringify(ok));
        const sh = RunProgram('echo $((6 * 7))', [], {Shell: true});
        check(sh.Stdout === '42\n', 'Shell: true');
        const hung = RunProgram('sleep', ['60'], {Timeout: 0.5});
        check(hung.TimedOut && !hung.Ok && hung.ExitCode === -1, JSON.stringify(hung));
        const missing = RunProgram('/no/such/tool');
        check(!missing.Ok && missing.Error.includes('cannot start'), JSON.stringify(missing));
        "#,
        MemoryHost::new(),
    );
    ran.assert_ok();
    let w = ran.warnings().join("\n");
    assert!(w.contains("was still running after"), "{w}");
}

#[test]
fn halting_the_job_kills_a_running_program_and_the_job_ends_halted() {
    let halt = HaltFlag::new();
    let raiser = halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        raiser.raise();
    });
    let start = Instant::now();
    let ran = run_with(
        "RunProgram('sleep', ['60']); Log('after');",
        MemoryHost::new(),
        halt,
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ran.outcome, Outcome::Halted, "{}", ran.log());
    assert!(ran.log().contains("halted"), "{}", ran.log());
}

async fn otfe(encrypt: bool, data: Vec<u8>, key: &[u8; 32]) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let inner: aft_vfs::VfsReader = Box::pin(std::io::Cursor::new(data));
    let mut reader = if encrypt {
        aft_vfs::otfe::encrypt_reader(inner, key)
    } else {
        aft_vfs::otfe::decrypt_reader(inner, key)
    };
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await?;
    Ok(out)
}

#[test]
fn otfe_format_matches_an_independent_implementation_of_its_documentation() {
    let d = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otfe_reference.py");
    let rt = library_support::tokio();
    for keytext in [
        "a long random passphrase",
        "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ] {
        let key = aft_vfs::otfe::key_from_string(keytext).unwrap();
        for len in [0usize, 1000, 2 * 65536, 200_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
            // aft encrypts, the reference decrypts.
            let ct = rt.block_on(otfe(true, plain.clone(), &key)).unwrap();
            let ct_path = d.path().join("aft.otfe");
            std::fs::write(&ct_path, &ct).unwrap();
            let out = tool(
                "python3",
                &[script, "decrypt", keytext, &ct_path.to_string_lossy()],
                d.path(),
            );
            assert_eq!(out.stdout, plain, "reference decryption of {len} bytes");
            // The reference encrypts, aft decrypts.
            let plain_path = d.path().join("plain.bin");
            std::fs::write(&plain_path, &plain).unwrap();
            let out = tool(
                "python3",
                &[script, "encrypt", keytext, &plain_path.to_string_lossy()],
                d.path(),
            );
            assert_eq!(
                out.stdout.len() as u64,
                aft_vfs::otfe::encrypted_len(len as u64)
            );
            let back = rt.block_on(otfe(false, out.stdout, &key)).unwrap();
            assert_eq!(
                back, plain,
                "aft decryption of {len} bytes from the reference"
            );
        }
    }
}
