//! What an ActiveSync request says beside its body (MS-ASHTTP 2.2.1.1.1): the command, the
//! device and the protocol version, from a plain query string
//! (`?Cmd=Sync&User=ann&DeviceId=ABC&DeviceType=iPhone`) and headers, or from the base64
//! query string that packs them in bytes (2.2.1.1.1.1).

use base64::Engine;

/// Protocol versions served, oldest first (also the OPTIONS answer).
pub const VERSIONS: &[&str] = &["12.0", "12.1", "14.0", "14.1", "16.0", "16.1"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EasRequest {
    pub cmd: Command,
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

/// The commands served. Each is listed once, in [`COMMANDS`] (in this order), with what the
/// wire says of it; a name not there is no command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Provision,
    FolderSync,
    FolderCreate,
    FolderUpdate,
    FolderDelete,
    Sync,
    Ping,
    SendMail,
    SmartReply,
    SmartForward,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Settings,
    Search,
    ResolveRecipients,
    ItemOperations,
    Find,
    GetAttachment,
    ValidateCert,
}

/// A command as the wire knows it.
pub struct Spec {
    pub command: Command,
    pub name: &'static str,
    /// Its number in the packed query string (MS-ASHTTP 2.2.1.1.1.1.2).
    pub code: u8,
    /// The code page of its answer's root element, named as the command (MS-ASCMD), for an
    /// answer that is a status alone; `None` for Provision (never refused so) and
    /// GetAttachment (its answer is the attachment).
    pub root: Option<u8>,
}

/// Every command served, in the order OPTIONS announces them.
pub const COMMANDS: &[Spec] = {
    use crate::formats::wbxml::page;
    use Command::*;
    const fn c(command: Command, name: &'static str, code: u8, root: Option<u8>) -> Spec {
        Spec {
            command,
            name,
            code,
            root,
        }
    }
    &[
        c(Provision, "Provision", 20, None),
        c(FolderSync, "FolderSync", 9, Some(page::FOLDER_HIERARCHY)),
        c(
            FolderCreate,
            "FolderCreate",
            10,
            Some(page::FOLDER_HIERARCHY),
        ),
        c(
            FolderUpdate,
            "FolderUpdate",
            12,
            Some(page::FOLDER_HIERARCHY),
        ),
        c(
            FolderDelete,
            "FolderDelete",
            11,
            Some(page::FOLDER_HIERARCHY),
        ),
        c(Sync, "Sync", 0, Some(page::AIRSYNC)),
        c(Ping, "Ping", 18, Some(page::PING)),
        c(SendMail, "SendMail", 1, Some(page::COMPOSE_MAIL)),
        c(SmartReply, "SmartReply", 3, Some(page::COMPOSE_MAIL)),
        c(SmartForward, "SmartForward", 2, Some(page::COMPOSE_MAIL)),
        c(MoveItems, "MoveItems", 13, Some(page::MOVE)),
        c(
            GetItemEstimate,
            "GetItemEstimate",
            14,
            Some(page::GET_ITEM_ESTIMATE),
        ),
        c(
            MeetingResponse,
            "MeetingResponse",
            15,
            Some(page::MEETING_RESPONSE),
        ),
        c(Settings, "Settings", 17, Some(page::SETTINGS)),
        c(Search, "Search", 16, Some(page::SEARCH)),
        c(
            ResolveRecipients,
            "ResolveRecipients",
            21,
            Some(page::RESOLVE_RECIPIENTS),
        ),
        c(
            ItemOperations,
            "ItemOperations",
            19,
            Some(page::ITEM_OPERATIONS),
        ),
        c(Find, "Find", 23, Some(page::FIND)),
        c(GetAttachment, "GetAttachment", 4, None),
        c(ValidateCert, "ValidateCert", 22, Some(page::VALIDATE_CERT)),
    ]
};

impl Command {
    /// Its entry: `COMMANDS` lists the commands in the enum's order (a test checks it).
    fn spec(self) -> &'static Spec {
        &COMMANDS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The answer's root element (code page, tag) for a status alone.
    pub fn root(self) -> Option<(u8, &'static str)> {
        let s = self.spec();
        s.root.map(|page| (page, s.name))
    }

    fn by_name(name: &str) -> Option<Command> {
        COMMANDS.iter().find(|s| s.name == name).map(|s| s.command)
    }

    fn by_code(code: u8) -> Option<Command> {
        COMMANDS.iter().find(|s| s.code == code).map(|s| s.command)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a request's query string or headers (answered 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("the command is needed")]
    NoCommand,
    #[error("no command {0:?}")]
    UnknownCommand(String),
    #[error("no command of code {0}")]
    UnknownCode(u8),
    #[error("the query string is badly percent-encoded")]
    PercentEncoding,
    #[error("the query string is neither plain nor base64")]
    NotBase64,
    #[error("the packed query string ends early")]
    Truncated,
    #[error("a policy key of {0} bytes")]
    PolicyKeyLength(u8),
    #[error("policy key {0:?}")]
    PolicyKey(String),
    #[error("the device id is needed")]
    NoDeviceId,
    #[error("device id {0:?}")]
    DeviceId(String),
}

/// Reads the query string and the headers that matter.
pub fn parse(
    query: &str,
    version_header: Option<&str>,
    policy_header: Option<&str>,
) -> Result<EasRequest, BadRequest> {
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
        r.policy_key = Some(p.parse().map_err(|_| BadRequest::PolicyKey(p.into()))?);
    }
    if r.device_id.is_empty() {
        return Err(BadRequest::NoDeviceId);
    }
    if r.device_id.len() > 64
        || !r
            .device_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(BadRequest::DeviceId(r.device_id));
    }
    Ok(r)
}

impl EasRequest {
    fn new(cmd: Command) -> EasRequest {
        EasRequest {
            cmd,
            user: String::new(),
            device_id: String::new(),
            device_type: String::new(),
            version: String::new(),
            policy_key: None,
            collection_id: None,
            item_id: None,
            long_id: None,
            attachment_name: None,
            save_in_sent: false,
        }
    }
}

fn plain(query: &str) -> Result<EasRequest, BadRequest> {
    let pairs: Vec<(&str, String)> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k, bureau_core::url::decode_form(v))
        })
        .collect();
    let name = pairs
        .iter()
        .find(|(k, _)| *k == "Cmd")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let cmd = match name {
        "" => return Err(BadRequest::NoCommand),
        n => Command::by_name(n).ok_or_else(|| BadRequest::UnknownCommand(n.into()))?,
    };
    let mut r = EasRequest::new(cmd);
    for (k, v) in pairs {
        match k {
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

fn packed(query: &str) -> Result<EasRequest, BadRequest> {
    let query = bureau_core::url::decode(query).ok_or(BadRequest::PercentEncoding)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(query.trim())
        .map_err(|_| BadRequest::NotBase64)?;
    let mut at = 0usize;
    let mut byte = || -> Result<u8, BadRequest> {
        let b = *raw.get(at).ok_or(BadRequest::Truncated)?;
        at += 1;
        Ok(b)
    };
    let version = byte()?;
    let code = byte()?;
    let _locale = (byte()?, byte()?);
    let mut r = EasRequest {
        version: format!("{}.{}", version / 10, version % 10),
        ..EasRequest::new(Command::by_code(code).ok_or(BadRequest::UnknownCode(code))?)
    };
    let mut field = |len: usize| -> Result<Vec<u8>, BadRequest> {
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
        n => return Err(BadRequest::PolicyKeyLength(n)),
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
                r.cmd,
                r.user.as_str(),
                r.device_id.as_str(),
                r.device_type.as_str()
            ),
            (Command::Sync, "ann@office.example", "ApplF17", "iPhone")
        );
        assert_eq!(
            (r.version.as_str(), r.policy_key),
            ("16.1", Some(3942919513))
        );
        let bad = |q: &str, policy: Option<&str>| parse(q, None, policy).err();
        assert_eq!(
            bad("Cmd=Sync&DeviceId=../x", None),
            Some(BadRequest::DeviceId("../x".into()))
        );
        assert_eq!(bad("User=a", None), Some(BadRequest::NotBase64));
        assert_eq!(
            bad("Cmd=Teleport&DeviceId=A", None),
            Some(BadRequest::UnknownCommand("Teleport".into()))
        );
        assert_eq!(
            bad("Cmd=Sync&DeviceId=A", Some("many")),
            Some(BadRequest::PolicyKey("many".into()))
        );
        assert_eq!(bad("Cmd=Sync", None), Some(BadRequest::NoDeviceId));
    }

    #[test]
    fn every_command_is_listed_once_in_its_place() {
        for (i, s) in COMMANDS.iter().enumerate() {
            assert_eq!(s.command as usize, i, "{}", s.name);
            assert_eq!(format!("{:?}", s.command), s.name);
            assert_eq!(Command::by_code(s.code), Some(s.command));
        }
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
        assert_eq!((r.cmd, r.version.as_str()), (Command::SmartReply, "14.1"));
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
