//! Rights: who may do what to a collection. Checked by the reader and the writer alike.

use crate::model::{Access, Actor, Collection, PrincipalId, Right};
use crate::{Result, StoreError};
use redb::ReadableTable;

/// The access `actor` has to `coll`, or `None`.
pub(crate) fn access_of(
    grants: &impl ReadableTable<(u64, u64), u8>,
    member_of: &impl ReadableTable<(u64, u64), ()>,
    actor: Actor,
    coll: &Collection,
) -> Result<Option<Access>> {
    let p = match actor {
        Actor::System => return Ok(Some(Access::Owner)),
        Actor::Principal(p) if p == coll.owner => return Ok(Some(Access::Owner)),
        Actor::Principal(p) => p,
    };
    let mut best: Option<Access> = None;
    for entry in grants.range((coll.id, 0)..=(coll.id, u64::MAX))? {
        let (k, v) = entry?;
        let grantee = k.value().1;
        let applies = grantee == p || member_of.get((p, grantee))?.is_some();
        if !applies {
            continue;
        }
        let Some(right) = Right::from_u8(v.value()) else {
            continue;
        };
        best = best.max(Some(right.access()));
    }
    Ok(best)
}

/// Refuses unless `have` reaches `need`. No access at all reads as "not found", so that a
/// collection one may not see does not reveal that it exists.
pub(crate) fn require(have: Option<Access>, need: Access) -> Result<Access> {
    match have {
        None => Err(StoreError::NotFound),
        Some(a) if a >= need => Ok(a),
        Some(_) => Err(StoreError::Forbidden),
    }
}

/// Devices and sync state belong to their principal; only it (or the system) reaches them.
pub(crate) fn own_or_system(actor: Actor, principal: PrincipalId) -> Result<()> {
    match actor {
        Actor::System => Ok(()),
        Actor::Principal(p) if p == principal => Ok(()),
        Actor::Principal(_) => Err(StoreError::Forbidden),
    }
}
