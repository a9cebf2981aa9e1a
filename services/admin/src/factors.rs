//! The admin API's routes for a user's two-factor sign-in (TOTP) and application passwords
//! (bureau_directory::second). A user sets up their own; an administrator may turn off a
//! user's two-factor sign-in (a lost phone) and revoke their application passwords, never
//! see or make one.

use crate::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Name {
    name: String,
}

/// `POST /users/{uid}/totp`: the secret, its URI and the URI as a QR code (an SVG data URL).
#[derive(Serialize)]
struct Enrolment {
    #[serde(flatten)]
    enrolment: bureau_directory::second::TotpEnrolment,
    qr: String,
}

/// `POST /users/{uid}/app-passwords`: the entry and the password, shown this once.
#[derive(Serialize)]
struct NewAppPassword {
    #[serde(flatten)]
    entry: bureau_directory::second::AppPassword,
    password: String,
}

fn own(who: &Who, uid: &str) -> Result<(), Fail> {
    if who.uid.as_deref() == Some(uid) {
        Ok(())
    } else {
        Err(fail(
            StatusCode::FORBIDDEN,
            said("err_only_the_user_may_set_this"),
        ))
    }
}

impl AdminApi {
    pub(crate) async fn factors_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            (&Method::POST, ["users", uid, "totp"]) => {
                own(who, uid)?;
                let enrolment = self.dir().totp_begin(uid, &self.info.hostname).await?;
                let svg = qrcode::QrCode::new(enrolment.uri.as_bytes())
                    .map_err(|e| {
                        fail(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            said("err_plain").with("error", e),
                        )
                    })?
                    .render::<qrcode::render::svg::Color>()
                    .min_dimensions(200, 200)
                    .build();
                use base64::Engine;
                let qr = format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                );
                Ok(json(StatusCode::OK, &Enrolment { enrolment, qr }))
            }
            (&Method::PUT, ["users", uid, "totp"]) => {
                own(who, uid)?;
                let c: Code = body(req).await?;
                self.dir().totp_confirm(uid, &c.code).await?;
                log::info!("admin: {uid} turned two-factor sign-in on");
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid, "totp"]) => {
                own_or_admin(who, uid)?;
                self.dir().totp_disable(uid).await?;
                log::info!("admin: two-factor sign-in of {uid} turned off");
                Ok(no_content())
            }
            (&Method::POST, ["users", uid, "app-passwords"]) => {
                own(who, uid)?;
                let n: Name = body(req).await?;
                let (entry, password) = self.dir().add_app_password(uid, &n.name).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &NewAppPassword { entry, password },
                ))
            }
            (&Method::DELETE, ["users", uid, "app-passwords", id]) => {
                own_or_admin(who, uid)?;
                self.dir().delete_app_password(uid, id).await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// The console's second step: a code when the user's two-factor sign-in is on. A wrong
    /// one counts as a failed sign-in for the brute-force guard.
    pub(crate) async fn second_factor(
        &self,
        user: &bureau_directory::User,
        code: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), Fail> {
        if !self.dir().totp_enabled(&user.uid)? {
            return Ok(());
        }
        let refuse = |why: Said| Err(field_fail_as(StatusCode::UNAUTHORIZED, "code", why));
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return refuse(said("err_type_the_code"));
        };
        // Codes are counted apart from passwords: the right password before each guess
        // clears the password's count, not this one.
        let guard = self.auth.guard();
        let account = format!("{}#code", user.uid);
        if let Err(e) = guard.wait_turn(ip, &account).await {
            log::info!("admin: second factor of {}: {e}", user.uid);
            return Err(fail(
                StatusCode::TOO_MANY_REQUESTS,
                said("err_too_many_attempts"),
            ));
        }
        if self.dir().totp_check(&user.uid, code).await? {
            guard.record_success(ip, &account);
            return Ok(());
        }
        guard.record_failure(ip, &account);
        log::info!("auth: console login {:?} from {ip}: wrong code", user.uid);
        refuse(said("err_wrong_code"))
    }
}
