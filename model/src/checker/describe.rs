//! Human-readable events for counterexamples, and the Explorer's compact view of a
//! state.

use super::actor::{Msg, NodeTimer};
use super::ids::NodeIx;
use super::system::{Action, DrainModel, SysState};
use crate::protocol::{ToCoordinator, ToNode};

/// A message in a few words.
pub fn message(msg: &Msg) -> String {
    match msg {
        Msg::ToNode(m) => match m {
            ToNode::Bootstrap { term } => format!("Bootstrap(term {term})"),
            ToNode::SetLiveness {
                target,
                epoch,
                term,
            } => format!("SetNodeLiveness({target}, epoch {epoch}, term {term})"),
            ToNode::AddWork {
                work,
                epoch,
                term,
                op,
            } => format!("AddWork({work}, epoch {epoch}, term {term}, op {op})"),
            ToNode::RemoveWork {
                work,
                epoch,
                term,
                op,
            } => format!("RemoveWork({work}, epoch {epoch}, term {term}, op {op})"),
        },
        Msg::Report { epoch, liveness } => format!("Report(epoch {epoch}, {liveness})"),
        Msg::ToCoord(m) => match m {
            ToCoordinator::BootstrapResponse {
                term,
                epoch,
                liveness,
                work,
                ..
            } => {
                let units: Vec<String> = work.iter().map(|w| w.to_string()).collect();
                format!(
                    "BootstrapResponse(term {term}, epoch {epoch}, {liveness}, running [{}])",
                    units.join(" ")
                )
            }
            ToCoordinator::Heartbeat { epoch, liveness } => {
                format!("Heartbeat(epoch {epoch}, {liveness})")
            }
            ToCoordinator::SetLivenessResponse { epoch, liveness } => {
                format!("SetNodeLivenessResponse(epoch {epoch}, {liveness})")
            }
            ToCoordinator::WorkStatus {
                work,
                epoch,
                term,
                op,
                status,
            } => format!(
                "WorkStatus({work} {}, epoch {epoch}, term {term}, op {op})",
                status.as_str()
            ),
        },
    }
}

/// An action in one line.
pub fn action(a: &Action) -> String {
    match a {
        Action::Deliver { src, dst, msg } => {
            format!("{src} → {dst}: {}", message(msg))
        }
        Action::Drop { src, dst, msg } => {
            format!("network loses {src} → {dst}: {}", message(msg))
        }
        Action::Timer { node, timer } => match timer {
            NodeTimer::Heartbeat => format!("{node}: heartbeat timer fires"),
            NodeTimer::Resend => format!("{node}: coordinator resend timer fires"),
            NodeTimer::Ttl(n) => format!("{node}: coordinator's liveness TTL of {n} expires"),
        },
        Action::Crash(n) => format!("{n} crashes"),
        Action::Restart(n) => format!("{n} restarts as a new incarnation"),
        Action::Exit(n) => format!("{n} is Stopping and its process exits"),
        Action::LeaseLoss(n) => {
            format!("{n} loses its membership lease: it fences itself to Stopping")
        }
        Action::Leave(n) => format!("{n}'s membership registration expires: it leaves"),
        Action::WatchStale(n) => {
            format!("{n}'s election watch, lagging, reports the term before the latest")
        }
        Action::ElectDeclined(n) => {
            format!("{n} wins the election but may no longer campaign: it resigns at once")
        }
        Action::ElectFails(n) => {
            format!("{n} wins the election but fails to persist its term: its process exits")
        }
        Action::Announce(n) => format!("{n}'s start announcement reaches the coordinator"),
        Action::NotifyJoin(n) => format!("the coordinator's membership watch reports {n} joined"),
        Action::NotifyLeave(n) => format!("the coordinator's membership watch reports {n} left"),
        Action::CoordinatorCrash(n) => format!("the coordinator on {n} crashes ({n} stays up)"),
        Action::Elect(n) => format!("{n} is elected coordinator"),
        Action::ElectView { node, view } => {
            let members: Vec<String> = (0..16u8)
                .filter(|i| view & (1 << i) != 0)
                .map(|i| super::NodeIx(i).to_string())
                .collect();
            format!(
                "{node} is elected coordinator, its membership watch lagging (members [{}])",
                members.join(" ")
            )
        }
        Action::Resign(n) => format!("an operator makes the coordinator on {n} resign"),
        Action::GracefulLeave(n) => format!(
            "{n} is asked to leave (SIGTERM): it stops campaigning, and resigns if it coordinates"
        ),
        Action::Watch(n) => format!("{n}'s election watch reports the latest leader"),
        Action::Stray { src, dst, term } => format!(
            "a stray Bootstrap(term {term}) is on its way from {src} to {dst} (a term the election never issues)"
        ),
        Action::Poll(n) => format!("client calls DrainNode({n})"),
        Action::Status(n) => format!("client reads DrainStatus({n})"),
        Action::AddWork => "client adds the next work unit".to_string(),
    }
}

/// A compact view of a state for stateright's Explorer ([`stateright::Model::format_step`]
/// shows it for the state each step leads to): the election, one line per node (epoch,
/// liveness, units running, the term it follows, whether it coordinates), what the
/// live coordinator believes of each member and its drain session, membership, the
/// client's progress, the faults spent, the timers armed (the Explorer offers each as
/// a next step), the safety properties this state violates, and the messages in
/// flight. The full `Debug` print of the same state is a few hundred lines; this is
/// what one reads it for.
pub fn state_view(model: &DrainModel, s: &SysState) -> String {
    let h = &s.history;
    let cfg = &model.cfg;
    let nodes = |bits: u16| -> String {
        let v: Vec<String> = (0..cfg.nodes)
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| NodeIx(i).to_string())
            .collect();
        format!("[{}]", v.join(" "))
    };
    let mut out = vec![format!(
        "election: term {}, leader {}; members {}, fenced {}",
        h.term,
        h.leader,
        nodes(h.members),
        nodes(h.fenced)
    )];
    out.extend(super::run::summarize(model, s));
    match DrainModel::coordinator(s) {
        Some((_, c)) => {
            let awaiting: Vec<String> = c.awaiting_bootstrap().map(|n| n.to_string()).collect();
            if !awaiting.is_empty() {
                out.push(format!(
                    "  awaiting bootstrap from [{}]",
                    awaiting.join(" ")
                ));
            }
            out.push(match c.drain_target() {
                Some(t) => match c.drain_status(t) {
                    Ok(r) => format!(
                        "  drain session: target {t}, remaining {}, {}{}",
                        r.remaining,
                        r.phase,
                        if c.drain_inherited() {
                            " (inherited)"
                        } else {
                            ""
                        }
                    ),
                    Err(e) => format!("  drain session: target {t}, {e}"),
                },
                None => "  drain session: none".to_string(),
            });
        }
        None => out.push("no live coordinator".to_string()),
    }
    out.push(format!(
        "client: asked to drain {}, answered 0 for {}",
        nodes(h.requested),
        nodes(h.zeros)
    ));
    out.push(format!(
        "faults: crashes {}/{}, failovers {}/{}, lease losses {}/{}, losses {}{}, TTL expiries {}{}",
        h.crashes,
        cfg.node_crashes,
        h.failovers,
        cfg.failovers,
        h.lease_losses,
        cfg.lease_losses,
        h.losses,
        cfg.losses.map(|l| format!("/{l}")).unwrap_or_default(),
        h.expiries,
        cfg.ttl_expiries.map(|l| format!("/{l}")).unwrap_or_default(),
    ));
    let timers: Vec<String> = (0..cfg.nodes)
        .map(NodeIx)
        .filter(|n| DrainModel::is_up(s, *n))
        .map(|n| {
            let t: Vec<String> = s.timers_set[n.ix()]
                .iter()
                .map(|t| match t {
                    NodeTimer::Heartbeat => "heartbeat".to_string(),
                    NodeTimer::Resend => "resend".to_string(),
                    NodeTimer::Ttl(m) => format!("TTL of {m}"),
                })
                .collect();
            format!("{n} [{}]", t.join(", "))
        })
        .collect();
    out.push(format!("timers armed: {}", timers.join("; ")));
    let violated = super::diagram::violated(model, Some(s));
    if !violated.is_empty() {
        out.push(format!("VIOLATED here: {}", violated.join(" ")));
    }
    let mut flight: Vec<String> = s
        .network
        .iter()
        .map(|e| {
            format!(
                "{} → {}: {}",
                NodeIx::from(e.src),
                NodeIx::from(e.dst),
                message(&e.msg)
            )
        })
        .collect();
    flight.sort();
    out.push(format!("in flight ({}):", flight.len()));
    const SHOWN: usize = 16;
    let more = flight.len().saturating_sub(SHOWN);
    out.extend(flight.into_iter().take(SHOWN).map(|m| format!("  {m}")));
    if more > 0 {
        out.push(format!("  … and {more} more"));
    }
    out.join("\n")
}
