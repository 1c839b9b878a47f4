//! One SMB2 NEGOTIATE exchange, to learn whether a server can encrypt (for `RequireEncryption`).
//!
//! libsmbclient, asked to require encryption, encrypts whenever the server can, but when the
//! server cannot it logs "Encryption required and server doesn't support SMB3 encryption" and
//! carries on unencrypted (Samba 4.17). So aft asks the server first, offering SMB 3.0 to
//! 3.1.1 with every cipher, and refuses to connect unless it answers with a cipher.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a server answered to a NEGOTIATE offering SMB3 with encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The dialect it chose (`0x0311` is SMB 3.1.1).
    pub dialect: u16,
    /// The cipher it chose (`0`: none), or whether it set the encryption capability for
    /// SMB 3.0 and 3.0.2 (`1`).
    pub cipher: u16,
}

impl Offer {
    /// Whether the server will encrypt a session.
    pub fn encrypts(&self) -> bool {
        self.cipher != 0
    }

    /// The dialect as people write it.
    pub fn dialect_name(&self) -> String {
        match self.dialect {
            0x0202 => "SMB 2.0.2".into(),
            0x0210 => "SMB 2.1".into(),
            0x0300 => "SMB 3.0".into(),
            0x0302 => "SMB 3.0.2".into(),
            0x0311 => "SMB 3.1.1".into(),
            other => format!("dialect 0x{other:04x}"),
        }
    }
}

const DIALECTS: [u16; 3] = [0x0300, 0x0302, 0x0311];
/// AES-128-CCM, AES-128-GCM, AES-256-CCM, AES-256-GCM.
const CIPHERS: [u16; 4] = [1, 2, 3, 4];
const CAP_ENCRYPTION: u32 = 0x40;
const HEADER: usize = 64;

/// The NEGOTIATE request, with its 4-byte transport header.
fn request() -> Vec<u8> {
    let mut m = Vec::with_capacity(200);
    // SMB2 header: protocol id, structure size 64, command 0 (NEGOTIATE), one credit.
    m.extend_from_slice(b"\xfeSMB");
    m.extend_from_slice(&64u16.to_le_bytes());
    m.extend_from_slice(&[0; 6]); // credit charge, status
    m.extend_from_slice(&0u16.to_le_bytes()); // command
    m.extend_from_slice(&1u16.to_le_bytes()); // credits requested
    m.resize(HEADER, 0);
    let contexts_at = (HEADER + 36 + 2 * DIALECTS.len()).next_multiple_of(8);
    m.extend_from_slice(&36u16.to_le_bytes());
    m.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // signing enabled
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&CAP_ENCRYPTION.to_le_bytes());
    m.extend_from_slice(&std::process::id().to_le_bytes()); // client GUID
    m.extend_from_slice(&[0x61; 12]);
    m.extend_from_slice(&(contexts_at as u32).to_le_bytes());
    m.extend_from_slice(&2u16.to_le_bytes()); // negotiate contexts
    m.extend_from_slice(&0u16.to_le_bytes());
    for d in DIALECTS {
        m.extend_from_slice(&d.to_le_bytes());
    }
    m.resize(contexts_at, 0);
    // Pre-authentication integrity: SHA-512 with a 32-byte salt (required for 3.1.1).
    let mut preauth = Vec::new();
    preauth.extend_from_slice(&1u16.to_le_bytes());
    preauth.extend_from_slice(&32u16.to_le_bytes());
    preauth.extend_from_slice(&1u16.to_le_bytes());
    preauth.extend_from_slice(&[0x5a; 32]);
    let mut ciphers = Vec::new();
    ciphers.extend_from_slice(&(CIPHERS.len() as u16).to_le_bytes());
    for c in CIPHERS {
        ciphers.extend_from_slice(&c.to_le_bytes());
    }
    for (kind, data) in [(1u16, preauth), (2u16, ciphers)] {
        m.resize(m.len().next_multiple_of(8), 0);
        m.extend_from_slice(&kind.to_le_bytes());
        m.extend_from_slice(&(data.len() as u16).to_le_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&data);
    }
    let mut framed = (m.len() as u32).to_be_bytes().to_vec();
    framed[0] = 0;
    framed.extend_from_slice(&m);
    framed
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The server's answer, from an SMB2 message without its transport header.
fn parse(m: &[u8]) -> Result<Offer, String> {
    if m.get(..4) != Some(b"\xfeSMB") {
        return Err("the server did not answer in SMB2 (SMB1 only?)".into());
    }
    let status = u32_at(m, 8).ok_or("short answer")?;
    if status != 0 {
        return Err(format!(
            "the server refused SMB3 negotiation (status 0x{status:08x})"
        ));
    }
    let body = HEADER;
    let dialect = u16_at(m, body + 4).ok_or("short answer")?;
    let caps = u32_at(m, body + 24).ok_or("short answer")?;
    let cipher = match dialect {
        0x0300 | 0x0302 => u16::from(caps & CAP_ENCRYPTION != 0),
        0x0311 => {
            let count = u16_at(m, body + 6).ok_or("short answer")?;
            let mut at = u32_at(m, body + 60).ok_or("short answer")? as usize;
            let mut cipher = 0;
            for _ in 0..count {
                at = at.next_multiple_of(8);
                let kind = u16_at(m, at).ok_or("short negotiate context")?;
                let len = u16_at(m, at + 2).ok_or("short negotiate context")? as usize;
                if kind == 2 && u16_at(m, at + 8).unwrap_or(0) >= 1 {
                    cipher = u16_at(m, at + 10).ok_or("short negotiate context")?;
                }
                at += 8 + len;
            }
            cipher
        }
        _ => 0,
    };
    Ok(Offer { dialect, cipher })
}

/// Ask `host:port` which dialect and cipher it would use with a client requiring encryption.
pub(crate) async fn probe(host: &str, port: u16, timeout: Duration) -> Result<Offer, String> {
    let exchange = async {
        let mut s = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(&request()).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let len = u32::from_be_bytes([0, len[1], len[2], len[3]]) as usize;
        if len > 1 << 20 {
            return Err("the server's answer is not SMB".to_string());
        }
        let mut m = vec![0u8; len];
        s.read_exact(&mut m).await.map_err(|e| e.to_string())?;
        parse(&m)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_one_framed_negotiate_with_two_aligned_contexts() {
        let r = request();
        let len = u32::from_be_bytes([0, r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        let m = &r[4..];
        assert_eq!(&m[..4], b"\xfeSMB");
        assert_eq!((u16_at(m, 12), u16_at(m, 14)), (Some(0), Some(1)));
        let at = u32_at(m, HEADER + 28).unwrap() as usize;
        assert_eq!(at % 8, 0);
        assert_eq!(u16_at(m, at), Some(1));
        let second = (at + 8 + 38).next_multiple_of(8);
        assert_eq!(u16_at(m, second), Some(2));
        assert_eq!(u16_at(m, second + 8), Some(4));
    }

    fn answer(dialect: u16, caps: u32, cipher: Option<u16>) -> Vec<u8> {
        let mut m = vec![0u8; HEADER + 64];
        m[..4].copy_from_slice(b"\xfeSMB");
        m[HEADER + 4..HEADER + 6].copy_from_slice(&dialect.to_le_bytes());
        m[HEADER + 24..HEADER + 28].copy_from_slice(&caps.to_le_bytes());
        if let Some(c) = cipher {
            let at = m.len();
            m[HEADER + 6..HEADER + 8].copy_from_slice(&1u16.to_le_bytes());
            m[HEADER + 60..HEADER + 64].copy_from_slice(&(at as u32).to_le_bytes());
            m.extend_from_slice(&2u16.to_le_bytes());
            m.extend_from_slice(&4u16.to_le_bytes());
            m.extend_from_slice(&[0; 4]);
            m.extend_from_slice(&1u16.to_le_bytes());
            m.extend_from_slice(&c.to_le_bytes());
        }
        m
    }

    #[test]
    fn a_cipher_or_the_capability_means_encryption() {
        assert!(parse(&answer(0x0311, 0, Some(2))).unwrap().encrypts());
        assert!(!parse(&answer(0x0311, 0, Some(0))).unwrap().encrypts());
        assert!(
            !parse(&answer(0x0311, CAP_ENCRYPTION, None))
                .unwrap()
                .encrypts()
        );
        assert!(
            parse(&answer(0x0300, CAP_ENCRYPTION, None))
                .unwrap()
                .encrypts()
        );
        assert!(!parse(&answer(0x0302, 0, None)).unwrap().encrypts());
        assert!(parse(b"\xffSMB").is_err());
    }
}
