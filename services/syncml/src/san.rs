//! Server-alerted sync: the OMA DS 1.2 notification (package #0, "SAN") that asks a device
//! to sync, and the WAP push that carries it over UDP (sans I/O; push.rs sends it).
//!
//! The package: a 128-bit digest, then the header (version 10 bits, UI mode 2, initiator 1,
//! 27 bits for future use, session id 16, then the server identifier's length and text),
//! then the body (the number of syncs 4 bits, 4 for future use, and per sync: its type
//! less 200 in 4 bits, 4 for future use, a 24-bit content type, the server URI's length
//! and text). Bit fields are big-endian. The digest is
//! `MD5(B64(MD5(server-identifier ":" password)) ":" nonce ":" B64(MD5(notification)))`,
//! the notification being everything after the digest.
//!
//! The push (WAP WSP connectionless push, as a phone's push port takes it): a transaction
//! id, PDU type Push (0x06), the headers' length, the content type
//! `application/vnd.syncml.ds.notification` (WSP code 0x4E) and `X-Wap-Application-Id:
//! x-wap-application:push.syncml` (header 0x2F, application 0x05), then the package.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};

/// OMA DS 1.2, in the header's version field.
const VERSION: u16 = 12;
/// The UDP port phones take WAP connectionless pushes on.
pub const WAP_PUSH_PORT: u16 = 2948;

/// A sync the server alerts (206 to 210) and the datastore's URI as the device names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sync {
    pub code: u16,
    pub uri: String,
}

/// What a notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// How the device knows the server (the URI it syncs with).
    pub server_id: String,
    pub session_id: u16,
    pub syncs: Vec<Sync>,
}

/// The package #0 for a notice, its digest made with the device's MD5 credential
/// (base64 of MD5("login:password"), as the directory keeps it) and the nonce. Strings are
/// cut at 255 bytes, syncs at 15 (the fields' sizes).
pub fn package(n: &Notice, credential: &str, nonce: &[u8]) -> Vec<u8> {
    let cut = |s: &str| -> Vec<u8> { s.as_bytes().iter().take(255).copied().collect() };
    // Version, UI mode "not specified" (0), initiator the server (1), 27 bits for future
    // use, the session id: 56 bits.
    let head: u64 = (u64::from(VERSION) << 46) | (1 << 43) | u64::from(n.session_id);
    let mut body = head.to_be_bytes()[1..].to_vec();
    let id = cut(&n.server_id);
    body.push(id.len() as u8);
    body.extend_from_slice(&id);
    let syncs = &n.syncs[..n.syncs.len().min(15)];
    body.push((syncs.len() as u8) << 4);
    for s in syncs {
        body.push(((s.code.saturating_sub(200) as u8) & 0x0f) << 4);
        // Content type 0: not said (the device knows its datastore's).
        body.extend_from_slice(&[0, 0, 0]);
        let uri = cut(&s.uri);
        body.push(uri.len() as u8);
        body.extend_from_slice(&uri);
    }
    let mut out = digest(credential, nonce, &body).to_vec();
    out.extend_from_slice(&body);
    out
}

fn digest(credential: &str, nonce: &[u8], notification: &[u8]) -> [u8; 16] {
    let mut text = format!("{credential}:").into_bytes();
    text.extend_from_slice(nonce);
    text.push(b':');
    text.extend_from_slice(B64.encode(Md5::digest(notification)).as_bytes());
    Md5::digest(&text).into()
}

/// A package in a WAP connectionless push PDU.
pub fn wap_push(tid: u8, package: &[u8]) -> Vec<u8> {
    // Content type 0x4E and X-Wap-Application-Id 0x05, both short-integer encoded.
    let headers = [0x80 | 0x4E, 0x80 | 0x2F, 0x80 | 0x05];
    let mut out = vec![tid, 0x06, headers.len() as u8];
    out.extend_from_slice(&headers);
    out.extend_from_slice(package);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_laid_out_bit_by_bit() {
        let n = Notice {
            server_id: "https://box/syncml".into(),
            session_id: 0x1234,
            syncs: vec![
                Sync {
                    code: 206,
                    uri: "contacts".into(),
                },
                Sync {
                    code: 209,
                    uri: "calendar".into(),
                },
            ],
        };
        let p = package(&n, "Zm9v", b"");
        let h = &p[16..];
        // 0000001100 00 1 000...: version 12, UI mode 0, initiator 1.
        assert_eq!(&h[..7], &[0x03, 0x08, 0x00, 0x00, 0x00, 0x12, 0x34]);
        assert_eq!(h[7] as usize, "https://box/syncml".len());
        let body = &h[8 + 18..];
        assert_eq!(body[0], 0x20);
        assert_eq!(&body[1..6], &[0x60, 0, 0, 0, 8]);
        assert_eq!(&body[6..14], b"contacts");
        assert_eq!(body[14], 0x90);
        assert_eq!(p[..16], digest("Zm9v", b"", h));
        assert_ne!(p[..16], digest("Zm9w", b"", h));
        let push = wap_push(7, &p);
        assert_eq!(&push[..6], &[7, 0x06, 3, 0xCE, 0xAF, 0x85]);
        assert_eq!(&push[6..], &p[..]);
    }
}
