//! Property filters of calendar-query (RFC 4791 9.7.2-9.7.5) and addressbook-query
//! (RFC 6352 10.5): prop-filter with is-not-defined, text-match and param-filter, over the
//! properties of a parsed iCalendar component or vCard.

use crate::http::{Resp, dav_error};
use crate::xml::Element;
use hyper::StatusCode;

/// A property as filters see it.
pub(crate) struct PropView {
    pub name: String,
    pub values: Vec<String>,
    pub params: Vec<(String, String)>,
}

impl PropView {
    pub(crate) fn of_ical(e: &calcard::icalendar::ICalendarEntry) -> PropView {
        PropView {
            name: e.name.as_str().to_ascii_uppercase(),
            values: e
                .values
                .iter()
                .filter_map(|v| v.clone().into_text().map(|t| t.into_owned()))
                .collect(),
            params: e
                .params
                .iter()
                .map(|p| param(p.name.as_str(), p.value.as_text()))
                .collect(),
        }
    }

    pub(crate) fn of_vcard(e: &calcard::vcard::VCardEntry) -> PropView {
        PropView {
            name: e.name.as_str().to_ascii_uppercase(),
            values: e
                .values
                .iter()
                .filter_map(|v| v.as_text().map(str::to_string))
                .collect(),
            params: e
                .params
                .iter()
                .map(|p| param(p.name.as_str(), p.value.as_text()))
                .collect(),
        }
    }
}

fn param(name: &str, value: Option<&str>) -> (String, String) {
    (
        name.to_ascii_uppercase(),
        value.unwrap_or_default().to_string(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MatchType {
    Contains,
    Equals,
    StartsWith,
    EndsWith,
}

#[derive(Debug)]
struct TextMatch {
    needle: String,
    /// i;octet: exact; otherwise case folded.
    exact: bool,
    negate: bool,
    how: MatchType,
}

impl TextMatch {
    fn of(e: &Element, ns: &str) -> Result<TextMatch, Resp> {
        let exact = match e.attr("collation") {
            None | Some("i;ascii-casemap") | Some("i;unicode-casemap") => false,
            Some("i;octet") => true,
            Some(_) => return Err(dav_error(StatusCode::FORBIDDEN, ns, "supported-collation")),
        };
        let how = match e.attr("match-type") {
            None | Some("contains") => MatchType::Contains,
            Some("equals") => MatchType::Equals,
            Some("starts-with") => MatchType::StartsWith,
            Some("ends-with") => MatchType::EndsWith,
            Some(_) => return Err(dav_error(StatusCode::FORBIDDEN, ns, "supported-filter")),
        };
        let needle = if exact {
            e.text.clone()
        } else {
            e.text.to_lowercase()
        };
        Ok(TextMatch {
            needle,
            exact,
            negate: e.attr("negate-condition") == Some("yes"),
            how,
        })
    }

    fn hits(&self, value: &str) -> bool {
        let v = if self.exact {
            value.to_string()
        } else {
            value.to_lowercase()
        };
        let found = match self.how {
            MatchType::Contains => v.contains(&self.needle),
            MatchType::Equals => v == self.needle,
            MatchType::StartsWith => v.starts_with(&self.needle),
            MatchType::EndsWith => v.ends_with(&self.needle),
        };
        found != self.negate
    }
}

#[derive(Debug)]
struct ParamFilter {
    name: String,
    not_defined: bool,
    text: Option<TextMatch>,
}

#[derive(Debug)]
pub(crate) struct PropFilter {
    name: String,
    not_defined: bool,
    texts: Vec<TextMatch>,
    params: Vec<ParamFilter>,
    /// Every test must hold: CalDAV's always, CardDAV's with test="allof" (else any).
    all: bool,
}

impl PropFilter {
    /// The prop-filter children of a comp-filter or CardDAV filter, in namespace `ns`.
    pub(crate) fn list(parent: &Element, ns: &str) -> Result<Vec<PropFilter>, Resp> {
        let bad = || dav_error(StatusCode::FORBIDDEN, ns, "valid-filter");
        let mut out = Vec::new();
        for pf in parent.children_named(ns, "prop-filter") {
            let name = pf.attr("name").ok_or_else(bad)?.to_ascii_uppercase();
            if pf.child(ns, "time-range").is_some() {
                return Err(dav_error(StatusCode::FORBIDDEN, ns, "supported-filter"));
            }
            let texts = pf
                .children_named(ns, "text-match")
                .map(|t| TextMatch::of(t, ns))
                .collect::<Result<Vec<_>, _>>()?;
            let mut params = Vec::new();
            for p in pf.children_named(ns, "param-filter") {
                params.push(ParamFilter {
                    name: p.attr("name").ok_or_else(bad)?.to_ascii_uppercase(),
                    not_defined: p.child(ns, "is-not-defined").is_some(),
                    text: p
                        .child(ns, "text-match")
                        .map(|t| TextMatch::of(t, ns))
                        .transpose()?,
                });
            }
            out.push(PropFilter {
                name,
                not_defined: pf.child(ns, "is-not-defined").is_some(),
                texts,
                params,
                all: ns != crate::xml::CARDDAV || pf.attr("test") == Some("allof"),
            });
        }
        Ok(out)
    }

    /// Whether the properties of one component or card pass this filter.
    pub(crate) fn matches(&self, props: &[PropView]) -> bool {
        let named: Vec<&PropView> = props.iter().filter(|p| p.name == self.name).collect();
        if self.not_defined {
            return named.is_empty();
        }
        if named.is_empty() {
            return false;
        }
        if self.texts.is_empty() && self.params.is_empty() {
            return true;
        }
        // Each test holds for some instance of the property.
        let text_results = self
            .texts
            .iter()
            .map(|t| named.iter().any(|p| p.values.iter().any(|v| t.hits(v))));
        let param_results = self.params.iter().map(|pf| {
            named.iter().any(|p| {
                let values: Vec<&String> = p
                    .params
                    .iter()
                    .filter(|(n, _)| *n == pf.name)
                    .map(|(_, v)| v)
                    .collect();
                if pf.not_defined {
                    return values.is_empty();
                }
                match &pf.text {
                    None => !values.is_empty(),
                    Some(t) => values.iter().any(|v| t.hits(v)),
                }
            })
        });
        let mut results = text_results.chain(param_results);
        if self.all {
            results.all(|x| x)
        } else {
            results.any(|x| x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, value: &str, params: &[(&str, &str)]) -> PropView {
        PropView {
            name: name.into(),
            values: vec![value.into()],
            params: params
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn filters(xml: &str, ns: &str) -> Vec<PropFilter> {
        let e = crate::xml::parse(xml.as_bytes()).unwrap();
        PropFilter::list(&e, ns).unwrap()
    }

    #[test]
    fn text_match_param_filter_and_is_not_defined() {
        let props = [
            view("SUMMARY", "Budget Review", &[]),
            view(
                "ATTENDEE",
                "mailto:bob@example.com",
                &[("PARTSTAT", "ACCEPTED")],
            ),
        ];
        let c = crate::xml::CALDAV;
        let f = filters(
            &format!(
                "<c:comp-filter xmlns:c=\"{c}\" name=\"VEVENT\"><c:prop-filter name=\"SUMMARY\"><c:text-match>budget</c:text-match></c:prop-filter></c:comp-filter>"
            ),
            c,
        );
        assert!(f[0].matches(&props));
        let f = filters(
            &format!(
                "<c:comp-filter xmlns:c=\"{c}\" name=\"VEVENT\"><c:prop-filter name=\"SUMMARY\"><c:text-match collation=\"i;octet\">budget</c:text-match></c:prop-filter></c:comp-filter>"
            ),
            c,
        );
        assert!(!f[0].matches(&props));
        let f = filters(
            &format!(
                "<c:comp-filter xmlns:c=\"{c}\" name=\"VEVENT\"><c:prop-filter name=\"ATTENDEE\"><c:param-filter name=\"PARTSTAT\"><c:text-match>NEEDS-ACTION</c:text-match></c:param-filter></c:prop-filter><c:prop-filter name=\"LOCATION\"><c:is-not-defined/></c:prop-filter></c:comp-filter>"
            ),
            c,
        );
        assert!(!f[0].matches(&props));
        assert!(f[1].matches(&props));
        let f = filters(
            &format!(
                "<c:comp-filter xmlns:c=\"{c}\" name=\"VEVENT\"><c:prop-filter name=\"SUMMARY\"><c:text-match negate-condition=\"yes\">party</c:text-match></c:prop-filter></c:comp-filter>"
            ),
            c,
        );
        assert!(f[0].matches(&props));
    }

    #[test]
    fn carddav_match_types_and_anyof() {
        let a = crate::xml::CARDDAV;
        let props = [view("EMAIL", "alice@example.com", &[("TYPE", "work")])];
        let f = filters(
            &format!(
                "<a:filter xmlns:a=\"{a}\"><a:prop-filter name=\"EMAIL\"><a:text-match match-type=\"starts-with\">ALI</a:text-match><a:text-match match-type=\"equals\">x</a:text-match></a:prop-filter></a:filter>"
            ),
            a,
        );
        assert!(f[0].matches(&props), "anyof by default");
        let f = filters(
            &format!(
                "<a:filter xmlns:a=\"{a}\"><a:prop-filter name=\"EMAIL\" test=\"allof\"><a:text-match match-type=\"starts-with\">ALI</a:text-match><a:text-match match-type=\"equals\">x</a:text-match></a:prop-filter></a:filter>"
            ),
            a,
        );
        assert!(!f[0].matches(&props));
    }
}
