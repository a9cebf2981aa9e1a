//! The admin API's routes for a user's collections: listing, items and their content,
//! imports of a whole .ics or .vcf, and sharing with users and groups.

use crate::*;

impl AdminApi {
    /// The routes under `/api/v1/users/<uid>/collections`.
    pub(crate) async fn collections_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            // ---- a user's collections (support and export) ----
            (&Method::GET, ["users", uid, "collections"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.collections(uid)?))
            }
            (&Method::GET, ["users", uid, "collections", name, "items"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.items(uid, name)?))
            }
            (&Method::GET, ["users", uid, "collections", name, "items", id]) => {
                admin_only(who)?;
                let id: u64 = id
                    .parse()
                    .map_err(|_| fail(StatusCode::NOT_FOUND, said("err_no_such_item")))?;
                let body = self.item_content(uid, name, id)?;
                log::info!("admin: item {id} of {uid}'s {name} read");
                Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default())
            }
            // ---- a whole .ics or .vcf into a calendar or address book ----
            (&Method::POST, ["users", uid, "collections", name, "import"]) => {
                admin_only(who)?;
                let p = self.principal_of(uid)?;
                let name = name.to_string();
                let max = bureau_core::limits::get().admin_import_bytes;
                let data = Limited::new(req.into_body(), max)
                    .collect()
                    .await
                    .map_err(|_| {
                        fail(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            said("err_file_over_bytes").with("max", max),
                        )
                    })?
                    .to_bytes();
                let done = bureau_dav::import(self.dir().store(), p, &name, &data).await?;
                log::info!(
                    "admin: imported {} objects into {uid}'s {name}",
                    done.stored
                );
                Ok(json(
                    StatusCode::OK,
                    &ImportReport {
                        stored: done.stored,
                        refused: done.refused,
                    },
                ))
            }
            // ---- sharing a collection with users and groups ----
            (&Method::GET, ["users", uid, "collections", name, "shares"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.shares(uid, name)?))
            }
            (&Method::PUT, ["users", uid, "collections", name, "shares", with]) => {
                admin_only(who)?;
                let (uid, name, with) = (uid.to_string(), name.to_string(), with.to_string());
                let ns: NewShare = body(req).await?;
                let right = match ns.access.as_str() {
                    "read" => Right::Read,
                    "read-write" => Right::ReadWrite,
                    "delegate" => Right::Delegate,
                    other => {
                        let what = said("err_access").with("access", format!("{other:?}"));
                        return Err(fail(StatusCode::BAD_REQUEST, what));
                    }
                };
                self.share(&uid, &name, &with, Some(right)).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid, "collections", name, "shares", with]) => {
                admin_only(who)?;
                let (uid, name, with) = (uid.to_string(), name.to_string(), with.to_string());
                self.share(&uid, &name, &with, None).await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    fn collections(&self, uid: &str) -> Result<Vec<CollectionInfo>, Fail> {
        self.collections_of(self.principal_of(uid)?)
    }

    pub(crate) fn collections_of(&self, p: u64) -> Result<Vec<CollectionInfo>, Fail> {
        let r = self.dir().store().reader(Actor::System)?;
        let mut out = Vec::new();
        for c in r.collections_of(p)? {
            out.push(CollectionInfo {
                items: r.items(c.id)?.len(),
                id: c.id,
                kind: format!("{:?}", c.kind).to_lowercase(),
                name: c.name,
                modseq: c.modseq,
            });
        }
        Ok(out)
    }

    fn items(&self, uid: &str, name: &str) -> Result<Vec<ItemInfo>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        Ok(r.items(c.id)?
            .into_iter()
            .map(|i| ItemInfo {
                id: i.id,
                size: i.size(),
                date: i.date,
                modseq: i.modseq,
                name: i.name,
                flags: i.flags,
            })
            .collect())
    }

    fn shares(&self, uid: &str, name: &str) -> Result<Vec<ShareInfo>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        let mut out = Vec::new();
        for (who, right) in r.grants(c.id)? {
            out.push(ShareInfo {
                with: r.principal(who)?.name,
                access: match right {
                    Right::Read => "read",
                    Right::ReadWrite => "read-write",
                    Right::Delegate => "delegate",
                }
                .into(),
            });
        }
        Ok(out)
    }

    /// Grants (Some) or revokes (None) `with`'s right on `uid`'s collection `name`.
    async fn share(
        &self,
        uid: &str,
        name: &str,
        with: &str,
        right: Option<Right>,
    ) -> Result<(), Fail> {
        let p = self.principal_of(uid)?;
        let (name, grantee) = (name.to_string(), with.to_string());
        self.dir()
            .store()
            .write(Actor::System, vec![], move |w| {
                let c = w.collection_by_name(p, &name)?;
                let who = w.principal_by_name(&grantee)?;
                w.grant(c.id, who.id, right)
            })
            .await?;
        log::info!("admin: {uid}'s collection shared: {with} now has {right:?}");
        Ok(())
    }

    fn item_content(&self, uid: &str, name: &str, id: u64) -> Result<Vec<u8>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        let item = r.item(c.id, id)?;
        Ok(r.content(&item)?)
    }
}
