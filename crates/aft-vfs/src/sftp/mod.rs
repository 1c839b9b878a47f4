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
//! - One big file can move over several SSH connections at once (`Streams`, see
//!   [`SftpConfig::streams`]): its requests take turns on them, within the same window.
//!   Not set, an upload takes one connection on a LAN and [`FAR_STREAMS`] on a far server
//!   (a request's round trip of [`FAR_ROUND_TRIP`] or more); a download takes one, whose
//!   window grows while the reader waits on a far server.
//! - The connection is opened lazily by the first operation, shared by all tasks using this
//!   backend, and re-opened by the next operation after it broke.
//! - Paths: VFS path `/x` is the server path `<base_dir>/x`; without a base dir, the
//!   server's own absolute paths.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use russh::keys::PrivateKeyWithHashAlg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::sync::Mutex;

use crate::config::Fields;
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use aft_secret::Secret;

use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

mod host_keys;
mod keys;
mod stream;
mod wire;

pub use keys::{KeyError, PPK_MAX_ARGON2_MEMORY_KIB, PPK_MAX_ARGON2_WORK_KIB, decode_private_key};

use host_keys::{ClientHandler, HostKeyPins, SeenKey};
use stream::{HandleGuard, ReadState, ReadWindow, SftpWriter};

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
            .placeholder("262144")
            .help("4096 to 1048576, capped by the server's limits (default: 256 KiB where the server states its limits, 64 KiB elsewhere).")
            .advanced(),
        FieldInfo::number("MaxInFlight", "Requests in flight per file")
            .placeholder("16")
            .help("Default: as many as make 4 MiB (16 of 256 KiB, 64 of 64 KiB).")
            .advanced(),
        // The object stores' field (name, label, meaning); on SFTP each stream is a connection.
        crate::registry::STREAMS_FIELD
            .placeholder("1; uploads 4 far")
            .help("SSH connections one file from 16 MiB up moves over at once, 1 to 16 (when not set: 1 for a download; for an upload, 1 to a server less than 4 ms away, 4 to a farther one); the requests in flight stay MaxInFlight over all of them."),
        FieldInfo::number("Timeout", "Timeout (seconds)")
            .placeholder("30")
            .advanced(),
    ],
    one_of: &[],
    open: |f| Ok(Arc::new(SftpFs::from_fields(f)?)),
};

/// How to reach and log in to one SFTP server. Credentials are [`Secret`]s, so printing
/// a config never shows them.
#[derive(Clone, Debug)]
pub struct SftpConfig {
    /// `host:port` (port 22 when omitted).
    pub host: String,
    /// Login name.
    pub user: String,
    /// Password, if password auth is to be tried.
    pub password: Option<Secret>,
    /// A private key's text (OpenSSH, PEM, PKCS#8 or PuTTY `.ppk` v2/v3).
    pub private_key: Option<Secret>,
    /// The file the private key was read from, named in errors (`None`: given as text).
    pub key_file: Option<String>,
    /// The secret the private key's text came from (`KeyFileFromSecret`), named in errors.
    pub key_secret: Option<String>,
    /// The passphrase of an encrypted private key.
    pub key_passphrase: Option<Secret>,
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
    /// Bytes per read/write request (capped by the server's limits); `None`: 256 KiB where
    /// the server states its limits (`limits@openssh.com`), 64 KiB elsewhere (a server that
    /// answers big reads short would cost a round trip per missing piece).
    pub chunk_size: Option<u32>,
    /// Requests in flight per file; `None`: as many as make [`IN_FLIGHT_BYTES`].
    pub max_in_flight: Option<usize>,
    /// SSH connections one big file (from [`STREAMS_FROM`] bytes) is moved over at once,
    /// its requests taking turns on them within the same window of
    /// [`SftpConfig::max_in_flight`] (the `Streams` field, 1 to 16). `None`: one for a
    /// download; for an upload, chosen by the connection's round trip, one below
    /// [`FAR_ROUND_TRIP`] and [`FAR_STREAMS`] from it (see [`Conn::write_streams`]). The
    /// extra connections are opened when a big file starts, kept for later files, and a
    /// stream that cannot be opened (a server's session limit) is done without.
    pub streams: Option<usize>,
    /// Seconds before connecting or one request is given up; default 30.
    pub timeout_secs: u64,
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
            chunk_size: None,
            max_in_flight: None,
            streams: None,
            timeout_secs: 30,
        }
    }

    /// Build from client fields: `Host`, `User`, `Pass`/`PassFromSecret`, `KeyFile` (a path
    /// or the key text) or `KeyFileFromSecret` (a secret holding the key text, which wins),
    /// `KeyFilePass`/`KeyFileSecret`, `HostKeySHA256`, `HostKeyMD5`,
    /// `HostKeySHA1`, `AcceptAnyHostKey`, `BaseDir`, `ChunkSize`, `MaxInFlight`, `Streams`,
    /// `Timeout`.
    /// A pin that is not a fingerprint of its kind is refused here.
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let mut cfg = Self::new(fields.required("Host")?, fields.required("User")?);
        cfg.password = fields.secret("Pass", "PassFromSecret")?;
        if let Some(secret) = fields.str("KeyFileFromSecret") {
            let text = fields
                .secret("KeyFile", "KeyFileFromSecret")?
                .unwrap_or_default();
            if !crate::registry::holds_private_key(text.expose()) {
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
            cfg.private_key = Some(Secret::new(text));
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
            cfg.chunk_size = Some(n.clamp(4096, wire::MAX_CHUNK as u64) as u32);
        }
        if let Some(n) = fields.u64("MaxInFlight")? {
            cfg.max_in_flight = Some(n.clamp(1, 1024) as usize);
        }
        if let Some(n) = fields.u64(crate::registry::STREAMS_FIELD.name)? {
            cfg.streams = Some(n.clamp(1, MAX_STREAMS as u64) as usize);
        }
        if let Some(n) = fields.u64("Timeout")? {
            cfg.timeout_secs = n.max(1);
        }
        Ok(cfg)
    }

    /// Requests in flight per file on a connection moving `chunk`-byte requests.
    fn depth(&self, chunk: u32) -> usize {
        self.max_in_flight
            .unwrap_or((IN_FLIGHT_BYTES / chunk.max(1) as usize).clamp(4, 64))
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

/// russh's algorithm preferences, with AES-GCM first on CPUs with AES and carry-less
/// multiply instructions: there it encrypts well over twice as fast as ChaCha20-Poly1305
/// (russh's first choice), on both ends, which decides big-file throughput. AES-128-GCM
/// comes before AES-256-GCM, as in OpenSSH's own list: 10 rounds instead of 14, on our end
/// and on the server's. Elsewhere ChaCha20 stays first.
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
        russh::cipher::AES_128_GCM,
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

/// Bytes per request where the server states its limits (`limits@openssh.com`; OpenSSH
/// allows 255 KiB): a quarter of the requests, answers and thread wake-ups of 64 KiB ones.
const LIMITED_CHUNK: u32 = 256 * 1024;

/// Bytes per request where the server does not state its limits: what every server serves.
const UNLIMITED_CHUNK: u32 = 64 * 1024;

/// Bytes of requests in flight per file by default (the window, whatever the streams).
pub const IN_FLIGHT_BYTES: usize = 4 * 1024 * 1024;

/// A request's round trip from which a server counts as far (a WAN, not a LAN). There one
/// connection holds an upload below what the two ends can move (sshd grants 2 MiB of
/// channel window per round trip), and a download's window may grow up to
/// [`FAR_WINDOW_GROWTH`] times [`IN_FLIGHT_BYTES`]. Nearer, one connection is faster:
/// measured on loopback, extra connections' ciphers and server processes only competed
/// for the same cores (1 GiB up 445 against 343 MiB/s, down 462 against 397 MiB/s with
/// four).
pub const FAR_ROUND_TRIP: Duration = Duration::from_millis(4);

/// Connections a big upload moves over when `Streams` is not set and the server is far.
/// A download keeps to one: its growing window carries it further alone than split over
/// four (at 20 ms, 1 GiB: 250 against 154 MiB/s before the window grew per burst, 285
/// after, but with the answers of four connections waiting in memory for the slowest:
/// 30 against 22 MiB).
pub const FAR_STREAMS: usize = 4;

/// The most bytes a download's window holds to a near server (`MaxInFlight` not set).
/// There the answers come about as fast as they are asked for, so what the window holds
/// is mostly answers waiting in memory for the reader: at 4 MiB a 1 GiB download peaked at
/// 17.2 MiB resident, at 2 MiB at 15.9 MiB, in the same time (2.2–2.3 s, loopback, medians
/// of five).
pub const NEAR_READ_WINDOW: usize = IN_FLIGHT_BYTES / 2;

/// How many times [`IN_FLIGHT_BYTES`] a download's window may grow to while the reader
/// waits on a far server's answers (`MaxInFlight` not set). At 20 ms, 1 GiB: twice (8 MiB)
/// took 249 MiB/s with a peak of 15.7 MiB resident, four times 244 MiB/s and 19.3 MiB (the
/// answers of a burst waiting in memory for the reader).
pub const FAR_WINDOW_GROWTH: usize = 2;

/// The most `Streams` a client may ask for: each is an SSH connection and a server process.
pub const MAX_STREAMS: usize = 16;

/// Files from this size on move over [`SftpConfig::streams`] connections; smaller ones do
/// not wait for a connection to open.
pub const STREAMS_FROM: u64 = 16 * 1024 * 1024;

/// How long this connection trusts a folder it saw or made without asking the server again
/// (a write into a folder removed meanwhile makes it again).
const KNOWN_FOR: Duration = Duration::from_secs(5);

/// One live SSH connection with its SFTP session.
struct Conn {
    /// The shortest request round trip seen on this connection, in microseconds
    /// (`u64::MAX`: none yet): what `Streams` not set is chosen by.
    round_trip: AtomicU64,
    sftp: RawSftpSession,
    /// Big writes, sent past russh-sftp on the same channel (see [`wire`]).
    wire: wire::Wire,
    ssh: russh::client::Handle<ClientHandler>,
    posix_rename: bool,
    read_len: u32,
    write_len: u32,
    /// Server folders seen to exist lately: `mkdir_all` of each file's folder costs no
    /// round trip when a transfer puts many files in one folder.
    dirs: StdMutex<HashMap<String, Instant>>,
    /// Attributes of files just written, from an fstat sent with the last write and the
    /// close (the server answers requests on one handle in order, so it saw every write):
    /// the transfer's check of the landed size takes them instead of another round trip.
    /// Each is used once.
    landed: StdMutex<HashMap<String, (FileAttributes, Instant)>>,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }

    /// Count a request answered `took` after it was sent as a round trip; the shortest is
    /// kept (a busy server or machine only ever makes one longer).
    fn answered(&self, took: Duration) {
        let micros = took.as_micros().min(u64::MAX as u128 - 1) as u64;
        self.round_trip.fetch_min(micros, Ordering::Relaxed);
    }

    /// Whether the server is far: its shortest round trip is at least [`FAR_ROUND_TRIP`].
    fn is_far(&self) -> bool {
        let micros = self.round_trip.load(Ordering::Relaxed);
        micros != u64::MAX && micros >= FAR_ROUND_TRIP.as_micros() as u64
    }

    /// Connections a big upload moves over: `Streams` when set; else one on a LAN and
    /// [`FAR_STREAMS`] to a far server.
    fn write_streams(&self, cfg: &SftpConfig) -> usize {
        cfg.streams
            .unwrap_or(if self.is_far() { FAR_STREAMS } else { 1 })
    }

    fn dir_known(&self, remote: &str) -> bool {
        let dirs = self.dirs.lock().expect("dirs");
        dirs.get(remote).is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }

    fn dir_seen(&self, remote: &str) {
        let mut dirs = self.dirs.lock().expect("dirs");
        if dirs.len() >= 4096 {
            dirs.retain(|_, at| at.elapsed() < KNOWN_FOR);
        }
        dirs.insert(remote.to_string(), Instant::now());
    }

    /// Forget what is known about `remote` and everything below it (a removal or rename).
    fn forget(&self, remote: &str) {
        let below = format!("{}/", remote.trim_end_matches('/'));
        self.dirs
            .lock()
            .expect("dirs")
            .retain(|p, _| p != remote && !p.starts_with(&below));
        self.landed.lock().expect("landed").remove(remote);
    }

    fn file_landed(&self, remote: String, attrs: FileAttributes) {
        let mut landed = self.landed.lock().expect("landed");
        if landed.len() >= 4096 {
            landed.retain(|_, (_, at)| at.elapsed() < KNOWN_FOR);
        }
        landed.insert(remote, (attrs, Instant::now()));
    }

    fn take_landed(&self, remote: &str) -> Option<FileAttributes> {
        let (attrs, at) = self.landed.lock().expect("landed").remove(remote)?;
        // Taken by the transfer's check right after the close; later, ask the server.
        (at.elapsed() < Duration::from_secs(1)).then_some(attrs)
    }
}

/// An SFTP server seen as a [`Vfs`].
pub struct SftpFs {
    cfg: Arc<SftpConfig>,
    conn: Mutex<Option<Arc<Conn>>>,
    /// The other connections of big files (`Streams` - 1 slots), opened when first needed,
    /// shared by every file of this backend and opened again after they broke.
    extra: Arc<[Mutex<Option<Arc<Conn>>>]>,
    /// The private key once decoded: an encrypted one costs its passphrase hashing (bcrypt,
    /// Argon2) once, not at each of the streams' logins or each re-connection.
    key: Arc<std::sync::OnceLock<Arc<russh::keys::PrivateKey>>>,
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
        let most = cfg.streams.unwrap_or(FAR_STREAMS);
        let extra = (1..most).map(|_| Mutex::new(None)).collect();
        Self {
            cfg: Arc::new(cfg),
            conn: Mutex::new(None),
            extra,
            key: Arc::default(),
        }
    }

    /// A backend on the same config and extra connections, for a task opening one of them.
    fn dialer(&self) -> SftpFs {
        SftpFs {
            cfg: self.cfg.clone(),
            conn: Mutex::new(None),
            extra: self.extra.clone(),
            key: self.key.clone(),
        }
    }

    /// The extra connection in `slot`, opened when there is none or it broke.
    async fn extra_conn(&self, slot: usize) -> VfsResult<Arc<Conn>> {
        let mut held = self.extra[slot].lock().await;
        if let Some(c) = held.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *held = None;
        let c = Arc::new(self.open().await?);
        *held = Some(c.clone());
        Ok(c)
    }

    /// Open `remote` with `flags` on the extra connections of `streams`, at once, in tasks of their own:
    /// each handle arrives on the channel when ready (the copy goes on meanwhile on the
    /// connections it has). A stream that cannot be opened is left out, logged.
    fn join_streams(
        &self,
        remote: &str,
        flags: OpenFlags,
        streams: usize,
    ) -> tokio::sync::mpsc::UnboundedReceiver<HandleGuard> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for slot in 0..self.extra.len().min(streams.saturating_sub(1)) {
            let (fs, tx, remote) = (self.dialer(), tx.clone(), remote.to_string());
            tokio::spawn(async move {
                let conn = match fs.extra_conn(slot).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("{}: stream {} not opened: {e}", fs.target(), slot + 2);
                        return;
                    }
                };
                match conn
                    .sftp
                    .open(&remote, flags, FileAttributes::empty())
                    .await
                {
                    // A reader or writer done meanwhile drops the guard, closing the handle.
                    Ok(h) => drop(tx.send(HandleGuard {
                        conn,
                        handle: Some(h.handle),
                    })),
                    Err(e) => tracing::debug!(
                        "{}{remote}: stream {} not opened: {e}",
                        fs.target(),
                        slot + 2
                    ),
                }
            });
        }
        rx
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
        // The TCP connection first, so that a refused port or an unknown host is not
        // reported as a broken SSH handshake.
        let connecting = async {
            let socket = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| self.conn_err(tcp_cause(&addr, &e)))?;
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!("set_nodelay: {e}");
            }
            Ok(russh::client::connect_stream(ssh_cfg, socket, handler).await)
        };
        let mut ssh = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(self.conn_err(format!("no answer within {}s", cfg.timeout_secs))),
            Ok(Err(tcp)) => return Err(tcp),
            Ok(Ok(Ok(h))) => h,
            Ok(Ok(Err(russh::Error::UnknownKey))) => {
                let seen = std::mem::take(&mut *seen.lock().expect("host key slot"));
                return Err(VfsError::HostKey {
                    host: addr,
                    fingerprint: seen.fingerprint,
                    mismatch: seen.mismatch,
                });
            }
            Ok(Ok(Err(e))) => {
                return Err(
                    self.conn_err(format!("{} during the SSH handshake", ssh_cause(&addr, &e)))
                );
            }
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
        let (wire, pipe) = wire::open(channel, timeout);
        let mut sftp = RawSftpSession::new_with_config(pipe, sftp_cfg);
        let version = sftp
            .init()
            .await
            .map_err(|e| self.conn_err(format!("SFTP init: {e}")))?;
        let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
        // The limits request is the connection's first round trip that starts no process
        // on the server (the init waited for sftp-server's start): it is timed.
        let asked = Instant::now();
        let limits = if version.extensions.contains_key("limits@openssh.com") {
            sftp.limits().await.ok()
        } else {
            None
        };
        let limits_took = limits.is_some().then(|| asked.elapsed());
        let chunk = cfg.chunk_size.unwrap_or(if limits.is_some() {
            LIMITED_CHUNK
        } else {
            UNLIMITED_CHUNK
        });
        let (mut read_len, mut write_len) = (chunk, chunk);
        if let Some(limits) = limits {
            if limits.max_read_len > 0 {
                read_len = read_len.min(limits.max_read_len.min(u32::MAX as u64) as u32);
            }
            if limits.max_write_len > 0 {
                write_len = write_len.min(limits.max_write_len.min(u32::MAX as u64) as u32);
            }
            sftp.set_limits(limits.into());
        }
        let conn = Conn {
            round_trip: AtomicU64::new(u64::MAX),
            sftp,
            wire,
            ssh,
            posix_rename,
            read_len,
            write_len,
            dirs: StdMutex::new(HashMap::new()),
            landed: StdMutex::new(HashMap::new()),
        };
        if let Some(took) = limits_took {
            conn.answered(took);
        }
        Ok(conn)
    }

    async fn authenticate(&self, ssh: &mut russh::client::Handle<ClientHandler>) -> VfsResult<()> {
        let cfg = &self.cfg;
        let mut tried = Vec::new();
        if let Some(text) = &cfg.private_key {
            let decoded = match self.key.get() {
                Some(key) => Ok(key.clone()),
                None => decode_private_key(
                    text.expose(),
                    cfg.key_passphrase.as_ref().map(Secret::expose),
                )
                .map(|key| self.key.get_or_init(|| Arc::new(key)).clone()),
            };
            let key = decoded.map_err(|e| {
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
            })?;
            let hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
            let key = PrivateKeyWithHashAlg::new(key, hash);
            let result = ssh
                .authenticate_publickey(&cfg.user, key)
                .await
                .map_err(|e| {
                    let cause = ssh_cause(&cfg.addr(), &e);
                    self.conn_err(format!("{cause} during login (trying the private key)"))
                })?;
            if result.success() {
                return Ok(());
            }
            tried.push("the private key");
        }
        if let Some(pass) = &cfg.password {
            let result = ssh
                .authenticate_password(&cfg.user, pass.expose())
                .await
                .map_err(|e| {
                    let cause = ssh_cause(&cfg.addr(), &e);
                    self.conn_err(format!("{cause} during login (trying the password)"))
                })?;
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
        // A server that drops the connection mid-login has not refused anything: say so,
        // as a connection error the transfer code retries.
        if ssh.is_closed() {
            return Err(self.conn_err(format!(
                "connection closed by {} during login (after trying {})",
                cfg.addr(),
                tried.join(" and ")
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

/// Why no TCP connection to `addr` could be opened, in words: "connection refused by
/// 127.0.0.1:22", "cannot reach sftp.example.com:22: failed to lookup address information".
fn tcp_cause(addr: &str, e: &std::io::Error) -> String {
    io_cause(addr, e).unwrap_or_else(|| format!("cannot reach {addr}: {e}"))
}

/// What an I/O error on a connection to `addr` says, in words, for the kinds that say
/// something on their own.
fn io_cause(addr: &str, e: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    Some(match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            format!("connection reset by {addr}")
        }
        ErrorKind::UnexpectedEof => format!("connection closed by {addr}"),
        ErrorKind::ConnectionRefused => format!("connection refused by {addr}"),
        ErrorKind::TimedOut => format!("no answer from {addr} (timed out)"),
        _ => return None,
    })
}

/// What broke an SSH connection to `addr`, in words: "connection reset by 127.0.0.1:22".
fn ssh_cause(addr: &str, e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => {
            io_cause(addr, io).unwrap_or_else(|| format!("connection to {addr} broke: {io}"))
        }
        russh::Error::Disconnect
        | russh::Error::HUP
        | russh::Error::RecvError
        | russh::Error::SendError => {
            format!("connection closed by {addr}")
        }
        russh::Error::ConnectionTimeout
        | russh::Error::KeepaliveTimeout
        | russh::Error::InactivityTimeout
        | russh::Error::Elapsed(_) => format!("no answer from {addr} (timed out)"),
        other => format!("{addr}: {other}"),
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
        e @ (SftpError::IO(_) | SftpError::UnexpectedBehavior(_)) => VfsError::Connection {
            target: target.into(),
            message: format!("{path}: {}", stream::plain_message(&e)),
        },
        other => VfsError::Other(format!("{target}{path}: {other}")),
    }
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
        let remote = self.remote(path);
        if let Some(attrs) = conn.take_landed(&remote) {
            return Ok(entry(path, &attrs));
        }
        match conn.sftp.stat(remote).await {
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
        // The size comes from a stat sent beside the open, not an fstat after it: one round
        // trip per file instead of two, which is most of a small file's time.
        let sent = Instant::now();
        let (opened, stat) = tokio::join!(
            conn.sftp
                .open(&remote, OpenFlags::READ, FileAttributes::empty()),
            conn.sftp.stat(&remote)
        );
        if opened.is_ok() {
            conn.answered(sent.elapsed());
        }
        let handle = match opened {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, path, e).await),
        };
        let guard = HandleGuard {
            conn: conn.clone(),
            handle: Some(handle.clone()),
        };
        let size = match stat {
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
        let chunk = conn.read_len.max(1);
        // A big file's requests also take turns on the extra connections, as they open.
        // Not set, one: see [`FAR_STREAMS`].
        let streams = self.cfg.streams.unwrap_or(1);
        let depth = self.cfg.depth(chunk);
        // Unless `MaxInFlight` fixes it, the window follows the reader (see [`ReadWindow`]):
        // to a near server from a quarter of the usual to half of it (see
        // [`NEAR_READ_WINDOW`]), to a far one from the usual to [`FAR_WINDOW_GROWTH`]
        // times it.
        let (least, most) = match self.cfg.max_in_flight {
            Some(_) => (depth, depth),
            None if conn.is_far() => (depth, depth * FAR_WINDOW_GROWTH),
            None => (
                (depth / 4).max(2),
                (depth * NEAR_READ_WINDOW / IN_FLIGHT_BYTES).max(2),
            ),
        };
        let joining = (streams > 1
            && end.is_some_and(|e| e.saturating_sub(offset) >= STREAMS_FROM))
        .then(|| self.join_streams(&remote, OpenFlags::READ, streams));
        let state = ReadState {
            guard,
            extra: Vec::new(),
            joining,
            turn: 0,
            label: self.target(),
            path: path.to_string(),
            next: offset,
            end,
            chunk,
            window: ReadWindow::new(least, most),
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
        conn.forget(&remote);
        let (flags, offset) = match mode {
            WriteMode::Create => (
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0,
            ),
            WriteMode::ResumeAt(n) => (OpenFlags::WRITE, n),
        };
        let sent = Instant::now();
        let mut opened = conn
            .sftp
            .open(&remote, flags, FileAttributes::empty())
            .await;
        if opened.is_ok() {
            conn.answered(sent.elapsed());
        }
        // The folder was taken as existing from what this connection saw lately, and is
        // gone: make it again, as the check that was skipped would have led to.
        let folder = crate::parent(&normalize(path));
        if let Err(SftpError::Status(s)) = &opened
            && s.status_code == StatusCode::NoSuchFile
            && conn.dir_known(&self.remote(&folder))
        {
            conn.forget(&self.remote(&folder));
            self.mkdir_all(&folder).await?;
            opened = conn
                .sftp
                .open(&remote, flags, FileAttributes::empty())
                .await;
        }
        let handle = match opened {
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
        let chunk = conn.write_len.max(1);
        // The size is not known here: the other streams are asked for once this much has
        // been written, so a small file never waits for them. The round trip only gets
        // shorter, so a connection near now never asks for them.
        let dialer = (conn.write_streams(&self.cfg) > 1).then(|| self.dialer());
        Ok(Box::pin(SftpWriter {
            conn,
            handle: Some(handle),
            extra: Vec::new(),
            joining: None,
            dialer,
            turn: 0,
            sent: 0,
            remote,
            label: self.target(),
            path: path.to_string(),
            offset,
            buf: None,
            chunk: chunk as usize,
            depth: self.cfg.depth(chunk),
            inflight: FuturesUnordered::new(),
            error: None,
            closing: None,
        }))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let clean = normalize(path);
        if conn.dir_known(&self.remote(&clean)) {
            return Ok(());
        }
        if let Ok(a) = conn.sftp.stat(self.remote(&clean)).await {
            return if a.attrs.is_dir() {
                conn.dir_seen(&self.remote(&clean));
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
        conn.dir_seen(&self.remote(&clean));
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let (rfrom, rto) = (self.remote(from), self.remote(to));
        conn.forget(&rfrom);
        conn.forget(&rto);
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
        conn.forget(&self.remote(path));
        match conn.sftp.remove(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        conn.forget(&self.remote(path));
        match conn.sftp.rmdir(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let conn = self.conn().await?;
        conn.forget(&self.remote(path));
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
        let mut conns = Vec::new();
        conns.extend(self.conn.lock().await.take());
        for slot in self.extra.iter() {
            conns.extend(slot.lock().await.take());
        }
        for c in conns {
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
        let fast_aes = preferred.cipher[0] == russh::cipher::AES_128_GCM;
        let first = preferred.cipher[0];
        if fast_aes {
            assert_eq!(first, russh::cipher::AES_128_GCM);
            assert_eq!(preferred.cipher[1], russh::cipher::AES_256_GCM);
        } else {
            assert_eq!(first, russh::Preferred::DEFAULT.cipher[0]);
        }
        assert!(
            preferred.cipher.contains(&russh::cipher::CHACHA20_POLY1305),
            "servers without AES-GCM still get ChaCha20"
        );
    }
}
