//! Prometheus metrics (`GET /metrics`, text format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A `node` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

/// `node` and `state` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeStateLabels {
    pub node: String,
    pub state: String,
}

/// A message `type` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

/// A message `type` and why it was lost (`reason`, a [`DropReason`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub r#type: String,
    pub reason: String,
}

/// Why a message was lost on the way out. The protocol tolerates every one of them
/// (the coordinator resends, heartbeats repeat), but they mean different things to an
/// operator: `queue_full` is backpressure (a peer or a task falls behind), the others
/// are a peer or a task that is not there to take the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The queue towards a peer, or into a local task, was full.
    QueueFull,
    /// No way to the receiver yet or any more: no address for the node (membership
    /// is still reaching this process), no coordinator running in this process (it
    /// starts after its node's agent: a heartbeat sent first is lost), or the queue's
    /// receiver is gone.
    NoRoute,
    /// The gRPC call carrying the message failed.
    CallFailed,
    /// The test-only fault layer lost it on purpose.
    Injected,
}

impl DropReason {
    /// The label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::NoRoute => "no_route",
            DropReason::CallFailed => "call_failed",
            DropReason::Injected => "injected",
        }
    }

    /// Why a `try_send` into a bounded queue failed.
    pub fn of_try_send<T>(e: tokio::sync::mpsc::error::TrySendError<T>) -> Self {
        match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => DropReason::QueueFull,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => DropReason::NoRoute,
        }
    }
}

/// An HTTP/2 error code (`reason`) label, as h2 names it (`REFUSED_STREAM`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// A core `role` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: String,
}

/// Every metric this process exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Protocol messages handed to the transport, by type.
    pub sent: Family<TypeLabel, Counter>,
    /// Protocol messages lost on the way out, by type and [`DropReason`].
    pub dropped: Family<DropLabels, Counter>,
    /// Calls to peers that failed with an HTTP/2 error code: a stream reset
    /// (`RST_STREAM`) or a connection closed with one (`GOAWAY`), by code. A peer's h2
    /// server resets streams it refuses (`REFUSED_STREAM` over its concurrency limit)
    /// and closes a connection whose client reset too many streams before it accepted
    /// them (`ENHANCE_YOUR_CALM`, h2's `max_pending_accept_reset_streams`); the batch of
    /// such a call is lost, and counted in `dropped` too.
    pub h2_resets: Family<ReasonLabel, Counter>,
    /// Core inputs handled, by role.
    pub steps: Family<RoleLabel, Counter>,
    /// Coordinator view of each node: 1 for the current state, 0 for the others.
    pub liveness: Family<NodeStateLabels, Gauge>,
    /// Work units placed on each node (coordinator view).
    pub units: Family<NodeLabel, Gauge>,
    /// In-flight operations involving each node (coordinator view).
    pub operations: Family<NodeLabel, Gauge>,
    /// DrainNode's remaining for the current drain target.
    pub remaining: Family<NodeLabel, Gauge>,
    /// Work units running on this node.
    pub running: Gauge,
    /// Coordinators this process started (each won an election and loaded the desired
    /// units from the membership service afresh).
    pub coordinator_starts: Counter,
    /// Desired units the last coordinator start loaded.
    pub units_loaded: Gauge,
    /// How long the last coordinator start took to load them: on etcd, every page of
    /// `/<cluster>/work/`, the part of a failover that grows with the cluster's units.
    pub units_load_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut m = Metrics {
            sent: Family::default(),
            dropped: Family::default(),
            h2_resets: Family::default(),
            steps: Family::default(),
            liveness: Family::default(),
            units: Family::default(),
            operations: Family::default(),
            remaining: Family::default(),
            running: Gauge::default(),
            coordinator_starts: Counter::default(),
            units_loaded: Gauge::default(),
            units_load_seconds: Gauge::default(),
            registry: Registry::with_prefix("ebbtide"),
        };
        m.registry.register(
            "messages_sent",
            "Protocol messages sent, by type",
            m.sent.clone(),
        );
        m.registry.register(
            "messages_dropped",
            "Protocol messages lost on the way out, by type and reason (queue_full, no_route, call_failed, injected)",
            m.dropped.clone(),
        );
        m.registry.register(
            "h2_resets",
            "Calls to peers that failed with an HTTP/2 error code (stream reset or GOAWAY), by code",
            m.h2_resets.clone(),
        );
        m.registry.register(
            "core_steps",
            "Core inputs handled, by role",
            m.steps.clone(),
        );
        m.registry.register(
            "node_liveness",
            "Coordinator view of each node's liveness (1 = current state)",
            m.liveness.clone(),
        );
        m.registry.register(
            "work_units",
            "Work units placed on each node (coordinator view)",
            m.units.clone(),
        );
        m.registry.register(
            "operations_in_flight",
            "In-flight operations involving each node (coordinator view)",
            m.operations.clone(),
        );
        m.registry.register(
            "drain_remaining",
            "DrainNode's remaining for the current drain target",
            m.remaining.clone(),
        );
        m.registry.register(
            "running_work_units",
            "Work units running on this node",
            m.running.clone(),
        );
        m.registry.register(
            "coordinator_starts",
            "Coordinators started in this process, each after loading the desired units",
            m.coordinator_starts.clone(),
        );
        m.registry.register(
            "units_loaded",
            "Desired units loaded by the last coordinator start",
            m.units_loaded.clone(),
        );
        m.registry.register(
            "units_load_seconds",
            "Time the last coordinator start took to load the desired units",
            m.units_load_seconds.clone(),
        );
        m
    }

    /// Counts a message sent.
    pub fn sent(&self, kind: &str) {
        self.sent
            .get_or_create(&TypeLabel {
                r#type: kind.to_owned(),
            })
            .inc();
    }

    /// Counts a message lost, and why.
    pub fn dropped(&self, kind: &str, reason: DropReason) {
        self.dropped
            .get_or_create(&DropLabels {
                r#type: kind.to_owned(),
                reason: reason.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts a call that failed with an HTTP/2 error code.
    pub fn h2_reset(&self, reason: &str) {
        self.h2_resets
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a core step.
    pub fn step(&self, role: &str) {
        self.steps
            .get_or_create(&RoleLabel {
                role: role.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        s
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
