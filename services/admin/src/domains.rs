//! The admin API's routes for mail domains (with the DNS records they need) and the
//! outgoing mail queue.

use crate::*;

impl AdminApi {
    /// The routes under `/api/v1/` that are about domains and the mail queue.
    pub(crate) async fn domains_routes(
        &self,
        method: &Method,
        seg: &[&str],
        req: Request<Incoming>,
        who: &Who,
    ) -> Result<Resp, Fail> {
        match (method, seg) {
            // ---- domains ----
            (&Method::GET, ["domains"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.dir().domains()?))
            }
            (&Method::POST, ["domains"]) => {
                admin_only(who)?;
                let nd: NewDomain = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.dir().add_domain(&nd.name).await?,
                ))
            }
            (&Method::PATCH, ["domains", name]) => {
                admin_only(who)?;
                let ch: DomainChanges = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self
                        .dir()
                        .set_catch_all(name, ch.catch_all.as_deref())
                        .await?,
                ))
            }
            (&Method::PUT, ["domains", name, "syncml"]) => {
                admin_only(who)?;
                let policy: bureau_directory::SyncMlPolicy = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.dir().set_syncml(name, policy).await?,
                ))
            }
            (&Method::GET, ["domains", name, "dns"]) => {
                admin_only(who)?;
                let mut records = self.dns_records(name)?;
                // ?check=1: whether each is published yet, asked of DNS.
                if query_param(&req, "check").as_deref() == Some("1") {
                    self.check_published(&mut records).await;
                }
                Ok(json(StatusCode::OK, &records))
            }
            (&Method::DELETE, ["domains", name]) => {
                admin_only(who)?;
                self.dir().delete_domain(name).await?;
                Ok(no_content())
            }
            // ---- mail queue ----
            (&Method::GET, ["queue"]) => {
                admin_only(who)?;
                Ok(json(StatusCode::OK, &self.queue()?.list()?))
            }
            (&Method::POST, ["queue", id, "retry"]) => {
                admin_only(who)?;
                self.queue()?.retry(id).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["queue", id]) => {
                admin_only(who)?;
                self.queue()?.delete(id).await?;
                Ok(no_content())
            }
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
        }
    }

    /// Asks DNS whether each record is published (left unasked without mail).
    pub(crate) async fn check_published(&self, records: &mut [DnsRecord]) {
        let Some(q) = &self.queue else { return };
        let wanted: Vec<(String, String, String)> = records
            .iter()
            .map(|r| (r.name.clone(), r.kind.clone(), r.value.clone()))
            .collect();
        for (r, p) in records.iter_mut().zip(q.check_dns(&wanted).await) {
            r.published = Some(p);
        }
    }

    /// What to publish in DNS for a domain: MX, SPF, DKIM and DMARC.
    pub(crate) fn dns_records(&self, name: &str) -> Result<Vec<DnsRecord>, Fail> {
        let d = self.dir().domain(name)?.ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                said("err_domain_not_found").with("name", name),
            )
        })?;
        let host = &self.info.hostname;
        let rec = |name: String, kind: &str, value: String, purpose: Said| DnsRecord {
            name,
            kind: kind.into(),
            value,
            purpose,
            published: None,
        };
        let mut out = vec![
            rec(
                format!("{}.", d.name),
                "MX",
                format!("10 {host}."),
                said("dns_mx"),
            ),
            rec(
                format!("{}.", d.name),
                "TXT",
                "v=spf1 mx ~all".into(),
                said("dns_spf"),
            ),
        ];
        if let (Some(sel), Some(key)) = (&d.dkim_selector, &d.dkim_public_key) {
            out.push(rec(
                format!("{sel}._domainkey.{}.", d.name),
                "TXT",
                format!("v=DKIM1; k=rsa; p={key}"),
                said("dns_dkim"),
            ));
        }
        out.push(rec(
            format!("_dmarc.{}.", d.name),
            "TXT",
            format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{}", d.name),
            said("dns_dmarc"),
        ));
        out.push(rec(
            format!("autoconfig.{}.", d.name),
            "CNAME",
            format!("{host}."),
            said("dns_autoconfig"),
        ));
        for (service, port, what) in [
            ("_imaps._tcp", 993, said("dns_imaps")),
            ("_submissions._tcp", 465, said("dns_submissions")),
            ("_submission._tcp", 587, said("dns_submission")),
            ("_caldavs._tcp", 443, said("dns_caldavs")),
            ("_carddavs._tcp", 443, said("dns_carddavs")),
        ] {
            out.push(rec(
                format!("{service}.{}.", d.name),
                "SRV",
                format!("0 1 {port} {host}."),
                what,
            ));
        }
        Ok(out)
    }

    fn queue(&self) -> Result<&bureau_smtp::Queue, Fail> {
        self.queue
            .as_ref()
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, said("err_mail_is_not_enabled")))
    }
}
