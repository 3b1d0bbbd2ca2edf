//! Registration: the lease grant and the epoch transaction (the epoch rule is in the
//! parent module's docs).

use super::super::{Member, MembershipError, Registration};
use super::lease;
use super::shared::{Session, Shared};
use ebbtide_model::Epoch;
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Attempts of the epoch transaction when the epoch counter moves under it.
const REGISTER_ATTEMPTS: usize = 16;

/// See [`super::EtcdMembership::register`].
pub(super) async fn register(
    shared: &Arc<Shared>,
    reg: Registration,
    floor: Epoch,
) -> Result<Member, MembershipError> {
    if reg.node.is_empty() || reg.node.contains('/') {
        return Err(MembershipError::Failed(format!(
            "a node id must be non-empty and contain no '/' (got {:?})",
            reg.node
        )));
    }
    if shared.session.get().is_some() {
        return Err(MembershipError::Failed(
            "this handle is already registered".into(),
        ));
    }
    let ttl_secs = shared.lease_ttl.as_secs() + u64::from(shared.lease_ttl.subsec_nanos() > 0);
    let granted_at = Instant::now();
    let mut lease_client = shared.client.lease_client();
    let grant = shared
        .rpc("grant a lease", lease_client.grant(ttl_secs as i64, None))
        .await?;
    let lease = grant.id();
    // The local deadline's length: never longer than what etcd granted, so that it
    // never falls after etcd's own expiry.
    let ttl = shared
        .lease_ttl
        .min(Duration::from_secs(grant.ttl().max(0) as u64));
    match take_epoch(shared, &reg, floor, lease).await {
        Ok((member, created)) => {
            let session = Session {
                node: reg.node.clone(),
                lease,
                member_key: shared.keys.member(&reg.node),
                created,
            };
            if shared.session.set(session).is_err() {
                // Another register on a clone won the race; ours must not linger.
                let _ = shared
                    .rpc("revoke a lease", lease_client.revoke(lease))
                    .await;
                return Err(MembershipError::Failed(
                    "this handle is already registered".into(),
                ));
            }
            // The grant request counts as the first keep-alive, sent at `granted_at`.
            shared.spawn(lease::keep_alive(shared.clone(), lease, ttl, granted_at));
            Ok(member)
        }
        Err(e) => {
            // Best effort: an unrevoked lease holds nothing and expires by itself.
            let _ = shared
                .rpc("revoke a lease", lease_client.revoke(lease))
                .await;
            Err(e)
        }
    }
}

/// The epoch transaction: answers the member and the revision that created its key.
async fn take_epoch(
    shared: &Shared,
    reg: &Registration,
    floor: Epoch,
    lease: i64,
) -> Result<(Member, i64), MembershipError> {
    let member_key = shared.keys.member(&reg.node);
    let counter_key = shared.keys.epoch(&reg.node);
    let mut kv = shared.client.kv_client();
    for _ in 0..REGISTER_ATTEMPTS {
        let got = shared
            .rpc("read the epoch counter", kv.get(counter_key.clone(), None))
            .await?;
        let (last, counter_rev) = match got.kvs().first() {
            None => (0, 0), // a missing key's mod revision compares as 0
            Some(c) => {
                let last = std::str::from_utf8(c.value())
                    .ok()
                    .and_then(|v| v.trim().parse::<Epoch>().ok())
                    .ok_or_else(|| MembershipError::Malformed {
                        key: counter_key.clone(),
                        error: format!("not an epoch: {:?}", String::from_utf8_lossy(c.value())),
                    })?;
                (last, c.mod_revision())
            }
        };
        let epoch = last
            .max(floor)
            .checked_add(1)
            .ok_or_else(|| MembershipError::Failed(format!("epoch overflow for {}", reg.node)))?;
        let member = Member {
            epoch,
            registration: reg.clone(),
        };
        let json =
            serde_json::to_vec(&member).map_err(|e| MembershipError::Failed(e.to_string()))?;
        let txn = Txn::new()
            .when([
                Compare::create_revision(member_key.clone(), CompareOp::Equal, 0),
                Compare::mod_revision(counter_key.clone(), CompareOp::Equal, counter_rev),
            ])
            .and_then([
                TxnOp::put(counter_key.clone(), epoch.to_string(), None),
                TxnOp::put(
                    member_key.clone(),
                    json,
                    Some(PutOptions::new().with_lease(lease)),
                ),
            ])
            .or_else([TxnOp::get(member_key.clone(), None)]);
        let answer = shared.rpc("register", kv.txn(txn)).await?;
        if answer.succeeded() {
            let created = answer.header().map(|h| h.revision()).unwrap_or_default();
            return Ok((member, created));
        }
        let holder = answer.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().cloned(),
            _ => None,
        });
        if let Some(h) = holder {
            return Err(match serde_json::from_slice::<Member>(h.value()) {
                Ok(m) => MembershipError::IdTaken {
                    node: reg.node.clone(),
                    holder: Box::new(m.registration),
                },
                Err(e) => MembershipError::Malformed {
                    key: member_key.clone(),
                    error: e.to_string(),
                },
            });
        }
        // The counter moved (another registration of this id, since gone): again.
    }
    Err(MembershipError::Failed(format!(
        "the epoch counter {counter_key} kept changing during {REGISTER_ATTEMPTS} attempts"
    )))
}
