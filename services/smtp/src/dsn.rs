//! Delivery status notifications (RFC 3464): the bounce a sender gets when a recipient
//! fails for good or the queue gives up.

pub(crate) struct Failure<'a> {
    pub recipient: &'a str,
    /// Enhanced status code, e.g. "5.1.1".
    pub status: &'a str,
    /// What the remote server (or we) said.
    pub diagnostic: &'a str,
}

/// Builds the bounce for `original` (whose headers are returned, not its body).
pub(crate) fn bounce(
    hostname: &str,
    to: &str,
    original: &[u8],
    failures: &[Failure],
    id: &str,
) -> Vec<u8> {
    let boundary = format!("bureau-dsn-{id}");
    let date = mail_parser::DateTime::from_timestamp(bureau_store::now()).to_rfc822();
    let headers_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(original.len(), |p| p + 2);
    let mut human = String::new();
    for f in failures {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            f.recipient,
            one_line(f.diagnostic)
        ));
    }
    let mut per_rcpt = String::new();
    for f in failures {
        per_rcpt.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            f.recipient,
            f.status,
            one_line(f.diagnostic)
        ));
    }
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.dsn@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This is the mail system at {hostname}.\r\n\
         \r\n\
         Your message could not be delivered to one or more recipients:\r\n\
         \r\n\
         {human}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         {per_rcpt}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n"
    )
    .into_bytes();
    out.extend_from_slice(&original[..headers_end]);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bounce_parses_as_a_delivery_report() {
        let original = b"From: a@example.com\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let f = [super::Failure {
            recipient: "x@remote.example",
            status: "5.1.1",
            diagnostic: "550 5.1.1 no such user\r\n",
        }];
        let b = super::bounce("box.example.com", "a@example.com", original, &f, "ID1");
        let m = mail_parser::MessageParser::default().parse(&b).unwrap();
        assert_eq!(m.subject(), Some("Undelivered Mail Returned to Sender"));
        let text = String::from_utf8_lossy(&b);
        assert!(
            text.contains("Status: 5.1.1")
                && text.contains("Final-Recipient: rfc822; x@remote.example")
        );
        assert!(
            text.contains("Subject: hi") && !text.contains("secret body"),
            "headers only"
        );
        assert!(
            !b.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "CRLF only"
        );
    }
}
