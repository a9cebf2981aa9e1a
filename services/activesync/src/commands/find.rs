//! Searching mail and the GAL: Search's stores "Mailbox" and "GAL" (MS-ASCMD 2.2.1.16,
//! search.rs) and Find (2.2.1.2, 16.1). A mail search looks through the user's own mail folders
//! (one, with its sub-folders under DeepTraversal, or all), for messages whose subject,
//! addresses and text hold every word of the free text, within DateReceived bounds; newest
//! first. The store's term index names the messages that can match; only those are read.
//! A result's LongId is its ServerId, which ItemOperations and SmartReply take.

use crate::classes::email;
use crate::formats::body::BodyPreference;
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, CollectionKind, Item, Reader, StoreError};

/// Most results one answer carries.
const MAX_RANGE: usize = 100;

/// What to look for.
#[derive(Default)]
struct Query {
    folder: Option<String>,
    words: Vec<String>,
    after: Option<i64>,
    before: Option<i64>,
    class_ok: bool,
}

fn date(e: &Element) -> Option<i64> {
    crate::classes::calendar::parse_time(&e.child_value("Value")?).map(|t| t.and_utc().timestamp())
}

impl Query {
    fn read(q: &Element) -> Query {
        let mut out = Query {
            class_ok: true,
            ..Default::default()
        };
        out.gather(q);
        out
    }

    fn gather(&mut self, e: &Element) {
        for c in e.elements() {
            match c.name {
                "And" | "Or" => self.gather(c),
                "Class" => self.class_ok &= c.value().trim().eq_ignore_ascii_case("Email"),
                "CollectionId" => self.folder = Some(c.value().trim().to_string()),
                "FreeText" => self.words.extend(
                    c.value()
                        .split_whitespace()
                        .map(|w| w.trim_matches('"').to_lowercase())
                        .filter(|w| !w.is_empty()),
                ),
                "GreaterThan" => self.after = date(c),
                "LessThan" => self.before = date(c),
                _ => {}
            }
        }
    }

    fn matches(&self, item: &Item, raw: &[u8]) -> bool {
        if self.after.is_some_and(|a| item.date <= a) || self.before.is_some_and(|b| item.date >= b)
        {
            return false;
        }
        if self.words.is_empty() {
            return true;
        }
        let Some(m) = bureau_core::mime::parse(raw) else {
            return false;
        };
        let mut hay = String::new();
        hay.push_str(m.subject().unwrap_or_default());
        for a in [m.from(), m.to(), m.cc()].into_iter().flatten() {
            for x in a.iter() {
                hay.push(' ');
                hay.push_str(x.name().unwrap_or_default());
                hay.push(' ');
                hay.push_str(x.address().unwrap_or_default());
            }
        }
        hay.push(' ');
        hay.push_str(&m.body_text(0).unwrap_or_default());
        let hay = hay.to_lowercase();
        self.words.iter().all(|w| hay.contains(w.as_str()))
    }
}

fn range(options: Option<&Element>, name: &str) -> (usize, usize) {
    options
        .and_then(|o| o.child_value(name))
        .and_then(|r| {
            let (a, b) = r.trim().split_once('-')?;
            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
        })
        .filter(|(a, b)| a <= b)
        .map(|(a, b)| (a, b.min(a + MAX_RANGE - 1)))
        .unwrap_or((0, MAX_RANGE - 1))
}

/// A message found, with its text.
type Found = (Item, Vec<u8>);

/// The matching messages, newest first; None when the folder named is not the user's.
fn search_mail(
    eas: &ActiveSync,
    principal: u64,
    q: &Query,
    deep: bool,
) -> Result<Option<Vec<Found>>, StoreError> {
    let r = eas.store().reader(Actor::Principal(principal))?;
    let mailboxes: Vec<_> = r
        .collections_of(principal)?
        .into_iter()
        .filter(|c| c.kind == CollectionKind::Mailbox)
        .collect();
    let folders: Vec<u64> = match &q.folder {
        None => mailboxes.iter().map(|c| c.id).collect(),
        Some(id) => {
            let Some(top) = crate::own_collection(&r, principal, id)?
                .filter(|c| c.kind == CollectionKind::Mailbox)
            else {
                return Ok(None);
            };
            let prefix = format!("{}/", top.name);
            let mut f = vec![top.id];
            if deep {
                f.extend(
                    mailboxes
                        .iter()
                        .filter(|c| c.name.starts_with(&prefix))
                        .map(|c| c.id),
                );
            }
            f
        }
    };
    let mut found = Vec::new();
    for f in folders {
        let items = match candidates(&r, f, &q.words)? {
            None => r.items(f)?,
            Some(ids) => {
                let mut items = Vec::with_capacity(ids.len());
                for id in ids {
                    match r.item(f, id) {
                        Ok(it) => items.push(it),
                        Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                items
            }
        };
        for it in items {
            let raw = r.content(&it)?;
            if q.matches(&it, &raw) {
                found.push((it, raw));
            }
        }
    }
    found.sort_by_key(|(it, _)| std::cmp::Reverse(it.date));
    Ok(Some(found))
}

/// The messages of a folder that may hold every word, from the store's term index (each
/// word in the subject, an address field or the text, as `Query::matches` reads them), or
/// `None` when no word can narrow the search.
fn candidates(r: &Reader, folder: u64, words: &[String]) -> Result<Option<Vec<u64>>, StoreError> {
    use bureau_core::mailsearch::{BODY, CC, FROM, SUBJECT, TO};
    use bureau_store::terms::Narrow;
    let each = words.iter().map(|w| {
        Narrow::Or(
            [SUBJECT, FROM, TO, CC, BODY]
                .into_iter()
                .map(|f| Narrow::Term(f, w.as_bytes().to_vec()))
                .collect(),
        )
    });
    r.term_candidates(folder, &Narrow::And(each.collect()))
}

/// Search of the mailbox; `store` is the request's Store element.
pub fn search_mailbox(
    eas: &ActiveSync,
    cx: &Context,
    store: &Element,
) -> Result<Element, StoreError> {
    let answer = |s: &str| Element::new(page::SEARCH, "Store").with_text("Status", s);
    let Some(query) = store.child("Query") else {
        return Ok(answer("2"));
    };
    let q = Query::read(query);
    let options = store.child("Options");
    if !q.class_ok {
        return Ok(answer("2"));
    }
    let deep = options.is_some_and(|o| o.child("DeepTraversal").is_some());
    let Some(found) = search_mail(eas, cx.user.principal, &q, deep)? else {
        return Ok(answer("2"));
    };
    let pref = BodyPreference::from_options(options);
    let (from, to) = range(options, "Range");
    let mut out = answer("1");
    let shown: Vec<_> = found.iter().skip(from).take(to - from + 1).collect();
    let view = eas.view(cx);
    for (it, raw) in &shown {
        let data = email::application_data(it, raw, &pref, &view);
        let mut props = Element::new(page::SEARCH, "Properties");
        props.children = data.children;
        out = out.with(
            Element::new(page::SEARCH, "Result")
                .with(Element::new(page::AIRSYNC, "Class").text("Email"))
                .with(
                    Element::new(page::SEARCH, "LongId")
                        .text(crate::server_id(it.collection, it.id)),
                )
                .with(Element::new(page::AIRSYNC, "CollectionId").text(it.collection.to_string()))
                .with(props),
        );
    }
    if !shown.is_empty() {
        out = out.with_text("Range", format!("{from}-{}", from + shown.len() - 1));
    }
    Ok(out.with_text("Total", found.len().to_string()))
}

/// Enabled users of the directory whose name, uid, address or alias starts with the query,
/// by name: those in `from..=to` as Search Properties, and how many there are.
pub fn gal(
    eas: &ActiveSync,
    query: &str,
    from: usize,
    to: usize,
) -> Result<(Vec<Element>, usize), StoreError> {
    let query = query.trim().to_lowercase();
    let users = eas
        .auth
        .directory()
        .calendar_users()
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let mut found: Vec<_> = users
        .into_iter()
        .filter(|u| u.enabled && !query.is_empty())
        .filter(|u| {
            let words = u.display_name.to_lowercase();
            words.split_whitespace().any(|w| w.starts_with(&query))
                || words.starts_with(&query)
                || u.uid.starts_with(&query)
                || u.address.starts_with(&query)
                || u.aliases.iter().any(|a| a.starts_with(&query))
        })
        .collect();
    found.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
    });
    let total = found.len();
    let results: Vec<Element> = found
        .iter()
        .skip(from)
        .take(to.saturating_sub(from) + 1)
        .map(|u| {
            let (first, last) = match u.display_name.rsplit_once(' ') {
                Some((f, l)) => (f.to_string(), l.to_string()),
                None => (String::new(), u.display_name.clone()),
            };
            let mut p = Element::new(page::SEARCH, "Properties")
                .with(Element::new(page::GAL, "DisplayName").text(u.display_name.clone()))
                .with(Element::new(page::GAL, "Alias").text(u.uid.clone()))
                .with(Element::new(page::GAL, "EmailAddress").text(u.address.clone()));
            if !first.is_empty() {
                p = p.with(Element::new(page::GAL, "FirstName").text(first));
            }
            p = p.with(Element::new(page::GAL, "LastName").text(last));
            if let Some(phone) = &u.phone {
                p = p.with(Element::new(page::GAL, "Phone").text(phone.clone()));
            }
            // A room's place, where a phone shows a person's office.
            if let Some(place) = u.resource.as_ref().and_then(|r| r.location.clone()) {
                p = p.with(Element::new(page::GAL, "Office").text(place));
            }
            p
        })
        .collect();
    Ok((results, total))
}

/// Find (16.1): mail by free text, or the GAL.
pub async fn find(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let top = |s: &str| Element::new(page::FIND, "Find").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "Find") else {
        return Ok(document(&top("2")));
    };
    let Some(exec) = doc.child("ExecuteSearch") else {
        return Ok(document(&top("2")));
    };
    let fe = |n: &'static str| Element::new(page::FIND, n);
    let mut response = fe("Response");
    if let Some(crit) = exec.child("MailBoxSearchCriterion") {
        let q = crit.child("Query").map(Query::read).unwrap_or_default();
        let options = crit.child("Options");
        let deep = options.is_some_and(|o| o.child("DeepTraversal").is_some());
        if q.words.is_empty() || !q.class_ok {
            return Ok(document(&top("2")));
        }
        let Some(found) = search_mail(eas, cx.user.principal, &q, deep)? else {
            return Ok(document(&top("2")));
        };
        let (from, to) = range(options, "Range");
        response = response.with_text("Status", "1");
        let shown: Vec<_> = found.iter().skip(from).take(to - from + 1).collect();
        for (it, raw) in &shown {
            let Some(m) = bureau_core::mime::parse(raw.as_slice()) else {
                continue;
            };
            let names = |a: Option<&mail_parser::Address>| {
                a.map(|a| {
                    a.iter()
                        .map(|x| x.name().or(x.address()).unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
            };
            let preview: String = m
                .body_text(0)
                .unwrap_or_default()
                .chars()
                .take(255)
                .collect();
            let props = fe("Properties")
                .with(Element::new(page::EMAIL, "Subject").text(m.subject().unwrap_or_default()))
                .with(
                    Element::new(page::EMAIL, "DateReceived")
                        .text(crate::formats::body::eas_date(it.date)),
                )
                .with(Element::new(page::EMAIL, "DisplayTo").text(names(m.to())))
                .with(fe("DisplayCc").text(names(m.cc())))
                .with(
                    Element::new(page::EMAIL, "Read").text(if email::is_read(it) {
                        "1"
                    } else {
                        "0"
                    }),
                )
                .with(fe("Preview").text(preview))
                .with(fe("HasAttachments").text(if m.attachment_count() > 0 { "1" } else { "0" }))
                .with(Element::new(page::EMAIL, "From").text(names(m.from())));
            response = response.with(
                fe("Result")
                    .with(Element::new(page::AIRSYNC, "Class").text("Email"))
                    .with(
                        Element::new(page::AIRSYNC, "ServerId")
                            .text(crate::server_id(it.collection, it.id)),
                    )
                    .with(
                        Element::new(page::AIRSYNC, "CollectionId").text(it.collection.to_string()),
                    )
                    .with(props),
            );
        }
        if !shown.is_empty() {
            response = response.with_text("Range", format!("{from}-{}", from + shown.len() - 1));
        }
        response = response.with_text("Total", found.len().to_string());
    } else if let Some(crit) = exec.child("GalSearchCriterion") {
        let query = crit.child_value("Query").unwrap_or_default();
        let (from, to) = range(crit.child("Options"), "Range");
        let (found, total) = gal(eas, &query, from, to)?;
        response = response.with_text("Status", "1");
        let shown = found.len();
        for props in found {
            let mut p = fe("Properties");
            p.children = props.children;
            response = response.with(fe("Result").with(p));
        }
        if shown > 0 {
            response = response.with_text("Range", format!("{from}-{}", from + shown - 1));
        }
        response = response.with_text("Total", total.to_string());
    } else {
        return Ok(document(&top("2")));
    }
    Ok(document(&top("1").with(response)))
}
