//! A node's configuration, and the parsers its command-line flags use.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// Default liveness TTL.
pub const DEFAULT_LIVENESS_TTL: Duration = Duration::from_secs(5);
/// Default resend interval.
pub const DEFAULT_RESEND: Duration = Duration::from_secs(2);
/// Default membership lease TTL in etcd.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// Default time a node waits for its own drain after SIGTERM.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Default drain batch size (in-flight moves off draining nodes).
pub const DEFAULT_DRAIN_BATCH: usize = 16;

/// What one request may cost a node: anything larger is refused with a status that
/// names the limit, before it is buffered whole (an HTTP body announced too large) or
/// decoded (a gRPC message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest HTTP request body (413 `body-too-large` above it).
    pub max_body_bytes: usize,
    /// The largest gRPC message the node decodes (status `OUT_OF_RANGE` above it).
    pub max_message_bytes: usize,
    /// The most work units one request may add (HTTP 413 `too-many-units`, gRPC
    /// `RESOURCE_EXHAUSTED`).
    pub max_units_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_message_bytes: 4 << 20,
            max_units_per_request: 10_000,
        }
    }
}

/// TLS to etcd (`https://` endpoints): the CA that etcd's certificate must chain to,
/// and the client certificate and key, when etcd asks for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA of etcd's server certificate.
    pub ca: crate::tls::FileArg,
    /// The client certificate and key presented to etcd.
    pub identity: Option<(crate::tls::FileArg, crate::tls::FileArg)>,
}

/// Who may call a node, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// `--tls-ca`, `--tls-cert`, `--tls-key`: mutual TLS on gRPC, TLS on HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// `--tls-allowed-name`: peers' (and HTTP clients') certificates must carry one of
    /// these names. Empty: any certificate under the CA.
    pub allowed_names: Vec<String>,
    /// `--api-token-file`: the bearer token that authorizes the HTTP API's mutating
    /// routes (as a client certificate does).
    pub api_token_file: Option<PathBuf>,
    /// `--api-auth-reads`: the read-only routes and `/metrics` need the same
    /// authentication as the mutating ones.
    pub api_auth_reads: bool,
    /// TLS to etcd.
    pub etcd_tls: Option<EtcdTls>,
}

/// Everything a node process needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: String,
    /// Address the gRPC `Peer` and `Operator` services listen on.
    pub listen: SocketAddr,
    /// Address the HTTP API listens on.
    pub http: SocketAddr,
    /// Where the epoch, the last leader and (on the coordinator) the work units persist.
    pub data_dir: PathBuf,
    /// The other members: node id → gRPC address (`host:port`).
    pub peers: BTreeMap<String, String>,
    /// The other members' HTTP addresses, where known: the TiCDC-compatible capture
    /// list reports them (tools find a capture by the address they reach it at).
    pub peer_http: BTreeMap<String, String>,
    /// The node that runs the coordinator (static membership).
    pub coordinator: String,
    /// How often the node agent heartbeats.
    pub heartbeat: Duration,
    /// How long the coordinator waits for a report before a node is Unknown.
    pub liveness_ttl: Duration,
    /// How often the coordinator resends whatever is unacknowledged.
    pub resend: Duration,
    /// The drain scheduler's batch size.
    pub drain_batch: usize,
    /// Exit (status 0) once this node is Stopping and runs nothing.
    pub exit_when_drained: bool,
    /// How long a drained node keeps heartbeating before it exits, so that the
    /// coordinator sees it Stopping while clients poll.
    pub exit_linger: Duration,
    /// JSON-lines file that records every core step.
    pub trace: Option<PathBuf>,
    /// How long the default workload's stop hook takes (simulates slow shutdown of work).
    pub work_stop_delay: Duration,
    /// After SIGTERM, how long the node waits for its own drain before it exits anyway.
    pub shutdown_timeout: Duration,
    /// etcd endpoints; empty for static membership.
    pub etcd: Vec<String>,
    /// The cluster's name: its key prefix in etcd.
    pub cluster: String,
    /// The membership lease's TTL in etcd.
    pub lease_ttl: Duration,
    /// TLS, the API token, and who may call the node.
    pub security: Security,
    /// What one request may cost.
    pub limits: Limits,
}

impl NodeConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        id: impl Into<String>,
        listen: SocketAddr,
        http: SocketAddr,
        data_dir: impl Into<PathBuf>,
        coordinator: impl Into<String>,
    ) -> Self {
        NodeConfig {
            id: id.into(),
            listen,
            http,
            data_dir: data_dir.into(),
            peers: BTreeMap::new(),
            peer_http: BTreeMap::new(),
            coordinator: coordinator.into(),
            heartbeat: DEFAULT_HEARTBEAT,
            liveness_ttl: DEFAULT_LIVENESS_TTL,
            resend: DEFAULT_RESEND,
            drain_batch: DEFAULT_DRAIN_BATCH,
            exit_when_drained: false,
            exit_linger: DEFAULT_LIVENESS_TTL,
            trace: None,
            work_stop_delay: Duration::ZERO,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            etcd: Vec::new(),
            cluster: "ebbtide".into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            security: Security::default(),
            limits: Limits::default(),
        }
    }

    /// Whether this node runs the coordinator (static membership).
    pub fn is_coordinator(&self) -> bool {
        !self.uses_etcd() && self.id == self.coordinator
    }

    /// Whether membership is in etcd (`--etcd`).
    pub fn uses_etcd(&self) -> bool {
        !self.etcd.is_empty()
    }

    fn validate_etcd(&self) -> Result<(), String> {
        if !self.coordinator.is_empty() || !self.peers.is_empty() {
            return Err("--etcd elects the coordinator and lists the members: drop --coordinator and --peer".into());
        }
        for url in &self.etcd {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(format!(
                    "--etcd {url:?}: expected a URL such as http://127.0.0.1:2379"
                ));
            }
        }
        let https = self
            .etcd
            .iter()
            .filter(|u| u.starts_with("https://"))
            .count();
        if https > 0 && https < self.etcd.len() {
            return Err(format!(
                "--etcd {}: mixes http:// and https:// endpoints; use one scheme for all",
                self.etcd.join(",")
            ));
        }
        match (https > 0, &self.security.etcd_tls) {
            (true, None) => {
                return Err(format!(
                    "--etcd {}: TLS to etcd needs the CA of etcd's certificate: give --etcd-ca \
                     (and --etcd-cert/--etcd-key if etcd asks for client certificates), or \
                     --tls-ca/--tls-cert/--tls-key, which etcd then uses too",
                    self.etcd.join(",")
                ))
            }
            (false, Some(_)) => {
                return Err(format!(
                    "--etcd-ca/--etcd-cert/--etcd-key are for https:// endpoints, but --etcd is {}",
                    self.etcd.join(",")
                ))
            }
            _ => {}
        }
        for (flag, addr) in [("--listen", self.listen), ("--http", self.http)] {
            if addr.ip().is_unspecified() {
                return Err(format!(
                    "{flag} {addr}: with --etcd the node registers this address for the others \
                     to reach it at; give this machine's own address, not {}",
                    addr.ip()
                ));
            }
        }
        if self.cluster.is_empty() || self.cluster.contains(['/', ' ']) {
            return Err(format!(
                "--cluster {:?}: must be non-empty, without '/' or spaces",
                self.cluster
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return Err("--lease-ttl must be at least 1s (etcd counts leases in seconds)".into());
        }
        Ok(())
    }

    fn validate_security(&self) -> Result<(), String> {
        let s = &self.security;
        if s.tls.is_none() && !s.allowed_names.is_empty() {
            return Err(
                "--tls-allowed-name needs TLS: give --tls-ca, --tls-cert and --tls-key".into(),
            );
        }
        if s.api_auth_reads && s.tls.is_none() && s.api_token_file.is_none() {
            return Err(
                "--api-auth-reads needs a way to authenticate: --api-token-file, or TLS \
                        (--tls-ca/--tls-cert/--tls-key) for client certificates"
                    .into(),
            );
        }
        if let Some(name) = s.allowed_names.iter().find(|n| n.trim().is_empty()) {
            return Err(format!("--tls-allowed-name {name:?}: must not be empty"));
        }
        if !self.uses_etcd() && s.etcd_tls.is_some() {
            return Err("--etcd-ca/--etcd-cert/--etcd-key need --etcd".into());
        }
        let l = &self.limits;
        if l.max_body_bytes < 1024 {
            return Err("--max-body-bytes must be at least 1KiB".into());
        }
        if l.max_message_bytes < 64 * 1024 {
            return Err("--max-message-bytes must be at least 64KiB".into());
        }
        if l.max_units_per_request == 0 {
            return Err("--max-units-per-request must be at least 1".into());
        }
        Ok(())
    }

    /// Checks the settings together; the error names the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        check_id("--id", &self.id)?;
        self.validate_security()?;
        if self.uses_etcd() {
            self.validate_etcd()?;
            return self.validate_intervals();
        }
        check_id("--coordinator", &self.coordinator)?;
        if self.peers.contains_key(&self.id) {
            return Err(format!(
                "--peer {}=...: that is this node's own id (--id); list only the other members",
                self.id
            ));
        }
        if !self.is_coordinator() && !self.peers.contains_key(&self.coordinator) {
            return Err(format!(
                "--coordinator {}: not a member; give its address with --peer {}=<grpc addr>",
                self.coordinator, self.coordinator
            ));
        }
        if let Some(id) = self
            .peer_http
            .keys()
            .find(|id| !self.peers.contains_key(*id))
        {
            return Err(format!(
                "--peer-http {id}=...: not a member; give its gRPC address with --peer {id}=<addr>"
            ));
        }
        self.validate_intervals()
    }

    fn validate_intervals(&self) -> Result<(), String> {
        if self.heartbeat.is_zero() {
            return Err("--heartbeat-interval must be greater than 0".into());
        }
        if self.resend.is_zero() {
            return Err("--resend-interval must be greater than 0".into());
        }
        if self.liveness_ttl <= self.heartbeat {
            return Err(format!(
                "--liveness-ttl ({}) must be longer than --heartbeat-interval ({}), or live nodes turn Unknown between heartbeats",
                fmt_duration(self.liveness_ttl),
                fmt_duration(self.heartbeat)
            ));
        }
        if self.drain_batch == 0 {
            return Err("--drain-batch must be at least 1".into());
        }
        Ok(())
    }
}

fn check_id(flag: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{flag}: node id must not be empty"));
    }
    if id.contains(['=', '/', ' ']) {
        return Err(format!(
            "{flag} {id:?}: node ids may not contain '=', '/' or spaces"
        ));
    }
    Ok(())
}

/// Parses a `--peer` value, `<ID>=<host:port>`.
pub fn parse_peer(s: &str) -> Result<(String, String), String> {
    let Some((id, addr)) = s.split_once('=') else {
        return Err(format!("expected <ID>=<host:port>, got {s:?}"));
    };
    let (id, addr) = (id.trim(), addr.trim());
    check_id("peer id", id)?;
    let addr = addr.strip_prefix("http://").unwrap_or(addr);
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => return Err(format!("peer {id}: expected host:port, got {addr:?}")),
    }
    Ok((id.to_owned(), addr.to_owned()))
}

/// Parses a duration such as `250ms`, `2s`, `1.5s`, `1m` or `1h` (a unit is required).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 500ms, 2s or 1m"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: {num:?} is not a number"))?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use us, ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a size in bytes: `65536`, `64KiB`, `4MiB` or `1GiB` (also `KB`, `MB`, `GB`
/// as powers of 1000).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of bytes such as 65536, 64KiB or 4MiB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}us", d.as_micros())
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert_eq!(fmt_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert!(parse_size("4 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().contains("expected a number"));
    }

    #[test]
    fn peers_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_peer("n2=127.0.0.1:7002"),
            Ok(("n2".into(), "127.0.0.1:7002".into()))
        );
        assert!(parse_peer("n2").unwrap_err().contains("<ID>=<host:port>"));
        assert!(parse_peer("n2=localhost")
            .unwrap_err()
            .contains("host:port"));
        assert!(parse_peer("=1.2.3.4:5").unwrap_err().contains("empty"));
    }

    #[test]
    fn validate_names_the_flag() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut c = NodeConfig::new("n1", a, a, "/tmp/x", "n9");
        assert!(c.validate().unwrap_err().contains("--coordinator n9"));
        c.coordinator = "n1".into();
        c.liveness_ttl = c.heartbeat;
        assert!(c.validate().unwrap_err().contains("--liveness-ttl"));
        c.liveness_ttl = DEFAULT_LIVENESS_TTL;
        assert!(c.validate().is_ok());
    }
}
