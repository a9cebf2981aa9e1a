//! Delivery status notifications (RFC 3464): the bounce a sender gets when a recipient
//! fails for good or the queue gives up.

pub(crate) struct Failure<'a> {
    pub recipient: &'a str,
    /// The recipient as the sender wrote it (ORCPT), e.g. "rfc822;bob@remote.example".
    pub original: Option<&'a str>,
    /// Enhanced status code, e.g. "5.1.1".
    pub status: &'a str,
    /// What the remote server (or we) said.
    pub diagnostic: &'a str,
}

/// What a report says about the message as a whole.
pub(crate) struct Report<'a> {
    pub hostname: &'a str,
    /// The sender, who gets the report.
    pub to: &'a str,
    /// Our id of the message.
    pub id: &'a str,
    /// ENVID given at MAIL.
    pub env_id: Option<&'a str>,
    /// RET=FULL: return the whole message rather than its headers.
    pub full: bool,
}

/// Builds the bounce for `original`.
pub(crate) fn bounce(r: &Report, original: &[u8], failures: &[Failure]) -> Vec<u8> {
    let (hostname, to, id) = (r.hostname, r.to, r.id);
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
        if let Some(o) = f.original {
            // RFC 3464 2.3.1: address-type ";" address (smtp-proto keeps only the address).
            let o = if o.contains(';') {
                o.to_string()
            } else {
                format!("rfc822;{o}")
            };
            per_rcpt.push_str(&format!("\r\nOriginal-Recipient: {}", one_line(&o)));
        }
        per_rcpt.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            f.recipient,
            f.status,
            one_line(f.diagnostic)
        ));
    }
    let env_id = r
        .env_id
        .map(|e| format!("Original-Envelope-Id: {}\r\n", one_line(e)))
        .unwrap_or_default();
    let (returned_type, returned) = if r.full {
        ("message/rfc822", original)
    } else {
        ("text/rfc822-headers", &original[..headers_end])
    };
    use mail_builder::MessageBuilder;
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::headers::raw::Raw;
    use mail_builder::mime::MimePart;
    let text = format!(
        "This is the mail system at {hostname}.\r\n\r\n\
         Your message could not be delivered to one or more recipients:\r\n\r\n{human}"
    );
    let status = format!("{env_id}Reporting-MTA: dns; {hostname}\r\n{per_rcpt}");
    let daemon = format!("MAILER-DAEMON@{hostname}");
    let report = ContentType::new("multipart/report").attribute("report-type", "delivery-status");
    MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(to)
        .subject("Undelivered Mail Returned to Sender")
        .date(bureau_store::now())
        .message_id(format!("{id}.dsn@{hostname}"))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(MimePart::new(
            report,
            vec![
                MimePart::new("text/plain", text),
                // The report and the returned message as they are (RFC 3464 2, RFC 6522).
                MimePart::new("message/delivery-status", status.into_bytes())
                    .transfer_encoding("7bit"),
                MimePart::new(returned_type, returned).transfer_encoding(encoding(returned)),
            ],
        ))
        .write_to_vec()
        .expect("writing into memory")
}

/// The transfer encoding that declares what a returned message holds.
fn encoding(b: &[u8]) -> &'static str {
    if b.is_ascii() { "7bit" } else { "8bit" }
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
            original: Some("rfc822;X@Remote.Example"),
            status: "5.1.1",
            diagnostic: "550 5.1.1 no such user\r\n",
        }];
        let mut r = super::Report {
            hostname: "box.example.com",
            to: "a@example.com",
            id: "ID1",
            env_id: Some("env-42"),
            full: false,
        };
        let b = super::bounce(&r, original, &f);
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
        assert!(text.contains("Original-Envelope-Id: env-42"));
        assert!(text.contains("Original-Recipient: rfc822;X@Remote.Example"));
        r.full = true;
        let full = String::from_utf8(super::bounce(&r, original, &f)).unwrap();
        assert!(full.contains("Content-Type: message/rfc822") && full.contains("secret body"));
    }
}
