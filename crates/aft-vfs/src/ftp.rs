//! FTP and FTPS (explicit `AUTH TLS` and implicit TLS) on suppaftp + rustls.
//!
//! Fields [AFT]: `Host` (`host[:port]`, port 21 or 990 for implicit TLS), `User`, `Pass`,
//! `TLSMode` = `TLS_MODE_NONE|TLS_MODE_EXPLICIT|TLS_MODE_IMPLICIT`, `TLSInsecure`;
//! [ours] `PassFromSecret`, `TLSCAFile` (a PEM file of extra CAs to trust besides the
//! webpki roots), `MaxConnections` (control connections at once, default 8).
//!
//! Each operation takes a logged-in session from a small pool (or opens one), so tasks
//! sharing one handle never interleave commands on a control connection. Readers and writers
//! keep their session until the transfer's completion reply has been read, then give it back;
//! a transfer that is abandoned half way closes its session instead. Passive mode only.
//! Listings use `MLSD` where `FEAT` announces `MLST`, else `LIST` parsed as Unix or DOS lines.
//!
//! Stalls: `Timeout` (default 30 s) bounds the login, each command exchange, and the silence
//! of a data connection (a read or write that moves nothing for that long); either fails
//! with a retryable "no data from HOST:PORT for N s", and the session it was on is closed.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use aft_secret::Secret;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, stream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use suppaftp::list::{File as ListedFile, ListParser};
use suppaftp::tokio::{ImplAsyncFtpStream, TransferStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadBuf,
};

mod flushing_tls;

use flushing_tls::{FlushingTlsConnector, FlushingTlsStream};

use crate::config::Fields;
use crate::registry::{BackendInfo, DefaultValue, FieldInfo, TypeInfo};
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, normalize,
};

/// Longest listing line taken, its end included: a server that sends an endless line fails
/// the listing instead of filling memory.
pub const MAX_LISTING_LINE: usize = 64 * 1024;

/// Idle logged-in sessions kept for reuse.
const MAX_IDLE_SESSIONS: usize = 4;

/// Control connections open at once when `MaxConnections` is not set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;

/// How the control connection is protected (`TLSMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain FTP (`TLS_MODE_NONE`).
    None,
    /// `AUTH TLS` after connecting, data connections protected too (`TLS_MODE_EXPLICIT`).
    Explicit,
    /// TLS from the first byte, port 990 style (`TLS_MODE_IMPLICIT`).
    Implicit,
}

impl TlsMode {
    /// Parse the `TLSMode` field; empty means plain FTP.
    pub fn parse(value: Option<&str>) -> VfsResult<Self> {
        match value.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
            None | Some("") | Some("TLS_MODE_NONE") | Some("NONE") | Some("0") => Ok(TlsMode::None),
            Some("TLS_MODE_EXPLICIT") | Some("EXPLICIT") | Some("1") => Ok(TlsMode::Explicit),
            Some("TLS_MODE_IMPLICIT") | Some("IMPLICIT") | Some("2") => Ok(TlsMode::Implicit),
            Some(other) => Err(VfsError::Other(format!(
                "FTP: TLSMode {other} is not one of TLS_MODE_NONE, TLS_MODE_EXPLICIT, TLS_MODE_IMPLICIT"
            ))),
        }
    }
}

/// The FTP/FTPS backend in the registry: `ftps` is `ftp` with explicit TLS by default.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[
        TypeInfo {
            name: "ftp",
            aliases: &[],
            label: "FTP",
            client: "FtpClient",
            defaults: &[],
        },
        TypeInfo {
            name: "ftps",
            aliases: &[],
            label: "FTPS",
            client: "FtpsClient",
            defaults: &[("TLSMode", DefaultValue::Number(1))],
        },
    ],
    fields: &[
        FieldInfo::address("Host", "Host")
            .required()
            .placeholder("ftp.example.com:21"),
        FieldInfo::number("Port", "Port")
            .placeholder("21")
            .help("Overrides the port in Host.")
            .advanced(),
        FieldInfo::text("User", "User").help("anonymous when empty."),
        FieldInfo::credential("Pass", "Password"),
        FieldInfo::secret("PassFromSecret", "Password secret", "Pass"),
        FieldInfo::choice("TLSMode", "TLS mode", TLS_MODES).with_default(DefaultValue::Number(0)),
        FieldInfo::file("TLSCAFile", "CA certificate file").placeholder("/etc/ssl/my-ca.pem"),
        FieldInfo::bool("TLSInsecure", "Skip certificate checks (testing only)"),
        FieldInfo::number("MaxConnections", "Connections at once")
            .placeholder("8")
            .advanced(),
        crate::registry::TIMEOUT_FIELD,
    ],
    one_of: &[],
    open: |f| Ok(Arc::new(from_fields(f)?)),
};

/// The `TLSMode` values, in the order of their numbers (`TLS_MODE_EXPLICIT` is 1).
pub const TLS_MODES: &[&str] = &["TLS_MODE_NONE", "TLS_MODE_EXPLICIT", "TLS_MODE_IMPLICIT"];

/// Everything needed to reach and log in to one FTP server.
#[derive(Clone, Debug)]
pub struct FtpConfig {
    /// Server host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Password (never printed).
    pub pass: Secret,
    /// Control-connection protection.
    pub tls_mode: TlsMode,
    /// Accept any server certificate (only when the user asked for it).
    pub tls_insecure: bool,
    /// Extra CA certificates (PEM) to trust for this server.
    pub tls_ca_file: Option<String>,
    /// Most control connections open at once (`MaxConnections` [ours], default 8).
    pub max_connections: usize,
    /// `Timeout`: how long login, a command's answer or a silent data connection may take.
    pub timeout: Duration,
}

impl FtpConfig {
    /// Read the connection fields of an FTP/FTPS client or VFS Library entry (`TLSMode`
    /// defaults to none; [`crate::open_backend`] fills in `ftps`'s explicit TLS).
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let tls_mode = TlsMode::parse(fields.str("TLSMode").as_deref())?;
        let host_field = fields.required("Host")?;
        let default_port = if tls_mode == TlsMode::Implicit {
            990
        } else {
            21
        };
        let (host, port) = split_host_port(&host_field, default_port)?;
        let port = match fields.str("Port") {
            Some(p) => p
                .parse()
                .map_err(|_| VfsError::Other(format!("FTP: Port {p} is not a TCP port number")))?,
            None => port,
        };
        Ok(FtpConfig {
            host,
            port,
            user: fields
                .str("User")
                .unwrap_or_else(|| "anonymous".to_string()),
            pass: fields.secret("Pass", "PassFromSecret")?.unwrap_or_default(),
            tls_mode,
            tls_insecure: fields.bool("TLSInsecure"),
            tls_ca_file: fields.str("TLSCAFile"),
            max_connections: fields
                .u64("MaxConnections")?
                .map_or(DEFAULT_MAX_CONNECTIONS, |n| n.clamp(1, 64) as usize),
            timeout: fields.timeout()?,
        })
    }
}

/// Split `host[:port]` (IPv6 as `[::1]:21`).
fn split_host_port(value: &str, default_port: u16) -> VfsResult<(String, u16)> {
    let bad = || VfsError::Other(format!("FTP: Host {value} is not host or host:port"));
    let value = value
        .trim()
        .trim_start_matches("ftp://")
        .trim_start_matches("ftps://")
        .trim_end_matches('/');
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default_port,
        };
        return Ok((host.to_string(), port));
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_string(), port.parse().map_err(|_| bad())?))
        }
        _ => Ok((value.to_string(), default_port)),
    }
}

/// What the server announced in `FEAT`, learnt on the first login.
#[derive(Debug, Clone, Default)]
struct ServerFeatures {
    mlst: bool,
    mfmt: bool,
}

impl ServerFeatures {
    fn from_feat(feat: &HashMap<String, Option<String>>) -> Self {
        let has = |name: &str| feat.keys().any(|k| k.eq_ignore_ascii_case(name));
        ServerFeatures {
            mlst: has("MLST"),
            mfmt: has("MFMT"),
        }
    }
}

/// A suppaftp client whose TLS streams never strand a command in a buffer
/// (see [`flushing_tls`]).
type FtpStream = ImplAsyncFtpStream<FlushingTlsStream>;

/// One logged-in control connection, holding one of the backend's connection slots.
struct Session {
    ftp: FtpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for Session {
    type Target = FtpStream;
    fn deref(&self) -> &FtpStream {
        &self.ftp
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut FtpStream {
        &mut self.ftp
    }
}

/// Shared state of an [`FtpVfs`]: settings, what the server can do, idle sessions.
struct Inner {
    cfg: FtpConfig,
    tls: Option<Arc<ClientConfig>>,
    label: String,
    features: OnceLock<ServerFeatures>,
    /// The login directory (`PWD` after login): VFS paths are relative to it.
    home: OnceLock<String>,
    idle: Mutex<Vec<Session>>,
    /// Caps the control connections open at once (busy and idle): servers limit them per
    /// client, and refuse or reset the ones over the limit.
    slots: Arc<tokio::sync::Semaphore>,
}

/// An FTP or FTPS server as a [`Vfs`].
#[derive(Clone)]
pub struct FtpVfs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FtpVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpVfs")
            .field("label", &self.inner.label)
            .finish()
    }
}

/// Build an FTP/FTPS backend from its connection fields (connects on first use).
pub fn from_fields(fields: &Fields<'_>) -> VfsResult<FtpVfs> {
    FtpVfs::new(FtpConfig::from_fields(fields)?)
}

impl FtpVfs {
    /// A backend for `cfg`; nothing is sent until the first operation.
    pub fn new(cfg: FtpConfig) -> VfsResult<Self> {
        let scheme = match cfg.tls_mode {
            TlsMode::None => "ftp",
            TlsMode::Explicit => "ftpes",
            TlsMode::Implicit => "ftps",
        };
        let label = format!("{scheme}://{}@{}:{}", cfg.user, cfg.host, cfg.port);
        let tls = match cfg.tls_mode {
            TlsMode::None => None,
            _ => Some(tls_config(&cfg, &label)?),
        };
        let cfg_max = cfg.max_connections.max(1);
        Ok(FtpVfs {
            inner: Arc::new(Inner {
                cfg,
                tls,
                label,
                features: OnceLock::new(),
                home: OnceLock::new(),
                idle: Mutex::new(Vec::new()),
                slots: Arc::new(tokio::sync::Semaphore::new(cfg_max)),
            }),
        })
    }

    /// Open a session now, so settings errors surface before the first transfer and
    /// [`Vfs::capabilities`] reflects what the server announced.
    pub async fn connect(cfg: FtpConfig) -> VfsResult<Self> {
        let vfs = FtpVfs::new(cfg)?;
        let session = vfs.session().await?;
        vfs.give_back(session);
        Ok(vfs)
    }

    fn label(&self) -> &str {
        &self.inner.label
    }

    fn features(&self) -> ServerFeatures {
        self.inner.features.get().cloned().unwrap_or_default()
    }

    /// The server-side path for a VFS path.
    fn remote(&self, path: &str) -> String {
        let path = normalize(path);
        match self.inner.home.get().map(String::as_str) {
            None | Some("/") | Some("") => path,
            Some(home) if path == "/" => home.to_string(),
            Some(home) => format!("{}{path}", home.trim_end_matches('/')),
        }
    }

    /// An idle session or a new one.
    async fn session(&self) -> VfsResult<Session> {
        let idle = self.inner.idle.lock().expect("ftp pool lock").pop();
        if let Some(mut s) = idle {
            // A session idle for long may have been dropped by the server.
            if self.alive(&mut s).await {
                return Ok(s);
            }
        }
        let slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the FTP connection semaphore is never closed");
        // Another task may have returned a session while this one waited for a slot.
        let idle = self.inner.idle.lock().expect("ftp pool lock").pop();
        if let Some(mut s) = idle {
            drop(slot);
            if self.alive(&mut s).await {
                return Ok(s);
            }
            return Box::pin(self.session()).await;
        }
        let limit = self.inner.cfg.timeout;
        tokio::time::timeout(limit, self.open_session(slot))
            .await
            .map_err(|_| VfsError::Connection {
                target: self.label().to_string(),
                message: format!(
                    "no login within {} s (Timeout); check Host, the port and the TLSMode",
                    limit.as_secs()
                ),
            })?
    }

    /// Whether an idle session still answers (`NOOP`, within `Timeout`).
    async fn alive(&self, s: &mut Session) -> bool {
        matches!(
            crate::stall::within(self.inner.cfg.timeout, &self.peer(), s.noop()).await,
            Ok(Ok(()))
        )
    }

    /// `host:port` of the server, named when it stops answering.
    fn peer(&self) -> String {
        let cfg = &self.inner.cfg;
        if cfg.host.contains(':') {
            format!("[{}]:{}", cfg.host, cfg.port)
        } else {
            format!("{}:{}", cfg.host, cfg.port)
        }
    }

    /// Run `fut` (commands on a control connection) for at most `Timeout`. The outer error
    /// is a stall: the session's state is unknown then, so callers close it rather than
    /// give it back.
    async fn timed<T>(
        &self,
        fut: impl std::future::Future<Output = VfsResult<T>>,
    ) -> Result<VfsResult<T>, VfsError> {
        crate::stall::within(self.inner.cfg.timeout, &self.peer(), fut)
            .await
            .map_err(|e| VfsError::Connection {
                target: self.label().to_string(),
                message: e.to_string(),
            })
    }

    /// Give `s` back after a command exchange unless it stalled (then it is closed).
    fn settle<T>(&self, s: Session, result: Result<VfsResult<T>, VfsError>) -> VfsResult<T> {
        match result {
            Ok(r) => {
                self.give_back(s);
                r
            }
            Err(stall) => Err(stall),
        }
    }

    /// Watch a data connection's reader or writer for silence.
    fn watched<T>(&self, io: T) -> crate::stall::Stalled<T> {
        crate::stall::Stalled::new(io, self.inner.cfg.timeout, self.peer())
    }

    async fn open_session(&self, slot: tokio::sync::OwnedSemaphorePermit) -> VfsResult<Session> {
        let cfg = &self.inner.cfg;
        let addr = (cfg.host.as_str(), cfg.port);
        let conn_err = |e: FtpError| self.connect_error(e);
        // Each control connection gets its own TLS session cache: its data connections must
        // resume *its* TLS session (vsftpd's require_ssl_reuse), not another connection's.
        let own_tls = self.inner.tls.as_ref().map(|tls| {
            let mut config = (**tls).clone();
            config.resumption = rustls::client::Resumption::in_memory_sessions(16);
            Arc::new(config)
        });
        let mut s = match (cfg.tls_mode, own_tls) {
            (TlsMode::Implicit, Some(tls)) => {
                let connector = FlushingTlsConnector::new(tokio_rustls::TlsConnector::from(tls));
                let mut s = FtpStream::connect_secure_implicit(addr, connector, &cfg.host)
                    .await
                    .map_err(conn_err)?;
                // Implicit TLS still negotiates data protection (RFC 4217): private data.
                for cmd in ["PBSZ 0", "PROT P"] {
                    s.custom_command(cmd, &[Status::CommandOk])
                        .await
                        .map_err(conn_err)?;
                }
                s
            }
            (TlsMode::Explicit, Some(tls)) => {
                let connector = FlushingTlsConnector::new(tokio_rustls::TlsConnector::from(tls));
                FtpStream::connect(addr)
                    .await
                    .map_err(conn_err)?
                    .into_secure(connector, &cfg.host)
                    .await
                    .map_err(conn_err)?
            }
            _ => FtpStream::connect(addr).await.map_err(conn_err)?,
        };
        // The server's passive reply may name an address we cannot reach (NAT): use the
        // control connection's peer instead.
        s.set_passive_nat_workaround(true);
        s.login(cfg.user.as_str(), cfg.pass.expose())
            .await
            .map_err(|e| match e {
                // 421: the server is busy or closing (too many connections), not a refusal
                // of the credentials; worth another try.
                FtpError::UnexpectedResponse(r) if r.status != Status::NotAvailable => {
                    VfsError::Auth(format!(
                        "{}: login refused: {}",
                        self.label(),
                        reply_text(&r)
                    ))
                }
                other => self.connect_error(other),
            })?;
        s.transfer_type(FileType::Binary)
            .await
            .map_err(|e| self.cmd_error("TYPE I", "/", e))?;
        if self.inner.features.get().is_none() {
            let feat = s.feat().await.unwrap_or_default();
            let _ = self.inner.features.set(ServerFeatures::from_feat(&feat));
        }
        if self.inner.home.get().is_none() {
            let home = s.pwd().await.map_err(|e| self.cmd_error("PWD", "/", e))?;
            let _ = self.inner.home.set(home);
        }
        Ok(Session {
            ftp: s,
            _slot: slot,
        })
    }

    /// Return a healthy session to the pool.
    fn give_back(&self, session: Session) {
        let mut idle = self.inner.idle.lock().expect("ftp pool lock");
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
    }

    fn connect_error(&self, e: FtpError) -> VfsError {
        match e {
            // suppaftp reports a handshake cut by the network as a TLS error too: that is
            // a lost connection (retried), not a certificate to fix.
            FtpError::SecureError(msg) if !is_certificate_problem(&msg) => VfsError::Connection {
                target: self.label().to_string(),
                message: format!("the connection was lost during the TLS handshake: {msg}"),
            },
            FtpError::SecureError(msg) => VfsError::Other(format!(
                "{}: TLS failed: {msg}; if the server uses a private CA set TLSCAFile to its PEM file, or TLSInsecure = true to skip verification",
                self.label()
            )),
            FtpError::UnexpectedResponse(r) => VfsError::Connection {
                target: self.label().to_string(),
                message: format!("server refused the connection: {}", reply_text(&r)),
            },
            other => VfsError::Connection {
                target: self.label().to_string(),
                message: other.to_string(),
            },
        }
    }

    /// Map a failed command on `path`; a 550 reply means "no such file" for the callers that
    /// pass `not_found_on_550`.
    fn cmd_error(&self, cmd: &str, path: &str, e: FtpError) -> VfsError {
        let at = format!("{}{}", self.label(), normalize(path));
        match e {
            FtpError::UnexpectedResponse(r) => {
                let text = reply_text(&r);
                match r.status {
                    Status::NotLoggedIn => VfsError::Auth(format!("{at}: {cmd}: {text}")),
                    Status::BadFilename => {
                        VfsError::PermissionDenied(format!("{at}: {cmd} refused: {text}"))
                    }
                    Status::NotImplemented | Status::CommandNotImplemented | Status::BadCommand => {
                        VfsError::Other(format!(
                            "{at}: the server does not implement {cmd}: {text}"
                        ))
                    }
                    status if status == Status::NotAvailable || is_data_connection_lost(status) => {
                        VfsError::Connection {
                            target: self.label().to_string(),
                            message: format!("{cmd} {at}: {text}"),
                        }
                    }
                    _ => VfsError::Other(format!("{at}: {cmd} failed: {text}")),
                }
            }
            FtpError::ConnectionError(io) => VfsError::Connection {
                target: self.label().to_string(),
                message: format!("{cmd} {at}: {io}"),
            },
            other => VfsError::Other(format!("{at}: {cmd} failed: {other}")),
        }
    }

    /// Whether a command failed with a 550-style "not there / not allowed" reply.
    fn is_unavailable(e: &FtpError) -> bool {
        matches!(e, FtpError::UnexpectedResponse(r)
            if matches!(r.status, Status::FileUnavailable | Status::RequestFileActionIgnored | Status::RequestedActionNotTaken))
    }

    /// Map a 550 to `NotFound` when the path really is absent, else a precise error.
    async fn refine_unavailable(
        &self,
        s: &mut Session,
        cmd: &str,
        path: &str,
        e: FtpError,
    ) -> VfsError {
        if Self::is_unavailable(&e)
            && matches!(self.stat_on(s, path).await, Err(VfsError::NotFound(_)))
        {
            return VfsError::NotFound(format!("{}{}", self.label(), normalize(path)));
        }
        self.cmd_error(cmd, path, e)
    }

    /// `stat` on a given session.
    async fn stat_on(&self, s: &mut Session, path: &str) -> VfsResult<Entry> {
        let path = normalize(path);
        if path == "/" {
            return Ok(dir_entry("/", None));
        }
        let remote = self.remote(&path);
        if self.features().mlst {
            return match s.mlst(Some(&remote)).await {
                Ok(line) => {
                    let file = ListParser::parse_mlst(&line).map_err(|e| {
                        VfsError::Other(format!(
                            "{}{path}: cannot parse the MLST reply {line:?}: {e}",
                            self.label()
                        ))
                    })?;
                    Ok(entry_from_listed(&path, &file, true))
                }
                Err(e) if Self::is_unavailable(&e) => {
                    Err(VfsError::NotFound(format!("{}{path}", self.label())))
                }
                Err(e) => Err(self.cmd_error("MLST", &path, e)),
            };
        }
        match s.size(&remote).await {
            Ok(size) => {
                let mtime = s
                    .mdtm(&remote)
                    .await
                    .ok()
                    .map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc));
                return Ok(Entry {
                    name: file_name(&path),
                    path,
                    size: size as u64,
                    mtime,
                    is_dir: false,
                    etag: None,
                });
            }
            Err(e) if Self::is_unavailable(&e) => {}
            Err(e) => return Err(self.cmd_error("SIZE", &path, e)),
        }
        match s.cwd(&remote).await {
            Ok(()) => Ok(dir_entry(&path, None)),
            Err(e) if Self::is_unavailable(&e) => {
                Err(VfsError::NotFound(format!("{}{path}", self.label())))
            }
            Err(e) => Err(self.cmd_error("CWD", &path, e)),
        }
    }

    /// Open the data connection of a listing of `dir` (the session's cwd is set to it).
    async fn open_listing(
        &self,
        s: &mut Session,
        dir: &str,
    ) -> VfsResult<(TransferStream<FlushingTlsStream>, bool)> {
        let remote = self.remote(dir);
        // CWD first: it fails for a missing directory (LIST alone often returns nothing), and
        // LIST without an argument avoids servers treating the name as options or a glob.
        if let Err(e) = s.cwd(&remote).await {
            return Err(if Self::is_unavailable(&e) {
                VfsError::NotFound(format!("{}{}", self.label(), normalize(dir)))
            } else {
                self.cmd_error("CWD", dir, e)
            });
        }
        let expected = [Status::AboutToSend, Status::AlreadyOpen];
        if self.features().mlst {
            let (_, t) = s
                .custom_data_command("MLSD", &expected)
                .await
                .map_err(|e| self.cmd_error("MLSD", dir, e))?;
            return Ok((t, true));
        }
        // `-a` shows dot files on servers that hide them (vsftpd); not all accept it.
        match s.custom_data_command("LIST -a", &expected).await {
            Ok((_, t)) => Ok((t, false)),
            Err(_) => {
                let (_, t) = s
                    .custom_data_command("LIST", &expected)
                    .await
                    .map_err(|e| self.cmd_error("LIST", dir, e))?;
                Ok((t, false))
            }
        }
    }
}

/// Read one listing line, its `\n` included, into `raw` (cleared first); 0 at the end of
/// the listing. A line longer than [`MAX_LISTING_LINE`] is an `InvalidData` error, read no
/// further than that.
async fn read_listing_line<R: AsyncBufRead + Unpin>(
    lines: &mut R,
    raw: &mut Vec<u8>,
) -> io::Result<usize> {
    raw.clear();
    let n = (&mut *lines)
        .take(MAX_LISTING_LINE as u64 + 1)
        .read_until(b'\n', raw)
        .await?;
    if n > MAX_LISTING_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the server sent a listing line longer than {} KiB",
                MAX_LISTING_LINE / 1024
            ),
        ));
    }
    Ok(n)
}

/// The server's reply as it sent it (the body starts with the status code).
fn reply_text(r: &suppaftp::types::Response) -> String {
    let body = String::from_utf8_lossy(&r.body).trim().to_string();
    if body.is_empty() {
        r.status.code().to_string()
    } else {
        body
    }
}

fn dir_entry(path: &str, mtime: Option<DateTime<Utc>>) -> Entry {
    let path = normalize(path);
    Entry {
        name: file_name(&path),
        path,
        size: 0,
        mtime,
        is_dir: true,
        etag: None,
    }
}

fn entry_from_listed(path: &str, file: &ListedFile, has_time: bool) -> Entry {
    let path = normalize(path);
    let is_dir = file.is_directory();
    let mtime = has_time
        .then(|| file.modified())
        .filter(|t| *t != SystemTime::UNIX_EPOCH)
        .map(DateTime::<Utc>::from);
    Entry {
        name: file_name(&path),
        path,
        size: if is_dir { 0 } else { file.size() as u64 },
        mtime,
        is_dir,
        etag: None,
    }
}

/// Parse one listing line into an entry of `dir`; `None` for `.`, `..` and unparsable lines
/// (`total 12` headers). Public for the parser property tests (tests/fuzz_parsers.rs).
pub fn parse_listing_line(dir: &str, line: &str, mlsd: bool) -> Option<Entry> {
    if mlsd {
        let facts = line.split(' ').next().unwrap_or("").to_ascii_lowercase();
        if facts.contains("type=cdir;") || facts.contains("type=pdir;") {
            return None;
        }
    }
    let file = if mlsd {
        ListParser::parse_mlsd(line).ok()?
    } else {
        ListParser::parse_posix(line)
            .or_else(|_| ListParser::parse_dos(line))
            .ok()?
    };
    let mut name = file.name().to_string();
    if !mlsd && file.is_symlink() {
        // `link -> target`: the entry is the link's own name.
        if let Some((n, _)) = name.split_once(" -> ") {
            name = n.to_string();
        }
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    Some(entry_from_listed(&crate::join(dir, &name), &file, true))
}

/// The TLS settings for `cfg`: webpki roots plus `TLSCAFile`, or no verification at all
/// when `TLSInsecure` is set.
fn tls_config(cfg: &FtpConfig, label: &str) -> VfsResult<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // TLS 1.2: FTPS servers that insist on data connections resuming the control
    // connection's TLS session (vsftpd's require_ssl_reuse, the default) get a session that
    // can be resumed again and again. TLS 1.3 tickets are single-use and arrive on the
    // control connection at the server's pace; with them, busy transfers failed mid-run.
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| VfsError::Other(format!("{label}: TLS setup failed: {e}")))?;
    let mut config = if cfg.tls_insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::tls::AcceptAnyCertificate::new(
                provider,
            )))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &cfg.tls_ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    VfsError::Other(format!("{label}: cannot read TLSCAFile {path}: {e}"))
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    VfsError::Other(format!("{label}: TLSCAFile {path} is not PEM: {e}"))
                })?;
            if certs.is_empty() {
                return Err(VfsError::Other(format!(
                    "{label}: TLSCAFile {path} holds no certificate"
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    VfsError::Other(format!("{label}: a certificate in {path} is unusable: {e}"))
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.resumption = rustls::client::Resumption::in_memory_sessions(16);
    Ok(Arc::new(config))
}

type Transfer = TransferStream<FlushingTlsStream>;

/// A download: the data connection plus the session it belongs to.
struct FtpReader {
    vfs: FtpVfs,
    path: String,
    /// The data connection, limited to the length asked for (unlimited: `u64::MAX`).
    transfer: Option<tokio::io::Take<Transfer>>,
    session: Option<Session>,
    /// Whether a length was given, so that reaching the limit is not the end of the file.
    limited: bool,
    finishing: Option<BoxFuture<'static, (Result<(), FtpError>, Session)>>,
}

impl AsyncRead for FtpReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(fut) = this.finishing.as_mut() {
            let (result, session) = ready!(fut.as_mut().poll(cx));
            this.finishing = None;
            return match result {
                Ok(()) => {
                    this.vfs.give_back(session);
                    Poll::Ready(Ok(()))
                }
                Err(e) => Poll::Ready(Err(io::Error::other(format!(
                    "{}{}: download did not complete: {e}",
                    this.vfs.label(),
                    this.path
                )))),
            };
        }
        let Some(transfer) = this.transfer.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        ready!(Pin::new(&mut *transfer).poll_read(cx, buf))?;
        if buf.filled().len() > before || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let transfer = this.transfer.take().expect("transfer present");
        let session = this.session.take().expect("session present");
        if this.limited && transfer.limit() == 0 {
            // Enough read: close the data connection and the session with it rather than
            // wait for the rest of the file.
            drop((transfer, session));
            return Poll::Ready(Ok(()));
        }
        // End of data: read the completion reply before reporting EOF, so a transfer the
        // server aborted is an error, not a short file.
        let transfer = transfer.into_inner();
        this.finishing = Some(
            async move {
                let result = transfer.finish().await;
                (result, session)
            }
            .boxed(),
        );
        // Poll the reply right away (it registers the waker).
        self.poll_read(cx, buf)
    }
}

/// An upload: writes go to the data connection; `shutdown()` closes it and checks the
/// server's completion reply, then returns the session to the pool.
struct FtpWriter {
    vfs: FtpVfs,
    path: String,
    transfer: Option<Transfer>,
    session: Option<Session>,
    finishing: Option<BoxFuture<'static, (Result<(), FtpError>, Session)>>,
    done: bool,
}

impl FtpWriter {
    fn closed_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("{}{}: upload already finished", self.vfs.label(), self.path),
        )
    }
}

impl AsyncWrite for FtpWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match this.transfer.as_mut() {
            Some(t) => Pin::new(t).poll_write(cx, data),
            None => Poll::Ready(Err(this.closed_error())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.transfer.as_mut() {
            Some(t) => Pin::new(t).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Ok(()));
        }
        if this.finishing.is_none() {
            let Some(transfer) = this.transfer.take() else {
                return Poll::Ready(Err(this.closed_error()));
            };
            let session = this.session.take().expect("session present");
            this.finishing = Some(
                async move {
                    let result = transfer.finish().await;
                    (result, session)
                }
                .boxed(),
            );
        }
        let fut = this.finishing.as_mut().expect("finishing set");
        let (result, session) = ready!(fut.as_mut().poll(cx));
        this.finishing = None;
        this.done = true;
        match result {
            Ok(()) => {
                this.vfs.give_back(session);
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                // 425/426: the data connection broke (the server says so); worth a retry
                // like any connection lost mid-file.
                let kind = match &e {
                    FtpError::ConnectionError(_) => io::ErrorKind::ConnectionReset,
                    FtpError::UnexpectedResponse(r) if is_data_connection_lost(r.status) => {
                        io::ErrorKind::ConnectionReset
                    }
                    _ => io::ErrorKind::Other,
                };
                Poll::Ready(Err(io::Error::new(
                    kind,
                    format!(
                        "{}{}: the server did not confirm the upload: {e}",
                        this.vfs.label(),
                        this.path
                    ),
                )))
            }
        }
    }
}

#[async_trait]
impl Vfs for FtpVfs {
    fn describe(&self) -> String {
        self.label().to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_write: false,
            resume_upload: true,
            ranged_read: true,
            // Known after the first login (FEAT); [`FtpVfs::connect`] logs in up front.
            set_mtime: self.features().mfmt,
            rename: true,
            real_directories: true,
            server_hash: None,
        }
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let mut s = self.session().await?;
        let result = self.timed(self.stat_on(&mut s, path)).await;
        self.settle(s, result)
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let dir = normalize(dir);
        let mut s = self.session().await?;
        // An error before the data connection opened leaves the session as it was.
        let (transfer, mlsd) = match self.timed(self.open_listing(&mut s, &dir)).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                self.give_back(s);
                return Err(e);
            }
            Err(stall) => return Err(stall),
        };
        struct State {
            lines: BufReader<Transfer>,
            session: Session,
            done: bool,
        }
        let state = State {
            lines: BufReader::new(transfer),
            session: s,
            done: false,
        };
        let this = self.clone();
        let entries = stream::try_unfold(state, move |mut st| {
            let this = this.clone();
            let dir = dir.clone();
            async move {
                if st.done {
                    return Ok(None);
                }
                let limit = this.inner.cfg.timeout;
                let mut raw = Vec::new();
                loop {
                    let read = read_listing_line(&mut st.lines, &mut raw);
                    let n = match crate::stall::within(limit, &this.peer(), read).await {
                        Ok(Ok(n)) => n,
                        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                            return Err(VfsError::Other(format!(
                                "{}{dir}: {e}; the listing was stopped",
                                this.label()
                            )));
                        }
                        Ok(Err(e)) | Err(e) => {
                            return Err(VfsError::Connection {
                                target: this.label().to_string(),
                                message: format!("listing {dir}: {e}"),
                            });
                        }
                    };
                    if n == 0 {
                        st.done = true;
                        let State { lines, session, .. } = st;
                        let finish = lines.into_inner().finish();
                        crate::stall::within(limit, &this.peer(), finish)
                            .await
                            .map_err(|e| VfsError::Connection {
                                target: this.label().to_string(),
                                message: format!("listing {dir}: {e}"),
                            })?
                            .map_err(|e| this.cmd_error("LIST", &dir, e))?;
                        this.give_back(session);
                        return Ok(None);
                    }
                    let line = String::from_utf8_lossy(&raw);
                    let line = line.trim_end_matches(['\r', '\n']);
                    if let Some(entry) = parse_listing_line(&dir, line, mlsd) {
                        return Ok(Some((entry, st)));
                    }
                }
            }
        });
        Ok(entries.boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let path = normalize(path);
        let mut s = self.session().await?;
        if len == Some(0) {
            let result = self.timed(self.stat_on(&mut s, &path)).await;
            self.settle(s, result)?;
            return Ok(Box::pin(tokio::io::empty()));
        }
        let remote = self.remote(&path);
        let opened = self
            .timed(async {
                if offset > 0 {
                    s.resume_transfer(offset as usize)
                        .await
                        .map_err(|e| self.cmd_error("REST", &path, e))?;
                }
                match s.retr_as_stream(&remote).await {
                    Ok(t) => Ok(t),
                    Err(e) => Err(self.refine_unavailable(&mut s, "RETR", &path, e).await),
                }
            })
            .await;
        let transfer = match opened {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                self.give_back(s);
                return Err(e);
            }
            Err(stall) => return Err(stall),
        };
        Ok(Box::pin(self.watched(FtpReader {
            vfs: self.clone(),
            path,
            transfer: Some(transfer.take(len.unwrap_or(u64::MAX))),
            session: Some(s),
            limited: len.is_some(),
            finishing: None,
        })))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let path = normalize(path);
        let mut s = self.session().await?;
        let remote = self.remote(&path);
        let opened = self
            .timed(async {
                let stor = |e| self.cmd_error("STOR", &path, e);
                match mode {
                    WriteMode::Create => s.put_with_stream(&remote).await.map_err(stor),
                    WriteMode::ResumeAt(offset) => {
                        let current = match self.stat_on(&mut s, &path).await {
                            Ok(e) => e.size,
                            Err(VfsError::NotFound(_)) if offset == 0 => 0,
                            Err(e) => return Err(e),
                        };
                        if current == offset {
                            // Exactly what is kept: append (supported far more widely than
                            // REST+STOR).
                            s.append_with_stream(&remote).await.map_err(stor)
                        } else if current > offset {
                            s.resume_transfer(offset as usize)
                                .await
                                .map_err(|e| self.cmd_error("REST", &path, e))?;
                            s.put_with_stream(&remote).await.map_err(stor)
                        } else {
                            Err(VfsError::Other(format!(
                                "{}{path}: cannot resume at byte {offset}: the file has only {current}",
                                self.label()
                            )))
                        }
                    }
                }
            })
            .await;
        let transfer = match opened {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                self.give_back(s);
                return Err(e);
            }
            Err(stall) => return Err(stall),
        };
        Ok(Box::pin(self.watched(FtpWriter {
            vfs: self.clone(),
            path,
            transfer: Some(transfer),
            session: Some(s),
            finishing: None,
            done: false,
        })))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        let mut s = self.session().await?;
        let result = async {
            if s.cwd(self.remote(&path)).await.is_ok() {
                return Ok(());
            }
            let mut current = String::new();
            for part in path
                .trim_start_matches('/')
                .split('/')
                .filter(|p| !p.is_empty())
            {
                current = format!("{current}/{part}");
                let remote = self.remote(&current);
                if s.cwd(&remote).await.is_ok() {
                    continue;
                }
                if let Err(e) = s.mkdir(&remote).await {
                    // Another task may have created it in between.
                    if s.cwd(&remote).await.is_err() {
                        return Err(self.cmd_error("MKD", &current, e));
                    }
                }
            }
            Ok(())
        };
        let result = self.timed(result).await;
        self.settle(s, result)
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut s = self.session().await?;
        let result = async {
            match s.rename(self.remote(&from), self.remote(&to)).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Some servers refuse to replace an existing file: remove it and retry.
                    let target_is_file =
                        matches!(self.stat_on(&mut s, &to).await, Ok(t) if !t.is_dir);
                    let source_exists = self.stat_on(&mut s, &from).await.is_ok();
                    if !source_exists {
                        return Err(VfsError::NotFound(format!("{}{from}", self.label())));
                    }
                    if target_is_file && Self::is_unavailable(&e) {
                        s.rm(self.remote(&to))
                            .await
                            .map_err(|e| self.cmd_error("DELE", &to, e))?;
                        return s
                            .rename(self.remote(&from), self.remote(&to))
                            .await
                            .map_err(|e| self.cmd_error("RNTO", &to, e));
                    }
                    Err(self.cmd_error("RNFR/RNTO", &from, e))
                }
            }
        };
        let result = self.timed(result).await;
        self.settle(s, result)
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        let mut s = self.session().await?;
        let result = async {
            match s.rm(self.remote(&path)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.refine_unavailable(&mut s, "DELE", &path, e).await),
            }
        };
        let result = self.timed(result).await;
        self.settle(s, result)
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        let mut s = self.session().await?;
        let result = async {
            // Leave the directory first: some servers refuse to remove the working directory.
            let _ = s.cwd(self.remote("/")).await;
            match s.rmdir(self.remote(&path)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.refine_unavailable(&mut s, "RMD", &path, e).await),
            }
        };
        let result = self.timed(result).await;
        self.settle(s, result)
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let path = normalize(path);
        let mut s = self.session().await?;
        if !self.features().mfmt {
            self.give_back(s);
            return Err(VfsError::Unsupported(
                "setting modification times on an FTP server without MFMT",
            ));
        }
        let cmd = format!(
            "MFMT {} {}",
            mtime.format("%Y%m%d%H%M%S"),
            self.remote(&path)
        );
        let result = async {
            match s.custom_command(cmd, &[Status::File]).await {
                Ok(_) => Ok(()),
                Err(e) => Err(self.refine_unavailable(&mut s, "MFMT", &path, e).await),
            }
        };
        let result = self.timed(result).await;
        self.settle(s, result)
    }

    async fn close(&self) -> VfsResult<()> {
        let sessions: Vec<Session> =
            std::mem::take(&mut *self.inner.idle.lock().expect("ftp pool lock"));
        for mut s in sessions {
            let _ = s.quit().await;
        }
        Ok(())
    }
}

/// 425 (cannot open the data connection) and 426 (transfer aborted: the data connection
/// closed): the network failed, not the request.
fn is_data_connection_lost(status: Status) -> bool {
    matches!(
        status,
        Status::CannotOpenDataConnection | Status::TransferAborted
    )
}

/// Whether a TLS failure is about the server's certificate or the TLS settings (to be
/// fixed by the user) rather than a connection the network broke.
fn is_certificate_problem(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "notvalidforname",
        "badsignature",
        "expired",
        "alert",
        "protocol version",
        "handshake failure",
    ]
    .iter()
    .any(|needle| m.contains(needle))
        || ![
            "reset",
            "eof",
            "broken pipe",
            "timed out",
            "connection",
            "os error",
        ]
        .iter()
        .any(|needle| m.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_field_takes_an_optional_port() {
        assert_eq!(split_host_port("h", 21).unwrap(), ("h".into(), 21));
        assert_eq!(split_host_port("h:2121", 21).unwrap(), ("h".into(), 2121));
        assert_eq!(
            split_host_port("[::1]:990", 21).unwrap(),
            ("::1".into(), 990)
        );
        assert!(split_host_port("h:port", 21).is_err());
    }

    #[test]
    fn tls_mode_accepts_the_aft_constants() {
        assert_eq!(
            TlsMode::parse(Some("TLS_MODE_IMPLICIT")).unwrap(),
            TlsMode::Implicit
        );
        assert_eq!(
            TlsMode::parse(Some("tls_mode_explicit")).unwrap(),
            TlsMode::Explicit
        );
        assert_eq!(TlsMode::parse(None).unwrap(), TlsMode::None);
        assert!(TlsMode::parse(Some("TLS_MODE_SOMETIMES")).is_err());
    }

    #[test]
    fn unix_list_lines_become_entries_and_dot_entries_are_skipped() {
        let e = parse_listing_line(
            "/d",
            "-rw-r--r--    1 1000     1000         1234 Nov 05  2023 my file.txt",
            false,
        )
        .expect("parsed");
        assert_eq!(
            (e.path.as_str(), e.size, e.is_dir),
            ("/d/my file.txt", 1234, false)
        );
        let d = parse_listing_line("/d", "drwxr-xr-x    2 0 0 4096 Jan 01 10:00 sub", false)
            .expect("parsed");
        assert!(d.is_dir);
        assert!(parse_listing_line("/d", "drwxr-xr-x 2 0 0 4096 Jan 01 10:00 .", false).is_none());
        assert!(parse_listing_line("/d", "total 12", false).is_none());
    }

    #[test]
    fn mlsd_lines_become_entries_with_exact_times() {
        let e = parse_listing_line(
            "/",
            "type=file;size=5;modify=20010203040506; résumé 1.txt",
            true,
        )
        .expect("parsed");
        assert_eq!(e.name, "résumé 1.txt");
        assert_eq!(e.size, 5);
        assert_eq!(e.mtime.unwrap().to_rfc3339(), "2001-02-03T04:05:06+00:00");
        assert!(parse_listing_line("/", "type=cdir;modify=20010203040506; /x", true).is_none());
    }

    #[tokio::test]
    async fn an_endless_listing_line_is_refused_after_64_kib() {
        // A server that sends one line without end: memory stays bounded.
        let endless = tokio::io::repeat(b'a');
        let mut lines = BufReader::new(endless);
        let mut raw = Vec::new();
        let err = read_listing_line(&mut lines, &mut raw).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 64 KiB"), "{err}");
        assert!(
            raw.len() <= MAX_LISTING_LINE + 1,
            "read {} bytes",
            raw.len()
        );

        // Lines up to the limit, and the end of the listing, read as before.
        let long_name = "n".repeat(MAX_LISTING_LINE - 60);
        let listing = format!(
            "-rw-r--r-- 1 u g 5 Jan  1 2020 {long_name}\r\ndrwxr-xr-x 2 u g 0 Jan  1 2020 sub\r\n"
        );
        let mut lines = BufReader::new(listing.as_bytes());
        let n = read_listing_line(&mut lines, &mut raw).await.unwrap();
        assert!(n > 60_000 && raw.ends_with(b"\r\n"));
        let first = parse_listing_line("/", std::str::from_utf8(&raw).unwrap().trim_end(), false);
        assert_eq!(first.map(|e| e.name), Some(long_name));
        read_listing_line(&mut lines, &mut raw).await.unwrap();
        assert!(raw.starts_with(b"drwx"));
        assert_eq!(read_listing_line(&mut lines, &mut raw).await.unwrap(), 0);
    }
}
