//! The office directory: domains, users, groups and addresses, kept in the store.
//!
//! Invariants:
//! - Every address (primary, alias, group address) names one user or group, box-wide
//!   (`addr` index), and its domain exists.
//! - A user or group is a store principal of the same name; the records here add what the
//!   protocols need (addresses, display names, quota, membership by name).
//! - Secrets live apart from the records: the argon2id PHC string (`secret`) and the NT
//!   hash for Samba (`nthash`). Records handed out never carry them.
//! - A change is one store write: all of it lands or none.

pub mod company;
pub mod resource;
pub use resource::{BookingPolicy, NewResource, Resource, ResourceKind};

/// A domain's LDAP naming context: `example.com` -> `dc=example,dc=com` (the directory
/// as LDAP shows it; the proxy and service accounts name it too).
pub fn ldap_suffix(domain: &str) -> String {
    domain
        .split('.')
        .map(|p| format!("dc={p}"))
        .collect::<Vec<_>>()
        .join(",")
}
mod login_cache;
pub mod second;
pub mod service;
pub mod validate;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use bureau_store::{Actor, CollectionKind, PrincipalKind, Store, StoreError, Writer, now};
use bureau_words::{Said, said};
use login_cache::LoginCache;
use md4::{Digest, Md4};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// What is wrong, in the catalogues' words (bureau_words).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: Said },
    #[error("{field}: {value} already exists")]
    Exists { field: &'static str, value: String },
    /// "user carol not found".
    #[error("{0}")]
    NotFound(Said),
    #[error("{0}")]
    InUse(Said),
    /// The change would leave the office without an enabled administrator (recovery would
    /// need root on the box).
    #[error("{0} is the last administrator: make another user an administrator first")]
    LastAdmin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

impl DirectoryError {
    /// The field an administrator should fix, for forms.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DirectoryError::Invalid { field, .. } | DirectoryError::Exists { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub created: i64,
    /// The user who receives mail for unknown addresses of this domain.
    #[serde(default)]
    pub catch_all: Option<String>,
    /// DKIM selector and public key (base64 of the PKCS#1 DER), to publish in DNS. The
    /// private key is kept apart.
    #[serde(default)]
    pub dkim_selector: Option<String>,
    #[serde(default)]
    pub dkim_public_key: Option<String>,
    /// Whether its users may sync over SyncML, and how they sign in there.
    #[serde(default)]
    pub syncml: SyncMlPolicy,
}

/// A domain's SyncML rules, as IceWarp's: the service on or off, and the sign-in it takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMlPolicy {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub auth: SyncMlAuth,
}

impl Default for SyncMlPolicy {
    fn default() -> Self {
        SyncMlPolicy {
            enabled: true,
            auth: SyncMlAuth::Any,
        }
    }
}

/// Which SyncML sign-in a domain takes: a device offering the other is asked once for
/// this one, then refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMlAuth {
    /// `syncml:auth-basic` or `syncml:auth-md5`.
    #[default]
    Any,
    Basic,
    Md5,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: String,
    pub principal: u64,
    /// Primary address.
    pub address: String,
    pub display_name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Bytes; `None` is unlimited.
    #[serde(default)]
    pub quota: Option<u64>,
    pub enabled: bool,
    #[serde(default)]
    pub admin: bool,
    pub created: i64,
    /// Work telephone number, for the address books (LDAP, the company's vCards).
    #[serde(default)]
    pub phone: Option<String>,
    /// Set for a room or equipment (resource.rs): nobody signs in as it.
    #[serde(default)]
    pub resource: Option<Box<Resource>>,
    /// May sync over SyncML (if the domain allows it).
    #[serde(default = "yes")]
    pub syncml: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub principal: u64,
    pub display_name: String,
    /// Mail to this address fans out to the members.
    #[serde(default)]
    pub address: Option<String>,
    /// Member uids.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewUser {
    pub address: String,
    /// Defaults to the address's local part.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    pub password: String,
    #[serde(default)]
    pub quota: Option<u64>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserChanges {
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Some(None)` removes the quota.
    #[serde(default, with = "double_option")]
    pub quota: Option<Option<u64>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub admin: Option<bool>,
    #[serde(default)]
    pub add_aliases: Vec<String>,
    #[serde(default)]
    pub remove_aliases: Vec<String>,
    /// A number sets it, "" removes it.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub syncml: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Option<u64>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
        Option::<u64>::deserialize(d).map(Some)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

/// What an address delivers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    User(User),
    Group(Group),
}

/// The outcome of a password check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    Ok(User),
    /// Unknown login or wrong password: the caller cannot tell which, nor can the client.
    BadCredentials,
    Disabled,
}

// KV namespaces.
const NS_DOMAIN: &str = "domain";
const NS_USER: &str = "user";
const NS_GROUP: &str = "group";
const NS_ADDR: &str = "addr";
const NS_SECRET: &str = "secret";
const NS_NTHASH: &str = "nthash";
const NS_SYNCML_MD5: &str = "syncml-md5";
const NS_DKIM: &str = "dkim";

/// The mailboxes (with their special use) and other collections every new user gets.
pub const DEFAULT_COLLECTIONS: &[(CollectionKind, &str, Option<&str>)] = &[
    (CollectionKind::Mailbox, "INBOX", None),
    (CollectionKind::Mailbox, "Drafts", Some("\\Drafts")),
    (CollectionKind::Mailbox, "Sent", Some("\\Sent")),
    (CollectionKind::Mailbox, "Trash", Some("\\Trash")),
    (CollectionKind::Mailbox, "Junk", Some("\\Junk")),
    (CollectionKind::Mailbox, "Archive", Some("\\Archive")),
    (CollectionKind::Calendar, "calendar", None),
    (CollectionKind::AddressBook, "contacts", None),
    (CollectionKind::TaskList, "tasks", None),
    (CollectionKind::Notes, "notes", None),
];

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(v).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    rmp_serde::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

/// N bytes from the system's random source (secrets the box hands out).
fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system's random source");
    b
}

fn get<T: DeserializeOwned>(w: &Writer, ns: &str, key: &str) -> Result<Option<T>> {
    w.kv_get(ns, key)?.map(|b| dec(&b)).transpose()
}

fn put<T: Serialize>(w: &mut Writer, ns: &str, key: &str, v: &T) -> Result<()> {
    w.kv_put(ns, key, &enc(v)?)?;
    Ok(())
}

/// Address index entries.
fn addr_target_user(uid: &str) -> String {
    format!("u:{uid}")
}
fn addr_target_group(name: &str) -> String {
    format!("g:{name}")
}

/// Claims an address for `target`, checking its syntax and domain. Returns the normalised form.
fn claim_address(w: &mut Writer, field: &'static str, input: &str, target: &str) -> Result<String> {
    let (local, dom) = validate::address(field, input)?;
    if w.kv_get(NS_DOMAIN, &dom)?.is_none() {
        return Err(crate::validate::invalid(
            field,
            said("err_is_not_one_of_this_boxs").with("dom", &dom),
        ));
    }
    let addr = format!("{local}@{dom}");
    if w.kv_get(NS_ADDR, &addr)?.is_some() {
        return Err(DirectoryError::Exists { field, value: addr });
    }
    w.kv_put(NS_ADDR, &addr, target.as_bytes())?;
    Ok(addr)
}

/// SyncML's MD5 credential for a login (OMA DS 1.2, "syncml:auth-md5"): base64 of
/// MD5("login:password"). Kept beside the password hash, for each name the user signs in
/// with, as the NT hash is for Samba: a fast, unsalted digest (docs/SECURITY.md says what
/// that costs).
pub fn syncml_md5(login: &str, password: &str) -> String {
    use base64::Engine;
    let d = md5::Md5::digest(format!("{login}:{password}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// What a device sends for a credential and a nonce: base64 of MD5(credential ":" nonce).
pub fn syncml_md5_response(credential: &str, nonce: &[u8]) -> String {
    use base64::Engine;
    let mut data = format!("{credential}:").into_bytes();
    data.extend_from_slice(nonce);
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&data))
}

/// A user's MD5 credentials, by login (uid and primary address).
fn syncml_credentials(u: &User, password: &str) -> BTreeMap<String, String> {
    [u.uid.clone(), u.address.clone()]
        .into_iter()
        .map(|login| {
            let d = syncml_md5(&login, password);
            (login, d)
        })
        .collect()
}

/// The NT hash Samba uses: MD4 of the UTF-16LE password.
pub fn nt_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&utf16).into()
}

#[derive(Clone, Debug)]
pub struct DirectoryOptions {
    pub min_password_len: usize,
    /// RSA key size for new domains' DKIM keys.
    pub dkim_bits: usize,
    /// argon2id memory (KiB), iterations and lanes.
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    pub argon2_p: u32,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        // OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane).
        DirectoryOptions {
            min_password_len: 8,
            dkim_bits: 2048,
            argon2_m_kib: 19 * 1024,
            argon2_t: 2,
            argon2_p: 1,
        }
    }
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
    opts: DirectoryOptions,
    /// A hash to verify against when the login is unknown, so that timing does not tell.
    dummy_hash: String,
    logins: Arc<LoginCache>,
    /// Counts the directory's changes, for those that follow it (Samba's accounts).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Directory {
    /// The fewest characters a password may have.
    pub fn min_password_len(&self) -> usize {
        self.opts.min_password_len
    }

    pub fn new(store: Store, opts: DirectoryOptions) -> Result<Directory> {
        let mut d = Directory {
            store,
            opts,
            dummy_hash: String::new(),
            logins: Arc::new(LoginCache::new()),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        d.dummy_hash = d.unmatchable_hash()?;
        Ok(d)
    }

    /// A PHC string with this directory's argon2 parameters, a random salt and a random
    /// output: verifying a password against it costs what verifying a real one does, and no
    /// password gives those 32 bytes. Made without hashing anything, so the daemon does not
    /// spend a hash's time and memory at every start (most of its start under emulation:
    /// issue 23).
    fn unmatchable_hash(&self) -> Result<String> {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        use argon2::password_hash::{Output, ParamsString};
        let bad = |e: argon2::password_hash::Error| StoreError::Io(format!("hashing: {e}"));
        let params = self.argon2_params()?;
        let salt = SaltString::generate(&mut OsRng);
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        OsRng.fill_bytes(&mut output);
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(bad)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(bad)?),
        };
        Ok(phc.to_string())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A hash no password matches, so unknown names cost what known ones do.
    fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    fn argon2_params(&self) -> Result<Params> {
        Params::new(
            self.opts.argon2_m_kib,
            self.opts.argon2_t,
            self.opts.argon2_p,
            None,
        )
        .map_err(|e| crate::validate::invalid("argon2", said("err_plain").with("error", e)))
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        Ok(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.argon2_params()?,
        ))
    }

    /// argon2id PHC string. CPU-heavy: call from a blocking context.
    pub fn hash_password(&self, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let hash = self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StoreError::Io(format!("hashing: {e}")))?;
        Ok(hash.to_string())
    }

    /// The argon2id PHC string and the NT hash of a new password, off the async threads.
    async fn secrets(&self, password: &str) -> Result<(String, [u8; 16])> {
        let this = self.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            this.hash_password(&password)
                .map(|h| (h, nt_hash(&password)))
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
    }

    fn read<T: DeserializeOwned>(&self, ns: &str, key: &str) -> Result<Option<T>> {
        let r = self.store.reader(Actor::System)?;
        r.kv_get(ns, key)?.map(|b| dec(&b)).transpose()
    }

    fn list<T: DeserializeOwned>(&self, ns: &str) -> Result<Vec<T>> {
        let r = self.store.reader(Actor::System)?;
        r.kv_list(ns)?.into_iter().map(|(_, v)| dec(&v)).collect()
    }

    async fn write<T: Send + 'static>(
        &self,
        op: impl Fn(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let done = self.store.write(Actor::System, vec![], op).await;
        if done.is_ok() {
            self.changes.send_modify(|n| *n += 1);
        }
        done
    }

    /// Wakes after each change to domains, users, groups or service accounts.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    // ---- domains ----

    /// Adds a domain, with the DKIM key its outgoing mail is signed with.
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = validate::domain(name)?;
        if self.domain(&name)?.is_some() {
            return Err(DirectoryError::Exists {
                field: "domain",
                value: name,
            });
        }
        let bits = self.opts.dkim_bits;
        let (private, public) = tokio::task::spawn_blocking(move || {
            mail_auth::dkim::generate::DkimKeyPair::generate_rsa(bits).map(|k| k.into_inner())
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
        .map_err(|e| StoreError::Io(format!("making the DKIM key: {e}")))?;
        use base64::Engine;
        let public = base64::engine::general_purpose::STANDARD.encode(public);
        // One selector per year of creation, so that a later rotation can use a new one.
        let year = 1970 + now() / 31_556_952;
        let selector = format!("bureau{year}");
        self.write(move |w| {
            if w.kv_get(NS_DOMAIN, &name)?.is_some() {
                return Err(DirectoryError::Exists {
                    field: "domain",
                    value: name.clone(),
                });
            }
            let d = Domain {
                name: name.clone(),
                created: now(),
                catch_all: None,
                dkim_selector: Some(selector.clone()),
                dkim_public_key: Some(public.clone()),
                syncml: SyncMlPolicy::default(),
            };
            put(w, NS_DOMAIN, &name, &d)?;
            w.kv_put(NS_DKIM, &name, &private)?;
            Ok(d)
        })
        .await
    }

    pub fn domains(&self) -> Result<Vec<Domain>> {
        self.list(NS_DOMAIN)
    }

    pub fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.read(NS_DOMAIN, &name.to_ascii_lowercase())
    }

    /// Deletes a domain no address uses any more.
    pub async fn delete_domain(&self, name: &str) -> Result<()> {
        let name = name.trim().to_ascii_lowercase();
        let suffix = format!("@{name}");
        let used: Vec<String> = self
            .store
            .reader(Actor::System)?
            .kv_list(NS_ADDR)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|a| a.ends_with(&suffix))
            .collect();
        if !used.is_empty() {
            return Err(DirectoryError::InUse(
                said("err_is_still_used_by_address_es")
                    .with("name", &name)
                    .with("len", used.len())
                    .with("example", &used[0]),
            ));
        }
        self.write(move |w| {
            if !w.kv_delete(NS_DOMAIN, &name)? {
                return Err(DirectoryError::NotFound(
                    said("err_nf_domain").with("name", &name),
                ));
            }
            w.kv_delete(NS_DKIM, &name)?;
            Ok(())
        })
        .await
    }

    /// The DKIM selector and private key (PKCS#1 DER) of a domain.
    pub fn dkim_key(&self, domain: &str) -> Result<Option<(String, Vec<u8>)>> {
        let Some(d) = self.domain(domain)? else {
            return Ok(None);
        };
        let r = self.store.reader(Actor::System)?;
        Ok(d.dkim_selector.zip(r.kv_get(NS_DKIM, &d.name)?))
    }

    /// Sets (or clears) the user who receives mail for unknown addresses of a domain.
    pub async fn set_catch_all(&self, domain: &str, uid: Option<&str>) -> Result<Domain> {
        let domain = domain.trim().to_ascii_lowercase();
        let uid = uid.map(|u| u.trim().to_ascii_lowercase());
        self.write(move |w| {
            let mut d: Domain = get(w, NS_DOMAIN, &domain)?.ok_or_else(|| {
                DirectoryError::NotFound(said("err_nf_domain_2").with("domain", &domain))
            })?;
            if let Some(u) = &uid {
                Self::require_user(w, u)?;
            }
            d.catch_all = uid.clone();
            put(w, NS_DOMAIN, &domain, &d)?;
            Ok(d)
        })
        .await
    }

    /// Sets a domain's SyncML rules.
    pub async fn set_syncml(&self, domain: &str, policy: SyncMlPolicy) -> Result<Domain> {
        let domain = domain.trim().to_ascii_lowercase();
        self.write(move |w| {
            let mut d: Domain = get(w, NS_DOMAIN, &domain)?.ok_or_else(|| {
                DirectoryError::NotFound(said("err_nf_domain_2").with("domain", &domain))
            })?;
            d.syncml = policy.clone();
            put(w, NS_DOMAIN, &domain, &d)?;
            Ok(d)
        })
        .await
    }

    // ---- users ----

    pub async fn add_user(&self, new: NewUser) -> Result<User> {
        let (local, _) = validate::address("address", &new.address)?;
        let uid = validate::name("uid", new.uid.as_deref().unwrap_or(&local))?;
        let display_name = validate::display_name(new.display_name.as_deref().unwrap_or(&uid))?;
        let phone = new
            .phone
            .as_deref()
            .map(validate::phone)
            .transpose()?
            .flatten();
        validate::password(&new.password, self.opts.min_password_len, &uid)?;
        let (phc, nt) = self.secrets(&new.password).await?;
        let user = self
            .write(move |w| {
                if w.kv_get(NS_USER, &uid)?.is_some() || w.kv_get(NS_GROUP, &uid)?.is_some() {
                    return Err(DirectoryError::Exists {
                        field: "uid",
                        value: uid.clone(),
                    });
                }
                let address = claim_address(w, "address", &new.address, &addr_target_user(&uid))?;
                let mut aliases = Vec::new();
                for a in &new.aliases {
                    aliases.push(claim_address(w, "aliases", a, &addr_target_user(&uid))?);
                }
                let p = w.create_principal(PrincipalKind::User, &uid, new.quota)?;
                for (kind, name, special) in DEFAULT_COLLECTIONS {
                    let c = w.create_collection(p.id, *kind, name)?;
                    if let Some(s) = special {
                        w.set_collection_props(
                            c.id,
                            &[(bureau_store::prop::SPECIAL_USE.into(), Some(s.to_string()))],
                        )?;
                    }
                    if *kind != CollectionKind::Mailbox {
                        // What calendar and contacts apps show: "Calendar", "Contacts", ...
                        let shown = name[..1].to_uppercase() + &name[1..];
                        w.set_display_name(c.id, &shown)?;
                    }
                }
                let user = User {
                    uid: uid.clone(),
                    principal: p.id,
                    address,
                    display_name: display_name.clone(),
                    aliases,
                    quota: new.quota,
                    enabled: true,
                    admin: new.admin,
                    created: now(),
                    phone: phone.clone(),
                    resource: None,
                    syncml: true,
                };
                put(w, NS_USER, &uid, &user)?;
                w.kv_put(NS_SECRET, &uid, phc.as_bytes())?;
                w.kv_put(NS_NTHASH, &uid, &nt)?;
                put(
                    w,
                    NS_SYNCML_MD5,
                    &uid,
                    &syncml_credentials(&user, &new.password),
                )?;
                Ok(user)
            })
            .await?;
        self.card_follows(&user).await;
        Ok(user)
    }

    /// Updates the user's card in the company address book. The card is derived data: if
    /// this fails, the next start brings the book in line (`sync_company_book`).
    async fn card_follows(&self, u: &User) {
        if let Err(e) = self.publish(u).await {
            log::warn!("directory: company address book, card of {}: {e}", u.uid);
        }
    }

    /// The people: every user but rooms and equipment (see `resources`).
    pub fn users(&self) -> Result<Vec<User>> {
        Ok(self
            .list::<User>(NS_USER)?
            .into_iter()
            .filter(|u| u.resource.is_none())
            .collect())
    }

    pub fn user(&self, uid: &str) -> Result<Option<User>> {
        self.read(NS_USER, &uid.trim().to_ascii_lowercase())
    }

    /// The user a login names: a uid, a primary address or an alias.
    pub fn user_by_login(&self, login: &str) -> Result<Option<User>> {
        let login = login.trim().to_lowercase();
        if login.contains('@') {
            return match self.resolve(&login)? {
                Some(Target::User(u)) => Ok(Some(u)),
                _ => Ok(None),
            };
        }
        self.user(&login)
    }

    /// A user who is a person (a resource is changed by its own calls).
    fn require_user(w: &Writer, uid: &str) -> Result<User> {
        get::<User>(w, NS_USER, uid)?
            .filter(|u| u.resource.is_none())
            .ok_or_else(|| DirectoryError::NotFound(said("err_nf_user").with("uid", uid)))
    }

    /// Refuses a change that takes the last enabled administrator's power away (demoted,
    /// disabled or deleted), in the change's own transaction, so that two changes at once
    /// cannot each leave the other to keep it.
    fn keep_an_admin(w: &Writer, before: &User, after: Option<&User>) -> Result<()> {
        let powerful = |u: &User| u.admin && u.enabled && u.resource.is_none();
        if !powerful(before) || after.is_some_and(powerful) {
            return Ok(());
        }
        for uid in w.kv_keys(NS_USER)? {
            if uid != before.uid && get::<User>(w, NS_USER, &uid)?.is_some_and(|u| powerful(&u)) {
                return Ok(());
            }
        }
        Err(DirectoryError::LastAdmin(before.uid.clone()))
    }

    pub async fn update_user(&self, uid: &str, ch: UserChanges) -> Result<User> {
        let uid = uid.trim().to_ascii_lowercase();
        let display_name = ch
            .display_name
            .as_deref()
            .map(validate::display_name)
            .transpose()?;
        let phone = ch.phone.as_deref().map(validate::phone).transpose()?;
        let user = self
            .write(move |w| {
                let mut u = Self::require_user(w, &uid)?;
                let before = u.clone();
                if let Some(d) = &display_name {
                    u.display_name = d.clone();
                }
                if let Some(p) = &phone {
                    u.phone = p.clone();
                }
                if let Some(q) = ch.quota {
                    w.set_quota(u.principal, q)?;
                    u.quota = q;
                }
                if let Some(e) = ch.enabled {
                    u.enabled = e;
                }
                if let Some(a) = ch.admin {
                    u.admin = a;
                }
                if let Some(on) = ch.syncml {
                    u.syncml = on;
                }
                Self::keep_an_admin(w, &before, Some(&u))?;
                for a in &ch.remove_aliases {
                    let a = a.trim().to_lowercase();
                    if !u.aliases.contains(&a) {
                        return Err(DirectoryError::NotFound(
                            said("err_nf_alias_of").with("a", &a).with("uid", &uid),
                        ));
                    }
                    u.aliases.retain(|x| *x != a);
                    w.kv_delete(NS_ADDR, &a)?;
                }
                for a in &ch.add_aliases {
                    let a = claim_address(w, "aliases", a, &addr_target_user(&uid))?;
                    u.aliases.push(a);
                }
                put(w, NS_USER, &uid, &u)?;
                Ok(u)
            })
            .await?;
        self.card_follows(&user).await;
        Ok(user)
    }

    pub async fn set_password(&self, uid: &str, password: &str) -> Result<()> {
        let uid = uid.trim().to_ascii_lowercase();
        if self.user(&uid)?.is_none_or(|u| u.resource.is_some()) {
            return Err(DirectoryError::NotFound(
                said("err_nf_user").with("uid", &uid),
            ));
        }
        validate::password(password, self.opts.min_password_len, &uid)?;
        let (phc, nt) = self.secrets(password).await?;
        let password = password.to_string();
        self.write(move |w| {
            let u = Self::require_user(w, &uid)?;
            w.kv_put(NS_SECRET, &uid, phc.as_bytes())?;
            w.kv_put(NS_NTHASH, &uid, &nt)?;
            put(w, NS_SYNCML_MD5, &uid, &syncml_credentials(&u, &password))?;
            Ok(())
        })
        .await
    }

    /// Deletes a user with its mail, calendars and contacts, and its group memberships.
    pub async fn delete_user(&self, uid: &str) -> Result<()> {
        let uid = uid.trim().to_ascii_lowercase();
        let gone = uid.clone();
        self.write(move |w| {
            let u = Self::require_user(w, &uid)?;
            Self::keep_an_admin(w, &u, None)?;
            for a in std::iter::once(&u.address).chain(&u.aliases) {
                w.kv_delete(NS_ADDR, a)?;
            }
            // Drop it from the groups that list it.
            let groups: Vec<Group> = {
                let mut gs = Vec::new();
                // Groups are few; the store's member index holds the principals.
                for gid in Self::groups_of_principal(w, u.principal)? {
                    if let Some(g) = Self::group_by_principal(w, gid)? {
                        gs.push(g);
                    }
                }
                gs
            };
            for mut g in groups {
                g.members.retain(|m| *m != uid);
                put(w, NS_GROUP, &g.name.clone(), &g)?;
            }
            w.delete_principal(u.principal)?;
            w.kv_delete(NS_USER, &uid)?;
            w.kv_delete(NS_SECRET, &uid)?;
            w.kv_delete(NS_NTHASH, &uid)?;
            w.kv_delete(NS_SYNCML_MD5, &uid)?;
            Self::forget_factors(w, &uid)?;
            Ok(())
        })
        .await?;
        if let Err(e) = self.unpublish(&gone).await {
            log::warn!("directory: company address book, card of {gone}: {e}");
        }
        Ok(())
    }

    fn groups_of_principal(w: &Writer, principal: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for name in w.kv_keys(NS_GROUP)? {
            if let Some(g) = get::<Group>(w, NS_GROUP, &name)?
                && w.principal(g.principal)?.members.contains(&principal)
            {
                out.push(g.principal);
            }
        }
        Ok(out)
    }

    fn group_by_principal(w: &Writer, principal: u64) -> Result<Option<Group>> {
        let name = w.principal(principal)?.name;
        get(w, NS_GROUP, &name)
    }

    /// Checks a login's password. Unknown logins cost the same time as known ones; a
    /// password that matched within the hour is taken from the login cache.
    /// CPU-heavy: call from a blocking context.
    pub fn verify(&self, login: &str, password: &str) -> Result<Verified> {
        self.verify_user(self.user_by_login(login)?, password)
    }

    /// `verify` for a login already looked up (None: unknown, checked at the same cost).
    fn verify_user(&self, user: Option<User>, password: &str) -> Result<Verified> {
        let secret = match &user {
            Some(u) => self.read_secret(&u.uid)?,
            None => None,
        };
        let ok = match (&user, &secret) {
            (Some(u), Some(phc)) if self.logins.hit(&u.uid, phc, password) => true,
            _ => {
                let phc = secret.as_deref().unwrap_or(&self.dummy_hash);
                let parsed =
                    PasswordHash::new(phc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let ok = self
                    .argon2()?
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok();
                if let (true, Some(u), Some(phc)) = (ok, &user, &secret) {
                    self.logins.remember(&u.uid, phc, password);
                }
                // A login without a password of its own (a room, equipment) never signs
                // in, whatever the hash it was checked against.
                ok && secret.is_some()
            }
        };
        Ok(match user {
            Some(u) if ok && u.enabled => Verified::Ok(u),
            Some(u) if ok && !u.enabled => Verified::Disabled,
            _ => Verified::BadCredentials,
        })
    }

    fn read_secret(&self, uid: &str) -> Result<Option<String>> {
        let r = self.store.reader(Actor::System)?;
        Ok(r.kv_get(NS_SECRET, uid)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The SyncML MD5 credential kept for a user's uid (base64 of MD5("uid:password")), if
    /// the password was set since such credentials are kept.
    pub fn syncml_credential(&self, uid: &str) -> Result<Option<String>> {
        let credentials: BTreeMap<String, String> =
            self.read(NS_SYNCML_MD5, uid)?.unwrap_or_default();
        Ok(credentials.get(uid).cloned())
    }

    /// Checks a SyncML MD5 response for `login` and the nonce the device was given. A user
    /// whose password was set before these credentials were kept has none: refused until
    /// the password is set again.
    pub fn verify_syncml_md5(&self, login: &str, response: &str, nonce: &[u8]) -> Result<Verified> {
        let Some(user) = self.user_by_login(login)? else {
            return Ok(Verified::BadCredentials);
        };
        let credentials: BTreeMap<String, String> =
            self.read(NS_SYNCML_MD5, &user.uid)?.unwrap_or_default();
        let Some(credential) = credentials.get(&login.trim().to_lowercase()) else {
            return Ok(Verified::BadCredentials);
        };
        let expected = syncml_md5_response(credential, nonce);
        let given = response.trim();
        // In time that does not depend on where they differ.
        let ok = expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        Ok(match ok {
            true if user.enabled => Verified::Ok(user),
            true => Verified::Disabled,
            false => Verified::BadCredentials,
        })
    }

    /// The NT hash of a user's password, for Samba.
    pub fn nt_hash_of(&self, uid: &str) -> Result<Option<[u8; 16]>> {
        let r = self.store.reader(Actor::System)?;
        Ok(r.kv_get(NS_NTHASH, uid)?
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
    }

    // ---- groups ----

    pub async fn add_group(&self, new: NewGroup) -> Result<Group> {
        let name = validate::name("name", &new.name)?;
        let display_name = validate::display_name(new.display_name.as_deref().unwrap_or(&name))?;
        let members: Vec<String> = new
            .members
            .iter()
            .map(|m| m.trim().to_ascii_lowercase())
            .collect();
        self.write(move |w| {
            if w.kv_get(NS_USER, &name)?.is_some() || w.kv_get(NS_GROUP, &name)?.is_some() {
                return Err(DirectoryError::Exists {
                    field: "name",
                    value: name.clone(),
                });
            }
            let address = new
                .address
                .as_deref()
                .filter(|a| !a.trim().is_empty())
                .map(|a| claim_address(w, "address", a, &addr_target_group(&name)))
                .transpose()?;
            let p = w.create_principal(PrincipalKind::Group, &name, None)?;
            let mut g = Group {
                name: name.clone(),
                principal: p.id,
                display_name: display_name.clone(),
                address,
                members: Vec::new(),
            };
            Self::apply_members(w, &mut g, &members)?;
            put(w, NS_GROUP, &name, &g)?;
            Ok(g)
        })
        .await
    }

    fn apply_members(w: &mut Writer, g: &mut Group, members: &[String]) -> Result<()> {
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for m in members {
            let u: User = get::<User>(w, NS_USER, m)?
                .filter(|u| u.resource.is_none())
                .ok_or_else(|| {
                    crate::validate::invalid("members", said("err_no_user").with("m", m))
                })?;
            if !names.contains(&u.uid) {
                ids.push(u.principal);
                names.push(u.uid);
            }
        }
        names.sort();
        w.set_members(g.principal, &ids)?;
        g.members = names;
        Ok(())
    }

    pub fn groups(&self) -> Result<Vec<Group>> {
        self.list(NS_GROUP)
    }

    pub fn group(&self, name: &str) -> Result<Option<Group>> {
        self.read(NS_GROUP, &name.trim().to_ascii_lowercase())
    }

    pub async fn set_group_members(&self, name: &str, members: Vec<String>) -> Result<Group> {
        let name = name.trim().to_ascii_lowercase();
        let members: Vec<String> = members
            .iter()
            .map(|m| m.trim().to_ascii_lowercase())
            .collect();
        self.write(move |w| {
            let mut g: Group = get(w, NS_GROUP, &name)?.ok_or_else(|| {
                DirectoryError::NotFound(said("err_nf_group").with("name", &name))
            })?;
            Self::apply_members(w, &mut g, &members)?;
            put(w, NS_GROUP, &name, &g)?;
            Ok(g)
        })
        .await
    }

    pub async fn delete_group(&self, name: &str) -> Result<()> {
        let name = name.trim().to_ascii_lowercase();
        self.write(move |w| {
            let g: Group = get(w, NS_GROUP, &name)?.ok_or_else(|| {
                DirectoryError::NotFound(said("err_nf_group").with("name", &name))
            })?;
            if let Some(a) = &g.address {
                w.kv_delete(NS_ADDR, a)?;
            }
            w.delete_principal(g.principal)?;
            w.kv_delete(NS_GROUP, &name)?;
            Ok(())
        })
        .await
    }

    // ---- addresses ----

    /// What an address (already without any +tag) delivers to.
    pub fn resolve(&self, address: &str) -> Result<Option<Target>> {
        let r = self.store.reader(Actor::System)?;
        let Some(t) = r.kv_get(NS_ADDR, &address.trim().to_lowercase())? else {
            return Ok(None);
        };
        let t = String::from_utf8_lossy(&t).into_owned();
        Ok(match t.split_once(':') {
            Some(("u", uid)) => r
                .kv_get(NS_USER, uid)?
                .map(|b| dec(&b))
                .transpose()?
                .map(Target::User),
            Some(("g", name)) => r
                .kv_get(NS_GROUP, name)?
                .map(|b| dec(&b))
                .transpose()?
                .map(Target::Group),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash unknown logins are checked against: this directory's algorithm and
    /// parameters (so it costs what a real one does), a salt of its own, and no password
    /// matching it.
    #[test]
    fn unknown_logins_are_checked_at_a_real_hashs_cost() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), bureau_store::StoreOptions::default()).unwrap();
        let opts = DirectoryOptions {
            argon2_m_kib: 256,
            argon2_t: 1,
            ..Default::default()
        };
        let d = Directory::new(store, opts).unwrap();
        let real = d.hash_password("bureau dummy password").unwrap();
        let (real, dummy) = (
            PasswordHash::new(&real).unwrap(),
            PasswordHash::new(d.dummy_hash()).unwrap(),
        );
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.unwrap().len(), real.hash.unwrap().len());
        assert_ne!(dummy.salt, real.salt);
        for password in ["", "bureau dummy password", "correct horse"] {
            assert!(
                d.argon2()
                    .unwrap()
                    .verify_password(password.as_bytes(), &dummy)
                    .is_err()
            );
        }
    }
}
