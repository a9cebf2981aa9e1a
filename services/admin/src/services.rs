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
                let log = match tokio::fs::read(&*self.proxy_log).await {
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

    /// A box updated from a release whose daemon wrote Squid's configuration (`conf` is not
    /// root's): the saved settings are applied again in the background, so that the helper
    /// renders the configuration and takes the folder back, with the proxy kept running.
    /// The helper may start after the daemon: asked for a minute.
    pub fn retake_proxy(&self, conf: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        if !std::fs::symlink_metadata(conf).is_ok_and(|m| m.uid() != 0) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let s = match bureau_daemons::proxy::load(this.dir().store()) {
                Ok(s) => s,
                Err(e) => return log::warn!("admin: web proxy settings unreadable: {e}"),
            };
            for _ in 0..30 {
                match this.apply_proxy(s.clone()).await {
                    Ok(_) => {
                        return log::info!(
                            "admin: web proxy configuration rendered again by the helper (an older release's daemon wrote it)"
                        );
                    }
                    Err(Fail(StatusCode::SERVICE_UNAVAILABLE, _)) => {
                        tokio::time::sleep(Duration::from_secs(2)).await
                    }
                    Err(Fail(_, e)) => {
                        return log::warn!("admin: web proxy not applied again: {}", e.error);
                    }
                }
            }
            log::warn!("admin: web proxy not applied again: the helper did not answer");
        });
    }

    /// Checks the settings, then has the helper render Squid's configuration from them, have
    /// Squid check it and install it with a fresh secret for the LDAP account Squid binds
    /// with; only then does the account take that secret, the settings get saved and Squid
    /// reload. A configuration Squid refuses changes nothing: the running proxy keeps its
    /// configuration and its account's password.
    async fn apply_proxy(
        &self,
        s: bureau_daemons::proxy::ProxySettings,
    ) -> Result<ProxyApplied, Fail> {
        use bureau_daemons::proxy;
        let accounts = proxy::accounts(self.dir())?;
        proxy::check(&s, &accounts).map_err(|e| field_fail(&e.field, e.message))?;
        let secret = self.dir().new_service_secret().await?;
        let plan = proxy::ProxyPlan {
            settings: s.clone(),
            accounts,
            bind_dn: self.service_dn(proxy::ACCOUNT)?,
            secret: secret.password.clone(),
        };
        let config = helper::call(
            &self.info.helper_socket,
            &helper::Request::ApplyProxy { plan },
            Duration::from_secs(70),
        )
        .await
        .map_err(|e| match e {
            // The helper says Squid's refusal in the catalogues' words.
            helper::HelperError::Failed(why) => fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::from_str(&why)
                    .unwrap_or_else(|_| said("err_helper_failed").with("error", why.trim())),
            ),
            other => helper_fail(other),
        })?;
        self.dir()
            .give_service_secret(proxy::ACCOUNT, "The web proxy's sign-in (Squid)", secret)
            .await?;
        proxy::save(self.dir().store(), &s)
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
            config: config.trim().to_string(),
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
