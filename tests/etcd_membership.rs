//! The etcd membership service against a real etcd (tests/support/etcd.rs starts one
//! per test): registration and the epoch rule, member events, the election, the local
//! lease deadline across etcd outages, work units, and records it must skip.
//!
//! Without an etcd binary each test prints how to get one and returns, unless
//! `EBBTIDE_REQUIRE_ETCD=1` (CI), where it fails.

mod support;

use ebbtide::membership::etcd::{EtcdConfig, EtcdMembership};
use ebbtide::membership::{Event, Member, MembershipError, Registration};
use ebbtide_model::{Epoch, Term};
use etcd_client::{Txn, TxnOp};
use std::collections::BTreeSet;
use std::time::Duration;
use support::etcd::Etcd;
use support::proxy::Proxy;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// A fresh etcd for this test, or return (skipped) when there is none.
macro_rules! etcd_or_skip {
    () => {
        match Etcd::start() {
            Some(etcd) => etcd,
            None => return,
        }
    };
}

const TTL: Duration = Duration::from_secs(2);
/// Slack for events that should come "at once" (a watch round trip on a loaded machine).
const SOON: Duration = Duration::from_secs(5);

fn config(etcd: &Etcd, cluster: &str, lease_ttl: Duration) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        cluster: cluster.to_string(),
        lease_ttl,
        connect_timeout: Duration::from_secs(2),
        tls: None,
    }
}

fn registration(node: &str, pid: u32) -> Registration {
    Registration {
        node: node.to_string(),
        grpc: format!("127.0.0.1:{}", 20_000 + pid),
        http: format!("127.0.0.1:{}", 30_000 + pid),
        version: 1,
        pid,
        host: String::new(),
        data_dir: String::new(),
    }
}

/// One process of the cluster: its handle, its member record and its events.
struct Proc {
    m: EtcdMembership,
    me: Member,
    rx: mpsc::Receiver<Event>,
    /// Events received by [`Proc::expect`] but not yet wanted.
    backlog: Vec<Event>,
}

impl Proc {
    /// The first event, received already or still to come, that `want` accepts. For
    /// events whose order between two tasks is not fixed: `Elected` comes from the
    /// campaign, `Leader` from the observation, and either may be first.
    async fn expect(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&Event) -> bool,
    ) -> Event {
        if let Some(i) = self.backlog.iter().position(&want) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) if want(&e) => return e,
                Ok(Some(e)) => self.backlog.push(e),
                Ok(None) => panic!(
                    "waiting for {what}: the event channel closed; received {:?}",
                    self.backlog
                ),
                Err(_) => panic!(
                    "waiting for {what}: none within {within:?}; received {:?}",
                    self.backlog
                ),
            }
        }
    }

    /// Waits for `Elected` and answers its term.
    async fn elected(&mut self, what: &str) -> Term {
        match self
            .expect(what, SOON, |e| matches!(e, Event::Elected { .. }))
            .await
        {
            Event::Elected { term } => term,
            _ => unreachable!(),
        }
    }
}

/// The service's warnings (skipped records, broken streams) on the test's output.
fn log_warnings() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_test_writer()
        .try_init();
}

/// Connects, registers `node` (pid `pid`, floor 0) and starts the tasks.
async fn join(etcd: &Etcd, cluster: &str, node: &str, pid: u32, ttl: Duration) -> Proc {
    log_warnings();
    let m = EtcdMembership::connect(config(etcd, cluster, ttl))
        .await
        .expect("connect");
    let me = m
        .register(registration(node, pid), 0)
        .await
        .expect("register");
    let (tx, rx) = mpsc::channel(64);
    m.start(tx);
    Proc {
        m,
        me,
        rx,
        backlog: Vec::new(),
    }
}

/// The next event that `want` accepts, within `within`; others are skipped (and listed
/// if none comes).
async fn wait_for(
    rx: &mut mpsc::Receiver<Event>,
    what: &str,
    within: Duration,
    want: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + within;
    let mut skipped = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if want(&e) => return e,
            Ok(Some(e)) => skipped.push(e),
            Ok(None) => panic!("waiting for {what}: the event channel closed; skipped {skipped:?}"),
            Err(_) => panic!("waiting for {what}: none within {within:?}; skipped {skipped:?}"),
        }
    }
}

/// Asserts that no event `unwanted` accepts comes within `within`.
async fn assert_none(
    rx: &mut mpsc::Receiver<Event>,
    what: &str,
    within: Duration,
    unwanted: impl Fn(&Event) -> bool,
) {
    let deadline = Instant::now() + within;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        assert!(!unwanted(&e), "{what}: got {e:?}");
    }
}

/// Process a of cluster "c" (5 s lease), reaching etcd through a proxy that can cut
/// it off, after its first snapshot (itself alone): the proxy, its handle, its member
/// record and its events.
async fn behind_a_proxy(etcd: &Etcd) -> (Proxy, EtcdMembership, Member, mpsc::Receiver<Event>) {
    log_warnings();
    let proxy = Proxy::start(etcd.endpoint().trim_start_matches("http://").to_string()).await;
    let cfg = EtcdConfig {
        endpoints: vec![proxy.endpoint()],
        ..config(etcd, "c", Duration::from_secs(5))
    };
    let m = EtcdMembership::connect(cfg).await.unwrap();
    let me = m.register(registration("a", 1), 0).await.unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    m.start(tx);
    let first = wait_for(&mut rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    assert_eq!(first, Event::Snapshot(vec![me.clone()]));
    (proxy, m, me, rx)
}

/// Compacts etcd's history up to now, so that a watch cut off before cannot resume,
/// then lets the cut-off process through again.
async fn compact_then_restore(raw: &mut etcd_client::Client, proxy: &Proxy) {
    let rev = raw
        .put("/elsewhere", "", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    raw.compact(rev, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
}

async fn raw_client(etcd: &Etcd) -> etcd_client::Client {
    etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .expect("raw etcd client")
}

fn left(node: &str, epoch: Epoch) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Left { node: n, epoch: x } if n == node && *x == epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_id_is_refused_with_the_holder_named() {
    let etcd = etcd_or_skip!();
    let a = join(&etcd, "c", "n1", 111, TTL).await;
    let b = EtcdMembership::connect(config(&etcd, "c", TTL))
        .await
        .unwrap();
    let err = b.register(registration("n1", 222), 0).await.unwrap_err();
    match &err {
        MembershipError::IdTaken { node, holder } => {
            assert_eq!(node, "n1");
            assert_eq!(**holder, registration("n1", 111));
        }
        other => panic!("expected IdTaken, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("pid 111") && text.contains("127.0.0.1:20111"),
        "{text}"
    );

    // Once the holder left, the id is free, with a larger epoch.
    a.m.leave().await.unwrap();
    let again = b.register(registration("n1", 222), 0).await.unwrap();
    assert!(
        again.epoch > a.me.epoch,
        "{} after {}",
        again.epoch,
        a.me.epoch
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_for_one_id_get_one_registration() {
    let etcd = etcd_or_skip!();
    let x = EtcdMembership::connect(config(&etcd, "c", TTL))
        .await
        .unwrap();
    let y = EtcdMembership::connect(config(&etcd, "c", TTL))
        .await
        .unwrap();
    let (rx, ry) = tokio::join!(
        x.register(registration("n1", 1), 0),
        y.register(registration("n1", 2), 0)
    );
    let won = [rx.is_ok(), ry.is_ok()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{rx:?} {ry:?}");
    let lost = if won[0] { ry } else { rx };
    assert!(
        matches!(lost, Err(MembershipError::IdTaken { .. })),
        "{lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_strictly_increase_and_exceed_the_floor() {
    let etcd = etcd_or_skip!();
    let mut last: Epoch = 0;
    // floor 0 again and again: a wiped data dir gets a larger epoch from etcd's counter.
    for (floor, expect_at_least) in [(0, 1), (0, 0), (1_000_000, 1_000_001), (0, 0), (5, 0)] {
        let m = EtcdMembership::connect(config(&etcd, "c", TTL))
            .await
            .unwrap();
        let me = m.register(registration("n1", 1), floor).await.unwrap();
        assert!(
            me.epoch > last,
            "epoch {} after {last} (floor {floor})",
            me.epoch
        );
        assert!(
            me.epoch > floor && me.epoch >= expect_at_least,
            "epoch {} with floor {floor}",
            me.epoch
        );
        last = me.epoch;
        m.leave().await.unwrap();
    }
    assert_eq!(last, 1_000_003);
    // Another id has its own counter.
    let m = EtcdMembership::connect(config(&etcd, "c", TTL))
        .await
        .unwrap();
    assert_eq!(m.register(registration("n2", 2), 0).await.unwrap().epoch, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_snapshotted_then_joined_and_left() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let snap = wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    assert_eq!(snap, Event::Snapshot(vec![a.me.clone()]));

    let mut b = join(&etcd, "c", "b", 2, TTL).await;
    wait_for(&mut a.rx, "b joined", SOON, |e| {
        *e == Event::Joined(b.me.clone())
    })
    .await;
    match wait_for(&mut b.rx, "b's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await
    {
        Event::Snapshot(mut ms) => {
            ms.sort_by(|x, y| x.node().cmp(y.node()));
            assert_eq!(ms, vec![a.me.clone(), b.me.clone()]);
        }
        _ => unreachable!(),
    }

    // A graceful leave is a Left at once; leaving again changes nothing.
    b.m.leave().await.unwrap();
    b.m.leave().await.unwrap();
    wait_for(&mut a.rx, "b left", SOON, left("b", b.me.epoch)).await;

    // A process that stops keeping alive (its handle dropped: no more keep-alives, no
    // revoke) is a Left when etcd expires its lease.
    let c = join(&etcd, "c", "c", 3, TTL).await;
    wait_for(&mut a.rx, "c joined", SOON, |e| {
        *e == Event::Joined(c.me.clone())
    })
    .await;
    let dropped = Instant::now();
    let c_epoch = c.me.epoch;
    drop(c);
    wait_for(
        &mut a.rx,
        "c left by lease expiry",
        TTL + SOON,
        left("c", c_epoch),
    )
    .await;
    let after = dropped.elapsed();
    assert!(
        after >= TTL - Duration::from_millis(700),
        "Left after {after:?}: before the lease could expire"
    );
}

/// A win is followed by a fresh snapshot of the members, read after it, and no member
/// event of the watch before it: the new coordinator starts from that snapshot
/// (`Event::Elected`). A view that lags could lack a member that runs units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_is_followed_by_a_fresh_member_snapshot() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let b = join(&etcd, "c", "b", 2, TTL).await;
    a.m.campaign();
    // Every event of a, in order, until the first member event after `Elected`.
    let deadline = Instant::now() + SOON;
    let mut seen = Vec::new();
    let after_win = loop {
        let e = match tokio::time::timeout_at(deadline, a.rx.recv()).await {
            Ok(Some(e)) => e,
            other => panic!("waiting for a's events: {other:?}; received {seen:?}"),
        };
        let member_event = matches!(
            e,
            Event::Snapshot(_) | Event::Joined(_) | Event::Left { .. }
        );
        let won = seen.iter().any(|e| matches!(e, Event::Elected { .. }));
        seen.push(e.clone());
        if won && member_event {
            break e;
        }
    };
    let Event::Snapshot(mut members) = after_win else {
        panic!("the first member event after the win is not a snapshot: {seen:?}");
    };
    members.sort_by(|x, y| x.node().cmp(y.node()));
    assert_eq!(members, vec![a.me.clone(), b.me.clone()], "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_campaigner_leads_and_resign_hands_over_with_a_larger_term() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let mut b = join(&etcd, "c", "b", 2, TTL).await;

    a.m.campaign();
    a.m.campaign(); // idempotent while pending or won
    let t1 = a.elected("a elected").await;
    let a_leads = move |e: &Event| {
        *e == Event::Leader {
            term: t1,
            node: "a".into(),
        }
    };
    a.expect("a sees itself lead", SOON, a_leads).await;
    b.expect("b sees a lead", SOON, a_leads).await;

    b.m.campaign();
    // b waits behind a: no second leader.
    let b_elected = |e: &Event| matches!(e, Event::Elected { .. });
    assert_none(
        &mut b.rx,
        "b must not win while a leads",
        Duration::from_millis(500),
        b_elected,
    )
    .await;
    assert!(!b.backlog.iter().any(b_elected), "{:?}", b.backlog);

    a.m.resign().await.unwrap();
    a.expect("a deposed by its resign", SOON, |e| *e == Event::Deposed)
        .await;
    let t2 = b.elected("b elected").await;
    assert!(t2 > t1, "term {t2} after {t1}");
    let b_leads = move |e: &Event| {
        *e == Event::Leader {
            term: t2,
            node: "b".into(),
        }
    };
    a.expect("a sees b lead", SOON, b_leads).await;
    b.expect("b sees itself lead", SOON, b_leads).await;

    // Resigning again is a no-op: no second Deposed, and a was elected only once.
    a.m.resign().await.unwrap();
    assert_none(
        &mut a.rx,
        "a second resign",
        Duration::from_millis(300),
        |e| *e == Event::Deposed,
    )
    .await;
    assert!(
        !a.backlog
            .iter()
            .any(|e| matches!(e, Event::Elected { .. } | Event::Deposed)),
        "{:?}",
        a.backlog
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_right_after_campaign_leaves_no_candidacy() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let mut raw = raw_client(&etcd).await;
    for round in 0..5 {
        a.m.campaign();
        a.m.resign().await.unwrap();
        // Whatever etcd saw first, no candidate key of ours stays (one that won after
        // the resign is deleted once observed), and a win is always followed by Deposed.
        let deadline = Instant::now() + SOON;
        loop {
            let keys = raw
                .get(
                    "/c/election/",
                    Some(etcd_client::GetOptions::new().with_prefix()),
                )
                .await
                .unwrap();
            if keys.kvs().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: a candidacy stayed: {:?}",
                keys.kvs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // let the last events through
    let mut elected = 0;
    while let Ok(e) = a.rx.try_recv() {
        match e {
            Event::Elected { .. } => elected += 1,
            Event::Deposed => elected -= 1,
            _ => {}
        }
        assert!(
            (0..=1).contains(&elected),
            "Elected and Deposed out of step"
        );
    }
    assert_eq!(elected, 0, "a win without its Deposed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_whose_leader_key_vanishes_is_deposed() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let mut b = join(&etcd, "c", "b", 2, TTL).await;
    a.m.campaign();
    let t1 = a.elected("a elected").await;
    b.m.campaign();
    // Someone deletes a's leader key behind its back.
    let mut raw = raw_client(&etcd).await;
    let leader = raw.leader("/c/election").await.unwrap();
    let key = leader.kv().unwrap().key().to_vec();
    raw.delete(key, None).await.unwrap();
    a.expect("a deposed", SOON, |e| *e == Event::Deposed).await;
    let t2 = b.elected("b elected").await;
    assert!(t2 > t1);
    assert_none(
        &mut a.rx,
        "a deposed twice",
        Duration::from_millis(300),
        |e| *e == Event::Deposed,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_lost_within_the_ttl_when_etcd_is_down_longer() {
    let mut etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    a.m.campaign();
    wait_for(&mut a.rx, "a elected", SOON, |e| {
        matches!(e, Event::Elected { .. })
    })
    .await;

    // Let the keep-alive reach its steady rhythm (one every TTL / 3).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let stopped = Instant::now();
    etcd.stop();
    // The leader is deposed first, then the lease is lost: no later than etcd could
    // expire it (TTL after the last keep-alive sent), plus scheduling slack.
    wait_for(&mut a.rx, "Deposed", TTL + Duration::from_secs(1), |e| {
        *e == Event::Deposed
    })
    .await;
    let next = timeout(Duration::from_secs(1), a.rx.recv())
        .await
        .expect("LeaseLost right after Deposed");
    assert_eq!(next, Some(Event::LeaseLost));
    let after = stopped.elapsed();
    eprintln!("LeaseLost {after:?} after etcd stopped (TTL {TTL:?})");
    // The last confirmed keep-alive was sent at most TTL / 3 before the stop.
    assert!(
        after >= TTL * 2 / 3 - Duration::from_millis(100) && after <= TTL + Duration::from_secs(1),
        "LeaseLost {after:?} after etcd stopped"
    );
    // Requests fail as Unreachable within their bound (here 2 s) while etcd is down.
    let began = Instant::now();
    let r = a.m.units().await;
    assert!(matches!(r, Err(MembershipError::Unreachable(_))), "{r:?}");
    let r = a.m.leave().await;
    assert!(matches!(r, Err(MembershipError::Unreachable(_))), "{r:?}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    // Nothing after LeaseLost: the channel closes, also once etcd is back.
    etcd.start_again();
    assert_eq!(
        timeout(SOON, a.rx.recv()).await,
        Ok(None),
        "events after LeaseLost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_lost_within_the_ttl_when_etcd_hangs() {
    // A frozen etcd keeps its connections open and answers nothing: only the local
    // deadline can tell.
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    // Let the keep-alive reach its steady rhythm (one every TTL / 3).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let frozen = Instant::now();
    etcd.freeze();
    wait_for(&mut a.rx, "LeaseLost", TTL + Duration::from_secs(1), |e| {
        *e == Event::LeaseLost
    })
    .await;
    let after = frozen.elapsed();
    eprintln!("LeaseLost {after:?} after etcd froze (TTL {TTL:?})");
    etcd.resume();
    assert!(
        after >= TTL * 2 / 3 - Duration::from_millis(100) && after <= TTL + Duration::from_secs(1),
        "LeaseLost {after:?} after etcd froze"
    );
    assert_eq!(
        timeout(SOON, a.rx.recv()).await,
        Ok(None),
        "events after LeaseLost"
    );
}

/// One thread runs every task of the service here, so blocking it stalls them all, as
/// a SIGSTOP (or a long GC-like pause) of the process would.
#[tokio::test(flavor = "current_thread")]
async fn a_process_paused_past_the_ttl_fences_as_soon_as_it_resumes() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    std::thread::sleep(TTL + Duration::from_millis(500)); // no task runs meanwhile
    let resumed = Instant::now();
    wait_for(&mut a.rx, "LeaseLost", SOON, |e| *e == Event::LeaseLost).await;
    let after = resumed.elapsed();
    assert!(
        after < Duration::from_millis(300),
        "LeaseLost {after:?} after the pause ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_etcd_outage_loses_nothing() {
    let mut etcd = etcd_or_skip!();
    let ttl = Duration::from_secs(3);
    let mut a = join(&etcd, "c", "a", 1, ttl).await;
    wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;

    etcd.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    etcd.start_again();
    // Twice the TTL: a lost lease would have been reported by now.
    assert_none(
        &mut a.rx,
        "no LeaseLost after a 0.5 s outage with a 3 s TTL",
        ttl * 2,
        |e| matches!(e, Event::LeaseLost | Event::Left { .. } | Event::Deposed),
    )
    .await;
    // Still registered, and the watch still runs: a new member is seen.
    let b = join(&etcd, "c", "b", 2, ttl).await;
    wait_for(&mut a.rx, "b joined after the outage", SOON, |e| {
        *e == Event::Joined(b.me.clone())
    })
    .await;
    let mut raw = raw_client(&etcd).await;
    assert_eq!(raw.get("/c/members/a", None).await.unwrap().kvs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lease_is_lost_and_events_from_before_start_wait_for_it() {
    // The keep-alive runs from `register`: etcd answers its next request (within TTL / 3)
    // that the lease is gone. (Were it late, the member snapshot in `start` would also
    // find the registration gone: either way LeaseLost, and only that.)
    let etcd = etcd_or_skip!();
    log_warnings();
    let ttl = Duration::from_secs(3);
    let m = EtcdMembership::connect(config(&etcd, "c", ttl))
        .await
        .unwrap();
    m.register(registration("a", 1), 0).await.unwrap();
    let mut raw = raw_client(&etcd).await;
    let member = raw.get("/c/members/a", None).await.unwrap();
    let lease = member.kvs()[0].lease();
    raw.lease_revoke(lease).await.unwrap();
    let revoked = Instant::now();
    // One keep-alive period (TTL / 3) and some slack, still well inside the TTL.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (tx, mut rx) = mpsc::channel(8);
    m.start(tx);
    // The events from before `start` come first, and LeaseLost is the last of them.
    let first = timeout(Duration::from_millis(300), rx.recv()).await;
    assert_eq!(
        first,
        Ok(Some(Event::LeaseLost)),
        "{:?} after the revoke",
        revoked.elapsed()
    );
    assert_eq!(
        timeout(SOON, rx.recv()).await,
        Ok(None),
        "events after LeaseLost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_revision_was_compacted_starts_over_with_a_snapshot() {
    let etcd = etcd_or_skip!();
    let (proxy, _m, me, mut rx) = behind_a_proxy(&etcd).await;

    // Cut a off; meanwhile x joins and etcd compacts away the revisions a's watch needs.
    proxy.cut();
    let mut raw = raw_client(&etcd).await;
    let x = Member {
        epoch: 1,
        registration: registration("x", 9),
    };
    raw.put("/c/members/x", serde_json::to_string(&x).unwrap(), None)
        .await
        .unwrap();
    compact_then_restore(&mut raw, &proxy).await;

    // a cannot replay what it missed: it says so with a fresh snapshot, then goes on.
    let again = wait_for(&mut rx, "a fresh snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_) | Event::Joined(_) | Event::LeaseLost)
    })
    .await;
    let Event::Snapshot(mut members) = again else {
        panic!("expected a Snapshot, got {again:?}")
    };
    members.sort_by(|p, q| p.node().cmp(q.node()));
    assert_eq!(members, vec![me, x]);
    raw.delete("/c/members/x", None).await.unwrap();
    wait_for(&mut rx, "x left", SOON, left("x", 1)).await;
}

/// A node that left while the watch could not follow (compacted away) leaves before
/// the fresh snapshot, by the newest epoch registered by then: here x's epoch 1 was
/// reported, then epochs 2 registered and left unseen. A leave of epoch 1 would be
/// ignored by a coordinator that had already heard from epoch 2 (C17).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gone_during_a_compacted_gap_leaves_by_its_newest_epoch() {
    let etcd = etcd_or_skip!();
    let (proxy, _m, me, mut rx) = behind_a_proxy(&etcd).await;
    let mut raw = raw_client(&etcd).await;
    let x = |epoch| Member {
        epoch,
        registration: registration("x", 9),
    };
    // x's epoch 1 registers (counter and key in one transaction, as `register` does).
    let register = |epoch: Epoch| {
        Txn::new().and_then([
            TxnOp::put("/c/epochs/x", epoch.to_string(), None),
            TxnOp::put(
                "/c/members/x",
                serde_json::to_string(&x(epoch)).unwrap(),
                None,
            ),
        ])
    };
    raw.txn(register(1)).await.unwrap();
    wait_for(&mut rx, "x joined", SOON, |e| *e == Event::Joined(x(1))).await;

    // Cut a off: x's epoch 1 goes, epoch 2 comes and goes, and etcd compacts.
    proxy.cut();
    raw.delete("/c/members/x", None).await.unwrap();
    raw.txn(register(2)).await.unwrap();
    raw.delete("/c/members/x", None).await.unwrap();
    compact_then_restore(&mut raw, &proxy).await;

    let next = wait_for(&mut rx, "x's leave or a snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_) | Event::Left { .. })
    })
    .await;
    assert_eq!(
        next,
        Event::Left {
            node: "x".into(),
            epoch: 2
        }
    );
    let snap = wait_for(&mut rx, "the fresh snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    assert_eq!(snap, Event::Snapshot(vec![me]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_our_registration_loses_the_lease() {
    let etcd = etcd_or_skip!();
    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    raw_client(&etcd)
        .await
        .delete("/c/members/a", None)
        .await
        .unwrap();
    wait_for(&mut a.rx, "LeaseLost", SOON, |e| *e == Event::LeaseLost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_round_trip_in_pages_and_count_duplicates_once() {
    let etcd = etcd_or_skip!();
    let m = EtcdMembership::connect(config(&etcd, "c", TTL))
        .await
        .unwrap();
    let units: Vec<String> = (0..2_500).map(|i| format!("unit-{i:05}")).collect();
    assert_eq!(m.add_units(&units).await.unwrap(), 2_500);
    // One already there, one new given twice: one new unit.
    let more = vec![
        "unit-00007".to_string(),
        "extra".to_string(),
        "extra".to_string(),
    ];
    assert_eq!(m.add_units(&more).await.unwrap(), 1);
    assert_eq!(m.add_units(&units).await.unwrap(), 0);

    let loaded = m.units().await.unwrap();
    assert_eq!(loaded.len(), 2_501);
    let expected: BTreeSet<String> = units.iter().cloned().chain(["extra".to_string()]).collect();
    assert_eq!(loaded.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // Another cluster's units are not ours.
    let other = EtcdMembership::connect(config(&etcd, "other", TTL))
        .await
        .unwrap();
    assert!(other.units().await.unwrap().is_empty());
}

/// Enough units that the read narrows its windows (above 4 pages' worth in a window),
/// of every shape: names that are prefixes of others, dense runs that share long
/// prefixes, lone names, multi-byte UTF-8, names at both ends of the byte range. Each
/// must come back exactly once, and the read counters must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_of_every_shape_load_once_through_narrow_windows() {
    let etcd = etcd_or_skip!();
    let m = EtcdMembership::connect(config(&etcd, "shapes", TTL))
        .await
        .unwrap();
    let mut units: BTreeSet<String> = (0..9_000).map(|i| format!("w{i:07}")).collect();
    units.extend((0..3_000).map(|i| format!("feed-{}-{i}", i % 7)));
    units.extend((0..1_500).map(|i| format!("{:x}", i * 7919)));
    units.extend(
        [
            "a", "a0", "a00", "a000", "w", "w0", "é", "日本", "~", "!", "0",
        ]
        .map(String::from),
    );
    units.extend((0..200).map(|i| format!("{}z", "y".repeat(i % 40 + 1))));
    let all: Vec<String> = units.iter().cloned().collect();
    assert_eq!(m.add_units(&all).await.unwrap(), all.len());

    let loaded = m.units().await.unwrap();
    assert_eq!(loaded.len(), all.len(), "no unit read twice");
    assert_eq!(loaded.iter().cloned().collect::<BTreeSet<_>>(), units);
    let reads = m.unit_reads();
    assert_eq!((reads.loads, reads.units), (1, all.len() as u64));
    assert!(reads.pages >= all.len() as u64 / 1_000, "{reads:?}");
    // A second load reads etcd again.
    assert_eq!(m.units().await.unwrap().len(), all.len());
    assert_eq!(m.unit_reads().loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_member_records_are_skipped() {
    let etcd = etcd_or_skip!();
    let mut raw = raw_client(&etcd).await;
    raw.put("/c/members/garbage", "{not json", None)
        .await
        .unwrap();
    // Valid JSON, but it names another node than its key.
    let liar = serde_json::to_string(&Member {
        epoch: 9,
        registration: registration("someone-else", 9),
    })
    .unwrap();
    raw.put("/c/members/liar", liar, None).await.unwrap();

    let mut a = join(&etcd, "c", "a", 1, TTL).await;
    let snap = wait_for(&mut a.rx, "a's snapshot", SOON, |e| {
        matches!(e, Event::Snapshot(_))
    })
    .await;
    assert_eq!(snap, Event::Snapshot(vec![a.me.clone()]));

    // While watching: another bad record, its deletion, then a real member.
    raw.put("/c/members/more-garbage", "\u{0}", None)
        .await
        .unwrap();
    raw.delete("/c/members/more-garbage", None).await.unwrap();
    let b = join(&etcd, "c", "b", 2, TTL).await;
    let next = wait_for(&mut a.rx, "b joined", SOON, |e| {
        !matches!(e, Event::Leader { .. })
    })
    .await;
    assert_eq!(next, Event::Joined(b.me.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_answers_unreachable_within_the_timeout() {
    // Nobody listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A listener that never answers: connections queue in its backlog, the HTTP/2
    // handshake never completes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for endpoints in [
        vec![format!("http://127.0.0.1:{port}")],
        vec![format!("http://127.0.0.1:{silent_port}")],
    ] {
        let cfg = EtcdConfig {
            endpoints: endpoints.clone(),
            cluster: "c".into(),
            lease_ttl: TTL,
            connect_timeout: Duration::from_millis(500),
            tls: None,
        };
        let began = Instant::now();
        let r = timeout(Duration::from_secs(5), EtcdMembership::connect(cfg))
            .await
            .expect("connect hung");
        let took = began.elapsed();
        assert!(
            matches!(r, Err(MembershipError::Unreachable(_))),
            "{endpoints:?}: {r:?}"
        );
        assert!(
            took < Duration::from_millis(1_500),
            "{endpoints:?}: took {took:?}"
        );
    }
    drop(silent);
}
