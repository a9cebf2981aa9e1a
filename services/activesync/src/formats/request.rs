//! What an ActiveSync request says beside its body (MS-ASHTTP 2.2.1.1.1): the command, the
//! device and the protocol version, from a plain query string
//! (`?Cmd=Sync&User=ann&DeviceId=ABC&DeviceType=iPhone`) and headers, or from the base64
//! query string that packs them in bytes (2.2.1.1.1.1).

use base64::Engine;

/// Protocol versions served, oldest first (also the OPTIONS answer).
pub const VERSIONS: &[&str] = &["12.0", "12.1", "14.0", "14.1", "16.0", "16.1"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EasRequest {
    pub cmd: String,
    pub user: String,
    pub device_id: String,
    pub device_type: String,
    /// "16.1"; empty when neither the header nor the packed query gives one.
    pub version: String,
    /// The policy key the device presents (`X-MS-PolicyKey`, or packed).
    pub policy_key: Option<u32>,
    pub collection_id: Option<String>,
    pub item_id: Option<String>,
    pub long_id: Option<String>,
    pub attachment_name: Option<String>,
    pub save_in_sent: bool,
}

/// Commands by their number in the packed query string (MS-ASHTTP 2.2.1.1.1.1.2).
const COMMANDS: &[(u8, &str)] = &[
    (0, "Sync"),
    (1, "SendMail"),
    (2, "SmartForward"),
    (3, "SmartReply"),
    (4, "GetAttachment"),
    (9, "FolderSync"),
    (10, "FolderCreate"),
    (11, "FolderDelete"),
    (12, "FolderUpdate"),
    (13, "MoveItems"),
    (14, "GetItemEstimate"),
    (15, "MeetingResponse"),
    (16, "Search"),
    (17, "Settings"),
    (18, "Ping"),
    (19, "ItemOperations"),
    (20, "Provision"),
    (21, "ResolveRecipients"),
    (22, "ValidateCert"),
    (23, "Find"),
];

/// Every command name a device may send.
pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(_, n)| *n == name)
}

/// Reads the query string and the headers that matter. An error says what is wrong.
pub fn parse(
    query: &str,
    version_header: Option<&str>,
    policy_header: Option<&str>,
) -> Result<EasRequest, String> {
    // Base64 may end in "=": a plain query string is one that names its command.
    let mut r = if query.split('&').any(|p| p.starts_with("Cmd=")) {
        plain(query)?
    } else {
        packed(query)?
    };
    if let Some(v) = version_header {
        r.version = v.trim().to_string();
    }
    if let Some(p) = policy_header.map(str::trim).filter(|p| !p.is_empty()) {
        r.policy_key = Some(p.parse().map_err(|_| format!("policy key {p:?}"))?);
    }
    if r.cmd.is_empty() || r.device_id.is_empty() {
        return Err("the command and the device id are needed".into());
    }
    if r.device_id.len() > 64
        || !r
            .device_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("device id {:?}", r.device_id));
    }
    Ok(r)
}

fn plain(query: &str) -> Result<EasRequest, String> {
    let mut r = EasRequest::default();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = bureau_core::url::decode_form(v);
        match k {
            "Cmd" => r.cmd = v,
            "User" => r.user = v,
            "DeviceId" => r.device_id = v,
            "DeviceType" => r.device_type = v,
            "CollectionId" => r.collection_id = Some(v),
            "ItemId" => r.item_id = Some(v),
            "LongId" => r.long_id = Some(v),
            "AttachmentName" => r.attachment_name = Some(v),
            "SaveInSent" => r.save_in_sent = v.eq_ignore_ascii_case("T"),
            _ => {}
        }
    }
    Ok(r)
}

fn packed(query: &str) -> Result<EasRequest, String> {
    let query = bureau_core::url::decode(query)
        .ok_or_else(|| "the query string is badly percent-encoded".to_string())?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(query.trim())
        .map_err(|_| "the query string is neither plain nor base64".to_string())?;
    let mut at = 0usize;
    let mut byte = || -> Result<u8, String> {
        let b = *raw.get(at).ok_or("the packed query string ends early")?;
        at += 1;
        Ok(b)
    };
    let version = byte()?;
    let code = byte()?;
    let _locale = (byte()?, byte()?);
    let mut r = EasRequest {
        version: format!("{}.{}", version / 10, version % 10),
        cmd: COMMANDS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| n.to_string())
            .ok_or_else(|| format!("command code {code}"))?,
        ..Default::default()
    };
    let mut field = |len: usize| -> Result<Vec<u8>, String> {
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            v.push(byte()?);
        }
        Ok(v)
    };
    let n = field(1)?[0] as usize;
    r.device_id = String::from_utf8_lossy(&field(n)?).into_owned();
    match field(1)?[0] {
        0 => {}
        4 => {
            let k = field(4)?;
            r.policy_key = Some(u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
        }
        n => return Err(format!("a policy key of {n} bytes")),
    }
    let n = field(1)?[0] as usize;
    r.device_type = String::from_utf8_lossy(&field(n)?).into_owned();
    // Command parameters: tag, length, value; until the end.
    while let Ok(t) = field(1) {
        let tag = t[0];
        let n = field(1)?[0] as usize;
        let value = field(n)?;
        let text = String::from_utf8_lossy(&value).into_owned();
        match tag {
            0 => r.attachment_name = Some(text),
            1 => r.collection_id = Some(text),
            3 => r.item_id = Some(text),
            4 => r.long_id = Some(text),
            7 => r.save_in_sent = value.first().is_some_and(|o| o & 0x01 != 0),
            8 => r.user = text,
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_query_string() {
        let r = parse(
            "Cmd=Sync&User=ann%40office.example&DeviceId=ApplF17&DeviceType=iPhone",
            Some("16.1"),
            Some("3942919513"),
        )
        .unwrap();
        assert_eq!(
            (
                r.cmd.as_str(),
                r.user.as_str(),
                r.device_id.as_str(),
                r.device_type.as_str()
            ),
            ("Sync", "ann@office.example", "ApplF17", "iPhone")
        );
        assert_eq!(
            (r.version.as_str(), r.policy_key),
            ("16.1", Some(3942919513))
        );
        assert!(parse("Cmd=Sync&DeviceId=../x", None, None).is_err());
        assert!(parse("User=a", None, None).is_err());
        assert!(parse("Cmd=Sync&DeviceId=A", None, Some("many")).is_err());
    }

    #[test]
    fn a_packed_query_string() {
        // 14.1, SmartReply, en-US; device "dev1", policy key 0x01020304, type "SP",
        // CollectionId "5", ItemId "5:7", SaveInSent.
        let mut b = vec![141u8, 3, 0x09, 0x04, 4];
        b.extend(b"dev1");
        b.extend([4, 4, 3, 2, 1, 2]);
        b.extend(b"SP");
        b.extend([1, 1, b'5', 3, 3, b'5', b':', b'7', 7, 1, 1]);
        let q = base64::engine::general_purpose::STANDARD.encode(&b);
        let r = parse(&q, None, None).unwrap();
        assert_eq!((r.cmd.as_str(), r.version.as_str()), ("SmartReply", "14.1"));
        assert_eq!(
            (r.device_id.as_str(), r.device_type.as_str()),
            ("dev1", "SP")
        );
        assert_eq!(r.policy_key, Some(0x01020304));
        assert_eq!(r.collection_id.as_deref(), Some("5"));
        assert_eq!(r.item_id.as_deref(), Some("5:7"));
        assert!(r.save_in_sent);
        // Cut anywhere: an error, not a panic.
        for n in 0..b.len() - 10 {
            let q = base64::engine::general_purpose::STANDARD.encode(&b[..n]);
            let _ = parse(&q, None, None);
        }
        assert!(parse("!!!", None, None).is_err());
    }
}
