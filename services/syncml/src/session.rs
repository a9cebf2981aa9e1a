//! A SyncML session from the server's side (OMA DS Protocol 1.2, 5 to 8): sign-in, the
//! Alert of each datastore with its anchors, the client's changes, the server's changes in
//! as many messages as the client's MaxMsgSize needs, the client's Map, and the state kept
//! per device and datastore when the session ends whole.
//!
//! Packages, as the client sends them: (1) Put of its DevInf, an Alert per datastore, Final;
//! (3) a Sync per datastore with its changes, over one or more messages, Final; (5) its
//! Statuses and a Map of the ids it gave to what the server added, Final. The server answers
//! each message; its package (4) may take several messages, each after the client's
//! Alert 222 ("next message").

use crate::codec::{Encoding, Version};
use crate::datastore::{self, Kind, Out};
use crate::devinf::Held;
use crate::filestore::Parent;
use crate::itemformat::{self, DesKey};
use crate::message::{self, Header, Reply, alert, el, metinf, status, text, text_at};
use crate::modes::{self, Mode, UrlOptions};
use bureau_core::homes::Homes;
use bureau_directory::User;
use bureau_groupware::schedule::Scheduler;
use bureau_store::{Actor, Collection, CollectionId, ItemId, ModSeq, Store, StoreError, SyncState};
use bureau_wbxml::Element;
use bureau_wbxml::syncml::page::METINF;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod send;
mod tree;

/// One datastore synced in the session.
#[derive(Debug, Serialize, Deserialize)]
struct Db {
    server_uri: String,
    client_uri: String,
    kind: Kind,
    coll: Collection,
    mode: Mode,
    /// The client's Next anchor: what it presents as Last next time.
    client_next: String,
    /// The anchor the server gave as its Next.
    server_next: String,
    state: SyncState,
    /// The server's items matched with the device's in a slow or refresh sync.
    matched: BTreeSet<ItemId>,
    /// Made again after a restart.
    #[serde(skip)]
    by_content: Option<datastore::ContentIndex>,
    got_sync: bool,
    /// The server's Sync command went out (every datastore gets one in package 4, empty
    /// when it has no change).
    sent_sync: bool,
    /// The server's changes, once the client's are all in.
    outgoing: Option<VecDeque<Out>>,
    /// The collection's modseq when the server's changes were read.
    read_at: ModSeq,
    /// A device's item coming in parts: the parts so far.
    partial: Option<Partial>,
    /// A server's item going out in parts: the item, its data, how many bytes went.
    chunk: Option<(Out, String, usize)>,
    /// Taken up again from the store (`Session::resumed`).
    #[serde(skip)]
    resumed: bool,
    /// The formats the device takes this datastore's items in.
    #[serde(default)]
    wire: datastore::Wire,
    /// The device's filter on what it gets (mail only).
    #[serde(default)]
    filter: datastore::Filter,
    /// The device sent items in `des;b64`: the server's go so too.
    #[serde(default)]
    des: bool,
    /// The user's home folder (the Files datastore).
    #[serde(default)]
    folder: Option<crate::files::Folder>,
    /// One folder of a datastore synced as folders (tree.rs).
    #[serde(default)]
    tree: bool,
}

impl Db {
    fn new(server_uri: &str, client_uri: &str, kind: Kind, coll: Collection, mode: Mode) -> Db {
        Db {
            server_uri: server_uri.to_string(),
            client_uri: client_uri.to_string(),
            kind,
            coll,
            mode,
            client_next: String::new(),
            server_next: String::new(),
            state: SyncState::default(),
            matched: BTreeSet::new(),
            by_content: None,
            got_sync: false,
            sent_sync: false,
            outgoing: None,
            read_at: 0,
            partial: None,
            chunk: None,
            resumed: false,
            wire: datastore::Wire::default(),
            filter: datastore::Filter::default(),
            des: false,
            folder: None,
            tree: false,
        }
    }

    /// The content type the device gets this datastore's items in.
    fn content_type(&self) -> &'static str {
        self.wire.content_type(self.kind)
    }
}

/// The parts of a device's item so far (OMA DS 1.2, large objects).
#[derive(Debug, Serialize, Deserialize)]
struct Partial {
    verb: String,
    luid: String,
    content_type: Option<String>,
    /// The size its first part announced.
    size: Option<usize>,
    data: String,
}

/// A session in progress; kept in the store after each message (lib.rs), so that it
/// goes on after a restart.
#[derive(Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub user: User,
    pub device: String,
    pub session_id: String,
    pub version: Version,
    pub encoding: Encoding,
    server_msg: u32,
    /// What the client accepts per message.
    max_msg: usize,
    /// The largest object the client takes in parts; None: it takes none split.
    max_obj: Option<usize>,
    dbs: Vec<Db>,
    /// The datastores synced as folders; their folders are among `dbs`.
    #[serde(default)]
    trees: Vec<tree::Tree>,
    /// The client's last message id and the reply given, for a replayed message.
    pub last: Option<Last>,
    /// The session ended whole: its state is saved.
    pub done: bool,
    /// What the device holds per content type (its DevInf's CTCap), read once.
    held: Option<Held>,
    /// What the URL the device was given asks (`sync=`, `reset`).
    url: UrlOptions,
    /// The device's detailed log is on (devlog.rs): each message is recorded.
    #[serde(default)]
    pub log: bool,
    /// The address the device signed in from: where server-alerted syncs go (push.rs).
    #[serde(default)]
    pub peer: Option<std::net::IpAddr>,
    /// The server's URI as the device addressed it.
    #[serde(default)]
    server_id: String,
    /// The user's Funambol DES key, from a basic sign-in; in memory only (itemformat.rs).
    #[serde(skip)]
    pub des: Option<DesKey>,
}

/// A client's last message id and the reply it was given (kept as bytes, not as a list of
/// numbers, when the session is written to the store).
#[derive(Clone, Serialize, Deserialize)]
pub struct Last {
    pub msg_id: String,
    #[serde(with = "serde_bytes")]
    pub reply: Vec<u8>,
}

/// The device key under which SyncML devices are kept (apart from ActiveSync's).
pub fn device_key(device: &str) -> String {
    format!("syncml:{device}")
}

impl Session {
    pub fn new(
        token: String,
        user: User,
        h: &Header,
        encoding: Encoding,
        url: UrlOptions,
    ) -> Session {
        Session {
            token,
            user,
            device: h.source.clone(),
            session_id: h.session_id.clone(),
            version: h.version,
            encoding,
            server_msg: 0,
            max_msg: h.max_msg_size.unwrap_or(crate::MAX_MESSAGE),
            max_obj: h.max_obj_size,
            dbs: Vec::new(),
            trees: Vec::new(),
            last: None,
            done: false,
            held: None,
            url,
            log: false,
            peer: None,
            server_id: h.target.clone(),
            des: None,
        }
    }

    /// Taken up again from the store: a device's message may come twice (its first
    /// answer was lost with the daemon), so its new items are matched with the stored ones
    /// (by UID, else content) rather than added again.
    pub fn resumed(&mut self) {
        for db in &mut self.dbs {
            db.resumed = true;
        }
    }

    /// What the device's last DevInf said (this session's Put, else as kept with the
    /// device).
    fn held(&mut self, store: &Store) -> Result<&Held, StoreError> {
        if self.held.is_none() {
            let p = self.user.principal;
            let d = store
                .reader(Actor::Principal(p))?
                .device(p, &device_key(&self.device))?;
            self.held = Some(d.map(|d| Held::read(&d.info)).unwrap_or_default());
        }
        Ok(self.held.get_or_insert_default())
    }

    fn principal(&self) -> u64 {
        self.user.principal
    }

    /// Answers one message of the client. `signed_in`: the message carried valid
    /// credentials (its SyncHdr Status is 212), with the challenge for the next sign-in.
    pub async fn answer(
        &mut self,
        (store, sched, homes): (&Store, &Scheduler, Option<&Homes>),
        root: &Element,
        h: &Header,
        resp_uri: &str,
        signed_in: Option<Option<Element>>,
    ) -> Result<Element, StoreError> {
        if h.max_obj_size.is_some() {
            self.max_obj = h.max_obj_size;
        }
        if let Some(m) = h.max_msg_size {
            self.max_msg = m.clamp(4_000, crate::MAX_MESSAGE);
        }
        self.server_msg += 1;
        let mut r = Reply::to(h, self.server_msg, Some(resp_uri), crate::MAX_MESSAGE);
        let (code, chal) = match signed_in {
            Some(chal) => (status::AUTHENTICATED, chal),
            None => (status::OK, None),
        };
        r.status(
            &h.msg_id,
            "0",
            "SyncHdr",
            Some(&h.target),
            Some(&h.source),
            code,
            chal.into_iter().collect(),
        );
        let body = root.child("SyncBody");
        let commands: Vec<&Element> = body.map(|b| b.elements().collect()).unwrap_or_default();
        let is_final = commands.iter().any(|c| c.name == "Final");
        let mut next_message = false;
        for cmd in &commands {
            let cmd_id = cmd.child_value("CmdID").unwrap_or_default();
            match cmd.name {
                "Final" | "Status" => {}
                "Put" => {
                    self.put_devinf(store, cmd).await?;
                    r.status(
                        &h.msg_id,
                        &cmd_id,
                        "Put",
                        None,
                        item_source(cmd).as_deref(),
                        status::OK,
                        vec![],
                    );
                }
                "Get" => self.get(cmd, &h.msg_id, &cmd_id, &mut r),
                "Alert" => {
                    let at = (&h.msg_id[..], &cmd_id[..]);
                    self.alert((store, homes), cmd, at, &mut r, &mut next_message)
                        .await?
                }
                "Sync" => {
                    self.sync((store, sched, homes), cmd, &h.msg_id, &cmd_id, &mut r)
                        .await?
                }
                "Map" => self.map(cmd, &h.msg_id, &cmd_id, &mut r),
                "Results" => r.status(
                    &h.msg_id,
                    &cmd_id,
                    "Results",
                    None,
                    None,
                    status::OK,
                    vec![],
                ),
                other => r.status(
                    &h.msg_id,
                    &cmd_id,
                    other,
                    None,
                    None,
                    status::NOT_SUPPORTED,
                    vec![],
                ),
            }
        }
        // The client's changes are all in: the server's are read once.
        if is_final {
            for db in self
                .dbs
                .iter_mut()
                .filter(|d| d.got_sync && d.outgoing.is_none())
            {
                if db.mode == Mode::RefreshFromClient {
                    let (kind, coll) = (db.kind, db.coll.id);
                    let (matched, folder) = (&db.matched, db.folder.as_ref());
                    datastore::drop_unmatched(
                        store,
                        self.user.principal,
                        kind,
                        coll,
                        matched,
                        folder,
                    )
                    .await?;
                }
                let (out, at) = datastore::changes_for(store, self.user.principal, db_view(db))?;
                db.outgoing = Some(out.into());
                db.read_at = at;
            }
            self.folder_changes(store)?;
        }
        let to_send = |d: &Db| {
            d.chunk.is_some()
                || d.outgoing
                    .as_ref()
                    .is_some_and(|o| !d.sent_sync || !o.is_empty())
        };
        let synced: Vec<&Db> = self.dbs.iter().filter(|d| d.got_sync).collect();
        let all_sent = !synced.is_empty() && synced.iter().all(|d| d.sent_sync && !to_send(d));
        let pending = |s: &Session| s.dbs.iter().any(to_send) || s.folders_to_send();
        if (is_final || next_message) && pending(self) {
            self.send_changes(store, &mut r)?;
        } else if is_final && all_sent {
            // Package 5: the client has the server's changes and has said its ids.
            self.finish(store).await?;
        }
        let pending = pending(self);
        // The server's package ends with the last of its changes; a client that asked for
        // the next message (222) has finished its own.
        r.final_ = (is_final || next_message) && !pending;
        Ok(r.into_element())
    }

    async fn put_devinf(&mut self, store: &Store, cmd: &Element) -> Result<(), StoreError> {
        let Some(d) = cmd
            .child("Item")
            .and_then(|i| i.child("Data"))
            .and_then(|d| d.child("DevInf"))
        else {
            return Ok(());
        };
        let mut info = BTreeMap::new();
        for f in ["Man", "Mod", "OEM", "FwV", "SwV", "HwV", "DevTyp"] {
            if let Some(v) = d.child_value(f).filter(|v| !v.trim().is_empty()) {
                info.insert(f.to_string(), v.trim().chars().take(200).collect());
            }
        }
        let held = Held::of(d);
        held.write(&mut info);
        self.held = Some(held);
        let device = bureau_store::Device {
            id: device_key(&self.device),
            protocol: "syncml".into(),
            info,
            last_seen: bureau_store::now(),
            ..Default::default()
        };
        let p = self.principal();
        store
            .write(Actor::Principal(p), vec![], move |w| {
                w.put_device(p, &device)
            })
            .await
    }

    /// A Get: the server's DevInf, the one thing it gives.
    fn get(&self, cmd: &Element, msg: &str, cmd_id: &str, r: &mut Reply) {
        let target = text_at(cmd, &["Item", "Target", "LocURI"]).unwrap_or_default();
        if !target.to_ascii_lowercase().starts_with("./devinf") {
            r.status(
                msg,
                cmd_id,
                "Get",
                Some(&target),
                None,
                status::NOT_FOUND,
                vec![],
            );
            return;
        }
        r.status(msg, cmd_id, "Get", Some(&target), None, status::OK, vec![]);
        r.push(
            el("Results")
                .with(text("MsgRef", msg.to_string()))
                .with(text("CmdRef", cmd_id.to_string()))
                .with(el("Meta").with(metinf("Type", devinf_type(self.encoding))))
                .with(
                    el("Item")
                        .with(el("Source").with(text("LocURI", target)))
                        .with(el("Data").with(crate::devinf::server(self.version))),
                ),
        );
    }

    /// An Alert: a datastore to sync (200 to 205), or the next message of the server's
    /// package (222).
    async fn alert(
        &mut self,
        (store, homes): (&Store, Option<&Homes>),
        cmd: &Element,
        (msg, cmd_id): (&str, &str),
        r: &mut Reply,
        next_message: &mut bool,
    ) -> Result<(), StoreError> {
        let code = match cmd.child_value("Data").and_then(|d| d.trim().parse().ok()) {
            // A device answering a server alert (push.rs) may name the alert's type.
            Some(c @ 206..=210) => alert::of_server_alerted(c),
            Some(c) => c,
            None => 0,
        };
        if code == alert::NEXT_MESSAGE {
            *next_message = true;
            r.status(msg, cmd_id, "Alert", None, None, status::OK, vec![]);
            return Ok(());
        }
        let Some(item) = cmd.child("Item") else {
            r.status(
                msg,
                cmd_id,
                "Alert",
                None,
                None,
                status::BAD_REQUEST,
                vec![],
            );
            return Ok(());
        };
        let server_uri = text_at(item, &["Target", "LocURI"]).unwrap_or_default();
        let client_uri = text_at(item, &["Source", "LocURI"]).unwrap_or_default();
        let last = text_at(item, &["Meta", "Anchor", "Last"]).unwrap_or_default();
        let next = text_at(item, &["Meta", "Anchor", "Next"]).unwrap_or_default();
        let refs = (Some(server_uri.as_str()), Some(client_uri.as_str()));
        let refuse = |r: &mut Reply, code| {
            r.status(msg, cmd_id, "Alert", refs.0, refs.1, code, vec![]);
            Ok(())
        };
        if code != alert::RESUME && Mode::of_code(code).is_none() {
            return refuse(r, status::NOT_SUPPORTED);
        }
        let folder = homes.map(|h| crate::files::Folder::of(h, &self.user.uid));
        let Some((kind, coll)) =
            datastore::resolve(store, self.principal(), &server_uri, folder.as_ref()).await?
        else {
            return refuse(r, status::NOT_FOUND);
        };
        let filter = datastore::Filter::on(item.child("Target"), kind == Kind::Mail);
        let filter = match filter {
            Ok(f) => f,
            Err(why) => {
                log::info!("syncml: a device's filter refused: {why}");
                return refuse(r, status::NOT_SUPPORTED);
            }
        };
        let format = self.url.format;
        let held = self.held(store)?;
        let wire = datastore::Wire::choose(kind, format, held.prefers(&client_uri));
        let wants_folders = held.in_folders(&client_uri);
        let in_folders = wants_folders && kind.has_folders();
        let (members, saved, agree) =
            self.synced(store, (kind, &coll, in_folders), (&server_uri, &last))?;
        // The sync asked, the URL's and the anchors decide (modes.rs); a resume (225) of a
        // session this server did not keep is a slow sync.
        let (mode, refused) = match modes::decide(code, &self.url, agree) {
            Some(decided) => decided,
            None => (Mode::Slow, true),
        };
        let code_back = if refused {
            status::REFRESH_REQUIRED
        } else {
            status::OK
        };
        let server_last = saved
            .iter()
            .map(|s| s.anchor_next.clone())
            .find(|a| !a.is_empty())
            .unwrap_or_default();
        let server_next = members
            .iter()
            .map(|c| c.modseq)
            .max()
            .unwrap_or(0)
            .to_string();
        let anchor_back = el("Item").with(
            el("Data").with(Element::new(METINF, "Anchor").with(metinf("Next", next.clone()))),
        );
        r.status(
            msg,
            cmd_id,
            "Alert",
            refs.0,
            refs.1,
            code_back,
            vec![anchor_back],
        );
        r.push(
            el("Alert")
                .with(text("Data", mode.code().to_string()))
                .with(
                    el("Item")
                        .with(el("Target").with(text("LocURI", client_uri.clone())))
                        .with(el("Source").with(text("LocURI", server_uri.clone())))
                        .with(
                            el("Meta").with(
                                Element::new(METINF, "Anchor")
                                    .with(metinf("Last", server_last))
                                    .with(metinf("Next", server_next.clone())),
                            ),
                        ),
                ),
        );
        self.dbs
            .retain(|d| d.server_uri != server_uri && !members.iter().any(|c| c.id == d.coll.id));
        self.trees.retain(|t| t.server_uri != server_uri);
        for (c, mut state) in members.into_iter().zip(saved) {
            if mode.starts_over() {
                // The device's ids are learnt again.
                state.id_map.clear();
                state.folder = None;
            }
            let mut db = Db::new(&server_uri, &client_uri, kind, c, mode);
            (db.client_next, db.server_next) = (next.clone(), server_next.clone());
            (db.state, db.wire, db.filter) = (state, wire, filter.clone());
            db.folder = folder.clone().filter(|_| kind == Kind::Files).map(|mut f| {
                f.nested = wants_folders;
                f
            });
            db.tree = in_folders;
            self.dbs.push(db);
        }
        if in_folders {
            self.trees.push(tree::Tree {
                server_uri,
                client_uri,
                kind,
                mode,
                root: coll.id,
                got_sync: false,
                sent_sync: false,
                outgoing: None,
                gone: Vec::new(),
            });
        }
        Ok(())
    }

    /// The collections an Alert syncs, with their saved states, and whether the anchors
    /// agree: the datastore's one, or each folder of a datastore synced as folders
    /// (tree.rs).
    fn synced(
        &self,
        store: &Store,
        (kind, coll, in_folders): (Kind, &Collection, bool),
        (server_uri, last): (&str, &str),
    ) -> Result<(Vec<Collection>, Vec<SyncState>, bool), StoreError> {
        let (principal, key) = (self.principal(), device_key(&self.device));
        let reader = store.reader(Actor::Principal(principal))?;
        if in_folders {
            let members = tree::members(&reader.collections_of(principal)?, kind);
            let all = reader.sync_states(principal, &key)?;
            let name = crate::devinf::datastore_name(server_uri);
            let (states, agree) = tree::states(&all, &members, &name, last);
            return Ok((members, states, agree));
        }
        let saved = reader.sync_state(principal, &key, coll.id)?;
        let agree = saved
            .as_ref()
            .is_some_and(|s| !s.anchor_last.is_empty() && s.anchor_last == last);
        Ok((vec![coll.clone()], vec![saved.unwrap_or_default()], agree))
    }

    /// The client's changes to a datastore.
    async fn sync(
        &mut self,
        cx: (&Store, &Scheduler, Option<&Homes>),
        cmd: &Element,
        msg: &str,
        cmd_id: &str,
        r: &mut Reply,
    ) -> Result<(), StoreError> {
        let target = text_at(cmd, &["Target", "LocURI"]).unwrap_or_default();
        let source = text_at(cmd, &["Source", "LocURI"]).unwrap_or_default();
        let tree = self.trees.iter().position(|t| t.server_uri == target);
        let db = self.dbs.iter().find(|d| d.server_uri == target && !d.tree);
        // Files synced as folders takes a Move within it.
        let moves = db.is_some_and(|d| d.folder.as_ref().is_some_and(|f| f.nested));
        let answer = |r: &mut Reply, code| {
            r.status(
                msg,
                cmd_id,
                "Sync",
                Some(&target),
                Some(&source),
                code,
                vec![],
            );
        };
        let coll = match (tree, db) {
            (None, Some(db)) => Some(db.coll.id),
            (Some(_), _) => None,
            // A Sync without its Alert in this session.
            (None, None) => {
                answer(r, status::NOT_FOUND);
                return Ok(());
            }
        };
        answer(r, status::OK);
        let mut items = Vec::new();
        for c in cmd.elements() {
            for item in c.children_named("Item") {
                match (c.name, coll) {
                    ("Add" | "Replace" | "Delete", Some(_)) => items.push((c, item)),
                    ("Move", Some(_)) if moves => items.push((c, item)),
                    // A move between folders (tree.rs), in a datastore of folders.
                    ("Add" | "Replace" | "Delete" | "Move", None) => items.push((c, item)),
                    ("Move" | "Copy", Some(_)) => {
                        answer_item(r, msg, (c, item), status::NOT_SUPPORTED)
                    }
                    _ => {}
                }
            }
        }
        match (tree, coll) {
            (Some(t), _) => self.sync_tree(cx, t, &items, msg, r).await,
            (None, Some(coll)) => self.take_items(cx, coll, &items, msg, r).await,
            (None, None) => Ok(()),
        }
    }

    /// A device's items for one collection: each checked and matched in turn, their writes
    /// made together, and each answered.
    async fn take_items(
        &mut self,
        (store, sched, homes): (&Store, &Scheduler, Option<&Homes>),
        coll: CollectionId,
        items: &[(&Element, &Element)],
        msg: &str,
        r: &mut Reply,
    ) -> Result<(), StoreError> {
        let key = self.des;
        self.held(store)?;
        let caps = &self.held.as_ref().expect("read above").caps;
        let Some(db) = self.dbs.iter_mut().find(|d| d.coll.id == coll) else {
            for &item in items {
                answer_item(r, msg, item, status::NOT_FOUND);
            }
            return Ok(());
        };
        let folder = db.folder.clone();
        let nested = folder.as_ref().is_some_and(|f| f.nested);
        let cx = datastore::Ctx {
            store,
            sched,
            user: &self.user,
            folder: folder.as_ref(),
        };
        db.got_sync = true;
        // Each item is checked and matched in turn; their writes go together. An item's
        // status is known now, or comes with its write.
        // (CmdID, verb, LUID, status if known, what a `backup` URL writes of the item).
        type Backup = Option<(String, String)>;
        let mut steps: Vec<(String, &str, String, Option<u16>, Backup)> = Vec::new();
        let backing_up = self.url.backup.is_some() && homes.is_some();
        let mut pending = Vec::new();
        for (c, item) in items {
            let verb = c.name;
            let c_id = c.child_value("CmdID").unwrap_or_default();
            let luid = text_at(item, &["Source", "LocURI"])
                .or_else(|| text_at(item, &["Target", "LocURI"]))
                .unwrap_or_default();
            let ct = message::meta(item, "Type").or_else(|| message::meta(c, "Type"));
            let data = item.child_value("Data").unwrap_or_default();
            let format = message::meta(item, "Format").or_else(|| message::meta(c, "Format"));
            let joined = join_parts(db, verb, &luid, ct, data, item);
            db.des |= itemformat::is_des(format.as_deref());
            let decoded = |d| itemformat::decode(format.as_deref(), d, key.as_ref());
            let (ct, data) = match joined.and_then(|(ct, d)| Ok((ct, decoded(d)?))) {
                Ok(whole) => whole,
                Err(code) => {
                    steps.push((c_id, verb, luid, Some(code), None));
                    continue;
                }
            };
            let step = if !db.mode.takes_changes() {
                datastore::Step::Done(status::NOT_ALLOWED)
            } else {
                let held = caps.get(
                    &ct.as_deref()
                        .unwrap_or(db.kind.content_type())
                        .to_ascii_lowercase(),
                );
                let delete = if c.child("SftDel").is_some() {
                    datastore::DeleteKind::Soft
                } else if c.child("Archive").is_some() {
                    datastore::DeleteKind::Archive
                } else {
                    datastore::DeleteKind::Hard
                };
                let parent = match text_at(item, &["SourceParent", "LocURI"]) {
                    Some(luid) => Some(Parent::Device(luid)),
                    None => text_at(item, &["TargetParent", "LocURI"]).map(Parent::Server),
                };
                let change = datastore::Change {
                    verb,
                    delete,
                    luid: &luid,
                    content_type: ct.as_deref(),
                    data: &data,
                    caps: held,
                    parent: parent.as_ref(),
                };
                datastore::prepare(&cx, &mut db_mut(db), change)?
            };
            let code = match step {
                datastore::Step::Done(code) => Some(code),
                // In folders, an item may go in a folder made just before it: each is
                // written at once (files are not the store's to batch anyway).
                datastore::Step::Write(p) if nested => {
                    let written = datastore::write_all(&cx, db_mut(db), vec![*p]).await?;
                    if verb == "Delete"
                        && let Some(f) = &folder
                    {
                        // A folder deleted with what it held: the device let go of that too.
                        let left: BTreeSet<ItemId> =
                            f.manifest(store)?.ids(true).into_iter().collect();
                        db.state.id_map.retain(|_, id| left.contains(id));
                    }
                    written.into_iter().next()
                }
                datastore::Step::Write(p) => {
                    pending.push(*p);
                    None
                }
            };
            let backup = (backing_up && verb != "Delete" && db.mode.stores()).then(|| {
                let ct = ct.unwrap_or_else(|| db.kind.content_type().to_string());
                (ct, data)
            });
            steps.push((c_id, verb, luid, code, backup));
        }
        let mut written = datastore::write_all(&cx, db_mut(db), pending)
            .await?
            .into_iter();
        let mut backups = Vec::new();
        for (c_id, verb, luid, code, backup) in steps {
            let code = code.or_else(|| written.next()).unwrap_or(status::OK);
            r.status(msg, &c_id, verb, None, Some(&luid), code, vec![]);
            if let Some(b) = backup.filter(|_| matches!(code, status::OK | status::ADDED)) {
                backups.push(b);
            }
        }
        if let (Some(prefix), Some(homes), false) = (&self.url.backup, homes, backups.is_empty()) {
            let (homes, uid, prefix) = (homes.clone(), self.user.uid.clone(), prefix.clone());
            let wrote = tokio::task::spawn_blocking(move || {
                crate::backup::write(&homes, &uid, &prefix, &backups)
            });
            if let Err(e) = wrote.await {
                log::warn!("syncml: backup: {e}");
            }
        }
        Ok(())
    }

    /// The client's ids for what the server added.
    fn map(&mut self, cmd: &Element, msg: &str, cmd_id: &str, r: &mut Reply) {
        let target = text_at(cmd, &["Target", "LocURI"]).unwrap_or_default();
        let source = text_at(cmd, &["Source", "LocURI"]).unwrap_or_default();
        let ok = |r: &mut Reply| {
            let code = status::OK;
            r.status(
                msg,
                cmd_id,
                "Map",
                Some(&target),
                Some(&source),
                code,
                vec![],
            );
        };
        if let Some(t) = self.trees.iter().position(|t| t.server_uri == target) {
            for m in cmd.children_named("MapItem") {
                let guid = text_at(m, &["Target", "LocURI"]).unwrap_or_default();
                let luid = text_at(m, &["Source", "LocURI"]).unwrap_or_default();
                if !luid.is_empty() && luid.len() <= 256 {
                    self.map_tree(t, &guid, &luid);
                }
            }
            return ok(r);
        }
        let Some(db) = self.dbs.iter_mut().find(|d| d.server_uri == target) else {
            r.status(
                msg,
                cmd_id,
                "Map",
                Some(&target),
                Some(&source),
                status::NOT_FOUND,
                vec![],
            );
            return;
        };
        for m in cmd.children_named("MapItem") {
            let guid = text_at(m, &["Target", "LocURI"]).unwrap_or_default();
            let luid = text_at(m, &["Source", "LocURI"]).unwrap_or_default();
            if let Ok(id) = guid.parse::<ItemId>()
                && !luid.is_empty()
                && luid.len() <= 256
            {
                db.state.id_map.insert(luid, id);
            }
        }
        ok(r);
    }

    /// Saves each datastore's state: the anchors and ids agreed, the modseq the device now
    /// has.
    async fn finish(&mut self, store: &Store) -> Result<(), StoreError> {
        let principal = self.principal();
        let key = device_key(&self.device);
        let states: Vec<(CollectionId, SyncState)> = self
            .dbs
            .iter()
            .map(|d| {
                let mut s = d.state.clone();
                if d.mode == Mode::ClientReset {
                    // The device was emptied: its next sync is slow, and fills it again.
                    s = SyncState::default();
                } else {
                    s.anchor_last = d.client_next.clone();
                    s.anchor_next = d.server_next.clone();
                    // A one-way sync from the device leaves the server's changes for its
                    // next sync.
                    if !d.mode.leaves_server_changes() {
                        s.acked_modseq = d.read_at;
                    }
                    // The device's own changes are not sent back to it; those it has
                    // acknowledged past are forgotten.
                    let acked = s.acked_modseq;
                    s.own_changes.retain(|_, m| *m > acked);
                    s.known = s.id_map.values().copied().collect();
                }
                (d.coll.id, s)
            })
            .collect();
        // The device's record says when it last synced (the console shows it), made here
        // for a device that sent no DevInf.
        let mut device = store
            .reader(Actor::Principal(principal))?
            .device(principal, &key)?
            .unwrap_or_else(|| bureau_store::Device {
                id: key.clone(),
                protocol: "syncml".into(),
                ..Default::default()
            });
        device.last_seen = bureau_store::now();
        let push_to = self
            .url
            .push
            .zip(self.peer)
            .map(|(port, ip)| std::net::SocketAddr::new(ip, port));
        let dbs = self
            .dbs
            .iter()
            .map(|d| (d.coll.id, d.mode, d.server_uri.as_str()));
        crate::push::register(&mut device.info, push_to, &self.server_id, dbs);
        let gone: Vec<CollectionId> = self.trees.iter().flat_map(|t| t.gone.clone()).collect();
        store
            .write(Actor::Principal(principal), vec![], move |w| {
                for (coll, s) in &states {
                    w.put_sync_state(principal, &key, *coll, s)?;
                }
                for coll in &gone {
                    w.delete_sync_state(principal, &key, *coll)?;
                }
                w.put_device(principal, &device)
            })
            .await?;
        self.done = true;
        Ok(())
    }
}

/// A device's item whole: as it came, or joined with the parts before it (OMA DS 1.2,
/// large objects); a part that is not the last is kept and answered 213, a whole that is
/// not the size its first part announced 424, one over `MAX_OBJECT` 413.
fn join_parts(
    db: &mut Db,
    verb: &str,
    luid: &str,
    content_type: Option<String>,
    data: String,
    item: &Element,
) -> Result<(Option<String>, String), u16> {
    let more = item.child("MoreData").is_some();
    let size = message::meta(item, "Size").and_then(|v| v.parse::<usize>().ok());
    // A part continues the item before it only if it names the same one.
    let before = db
        .partial
        .take()
        .filter(|p| p.verb == verb && p.luid == luid);
    let (content_type, size, data) = match before {
        Some(mut p) => {
            p.data.push_str(&data);
            (p.content_type.or(content_type), p.size, p.data)
        }
        None if !more => return Ok((content_type, data)),
        None => (content_type, size, data),
    };
    if data.len() > crate::MAX_OBJECT || size.is_some_and(|n| n > crate::MAX_OBJECT) {
        return Err(status::TOO_LARGE);
    }
    if more {
        db.partial = Some(Partial {
            verb: verb.to_string(),
            luid: luid.to_string(),
            content_type,
            size,
            data,
        });
        return Err(status::CHUNK_ACCEPTED);
    }
    match size {
        Some(n) if n != data.len() => Err(status::SIZE_MISMATCH),
        _ => Ok((content_type, data)),
    }
}

/// What the datastore module needs to read a datastore's changes.
fn db_view(db: &Db) -> datastore::View<'_> {
    datastore::View {
        coll: db.coll.id,
        kind: db.kind,
        mode: db.mode,
        state: &db.state,
        matched: &db.matched,
        filter: &db.filter,
        folder: db.folder.as_ref(),
    }
}

fn db_mut(db: &mut Db) -> datastore::Target<'_> {
    datastore::Target {
        coll: &db.coll,
        kind: db.kind,
        mode: db.mode,
        state: &mut db.state,
        matched: &mut db.matched,
        by_content: &mut db.by_content,
        resumed: db.resumed,
    }
}

/// A device's item answered at once with `code`: its command's CmdID, the device's id for it.
fn answer_item(r: &mut Reply, msg: &str, (cmd, item): (&Element, &Element), code: u16) {
    let c_id = cmd.child_value("CmdID").unwrap_or_default();
    let luid =
        text_at(item, &["Source", "LocURI"]).or_else(|| text_at(item, &["Target", "LocURI"]));
    r.status(msg, &c_id, cmd.name, None, luid.as_deref(), code, vec![]);
}

fn item_source(cmd: &Element) -> Option<String> {
    text_at(cmd, &["Item", "Source", "LocURI"])
}

fn devinf_type(e: Encoding) -> &'static str {
    match e {
        Encoding::Xml => "application/vnd.syncml-devinf+xml",
        Encoding::Wbxml => "application/vnd.syncml-devinf+wbxml",
    }
}
