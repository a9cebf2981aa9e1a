//! Rooms and equipment: calendar users nobody signs in as, booked by inviting them (RFC 6638
//! scheduling does the booking, in the DAV service). A resource is a `User` record with
//! `resource` set, so that everything that reaches a calendar user (addresses, principal,
//! calendar, free/busy, the company address book, LDAP) reaches it too; it has no password,
//! so no sign-in succeeds, and `Directory::users` leaves it out (Samba, the proxy and the
//! console's user list are for people).

use crate::{
    DirectoryError, NS_ADDR, NS_GROUP, NS_USER, Result, User, addr_target_user, claim_address, get,
    put, validate,
};
use bureau_store::{CollectionKind, PrincipalKind, Right, now};
use bureau_words::said;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Room,
    Equipment,
}

/// How an invitation is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BookingPolicy {
    /// Every invitation is accepted.
    AutoAccept,
    /// Accepted unless it overlaps a booking already accepted; else declined.
    #[default]
    AcceptIfFree,
    /// Left for the manager, who answers in the resource's calendar (shared with it).
    Manager,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub kind: ResourceKind,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub policy: BookingPolicy,
    /// The user who approves bookings, for `Manager`.
    #[serde(default)]
    pub manager: Option<String>,
    /// Users and groups (by name) who may book it; empty: every user here.
    #[serde(default)]
    pub bookers: Vec<String>,
    /// Whether organizers elsewhere may book it by mail (iMIP); else mail from outside
    /// to it is refused.
    #[serde(default)]
    pub external: bool,
}

/// A resource to add: its address and names, and its settings (one flat JSON object).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewResource {
    pub address: String,
    /// Defaults to the address's local part.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(flatten)]
    pub settings: Resource,
}

/// The resource's calendar.
pub const CALENDAR: &str = "calendar";

impl crate::Directory {
    /// Adds a room or equipment: its address, a principal with one calendar (shared
    /// read-write with the manager, if bookings wait for one) and a mailbox for the mail
    /// that reaches it, and its card in the company address book.
    pub async fn add_resource(&self, new: NewResource) -> Result<User> {
        let (local, _) = validate::address("address", &new.address)?;
        let uid = validate::name("uid", new.uid.as_deref().unwrap_or(&local))?;
        let display_name = validate::display_name(new.display_name.as_deref().unwrap_or(&uid))?;
        let s = &new.settings;
        let location = s
            .location
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| validate::display_name(l).map_err(|e| relabel(e, "location")))
            .transpose()?;
        let manager = s
            .manager
            .as_deref()
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty());
        if s.policy == BookingPolicy::Manager && manager.is_none() {
            return Err(crate::validate::invalid(
                "manager",
                said("err_the_manager_policy_needs_a_manager"),
            ));
        }
        let bookers: Vec<String> = s
            .bookers
            .iter()
            .map(|b| b.trim().to_ascii_lowercase())
            .filter(|b| !b.is_empty())
            .collect();
        let resource = Resource {
            location,
            manager,
            bookers,
            ..s.clone()
        };
        let user = self
            .write(move |w| {
                if w.kv_get(NS_USER, &uid)?.is_some() || w.kv_get(NS_GROUP, &uid)?.is_some() {
                    return Err(DirectoryError::Exists {
                        field: "uid",
                        value: uid.clone(),
                    });
                }
                let manager = match &resource.manager {
                    Some(m) => match get::<User>(w, NS_USER, m)? {
                        Some(u) if u.resource.is_none() => Some(u),
                        _ => {
                            return Err(crate::validate::invalid(
                                "manager",
                                said("err_no_user").with("m", m),
                            ));
                        }
                    },
                    None => None,
                };
                for b in &resource.bookers {
                    let user = get::<User>(w, NS_USER, b)?.filter(|u| u.resource.is_none());
                    if user.is_none() && w.kv_get(NS_GROUP, b)?.is_none() {
                        return Err(crate::validate::invalid(
                            "bookers",
                            said("err_no_user_or_group").with("b", b),
                        ));
                    }
                }
                let address = claim_address(w, "address", &new.address, &addr_target_user(&uid))?;
                let p = w.create_principal(PrincipalKind::Resource, &uid, None)?;
                w.create_collection(p.id, CollectionKind::Mailbox, "INBOX")?;
                let cal = w.create_collection(p.id, CollectionKind::Calendar, CALENDAR)?;
                w.set_display_name(cal.id, &display_name)?;
                if let Some(m) = &manager {
                    w.grant(cal.id, m.principal, Some(Right::ReadWrite))?;
                }
                let user = User {
                    uid: uid.clone(),
                    principal: p.id,
                    address,
                    display_name: display_name.clone(),
                    aliases: Vec::new(),
                    quota: None,
                    enabled: true,
                    admin: false,
                    created: now(),
                    phone: None,
                    resource: Some(Box::new(resource.clone())),
                    syncml: false,
                };
                put(w, NS_USER, &uid, &user)?;
                Ok(user)
            })
            .await?;
        self.card_follows(&user).await;
        Ok(user)
    }

    /// Everyone who can be invited: the users, then the rooms and equipment.
    pub fn calendar_users(&self) -> Result<Vec<User>> {
        let (mut people, rooms): (Vec<User>, Vec<User>) = self
            .list::<User>(NS_USER)?
            .into_iter()
            .partition(|u| u.resource.is_none());
        people.extend(rooms);
        Ok(people)
    }

    /// The rooms and equipment.
    pub fn resources(&self) -> Result<Vec<User>> {
        Ok(self
            .list::<User>(NS_USER)?
            .into_iter()
            .filter(|u| u.resource.is_some())
            .collect())
    }

    /// Removes a resource with its calendar.
    pub async fn delete_resource(&self, uid: &str) -> Result<()> {
        let uid = uid.trim().to_ascii_lowercase();
        let gone = uid.clone();
        self.write(move |w| {
            let u: User = get(w, NS_USER, &uid)?
                .filter(|u: &User| u.resource.is_some())
                .ok_or_else(|| {
                    DirectoryError::NotFound(said("err_nf_resource").with("uid", &uid))
                })?;
            w.kv_delete(NS_ADDR, &u.address)?;
            w.delete_principal(u.principal)?;
            w.kv_delete(NS_USER, &uid)?;
            Ok(())
        })
        .await?;
        if let Err(e) = self.unpublish(&gone).await {
            log::warn!("directory: company address book, card of {gone}: {e}");
        }
        Ok(())
    }

    /// Whether `u` may book `resource`: every user when it names no bookers, else those it
    /// names and the members of the groups it names.
    pub fn may_book(&self, resource: &User, u: &User) -> Result<bool> {
        let Some(res) = &resource.resource else {
            return Ok(false);
        };
        if u.resource.is_some() || !u.enabled {
            return Ok(false);
        }
        if res.bookers.is_empty() || res.bookers.contains(&u.uid) {
            return Ok(true);
        }
        for b in &res.bookers {
            if let Some(g) = self.group(b)?
                && g.members.contains(&u.uid)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn relabel(e: DirectoryError, field: &'static str) -> DirectoryError {
    match e {
        DirectoryError::Invalid { message, .. } => DirectoryError::Invalid { field, message },
        e => e,
    }
}
