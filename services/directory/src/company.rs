//! The company address book: a vCard for every enabled user, in an address book the
//! directory keeps and every user may read. It is an ordinary store collection (owned by
//! the principal `_company`, which no user or group can be named, since names begin with a
//! letter), so CardDAV serves it with ETags and sync like any shared address book, and
//! ActiveSync's GAL and LDAP's contacts can read it. The cards follow the users: made,
//! changed and removed after each change to them, and brought in line at start.

use crate::{Directory, Result, User};
use bureau_store::{CollectionId, CollectionKind, NewItem, PrincipalKind, Right, StoreError};

/// The principal owning the company address book.
pub const OWNER: &str = "_company";
/// The address book's collection name.
pub const BOOK: &str = "directory";

/// vCard text escaping (RFC 6350 3.4).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(';', "\\;")
        .replace('\n', "\\n")
}

/// A user's card: vCard 4.0 with its name, primary address first, then its aliases.
pub fn card(u: &User) -> String {
    let (given, family) = match u.display_name.rsplit_once(' ') {
        Some((g, f)) => (g, f),
        None => ("", u.display_name.as_str()),
    };
    // A room is a location (RFC 6350 6.1.4), equipment a device (RFC 6869).
    let kind = match u.resource.as_ref().map(|r| r.kind) {
        None => "individual",
        Some(crate::ResourceKind::Room) => "location",
        Some(crate::ResourceKind::Equipment) => "device",
    };
    let mut c = format!(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:bureau:user:{}\r\nKIND:{kind}\r\nFN:{}\r\nN:{};{};;;\r\n",
        u.uid,
        esc(&u.display_name),
        esc(family),
        esc(given)
    );
    c.push_str(&format!("EMAIL;TYPE=work;PREF=1:{}\r\n", u.address));
    if let Some(r) = &u.resource {
        let mut note = Vec::new();
        if let Some(n) = r.capacity {
            note.push(format!("capacity {n}"));
        }
        if let Some(l) = &r.location {
            note.push(l.clone());
        }
        if !note.is_empty() {
            c.push_str(&format!("NOTE:{}\r\n", esc(&note.join(", "))));
        }
    }
    for a in &u.aliases {
        c.push_str(&format!("EMAIL;TYPE=work:{a}\r\n"));
    }
    if let Some(p) = &u.phone {
        c.push_str(&format!("TEL;TYPE=work,voice;VALUE=text:{}\r\n", esc(p)));
    }
    c.push_str("END:VCARD\r\n");
    c
}

/// Whether a card is one the directory made for a user.
fn is_user_card(text: &[u8]) -> bool {
    const MARK: &[u8] = b"UID:urn:bureau:user:";
    text.windows(MARK.len()).any(|w| w == MARK)
}

fn card_name(uid: &str) -> String {
    format!("{uid}.vcf")
}

impl Directory {
    /// The company address book, made (with its owner) if it is not there yet.
    async fn company_book(&self) -> Result<CollectionId> {
        let found = self
            .store
            .reader(bureau_store::Actor::System)
            .and_then(|r| {
                let p = r.principal_by_name(OWNER)?;
                r.collection_by_name(p.id, BOOK)
            });
        match found {
            Ok(c) => return Ok(c.id),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.write(|w| {
            let p = match w.principal_by_name(OWNER) {
                Ok(p) => p,
                Err(StoreError::NotFound) => {
                    w.create_principal(PrincipalKind::Resource, OWNER, None)?
                }
                Err(e) => return Err(e.into()),
            };
            let c = w.create_collection(p.id, CollectionKind::AddressBook, BOOK)?;
            w.set_display_name(c.id, "Company directory")?;
            Ok(c.id)
        })
        .await
    }

    /// Puts a user's card in the company address book (or takes it out if the user is
    /// disabled), and lets the user read the book (an administrator, write it too).
    pub(crate) async fn publish(&self, u: &User) -> Result<()> {
        let book = self.company_book().await?;
        let name = card_name(&u.uid);
        let (principal, enabled) = (u.principal, u.enabled);
        // Administrators keep the office's shared contacts in the book (over CardDAV).
        let right = if u.admin {
            Right::ReadWrite
        } else {
            Right::Read
        };
        if !enabled {
            return self
                .write(move |w| {
                    match w.item_by_name(book, &name) {
                        Ok(i) => w.delete_item(book, i.id)?,
                        Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                    Ok(())
                })
                .await;
        }
        let text = card(u);
        let staged = self
            .store
            .stage(text.as_bytes().to_vec(), bureau_store::Content::Data)
            .await?;
        let blob = staged.blob_ref();
        let uid = format!("urn:bureau:user:{}", u.uid);
        self.store
            .write(bureau_store::Actor::System, vec![staged], move |w| {
                w.grant(book, principal, Some(right))?;
                let props = [(bureau_store::prop::UID.to_string(), uid.clone())].into();
                match w.item_by_name(book, &name) {
                    Ok(i) if i.blob == Some(blob) => {}
                    Ok(i) => {
                        w.update_item(book, i.id, None, |it| it.blob = Some(blob))?;
                    }
                    Err(StoreError::NotFound) => {
                        w.put_item(
                            book,
                            NewItem {
                                name: Some(name.clone()),
                                blob: Some(blob),
                                props,
                                ..Default::default()
                            },
                        )?;
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(())
            })
            .await
    }

    /// Takes a deleted user's card out of the company address book.
    pub(crate) async fn unpublish(&self, uid: &str) -> Result<()> {
        let book = self.company_book().await?;
        let name = card_name(uid);
        self.write(move |w| {
            match w.item_by_name(book, &name) {
                Ok(i) => w.delete_item(book, i.id)?,
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(())
        })
        .await
    }

    /// Brings the company address book in line with the users (at start: for users made
    /// before it existed, or a change whose card update did not land).
    pub async fn sync_company_book(&self) -> Result<()> {
        let book = self.company_book().await?;
        let mut users = self.users()?;
        users.extend(self.resources()?);
        for u in &users {
            self.publish(u).await?;
        }
        let known: std::collections::HashSet<String> =
            users.iter().map(|u| card_name(&u.uid)).collect();
        // Cards of users who are gone; the book's other cards (shared contacts) stay.
        let r = self.store().reader(bureau_store::Actor::System)?;
        let stale: Vec<u64> = r
            .items(book)?
            .into_iter()
            .filter(|i| i.name.as_ref().is_none_or(|n| !known.contains(n)))
            .filter(|i| r.content(i).is_ok_and(|t| is_user_card(&t)))
            .map(|i| i.id)
            .collect();
        drop(r);
        self.write(move |w| {
            for id in &stale {
                w.delete_item(book, *id)?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_parse_and_escape() {
        let u = User {
            uid: "alice".into(),
            principal: 1,
            address: "alice@example.com".into(),
            display_name: "Alice Martin; Sales, Paris".into(),
            aliases: vec!["a.martin@example.com".into()],
            quota: None,
            enabled: true,
            admin: false,
            created: 0,
            phone: Some("+33 1 23 45 67 89".into()),
            resource: None,
            syncml: true,
        };
        let c = card(&u);
        assert!(c.contains("FN:Alice Martin\\; Sales\\, Paris\r\n"));
        assert!(c.contains("EMAIL;TYPE=work:a.martin@example.com\r\n"));
        assert!(c.contains("TEL;TYPE=work,voice;VALUE=text:+33 1 23 45 67 89\r\n"));
        let parsed = calcard::vcard::VCard::parse(&c).unwrap();
        assert_eq!(parsed.uid(), Some("urn:bureau:user:alice"));
    }
}

/// A card of the company address book, as LDAP's ou=contacts shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompanyContact {
    pub name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub org: Option<String>,
}

impl Directory {
    /// The company address book's cards other than the users' own (which LDAP has as
    /// people already): the office's shared contacts.
    /// The company address book's modseq (0 before it exists): what the LDAP tree, built
    /// from it, is as fresh as.
    pub fn company_book_modseq(&self) -> Result<u64> {
        let r = self.store().reader(bureau_store::Actor::System)?;
        match r
            .principal_by_name(OWNER)
            .and_then(|p| r.collection_by_name(p.id, BOOK))
        {
            Ok(c) => Ok(c.modseq),
            Err(StoreError::NotFound) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    pub fn company_contacts(&self) -> Result<Vec<CompanyContact>> {
        use calcard::vcard::{VCard, VCardProperty as P};
        let r = self.store().reader(bureau_store::Actor::System)?;
        let owner = match r.principal_by_name(OWNER) {
            Ok(p) => p,
            Err(StoreError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let book = match r.collection_by_name(owner.id, BOOK) {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for item in r.items(book.id)? {
            let data = r.content(&item)?;
            if is_user_card(&data) {
                continue;
            }
            let text = String::from_utf8_lossy(&data).into_owned();
            let Ok(card) = VCard::parse(&text) else {
                continue;
            };
            let values = |p: P| -> Vec<String> {
                card.entries
                    .iter()
                    .filter(|e| e.name == p)
                    .filter_map(|e| e.values.first()?.as_text().map(str::to_string))
                    .collect()
            };
            out.push(CompanyContact {
                name: values(P::Fn).into_iter().next().unwrap_or_default(),
                emails: values(P::Email),
                phones: values(P::Tel),
                org: values(P::Org).into_iter().next(),
            });
        }
        Ok(out)
    }
}
