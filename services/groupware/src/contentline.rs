//! Content lines of vCard (RFC 6350 3) and iCalendar (RFC 5545 3.1), kept as the text
//! they are. The parsers of calcard read values; these let a device's change replace the
//! lines it owns in a stored card or event while every other line stays byte for byte.

/// Text escaping (RFC 6350 3.4, RFC 5545 3.3.11).
pub fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(';', "\\;")
        .replace('\r', "")
        .replace('\n', "\\n")
}

/// Splits a structured value on unescaped `sep`, unescaping each part.
pub fn split(v: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') | Some('N') => out.last_mut().unwrap().push('\n'),
                Some(o) => out.last_mut().unwrap().push(o),
                None => {}
            },
            c if c == sep => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// A text value unescaped.
pub fn unescape(v: &str) -> String {
    split(v, '\u{0}').concat()
}

/// Lines unfolded (RFC 6350 3.2), without their line ends; empty lines dropped.
pub fn unfold(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if (l.starts_with(' ') || l.starts_with('\t')) && !out.is_empty() {
            out.last_mut().unwrap().push_str(&l[1..]);
        } else if !l.is_empty() {
            out.push(l.to_string());
        }
    }
    out
}

/// A line folded at 75 octets, on character boundaries, with its CRLF.
pub fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// One content line: its name (upper case, without group), its TYPE values (lower case),
/// its PREF, its other parameters, and its raw value.
pub struct Line {
    pub raw: String,
    pub name: String,
    pub types: Vec<String>,
    pub pref: u32,
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl Line {
    pub fn parse(raw: &str) -> Line {
        // The value starts at the first ':' outside a quoted parameter value.
        let mut quoted = false;
        let colon = raw
            .char_indices()
            .find(|(_, c)| {
                if *c == '"' {
                    quoted = !quoted;
                }
                *c == ':' && !quoted
            })
            .map_or(raw.len(), |(i, _)| i);
        let (head, value) = raw.split_at(colon);
        let value = value.strip_prefix(':').unwrap_or("").to_string();
        let mut parts = head.split(';');
        let name = parts.next().unwrap_or("");
        let name = name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase();
        let mut types = Vec::new();
        let mut pref = 100;
        let mut params = Vec::new();
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim_matches('"');
            match k.to_ascii_uppercase().as_str() {
                "TYPE" => types.extend(v.split(',').map(|t| t.to_ascii_lowercase())),
                "PREF" => pref = v.parse().unwrap_or(100),
                // vCard 3: TYPE values without TYPE=.
                k if v.is_empty() => types.push(k.to_ascii_lowercase()),
                k => params.push((k.to_string(), v.to_string())),
            }
        }
        Line {
            raw: raw.to_string(),
            name,
            types,
            pref,
            params,
            value,
        }
    }

    /// A parameter's value, by upper-case name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw line with one parameter set (replaced where it was, else added last), the rest
/// of the line as it was.
pub fn set_param(raw: &str, name: &str, value: &str) -> String {
    // Split the head into its ';'-separated parts, minding quoted values.
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut rest = "";
    for (i, c) in raw.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().unwrap().push(c);
            }
            ';' if !quoted => parts.push(String::new()),
            ':' if !quoted => {
                rest = &raw[i..];
                break;
            }
            c => parts.last_mut().unwrap().push(c),
        }
    }
    let mut found = false;
    for p in parts.iter_mut().skip(1) {
        let key = p.split('=').next().unwrap_or("");
        if key.eq_ignore_ascii_case(name) {
            *p = format!("{name}={value}");
            found = true;
        }
    }
    if !found {
        parts.push(format!("{name}={value}"));
    }
    format!("{}{rest}", parts.join(";"))
}

/// The lines of a card or of a component's own properties.
pub fn lines(text: &str) -> Vec<Line> {
    unfold(text).iter().map(|l| Line::parse(l)).collect()
}

/// An iCalendar component as its raw property lines and its sub-components, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Comp {
    pub name: String,
    pub props: Vec<String>,
    pub subs: Vec<Comp>,
}

impl Comp {
    pub fn new(name: &str) -> Comp {
        Comp {
            name: name.to_string(),
            props: Vec::new(),
            subs: Vec::new(),
        }
    }

    /// The VCALENDAR of a text; None when BEGIN and END do not pair up, or components nest
    /// deeper than `limits.component_depth` (VCALENDAR > VEVENT > VALARM is 3; writing and
    /// dropping a tree recurse over it).
    pub fn parse(text: &str) -> Option<Comp> {
        let mut stack: Vec<Comp> = Vec::new();
        let mut done = None;
        for l in unfold(text) {
            let line = Line::parse(&l);
            match line.name.as_str() {
                "BEGIN" if stack.len() >= bureau_core::limits::get().component_depth => {
                    return None;
                }
                "BEGIN" => stack.push(Comp::new(&line.value.to_ascii_uppercase())),
                "END" => {
                    let c = stack.pop()?;
                    if !c.name.eq_ignore_ascii_case(&line.value) {
                        return None;
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.subs.push(c),
                        None => done = Some(c),
                    }
                }
                _ => stack.last_mut()?.props.push(l),
            }
        }
        done.filter(|_| stack.is_empty())
    }

    pub fn write(&self, out: &mut String) {
        fold(&format!("BEGIN:{}", self.name), out);
        for p in &self.props {
            fold(p, out);
        }
        for s in &self.subs {
            s.write(out);
        }
        fold(&format!("END:{}", self.name), out);
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// The first property of this name, parsed.
    pub fn get(&self, name: &str) -> Option<Line> {
        self.props
            .iter()
            .map(|p| Line::parse(p))
            .find(|l| l.name == name)
    }

    /// Takes out every property with one of these names.
    pub fn remove(&mut self, names: &[&str]) {
        self.props
            .retain(|p| !names.contains(&Line::parse(p).name.as_str()));
    }

    /// Sets the one property of this name (added at the end when missing).
    pub fn set(&mut self, name: &str, line: String) {
        let at = self.props.iter().position(|p| Line::parse(p).name == name);
        self.remove(&[name]);
        match at {
            Some(i) => self.props.insert(i.min(self.props.len()), line),
            None => self.props.push(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_read_and_write_back() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:A very long title that goes on and on past the seventy-five octet limit of a line\r\nBEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let c = Comp::parse(text).unwrap();
        assert_eq!(c.subs[0].subs[0].name, "VALARM");
        assert_eq!(Comp::parse(&c.text()).unwrap(), c);
        assert!(c.text().lines().all(|l| l.len() <= 75));
        assert!(Comp::parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n").is_none());
        let deep = "BEGIN:X\r\n".repeat(10_000) + &"END:X\r\n".repeat(10_000);
        assert!(Comp::parse(&deep).is_none());
        let l = Line::parse("DTSTART;TZID=\"Europe/Paris\":20261201T090000");
        assert_eq!(
            (l.param("TZID"), l.value.as_str()),
            (Some("Europe/Paris"), "20261201T090000")
        );
        assert_eq!(
            set_param(
                "ATTENDEE;CN=\"Doe; John\";PARTSTAT=NEEDS-ACTION:mailto:j@x",
                "PARTSTAT",
                "ACCEPTED"
            ),
            "ATTENDEE;CN=\"Doe; John\";PARTSTAT=ACCEPTED:mailto:j@x"
        );
        assert_eq!(
            set_param("ATTENDEE:mailto:j@x", "PARTSTAT", "DECLINED"),
            "ATTENDEE;PARTSTAT=DECLINED:mailto:j@x"
        );
    }
}

/// Property tests of the line editor: any text parses or is refused without panic, and a
/// component written out parses back to itself.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("BEGIN:VCALENDAR".to_string()),
            Just("END:VCALENDAR".to_string()),
            Just("BEGIN:VEVENT".to_string()),
            Just("END:VEVENT".to_string()),
            Just("BEGIN:VALARM".to_string()),
            Just("END:VALARM".to_string()),
            "[A-Z-]{1,8}(;[A-Z]{1,4}=(\"[^\"\r\n]{0,6}\"|[a-z,]{0,6})){0,2}:[^\r\n]{0,90}",
            "[ \t][^\r\n]{0,20}",
            "[^\r\n]{0,20}",
        ]
    }

    fn comp(depth: u32) -> BoxedStrategy<Comp> {
        // BEGIN and END lines are structure, not properties.
        let prop = "[A-Z]{1,6}(;X=\"a;b\")?:[^\r\n]{0,100}".prop_filter("a property", |p| {
            !matches!(Line::parse(p).name.as_str(), "BEGIN" | "END")
        });
        let props = prop::collection::vec(prop, 0..4);
        if depth == 0 {
            return ("[A-Z]{1,6}", props)
                .prop_map(|(name, props)| Comp {
                    name,
                    props,
                    subs: vec![],
                })
                .boxed();
        }
        (
            "[A-Z]{1,6}",
            props,
            prop::collection::vec(comp(depth - 1), 0..3),
        )
            .prop_map(|(name, props, subs)| Comp { name, props, subs })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text(lines in prop::collection::vec(line(), 0..60), crlf in any::<bool>()) {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            if let Some(c) = Comp::parse(&text) {
                prop_assert_eq!(Comp::parse(&c.text()), Some(c));
            }
            let _ = lines_of(&text);
        }

        #[test]
        fn written_components_read_back(c in comp(3)) {
            prop_assert_eq!(Comp::parse(&c.text()), Some(c));
        }
    }

    fn lines_of(text: &str) -> usize {
        super::lines(text)
            .iter()
            .filter_map(|l| l.param("X"))
            .count()
    }
}
