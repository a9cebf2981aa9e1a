//! Which sync a datastore gets: what the client's Alert asks, what the URL it was given
//! says (`sync=1..9`, `reset`), and whether the anchors agree, decided as IceWarp's SyncML
//! server decides it.
//!
//! URL values: 1 two-way, 2 slow, 3 one-way from the client, 4 refresh from the client,
//! 5 one-way from the server, 6 refresh from the server, 7 slow one-way to the server,
//! 8 slow one-way to the client, 9 client reset (`reset` is 9 too).
//! - A client asking for a slow sync or a refresh (201, 203, 205) gets it, whatever the URL.
//! - URL 2, 4, 6, 7, 8 and 9 are taken as given.
//! - URL 1, 3 or 5 with a client's 200 (or a one-way 202/204): the URL's sync if the
//!   anchors agree, else its slow variant: 201, 7 or 8 (status 508).
//! - Without a URL value, the standard rules: a two-way or one-way sync whose anchors do not
//!   agree becomes slow (one-way from the server: a refresh from the server), with 508.
//!
//! The three that are not SyncML's own go to the client as the standard code it must follow
//! (7 and 8 as a slow sync, 9 as a refresh from the server) and differ in what the server
//! does: 7 stores what the device sends and sends nothing back; 8 sends what the device
//! lacks and stores nothing of the device's (items it has are matched, so not doubled);
//! 9 sends nothing, so the device is left empty, and forgets the device's anchors, so its
//! next sync is slow and fills it again.

use crate::message::alert;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    TwoWay,
    Slow,
    OneWayFromClient,
    RefreshFromClient,
    OneWayFromServer,
    RefreshFromServer,
    SlowToServer,
    SlowToClient,
    ClientReset,
}

/// What the server sends a datastore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sends {
    Nothing,
    /// The changes since the device's last sync.
    Changes,
    /// Every item the device did not send or match.
    Everything,
}

impl Mode {
    /// The mode of a standard Alert code.
    pub fn of_code(code: u16) -> Option<Mode> {
        Some(match code {
            alert::TWO_WAY => Mode::TwoWay,
            alert::SLOW => Mode::Slow,
            alert::ONE_WAY_FROM_CLIENT => Mode::OneWayFromClient,
            alert::REFRESH_FROM_CLIENT => Mode::RefreshFromClient,
            alert::ONE_WAY_FROM_SERVER => Mode::OneWayFromServer,
            alert::REFRESH_FROM_SERVER => Mode::RefreshFromServer,
            _ => return None,
        })
    }

    /// The mode of a URL's `sync=` value.
    fn of_url(n: u8) -> Option<Mode> {
        Some(match n {
            1 => Mode::TwoWay,
            2 => Mode::Slow,
            3 => Mode::OneWayFromClient,
            4 => Mode::RefreshFromClient,
            5 => Mode::OneWayFromServer,
            6 => Mode::RefreshFromServer,
            7 => Mode::SlowToServer,
            8 => Mode::SlowToClient,
            9 => Mode::ClientReset,
            _ => return None,
        })
    }

    /// The Alert code the client is given.
    pub fn code(self) -> u16 {
        match self {
            Mode::TwoWay => alert::TWO_WAY,
            Mode::Slow | Mode::SlowToServer | Mode::SlowToClient => alert::SLOW,
            Mode::OneWayFromClient => alert::ONE_WAY_FROM_CLIENT,
            Mode::RefreshFromClient => alert::REFRESH_FROM_CLIENT,
            Mode::OneWayFromServer => alert::ONE_WAY_FROM_SERVER,
            Mode::RefreshFromServer | Mode::ClientReset => alert::REFRESH_FROM_SERVER,
        }
    }

    /// The variant for when the anchors do not agree.
    fn slow(self) -> Mode {
        match self {
            Mode::TwoWay => Mode::Slow,
            Mode::OneWayFromClient => Mode::SlowToServer,
            Mode::OneWayFromServer => Mode::SlowToClient,
            other => other,
        }
    }

    /// Whether the device sends all it has, to be matched with the stored items.
    pub fn matches(self) -> bool {
        matches!(
            self,
            Mode::Slow | Mode::RefreshFromClient | Mode::SlowToServer | Mode::SlowToClient
        )
    }

    /// Whether the device's items are learnt anew (its ids and what it holds).
    pub fn starts_over(self) -> bool {
        !matches!(
            self,
            Mode::TwoWay | Mode::OneWayFromClient | Mode::OneWayFromServer
        )
    }

    /// Whether the device may send changes (else each is answered 405).
    pub fn takes_changes(self) -> bool {
        !matches!(
            self,
            Mode::OneWayFromServer | Mode::RefreshFromServer | Mode::ClientReset
        )
    }

    /// Whether what the device sends is stored (else only matched).
    pub fn stores(self) -> bool {
        self.takes_changes() && self != Mode::SlowToClient
    }

    /// Whether the server's changes stay pending for the device's next sync (it sends
    /// none now, and the device's data is not made the server's).
    pub fn leaves_server_changes(self) -> bool {
        matches!(self, Mode::OneWayFromClient | Mode::SlowToServer)
    }

    pub fn sends(self) -> Sends {
        match self {
            Mode::OneWayFromClient
            | Mode::RefreshFromClient
            | Mode::SlowToServer
            | Mode::ClientReset => Sends::Nothing,
            Mode::Slow | Mode::RefreshFromServer | Mode::SlowToClient => Sends::Everything,
            Mode::TwoWay | Mode::OneWayFromServer => Sends::Changes,
        }
    }
}

/// What the URL a device was given asks of its syncs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UrlOptions {
    pub sync: Option<u8>,
    /// `push` (`push=<port>`): the device takes server-alerted syncs at its address, on
    /// that UDP port (push.rs).
    #[serde(default)]
    pub push: Option<u16>,
    /// `backup` (`backup=<prefix>`): the device's items are written as files too
    /// (backup.rs), named with that prefix.
    #[serde(default)]
    pub backup: Option<String>,
    /// `format=`: the formats the server sends.
    #[serde(default)]
    pub format: Option<Format>,
}

/// IceWarp's `format=`: `sif` sends Funambol's SIF whatever the device says, `vob` the
/// versit formats (vCard, vCalendar, iCalendar), `get` what the device's DevInf prefers
/// (also the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Get,
    Sif,
    Vob,
}

impl UrlOptions {
    /// From a request's query: parameters separated by `&` or by `#` (which the HTTP layer
    /// keeps only percent-encoded, `%23`); unknown ones are ignored.
    pub fn of_query(query: &str) -> UrlOptions {
        let mut o = UrlOptions::default();
        for p in query.split(['&', '#']).flat_map(|p| p.split("%23")) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.to_ascii_lowercase().as_str() {
                "sync" => o.sync = v.parse().ok().filter(|n| (1..=9).contains(n)),
                "reset" => o.sync = Some(9),
                "backup" => o.backup = crate::backup::prefix(v),
                "push" if v.is_empty() => o.push = Some(crate::san::WAP_PUSH_PORT),
                "push" => o.push = v.parse().ok().filter(|p| *p != 0),
                "format" => {
                    o.format = match v.to_ascii_lowercase().as_str() {
                        "sif" => Some(Format::Sif),
                        "vob" => Some(Format::Vob),
                        "get" => Some(Format::Get),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        o
    }
}

/// The sync a datastore gets, and whether the client is told its request could not stand
/// (508).
pub fn decide(asked: u16, url: &UrlOptions, anchors_agree: bool) -> Option<(Mode, bool)> {
    let client = Mode::of_code(asked)?;
    let url = url.sync.and_then(Mode::of_url);
    let checked = |m: Mode| {
        if anchors_agree {
            (m, false)
        } else {
            (m.slow(), m.slow() != m)
        }
    };
    Some(match (client, url) {
        // A client's slow sync or refresh stands.
        (Mode::Slow | Mode::RefreshFromClient | Mode::RefreshFromServer, _) => (client, false),
        (_, Some(u @ (Mode::TwoWay | Mode::OneWayFromClient | Mode::OneWayFromServer))) => {
            checked(u)
        }
        (_, Some(given)) => (given, false),
        (Mode::OneWayFromServer, None) if !anchors_agree => (Mode::RefreshFromServer, true),
        (_, None) => checked(client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::*;

    fn url(n: u8) -> UrlOptions {
        UrlOptions {
            sync: Some(n),
            ..Default::default()
        }
    }

    #[test]
    fn the_decision_table() {
        let none = UrlOptions::default();
        // Without a URL value: the standard rules.
        assert_eq!(decide(200, &none, true), Some((TwoWay, false)));
        assert_eq!(decide(200, &none, false), Some((Slow, true)));
        assert_eq!(decide(202, &none, false), Some((SlowToServer, true)));
        assert_eq!(decide(204, &none, false), Some((RefreshFromServer, true)));
        assert_eq!(decide(206, &none, true), None);
        // A client's slow sync or refresh always stands.
        for n in 1..=9 {
            assert_eq!(decide(201, &url(n), false), Some((Slow, false)));
            assert_eq!(decide(203, &url(n), true), Some((RefreshFromClient, false)));
            assert_eq!(decide(205, &url(n), true), Some((RefreshFromServer, false)));
        }
        // URL 1, 3, 5: the anchors are checked, the slow variant is 201, 7, 8.
        for (n, m, slow) in [
            (1, TwoWay, Slow),
            (3, OneWayFromClient, SlowToServer),
            (5, OneWayFromServer, SlowToClient),
        ] {
            for asked in [200, 202, 204] {
                assert_eq!(
                    decide(asked, &url(n), true),
                    Some((m, false)),
                    "{asked} {n}"
                );
                assert_eq!(
                    decide(asked, &url(n), false),
                    Some((slow, true)),
                    "{asked} {n}"
                );
            }
        }
        // URL 2, 4, 6, 7, 8, 9: as given.
        for (n, m) in [
            (2, Slow),
            (4, RefreshFromClient),
            (6, RefreshFromServer),
            (7, SlowToServer),
            (8, SlowToClient),
            (9, ClientReset),
        ] {
            for agree in [true, false] {
                assert_eq!(decide(200, &url(n), agree), Some((m, false)), "{n}");
            }
        }
        assert_eq!(ClientReset.code(), 205);
        assert_eq!(SlowToClient.code(), 201);
    }

    #[test]
    fn url_options_take_either_separator() {
        assert_eq!(UrlOptions::of_query("s=abc&sync=3").sync, Some(3));
        assert_eq!(UrlOptions::of_query("format=vob%23sync=8").sync, Some(8));
        assert_eq!(
            UrlOptions::of_query("format=vob%23sync=8").format,
            Some(Format::Vob)
        );
        assert_eq!(
            UrlOptions::of_query("sync=2&format=SIF").format,
            Some(Format::Sif)
        );
        assert_eq!(UrlOptions::of_query("format=xml").format, None);
        assert_eq!(UrlOptions::of_query("format=vob#SYNC=2").sync, Some(2));
        assert_eq!(UrlOptions::of_query("reset").sync, Some(9));
        assert_eq!(UrlOptions::of_query("sync=1#push").push, Some(2948));
        assert_eq!(UrlOptions::of_query("push=40000&sync=1").push, Some(40000));
        assert_eq!(UrlOptions::of_query("push=0").push, None);
        assert_eq!(
            UrlOptions::of_query("sync=1#backup").backup.as_deref(),
            Some("")
        );
        assert_eq!(
            UrlOptions::of_query("backup=ph-&sync=2").backup.as_deref(),
            Some("ph-")
        );
        assert_eq!(UrlOptions::of_query("backup=../x").backup, None);
        assert_eq!(UrlOptions::of_query("sync=10").sync, None);
        assert_eq!(UrlOptions::of_query("").sync, None);
    }
}
