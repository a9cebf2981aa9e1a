//! The admin API's routes for users: their records, passwords, sync devices and setup
//! page.

use crate::*;

/// A device log switched on or off.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSwitch {
    on: bool,
}

impl AdminApi {
    /// The routes under `/api/v1/` that are about users.
    pub(crate) async fn users_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        if seg.get(2) == Some(&"collections") {
            return self.collections_routes(method, seg, req, who).await;
        }
        if matches!(seg.get(2), Some(&"totp" | &"app-passwords")) {
            return self.factors_routes(method, seg, req, who).await;
        }
        if seg.get(2) == Some(&"devices") {
            return self.devices_routes(method, seg, req, who).await;
        }
        match (method, seg) {
            // ---- users ----
            (&Method::GET, ["users"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.dir().users()?))
            }
            (&Method::POST, ["users"]) => {
                admin_only(who)?;
                let nu: NewUser = body(req).await?;
                Ok(json(StatusCode::CREATED, &self.dir().add_user(nu).await?))
            }
            (&Method::GET, ["users", uid]) => {
                own_or_admin(who, uid)?;
                Ok(json(StatusCode::OK, &self.user_detail(uid)?))
            }
            (&Method::GET, ["users", uid, "setup"]) => {
                own_or_admin(who, uid)?;
                let user = self.user_or_404(uid)?;
                Ok(json(
                    StatusCode::OK,
                    &DeviceSetup {
                        hostname: self.info.hostname.clone(),
                        address: user.address,
                        web: self.web_base(),
                        ports: self.info.ports.clone(),
                    },
                ))
            }
            (&Method::GET, ["users", uid, "mobileconfig"]) => {
                own_or_admin(who, uid)?;
                let user = self.user_or_404(uid)?;
                Ok(bureau_dav::autoconfig::mobileconfig(
                    &self.info.hostname,
                    &self.info.ports,
                    &user.uid,
                    &user.address,
                    &user.display_name,
                ))
            }
            (&Method::GET, ["users", uid, "setup-qr.svg"]) => {
                own_or_admin(who, uid)?;
                // The user's own console page, at the box's name and HTTPS port.
                let url = format!("{}/admin/#/me", self.web_base());
                let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| {
                    fail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        said("err_plain").with("error", e),
                    )
                })?;
                let svg = code
                    .render::<qrcode::render::svg::Color>()
                    .min_dimensions(200, 200)
                    .build();
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "image/svg+xml")
                    .header("cache-control", "no-store")
                    .body(Full::new(Bytes::from(svg)))
                    .map_err(|e| {
                        fail(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            said("err_plain").with("error", e),
                        )
                    })
            }
            (&Method::PATCH, ["users", uid]) => {
                admin_only(who)?;
                let ch: UserChanges = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.dir().update_user(uid, ch).await?,
                ))
            }
            (&Method::PUT, ["users", uid, "password"]) => {
                own_or_admin(who, uid)?;
                let pc: PasswordChange = body(req).await?;
                self.dir().set_password(uid, &pc.password).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid]) => {
                admin_only(who)?;
                if who.uid.as_deref() == Some(*uid) {
                    return Err(fail(
                        StatusCode::CONFLICT,
                        said("err_you_cannot_delete_your_own_account"),
                    ));
                }
                self.dir().delete_user(uid).await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// A user's phones and other sync devices.
    async fn devices_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            (&Method::GET, ["users", uid, "devices"]) => {
                admin_only(who)?;
                let p = self.principal_of(uid)?;
                let r = self.dir().store().reader(bureau_store::Actor::System)?;
                Ok(json(StatusCode::OK, &r.devices(p)?))
            }
            (&Method::POST, ["users", uid, "devices", id, "wipe"]) => {
                admin_only(who)?;
                let p = self.principal_of(uid)?;
                let store = self.dir().store();
                let mut d = store
                    .reader(bureau_store::Actor::System)?
                    .device(p, id)?
                    .ok_or_else(|| {
                        fail(StatusCode::NOT_FOUND, said("err_no_device").with("id", id))
                    })?;
                // Asked to provision again, the device is told to wipe itself.
                d.wipe_requested = true;
                d.policy_key = 0;
                store
                    .write(bureau_store::Actor::System, vec![], move |w| {
                        w.put_device(p, &d)
                    })
                    .await?;
                log::warn!("admin: remote wipe of {uid}'s device {id} requested");
                Ok(no_content())
            }
            // A SyncML device's detailed session log: read, switched, emptied.
            (_, ["users", uid, "devices", id, "log"]) => {
                admin_only(who)?;
                let p = self.principal_of(uid)?;
                let store = self.dir().store();
                let known = store.reader(bureau_store::Actor::System)?.device(p, id)?;
                if known.is_none_or(|d| d.protocol != "syncml") {
                    return Err(fail(
                        StatusCode::NOT_FOUND,
                        said("err_no_syncml_device_only_syncml_devices").with("id", id),
                    ));
                }
                let log = match *method {
                    Method::GET => bureau_syncml::devlog::read(store, p, id)?,
                    Method::PUT => {
                        let s: LogSwitch = body(req).await?;
                        bureau_syncml::devlog::switch(store, p, id, s.on).await?
                    }
                    Method::DELETE => bureau_syncml::devlog::clear(store, p, id).await?,
                    _ => {
                        return Err(fail(
                            StatusCode::METHOD_NOT_ALLOWED,
                            said("err_get_put_or_delete"),
                        ));
                    }
                };
                Ok(json(StatusCode::OK, &log))
            }
            (&Method::DELETE, ["users", uid, "devices", id]) => {
                admin_only(who)?;
                let p = self.principal_of(uid)?;
                let store = self.dir().store();
                if store
                    .reader(bureau_store::Actor::System)?
                    .device(p, id)?
                    .is_none()
                {
                    return Err(fail(
                        StatusCode::NOT_FOUND,
                        said("err_no_device").with("id", id),
                    ));
                }
                let id = id.to_string();
                store
                    .write(bureau_store::Actor::System, vec![], move |w| {
                        w.delete_device(p, &id)
                    })
                    .await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    pub(crate) fn principal_of(&self, uid: &str) -> Result<u64, Fail> {
        Ok(self
            .dir()
            .user(uid)?
            .ok_or_else(|| {
                fail(
                    StatusCode::NOT_FOUND,
                    said("err_user_not_found").with("uid", uid),
                )
            })?
            .principal)
    }

    /// The box's web address as clients are told it (its name, and its HTTPS port when
    /// that is not 443).
    fn web_base(&self) -> String {
        match self.info.ports.https {
            443 => format!("https://{}", self.info.hostname),
            p => format!("https://{}:{p}", self.info.hostname),
        }
    }

    fn user_or_404(&self, uid: &str) -> Result<bureau_directory::User, Fail> {
        self.dir().user(uid)?.ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                said("err_user_not_found").with("uid", uid),
            )
        })
    }

    fn user_detail(&self, uid: &str) -> Result<UserDetail, Fail> {
        let user = self.user_or_404(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let usage_bytes = r.usage(user.principal)?;
        let groups = self
            .dir()
            .groups()?
            .into_iter()
            .filter(|g| g.members.contains(&user.uid))
            .map(|g| g.name)
            .collect();
        Ok(UserDetail {
            two_factor: self.dir().totp_enabled(&user.uid)?,
            app_passwords: self.dir().app_passwords(&user.uid)?,
            user,
            usage_bytes,
            groups,
        })
    }
}
