//! `bureau bootenv`: RAUC's custom bootloader backend on the appliance. It reads and writes
//! the GRUB environment block (EFI/bureau/grubenv on the EFI partition) that image/grub.cfg
//! uses to choose root slot A or B:
//!
//! - `ORDER`: the slots, preferred first;
//! - `X_OK=1`: slot X may boot; `X_TRY=1`: slot X was booted and not yet marked good, so GRUB
//!   skips it next time (which is how a failed update falls back to the other slot).
//!
//! The block is GRUB's format: 1024 bytes, a header line, `name=value` lines, '#' padding.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const SIZE: usize = 1024;
const HEADER: &str = "# GRUB Environment Block\n";
const SLOTS: [&str; 2] = ["A", "B"];

/// What a backend command stops at; RAUC shows it and keeps the slots as they were.
#[derive(Debug, thiserror::Error)]
pub enum BootEnvError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {why}", path.display())]
    Damaged { path: PathBuf, why: NotABlock },
    #[error("no slot named {0:?} (A or B)")]
    NoSlot(String),
    #[error("environment over 1024 bytes")]
    TooLong,
    #[error(
        "usage: bureau bootenv get-primary | set-primary SLOT | get-state SLOT | set-state SLOT good|bad"
    )]
    Usage,
}

/// Why bytes are not a GRUB environment block.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotABlock {
    #[error("not text")]
    NotText,
    #[error("not a GRUB environment block (no header)")]
    NoHeader,
    #[error("bad line {0:?}")]
    BadLine(String),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct GrubEnv {
    vars: BTreeMap<String, String>,
}

impl GrubEnv {
    pub fn parse(data: &[u8]) -> Result<GrubEnv, NotABlock> {
        let text = std::str::from_utf8(data).map_err(|_| NotABlock::NotText)?;
        let body = text.strip_prefix(HEADER).ok_or(NotABlock::NoHeader)?;
        let mut vars = BTreeMap::new();
        for line in body.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| NotABlock::BadLine(line.into()))?;
            vars.insert(k.to_string(), v.to_string());
        }
        Ok(GrubEnv { vars })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, BootEnvError> {
        let mut out = HEADER.to_string();
        for (k, v) in &self.vars {
            out += &format!("{k}={v}\n");
        }
        if out.len() > SIZE {
            return Err(BootEnvError::TooLong);
        }
        let mut b = out.into_bytes();
        b.resize(SIZE, b'#');
        Ok(b)
    }

    fn get(&self, k: &str) -> &str {
        self.vars.get(k).map_or("", String::as_str)
    }

    fn set(&mut self, k: &str, v: &str) {
        self.vars.insert(k.to_string(), v.to_string());
    }

    fn order(&self) -> Vec<String> {
        let o: Vec<String> = self
            .get("ORDER")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if o.is_empty() {
            SLOTS.iter().map(|s| s.to_string()).collect()
        } else {
            o
        }
    }

    /// The slot GRUB boots next: the first good one in ORDER (the first of all if none is).
    pub fn primary(&self) -> String {
        let order = self.order();
        order
            .iter()
            .find(|s| self.is_good(s))
            .unwrap_or(&order[0])
            .clone()
    }

    /// Makes `slot` the one booted next, as a fresh try.
    pub fn set_primary(&mut self, slot: &str) -> Result<(), BootEnvError> {
        check_slot(slot)?;
        let mut order = vec![slot.to_string()];
        order.extend(self.order().into_iter().filter(|s| s != slot));
        self.set("ORDER", &order.join(" "));
        self.set(&format!("{slot}_OK"), "1");
        self.set(&format!("{slot}_TRY"), "0");
        Ok(())
    }

    /// Good: may boot, and is not a pending try.
    pub fn is_good(&self, slot: &str) -> bool {
        self.get(&format!("{slot}_OK")) == "1" && self.get(&format!("{slot}_TRY")) == "0"
    }

    pub fn set_state(&mut self, slot: &str, good: bool) -> Result<(), BootEnvError> {
        check_slot(slot)?;
        self.set(&format!("{slot}_OK"), if good { "1" } else { "0" });
        self.set(&format!("{slot}_TRY"), "0");
        Ok(())
    }
}

fn check_slot(slot: &str) -> Result<(), BootEnvError> {
    if SLOTS.contains(&slot) {
        Ok(())
    } else {
        Err(BootEnvError::NoSlot(slot.into()))
    }
}

fn file(path: &Path) -> impl Fn(std::io::Error) -> BootEnvError + '_ {
    move |source| BootEnvError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn load(path: &Path) -> Result<GrubEnv, BootEnvError> {
    let data = std::fs::read(path).map_err(file(path))?;
    GrubEnv::parse(&data).map_err(|why| BootEnvError::Damaged {
        path: path.to_path_buf(),
        why,
    })
}

/// Rewrites the block in place, as GRUB itself does (GRUB can only write to the file's
/// existing blocks, so it must not be replaced by a new file), then syncs it.
fn save(path: &Path, env: &GrubEnv) -> Result<(), BootEnvError> {
    let bytes = env.to_bytes()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(file(path))?;
    f.write_all(&bytes).map_err(file(path))?;
    f.sync_all().map_err(file(path))
}

/// Runs one backend command as RAUC calls it; what it prints goes to stdout.
pub fn run(file: &Path, args: &[String]) -> Result<String, BootEnvError> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["get-primary"] => Ok(load(file)?.primary()),
        ["set-primary", slot] => {
            let mut env = load(file)?;
            env.set_primary(slot)?;
            save(file, &env).map(|_| String::new())
        }
        ["get-state", slot] => {
            check_slot(slot)?;
            Ok(if load(file)?.is_good(slot) {
                "good"
            } else {
                "bad"
            }
            .into())
        }
        ["set-state", slot, state @ ("good" | "bad")] => {
            let mut env = load(file)?;
            env.set_state(slot, *state == "good")?;
            save(file, &env).map(|_| String::new())
        }
        _ => Err(BootEnvError::Usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `grub-editenv FILE create; grub-editenv FILE set ORDER="A B" A_OK=1 ...` writes.
    fn fresh() -> Vec<u8> {
        let mut b = format!("{HEADER}A_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\nORDER=A B\n").into_bytes();
        b.resize(SIZE, b'#');
        b
    }

    #[test]
    fn round_trip_keeps_grub_format() {
        let env = GrubEnv::parse(&fresh()).unwrap();
        assert_eq!(env.to_bytes().unwrap(), fresh());
        assert_eq!(GrubEnv::parse(b"A_OK=1\n"), Err(NotABlock::NoHeader));
    }

    #[test]
    fn install_try_and_fallback() {
        let mut env = GrubEnv::parse(&fresh()).unwrap();
        assert_eq!(env.primary(), "A");
        assert!(env.is_good("A") && !env.is_good("B"));
        // RAUC installs into B and makes it primary: a fresh try.
        env.set_primary("B").unwrap();
        assert_eq!(env.get("ORDER"), "B A");
        assert!(env.is_good("B"));
        // GRUB boots B and sets B_TRY=1; until marked good it reads as bad, and should this
        // boot fail, A is the next one.
        env.set("B_TRY", "1");
        assert!(!env.is_good("B"));
        assert_eq!(env.primary(), "A");
        env.set_state("B", true).unwrap();
        assert!(env.is_good("B"));
        env.set_state("A", false).unwrap();
        assert!(!env.is_good("A"));
        // A failed update of A: B stays the one that boots.
        env.set_primary("A").unwrap();
        env.set_state("A", false).unwrap();
        assert_eq!(env.primary(), "B");
        assert!(matches!(env.set_primary("C"), Err(BootEnvError::NoSlot(_))));
    }

    #[test]
    fn commands_edit_the_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("grubenv");
        std::fs::write(&f, fresh()).unwrap();
        let run = |a: &[&str]| run(&f, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(run(&["get-primary"]).unwrap(), "A");
        assert_eq!(run(&["get-state", "B"]).unwrap(), "bad");
        run(&["set-primary", "B"]).unwrap();
        assert_eq!(run(&["get-primary"]).unwrap(), "B");
        assert_eq!(run(&["get-state", "B"]).unwrap(), "good");
        run(&["set-state", "A", "bad"]).unwrap();
        assert_eq!(run(&["get-state", "A"]).unwrap(), "bad");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), SIZE as u64);
        assert!(matches!(
            run(&["set-state", "A", "maybe"]),
            Err(BootEnvError::Usage)
        ));
        assert!(matches!(run(&["frobnicate"]), Err(BootEnvError::Usage)));
    }
}
