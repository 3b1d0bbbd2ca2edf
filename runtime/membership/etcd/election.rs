//! The election, on etcd's election API (election name `/<cluster>/election`).
//!
//! A candidate's `Campaign` writes the key `/<cluster>/election/<lease hex>` under its
//! lease and returns once every key with a smaller create revision is gone: the leader
//! is always the oldest candidate key. Its term is that key's create revision.
//!
//! **Why terms only grow.** etcd's revision is one counter for the whole store, so a key
//! created later has a larger create revision than every key created before it. The
//! leader is the candidate key with the smallest create revision; the next leader is the
//! smallest key that remains once that one is deleted, or a key created later, and both
//! are larger than the deleted one. So each leader's term is larger than every earlier
//! leader's, with no coordination between the candidates. (A wiped etcd starts its
//! revisions over; that is outside what this service can see.)
//!
//! **Deposed.** A winner learns it lost the leadership in three ways, each reported as
//! one `Deposed`: it resigns; its leader key vanishes (watched from the moment it won);
//! or the observation shows a leader with a larger term. A leader with a smaller term
//! on the observation is only a late report of an earlier leader, never a reason.

use super::super::{Event, MembershipError};
use super::shared::{is_lease_not_found, Campaign, Failures, Shared};
use ebbtide_model::Term;
use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use std::sync::Arc;
use tokio::time::sleep;

/// Starts a campaign unless one is pending or won (or the gate is closed).
pub(super) fn campaign(shared: &Arc<Shared>) {
    let Some(session) = shared.session.get() else {
        tracing::error!("campaign called before register: nothing to campaign with");
        return;
    };
    let mut gate = shared.gate();
    if gate.is_closed() || !matches!(gate.campaign, Campaign::Idle) {
        return;
    }
    let task = shared.spawn(run_campaign(
        shared.clone(),
        session.lease,
        session.node.clone(),
    ));
    gate.campaign = Campaign::Pending(task);
}

/// Waits in etcd's `Campaign` (retrying while etcd is unreachable) and reports the win.
async fn run_campaign(shared: Arc<Shared>, lease: i64, node: String) {
    let name = shared.keys.election();
    let mut failures = Failures::new("campaign");
    loop {
        let mut client = shared.client.election_client();
        match client.campaign(name.clone(), node.clone(), lease).await {
            Ok(won) => {
                let Some(leader) = won.leader() else {
                    tracing::error!(
                        "etcd answered a campaign without a leader key; campaigning again"
                    );
                    sleep(shared.retry_pause()).await;
                    continue;
                };
                let term = leader.rev() as Term;
                let key = leader.key().to_vec();
                if key != shared.keys.candidate(lease).as_bytes() {
                    tracing::warn!(key = %String::from_utf8_lossy(&key), "etcd's candidate key is not where resign looks for it");
                }
                {
                    let mut gate = shared.gate();
                    if gate.is_closed() || !matches!(gate.campaign, Campaign::Pending(_)) {
                        return; // resigned (or fenced) while the answer was on its way
                    }
                    let watch = shared.spawn(watch_leader_key(shared.clone(), key, term));
                    gate.campaign = Campaign::Won {
                        term,
                        watch: Some(watch),
                    };
                    shared.push_elected(&mut gate, term);
                }
                return;
            }
            // The lease is gone: the keep-alive task fences; nothing to win any more.
            Err(e) if is_lease_not_found(&e) => return,
            Err(e) => {
                failures.failed(&e);
                sleep(shared.retry_pause()).await;
            }
        }
    }
}

/// After a win: reports `Deposed` when our leader key of `term` is deleted.
async fn watch_leader_key(shared: Arc<Shared>, key: Vec<u8>, term: Term) {
    let mut next = term as i64 + 1;
    let mut failures = Failures::new("leader key watch");
    loop {
        let mut client = shared.client.watch_client();
        let options = WatchOptions::new().with_start_revision(next);
        let deleted = match shared
            .rpc(
                "watch the leader key",
                client.watch(key.clone(), Some(options)),
            )
            .await
        {
            Err(e) => Err(e.to_string()),
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(r)) if r.canceled() => {
                        break Err(format!("watch cancelled: {}", r.cancel_reason()))
                    }
                    Ok(Some(r)) => {
                        failures.succeeded();
                        if let Some(e) = r
                            .events()
                            .iter()
                            .find(|e| e.event_type() == EventType::Delete)
                        {
                            break Ok(e.kv().map(|kv| kv.mod_revision()).unwrap_or_default());
                        }
                        if let Some(kv) = r.events().last().and_then(|e| e.kv()) {
                            next = kv.mod_revision() + 1;
                        }
                    }
                    Ok(None) => break Err("etcd closed the watch".into()),
                    Err(e) => break Err(e.to_string()),
                }
            },
        };
        match deleted {
            Ok(revision) => {
                tracing::warn!(term, revision, "our leader key was deleted");
                return depose_if(&shared, term);
            }
            Err(e) => {
                // Compacted or broken: look at the key itself before watching again.
                failures.failed(&e);
                sleep(shared.retry_pause()).await;
                let mut kv = shared.client.kv_client();
                match shared
                    .rpc("read the leader key", kv.get(key.clone(), None))
                    .await
                {
                    Ok(got) => match got.kvs().first() {
                        Some(k) if k.create_revision() as Term == term => {
                            next = got.header().map(|h| h.revision() + 1).unwrap_or(next);
                        }
                        _ => return depose_if(&shared, term),
                    },
                    Err(e) => failures.failed(&e),
                }
            }
        }
    }
}

/// Sends `Deposed` if we still hold the leadership of `term`.
fn depose_if(shared: &Shared, term: Term) {
    let mut gate = shared.gate();
    if matches!(gate.campaign, Campaign::Won { term: t, .. } if t == term) {
        if let Campaign::Won { watch: w, .. } = &mut gate.campaign {
            w.take(); // this very task: it returns now
        }
        gate.withdraw();
    }
}

/// Reports the leader each time it changes, until aborted.
pub(super) async fn observe(shared: Arc<Shared>) {
    let name = shared.keys.election();
    let mut last: Option<Term> = None;
    let mut failures = Failures::new("election observation");
    loop {
        let mut client = shared.client.election_client();
        // No request bound: etcd answers an observation only once there is a leader,
        // which may take any time. HTTP/2 pings find a dead connection.
        let error = match client.observe(name.clone()).await {
            Err(e) => e.to_string(),
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(answer)) => {
                        failures.succeeded();
                        let Some(kv) = answer.kv() else { continue };
                        let term = kv.create_revision() as Term;
                        if last == Some(term) {
                            continue; // the same leader, reported again
                        }
                        last = Some(term);
                        let node = String::from_utf8_lossy(kv.value()).into_owned();
                        if leader_seen(&shared, term, node, kv.key()) {
                            remove_stale_candidacy(&shared, kv.key(), term).await;
                        }
                    }
                    Ok(None) => break "etcd closed the election observation".to_string(),
                    Err(e) => break e.to_string(),
                }
            },
        };
        failures.failed(&error);
        sleep(shared.retry_pause()).await;
    }
}

/// Reports a leader; a winner that sees a leader of a larger term is deposed first.
/// Answers whether the leader key is a stale candidacy of ours: our key while we are
/// not a candidate. That happens when a resign aborts a campaign whose request reached
/// etcd only after the resign deleted the key (etcd cancels such a campaign, but one
/// that won at once has nothing left to cancel).
fn leader_seen(shared: &Shared, term: Term, node: String, key: &[u8]) -> bool {
    let mut gate = shared.gate();
    if matches!(gate.campaign, Campaign::Won { term: ours, .. } if term > ours) {
        gate.withdraw();
    }
    gate.push(Event::Leader { term, node });
    let ours = shared
        .session
        .get()
        .is_some_and(|s| key == shared.keys.candidate(s.lease).as_bytes());
    ours && !gate.is_closed() && matches!(gate.campaign, Campaign::Idle)
}

/// Deletes our candidate key of `term`, unless it was created again since (by a new
/// campaign, which must keep it).
async fn remove_stale_candidacy(shared: &Shared, key: &[u8], term: Term) {
    tracing::warn!(
        term,
        "our candidate key leads while we are no candidate; deleting it"
    );
    let txn = Txn::new()
        .when([Compare::create_revision(
            key.to_vec(),
            CompareOp::Equal,
            term as i64,
        )])
        .and_then([TxnOp::delete(key.to_vec(), None)]);
    let mut kv = shared.client.kv_client();
    if let Err(e) = shared.rpc("delete a stale candidacy", kv.txn(txn)).await {
        tracing::warn!(error = %e, "cannot delete our stale candidate key");
    }
}

/// Withdraws the candidacy and gives up a won leadership (`Deposed` first, so the node
/// stops its coordinator before another candidate can win). Then deletes our candidate
/// key, whatever the local state says, so that a resign retried after an error, or one
/// racing etcd's own clean-up of an aborted campaign, still leaves no key behind.
pub(super) async fn resign(shared: &Shared) -> Result<(), MembershipError> {
    shared.gate().withdraw();
    let Some(session) = shared.session.get() else {
        return Ok(()); // never registered: never a candidate
    };
    let mut kv = shared.client.kv_client();
    shared
        .rpc(
            "resign",
            kv.delete(shared.keys.candidate(session.lease), None),
        )
        .await?;
    Ok(())
}
