//! The member watch: a snapshot of `/<cluster>/members/`, then every change after it.
//!
//! The snapshot is read at one revision `R` (paged), and the watch starts at `R + 1`:
//! etcd replays every change after the snapshot, so none falls between the two. When
//! the stream breaks, the watch resumes after the last revision it delivered (again
//! nothing is missed, and no new snapshot is needed). When etcd cancels the watch (its
//! start revision was compacted away, or any other reason), the task reads a fresh
//! snapshot and sends it: members missing from it have left.
//!
//! **A fresh view after a win.** `Elected` makes the view stale (the view's generation,
//! [`Shared::emit_member`]): the watch stops, reads a new snapshot and follows from it.
//! A snapshot whose read began before the win is read again, and an event of the old
//! watch is not sent: after `Elected`, the first member event is a snapshot read after
//! the win, which the new coordinator starts from (`Event::Elected`).
//!
//! The same watch notices the end of our own registration: a delete of our key after
//! the revision that created it means the lease is gone (or someone removed us), and
//! the process fences itself.

use super::super::{Event, Member};
use super::shared::{Failures, Shared};
use super::units::read_prefix;
use ebbtide_model::Epoch;
use etcd_client::{EventType, KeyValue, WatchOptions};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::sleep;

/// The incarnations this task has reported, by key.
type Known = HashMap<String, Incarnation>;

#[derive(Clone, Debug)]
struct Incarnation {
    node: String,
    epoch: Epoch,
}

/// Why following the watch stopped.
enum End {
    /// A win made the view stale: take a fresh snapshot.
    FreshView(Known),
    /// etcd cancelled the watch: take a fresh snapshot.
    Cancelled(String, Known),
    /// The stream broke: resume at `next` with what we know.
    Broken {
        next: i64,
        known: Known,
        error: String,
    },
    /// Our own registration is gone: fenced.
    Fenced,
}

/// Reports the members until aborted or fenced.
pub(super) async fn watch_members(shared: Arc<Shared>) {
    let mut resume: Option<(i64, Known, u64)> = None;
    // What the last watch reported, for the next snapshot to say who left since.
    let mut previous = Known::new();
    let mut failures = Failures::new("member watch");
    loop {
        let (next, known, generation) = match resume.take() {
            Some(r) => r,
            None => match snapshot(&shared, &previous).await {
                Ok(Some(s)) => s,
                Ok(None) => return, // fenced
                Err(e) => {
                    failures.failed(&e);
                    sleep(shared.retry_pause()).await;
                    continue;
                }
            },
        };
        match follow(&shared, next, known, generation, &mut failures).await {
            End::Fenced => return,
            End::FreshView(known) => {
                tracing::debug!("won the election: reading a fresh member snapshot");
                previous = known;
            }
            End::Cancelled(why, known) => {
                tracing::warn!(reason = %why, "etcd cancelled the member watch; taking a fresh snapshot");
                previous = known;
            }
            End::Broken { next, known, error } => {
                failures.failed(&error);
                sleep(shared.retry_pause()).await;
                resume = Some((next, known, generation));
            }
        }
    }
}

/// Reads every member, sends `Snapshot`, and answers where the watch starts and the
/// view's generation. `None`: our own registration is missing, and the process fenced
/// itself.
///
/// A node that `previous` (the last watch) reported and the snapshot lacks has left
/// meanwhile, perhaps after incarnations the watch never reported: its `Left` goes
/// first and names the newest epoch registered by the snapshot's revision (the epoch
/// counter, written in one transaction with each registration). A leave naming the
/// epoch the watch knew could be older than an incarnation that has already reported
/// to the coordinator, which then ignores it (C17) and counts units on a process that
/// is gone.
async fn snapshot(
    shared: &Shared,
    previous: &Known,
) -> Result<Option<(i64, Known, u64)>, super::super::MembershipError> {
    loop {
        let generation = *shared.view.borrow();
        let Some((next, known, members)) = read_members(shared).await? else {
            return Ok(None);
        };
        let mut events = Vec::new();
        for old in previous
            .iter()
            .filter(|(key, _)| !known.contains_key(*key))
            .map(|(_, old)| old)
        {
            let epoch = newest_epoch(shared, &old.node, next - 1)
                .await?
                .unwrap_or(old.epoch)
                .max(old.epoch);
            events.push(Event::Left {
                node: old.node.clone(),
                epoch,
            });
        }
        events.push(Event::Snapshot(members));
        // A win during the read: the read may predate it; read again.
        if shared.emit_members(generation, events) {
            return Ok(Some((next, known, generation)));
        }
    }
}

/// The last epoch handed to `node` as of `revision`, if any.
async fn newest_epoch(
    shared: &Shared,
    node: &str,
    revision: i64,
) -> Result<Option<Epoch>, super::super::MembershipError> {
    let mut kv = shared.client.kv_client();
    let options = etcd_client::GetOptions::new().with_revision(revision);
    let got = shared
        .rpc(
            "read an epoch counter",
            kv.get(shared.keys.epoch(node), Some(options)),
        )
        .await?;
    Ok(got
        .kvs()
        .first()
        .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok()))
}

/// One member snapshot: where the watch starts, the incarnations, the members.
type Read = (i64, Known, Vec<Member>);

/// Reads every member at one revision. `None`: our own registration is missing, and
/// the process fenced itself.
async fn read_members(shared: &Shared) -> Result<Option<Read>, super::super::MembershipError> {
    let prefix = shared.keys.members_prefix();
    let mut members = Vec::new();
    let mut known = Known::new();
    let mut ours_present = false;
    let own = shared.session.get();
    let read = read_prefix(shared, &prefix, false, |kv| {
        if let Some(s) = own {
            if kv.key() == s.member_key.as_bytes() && kv.create_revision() == s.created {
                ours_present = true;
            }
        }
        if let Some((key, member)) = parse(&prefix, &kv) {
            known.insert(
                key,
                Incarnation {
                    node: member.node().to_string(),
                    epoch: member.epoch,
                },
            );
            members.push(member);
        }
    })
    .await?;
    if own.is_some() && !ours_present {
        shared.fence("our registration is no longer in etcd");
        return Ok(None);
    }
    Ok(Some((read.revision + 1, known, members)))
}

/// Follows the watch from revision `next`, for the view of `generation`.
async fn follow(
    shared: &Shared,
    mut next: i64,
    mut known: Known,
    generation: u64,
    failures: &mut Failures,
) -> End {
    let mut view = shared.view.subscribe();
    if *view.borrow_and_update() != generation {
        return End::FreshView(known);
    }
    let prefix = shared.keys.members_prefix();
    let options = WatchOptions::new().with_prefix().with_start_revision(next);
    let mut client = shared.client.watch_client();
    let mut stream = match shared
        .rpc(
            "watch the members",
            client.watch(prefix.clone(), Some(options)),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            return End::Broken {
                next,
                known,
                error: e.to_string(),
            }
        }
    };
    loop {
        let message = tokio::select! {
            biased;
            _ = view.changed() => return End::FreshView(known),
            m = stream.message() => m,
        };
        let response = match message {
            Ok(Some(r)) => {
                failures.succeeded();
                r
            }
            Ok(None) => {
                return End::Broken {
                    next,
                    known,
                    error: "etcd closed the watch stream".into(),
                }
            }
            Err(e) => {
                return End::Broken {
                    next,
                    known,
                    error: e.to_string(),
                }
            }
        };
        if response.canceled() {
            let why = match response.compact_revision() {
                0 => format!("cancelled: {}", response.cancel_reason()),
                c => format!("revision {next} was compacted (oldest kept: {c})"),
            };
            return End::Cancelled(why, known);
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            next = next.max(kv.mod_revision() + 1);
            let Ok(key) = std::str::from_utf8(kv.key()) else {
                tracing::warn!(key = ?kv.key(), "skipping a member key that is not UTF-8");
                continue;
            };
            match event.event_type() {
                EventType::Put => {
                    let parsed = parse(&prefix, kv);
                    let same = match (&parsed, known.get(key)) {
                        (Some((_, m)), Some(old)) => m.epoch == old.epoch,
                        _ => false,
                    };
                    if same {
                        continue; // the same incarnation written again
                    }
                    if let Some(old) = known.remove(key) {
                        let left = Event::Left {
                            node: old.node,
                            epoch: old.epoch,
                        };
                        if !shared.emit_member(generation, left) {
                            return End::FreshView(known);
                        }
                    }
                    if let Some((key, member)) = parsed {
                        known.insert(
                            key,
                            Incarnation {
                                node: member.node().to_string(),
                                epoch: member.epoch,
                            },
                        );
                        if !shared.emit_member(generation, Event::Joined(member)) {
                            return End::FreshView(known);
                        }
                    }
                }
                EventType::Delete => {
                    if let Some(old) = known.remove(key) {
                        let left = Event::Left {
                            node: old.node,
                            epoch: old.epoch,
                        };
                        if !shared.emit_member(generation, left) {
                            return End::FreshView(known);
                        }
                    }
                    if let Some(s) = shared.session.get() {
                        if key == s.member_key && kv.mod_revision() > s.created {
                            shared.fence("our registration was deleted from etcd");
                            return End::Fenced;
                        }
                    }
                }
            }
        }
    }
}

/// A member record, or `None` (logged) when it does not parse or names another node
/// than its key.
fn parse(prefix: &str, kv: &KeyValue) -> Option<(String, Member)> {
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    let id = key.strip_prefix(prefix).unwrap_or(&key);
    match serde_json::from_slice::<Member>(kv.value()) {
        Ok(m) if m.node() == id => Some((key, m)),
        Ok(m) => {
            tracing::warn!(key = %key, node = %m.node(), "skipping a member record whose node id is not its key's");
            None
        }
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "skipping a member record that does not parse");
            None
        }
    }
}
