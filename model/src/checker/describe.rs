//! Human-readable events for counterexamples.

use super::actor::{Msg, NodeTimer};
use super::system::Action;
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
        Action::CoordinatorCrash(n) => format!("the coordinator on {n} crashes ({n} stays up)"),
        Action::Elect(n) => format!("{n} is elected coordinator"),
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
    }
}
