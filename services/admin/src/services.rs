//! The admin API's routes for the LAN's services: LDAP service accounts, the web proxy
//! (Squid) and the file server (Samba).

use crate::*;

impl AdminApi {
    /// The routes under `/api/v1/` that are about the LAN's services.
    pub(crate) async fn services_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            // ---- service accounts (LDAP binds for LAN applications) ----
            (&Method::GET, ["services"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.dir().service_accounts()?))
            }
            (&Method::POST, ["services"]) => {
                admin_only(who)?;
                let new: NewServiceAccount = body(req).await?;
                let made = self
                    .dir()
                    .add_service_account(&new.name, new.description.as_deref().unwrap_or(""))
                    .await?;
                Ok(json(StatusCode::CREATED, &self.service_credentials(made)?))
            }
            (&Method::POST, ["services", name, "password"]) => {
                admin_only(who)?;
                let reset = self.dir().reset_service_account(name).await?;
                Ok(json(StatusCode::OK, &self.service_credentials(reset)?))
            }
            (&Method::DELETE, ["services", name]) => {
                admin_only(who)?;
                self.dir().delete_service_account(name).await?;
                Ok(no_content())
            }
            // ---- the web proxy ----
            (&Method::GET, ["proxy"]) => {
                admin_only(who)?;
                Ok(json(
                    StatusCode::OK,
                    &bureau_daemons::proxy::load(self.dir().store()).map_err(Fail::from)?,
                ))
            }
            (&Method::PUT, ["proxy"]) => {
                admin_only(who)?;
                let s: bureau_daemons::proxy::ProxySettings = body(req).await?;
                Ok(json(StatusCode::OK, &self.apply_proxy(s).await?))
            }
            (&Method::GET, ["proxy", "summary"]) => {
                admin_only(who)?;
                let setup = &*self.proxy;
                let log = match tokio::fs::read(&setup.cfg.access_log).await {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => {
                        return Err(fail(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            said("err_plain").with("error", e),
                        ));
                    }
                };
                let dir = self.dir();
                let person = |name: &str| match dir.user_by_login(name) {
                    Ok(Some(u)) => u.uid,
                    _ => name.to_string(),
                };
                Ok(json(
                    StatusCode::OK,
                    &bureau_daemons::proxy::summarize(&log, 10, person),
                ))
            }
            // ---- the file server ----
            (&Method::GET, ["samba"]) => {
                admin_only(who)?;
                let keeper = &*self.samba;
                Ok(json(
                    StatusCode::OK,
                    &SambaState {
                        settings: bureau_daemons::samba::load(self.dir().store())
                            .map_err(Fail::from)?,
                        last: keeper.last(),
                    },
                ))
            }
            (&Method::PUT, ["samba"]) => {
                admin_only(who)?;
                let keeper = &*self.samba;
                let s: bureau_daemons::samba::SambaSettings = body(req).await?;
                keeper
                    .check(&s)
                    .map_err(|e| field_fail(&e.field, e.message))?;
                match keeper.apply(s).await {
                    Ok((settings, report)) => {
                        log::info!("admin: file server settings applied");
                        Ok(json(StatusCode::OK, &SambaApplied { settings, report }))
                    }
                    Err(e) => Err(helper_fail(e)),
                }
            }
            (&Method::GET, ["samba", "status"]) => {
                admin_only(who)?;
                let out = helper::call(
                    &self.info.helper_socket,
                    &helper::Request::SambaStatus,
                    Duration::from_secs(30),
                )
                .await
                .map_err(helper_fail)?;
                let status: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
                    fail(StatusCode::BAD_GATEWAY, said("err_plain").with("error", e))
                })?;
                Ok(json(StatusCode::OK, &status))
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// What a made or reset service account's answer tells, once.
    fn service_credentials(
        &self,
        (account, password): (bureau_directory::service::ServiceAccount, String),
    ) -> Result<NewServiceCredentials, Fail> {
        Ok(NewServiceCredentials {
            bind_dn: self.service_dn(&account.name)?,
            account,
            password,
        })
    }

    /// The DN a service account binds with (under the first domain; any domain works).
    fn service_dn(&self, name: &str) -> Result<String, Fail> {
        let first = self
            .dir()
            .domains()?
            .into_iter()
            .next()
            .map(|d| d.name)
            .unwrap_or_default();
        Ok(format!(
            "cn={name},ou=services,{}",
            bureau_directory::ldap_suffix(&first)
        ))
    }

    /// Checks the settings, renders Squid's configuration, has Squid check it, and only then
    /// puts it (with the LDAP account's new secret) in place and asks for a reload. A
    /// configuration Squid refuses changes nothing.
    async fn apply_proxy(
        &self,
        s: bureau_daemons::proxy::ProxySettings,
    ) -> Result<ProxyApplied, Fail> {
        use bureau_daemons::proxy;
        let setup = &*self.proxy;
        let accounts = proxy::Accounts::of(self.dir())?;
        proxy::check(&s, &accounts).map_err(|e| field_fail(&e.field, e.message))?;
        let env = proxy::Env {
            http_port: setup.cfg.http_port.clone(),
            access_log: setup.cfg.access_log.clone(),
            state_dir: setup.state_dir.clone(),
            ldap_url: setup.ldap_url.clone(),
            bind_dn: self.service_dn(proxy::ACCOUNT)?,
            secret_file: setup.state_dir.join("ldap.secret"),
        };
        let text = proxy::render(&s, &accounts, &env);
        let io = |e: std::io::Error| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        };
        tokio::fs::create_dir_all(&setup.state_dir)
            .await
            .map_err(io)?;
        let candidate = setup.state_dir.join("squid.conf.new");
        tokio::fs::write(&candidate, &text).await.map_err(io)?;
        if let Err(why) = proxy::squid_accepts(&setup.cfg.squid, &candidate).await {
            let _ = tokio::fs::remove_file(&candidate).await;
            let refused = said("err_squid_refuses").with("why", why);
            return Err(fail(StatusCode::UNPROCESSABLE_ENTITY, refused));
        }
        // The LDAP account Squid binds with: a fresh password at each apply.
        let password = match self.dir().reset_service_account(proxy::ACCOUNT).await {
            Ok((_, p)) => p,
            Err(bureau_directory::DirectoryError::NotFound(_)) => {
                self.dir()
                    .add_service_account(proxy::ACCOUNT, "The web proxy's sign-in (Squid)")
                    .await?
                    .1
            }
            Err(e) => return Err(e.into()),
        };
        // Readable by Squid's helpers through their group, by no one else.
        bureau_core::files::write_secret(
            &setup.state_dir.join("ldap.secret"),
            password.as_bytes(),
            0o640,
            Some(&setup.cfg.group),
        )
        .map_err(io)?;
        tokio::fs::rename(&candidate, setup.state_dir.join("squid.conf"))
            .await
            .map_err(io)?;
        bureau_daemons::proxy::save(self.dir().store(), &s)
            .await
            .map_err(Fail::from)?;
        let reloaded = helper::call(
            &self.info.helper_socket,
            &helper::Request::ReloadProxy,
            Duration::from_secs(70),
        )
        .await;
        log::info!("admin: web proxy configuration applied");
        Ok(ProxyApplied {
            settings: s,
            config: setup.state_dir.join("squid.conf").display().to_string(),
            reloaded: reloaded.is_ok(),
            note: match reloaded {
                Ok(_) => said("note_squid_reloaded"),
                Err(helper::HelperError::Unavailable(why)) => {
                    log::warn!("admin: web proxy not reloaded: the helper is unavailable: {why}");
                    said("note_squid_no_helper")
                }
                Err(helper::HelperError::Failed(why)) => {
                    said("note_squid_reload_failed").with("why", why.trim())
                }
            },
        })
    }
}
