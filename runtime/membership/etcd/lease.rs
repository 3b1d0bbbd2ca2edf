//! The lease keep-alive and the local lease deadline.
//!
//! etcd expires a lease `TTL` after the last keep-alive it *received*. A keep-alive
//! request is received after it was *sent*, so "the last keep-alive whose answer said
//! the lease lives was sent at `s`" means etcd keeps the lease at least until `s + TTL`.
//! The task therefore keeps a local deadline, a margin before `s + TTL` for the latest
//! such `s` ([`crate::membership::fence_deadline`]: `s + TTL` itself can be the very
//! instant etcd expires the lease), and fences (sends `LeaseLost`) when the deadline
//! passes with no newer success: before etcd expires the lease, whatever etcd, the network or this process (a
//! SIGSTOP, a long pause) did meanwhile. Deadlines use the monotonic clock, which keeps
//! running while the process is stopped, so a resumed process sees the deadline as
//! past before it trusts any answer that was waiting in its socket.
//!
//! Answers on the keep-alive stream come in request order, so each answer is matched to
//! the oldest request still waiting (a queue of send times).

use super::shared::{is_lease_not_found, Failures, Shared};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

/// How one keep-alive stream ended.
enum End {
    /// The local deadline passed.
    Expired,
    /// etcd answered that the lease is gone.
    Gone,
    /// The stream broke; open another.
    Broken(String),
}

/// Keeps `lease` alive every `ttl / 3` until the lease is lost (then fences) or the task
/// is aborted.
pub(super) async fn keep_alive(
    shared: Arc<Shared>,
    lease: i64,
    ttl: Duration,
    granted_at: Instant,
) {
    let period = ttl / 3;
    let mut deadline = crate::membership::fence_deadline(granted_at, ttl);
    shared.set_deadline(deadline);
    let mut failures = Failures::new("lease keep-alive");
    loop {
        match stream(&shared, lease, ttl, period, &mut deadline, &mut failures).await {
            End::Expired => {
                return shared.fence(&format!(
                    "no keep-alive succeeded for the lease TTL ({ttl:?}): etcd may have expired the lease"
                ))
            }
            End::Gone => return shared.fence("etcd answered that the lease is gone"),
            End::Broken(e) => {
                failures.failed(&e);
                tokio::select! {
                    biased;
                    _ = sleep_until(deadline) => {}
                    _ = sleep(shared.retry_pause()) => {}
                }
            }
        }
    }
}

/// One keep-alive stream: opens it (its first request is a keep-alive), then sends a
/// request every `period` and moves `deadline` on with each live answer.
async fn stream(
    shared: &Shared,
    lease: i64,
    ttl: Duration,
    period: Duration,
    deadline: &mut Instant,
    failures: &mut Failures,
) -> End {
    if Instant::now() >= *deadline {
        return End::Expired;
    }
    let mut client = shared.client.lease_client();
    let sent = Instant::now();
    // `keep_alive` sends the first request and waits for its answer.
    let opened = match timeout_at(*deadline, client.keep_alive(lease)).await {
        Err(_) => return End::Expired,
        Ok(Err(e)) if is_lease_not_found(&e) => return End::Gone,
        Ok(Err(e)) => return End::Broken(e.to_string()),
        Ok(Ok(opened)) => opened,
    };
    let (mut keeper, mut answers) = opened;
    failures.succeeded();
    *deadline = (*deadline).max(crate::membership::fence_deadline(sent, ttl));
    shared.set_deadline(*deadline);
    let mut waiting: VecDeque<Instant> = VecDeque::new();
    let mut next = sent + period;
    loop {
        // Checked before every wait, so that a process resumed after the deadline fences
        // before it looks at answers that arrived meanwhile.
        if Instant::now() >= *deadline {
            return End::Expired;
        }
        tokio::select! {
            biased;
            _ = sleep_until(*deadline) => return End::Expired,
            answer = answers.message() => match answer {
                Ok(Some(a)) => {
                    let Some(sent) = waiting.pop_front() else {
                        continue; // not an answer to a request of ours: proves nothing
                    };
                    if a.ttl() <= 0 {
                        return End::Gone;
                    }
                    *deadline = (*deadline).max(crate::membership::fence_deadline(sent, ttl));
                    shared.set_deadline(*deadline);
                }
                Ok(None) => return End::Broken("etcd closed the keep-alive stream".into()),
                Err(e) => return End::Broken(e.to_string()),
            },
            _ = sleep_until(next) => {
                let now = Instant::now();
                waiting.push_back(now);
                next = now + period;
                match timeout_at(*deadline, keeper.keep_alive()).await {
                    Err(_) => return End::Expired,
                    Ok(Err(e)) => return End::Broken(e.to_string()),
                    Ok(Ok(())) => {}
                }
            }
        }
    }
}
