//! Provision (MS-ASPROV): the device asks for the policy, is given it with a temporary key,
//! acknowledges it with that key and receives the key every later command presents.
//!
//! The policy is the permissive one a small office's server gives (no device password
//! required, attachments and HTML allowed). Devices speaking 12.0 get only the settings 12.0
//! knows: Outlook 2007 loops on a policy holding newer ones.

use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document, text, version_number};
use bureau_store::StoreError;
use hyper::StatusCode;

const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";
/// The temporary key a device was given, until it acknowledges the policy.
const PENDING: &str = "pending_policy_key";

/// Provision status and policy status codes (MS-ASPROV 2.2.2.54).
mod status {
    pub const SUCCESS: &str = "1";
    pub const PROTOCOL_ERROR: &str = "2";
    pub const UNKNOWN_POLICY_TYPE: &str = "3";
    pub const WRONG_POLICY_KEY: &str = "5";
}

/// Command status codes for a device that has not acknowledged the policy (MS-ASCMD
/// 2.2.2 common status codes): 14.0 and later say it in the command's answer.
const DEVICE_NOT_PROVISIONED: &str = "142";
const POLICY_REFRESH: &str = "144";

/// The answer for a device whose policy key is missing or not the one it acknowledged:
/// HTTP 449 before 14.0, the command's status 142 or 144 from 14.0 on. None: go ahead.
pub fn refuse_unprovisioned(cx: &Context) -> Option<Resp> {
    let current = cx.device.policy_key;
    let presented = cx.req.policy_key.unwrap_or(0);
    if current != 0 && presented == current && !cx.device.wipe_requested {
        return None;
    }
    let code = if presented == 0 {
        DEVICE_NOT_PROVISIONED
    } else {
        POLICY_REFRESH
    };
    match cx.req.cmd.root() {
        Some((p, root)) if version_number(&cx.req.version) >= 140 => {
            Some(document(&Element::new(p, root).with_text("Status", code)))
        }
        _ => Some(text(
            StatusCode::from_u16(449).expect("449 is a status code"),
            "Retry after sending a Provision command",
        )),
    }
}

fn new_key() -> u32 {
    loop {
        let k: u32 = rand::random();
        if k != 0 {
            return k;
        }
    }
}

/// The policy document for this protocol version.
fn policy_doc(version: u32) -> Element {
    let base: &[(&'static str, &str)] = &[
        ("DevicePasswordEnabled", "0"),
        ("AlphanumericDevicePasswordRequired", "0"),
        ("PasswordRecoveryEnabled", "0"),
        ("DeviceEncryptionEnabled", "0"),
        ("AttachmentsEnabled", "1"),
        ("MinDevicePasswordLength", "1"),
        ("MaxInactivityTimeDeviceLock", "9999"),
        ("MaxDevicePasswordFailedAttempts", "8"),
        ("AllowSimpleDevicePassword", "1"),
        ("DevicePasswordExpiration", "0"),
        ("DevicePasswordHistory", "0"),
    ];
    let since_12_1: &[(&'static str, &str)] = &[
        ("AllowStorageCard", "1"),
        ("AllowCamera", "1"),
        ("RequireDeviceEncryption", "0"),
        ("AllowUnsignedApplications", "1"),
        ("AllowUnsignedInstallationPackages", "1"),
        ("MinDevicePasswordComplexCharacters", "1"),
        ("AllowWiFi", "1"),
        ("AllowTextMessaging", "1"),
        ("AllowPOPIMAPEmail", "1"),
        ("AllowBluetooth", "2"),
        ("AllowIrDA", "1"),
        ("RequireManualSyncWhenRoaming", "0"),
        ("AllowDesktopSync", "1"),
        ("MaxCalendarAgeFilter", "0"),
        ("AllowHTMLEmail", "1"),
        ("MaxEmailAgeFilter", "0"),
        ("MaxEmailBodyTruncationSize", "-1"),
        ("MaxEmailHTMLBodyTruncationSize", "-1"),
        ("RequireSignedSMIMEMessages", "0"),
        ("RequireEncryptedSMIMEMessages", "0"),
        ("RequireSignedSMIMEAlgorithm", "0"),
        ("RequireEncryptionSMIMEAlgorithm", "0"),
        ("AllowSMIMEEncryptionAlgorithmNegotiation", "2"),
        ("AllowSMIMESoftCerts", "1"),
        ("AllowBrowser", "1"),
        ("AllowConsumerEmail", "1"),
        ("AllowRemoteDesktop", "1"),
        ("AllowInternetSharing", "1"),
    ];
    let mut doc = Element::new(page::PROVISION, "EASProvisionDoc");
    for (k, v) in base {
        doc = doc.with_text(k, *v);
    }
    if version >= 121 {
        for (k, v) in since_12_1 {
            doc = doc.with_text(k, *v);
        }
        doc = doc
            .with(Element::new(
                page::PROVISION,
                "UnapprovedInROMApplicationList",
            ))
            .with(Element::new(page::PROVISION, "ApprovedApplicationList"));
    }
    doc
}

/// Outlook may take a new DeviceId when it restarts. An Outlook provisioning for the first
/// time that describes itself exactly as another of the user's devices (same type, model,
/// name and system, all given) is that machine: the old record goes, and a wipe asked for
/// it carries over. Gives whether the device is now to be wiped.
async fn succeeds(eas: &ActiveSync, cx: &mut Context) -> Result<bool, StoreError> {
    const SAME: [&str; 4] = ["type", "Model", "FriendlyName", "OS"];
    let me = &cx.device;
    let outlook = me
        .info
        .get("type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("windowsoutlook"));
    if !outlook
        || SAME
            .iter()
            .any(|k| me.info.get(*k).is_none_or(|v| v.is_empty()))
    {
        return Ok(false);
    }
    let principal = cx.user.principal;
    let others = eas
        .store()
        .reader(bureau_store::Actor::Principal(principal))?
        .devices(principal)?;
    let Some(old) = others
        .into_iter()
        .find(|d| d.id != me.id && SAME.iter().all(|k| d.info.get(*k) == me.info.get(*k)))
    else {
        return Ok(false);
    };
    log::info!(
        "activesync: {}'s device {} is {} under a new id; the old record goes",
        cx.user.uid,
        cx.device.id,
        old.id
    );
    let gone = old.id.clone();
    eas.store()
        .write(
            bureau_store::Actor::Principal(principal),
            vec![],
            move |w| w.delete_device(principal, &gone),
        )
        .await?;
    if old.wipe_requested {
        cx.device.wipe_requested = true;
    }
    Ok(cx.device.wipe_requested)
}

pub async fn provision(
    eas: &ActiveSync,
    cx: &mut Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let answer = |s: &str| Element::new(page::PROVISION, "Provision").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "Provision") else {
        return Ok(document(&answer(status::PROTOCOL_ERROR)));
    };
    // A wiped device: told to wipe itself until it says it has.
    if cx.device.wipe_requested {
        if let Some(ack) = doc.child("RemoteWipe") {
            cx.device.info.insert(
                "wipe_acknowledged".into(),
                ack.child_value("Status").unwrap_or_default(),
            );
            eas.save_device(cx.user.principal, &cx.device).await?;
            log::warn!(
                "activesync: {}'s device {} acknowledged the remote wipe",
                cx.user.uid,
                cx.device.id
            );
            return Ok(document(&answer(status::SUCCESS)));
        }
        return Ok(document(
            &answer(status::SUCCESS).with(Element::new(page::PROVISION, "RemoteWipe")),
        ));
    }
    let mut out = Element::new(page::PROVISION, "Provision");
    if let Some(set) = doc.child("DeviceInformation").and_then(|d| d.child("Set")) {
        crate::commands::settings::record_device_information(cx, set);
        out = out.with(Element::new(page::SETTINGS, "DeviceInformation").with_text("Status", "1"));
        if cx.device.policy_key == 0 && succeeds(eas, cx).await? {
            // The same machine under its new DeviceId, and it was to be wiped: it still is.
            eas.save_device(cx.user.principal, &cx.device).await?;
            return Ok(document(
                &answer(status::SUCCESS).with(Element::new(page::PROVISION, "RemoteWipe")),
            ));
        }
    }
    let Some(policy) = doc.child("Policies").and_then(|p| p.child("Policy")) else {
        eas.save_device(cx.user.principal, &cx.device).await?;
        return Ok(document(&answer(status::PROTOCOL_ERROR)));
    };
    out = out.with_text("Status", status::SUCCESS);
    let ptype = policy.child_value("PolicyType").unwrap_or_default();
    let mut reply = Element::new(page::PROVISION, "Policy").with_text("PolicyType", ptype.clone());
    if ptype != POLICY_TYPE {
        reply = reply.with_text("Status", status::UNKNOWN_POLICY_TYPE);
    } else {
        match policy.child_value("PolicyKey") {
            None => {
                let temp = new_key();
                cx.device.info.insert(PENDING.into(), temp.to_string());
                reply = reply
                    .with_text("Status", status::SUCCESS)
                    .with_text("PolicyKey", temp.to_string())
                    .with(
                        Element::new(page::PROVISION, "Data")
                            .with(policy_doc(version_number(&cx.req.version))),
                    );
            }
            Some(acked) if cx.device.info.get(PENDING) == Some(&acked) => {
                let key = new_key();
                cx.device.policy_key = key;
                cx.device.info.remove(PENDING);
                reply = reply
                    .with_text("Status", status::SUCCESS)
                    .with_text("PolicyKey", key.to_string());
                log::info!(
                    "activesync: {} provisioned device {}",
                    cx.user.uid,
                    cx.device.id
                );
            }
            Some(_) => reply = reply.with_text("Status", status::WRONG_POLICY_KEY),
        }
    }
    eas.save_device(cx.user.principal, &cx.device).await?;
    out = out.with(Element::new(page::PROVISION, "Policies").with(reply));
    Ok(document(&out))
}
