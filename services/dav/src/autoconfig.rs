//! Client autoconfiguration: Thunderbird's autoconfig file (mail servers, with the CalDAV and
//! CardDAV entries Thunderbird reads since 102), and a per-user Apple configuration profile
//! (.mobileconfig: mail, CalDAV, CardDAV) for iOS and macOS. Neither carries a password.

use crate::http::{Resp, bytes};
use crate::xml::esc;
use hyper::StatusCode;

/// The ports clients are told, as the box is reached (the appliance's standard ones, or a
/// development daemon's offset ones).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Ports {
    pub imaps: u16,
    pub imap: u16,
    pub submissions: u16,
    pub submission: u16,
    pub https: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            imaps: 993,
            imap: 143,
            submissions: 465,
            submission: 587,
            https: 443,
        }
    }
}

fn https_url(host: &str, port: u16, path: &str) -> String {
    if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    }
}

/// Thunderbird's config-v1.1.xml for the box's domains.
pub fn thunderbird(host: &str, p: &Ports, domains: &[String]) -> Resp {
    let host = esc(host);
    let first = domains.first().map(String::as_str).unwrap_or(&host);
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{}\">\n",
        esc(first)
    );
    for d in domains {
        x.push_str(&format!("    <domain>{}</domain>\n", esc(d)));
    }
    x.push_str(&format!(
        "    <displayName>{host}</displayName>\n    <displayShortName>Bureau</displayShortName>\n"
    ));
    let server = |kind: &str, tag: &str, port: u16, socket: &str| {
        format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n    </{tag}>\n"
        )
    };
    x.push_str(&server("imap", "incomingServer", p.imaps, "SSL"));
    x.push_str(&server("imap", "incomingServer", p.imap, "STARTTLS"));
    x.push_str(&server("smtp", "outgoingServer", p.submissions, "SSL"));
    x.push_str(&server("smtp", "outgoingServer", p.submission, "STARTTLS"));
    x.push_str("  </emailProvider>\n");
    for (tag, kind, path) in [
        ("addressBook", "carddav", "/.well-known/carddav"),
        ("calendar", "caldav", "/.well-known/caldav"),
    ] {
        x.push_str(&format!(
            "  <{tag} type=\"{kind}\">\n    <username>%EMAILADDRESS%</username>\n    <authentication>http-basic</authentication>\n    <serverURL>{}</serverURL>\n  </{tag}>\n",
            esc(&https_url(&host, p.https, path))
        ));
    }
    x.push_str("</clientConfig>\n");
    bytes(
        StatusCode::OK,
        "application/xml; charset=utf-8",
        x.into_bytes(),
    )
}

/// A stable UUID-shaped identifier for a profile payload (Apple wants one per payload;
/// the same user and host give the same ones, so reinstalling replaces the profile).
fn payload_uuid(seed: &str) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in seed.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let s = format!("{h:032X}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..]
    )
}

/// A user's .mobileconfig: the mail account (IMAP over TLS, submission over TLS), the
/// CalDAV and the CardDAV account. The device asks for the password when it is installed.
pub fn mobileconfig(host: &str, p: &Ports, uid: &str, address: &str, name: &str) -> Resp {
    let (h, a, n) = (esc(host), esc(address), esc(name));
    let principal = esc(&crate::principal_href(uid));
    let payload = |kind: &str, id: &str, body: String| {
        format!(
            "<dict>\n<key>PayloadType</key><string>{kind}</string>\n<key>PayloadVersion</key><integer>1</integer>\n<key>PayloadIdentifier</key><string>bureau.{h}.{id}</string>\n<key>PayloadUUID</key><string>{}</string>\n<key>PayloadDisplayName</key><string>{id}</string>\n{body}</dict>\n",
            payload_uuid(&format!("{host}/{uid}/{id}"))
        )
    };
    let mail = payload(
        "com.apple.mail.managed",
        "mail",
        format!(
            "<key>EmailAccountDescription</key><string>{a}</string>\n<key>EmailAccountName</key><string>{n}</string>\n<key>EmailAccountType</key><string>EmailTypeIMAP</string>\n<key>EmailAddress</key><string>{a}</string>\n<key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n<key>IncomingMailServerHostName</key><string>{h}</string>\n<key>IncomingMailServerPortNumber</key><integer>{}</integer>\n<key>IncomingMailServerUseSSL</key><true/>\n<key>IncomingMailServerUsername</key><string>{a}</string>\n<key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n<key>OutgoingMailServerHostName</key><string>{h}</string>\n<key>OutgoingMailServerPortNumber</key><integer>{}</integer>\n<key>OutgoingMailServerUseSSL</key><true/>\n<key>OutgoingMailServerUsername</key><string>{a}</string>\n<key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n",
            p.imaps, p.submissions
        ),
    );
    let caldav = payload(
        "com.apple.caldav.account",
        "caldav",
        format!(
            "<key>CalDAVAccountDescription</key><string>{n}</string>\n<key>CalDAVHostName</key><string>{h}</string>\n<key>CalDAVPort</key><integer>{}</integer>\n<key>CalDAVPrincipalURL</key><string>{principal}</string>\n<key>CalDAVUseSSL</key><true/>\n<key>CalDAVUsername</key><string>{a}</string>\n",
            p.https
        ),
    );
    let carddav = payload(
        "com.apple.carddav.account",
        "carddav",
        format!(
            "<key>CardDAVAccountDescription</key><string>{n}</string>\n<key>CardDAVHostName</key><string>{h}</string>\n<key>CardDAVPort</key><integer>{}</integer>\n<key>CardDAVPrincipalURL</key><string>{principal}</string>\n<key>CardDAVUseSSL</key><true/>\n<key>CardDAVUsername</key><string>{a}</string>\n",
            p.https
        ),
    );
    let x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n<key>PayloadContent</key>\n<array>\n{mail}{caldav}{carddav}</array>\n<key>PayloadDisplayName</key><string>{n} at {h}</string>\n<key>PayloadIdentifier</key><string>bureau.{h}.{}</string>\n<key>PayloadType</key><string>Configuration</string>\n<key>PayloadUUID</key><string>{}</string>\n<key>PayloadVersion</key><integer>1</integer>\n</dict>\n</plist>\n",
        esc(uid),
        payload_uuid(&format!("{host}/{uid}"))
    );
    let mut r = bytes(
        StatusCode::OK,
        "application/x-apple-aspen-config",
        x.into_bytes(),
    );
    if let Ok(v) = format!(
        "attachment; filename=\"{}.mobileconfig\"",
        uid.replace('"', "")
    )
    .parse()
    {
        r.headers_mut().insert("content-disposition", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_shaped() {
        let a = payload_uuid("box/alice/mail");
        assert_eq!(a, payload_uuid("box/alice/mail"));
        assert_ne!(a, payload_uuid("box/bob/mail"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
