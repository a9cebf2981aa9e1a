//! Service accounts: read-only identities for applications on the LAN (a wiki, a printer's
//! address book, the proxy's authentication helper) to bind to LDAP with. Not people: no
//! mail, no login elsewhere. The password is made by the box, shown once, stored as an
//! argon2id hash.

use crate::{Directory, DirectoryError, Result, dec, get, put, validate};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use bureau_words::said;
use serde::{Deserialize, Serialize};

const NS_SERVICE: &str = "service";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub created: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    account: ServiceAccount,
    phc: String,
}

/// A password the box made and its hash, not yet any account's: for a caller that puts the
/// password in place before the account takes it ([`Directory::give_service_secret`]).
pub struct ServiceSecret {
    pub password: String,
    phc: String,
}

/// 24 random bytes as base64url: what is handed out once.
fn make_password() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random::<24>())
}

impl Directory {
    /// A new password and its hash (off the async threads).
    async fn new_secret(&self) -> Result<(String, String)> {
        let password = make_password();
        let this = self.clone();
        let p = password.clone();
        let phc = tokio::task::spawn_blocking(move || this.hash_password(&p))
            .await
            .map_err(|e| bureau_store::StoreError::Io(e.to_string()))??;
        Ok((password, phc))
    }

    pub fn service_accounts(&self) -> Result<Vec<ServiceAccount>> {
        let r = self.store().reader(bureau_store::Actor::System)?;
        r.kv_list(NS_SERVICE)?
            .into_iter()
            .map(|(_, v)| dec::<Stored>(&v).map(|s| s.account))
            .collect()
    }

    /// Makes an account; gives it and its password (told this once).
    pub async fn add_service_account(
        &self,
        name: &str,
        description: &str,
    ) -> Result<(ServiceAccount, String)> {
        let name = validate::name("name", name)?;
        if self.user(&name)?.is_some() || self.group(&name)?.is_some() {
            return Err(DirectoryError::Exists {
                field: "name",
                value: name,
            });
        }
        let description = description.trim().chars().take(256).collect::<String>();
        let (password, phc) = self.new_secret().await?;
        let account = ServiceAccount {
            name: name.clone(),
            description,
            created: bureau_store::now(),
        };
        let stored = Stored {
            account: account.clone(),
            phc,
        };
        self.write(move |w| {
            if get::<Stored>(w, NS_SERVICE, &stored.account.name)?.is_some() {
                return Err(DirectoryError::Exists {
                    field: "name",
                    value: stored.account.name.clone(),
                });
            }
            put(w, NS_SERVICE, &stored.account.name, &stored)
        })
        .await?;
        Ok((account, password))
    }

    /// A new password, for [`Directory::give_service_secret`].
    pub async fn new_service_secret(&self) -> Result<ServiceSecret> {
        let (password, phc) = self.new_secret().await?;
        Ok(ServiceSecret { password, phc })
    }

    /// Gives the account `secret` (its old password stops working), making the account with
    /// `description` if there is none.
    pub async fn give_service_secret(
        &self,
        name: &str,
        description: &str,
        secret: ServiceSecret,
    ) -> Result<ServiceAccount> {
        let name = validate::name("name", name)?;
        if self.user(&name)?.is_some() || self.group(&name)?.is_some() {
            return Err(DirectoryError::Exists {
                field: "name",
                value: name,
            });
        }
        let fresh = ServiceAccount {
            name,
            description: description.trim().chars().take(256).collect(),
            created: bureau_store::now(),
        };
        let phc = secret.phc;
        self.write(move |w| {
            let account = get::<Stored>(w, NS_SERVICE, &fresh.name)?
                .map_or_else(|| fresh.clone(), |s| s.account);
            let stored = Stored {
                account: account.clone(),
                phc: phc.clone(),
            };
            put(w, NS_SERVICE, &account.name, &stored)?;
            Ok(account)
        })
        .await
    }

    /// A new password for an account (the old one stops working); gives the account and
    /// the password, told this once.
    pub async fn reset_service_account(&self, name: &str) -> Result<(ServiceAccount, String)> {
        let name = name.trim().to_ascii_lowercase();
        let (password, phc) = self.new_secret().await?;
        let account = self
            .write(move |w| {
                let mut s: Stored = get(w, NS_SERVICE, &name)?.ok_or_else(|| {
                    DirectoryError::NotFound(said("err_nf_service_account").with("name", &name))
                })?;
                s.phc = phc.clone();
                put(w, NS_SERVICE, &name, &s)?;
                Ok(s.account)
            })
            .await?;
        Ok((account, password))
    }

    pub async fn delete_service_account(&self, name: &str) -> Result<()> {
        let name = name.trim().to_ascii_lowercase();
        self.write(move |w| {
            if !w.kv_delete(NS_SERVICE, &name)? {
                return Err(DirectoryError::NotFound(
                    said("err_nf_service_account").with("name", &name),
                ));
            }
            Ok(())
        })
        .await
    }

    /// Checks an account's password; the same work for an unknown name. CPU-heavy: call
    /// from a blocking context.
    pub fn verify_service_account(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<ServiceAccount>> {
        let name = name.trim().to_ascii_lowercase();
        let r = self.store().reader(bureau_store::Actor::System)?;
        let stored: Option<Stored> = r.kv_get(NS_SERVICE, &name)?.map(|b| dec(&b)).transpose()?;
        let phc = stored
            .as_ref()
            .map_or(self.dummy_hash(), |s| s.phc.as_str());
        let parsed =
            PasswordHash::new(phc).map_err(|e| bureau_store::StoreError::Corrupt(e.to_string()))?;
        let ok = self
            .argon2()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(stored.filter(|_| ok).map(|s| s.account))
    }
}
