//! Scheduled backups: every day at the hour chosen, the whole store (as `GET /api/v1/backup`
//! gives it) is written into a folder that is somewhere else than the box's data: where a
//! USB disk or the office's SMB/NFS share is mounted. Each archive is written as `.part`,
//! synced, then checked whole as a restore would check it (every blob against its hash, the
//! schema) before it takes its name `bureau-backup-YYYYMMDD-HHMMSS.tar.gz`; a backup that
//! fails its check is removed and the failure kept. Archives older than the days kept go,
//! the newest good one always stays. Any of them can be restored from the console.
//!
//! The folder `usb` stands for the disk labelled `BUREAU-BACKUP`, `smb` for the office's SMB
//! share given beside it: before each use the helper mounts it (if it is not) and names the
//! folder on it that is the daemon's. The share's password goes to the helper, which keeps
//! it root's alone; the settings keep the rest.
//!
//! Settings and the last outcome: `<system_dir>/backup-schedule.json`.

use crate::*;
use chrono::{Timelike, Utc};
use serde::Deserialize;
use std::path::Path;

const FILE: &str = "backup-schedule.json";
const PREFIX: &str = "bureau-backup-";
const SUFFIX: &str = ".tar.gz";
/// The folder settings that stand for the backup disk and the office's SMB share and NFS
/// export.
const USB: &str = "usb";
const SMB: &str = "smb";
const NFS: &str = "nfs";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleSettings {
    pub enabled: bool,
    /// An absolute folder on the box, outside its data (a mounted disk or share), `usb`:
    /// the disk labelled BUREAU-BACKUP, `smb`: the share below, or `nfs`: the export below.
    pub folder: String,
    /// The office's SMB share, for `smb`. Its password is given, never shown: an empty one
    /// keeps the one the box holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<helper::ShareLogin>,
    /// The office's NFS export, for `nfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<helper::NfsExport>,
    /// The hour of the day (UTC) it runs at.
    #[serde(default = "default_hour")]
    pub hour: u32,
    /// Archives kept this many days.
    #[serde(default = "default_keep")]
    pub keep_days: u32,
}

fn default_hour() -> u32 {
    2
}
fn default_keep() -> u32 {
    14
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            enabled: false,
            folder: String::new(),
            hour: default_hour(),
            keep_days: default_keep(),
            share: None,
            export: None,
        }
    }
}

/// The settings and the last outcome.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScheduleState {
    pub settings: ScheduleSettings,
    pub last_run: Option<i64>,
    /// The last good archive's name and when it was taken.
    pub last_good: Option<(String, i64)>,
    /// Why the last run failed, in the catalogues' words.
    #[serde(default, deserialize_with = "bureau_words::said_or_text")]
    pub last_error: Option<Said>,
}

/// One archive in the folder.
#[derive(Debug, Serialize)]
pub struct Archive {
    pub name: String,
    pub size: u64,
    pub taken: i64,
}

/// When an archive's name says it was taken.
fn taken(name: &str) -> Option<i64> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// Runs file-system work on the blocking pool: a share whose server is gone can hold a
/// call for a minute, which must not hold a thread every protocol shares.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

/// Whether backups can go into `folder`: an absolute folder that exists, outside the box's
/// data (`data`), that the box may write.
fn usable_folder(folder: &Path, data: &Path) -> Result<(), Said> {
    let data = std::fs::canonicalize(data).unwrap_or_default();
    let real = std::fs::canonicalize(folder);
    if !folder.is_absolute() || !real.as_ref().is_ok_and(|r| r.is_dir()) {
        return Err(said("err_a_folder_that_exists_on_the"));
    }
    if real.as_ref().is_ok_and(|r| r.starts_with(&data)) {
        return Err(said("err_somewhere_else_than_the_boxs_own"));
    }
    let probe = folder.join(".bureau-write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|_| said("err_a_folder_the_box_may_write"))
}

/// The archives to remove: older than `keep_days` before `now`, never the newest.
fn expired(names: &[String], keep_days: u32, now: i64) -> Vec<String> {
    let mut dated: Vec<(i64, &String)> =
        names.iter().filter_map(|n| Some((taken(n)?, n))).collect();
    dated.sort();
    dated.pop();
    let limit = now - i64::from(keep_days) * 86_400;
    dated
        .into_iter()
        .filter(|(t, _)| *t < limit)
        .map(|(_, n)| n.clone())
        .collect()
}

impl AdminApi {
    fn schedule_file(&self) -> PathBuf {
        self.info.system_dir.join(FILE)
    }

    pub(crate) fn schedule_state(&self) -> ScheduleState {
        std::fs::read(self.schedule_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_schedule(&self, s: &ScheduleState) -> Result<(), Fail> {
        let io = |e: std::io::Error| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        };
        std::fs::create_dir_all(&self.info.system_dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(s).unwrap_or_default();
        bureau_core::files::write_secret(&self.schedule_file(), &bytes, 0o600).map_err(io)
    }

    /// The folder the settings name: the folder itself, or for `usb` the backup disk's, for
    /// `smb` the share's (with `login` given, else the one the helper keeps) and for `nfs`
    /// the export's, mounted.
    async fn target(
        &self,
        s: &ScheduleSettings,
        login: Option<helper::ShareLogin>,
    ) -> Result<PathBuf, Said> {
        let req = match (s.folder.as_str(), &s.export) {
            (USB, _) => helper::Request::MountBackupDisk,
            (SMB, _) => helper::Request::MountBackupShare { login },
            (NFS, Some(export)) => helper::Request::MountBackupExport {
                export: export.clone(),
            },
            (NFS, None) => return Err(said("err_share_server")),
            (folder, _) => return Ok(PathBuf::from(folder)),
        };
        let mounted = helper::call(
            &self.info.helper_socket,
            &req,
            std::time::Duration::from_secs(120),
        )
        .await
        .map(|out| PathBuf::from(out.trim()))
        .map_err(|e| match e {
            // The helper says its refusals of a share in the catalogues' words.
            helper::HelperError::Failed(why) => serde_json::from_str(&why)
                .unwrap_or_else(|_| said("err_plain").with("error", why.trim())),
            other => said("err_helper_unavailable").with("error", other),
        })?;
        if s.folder != NFS {
            return Ok(mounted);
        }
        // The daemon's own folder in the export, made by the daemon: a server that squashes
        // root lets the box's account alone write there.
        let folder = mounted.join(helper::BACKUP_FOLDER);
        off_runtime(move || {
            if !folder.is_dir() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&folder)
                    .map_err(|e| said("err_export_not_writable").with("error", e))?;
            }
            Ok(folder)
        })
        .await
        .unwrap_or_else(|e| Err(said("err_plain").with("error", e)))
    }

    /// The share's login or the export checked, for the folder that names it (a refusal
    /// names its field, `share.<field>` or `export.<field>`; the other is dropped); the
    /// settings keep the login without the password, which is given back for the helper.
    fn mount_settings(s: &mut ScheduleSettings) -> Result<Option<helper::ShareLogin>, Fail> {
        if s.folder != NFS {
            s.export = None;
        } else if let Some(e) = &s.export {
            e.check()
                .map_err(|(field, why)| field_fail(&format!("export.{field}"), why))?;
        } else {
            return Err(field_fail("export.server", said("err_share_server")));
        }
        if s.folder != SMB {
            s.share = None;
            return Ok(None);
        }
        let Some(login) = s.share.clone() else {
            return Err(field_fail("share.server", said("err_share_server")));
        };
        login
            .check()
            .map_err(|(field, why)| field_fail(&format!("share.{field}"), why))?;
        if let Some(kept) = &mut s.share {
            kept.password.clear();
        }
        Ok(Some(login))
    }

    /// Checks and saves the settings (the folder must exist, be writable, and not be in
    /// the box's data; for `usb`, the disk must be plugged in).
    pub(crate) async fn set_schedule(
        &self,
        mut s: ScheduleSettings,
    ) -> Result<ScheduleState, Fail> {
        if s.hour > 23 {
            return Err(field_fail("hour", said("err_an_hour_of_the_day_0")));
        }
        if s.keep_days == 0 || s.keep_days > 3650 {
            return Err(field_fail("keep_days", said("err_a_number_of_days_1_to")));
        }
        let login = Self::mount_settings(&mut s)?;
        if s.enabled || !s.folder.is_empty() {
            let target = self.target(&s, login).await.map_err(|why| {
                // Beside the field the refusal is about.
                let field = match (s.folder.as_str(), why.key.as_str()) {
                    (SMB, "err_share_refused_login") => "share.password",
                    (SMB, "err_share_no_such_share") => "share.share",
                    (SMB, _) => "share.server",
                    (NFS, "err_export_no_such") => "export.path",
                    (NFS, _) => "export.server",
                    _ => "folder",
                };
                field_fail(field, why)
            })?;
            let data = self.info.data_dir.clone();
            off_runtime(move || usable_folder(&target, Path::new(&data)))
                .await
                .unwrap_or_else(|e| Err(said("err_plain").with("error", e)))
                .map_err(|why| field_fail("folder", why))?;
        }
        let mut state = self.schedule_state();
        state.settings = s;
        self.save_schedule(&state)?;
        Ok(state)
    }

    /// The archives in the folder, newest first (none when it cannot be reached).
    pub(crate) async fn scheduled_archives(&self) -> Vec<Archive> {
        let settings = self.schedule_state().settings;
        if settings.folder.is_empty() {
            return Vec::new();
        }
        let folder = self.target(&settings, None).await.unwrap_or_default();
        let listed = off_runtime(move || {
            let mut out: Vec<Archive> = std::fs::read_dir(&folder)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    Some(Archive {
                        taken: taken(&name)?,
                        size: e.metadata().ok()?.len(),
                        name,
                    })
                })
                .collect();
            out.sort_by_key(|a| std::cmp::Reverse(a.taken));
            out
        });
        listed.await.unwrap_or_default()
    }

    /// An archive of the folder by name, for a restore.
    pub(crate) async fn scheduled_archive(&self, name: &str) -> Result<PathBuf, Fail> {
        if taken(name).is_none() || !bureau_core::homes::plain_name(name) {
            return Err(fail(StatusCode::NOT_FOUND, said("err_no_such_backup")));
        }
        let settings = self.schedule_state().settings;
        let folder = self
            .target(&settings, None)
            .await
            .map_err(|why| fail(StatusCode::SERVICE_UNAVAILABLE, why))?;
        let path = folder.join(name);
        let found = off_runtime({
            let path = path.clone();
            move || path.is_file()
        });
        if !found.await.unwrap_or(false) {
            return Err(fail(StatusCode::NOT_FOUND, said("err_no_such_backup")));
        }
        Ok(path)
    }

    /// Takes a backup into the folder now, checks it, removes the expired ones; the outcome
    /// is kept and given.
    pub(crate) async fn run_scheduled(&self) -> Result<ScheduleState, Fail> {
        let mut state = self.schedule_state();
        if state.settings.folder.is_empty() {
            return Err(field_fail(
                "folder",
                said("err_choose_the_folder_backups_go_to"),
            ));
        }
        let now = bureau_store::now();
        let name = format!(
            "{PREFIX}{}{SUFFIX}",
            chrono::DateTime::from_timestamp(now, 0)
                .unwrap_or_default()
                .format("%Y%m%d-%H%M%S")
        );
        let folder = match self.target(&state.settings, None).await {
            Ok(f) => f,
            Err(why) => {
                state.last_run = Some(now);
                state.last_error = Some(why);
                self.save_schedule(&state)?;
                return Ok(state);
            }
        };
        let (store, staging) = (
            self.store().clone(),
            PathBuf::from(&self.info.data_dir).join("backup-check"),
        );
        let keep = state.settings.keep_days;
        let target = folder.join(&name);
        let written = tokio::task::spawn_blocking(move || -> Result<Vec<String>, Said> {
            let part = target.with_extension("part");
            let writing = |e: std::io::Error| said("err_backup_writing").with("error", e);
            let plain = |e: &dyn std::fmt::Display| said("err_plain").with("error", e);
            let write = || -> Result<(), Said> {
                let mut f = std::fs::File::create(&part).map_err(writing)?;
                store.backup(&mut f).map_err(|e| plain(&e))?;
                f.sync_all().map_err(writing)?;
                let back = std::fs::File::open(&part).map_err(|e| plain(&e))?;
                let checked = bureau_store::backup::stage(std::io::BufReader::new(back), &staging);
                let _ = std::fs::remove_dir_all(&staging);
                checked.map_err(|e| said("err_backup_not_whole").with("error", e))?;
                std::fs::rename(&part, &target).map_err(|e| plain(&e))
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            let names: Vec<String> = std::fs::read_dir(target.parent().unwrap_or(Path::new("/")))
                .map_err(|e| plain(&e))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            let gone = expired(&names, keep, now);
            for n in &gone {
                let _ = std::fs::remove_file(target.with_file_name(n));
            }
            Ok(gone)
        })
        .await
        .map_err(|e| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        })?;
        state.last_run = Some(now);
        match written {
            Ok(gone) => {
                log::info!(
                    "backup: {name} written and checked; {} old removed",
                    gone.len()
                );
                state.last_good = Some((name, now));
                state.last_error = None;
                if let Err(e) = bureau_core::system::record_backup(&self.info.system_dir, now) {
                    log::warn!("backup: recording its time: {e}");
                }
            }
            Err(e) => {
                log::error!("backup: the scheduled backup failed: {e}");
                state.last_error = Some(e);
            }
        }
        self.save_schedule(&state)?;
        Ok(state)
    }

    /// Runs the scheduled backup at its hour, once a day, until the runtime ends.
    pub fn schedule_backups(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let s = me.schedule_state();
                let now = Utc::now();
                let today = now.date_naive();
                let ran_today = s
                    .last_run
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .is_some_and(|t| t.date_naive() == today);
                if s.settings.enabled && now.hour() == s.settings.hour && !ran_today {
                    let _ = me.run_scheduled().await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_archives_go_and_the_newest_stays() {
        let names: Vec<String> = [
            "bureau-backup-20261101-020000.tar.gz",
            "bureau-backup-20261120-020000.tar.gz",
            "bureau-backup-20261204-020000.tar.gz",
            "notes.txt",
        ]
        .map(String::from)
        .to_vec();
        let now = taken("bureau-backup-20261205-020000.tar.gz").unwrap();
        assert_eq!(
            expired(&names, 20, now),
            ["bureau-backup-20261101-020000.tar.gz"]
        );
        assert_eq!(expired(&names, 14, now).len(), 2);
        // Everything is old: the newest stays all the same.
        assert_eq!(expired(&names, 1, now + 400 * 86_400).len(), 2);
        assert_eq!(taken("bureau-backup-x.tar.gz"), None);
    }
}
