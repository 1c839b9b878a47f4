//! SFTP on russh + russh-sftp, with many requests in flight.
//!
//! - Auth: password, OpenSSH/PEM/PKCS#8 private keys (encrypted ones with a passphrase) and
//!   PuTTY `.ppk` keys (v2 and v3, plain or encrypted); a key is tried first, then the password.
//! - Host keys are pinned by SHA-256 (`SHA256:` + base64 as OpenSSH prints it), MD5
//!   (`MD5:aa:bb:..`) and/or SHA-1 (`SHA1:` + base64, or hex), prefixes optional; the key
//!   must match every pin that is set. An unpinned or mismatching key is refused with
//!   [`VfsError::HostKey`] naming its SHA-256 fingerprint (and the pins it failed), unless
//!   `accept_any_host_key` is set explicitly.
//! - Big files move as pipelined reads/writes: up to [`SftpConfig::max_in_flight`] requests
//!   of [`SftpConfig::chunk_size`] bytes, capped by the server's `limits@openssh.com`.
//! - The connection is opened lazily by the first operation, shared by all tasks using this
//!   backend, and re-opened by the next operation after it broke.
//! - Paths: VFS path `/x` is the server path `<base_dir>/x`; without a base dir, the
//!   server's own absolute paths.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use md5::Md5;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio::sync::Mutex;

use crate::config::Fields;
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

/// The SFTP backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "sftp",
        aliases: &[],
        label: "SFTP",
        client: "SftpClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::address("Host", "Host")
            .required()
            .placeholder("sftp.example.com:22"),
        FieldInfo::text("User", "User").required(),
        FieldInfo::credential("Pass", "Password"),
        FieldInfo::secret("PassFromSecret", "Password secret", "Pass"),
        FieldInfo::file("KeyFile", "Private key file")
            .placeholder("/home/aft/.ssh/id_ed25519")
            .help("Path of an OpenSSH, PEM or PuTTY .ppk key on the aft machine."),
        FieldInfo::secret("KeyFileFromSecret", "Private key secret", "KeyFile")
            .help("The name of a secret holding the private key's text (OpenSSH, PEM or PuTTY .ppk); wins over KeyFile."),
        FieldInfo::credential("KeyFilePass", "Key passphrase"),
        FieldInfo::secret("KeyFileSecret", "Key passphrase secret", "KeyFilePass"),
        FieldInfo::text("BaseDir", "Base folder")
            .placeholder("/upload")
            .help("Server folder that VFS path / maps to."),
        FieldInfo::text("HostKeySHA256", "Pinned host key (SHA-256)")
            .placeholder("SHA256:…")
            .help("Leave empty and press Test: the fingerprint the server shows can be pinned then."),
        FieldInfo::text("HostKeyMD5", "Pinned host key (MD5)")
            .placeholder("MD5:aa:bb:…")
            .advanced(),
        FieldInfo::text("HostKeySHA1", "Pinned host key (SHA-1)")
            .placeholder("SHA1:…")
            .advanced(),
        FieldInfo::bool("AcceptAnyHostKey", "Accept any host key (unsafe: testing only)"),
        FieldInfo::number("ChunkSize", "Bytes per request")
            .placeholder("65536")
            .help("4096 to 1048576, capped by the server's limits.")
            .advanced(),
        FieldInfo::number("MaxInFlight", "Requests in flight per file")
            .placeholder("64")
            .advanced(),
        FieldInfo::number("Timeout", "Timeout (seconds)")
            .placeholder("30")
            .advanced(),
    ],
    one_of: &[],
    open: |f| Ok(Arc::new(SftpFs::from_fields(f)?)),
};

/// How to reach and log in to one SFTP server.
#[derive(Clone)]
pub struct SftpConfig {
    /// `host:port` (port 22 when omitted).
    pub host: String,
    /// Login name.
    pub user: String,
    /// Password, if password auth is to be tried.
    pub password: Option<String>,
    /// A private key's text (OpenSSH, PEM, PKCS#8 or PuTTY `.ppk` v2/v3).
    pub private_key: Option<String>,
    /// The file the private key was read from, named in errors (`None`: given as text).
    pub key_file: Option<String>,
    /// The secret the private key's text came from (`KeyFileFromSecret`), named in errors.
    pub key_secret: Option<String>,
    /// The passphrase of an encrypted private key.
    pub key_passphrase: Option<String>,
    /// The pinned host key SHA-256 fingerprint (`SHA256:` + base64, prefix optional).
    pub host_key_sha256: Option<String>,
    /// The pinned host key MD5 fingerprint (`MD5:aa:bb:..`, prefix and colons optional).
    pub host_key_md5: Option<String>,
    /// The pinned host key SHA-1 fingerprint (`SHA1:` + base64, or hex; prefix optional).
    pub host_key_sha1: Option<String>,
    /// Accept any host key (only when explicitly asked: it allows man-in-the-middle).
    pub accept_any_host_key: bool,
    /// Server folder that VFS path `/` maps to; `None` uses the server's absolute paths.
    pub base_dir: Option<String>,
    /// Bytes per read/write request (capped by the server's limits); default 64 KiB.
    pub chunk_size: u32,
    /// Requests in flight per file; default 64.
    pub max_in_flight: usize,
    /// Seconds before connecting or one request is given up; default 30.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SftpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so passwords and keys never reach a log.
        f.debug_struct("SftpConfig")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("key_file", &self.key_file)
            .field("key_secret", &self.key_secret)
            .field("host_key_sha256", &self.host_key_sha256)
            .field("host_key_md5", &self.host_key_md5)
            .field("host_key_sha1", &self.host_key_sha1)
            .field("accept_any_host_key", &self.accept_any_host_key)
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl SftpConfig {
    /// A config for `host` (`host:port`) and `user` with defaults and no credentials yet.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            user: user.into(),
            password: None,
            private_key: None,
            key_file: None,
            key_secret: None,
            key_passphrase: None,
            host_key_sha256: None,
            host_key_md5: None,
            host_key_sha1: None,
            accept_any_host_key: false,
            base_dir: None,
            chunk_size: 64 * 1024,
            max_in_flight: 64,
            timeout_secs: 30,
        }
    }

    /// Build from client fields: `Host`, `User`, `Pass`/`PassFromSecret`, `KeyFile` (a path
    /// or the key text) or `KeyFileFromSecret` (a secret holding the key text, which wins),
    /// `KeyFilePass`/`KeyFileSecret`, `HostKeySHA256`, `HostKeyMD5`,
    /// `HostKeySHA1`, `AcceptAnyHostKey`, `BaseDir`, `ChunkSize`, `MaxInFlight`, `Timeout`.
    /// A pin that is not a fingerprint of its kind is refused here.
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let mut cfg = Self::new(fields.required("Host")?, fields.required("User")?);
        cfg.password = fields.secret("Pass", "PassFromSecret")?;
        if let Some(secret) = fields.str("KeyFileFromSecret") {
            let text = fields
                .secret("KeyFile", "KeyFileFromSecret")?
                .unwrap_or_default();
            if !crate::registry::holds_private_key(&text) {
                return Err(VfsError::Auth(format!(
                    "sftp client: the secret {secret:?} named by KeyFileFromSecret does not hold a \
                     private key's text (it must start with -----BEGIN or PuTTY-User-Key-File-); \
                     store the key file's content: aft secret set {secret} < KEYFILE"
                )));
            }
            cfg.private_key = Some(text);
            cfg.key_secret = Some(secret);
        } else if let Some(key) = fields.str("KeyFile") {
            let (text, file) = load_key_text(&key)?;
            cfg.private_key = Some(text);
            cfg.key_file = file;
        }
        cfg.key_passphrase = fields.secret("KeyFilePass", "KeyFileSecret")?;
        cfg.host_key_sha256 = fields.str("HostKeySHA256");
        cfg.host_key_md5 = fields.str("HostKeyMD5");
        cfg.host_key_sha1 = fields.str("HostKeySHA1");
        HostKeyPins::parse(&cfg)?;
        cfg.accept_any_host_key = fields.bool("AcceptAnyHostKey");
        cfg.base_dir = fields.str("BaseDir");
        if let Some(n) = fields.u64("ChunkSize")? {
            cfg.chunk_size = n.clamp(4096, 1 << 20) as u32;
        }
        if let Some(n) = fields.u64("MaxInFlight")? {
            cfg.max_in_flight = n.clamp(1, 1024) as usize;
        }
        if let Some(n) = fields.u64("Timeout")? {
            cfg.timeout_secs = n.max(1);
        }
        Ok(cfg)
    }

    fn addr(&self) -> String {
        if self
            .host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !self.host.ends_with(']')
        {
            self.host.clone()
        } else {
            format!("{}:22", self.host)
        }
    }
}

/// russh's algorithm preferences, with AES-256-GCM first on CPUs with AES and carry-less
/// multiply instructions: there it encrypts well over twice as fast as ChaCha20-Poly1305
/// (russh's first choice), which decides big-file throughput. Elsewhere ChaCha20 stays first.
fn preferred_algorithms() -> russh::Preferred {
    #[cfg(target_arch = "x86_64")]
    let fast_aes = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let fast_aes = std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let fast_aes = false;
    if !fast_aes {
        return russh::Preferred::DEFAULT;
    }
    const AES_FIRST: &[russh::cipher::Name] = &[
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_CTR,
        russh::cipher::AES_192_CTR,
        russh::cipher::AES_128_CTR,
    ];
    russh::Preferred {
        cipher: std::borrow::Cow::Borrowed(AES_FIRST),
        ..russh::Preferred::DEFAULT
    }
}

/// `KeyFile` holds a path or, when it starts like a key, the key itself: the key's text,
/// and the path it came from.
fn load_key_text(key: &str) -> VfsResult<(String, Option<String>)> {
    if crate::registry::holds_private_key(key) {
        return Ok((key.to_string(), None));
    }
    let text = std::fs::read_to_string(key)
        .map_err(|e| VfsError::Auth(format!("cannot read the KeyFile {key}: {e}")))?;
    Ok((text, Some(key.to_string())))
}

/// A fingerprint kind a host key can be pinned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinKind {
    Sha256,
    Md5,
    Sha1,
}

impl PinKind {
    /// The client field that sets this pin.
    fn field(self) -> &'static str {
        match self {
            PinKind::Sha256 => "HostKeySHA256",
            PinKind::Md5 => "HostKeyMD5",
            PinKind::Sha1 => "HostKeySHA1",
        }
    }

    /// The prefix OpenSSH prints before this kind of fingerprint.
    fn prefix(self) -> &'static str {
        match self {
            PinKind::Sha256 => "SHA256:",
            PinKind::Md5 => "MD5:",
            PinKind::Sha1 => "SHA1:",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            PinKind::Sha256 => 32,
            PinKind::Md5 => 16,
            PinKind::Sha1 => 20,
        }
    }

    /// What a user may paste, for error messages.
    fn formats(self) -> &'static str {
        match self {
            PinKind::Sha256 => "SHA256: and base64 as `ssh-keygen -l` prints it (or hex)",
            PinKind::Md5 => "MD5: and hex pairs as `ssh-keygen -l -E md5` prints it",
            PinKind::Sha1 => "SHA1: and base64 as `ssh-keygen -l -E sha1` prints it, or hex",
        }
    }

    /// The digest of a public key's SSH wire encoding, as OpenSSH fingerprints it.
    fn digest(self, wire: &[u8]) -> Vec<u8> {
        match self {
            PinKind::Sha256 => Sha256::digest(wire).to_vec(),
            PinKind::Md5 => Md5::digest(wire).to_vec(),
            PinKind::Sha1 => Sha1::digest(wire).to_vec(),
        }
    }

    /// A digest written as OpenSSH prints it: MD5 as colon-separated hex, others as
    /// unpadded base64.
    fn display(self, digest: &[u8]) -> String {
        match self {
            PinKind::Md5 => {
                let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("MD5:{}", pairs.join(":"))
            }
            _ => format!("{}{}", self.prefix(), STANDARD_NO_PAD.encode(digest)),
        }
    }

    /// Read a pasted fingerprint: prefix optional (any case), then hex (colons optional;
    /// the only form for MD5) or base64 (padded or not).
    fn parse(self, pinned: &str) -> VfsResult<Vec<u8>> {
        let text = pinned.trim();
        let prefix = self.prefix();
        let body = match text.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix) => &text[prefix.len()..],
            _ => text,
        };
        let hex_text: String = body.chars().filter(|c| *c != ':').collect();
        let decoded = if hex_text.len() == 2 * self.digest_len() {
            hex::decode(&hex_text).ok()
        } else if self == PinKind::Md5 {
            None
        } else {
            STANDARD_NO_PAD.decode(body.trim_end_matches('=')).ok()
        };
        match decoded {
            Some(d) if d.len() == self.digest_len() => Ok(d),
            _ => Err(VfsError::Other(format!(
                "sftp client: {} = \"{pinned}\" is not a {}-byte fingerprint; expected {}",
                self.field(),
                self.digest_len(),
                self.formats()
            ))),
        }
    }
}

/// The host key pins of a config, decoded; a key must match all of them.
#[derive(Debug, Clone, Default)]
struct HostKeyPins {
    pins: Vec<(PinKind, Vec<u8>)>,
}

impl HostKeyPins {
    fn parse(cfg: &SftpConfig) -> VfsResult<Self> {
        let mut pins = Vec::new();
        for (kind, text) in [
            (PinKind::Sha256, &cfg.host_key_sha256),
            (PinKind::Md5, &cfg.host_key_md5),
            (PinKind::Sha1, &cfg.host_key_sha1),
        ] {
            if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                pins.push((kind, kind.parse(text)?));
            }
        }
        Ok(Self { pins })
    }

    /// `None` when every pin matches the key (wire encoding `wire`); otherwise the failed
    /// pins, each with the key's own value, or `None` inside when no pin is set at all.
    fn check(&self, wire: &[u8]) -> Option<Option<String>> {
        if self.pins.is_empty() {
            return Some(None);
        }
        let failed: Vec<String> = self
            .pins
            .iter()
            .filter_map(|(kind, pinned)| {
                let actual = kind.digest(wire);
                (actual != *pinned).then(|| {
                    format!(
                        "{} = \"{}\" (the key's is {})",
                        kind.field(),
                        kind.display(pinned),
                        kind.display(&actual)
                    )
                })
            })
            .collect();
        (!failed.is_empty()).then(|| Some(failed.join(" and ")))
    }
}

/// What the handler saw of the server's key, for the error after a refusal.
#[derive(Debug, Default)]
struct SeenKey {
    fingerprint: String,
    mismatch: Option<String>,
}

struct ClientHandler {
    pins: HostKeyPins,
    accept_any: bool,
    seen: Arc<StdMutex<SeenKey>>,
}

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A certificate is judged by the key it certifies, as OpenSSH fingerprints it.
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        let wire = key.to_bytes().map_err(russh::keys::Error::from)?;
        let verdict = self.pins.check(&wire);
        *self.seen.lock().expect("host key slot") = SeenKey {
            fingerprint: PinKind::Sha256.display(&PinKind::Sha256.digest(&wire)),
            mismatch: verdict.clone().flatten(),
        };
        Ok(self.accept_any || verdict.is_none())
    }
}

/// One live SSH connection with its SFTP session.
struct Conn {
    sftp: RawSftpSession,
    ssh: russh::client::Handle<ClientHandler>,
    posix_rename: bool,
    read_len: u32,
    write_len: u32,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }
}

/// An SFTP server seen as a [`Vfs`].
pub struct SftpFs {
    cfg: SftpConfig,
    conn: Mutex<Option<Arc<Conn>>>,
}

impl std::fmt::Debug for SftpFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpFs")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl SftpFs {
    /// A backend for `cfg`; nothing is opened until the first operation (or [`Vfs::connect`]).
    pub fn new(cfg: SftpConfig) -> Self {
        Self {
            cfg,
            conn: Mutex::new(None),
        }
    }

    /// Build from client/VFS Library fields (see [`SftpConfig::from_fields`]).
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        Ok(Self::new(SftpConfig::from_fields(fields)?))
    }

    fn target(&self) -> String {
        format!("sftp://{}@{}", self.cfg.user, self.cfg.addr())
    }

    fn conn_err(&self, message: impl std::fmt::Display) -> VfsError {
        VfsError::Connection {
            target: self.target(),
            message: message.to_string(),
        }
    }

    async fn conn(&self) -> VfsResult<Arc<Conn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *slot = None;
        let c = Arc::new(self.open().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forget a connection that failed, so the next call opens a new one.
    async fn drop_conn(&self, broken: &Arc<Conn>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            *slot = None;
        }
    }

    async fn open(&self) -> VfsResult<Conn> {
        let cfg = &self.cfg;
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let ssh_cfg = Arc::new(russh::client::Config {
            window_size: 16 * 1024 * 1024,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            preferred: preferred_algorithms(),
            ..Default::default()
        });
        let seen = Arc::new(StdMutex::new(SeenKey::default()));
        let handler = ClientHandler {
            pins: HostKeyPins::parse(cfg)?,
            accept_any: cfg.accept_any_host_key,
            seen: seen.clone(),
        };
        let addr = cfg.addr();
        let connecting = russh::client::connect(ssh_cfg, addr.clone(), handler);
        let mut ssh = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(self.conn_err(format!("no answer within {}s", cfg.timeout_secs))),
            Ok(Ok(h)) => h,
            Ok(Err(russh::Error::UnknownKey)) => {
                let seen = std::mem::take(&mut *seen.lock().expect("host key slot"));
                return Err(VfsError::HostKey {
                    host: addr,
                    fingerprint: seen.fingerprint,
                    mismatch: seen.mismatch,
                });
            }
            Ok(Err(e)) => return Err(self.conn_err(e)),
        };
        self.authenticate(&mut ssh).await?;
        let channel = ssh
            .channel_open_session()
            .await
            .map_err(|e| self.conn_err(format!("opening a channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| self.conn_err(format!("starting the sftp subsystem: {e}")))?;
        let sftp_cfg = russh_sftp::client::Config {
            request_timeout_secs: cfg.timeout_secs,
            max_packet_len: 1024 * 1024 + 1024,
            ..Default::default()
        };
        let mut sftp = RawSftpSession::new_with_config(channel.into_stream(), sftp_cfg);
        let version = sftp
            .init()
            .await
            .map_err(|e| self.conn_err(format!("SFTP init: {e}")))?;
        let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
        let (mut read_len, mut write_len) = (cfg.chunk_size, cfg.chunk_size);
        if version.extensions.contains_key("limits@openssh.com")
            && let Ok(limits) = sftp.limits().await
        {
            if limits.max_read_len > 0 {
                read_len = read_len.min(limits.max_read_len.min(u32::MAX as u64) as u32);
            }
            if limits.max_write_len > 0 {
                write_len = write_len.min(limits.max_write_len.min(u32::MAX as u64) as u32);
            }
            sftp.set_limits(limits.into());
        }
        Ok(Conn {
            sftp,
            ssh,
            posix_rename,
            read_len,
            write_len,
        })
    }

    async fn authenticate(&self, ssh: &mut russh::client::Handle<ClientHandler>) -> VfsResult<()> {
        let cfg = &self.cfg;
        let mut tried = Vec::new();
        if let Some(text) = &cfg.private_key {
            let key = russh::keys::decode_secret_key(text, cfg.key_passphrase.as_deref()).map_err(
                |e| {
                    let source = match (&cfg.key_file, &cfg.key_secret) {
                        (Some(path), _) => format!("KeyFile {path}"),
                        (None, Some(secret)) => {
                            format!("private key in the secret {secret:?} (KeyFileFromSecret)")
                        }
                        (None, None) => "private key given in KeyFile".to_string(),
                    };
                    let hint = if cfg.key_passphrase.is_some() {
                        "wrong passphrase? check KeyFilePass or KeyFileSecret"
                    } else {
                        "encrypted? set KeyFilePass or KeyFileSecret"
                    };
                    VfsError::Auth(format!(
                        "cannot load the {source} for {}: {e} ({hint})",
                        self.target()
                    ))
                },
            )?;
            let hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = ssh
                .authenticate_publickey(&cfg.user, key)
                .await
                .map_err(|e| self.conn_err(format!("key auth: {e}")))?;
            if result.success() {
                return Ok(());
            }
            tried.push("the private key");
        }
        if let Some(pass) = &cfg.password {
            let result = ssh
                .authenticate_password(&cfg.user, pass)
                .await
                .map_err(|e| self.conn_err(format!("password auth: {e}")))?;
            if result.success() {
                return Ok(());
            }
            tried.push("the password");
        }
        if tried.is_empty() {
            return Err(VfsError::Auth(format!(
                "{}: no password or key given (set Pass or KeyFile)",
                self.target()
            )));
        }
        Err(VfsError::Auth(format!(
            "{} refused {}; check User, Pass and KeyFile",
            self.target(),
            tried.join(" and ")
        )))
    }

    /// The server path of a VFS path.
    fn remote(&self, path: &str) -> String {
        let clean = normalize(path);
        match &self.cfg.base_dir {
            Some(base) => {
                let base = base.trim_end_matches('/');
                if clean == "/" {
                    if base.is_empty() {
                        "/".into()
                    } else {
                        base.to_string()
                    }
                } else {
                    format!("{base}{clean}")
                }
            }
            None => clean,
        }
    }

    /// Map a protocol error on `path`, dropping the connection when it is the link that broke.
    async fn fail(&self, conn: &Arc<Conn>, path: &str, e: SftpError) -> VfsError {
        let err = map_err(&self.target(), path, e);
        if matches!(err, VfsError::Connection { .. }) || conn.is_closed() {
            self.drop_conn(conn).await;
            return match err {
                VfsError::Connection { .. } => err,
                other => self.conn_err(format!("{path}: {other}")),
            };
        }
        err
    }
}

fn map_err(target: &str, path: &str, e: SftpError) -> VfsError {
    match e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => VfsError::NotFound(path.to_string()),
            StatusCode::PermissionDenied => VfsError::PermissionDenied(path.to_string()),
            StatusCode::OpUnsupported => {
                VfsError::Unsupported("an SFTP operation this server does not offer")
            }
            _ => VfsError::Other(format!(
                "{target}{path}: {} ({})",
                s.error_message, s.status_code
            )),
        },
        SftpError::Timeout => VfsError::Connection {
            target: target.into(),
            message: format!("{path}: request timed out"),
        },
        SftpError::IO(m) | SftpError::UnexpectedBehavior(m) => VfsError::Connection {
            target: target.into(),
            message: format!("{path}: {m}"),
        },
        other => VfsError::Other(format!("{target}{path}: {other}")),
    }
}

fn to_io(target: &str, path: &str, e: SftpError) -> io::Error {
    let kind = match &e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => io::ErrorKind::NotFound,
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            io::ErrorKind::PermissionDenied
        }
        SftpError::Status(_) | SftpError::Limited(_) | SftpError::UnexpectedPacket => {
            io::ErrorKind::Other
        }
        SftpError::Timeout => io::ErrorKind::TimedOut,
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, format!("{target}{path}: {e}"))
}

fn entry(vfs_path: &str, attrs: &FileAttributes) -> Entry {
    let is_dir = attrs.is_dir();
    Entry {
        path: normalize(vfs_path),
        name: file_name(vfs_path),
        size: if is_dir { 0 } else { attrs.size.unwrap_or(0) },
        mtime: attrs
            .mtime
            .and_then(|t| DateTime::from_timestamp(t as i64, 0)),
        is_dir,
        etag: None,
    }
}

/// Closes a remote handle when dropped, so an abandoned reader or listing does not leak it.
struct HandleGuard {
    conn: Arc<Conn>,
    handle: Option<String>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let conn = self.conn.clone();
            rt.spawn(async move {
                let _ = conn.sftp.close(h).await;
            });
        }
    }
}

type ReadFut = BoxFuture<'static, (u64, u32, Result<Vec<u8>, SftpError>)>;

/// Pipelined reader state: requests at increasing offsets, answers consumed in order.
struct ReadState {
    guard: HandleGuard,
    label: String,
    path: String,
    next: u64,
    end: Option<u64>,
    chunk: u32,
    depth: usize,
    inflight: FuturesOrdered<ReadFut>,
    done: bool,
}

impl ReadState {
    fn request(&self, offset: u64, len: u32) -> ReadFut {
        let conn = self.guard.conn.clone();
        let handle = self.guard.handle.clone().unwrap_or_default();
        async move {
            (
                offset,
                len,
                conn.sftp.read(handle, offset, len).await.map(|d| d.data),
            )
        }
        .boxed()
    }

    fn fill(&mut self) {
        while !self.done && self.inflight.len() < self.depth {
            let len = match self.end {
                Some(end) if self.next >= end => return,
                Some(end) => (end - self.next).min(self.chunk as u64) as u32,
                None => self.chunk,
            };
            let fut = self.request(self.next, len);
            self.inflight.push_back(fut);
            self.next += len as u64;
        }
    }

    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        self.fill();
        let (offset, len, result) = self.inflight.next().await?;
        match result {
            Ok(mut data) => {
                // A short answer before the end: fetch the gap before later chunks.
                while (data.len() as u32) < len {
                    let at = offset + data.len() as u64;
                    let want = len - data.len() as u32;
                    let handle = self.guard.handle.clone().unwrap_or_default();
                    match self.guard.conn.sftp.read(handle, at, want).await {
                        Ok(more) if !more.data.is_empty() => data.extend_from_slice(&more.data),
                        Ok(_) => break,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                            self.done = true;
                            self.inflight.clear();
                            break;
                        }
                        Err(e) => return Some(Err(to_io(&self.label, &self.path, e))),
                    }
                }
                Some(Ok(Bytes::from(data)))
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                self.done = true;
                self.inflight.clear();
                None
            }
            Err(e) => {
                self.done = true;
                self.inflight.clear();
                Some(Err(to_io(&self.label, &self.path, e)))
            }
        }
    }
}

type WriteFut = BoxFuture<'static, Result<(), SftpError>>;

/// Pipelined writer: full chunks go out at once, up to `depth` unacknowledged.
struct SftpWriter {
    conn: Arc<Conn>,
    handle: Option<String>,
    label: String,
    path: String,
    offset: u64,
    buf: Vec<u8>,
    chunk: usize,
    depth: usize,
    inflight: FuturesUnordered<WriteFut>,
    error: Option<io::Error>,
    closing: Option<WriteFut>,
}

impl SftpWriter {
    fn send(&mut self) {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        let conn = self.conn.clone();
        let handle = self.handle.clone().unwrap_or_default();
        let offset = self.offset;
        self.offset += data.len() as u64;
        self.inflight
            .push(async move { conn.sftp.write(handle, offset, data).await.map(|_| ()) }.boxed());
    }

    /// Drive in-flight writes; Ready(Err) on the first failure.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match self.inflight.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(()))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    let err = to_io(&self.label, &self.path, e);
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for SftpWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            return Poll::Ready(Err(e));
        }
        if this.buf.len() >= this.chunk {
            if this.inflight.len() >= this.depth {
                return Poll::Pending; // woken by an acknowledgement (drive registered us)
            }
            this.send();
        }
        let n = data.len().min(this.chunk - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        if this.buf.len() >= this.chunk && this.inflight.len() < this.depth {
            this.send();
        }
        // Start the new requests now; an error surfaces on the next call.
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            this.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.buf.is_empty() && this.inflight.len() < this.depth {
                this.send();
            }
            match this.drive(cx) {
                Poll::Ready(Ok(())) if this.buf.is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing.is_none() {
            match self.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let Some(handle) = self.handle.take() else {
                return Poll::Ready(Ok(()));
            };
            let conn = self.conn.clone();
            self.closing = Some(async move { conn.sftp.close(handle).await.map(|_| ()) }.boxed());
        }
        let this = &mut *self;
        let closing = this.closing.as_mut().expect("closing future");
        match closing.poll_unpin(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(&this.label, &this.path, e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            drop(HandleGuard {
                conn: self.conn.clone(),
                handle: Some(h),
            });
        }
    }
}

/// SSH string encoding (u32 length + bytes) for extended requests.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[async_trait]
impl Vfs for SftpFs {
    fn describe(&self) -> String {
        self.target()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_write: false,
            resume_upload: true,
            ranged_read: true,
            set_mtime: true,
            rename: true,
            real_directories: true,
            server_hash: None,
        }
    }

    async fn connect(&self) -> VfsResult<()> {
        self.conn().await.map(|_| ())
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let conn = self.conn().await?;
        match conn.sftp.stat(self.remote(path)).await {
            Ok(a) => Ok(entry(path, &a.attrs)),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let conn = self.conn().await?;
        let dir = normalize(dir);
        let handle = match conn.sftp.opendir(self.remote(&dir)).await {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, &dir, e).await),
        };
        struct ListState {
            guard: HandleGuard,
            dir: String,
            label: String,
            batch: VecDeque<Entry>,
            done: bool,
        }
        let state = ListState {
            guard: HandleGuard {
                conn,
                handle: Some(handle),
            },
            dir,
            label: self.target(),
            batch: VecDeque::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(e) = st.batch.pop_front() {
                    return Some((Ok(e), st));
                }
                if st.done {
                    return None;
                }
                let handle = st.guard.handle.clone().unwrap_or_default();
                match st.guard.conn.sftp.readdir(handle).await {
                    Ok(name) => {
                        for f in name.files {
                            if f.filename == "." || f.filename == ".." {
                                continue;
                            }
                            st.batch
                                .push_back(entry(&join(&st.dir, &f.filename), &f.attrs));
                        }
                    }
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => st.done = true,
                    Err(e) => {
                        st.done = true;
                        let err = map_err(&st.label, &st.dir, e);
                        return Some((Err(err), st));
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let conn = self.conn().await?;
        let remote = self.remote(path);
        let handle = match conn
            .sftp
            .open(&remote, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, path, e).await),
        };
        let guard = HandleGuard {
            conn: conn.clone(),
            handle: Some(handle.clone()),
        };
        let size = match conn.sftp.fstat(handle).await {
            Ok(a) if a.attrs.is_dir() => {
                return Err(VfsError::Other(format!(
                    "{}{path} is a directory",
                    self.target()
                )));
            }
            Ok(a) => a.attrs.size,
            Err(_) => None,
        };
        let end = match (size, len) {
            (Some(s), Some(l)) => Some(s.min(offset.saturating_add(l))),
            (Some(s), None) => Some(s),
            (None, Some(l)) => Some(offset.saturating_add(l)),
            (None, None) => None,
        };
        let state = ReadState {
            guard,
            label: self.target(),
            path: path.to_string(),
            next: offset,
            end,
            chunk: conn.read_len.max(1),
            depth: self.cfg.max_in_flight.max(1),
            inflight: FuturesOrdered::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            let item = st.next_chunk().await?;
            Some((item, st))
        });
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let conn = self.conn().await?;
        let remote = self.remote(path);
        let (flags, offset) = match mode {
            WriteMode::Create => (
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0,
            ),
            WriteMode::ResumeAt(n) => (OpenFlags::WRITE, n),
        };
        let handle = match conn
            .sftp
            .open(&remote, flags, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, path, e).await),
        };
        if offset > 0 {
            // Drop whatever follows the resume point, so the file ends where we stop.
            let attrs = FileAttributes {
                size: Some(offset),
                ..FileAttributes::empty()
            };
            if let Err(e) = conn.sftp.fsetstat(handle.clone(), attrs).await {
                drop(HandleGuard {
                    conn: conn.clone(),
                    handle: Some(handle),
                });
                return Err(self.fail(&conn, path, e).await);
            }
        }
        let chunk = conn.write_len.max(1) as usize;
        Ok(Box::pin(SftpWriter {
            conn,
            handle: Some(handle),
            label: self.target(),
            path: path.to_string(),
            offset,
            buf: Vec::with_capacity(chunk),
            chunk,
            depth: self.cfg.max_in_flight.max(1),
            inflight: FuturesUnordered::new(),
            error: None,
            closing: None,
        }))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let clean = normalize(path);
        if let Ok(a) = conn.sftp.stat(self.remote(&clean)).await {
            return if a.attrs.is_dir() {
                Ok(())
            } else {
                Err(VfsError::AlreadyExists(format!(
                    "{}{clean} is a file",
                    self.target()
                )))
            };
        }
        let mut current = String::new();
        for part in clean.split('/').filter(|p| !p.is_empty()) {
            current = format!("{current}/{part}");
            let remote = self.remote(&current);
            match conn.sftp.stat(&remote).await {
                Ok(a) if a.attrs.is_dir() => continue,
                Ok(_) => {
                    return Err(VfsError::AlreadyExists(format!(
                        "{}{current} is a file",
                        self.target()
                    )));
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
                Err(e) => return Err(self.fail(&conn, &current, e).await),
            }
            if let Err(e) = conn.sftp.mkdir(&remote, FileAttributes::empty()).await {
                // Another task may have made it meanwhile.
                match conn.sftp.stat(&remote).await {
                    Ok(a) if a.attrs.is_dir() => {}
                    _ => return Err(self.fail(&conn, &current, e).await),
                }
            }
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let (rfrom, rto) = (self.remote(from), self.remote(to));
        if conn.posix_rename {
            let mut data = Vec::new();
            ssh_string(&mut data, &rfrom);
            ssh_string(&mut data, &rto);
            return match conn.sftp.extended("posix-rename@openssh.com", data).await {
                Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => {
                    Ok(())
                }
                Ok(russh_sftp::protocol::Packet::Status(s)) => {
                    Err(self.fail(&conn, from, SftpError::Status(s)).await)
                }
                Ok(_) => Err(VfsError::Other(format!(
                    "{}: unexpected answer to posix-rename",
                    self.target()
                ))),
                Err(e) => Err(self.fail(&conn, from, e).await),
            };
        }
        match conn.sftp.rename(&rfrom, &rto).await {
            Ok(_) => Ok(()),
            Err(first) => {
                // SFTP v3 rename refuses an existing target: replace a file explicitly.
                match conn.sftp.stat(&rto).await {
                    Ok(a) if !a.attrs.is_dir() => {
                        if let Err(e) = conn.sftp.remove(&rto).await {
                            return Err(self.fail(&conn, to, e).await);
                        }
                        match conn.sftp.rename(&rfrom, &rto).await {
                            Ok(_) => Ok(()),
                            Err(e) => Err(self.fail(&conn, from, e).await),
                        }
                    }
                    _ => Err(self.fail(&conn, from, first).await),
                }
            }
        }
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        match conn.sftp.remove(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        match conn.sftp.rmdir(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let conn = self.conn().await?;
        let secs = mtime.timestamp().clamp(0, u32::MAX as i64) as u32;
        let attrs = FileAttributes {
            atime: Some(secs),
            mtime: Some(secs),
            ..FileAttributes::empty()
        };
        match conn.sftp.setstat(self.remote(path), attrs).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn close(&self) -> VfsResult<()> {
        if let Some(c) = self.conn.lock().await.take() {
            let _ = c.sftp.close_session();
            let _ = c
                .ssh
                .disconnect(russh::Disconnect::ByApplication, "bye", "en")
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aes_gcm_comes_first_only_where_the_cpu_accelerates_it() {
        let preferred = super::preferred_algorithms();
        #[cfg(target_arch = "x86_64")]
        let fast_aes = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq");
        #[cfg(not(target_arch = "x86_64"))]
        let fast_aes = preferred.cipher[0] == russh::cipher::AES_256_GCM;
        let first = preferred.cipher[0];
        if fast_aes {
            assert_eq!(first, russh::cipher::AES_256_GCM);
        } else {
            assert_eq!(first, russh::Preferred::DEFAULT.cipher[0]);
        }
        assert!(
            preferred.cipher.contains(&russh::cipher::CHACHA20_POLY1305),
            "servers without AES-GCM still get ChaCha20"
        );
    }

    use super::*;

    /// An ed25519 public key blob and its fingerprints as `ssh-keygen -l -E ...` printed them.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIM0M2/IfPpdRXEfeMI+6Gj7gW4yKnFjohoPUp/Oy8Zlv";
    const KEY_SHA256: &str = "SHA256:qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0";
    const KEY_MD5: &str = "MD5:46:5e:cd:95:c2:c8:c5:3f:bc:99:47:32:2f:99:26:d8";
    const KEY_SHA1: &str = "SHA1:pGxAx+YK9IugYAa8FFpyqaCpnnA";

    fn wire() -> Vec<u8> {
        STANDARD_NO_PAD.decode(KEY.trim_end_matches('=')).unwrap()
    }

    fn pins(sha256: Option<&str>, md5: Option<&str>, sha1: Option<&str>) -> VfsResult<HostKeyPins> {
        let mut cfg = SftpConfig::new("h", "u");
        cfg.host_key_sha256 = sha256.map(str::to_string);
        cfg.host_key_md5 = md5.map(str::to_string);
        cfg.host_key_sha1 = sha1.map(str::to_string);
        HostKeyPins::parse(&cfg)
    }

    #[test]
    fn digests_print_as_ssh_keygen_does() {
        for (kind, expected) in [
            (PinKind::Sha256, KEY_SHA256),
            (PinKind::Md5, KEY_MD5),
            (PinKind::Sha1, KEY_SHA1),
        ] {
            assert_eq!(kind.display(&kind.digest(&wire())), expected);
        }
    }

    #[test]
    fn pins_accept_the_forms_users_paste() {
        let sha1_hex = hex::encode(PinKind::Sha1.digest(&wire()));
        let sha1_hex_colons = sha1_hex
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let md5_bare = KEY_MD5.trim_start_matches("MD5:").replace(':', "");
        let accepted = [
            pins(Some(KEY_SHA256), None, None),
            pins(
                Some("qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0="),
                None,
                None,
            ),
            pins(
                Some("sha256:qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0"),
                None,
                None,
            ),
            pins(None, Some(KEY_MD5), None),
            pins(None, Some(&KEY_MD5.to_uppercase()), None),
            pins(None, Some(&md5_bare), None),
            pins(
                None,
                Some(" md5:465e:cd95:c2c8:c53f:bc99:4732:2f99:26d8 "),
                None,
            ),
            pins(None, None, Some(KEY_SHA1)),
            pins(None, None, Some("pGxAx+YK9IugYAa8FFpyqaCpnnA=")),
            pins(None, None, Some(&sha1_hex)),
            pins(None, None, Some(&format!("SHA1:{sha1_hex_colons}"))),
            pins(Some(KEY_SHA256), Some(KEY_MD5), Some(KEY_SHA1)),
        ];
        for (i, p) in accepted.into_iter().enumerate() {
            let p = p.unwrap_or_else(|e| panic!("form {i}: {e}"));
            assert_eq!(p.check(&wire()), None, "form {i} matches the key");
        }
    }

    #[test]
    fn every_set_pin_must_match() {
        let wrong_md5 = "MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
        let p = pins(Some(KEY_SHA256), Some(wrong_md5), Some(KEY_SHA1)).unwrap();
        let mismatch = p.check(&wire()).expect("refused").expect("names the pin");
        assert!(mismatch.contains("HostKeyMD5"), "{mismatch}");
        assert!(
            mismatch.contains(KEY_MD5),
            "names the key's MD5: {mismatch}"
        );
        assert!(!mismatch.contains("HostKeySHA1"), "{mismatch}");
        assert_eq!(pins(None, None, None).unwrap().check(&wire()), Some(None));
    }

    #[test]
    fn malformed_pins_are_refused_naming_the_field() {
        for (p, field) in [
            (pins(Some("SHA256:AAAA"), None, None), "HostKeySHA256"),
            (pins(None, Some("MD5:zz:11"), None), "HostKeyMD5"),
            (pins(None, Some(KEY_SHA1), None), "HostKeyMD5"),
            (pins(None, None, Some("SHA1:not base64!")), "HostKeySHA1"),
        ] {
            let err = p.unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn addr_adds_the_default_port() {
        assert_eq!(SftpConfig::new("h", "u").addr(), "h:22");
        assert_eq!(SftpConfig::new("h:2222", "u").addr(), "h:2222");
    }
}
