//! An item's encoding, as its Meta Format names it: plain (`chr`), base64 (`b64`), and
//! Funambol's `des;b64`: DES in ECB mode with PKCS#5 padding, then base64. Funambol's key
//! is the first 8 bytes of the MD5 digest of the user's password (as its client and server
//! derive it), so the server knows it only from a basic sign-in; a session signed in with
//! MD5 refuses such items (415). The key lives in the session in memory, never in the
//! store: a session taken up after a restart has none until the device signs in again.

use crate::message::status;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ecb::cipher::block_padding::Pkcs7;
use ecb::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};
use md5::{Digest, Md5};

/// A user's Funambol DES key.
pub type DesKey = [u8; 8];

/// The key Funambol derives from a password.
pub fn des_key(password: &str) -> DesKey {
    let digest = Md5::digest(password.as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    key
}

/// How the server's items go to a datastore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Plain,
    B64,
    DesB64(DesKey),
}

impl Out {
    /// The Meta Format it is named by, if any.
    pub fn format(self) -> Option<&'static str> {
        match self {
            Out::Plain => None,
            Out::B64 => Some("b64"),
            Out::DesB64(_) => Some("des;b64"),
        }
    }

    pub fn encode(self, data: String) -> String {
        match self {
            Out::Plain => data,
            Out::B64 => B64.encode(data),
            Out::DesB64(key) => B64.encode(
                ecb::Encryptor::<des::Des>::new(&key.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(data.as_bytes()),
            ),
        }
    }
}

/// Base64 text as items carry it (line breaks and spaces allowed), decoded.
pub fn base64(data: &str) -> Option<Vec<u8>> {
    let clean: String = data.split_whitespace().collect();
    B64.decode(clean).ok()
}

/// Whether a Meta Format is Funambol's DES.
pub fn is_des(format: Option<&str>) -> bool {
    format.is_some_and(|f| f.trim().eq_ignore_ascii_case("des;b64"))
}

/// An item's data as its Format says it was encoded: bad base64, a wrong key or text that
/// is not UTF-8 is 400; DES without a key, or an encoding this server does not know, 415.
pub fn decode(format: Option<&str>, data: String, key: Option<&DesKey>) -> Result<String, u16> {
    let base64 = |data: &str| base64(data).ok_or(status::BAD_REQUEST);
    let bytes = match format.map(str::trim) {
        None | Some("" | "chr") => return Ok(data),
        Some(f) if f.eq_ignore_ascii_case("b64") => base64(&data)?,
        Some(f) if is_des(Some(f)) => {
            let Some(key) = key else {
                log::info!(
                    "syncml: a des;b64 item refused: the session has no key (not a basic sign-in)"
                );
                return Err(status::UNSUPPORTED_TYPE);
            };
            ecb::Decryptor::<des::Des>::new(&(*key).into())
                .decrypt_padded_vec_mut::<Pkcs7>(&base64(&data)?)
                .map_err(|_| status::BAD_REQUEST)?
        }
        Some(other) => {
            log::info!(
                "syncml: an item in {other:?} refused: an encoding this server does not know"
            );
            return Err(status::UNSUPPORTED_TYPE);
        }
    };
    String::from_utf8(bytes).map_err(|_| status::BAD_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_b64_goes_both_ways_with_the_passwords_key_only() {
        let key = des_key("long enough pw");
        let sent = Out::DesB64(key).encode("BEGIN:VCARD\r\nFN:Zoë\r\nEND:VCARD\r\n".into());
        // DES blocks of 8 bytes, the padding included: 33 bytes make 40, 56 in base64.
        assert_eq!(sent.len(), 56);
        let back = decode(Some("des;b64"), sent.clone(), Some(&key)).unwrap();
        assert_eq!(back, "BEGIN:VCARD\r\nFN:Zoë\r\nEND:VCARD\r\n");
        let other = des_key("another password");
        assert_eq!(
            decode(Some("des;b64"), sent.clone(), Some(&other)),
            Err(400)
        );
        assert_eq!(decode(Some("des;b64"), sent, None), Err(415));
        assert_eq!(
            decode(Some("3des;b64"), "AAAA".into(), Some(&key)),
            Err(415)
        );
        assert_eq!(decode(Some("b64"), "not base64!".into(), None), Err(400));
        assert_eq!(
            decode(Some("b64"), "aGk=".into(), None).as_deref(),
            Ok("hi")
        );
    }

    #[test]
    fn the_key_is_the_md5_digests_first_bytes() {
        // MD5("password") = 5f4dcc3b5aa765d61d8327deb882cf99.
        assert_eq!(
            des_key("password"),
            [0x5f, 0x4d, 0xcc, 0x3b, 0x5a, 0xa7, 0x65, 0xd6]
        );
    }
}
