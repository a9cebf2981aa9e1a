//! The DATA phase's reader (RFC 5321 4.1.1.4, 4.5.2), sans-I/O: bytes in, the message out
//! with dot-stuffing removed, and the end found.
//!
//! Only `<CR><LF>.<CR><LF>` ends the message. Every other line that looks like an end
//! (`.<CR><CR><LF>`, `<LF>.<LF>`, `<LF>.<CR><LF>`, `.<CR>` and more) stays message content,
//! so bytes an attacker put after it are never read as commands; such a message then holds
//! a bare CR or LF and is refused whole at its real end. This is the defence against SMTP
//! smuggling (CVE-2023-51764 and kin): sender and receiver must agree where a message ends,
//! and the only end every other implementation agrees on is the standard one.

/// Where the reader is within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// After `<CR><LF>`, or the start of the data: a `.` here is special.
    LineStart,
    /// Within a line.
    Mid,
    /// After a CR within a line.
    Cr,
    /// After a `.` at the start of a line (withheld).
    Dot,
    /// After `.<CR>` at the start of a line (both withheld).
    DotCr,
}

pub(crate) struct DataReader {
    at: At,
}

impl DataReader {
    pub(crate) fn new() -> DataReader {
        DataReader { at: At::LineStart }
    }

    /// Appends the message bytes of `input` to `out`; returns how many bytes of `input` it
    /// took and whether the end was reached (the rest of `input` is the next command).
    pub(crate) fn ingest(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            if self.at == At::Mid {
                // The common case: copy up to the next CR in one go.
                match input[i..].iter().position(|b| *b == b'\r') {
                    Some(p) => {
                        out.extend_from_slice(&input[i..=i + p]);
                        i += p + 1;
                        self.at = At::Cr;
                    }
                    None => {
                        out.extend_from_slice(&input[i..]);
                        return (input.len(), false);
                    }
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.at = match (self.at, b) {
                (At::LineStart, b'.') => At::Dot,
                (At::DotCr, b'\n') => {
                    self.at = At::LineStart;
                    return (i, true);
                }
                // A line that starts with "." and goes on: the dot was stuffing (4.5.2).
                (At::Dot, b'\r') => At::DotCr,
                (At::DotCr, _) => {
                    out.push(b'\r');
                    out.push(b);
                    if b == b'\r' { At::Cr } else { At::Mid }
                }
                (_, b'\r') => {
                    out.push(b);
                    At::Cr
                }
                (At::Cr, b'\n') => {
                    out.push(b);
                    At::LineStart
                }
                _ => {
                    out.push(b);
                    At::Mid
                }
            };
        }
        (input.len(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::DataReader;

    /// Feeds `input` in pieces of `step` bytes; the message and what follows it.
    fn read(input: &[u8], step: usize) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut r = DataReader::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            let (n, done) = r.ingest(&input[pos..end], &mut out);
            if done {
                return (out, Some(input[pos + n..].to_vec()));
            }
            assert_eq!(n, end - pos);
            pos = end;
        }
        (out, None)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        for step in [1, 2, 3, 7, 1000] {
            let (m, rest) = read(b"Subject: a\r\n\r\nhi\r\n.\r\nQUIT\r\n", step);
            assert_eq!(m, b"Subject: a\r\n\r\nhi\r\n");
            assert_eq!(rest.unwrap(), b"QUIT\r\n");
            // An empty message.
            let (m, rest) = read(b".\r\nNOOP\r\n", step);
            assert_eq!(
                (m.as_slice(), rest.unwrap().as_slice()),
                (&b""[..], &b"NOOP\r\n"[..])
            );
        }
    }

    #[test]
    fn removes_dot_stuffing() {
        let (m, rest) = read(b"a\r\n..b\r\n.\r\r\n...\r\n.\r\n", 1);
        assert_eq!(m, b"a\r\n.b\r\n\r\r\n..\r\n");
        assert_eq!(rest.unwrap(), b"");
    }

    /// Defect 4 of issue 17: `<CR><LF>.<CR><CR><LF>` ended DATA, and what followed ran as
    /// commands. Every near-end stays content; nothing after it is a command.
    #[test]
    fn smuggling_forms_stay_content() {
        let forms: [&[u8]; 7] = [
            b"\r\n.\r\r\n",
            b"\n.\n",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
            b"\r.\r\n",
            b"\r\n\x00.\r\n",
        ];
        for form in forms {
            let mut input = b"Subject: x\r\n\r\nhello".to_vec();
            input.extend_from_slice(form);
            input.extend_from_slice(
                b"MAIL FROM:<ceo@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n",
            );
            for step in [1, 5, 4096] {
                let (m, rest) = read(&input, step);
                assert!(rest.is_none(), "{form:?} ended the message");
                assert!(m.ends_with(b"DATA\r\n"), "{form:?}");
            }
        }
    }
}

/// Property tests of the DATA reader against a plain model: however the bytes are cut, the
/// message ends at the first CRLF.CRLF and nowhere else, with the stuffing dots removed.
#[cfg(test)]
mod fuzz {
    use super::DataReader;
    use proptest::prelude::*;

    /// The end by the RFC: the first "." line, counting the start as after a CRLF.
    fn model(input: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(input);
        let at = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
        let content = &framed[2..at + 2];
        let mut out = Vec::new();
        for (i, b) in content.iter().enumerate() {
            let line_start = i == 0 || (i >= 2 && &content[i - 2..i] == b"\r\n");
            if !(line_start && *b == b'.') {
                out.push(*b);
            }
        }
        Some((out, at + 3))
    }

    fn byte() -> impl Strategy<Value = u8> {
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a'), Just(0u8)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn agrees_with_the_model(input in prop::collection::vec(byte(), 0..64), cut in 1usize..9) {
            let mut r = DataReader::new();
            let mut out = Vec::new();
            let mut got = None;
            let mut pos = 0;
            while pos < input.len() {
                let end = (pos + cut).min(input.len());
                let (n, done) = r.ingest(&input[pos..end], &mut out);
                if done {
                    got = Some(pos + n);
                    break;
                }
                pos = end;
            }
            match model(&input) {
                Some((msg, end)) => {
                    prop_assert_eq!(got, Some(end));
                    prop_assert_eq!(out, msg);
                }
                None => prop_assert_eq!(got, None),
            }
        }
    }
}
