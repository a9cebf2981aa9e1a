//! The admin API's routes for groups (members, group collections) and for rooms and
//! equipment.

use crate::*;

impl AdminApi {
    /// The routes under `/api/v1/` that are about groups and resources.
    pub(crate) async fn groups_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            // ---- rooms and equipment ----
            (&Method::GET, ["resources"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.dir().resources()?))
            }
            (&Method::POST, ["resources"]) => {
                admin_only(who)?;
                let nr: NewResource = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.dir().add_resource(nr).await?,
                ))
            }
            (&Method::DELETE, ["resources", uid]) => {
                admin_only(who)?;
                self.dir().delete_resource(uid).await?;
                Ok(no_content())
            }
            // ---- groups ----
            (&Method::GET, ["groups"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.dir().groups()?))
            }
            (&Method::POST, ["groups"]) => {
                admin_only(who)?;
                let ng: NewGroup = body(req).await?;
                Ok(json(StatusCode::CREATED, &self.dir().add_group(ng).await?))
            }
            (&Method::GET, ["groups", name]) => {
                admin_only(who)?;
                let g = self.dir().group(name)?.ok_or_else(|| {
                    fail(
                        StatusCode::NOT_FOUND,
                        said("err_group_not_found").with("name", name),
                    )
                })?;
                Ok(json(StatusCode::OK, &g))
            }
            (&Method::PUT, ["groups", name, "members"]) => {
                admin_only(who)?;
                let m: Members = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.dir().set_group_members(name, m.members).await?,
                ))
            }
            (&Method::GET, ["groups", name, "collections"]) => {
                admin_only(who)?;
                Ok(json(
                    StatusCode::OK,
                    &self.collections_of(self.group_principal(name)?)?,
                ))
            }
            (&Method::POST, ["groups", name, "collections"]) => {
                admin_only(who)?;
                let name = name.to_string();
                let new: NewGroupCollection = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.add_group_collection(&name, new).await?,
                ))
            }
            (&Method::DELETE, ["groups", name, "collections", coll]) => {
                admin_only(who)?;
                let p = self.group_principal(name)?;
                let coll = coll.to_string();
                self.dir()
                    .store()
                    .write(Actor::System, vec![], move |w| {
                        let c = w.collection_by_name(p, &coll)?;
                        w.delete_collection(c.id)
                    })
                    .await
                    .map_err(Fail::from)?;
                Ok(no_content())
            }
            (&Method::DELETE, ["groups", name]) => {
                admin_only(who)?;
                self.dir().delete_group(name).await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    fn group_principal(&self, name: &str) -> Result<u64, Fail> {
        Ok(self
            .dir()
            .group(name)?
            .ok_or_else(|| {
                fail(
                    StatusCode::NOT_FOUND,
                    said("err_group_not_found").with("name", name),
                )
            })?
            .principal)
    }

    /// A mailbox, calendar or address book owned by a group, which its members may read
    /// and write (IMAP shows it as Shared/<group>/<name>; DAV lists it in their homes).
    async fn add_group_collection(
        &self,
        group: &str,
        new: NewGroupCollection,
    ) -> Result<CollectionInfo, Fail> {
        let p = self.group_principal(group)?;
        let name = new.name.trim().to_string();
        let ok = (1..=64).contains(&name.chars().count())
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
        if !ok || name.eq_ignore_ascii_case("INBOX") {
            return Err(field_fail(
                "name",
                said("err_1_to_64_letters_digits_spaces"),
            ));
        }
        let kind = match new.kind.as_str() {
            "mailbox" => bureau_store::CollectionKind::Mailbox,
            "calendar" => bureau_store::CollectionKind::Calendar,
            "addressbook" => bureau_store::CollectionKind::AddressBook,
            _ => {
                return Err(field_fail(
                    "kind",
                    said("err_mailbox_calendar_or_addressbook"),
                ));
            }
        };
        let c = self
            .dir()
            .store()
            .write(Actor::System, vec![], move |w| {
                let c = w.create_collection(p, kind, &name)?;
                if kind != bureau_store::CollectionKind::Mailbox {
                    w.set_display_name(c.id, &name)?;
                }
                w.grant(c.id, p, Some(Right::ReadWrite))?;
                Ok::<_, bureau_store::StoreError>(c)
            })
            .await
            .map_err(|e| match e {
                bureau_store::StoreError::Exists(_) => {
                    let taken = said("err_group_already_has_one").with("group", group);
                    field_fail_as(StatusCode::CONFLICT, "name", taken.with("kind", &new.kind))
                }
                e => Fail::from(e),
            })?;
        Ok(CollectionInfo {
            id: c.id,
            kind: format!("{:?}", c.kind).to_lowercase(),
            name: c.name,
            items: 0,
            modseq: c.modseq,
        })
    }
}
