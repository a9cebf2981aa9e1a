//! The admin API's routes for the box itself: status, stored-data check, logs, the TLS
//! certificate, release and slots, updates, backups and reboots.

use crate::*;

impl AdminApi {
    /// `/api/v1/certificate/acme...`, for administrators.
    async fn acme_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            (&Method::GET, ["certificate", "acme"]) => {
                Ok(json(StatusCode::OK, &self.acme.status()))
            }
            (&Method::PUT, ["certificate", "acme"]) => {
                let settings: bureau_core::acme::AcmeSettings = body(req).await?;
                self.acme
                    .configure(settings)
                    .await
                    .map_err(acme_fail)
                    .map(|status| json(StatusCode::OK, &status))
            }
            (&Method::POST, ["certificate", "acme", "renew"]) => {
                let info = self.acme.issue().await.map_err(acme_fail)?;
                Ok(json(StatusCode::OK, &info))
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// `/api/v1/backup/schedule...`, for administrators.
    async fn schedule_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            (&Method::GET, ["backup", "schedule"]) => {
                let state = self.schedule_state();
                let archives = self.scheduled_archives().await;
                // The account an NFS export must let write (the box writes as itself).
                let uid = nix::unistd::Uid::effective().as_raw();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"state": state, "archives": archives, "uid": uid}),
                ))
            }
            (&Method::PUT, ["backup", "schedule"]) => {
                let s: crate::schedule::ScheduleSettings = body(req).await?;
                Ok(json(StatusCode::OK, &self.set_schedule(s).await?))
            }
            (&Method::POST, ["backup", "schedule", "run"]) => {
                // Why it failed goes inside the sentence, in the request's language.
                let lang = req.headers().get(hyper::header::ACCEPT_LANGUAGE);
                let w = bureau_words::Words::of(lang.and_then(|v| v.to_str().ok()));
                let state = self.run_scheduled().await?;
                match &state.last_error {
                    Some(e) => {
                        let failed = said("err_the_backup_failed").with("e", e.in_words(w));
                        Err(fail(StatusCode::INTERNAL_SERVER_ERROR, failed))
                    }
                    None => Ok(json(StatusCode::OK, &state)),
                }
            }
            (&Method::POST, ["backup", "schedule", name, "restore"]) => {
                let path = self.scheduled_archive(name).await?;
                self.restore_file(path, false).await
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }
}

/// An ACME failure as the console shows it: beside its field, or in words.
fn acme_fail(e: bureau_core::acme::AcmeError) -> Fail {
    use bureau_core::acme::AcmeError;
    match e {
        AcmeError::Field { field, why } => field_fail(field, why),
        AcmeError::Refused(_) | AcmeError::Unreachable(_) => {
            fail(StatusCode::BAD_GATEWAY, e.said())
        }
        AcmeError::Local(_) => fail(StatusCode::CONFLICT, e.said()),
    }
}

impl AdminApi {
    /// The routes under `/api/v1/` that are about the box itself.
    pub(crate) async fn system_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            (&Method::GET, ["status"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.status()?))
            }
            (&Method::GET, ["health"]) => {
                admin_only(who)?;
                let lang = req.headers().get(hyper::header::ACCEPT_LANGUAGE);
                let w = bureau_words::Words::of(lang.and_then(|v| v.to_str().ok()));
                Ok(json(StatusCode::OK, &self.health(w).await))
            }
            (&Method::GET, ["check"]) => {
                admin_only(who)?;
                let dir = self.dir().clone();
                let broken = tokio::task::spawn_blocking(move || {
                    bureau_dav::check::broken_objects(dir.store(), &dir)
                })
                .await
                .map_err(|e| {
                    fail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        said("err_plain").with("error", e),
                    )
                })?
                .map_err(Fail::from)?;
                Ok(json(StatusCode::OK, &broken))
            }
            // ---- the TLS certificate ----
            (&Method::GET, ["certificate"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.certs.info()))
            }
            (&Method::PUT, ["certificate"]) => {
                admin_only(who)?;
                let up: NewCertificate = body(req).await?;
                match self
                    .certs
                    .install(up.cert_pem.as_bytes(), up.key_pem.as_bytes())
                {
                    Ok(info) => Ok(json(StatusCode::OK, &info)),
                    // Beside the field it is about.
                    Err(bureau_core::tls::TlsError::Refused { field, why }) => {
                        Err(field_fail(field, why))
                    }
                    Err(e) => Err(fail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        said("err_plain").with("error", e),
                    )),
                }
            }
            (_, ["certificate", "acme", ..]) => {
                admin_only(who)?;
                self.acme_routes(method, seg, req).await
            }
            (&Method::DELETE, ["certificate"]) => {
                admin_only(who)?;
                self.certs.remove_uploaded().map_err(|e| {
                    fail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        said("err_plain").with("error", e),
                    )
                })?;
                Ok(no_content())
            }
            (&Method::GET, ["logs"]) => {
                admin_only(who)?;
                let q = |k: &str| query_param(&req, k);
                let after = q("after").and_then(|v| v.parse().ok()).unwrap_or(0);
                let level = match q("level").as_deref() {
                    None | Some("") => log::LevelFilter::Info,
                    Some(l) => l.parse().map_err(|_| {
                        field_fail("level", said("err_level_is_error_warn_info_or"))
                    })?,
                };
                let limit = q("limit")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500usize)
                    .min(5000);
                let service = q("service").filter(|s| !s.is_empty());
                let entries = if q("source").as_deref() == Some("journal") {
                    bureau_core::logging::journal(level, service.as_deref(), limit)
                        .await
                        .map_err(|e| {
                            fail(
                                StatusCode::SERVICE_UNAVAILABLE,
                                said("err_the_system_journal_cannot_be_read").with("e", &e),
                            )
                        })?
                } else {
                    bureau_core::logging::recent(after, level, service.as_deref(), limit)
                };
                Ok(json(StatusCode::OK, &entries))
            }
            // ---- the appliance: release, slots, updates ----
            (&Method::GET, ["system"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.system().await))
            }
            (&Method::PUT, ["system", "settings"]) => {
                admin_only(who)?;
                let s: SystemSettings = body(req).await?;
                let (name, tz) = self.system_change(&s.hostname, &s.timezone)?;
                let restarting = self.apply_system(name, tz).await?;
                Ok(json(StatusCode::OK, &SystemChanged { restarting }))
            }
            (&Method::PUT, ["system", "update"]) => {
                admin_only(who)?;
                self.update(req).await
            }
            (&Method::POST, ["backup"]) => {
                admin_only(who)?;
                self.restore(req).await
            }
            (_, ["backup", "schedule", ..]) => {
                admin_only(who)?;
                self.schedule_routes(method, seg, req).await
            }
            (&Method::POST, ["system", verb @ ("reboot" | "poweroff")]) => {
                admin_only(who)?;
                let (req, message) = match *verb {
                    "reboot" => (helper::Request::Reboot, "rebooting"),
                    _ => (helper::Request::PowerOff, "shutting down"),
                };
                helper::call(&self.info.helper_socket, &req, Duration::from_secs(10))
                    .await
                    .map_err(|e| {
                        fail(
                            StatusCode::SERVICE_UNAVAILABLE,
                            said("err_plain").with("error", e),
                        )
                    })?;
                Ok(json(
                    StatusCode::ACCEPTED,
                    &Message {
                        message: message.into(),
                    },
                ))
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// Checks a change of the box's name and time zone: (the new name if it is one, the
    /// time zone). Bad input is told on its field.
    pub(crate) fn system_change(
        &self,
        hostname: &Option<String>,
        timezone: &Option<String>,
    ) -> Result<(Option<String>, Option<String>), Fail> {
        let bad = |field: &str, why: Said| field_fail(field, why);
        let name = match hostname.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
            None => None,
            Some(h) => {
                let h = bureau_directory::validate::domain(h)
                    .ok()
                    .filter(|h| h.contains('.'))
                    .ok_or_else(|| bad("hostname", said("err_hostname_full")))?;
                if h == self.info.hostname {
                    None
                } else if self.info.hostname_fixed {
                    return Err(bad("hostname", said("err_hostname_configured")));
                } else {
                    Some(h)
                }
            }
        };
        let tz = match timezone.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if bureau_core::system::valid_timezone(t) => Some(t.to_string()),
            Some(_) => {
                return Err(bad("timezone", said("err_timezone")));
            }
        };
        Ok((name, tz))
    }

    /// Records the time zone (the appliance's /etc/localtime follows it at once) and the new
    /// name: the system takes it through the helper, the self-signed certificate is made
    /// again for it, and the daemon restarts under it. True when it restarts.
    pub(crate) async fn apply_system(
        &self,
        name: Option<String>,
        tz: Option<String>,
    ) -> Result<bool, Fail> {
        let dir = &self.info.system_dir;
        let io = |e: std::io::Error| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        };
        if let Some(tz) = tz {
            bureau_core::system::set_timezone(dir, &tz).map_err(io)?;
            log::info!("admin: the time zone is {tz}");
        }
        let Some(name) = name else {
            return Ok(false);
        };
        bureau_core::system::set_hostname(dir, &name).map_err(io)?;
        if let Err(e) = helper::call(
            &self.info.helper_socket,
            &helper::Request::SetHostname { name: name.clone() },
            Duration::from_secs(10),
        )
        .await
        {
            log::warn!("admin: the system keeps its name until the next boot: {e}");
        }
        let tls = PathBuf::from(&self.info.data_dir).join("tls");
        for f in ["self-signed.crt", "self-signed.key"] {
            let _ = std::fs::remove_file(tls.join(f));
        }
        log::warn!("admin: the box is now {name}; restarting under it");
        self.restart_soon();
        Ok(true)
    }

    /// Has the daemon stop and start again once the current answer is out.
    fn restart_soon(&self) {
        let restart = self.info.restart.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            restart.notify_one();
        });
    }

    /// `GET /api/v1/system`: the release, the booted slot, and the slots as RAUC sees them.
    pub(crate) async fn system(&self) -> SystemInfo {
        let booted_slot = std::fs::read_to_string("/proc/cmdline").ok().and_then(|c| {
            c.split_whitespace()
                .find_map(|a| a.strip_prefix("rauc.slot="))
                .map(str::to_string)
        });
        let (slots, helper_error) = match helper::call(
            &self.info.helper_socket,
            &helper::Request::SlotStatus,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(out) => (serde_json::from_str(&out).ok(), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let slot_summary = slots.as_ref().map(slot_views).unwrap_or_default();
        let release = std::fs::read_to_string(RELEASE_FILE)
            .ok()
            .map(|s| s.trim().to_string());
        let appliance = release.is_some();
        let (failed_units, boot_time, critical_chain) = if appliance {
            let failed = systemd_lines(
                "systemctl",
                &["list-units", "--state=failed", "--plain", "--no-legend"],
            )
            .await;
            (
                failed.map(|l| {
                    l.iter()
                        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                        .collect()
                }),
                systemd_lines("systemd-analyze", &["time"])
                    .await
                    .and_then(|l| l.into_iter().next()),
                systemd_lines("systemd-analyze", &["critical-chain", "bureau.service"]).await,
            )
        } else {
            (None, None, None)
        };
        SystemInfo {
            release,
            failed_units,
            boot_time,
            critical_chain,
            booted_slot,
            slot_summary,
            slots,
            helper_error,
            hostname: self.info.hostname.clone(),
            timezone: bureau_core::system::timezone(&self.info.system_dir),
            system_timezone: bureau_core::system::system_timezone(),
        }
    }

    /// `POST /api/v1/backup`: the body is a backup archive. It is unpacked and checked whole
    /// (every blob's hash, the schema) beside the store; only then is it left for the next
    /// start, which puts it in place of the store (kept aside, not deleted), and the daemon
    /// restarts. A damaged archive changes nothing.
    async fn restore(&self, req: Request<Incoming>) -> Result<Resp, Fail> {
        let data = PathBuf::from(&self.info.data_dir);
        let upload = data.join(format!("restore-upload-{}.tar.gz", &random_token()[..16]));
        if let Err(f) = receive(req, &upload, self.info.max_restore_bytes, "backup").await {
            let _ = tokio::fs::remove_file(&upload).await;
            return Err(f);
        }
        self.restore_file(upload, true).await
    }

    /// Restores an archive on the box (an upload, removed after; or a scheduled backup).
    async fn restore_file(&self, archive: PathBuf, remove: bool) -> Result<Resp, Fail> {
        let data = PathBuf::from(&self.info.data_dir);
        let staging = data.join("restore-staging");
        let staged = {
            let (archive, staging) = (archive.clone(), staging.clone());
            tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&archive)?;
                bureau_store::backup::stage(std::io::BufReader::new(f), &staging)
            })
            .await
            .map_err(|e| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    said("err_plain").with("error", e),
                )
            })
            .map(|r| {
                r.map_err(|e| {
                    let why = match e {
                        // What is wrong with the archive, in the store's words.
                        bureau_store::StoreError::BadBackup(why) => why,
                        other => said("err_plain").with("error", other),
                    };
                    fail(StatusCode::UNPROCESSABLE_ENTITY, why)
                })
            })
        };
        if remove {
            let _ = tokio::fs::remove_file(&archive).await;
        }
        let info = staged??;
        let pending = data.join(bureau_store::backup::PENDING);
        let _ = tokio::fs::remove_dir_all(&pending).await;
        tokio::fs::rename(&staging, &pending).await.map_err(|e| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        })?;
        log::warn!(
            "admin: a backup taken at {} is restored at the restart that follows",
            info.created
        );
        // Answered first, then the daemon stops and starts with it.
        self.restart_soon();
        Ok(json(StatusCode::ACCEPTED, &info))
    }

    /// `PUT /api/v1/system/update`: the body is a RAUC bundle. It is saved in the updates
    /// directory, installed by the helper into the other slot (RAUC checks its signature), then
    /// removed. The box boots the new slot at the next reboot (`POST /api/v1/system/reboot`).
    async fn update(&self, req: Request<Incoming>) -> Result<Resp, Fail> {
        let dir = &self.info.updates_dir;
        let io = |e: std::io::Error| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        };
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let path = dir.join(format!("upload-{}.raucb", &random_token()[..16]));
        let received = receive(req, &path, self.info.max_update_bytes, "bundle").await;
        let installed = match received {
            Ok(()) => Ok(helper::call(
                &self.info.helper_socket,
                &helper::Request::InstallUpdate {
                    bundle: path.clone(),
                },
                Duration::from_secs(31 * 60),
            )
            .await),
            Err(f) => Err(f),
        };
        let _ = tokio::fs::remove_file(&path).await;
        match installed? {
            Ok(_) => Ok(json(
                StatusCode::OK,
                &Message {
                    message: "installed; reboot to start it".into(),
                },
            )),
            Err(helper::HelperError::Failed(out)) => {
                log::warn!("admin: an update refused: {}", out.trim());
                // Read, and refused for what it is: 422, beside the bundle field.
                let why = update_in_words(&out);
                Err(field_fail_as(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bundle",
                    why,
                ))
            }
            Err(e) => Err(helper_fail(e)),
        }
    }

    fn status(&self) -> Result<Status, Fail> {
        let d = self.dir();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.info.hostname.clone(),
            uptime_secs: self.info.started.elapsed().as_secs(),
            services: self
                .info
                .services
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            domains: d.domains()?.len(),
            users: d.users()?.len(),
            groups: d.groups()?.len(),
            data_dir: self.info.data_dir.clone(),
            schema_version: bureau_store::SCHEMA_VERSION,
            connections: self.info.inflight.as_ref().map_or(0, |s| s.in_flight()),
            memory_bytes: resident_bytes(),
            disk: DiskSpace::of(&self.info.data_dir),
            queued: self
                .queue
                .as_ref()
                .and_then(|q| q.list().ok())
                .map_or(0, |l| l.len()),
            problems: bureau_core::logging::recent(0, log::LevelFilter::Warn, None, 10),
            internal_errors: bureau_core::fence::panics(),
            unclean_stop: self.info.unclean_stop,
        })
    }
}

/// What a systemd tool prints, line by line (listing and timing need no rights); None when
/// it does not answer or fails (systemd-analyze before the boot has finished).
async fn systemd_lines(tool: &str, args: &[&str]) -> Option<Vec<String>> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .arg("--no-pager")
        .env("SYSTEMD_COLORS", "0")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .ok()?
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// Why RAUC refused a bundle, in words for an administrator (its own text goes to the log).
fn update_in_words(rauc: &str) -> Said {
    let l = rauc.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| l.contains(w));
    if has(&[
        "invalid bundle format",
        "signature size",
        "exceeds bundle size",
        "bundle too small",
    ]) {
        said("err_update_not_a_bundle")
    } else if has(&["verity", "input/output error", "hash", "squashfs", "mount"]) {
        said("err_update_damaged")
    } else if has(&["signature", "verify", "certificate", "issuer"]) {
        said("err_update_not_trusted")
    } else if has(&["compatible"]) {
        said("err_update_other_system")
    } else if has(&["no space"]) {
        said("err_update_no_room")
    } else {
        let last = rauc
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        said("err_update_failed").with("why", last.trim())
    }
}

/// The slots of `rauc status --detailed --output-format=json` in words: RAUC's boot status
/// is "bad" both for a slot that failed and for one never installed, so the state and what
/// was installed tell them apart. (A slot just installed is "good" to RAUC until the boot
/// that tries it; one that failed its trial stays first in GRUB's order, so being RAUC's
/// primary says nothing.)
fn slot_views(status: &serde_json::Value) -> Vec<SlotView> {
    let mut out = Vec::new();
    for group in status["slots"].as_array().into_iter().flatten() {
        for slot in group.as_object().into_iter().flatten().map(|(_, s)| s) {
            let Some(bootname) = slot["bootname"].as_str() else {
                continue;
            };
            let booted = slot["state"].as_str() == Some("booted");
            let s = &slot["slot_status"];
            let version = s["bundle"]["version"].as_str().map(str::to_string);
            let installed = s["installed"]["timestamp"].as_str().map(str::to_string);
            let good = slot["boot_status"].as_str() == Some("good");
            let status = match (good, booted) {
                (true, _) => "good",
                // Running on trial: the health check has not confirmed it yet.
                (false, true) => "pending",
                (false, false) if version.is_none() && installed.is_none() => "empty",
                (false, false) => "bad",
            };
            out.push(SlotView {
                bootname: bootname.to_string(),
                state: if booted { "booted" } else { "inactive" }.into(),
                status: status.into(),
                version,
                installed,
            });
        }
    }
    out.sort_by(|a, b| a.bootname.cmp(&b.bootname));
    out
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn slots_in_words() {
        // A fresh box before its health check: A booted on trial, B never installed.
        let fresh = serde_json::json!({"booted": "A", "boot_primary": "rootfs.0", "slots": [
            {"rootfs.0": {"bootname": "A", "state": "booted", "boot_status": "bad", "slot_status": {}}},
            {"rootfs.1": {"bootname": "B", "state": "inactive", "boot_status": "bad", "slot_status": {}}}]});
        let v = slot_views(&fresh);
        assert_eq!(
            (v[0].status.as_str(), v[1].status.as_str()),
            ("pending", "empty")
        );
        assert_eq!(v[0].state, "booted");
        // After an update to B, confirmed; A kept as it was.
        let after = serde_json::json!({"booted": "B", "boot_primary": "rootfs.1", "slots": [
            {"rootfs.0": {"bootname": "A", "state": "inactive", "boot_status": "good", "slot_status": {}}},
            {"rootfs.1": {"bootname": "B", "state": "booted", "boot_status": "good", "slot_status":
                {"bundle": {"version": "abc1234"}, "installed": {"timestamp": "2026-12-05T05:00:00Z"}}}}]});
        let v = slot_views(&after);
        assert_eq!(v[1].version.as_deref(), Some("abc1234"));
        assert_eq!(
            (v[0].status.as_str(), v[1].status.as_str()),
            ("good", "good")
        );
        // B installed, then failed its health check: bad, and A is primary again.
        let failed = serde_json::json!({"booted": "A", "boot_primary": "rootfs.0", "slots": [
            {"rootfs.0": {"bootname": "A", "state": "booted", "boot_status": "good", "slot_status": {}}},
            {"rootfs.1": {"bootname": "B", "state": "inactive", "boot_status": "bad", "slot_status":
                {"bundle": {"version": "broken"}}}}]});
        assert_eq!(slot_views(&failed)[1].status, "bad");
        // As the boot test saw it: A tried the broken bundle, failed, the box went back to
        // B, and RAUC still names A primary. It said "pending".
        let rolled_back = serde_json::json!({"booted": "B", "boot_primary": "rootfs.0", "slots": [
            {"rootfs.0": {"bootname": "A", "state": "inactive", "boot_status": "bad", "slot_status":
                {"bundle": {"version": "broken"}, "installed": {"timestamp": "2026-12-05T05:58:42Z"}}}},
            {"rootfs.1": {"bootname": "B", "state": "booted", "boot_status": "good", "slot_status": {}}}]});
        assert_eq!(slot_views(&rolled_back)[0].status, "bad");
    }
}
