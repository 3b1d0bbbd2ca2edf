//! Command-line definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ebbtide_model::checker::ModelConfig;
use ebbtide_model::{Guard, Guards, InheritedDrain};
use std::process::ExitCode;

/// ebbtide: a node-drain control plane whose protocol is model-checked.
#[derive(Parser, Debug)]
#[command(name = "ebbtide", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Model-check the drain protocol exhaustively and report every property.
    ///
    /// Explores every interleaving of a small cluster: node agents and a coordinator
    /// running the production transition functions, a network that loses, duplicates
    /// and reorders, node crashes and restarts, coordinator failover, and a client that
    /// drains the last node. Exit status: 0 when every property holds, 1 when one is
    /// violated, 2 on bad usage.
    #[command(after_help = "Examples:\n  \
        ebbtide check                          # the default configuration\n  \
        ebbtide check --ci                     # what CI checks: six configurations, the last with every fault\n  \
        ebbtide check --nodes 4 --work 2       # a larger configuration\n  \
        ebbtide check --without epoch-fencing  # show why a guard matters\n  \
        ebbtide check --without epoch-fencing --search bfs --svg cx.svg  # and draw it\n  \
        ebbtide check --list-guards")]
    Check(CheckArgs),
    /// Serve stateright's Explorer for a configuration, to step through states and
    /// counterexamples in a browser.
    ///
    /// Nothing is explored until you press "Run to completion" in the page (or
    /// `POST /.runtocompletion`).
    Explore(ExploreArgs),
    /// Run a node: its agent, the coordinator when it leads, gRPC and HTTP.
    #[command(
        after_help = "Membership is static (--peer, --coordinator: one machine, a fixed coordinator) \
        or in etcd (--etcd: leases, an elected coordinator that fails over, units kept in etcd).\n\n\
        Static (a 3-node cluster on one machine, n1 coordinates):\n  \
        ebbtide node --id n1 --listen 127.0.0.1:7001 --http 127.0.0.1:8001 --data-dir /tmp/n1 \\\n    \
        --peer n2=127.0.0.1:7002 --peer n3=127.0.0.1:7003 --coordinator n1\n\n\
        etcd (run the same on every node, each with its own --id and addresses):\n  \
        ebbtide node --id n1 --listen 10.0.0.1:7001 --http 10.0.0.1:8001 --data-dir /var/lib/ebbtide \\\n    \
        --etcd http://10.0.0.9:2379\n\n\
        With TLS (certificates from `ebbtide certs --out /etc/ebbtide/tls --node n1 ...`; clients then \
        need https://, --ca and a client certificate or the token):\n  \
        ebbtide node --id n1 ... --tls-ca /etc/ebbtide/tls/ca.pem --tls-cert /etc/ebbtide/tls/n1.pem \\\n    \
        --tls-key /etc/ebbtide/tls/n1-key.pem --api-token-file /etc/ebbtide/tls/api-token\n\n\
        Exit status: 0 drained (--exit-when-drained) or left gracefully after SIGTERM; 1 a start-up \
        error or a SIGTERM leave that timed out; 2 bad flags; 3 the etcd lease was lost (the node \
        fenced itself: restart it); 4 the data dir could not keep the term floor (fix the disk, \
        then restart)."
    )]
    Node(Box<NodeArgs>),
    /// Add or list work units (against any node's HTTP address).
    #[command(subcommand)]
    Work(WorkCommand),
    /// Drain a node: request it, and with --wait poll until remaining is 0 (exit 0 only then).
    Drain(DrainArgs),
    /// Print the cluster's nodes as the coordinator sees them.
    Status(StatusArgs),
    /// Make the coordinator resign so that another Alive node takes over (needs --etcd
    /// membership); then the former coordinator's node can be drained like any other.
    Resign(ResignArgs),
    /// Generate a cluster CA, node certificates, an operator's client certificate and
    /// an API token, for a cluster with TLS.
    ///
    /// Writes into --out: ca.pem and ca-key.pem (the CA; an existing one there is reused
    /// to sign more), <id>.pem and <id>-key.pem per --node (its id and the --host names
    /// as names; good as TLS server and client), <client>.pem and <client>-key.pem (a
    /// client certificate for the CLI), and api-token (a random token; kept if
    /// present). Keys and the token are written readable by their owner only. Existing
    /// certificates and keys are not replaced without --force.
    #[command(after_help = "Examples:\n  \
        ebbtide certs --out /tmp/ebbtide-tls --node n1 --node n2 --node n3\n  \
        ebbtide certs --out certs --node n1=10.0.0.1,n1.example.com --node n2=10.0.0.2 --host localhost\n  \
        ebbtide certs --out certs --node n4      # later: one more node, signed by the same CA")]
    Certs(CertsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Step traces (`ebbtide node --trace FILE`).
    #[command(subcommand)]
    Trace(TraceCommand),
}

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Validate step traces: replay every step against the core, then check S5 and S3
    /// across processes.
    ///
    /// Give every node's trace (one file may hold several processes: a node restarted
    /// on the same --trace). Records are grouped by the process that wrote them and put
    /// in its `seq` order. Then:
    ///
    /// (1) sequence: each process's records are seq 0, 1, 2, ... (no step missing);
    ///
    /// (2) replay: each agent incarnation (from its Start record: epoch, persisted leader,
    /// fixed coordinator, guards) and each coordinator (from its Start: term, members,
    /// desired units, config, guards) is rebuilt fresh and fed its logged inputs, and
    /// DrainNode requests and DrainStatus reads; each step must give exactly the logged outputs (and the
    /// client's answer), epoch and term. This catches a shell that changes, drops or
    /// reorders an input or an answer, and a nondeterministic core; not a core that is
    /// wrong the same way every time;
    ///
    /// (3) provenance and causality: every message received was sent by a traced process,
    /// and the merged trace has a happens-before order (process order, and each receipt
    /// after the earliest send of the same message: an ordering that is certain);
    ///
    /// (4) S5: no unit provably runs on two agent incarnations at once (each run's start
    /// happens before the other's StopWork, or before the last logged step of an
    /// incarnation that never stopped it). A run cut by a kill is not flagged when it
    /// only may overlap;
    ///
    /// (5) S3: every DrainNode and DrainStatus answer of remaining 0 for a node happens
    /// after a step at which an agent of that node is Stopping with nothing running.
    /// Not checked: whether a newer incarnation of that node had started by then, and
    /// the coordinator's "no operation in flight" belief.
    ///
    /// (6) refinement: the run, its steps in one order (each process's agent and
    /// coordinator chains in their order, a receipt after its send, the earliest
    /// timestamp first), is walked through the model checker's own transition function:
    /// every step must be an action the model allows (a message delivered is in the
    /// model's network, a timer armed, a restart, election, poll or added unit among
    /// its actions), the node's core in the model must give exactly the logged outputs
    /// and end where the input leaves it, and every `always` property must hold on every
    /// state reached. Node names, unit names and terms are renamed to the model's ids
    /// by rank. What the trace does not log is inserted as the model's own steps and
    /// counted: process ends (a crash before a restart; a step whose persist was lost),
    /// membership registrations and expiries, elections no winner's record shows, a
    /// coordinator that stopped without a record. The model runs in the environment of
    /// the runtime: static or elected membership as the trace shows, a cluster that
    /// starts without a coordinator, membership and election watches that lag, failed
    /// elections, drains and leaves of any node, no bounds on faults.
    ///
    /// Exit status: 0 all checks pass ("a behaviour of the model"); 1 a check fails
    /// (the first failing step is printed with its file and line, its input, the logged
    /// outputs and what the core gave instead; for refinement, what the model allows
    /// instead, or the property that broke); 2 a file cannot be read or a line is not a
    /// trace record.
    #[command(after_help = "Examples:\n  \
        ebbtide node --id n1 ... --trace /tmp/n1.trace.jsonl\n  \
        ebbtide trace check /tmp/n1.trace.jsonl /tmp/n2.trace.jsonl /tmp/n3.trace.jsonl\n  \
        ebbtide trace check --explore 127.0.0.1:3000 /tmp/n*.trace.jsonl   \
        # then open the printed URL")]
    Check(TraceCheckArgs),
}

#[derive(Args, Debug)]
pub struct TraceCheckArgs {
    /// The trace files (JSON lines), of every node of one cluster run.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// After the check, serve stateright's Explorer on ADDR (for example
    /// 127.0.0.1:3000) at the state the run reached, with the path it took through
    /// the model: step back through it, with its sequence diagram, exactly as through
    /// a counterexample. Runs until interrupted.
    #[arg(long, value_name = "ADDR")]
    pub explore: Option<String>,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// The directory to write into (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
    /// A node to make a certificate for: its id, and optionally the hosts its
    /// addresses use (ID=HOST[,HOST...]); repeat for each node.
    #[arg(long = "node", value_name = "ID[=HOST,...]", required = true)]
    pub nodes: Vec<String>,
    /// A host name or IP address that clients use to reach every node (repeatable;
    /// default: localhost, 127.0.0.1 and ::1). Clients verify the host of --server
    /// against these; nodes verify each other by node id.
    #[arg(long = "host", value_name = "HOST", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])]
    pub hosts: Vec<String>,
    /// The name of the operator's client certificate (and of its files).
    #[arg(long, default_value = "operator", value_name = "NAME")]
    pub client: String,
    /// The CA's common name (for a new CA).
    #[arg(long, default_value = "ebbtide cluster CA", value_name = "NAME")]
    pub ca_name: String,
    /// How long the certificates are valid, in days.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub days: u32,
    /// Replace existing certificate and key files (an existing CA is still reused:
    /// delete ca.pem and ca-key.pem for a new one; delete api-token for a new token).
    #[arg(long)]
    pub force: bool,
}

// ----- runtime subcommands: node, work, drain, status, bench ---------------------------

/// Log output format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Logging flags.
#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: tracing_level::Level,
}

/// The `--log-level` value.
pub mod tracing_level {
    /// A tracing level, parsed from its name.
    #[derive(Clone, Copy, Debug)]
    pub struct Level(pub tracing::Level);

    impl std::str::FromStr for Level {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            s.parse::<tracing::Level>().map(Level).map_err(|_| {
                format!("unknown level {s:?}: expected error, warn, info, debug or trace")
            })
        }
    }
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    ebbtide::node::config::parse_duration(s)
}

fn parse_peer_arg(s: &str) -> Result<(String, String), String> {
    ebbtide::node::config::parse_peer(s)
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This node's id.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// gRPC address to listen on (node <-> coordinator messages, Operator service).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// HTTP API address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub http: std::net::SocketAddr,
    /// Data directory: epoch, last leader, and on the coordinator the work units.
    #[arg(long, value_name = "DIR")]
    pub data_dir: std::path::PathBuf,
    /// A member and its gRPC address (repeat for each; this node's own entry is
    /// ignored, so every node can be given the same list).
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer_arg)]
    pub peers: Vec<(String, String)>,
    /// A member's HTTP address (optional, repeatable): the TiCDC-compatible capture
    /// list reports it as the capture's address.
    #[arg(long = "peer-http", value_name = "ID=ADDR", value_parser = parse_peer_arg)]
    pub peer_http: Vec<(String, String)>,
    /// The node that runs the coordinator (static membership; not with --etcd).
    #[arg(long, value_name = "ID")]
    pub coordinator: Option<String>,
    /// etcd endpoints (comma-separated, e.g. http://127.0.0.1:2379): membership,
    /// leases, the coordinator election and the desired work units live there, so
    /// any node can coordinate. Replaces --peer and --coordinator.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// With --etcd: the cluster's name, the prefix of its keys in etcd.
    #[arg(long, default_value = "ebbtide", value_name = "NAME")]
    pub cluster: String,
    /// With --etcd: the membership lease. A process that cannot renew it for this long
    /// fences itself (Stopping, every unit stopped) and exits 3; the cluster moves its
    /// work once etcd expires it. Longer than --liveness-ttl rides out etcd hiccups;
    /// shorter fails over faster.
    #[arg(long, default_value = "10s", value_name = "DUR", value_parser = parse_dur)]
    pub lease_ttl: std::time::Duration,
    /// How often the node heartbeats to the coordinator.
    #[arg(long, default_value = "1s", value_name = "DUR", value_parser = parse_dur)]
    pub heartbeat_interval: std::time::Duration,
    /// No report within this long makes a node Unknown to the coordinator.
    #[arg(long, default_value = "5s", value_name = "DUR", value_parser = parse_dur)]
    pub liveness_ttl: std::time::Duration,
    /// How often the coordinator resends whatever is unacknowledged.
    #[arg(long, default_value = "2s", value_name = "DUR", value_parser = parse_dur)]
    pub resend_interval: std::time::Duration,
    /// Moves in flight off draining nodes at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub drain_batch: usize,
    /// Exit with status 0 once this node is Stopping and runs nothing.
    #[arg(long)]
    pub exit_when_drained: bool,
    /// With --exit-when-drained: keep heartbeating this long before exiting, so that
    /// polling clients see the drain complete (default: the liveness TTL).
    #[arg(long, value_name = "DUR", value_parser = parse_dur)]
    pub exit_linger: Option<std::time::Duration>,
    /// Append one JSON line per core step (process, role, node, epoch, input, outputs)
    /// to FILE; `ebbtide trace check` replays and checks it.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// The default workload's start hook takes this long (simulates slow start-up; the
    /// node's agent waits for it, as it waits for any workload hook).
    #[arg(long, default_value = "0ms", value_name = "DUR", value_parser = parse_dur)]
    pub work_start_delay: std::time::Duration,
    /// The default workload's stop hook takes this long (simulates slow shutdown).
    #[arg(long, default_value = "0ms", value_name = "DUR", value_parser = parse_dur)]
    pub work_stop_delay: std::time::Duration,
    /// Append one JSON line per work-unit start and stop to FILE (`ts_us`, `node`,
    /// `pid`, `event`, `unit`): a start before the unit starts, a stop after it
    /// stopped, so that the logs of several nodes show whether a unit ever ran twice.
    #[arg(long, value_name = "FILE")]
    pub work_log: Option<std::path::PathBuf>,
    /// On SIGTERM the node leaves gracefully: it stops campaigning, resigns if it
    /// coordinates, asks for its own drain until 0, leaves membership and exits 0. If
    /// the drain takes longer than this (or a second signal comes) it exits 1 at once,
    /// and its units are re-placed when its lease expires. If it loses its lease or a
    /// durable write fails meanwhile, it exits at once (status 3 or 4).
    #[arg(long, default_value = "60s", value_name = "DUR", value_parser = parse_dur)]
    pub shutdown_timeout: std::time::Duration,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
}

fn parse_size(s: &str) -> Result<usize, String> {
    ebbtide::node::config::parse_size(s)
}

/// A node's TLS, authentication and request limits.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "TLS, authentication and limits")]
pub struct SecurityArgs {
    /// The cluster CA's certificate (PEM). With --tls-cert and --tls-key: every gRPC call
    /// between nodes is mutual TLS (a caller without a certificate signed by this CA is
    /// refused at the handshake), and the HTTP API is served over TLS.
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<std::path::PathBuf>,
    /// This node's certificate (PEM), signed by --tls-ca. It must carry the node's id
    /// (--id) as a DNS name: peers check that a message sent as node X comes on a
    /// connection whose certificate names X, and that the node they call is who they
    /// meant. `ebbtide certs` makes such certificates.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// This node's private key (PEM), the one of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,
    /// Accept only client certificates that carry this name (as their common name or a
    /// DNS or IP alternative name); repeat for several. Without it any certificate
    /// signed by --tls-ca is accepted. Applies to peers and to HTTP clients that
    /// present a certificate. Remember the nodes' own names.
    #[arg(long = "tls-allowed-name", value_name = "NAME")]
    pub tls_allowed_names: Vec<String>,
    /// A file holding the API token: HTTP requests that change the cluster (drain, work
    /// add, resign) are accepted with `Authorization: Bearer <token>` or a client
    /// certificate. With TLS and no token file, only a client certificate will do.
    /// Without TLS and without a token, the API is open (fine on loopback).
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// Require the same authentication for the read-only routes and /metrics (by
    /// default they stay open to anyone who can connect, for health checks and
    /// Prometheus).
    #[arg(long)]
    pub api_auth_reads: bool,
    /// With https:// --etcd endpoints: the CA of etcd's certificate (default: --tls-ca).
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<std::path::PathBuf>,
    /// With https:// --etcd endpoints: the client certificate to present to etcd
    /// (default: --tls-cert, when --etcd-ca is not given).
    #[arg(long, value_name = "FILE", requires_all = ["etcd_ca", "etcd_key"])]
    pub etcd_cert: Option<std::path::PathBuf>,
    /// The private key of --etcd-cert.
    #[arg(long, value_name = "FILE", requires_all = ["etcd_ca", "etcd_cert"])]
    pub etcd_key: Option<std::path::PathBuf>,
    /// The largest HTTP request body; larger ones get 413 body-too-large.
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_body_bytes: usize,
    /// The largest gRPC message this node decodes; larger ones get OUT_OF_RANGE.
    #[arg(long, default_value = "4MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_message_bytes: usize,
    /// The most work units one request may add (HTTP 413 too-many-units, gRPC
    /// RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_units_per_request: usize,
}

/// Where a client command sends its requests, and how it authenticates.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Any node's HTTP address: host:port, or https://host:port for a node with TLS
    /// (then --ca is needed).
    #[arg(long, value_name = "ADDR")]
    pub server: String,
    /// The cluster CA's certificate (PEM): speak TLS to the node and verify its
    /// certificate, which must name the host of --server.
    #[arg(long, value_name = "FILE", help_heading = "TLS and authentication")]
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate signed by the cluster CA (PEM): it authenticates this
    /// client for drain, work add and resign, as the token does.
    #[arg(long, value_name = "FILE", requires_all = ["ca", "key"], help_heading = "TLS and authentication")]
    pub cert: Option<std::path::PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["ca", "cert"], help_heading = "TLS and authentication")]
    pub key: Option<std::path::PathBuf>,
    /// The API token (the content of the nodes' --api-token-file), sent as
    /// `Authorization: Bearer <token>`. Prefer the environment variable: a command
    /// line is visible to other users.
    #[arg(
        long,
        env = "EBBTIDE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "TLS and authentication"
    )]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum WorkCommand {
    /// Add work units that must run somewhere.
    Add {
        /// Work unit ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List work units and where they run.
    List {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    /// The node to drain.
    #[arg(value_name = "ID")]
    pub node: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Poll until remaining is 0, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up (exit 1) after this long.
    #[arg(long, default_value = "10m", value_name = "DUR", value_parser = parse_dur)]
    pub timeout: std::time::Duration,
    /// With --wait: time between polls.
    #[arg(long, default_value = "1s", value_name = "DUR", value_parser = parse_dur)]
    pub interval: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ResignArgs {
    /// (The request is forwarded to the coordinator.)
    #[command(flatten)]
    pub conn: ConnArgs,
    /// How long to wait for another node to take over.
    #[arg(long, default_value = "30s", value_name = "DUR", value_parser = parse_dur)]
    pub timeout: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Start an in-process loopback cluster, place work, drain one node, print figures.
    Drain(BenchDrainArgs),
    /// Measure coordinator failover under etcd membership: W desired units in etcd, N
    /// nodes in this process, the coordinator resigned and then crashed; print how long
    /// the new coordinator took to be elected, to load the units, to bootstrap and to
    /// know every unit's placement again.
    ///
    /// Seeds W desired units into etcd (64 per transaction, several transactions in
    /// flight), starts N nodes with etcd membership in this process (real gRPC and HTTP
    /// servers on loopback; n1 campaigns first and coordinates), and waits until every
    /// unit runs. Then, per failover:
    ///
    /// resign: `POST /api/v1/owner/resign` to the coordinator (the operator API); the
    /// next candidate wins at once. Every unit must stay where it runs.
    ///
    /// crash: the coordinator's node is stopped outright (tasks aborted, its etcd
    /// lease no longer kept alive, as if the process died): the next candidate wins
    /// once etcd expires that lease, one --lease-ttl later, and the dead node's units
    /// are placed on the others. Every other unit must stay where it runs.
    ///
    /// Measured from the moment of the failover: when a survivor sees the new leader
    /// (elected), how long the new coordinator's read of every page of the work prefix
    /// took (load, with its pages and key bytes, from the new leader's own counters:
    /// they start at zero on a node that never coordinated, which shows the units were
    /// read again from etcd, not reused), when every member answered its bootstrap
    /// (bootstrapped), and when every unit is placed with no operation in flight
    /// (settled). Judged on the nodes' workloads themselves: units that moved, and
    /// units that ever ran on two live nodes at once (both must be 0). RSS is this
    /// whole process (N agents, the coordinators, the etcd client caches), per unit.
    ///
    /// etcd: with --etcd, that cluster (a fresh prefix per run; the units stay there
    /// afterwards). Without it, the benchmark starts its own: the `etcd` binary from
    /// EBBTIDE_ETCD or PATH (Debian: apt-get install etcd-server), in a temporary
    /// directory, on free loopback ports, with --quota-backend-bytes from
    /// --etcd-quota; it is stopped by its process id (SIGTERM, then SIGKILL) and its
    /// directory removed when the run ends.
    #[command(after_help = "Examples:\n  \
        ebbtide bench failover --nodes 16 --work 100000 --log-level error\n  \
        ebbtide bench failover --nodes 16 --work 1000000 --failover crash --log-level error\n  \
        ebbtide bench failover --etcd http://127.0.0.1:2379 --work 10000")]
    Failover(BenchFailoverArgs),
    /// Model-check one configuration exhaustively (single threaded by default), then
    /// stateright's Paxos example in the same process; print unique states per second,
    /// bytes per unique state and the ratio of the two.
    Check(BenchCheckArgs),
}

#[derive(Args, Debug)]
pub struct BenchCheckArgs {
    /// The configuration (the same options as `ebbtide check`; its default is CI's
    /// first configuration, which takes minutes: `--nodes 2 --work 2` takes seconds).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Checker threads, for both models.
    #[arg(long, default_value_t = 1, value_name = "T")]
    pub threads: usize,
    /// Clients of stateright's Paxos example (`paxos check-dfs CLIENTS`); 0 skips it.
    #[arg(long, default_value_t = 3, value_name = "C")]
    pub paxos_clients: usize,
    /// Run the pair this many times, one after the other.
    #[arg(long, default_value_t = 1, value_name = "R")]
    pub repeat: usize,
    /// Instead of timing the check: where the state space comes from. For each kind of
    /// action, how often it is offered, pruned (it would change nothing), generates a
    /// state, and generates a new one, and its share of the step time. One thread, a
    /// 64-bit hash per state (CI's first configuration: 27.6 M states, about 2 GB).
    #[arg(long)]
    pub by_action: bool,
    /// Instead of timing the check: how much each part of the state multiplies the
    /// state space (each node's agent, coordinator, storage and timers, the messages in
    /// flight of each kind, each field of the history): the distinct states left when
    /// that part is left out. Then the `--by-action` table of the same search. One
    /// thread, a 64-bit hash per state and part: minutes and gigabytes for CI's first
    /// configuration; `--work 1 --lease-losses 1` (7.3 M states) takes 6 1/2 minutes, 3.8 GB.
    #[arg(long, conflicts_with = "by_action")]
    pub by_part: bool,
}

#[derive(Args, Debug)]
pub struct BenchDrainArgs {
    /// Nodes in the cluster (2-256); the first coordinates, the last is drained.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub nodes: usize,
    /// Work units.
    #[arg(long, default_value_t = 10_000, value_name = "W")]
    pub work: usize,
    /// Heartbeat interval.
    #[arg(long, default_value = "200ms", value_name = "DUR", value_parser = parse_dur)]
    pub heartbeat_interval: std::time::Duration,
    /// Liveness TTL.
    #[arg(long, default_value = "2s", value_name = "DUR", value_parser = parse_dur)]
    pub liveness_ttl: std::time::Duration,
    /// Resend interval.
    #[arg(long, default_value = "500ms", value_name = "DUR", value_parser = parse_dur)]
    pub resend_interval: std::time::Duration,
    /// Drain batch size.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub drain_batch: usize,
    /// Time between the client's DrainNode polls.
    #[arg(long, default_value = "10ms", value_name = "DUR", value_parser = parse_dur)]
    pub poll_interval: std::time::Duration,
    /// Use etcd membership at these endpoints (a fresh cluster name per run) instead
    /// of static membership: the desired units are then written to etcd.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Mutual TLS between the nodes (a CA and node certificates generated for the run,
    /// as `ebbtide certs` makes them), to compare with plain gRPC.
    #[arg(long)]
    pub tls: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Which coordinator failover `bench failover` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailoverKind {
    /// The operator API's resign.
    Resign,
    /// The coordinator's node dies; its lease expires.
    Crash,
    /// Resign, then crash the new coordinator.
    Both,
}

#[derive(Args, Debug)]
pub struct BenchFailoverArgs {
    /// Nodes in the cluster (2-256); n1 coordinates first.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub nodes: usize,
    /// Desired work units seeded into etcd.
    #[arg(long, default_value_t = 10_000, value_name = "W")]
    pub work: usize,
    /// The failovers to measure, in this order.
    #[arg(long, value_enum, default_value_t = FailoverKind::Both)]
    pub failover: FailoverKind,
    /// Membership lease TTL of every node: after a crash, the next coordinator is
    /// elected about this long later.
    #[arg(long, default_value = "2s", value_name = "DUR", value_parser = parse_dur)]
    pub lease_ttl: std::time::Duration,
    /// Heartbeat interval.
    #[arg(long, default_value = "200ms", value_name = "DUR", value_parser = parse_dur)]
    pub heartbeat_interval: std::time::Duration,
    /// Liveness TTL (the coordinator's own view; shorter than --lease-ttl).
    #[arg(long, default_value = "1s", value_name = "DUR", value_parser = parse_dur)]
    pub liveness_ttl: std::time::Duration,
    /// Resend interval.
    #[arg(long, default_value = "500ms", value_name = "DUR", value_parser = parse_dur)]
    pub resend_interval: std::time::Duration,
    /// Use the etcd cluster at these endpoints instead of starting one.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The backend quota of the etcd this benchmark starts (etcd's default is 2 GiB).
    #[arg(long, default_value = "8GiB", value_name = "BYTES", value_parser = parse_size)]
    pub etcd_quota: usize,
    /// Seeding transactions in flight at once (each adds 64 units).
    #[arg(long, default_value_t = 32, value_name = "T")]
    pub seed_concurrency: usize,
    /// How long each phase (seeding, placement, a failover) may take before the run
    /// fails.
    #[arg(long, default_value = "20m", value_name = "DUR", value_parser = parse_dur)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The configuration of the model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Nodes in the cluster (2-8); n0 starts as coordinator, the client drains the last.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub nodes: u8,
    /// How many nodes the client drains, one after the other, each once the one before
    /// answered 0 (1 to N): the last node first, then the one before it. The client
    /// keeps polling every drain it asked for, also after 0.
    #[arg(long, default_value_t = 1, value_name = "D")]
    pub drains: u8,
    /// Work units that must run from the start (1-8).
    #[arg(long, default_value_t = 2, value_name = "W")]
    pub work: u8,
    /// Work units a client adds during the run (`POST /api/v2/work`), whenever a
    /// coordinator is live: stored first, then fed to the coordinator. --work plus
    /// --added-work is at most 8.
    #[arg(long, default_value_t = 0, value_name = "A")]
    pub added_work: u8,
    /// Checker-only variant: an added unit is fed to the coordinator but never stored,
    /// so a later coordinator does not know it (breaks the coordinator's call contract;
    /// S8 finds the lost unit).
    #[arg(long)]
    pub add_not_durable: bool,
    /// Node crashes to inject, each followed by a restart or by leaving membership (0-4).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub node_crashes: u8,
    /// Coordinator failovers to inject: the coordinator dies, its node lives on (0-4).
    #[arg(long, default_value_t = 1, value_name = "F")]
    pub failovers: u8,
    /// Lease losses to inject: a live node loses its membership lease, fences itself to
    /// Stopping and leaves (0-4).
    #[arg(long, default_value_t = 0, value_name = "X")]
    pub lease_losses: u8,
    /// Messages the network may lose in one run (each loss takes every copy of one
    /// message): a number, or "unlimited". It always duplicates and reorders.
    #[arg(long, default_value = "1", value_name = "L", value_parser = parse_losses)]
    pub losses: Losses,
    /// Liveness-TTL expiries in one run (a node's reports arriving too late): a number,
    /// or "unlimited".
    #[arg(long, default_value = "1", value_name = "E", value_parser = parse_losses)]
    pub ttl_expiries: Losses,
    /// Stray terms: bootstrap requests of terms the election never issued (its largest
    /// term + 1, + 2 …) may reach any node from any other, at any time (0-4).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub stray_terms: u8,
    /// Keep permanently inert messages in the network (slower; the verdicts are the
    /// same: this exists to show that).
    #[arg(long)]
    pub no_gc: bool,
    /// Offer every message loss at every step (much slower; the verdicts are the same:
    /// this exists to show that). By default a loss is taken only where it leaves the
    /// cluster quiescent with a drain short of 0, the only place a loss can matter
    /// (specs/decisions.md, "Losses are taken where they matter")
    #[arg(long)]
    pub every_loss: bool,
    /// Static membership, as `ebbtide node --coordinator` runs it: every agent follows
    /// n0, the one configured coordinator, whose process restarts start new terms; no
    /// other node is ever elected.
    #[arg(long)]
    pub static_membership: bool,
    /// The client asks for the drain of any node, at any time, several at once (what
    /// the HTTP API accepts), instead of one after the other in --drains order.
    #[arg(long)]
    pub drains_any_order: bool,
    /// The cluster starts with no coordinator: the first is elected in a step of its
    /// own, which may never come (the runtime's nodes start so).
    #[arg(long)]
    pub elected_start: bool,
    /// Membership as etcd's watch delivers it: the coordinator learns of a
    /// registration (made before a process's agent starts) and of its expiry later (a
    /// node's expiry before its next registration); a graceful leave resigns its coordinator later; a lagging election
    /// watch may report the term before the latest. With --elected-start no process
    /// runs at first: each starts in a step of its own.
    #[arg(long)]
    pub late_membership: bool,
    /// Elections that start no coordinator: the winner fails to persist its term and
    /// exits (spends a node crash), or it may no longer campaign (or its process is
    /// gone) and resigns at once (spends a resignation: --resigns).
    #[arg(long)]
    pub failed_elections: bool,
    /// The drain scheduler's batch size (moves in flight off draining nodes).
    #[arg(long, default_value_t = 1, value_name = "B")]
    pub drain_batch: u8,
    /// What a new coordinator does with a drain it inherits.
    #[arg(long, value_enum, default_value_t = InheritedArg::Continue)]
    pub inherited_drain: InheritedArg,
    /// The client stops polling once the first coordinator is gone; L1 then only asks
    /// that the target ends Stopping and empty (see specs/decisions.md, C15).
    #[arg(long)]
    pub client_gives_up: bool,
    /// Operator resignations of the current coordinator (0-4): it resigns, and the
    /// election picks a node that may campaign.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub resigns: u8,
    /// Graceful leaves of the drain target (SIGTERM, 0-4): it stops campaigning, and
    /// resigns if it coordinates.
    #[arg(long, default_value_t = 0, value_name = "G")]
    pub leaves: u8,
    /// Checker-only variant: the winner of an election learns its term from its watch,
    /// late, like the other members, instead of when it wins (see specs/decisions.md).
    #[arg(long)]
    pub winner_learns_late: bool,
    /// Checker-only variant: every DrainNode call sends the drain's liveness command
    /// again (the runtime leaves re-sending to the resend timer; see specs/decisions.md).
    #[arg(long)]
    pub resend_on_poll: bool,
    /// Checker-only variant: Stopping is requested only while the target's report is
    /// fresh (the runtime requires freshness only for the 0; see specs/decisions.md).
    #[arg(long)]
    pub stopping_needs_fresh: bool,
    /// L1 without the quiescence argument: from every state, a fair continuation (each
    /// message delivered, each timer fired, no faults; in rounds) must become quiescent
    /// within this many rounds, or the property "L1 settles" is violated. 0: off.
    /// Continuations that meet are computed once, so it costs little; CI's third
    /// configuration runs it with 20 (the smallest bound that holds there is 17).
    #[arg(long, default_value_t = 0, value_name = "ROUNDS")]
    pub fair_rounds: u8,
    /// With --fair-rounds, judge the continuation from one state in this many (chosen
    /// by the state's hash), for configurations too large to judge every state.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub fair_sample: u32,
    /// Switch a protocol guard off (checker only; repeatable; see --list-guards).
    #[arg(long, value_name = "GUARD", value_parser = parse_guard)]
    pub without: Vec<Guard>,
}

fn parse_guard(s: &str) -> Result<Guard, String> {
    s.parse()
}

/// A fault budget: a count, or no limit.
#[derive(Clone, Copy, Debug)]
pub struct Losses(pub Option<u8>);

fn parse_losses(s: &str) -> Result<Losses, String> {
    if s == "unlimited" {
        return Ok(Losses(None));
    }
    s.parse::<u8>()
        .map(|n| Losses(Some(n)))
        .map_err(|_| format!("expected a number (0-255) or \"unlimited\", got {s:?}"))
}

/// The inherited-drain policy (specs/protocol.md C15).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum InheritedArg {
    /// Keep draining a node that reports Draining at bootstrap.
    Continue,
    /// Leave it until a client asks again.
    Freeze,
}

impl ModelArgs {
    /// The model configuration, or a message naming the bad setting.
    pub fn config(&self) -> Result<ModelConfig, String> {
        let mut guards = Guards::default();
        for g in &self.without {
            guards = guards.without(*g);
        }
        let cfg = ModelConfig {
            nodes: self.nodes,
            drains: self.drains,
            work: self.work,
            added_work: self.added_work,
            add_not_durable: self.add_not_durable,
            node_crashes: self.node_crashes,
            failovers: self.failovers,
            lease_losses: self.lease_losses,
            resigns: self.resigns,
            leaves: self.leaves,
            client_gives_up: self.client_gives_up,
            winner_learns_late: self.winner_learns_late,
            losses: self.losses.0,
            ttl_expiries: self.ttl_expiries.0,
            drain_batch: self.drain_batch,
            inherited_drain: match self.inherited_drain {
                InheritedArg::Continue => InheritedDrain::Continue,
                InheritedArg::Freeze => InheritedDrain::Freeze,
            },
            stray_terms: self.stray_terms,
            gc: !self.no_gc,
            every_loss: self.every_loss,
            record_scenarios: true,
            canon: true,
            fixed_coordinator: self.static_membership,
            drains_any_order: self.drains_any_order,
            elected_start: self.elected_start,
            late_membership: self.late_membership,
            failed_elections: self.failed_elections,
            resend_on_poll: self.resend_on_poll,
            stopping_needs_fresh: self.stopping_needs_fresh,
            fair_rounds: self.fair_rounds,
            fair_sample: self.fair_sample,
            guards,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Checker threads (default: every core).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Search order: dfs uses little memory; bfs finds shortest counterexamples first.
    #[arg(long, value_enum, default_value_t = SearchArg::Dfs)]
    pub search: SearchArg,
    /// Stop at the first violated property (other properties are reported unknown).
    #[arg(long)]
    pub stop_at_first_failure: bool,
    /// One search, with every state recording whether the coordinator failed or the
    /// target crashed mid-drain (slower; the verdicts are the same: this exists to
    /// show that). By default the exhaustive search leaves those records out, and a
    /// second search finds L2's two scenarios, stopping at their witnesses
    /// (specs/decisions.md, "Scenarios are witnessed by a search of their own")
    #[arg(long)]
    pub single_search: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the first counterexample as a sequence diagram (SVG: a lifeline per
    /// agent, coordinator and the client; messages from send to delivery), as the
    /// Explorer draws it. Nothing is written when no property is violated.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Print the guards that --without accepts, one a line, and exit.
    #[arg(long)]
    pub list_guards: bool,
    /// Check CI's six configurations one after the other: the default one; a smaller
    /// one with a lease loss (2 nodes, 2 units, drain batch 2, 1 lease loss); two
    /// drains with fair continuations (3 nodes, 1 unit, --drains 2 --fair-rounds 20);
    /// a unit added while the cluster runs (2 nodes, 1 unit, --added-work 1); the
    /// runtime's environment (2 nodes, 1 unit, --elected-start --late-membership
    /// --failed-elections --drains-any-order, a crash, a failover, a lease loss and a
    /// resignation); last and heaviest (about 7 minutes on 2 cores), the default with
    /// a lease loss, one of every fault class at once (--lease-losses 1). Takes no
    /// model options. Exit status 1 if a property is violated in any.
    #[arg(long)]
    pub ci: bool,
    /// Walk the model at random instead of searching every state: for configurations
    /// far past what an exhaustive check finishes (say 5 nodes, 4 units, several faults
    /// of each kind). It proves nothing about the states it does not visit. Each
    /// violation is printed with its walk's seed; `--seed <it> --walks 1` walks the
    /// same path again.
    #[arg(long, conflicts_with_all = ["ci", "search", "stop_at_first_failure", "single_search"])]
    pub simulate: bool,
    /// With --simulate: walk for this many seconds.
    #[arg(long, value_name = "N", default_value_t = 60, requires = "simulate")]
    pub seconds: u64,
    /// With --simulate: the run's seed (default: from the clock, and printed).
    #[arg(long, value_name = "S", requires = "simulate")]
    pub seed: Option<u64>,
    /// With --simulate: stop after this many walks, if that comes before --seconds.
    #[arg(long, value_name = "N", requires = "simulate")]
    pub walks: Option<u64>,
    /// With --simulate: end a walk after this many steps.
    #[arg(long, value_name = "D", default_value_t = 200, requires = "simulate")]
    pub max_depth: usize,
}

#[derive(Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub listen: String,
    /// Checker threads used by "run to completion" (default: every core).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchArg {
    Dfs,
    Bfs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Prints a clap error as one line (help and version as they are) and picks the exit
/// status: 0 for help and version, 2 for bad usage.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let mut line = rendered
                .lines()
                .next()
                .unwrap_or("error: bad usage")
                .to_owned();
            if e.kind() == ErrorKind::MissingRequiredArgument {
                // The arguments are listed on the lines after it: name them.
                let missing: Vec<&str> = rendered
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                line = format!("{line} {}", missing.join(", "));
            }
            eprintln!("{line} (try --help)");
            ExitCode::from(2)
        }
    }
}

/// Prints a bad-usage message and returns exit status 2.
pub fn bad_usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// Default thread count: every core.
pub fn threads(requested: Option<usize>) -> Result<usize, String> {
    match requested {
        Some(0) => Err("--threads must be at least 1".to_string()),
        Some(t) => Ok(t),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}
