//! Real node processes on loopback, under static or etcd membership, and what tests
//! ask of them: HTTP calls, waiting for a condition, traces and work logs.

use ebbtide::client::{request, request_raw, Reply};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_ebbtide");

/// A loopback port for a node to bind later (and again at each restart), that nothing
/// else in this machine's tests takes in between.
///
/// Binding port 0 and releasing the port is not enough: the kernel hands the same
/// ephemeral port to the next `bind(0)` often (about 7 in 100 of 2,000 tries here), so
/// two tests running at once could be given one port, and the second node could not
/// listen (CI saw exactly that). So ports come from a band just below the kernel's
/// ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), which neither `bind(0)`
/// nor outgoing connections use, each at most once per test process, starting at an
/// offset drawn from the process id so that two test processes at once rarely meet;
/// a port some other program holds is skipped.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, span) = node_port_band();
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(k < span, "all {span} node ports from {low} handed out");
        let port = (low + (start + k) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The ports [`free_port`] hands out: `(first, how many)`, up to 10,000 ports below the
/// kernel's ephemeral range, or above it when too few lie below.
pub fn node_port_band() -> (u32, u32) {
    let (lo, hi) = ephemeral_range();
    let below = lo.saturating_sub(1025).min(10_000);
    let above = 65_535u32.saturating_sub(hi).min(10_000);
    if below >= 1_000 {
        (lo - below, below)
    } else if above >= 1_000 {
        (hi + 1, above)
    } else {
        panic!("the ephemeral range {lo}..={hi} leaves no band of 1,000 ports for test nodes")
    }
}

/// The kernel's range for ephemeral ports (Linux's default when it cannot be read).
pub fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub struct NodeProc {
    pub id: String,
    pub grpc: u16,
    pub http: u16,
    /// Flags given to this node at every start.
    pub extra: Vec<String>,
    /// Under etcd membership: the endpoint this node uses instead of the cluster's (a
    /// proxy the test can cut).
    pub etcd: Option<String>,
    /// Environment variables given to this node at every start.
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
}

/// How the nodes find each other.
pub enum Membership {
    /// `--peer` and `--coordinator n1`.
    Static,
    /// `--etcd URL --cluster NAME`.
    Etcd { endpoint: String, cluster: String },
}

/// Node processes, with static membership (n1 coordinates) or etcd. Killed on drop;
/// the directory (logs, traces, work logs) is kept on failure.
pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<NodeProc>,
    pub membership: Membership,
    /// When each process that ended did (pid → µs on the machine's clock): whatever it
    /// ran stopped then at the latest.
    pub ended: BTreeMap<u32, u64>,
}

impl Cluster {
    /// `n` nodes under etcd membership at `endpoint`, in a cluster of its own.
    pub fn with_etcd(name: &str, n: usize, endpoint: &str) -> Self {
        let mut c = Cluster::new(name, n);
        c.membership = Membership::Etcd {
            endpoint: endpoint.to_owned(),
            cluster: format!("{name}-{}", std::process::id()),
        };
        c
    }

    /// `n` nodes under static membership; n1 coordinates.
    pub fn new(name: &str, n: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("ebbtide-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let nodes = (1..=n)
            .map(|i| NodeProc {
                id: format!("n{i}"),
                grpc: free_port(),
                http: free_port(),
                extra: Vec::new(),
                etcd: None,
                env: Vec::new(),
                child: None,
            })
            .collect();
        Cluster {
            dir,
            nodes,
            membership: Membership::Static,
            ended: BTreeMap::new(),
        }
    }

    pub fn http(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].http)
    }

    pub fn trace_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.trace.jsonl", self.nodes[i].id))
    }

    /// Where node `i`'s workload records what it starts and stops (`--work-log`).
    pub fn work_log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.work.jsonl", self.nodes[i].id))
    }

    /// The log of node `i`'s processes.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.nodes[i].id))
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].child.as_ref().expect("running").id()
    }

    /// Sends `signal` (TERM, STOP, CONT, ...) to node `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.pid(i);
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Whether node `i` runs.
    pub fn running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            None => false,
            Some(c) => c.try_wait().unwrap().is_none(),
        }
    }

    /// Starts (or restarts) node `i` with the common flags, its own extra flags and
    /// `more`.
    pub fn spawn(&mut self, i: usize, more: &[&str]) {
        let me = &self.nodes[i];
        let mut args: Vec<String> = vec![
            "node".into(),
            "--id".into(),
            me.id.clone(),
            "--listen".into(),
            format!("127.0.0.1:{}", me.grpc),
            "--http".into(),
            format!("127.0.0.1:{}", me.http),
            "--data-dir".into(),
            self.dir.join(&me.id).display().to_string(),
            "--heartbeat-interval".into(),
            "50ms".into(),
            "--liveness-ttl".into(),
            "500ms".into(),
            "--resend-interval".into(),
            "100ms".into(),
            "--trace".into(),
            self.trace_path(i).display().to_string(),
            "--work-log".into(),
            self.work_log_path(i).display().to_string(),
            "--log-level".into(),
            "debug".into(),
        ];
        match &self.membership {
            Membership::Static => {
                args.push("--coordinator".into());
                args.push("n1".into());
                for p in &self.nodes {
                    if p.id != me.id {
                        args.push("--peer".into());
                        args.push(format!("{}=127.0.0.1:{}", p.id, p.grpc));
                        args.push("--peer-http".into());
                        args.push(format!("{}=127.0.0.1:{}", p.id, p.http));
                    }
                }
            }
            Membership::Etcd { endpoint, cluster } => {
                args.extend([
                    "--etcd".into(),
                    me.etcd.clone().unwrap_or_else(|| endpoint.clone()),
                    "--cluster".into(),
                    cluster.clone(),
                ]);
            }
        }
        args.extend(me.extra.iter().cloned());
        args.extend(more.iter().map(|s| s.to_string()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", me.id)))
            .unwrap();
        let child = Command::new(BIN)
            .args(&args)
            .envs(me.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start a node");
        self.nodes[i].child = Some(child);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.spawn(i, &[]);
        }
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.ended.insert(c.id(), now_us());
        }
    }

    /// Waits for node `i` to exit by itself; its exit status.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.nodes[i].child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let pid = child.id();
                self.nodes[i].child = None;
                self.ended.insert(pid, now_us());
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?} (logs in {})",
                self.nodes[i].id,
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("cluster logs and traces kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub async fn get(server: &str, path: &str) -> Reply {
    request(server, "GET", path, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the coordinator sees every node Alive.
pub async fn wait_all_alive(c: &Cluster) {
    let server = c.http(0);
    let n = c.nodes.len();
    until("every node alive", Duration::from_secs(10), || {
        let server = server.clone();
        async move {
            let r = request(&server, "GET", "/api/v2/nodes", None).await.ok()?;
            let list = r.body.as_array()?.clone();
            (list.len() == n && list.iter().all(|x| x["liveness"] == "alive")).then_some(())
        }
    })
    .await
}

/// Adds units `w00..` through `server` and waits until all run.
pub async fn add_work(c: &Cluster, via: usize, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|i| format!("w{i:02}")).collect();
    let r = request(
        &c.http(via),
        "POST",
        "/api/v2/work",
        Some(&json!({ "work_ids": ids })),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_units_running(c, via, count).await;
    ids
}

/// Waits until node `via` lists `count` units, every one running.
pub async fn wait_units_running(c: &Cluster, via: usize, count: usize) {
    let server = c.http(via);
    until("all units running", Duration::from_secs(30), || {
        let server = server.clone();
        async move {
            let r = request(&server, "GET", "/api/v2/work", None).await.ok()?;
            let list = r.body.as_array()?.clone();
            (list.len() == count && list.iter().all(|u| u["state"] == "running")).then_some(())
        }
    })
    .await;
}

/// One line of a work log, as `--work-log` writes it (for tests of the judge).
pub fn work_log_line(pid: u32, event: &str, unit: &str, ts: u64) -> String {
    format!(r#"{{"ts_us":{ts},"node":"n{pid}","pid":{pid},"event":"{event}","unit":"{unit}"}}"#)
}

/// The units running on node `i`, as its own agent reports.
pub async fn running_on(c: &Cluster, i: usize) -> Vec<String> {
    let r = get(&c.http(i), "/api/v2/local").await;
    r.body["running"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// TiCDC's drain request, exactly: `PUT /api/v1/captures/drain {"capture_id": id}`.
pub async fn ticdc_drain(server: &str, id: &str) -> u64 {
    let r = request_raw(
        server,
        "PUT",
        "/api/v1/captures/drain",
        &format!(r#"{{"capture_id":"{id}"}}"#),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 202, "drain answered {}: {:?}", r.status, r.body);
    r.body["current_table_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no current_table_count in {:?}", r.body))
}

/// Every node's trace file (those that exist).
pub fn trace_paths(c: &Cluster) -> Vec<PathBuf> {
    (0..c.nodes.len())
        .map(|i| c.trace_path(i))
        .filter(|p| p.exists())
        .collect()
}

/// `ebbtide trace check` on every node's trace: every step replays against the core,
/// and S5 and S3 hold across processes, and the run is a behaviour of the model
/// (walked through it step by step). Returns the summary line.
pub fn assert_traces_check(c: &Cluster) -> String {
    let t0 = Instant::now();
    match ebbtide::trace_check::check_files(&trace_paths(c)) {
        Ok(summary) => {
            eprintln!("trace check ({:?}): {summary}", t0.elapsed());
            if let Err(e) = summary.refinement() {
                panic!(
                    "the run in {} is not a behaviour of the model:\n{e}",
                    c.dir.display()
                );
            }
            summary.to_string()
        }
        Err(e) => panic!("the traces in {} fail the check:\n{e}", c.dir.display()),
    }
}

pub fn read_trace(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// When the agent of `epoch` first told the coordinator it is Stopping (trace time).
pub fn stopping_reported_at(trace: &[Value], epoch: u64) -> Option<u64> {
    trace
        .iter()
        .filter(|r| r["role"] == "agent" && r["epoch"] == epoch)
        .find(|r| {
            r["outputs"].as_array().unwrap().iter().any(|o| {
                o["Send"]["msg"]["Heartbeat"]["liveness"] == "stopping"
                    || o["Send"]["msg"]["SetLivenessResponse"]["liveness"] == "stopping"
            })
        })
        .map(|r| r["ts_us"].as_u64().unwrap())
}

/// Afterwards every unit runs on exactly one of the surviving nodes.
pub async fn assert_units_once(c: &Cluster, survivors: &[usize], ids: &[String]) {
    let server = c.http(0);
    until("the work list to settle", Duration::from_secs(10), || {
        let server = server.clone();
        async move {
            let r = request(&server, "GET", "/api/v2/work", None).await.ok()?;
            r.body
                .as_array()?
                .iter()
                .all(|u| u["state"] == "running" && u["node"] != "n3")
                .then_some(())
        }
    })
    .await;
    let mut seen = Vec::new();
    for &i in survivors {
        seen.extend(running_on(c, i).await);
    }
    seen.sort();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a unit runs twice: {seen:?}");
    assert_eq!(seen, ids, "every unit runs on a surviving node");
}

/// One stretch of time a unit ran in one process, from the work logs.
#[derive(Clone, Debug)]
pub struct Run {
    pub node: String,
    pub pid: u32,
    pub unit: String,
    pub from: u64,
    /// `None` while it still runs.
    pub to: Option<u64>,
}

/// Every stretch any unit ran, from every node's `--work-log`. A start with no stop in
/// a process that ended is cut at its end (`c.ended`). Every stretch of a process in
/// `cut` ends at `cut[pid]` at the latest: the test froze it then (SIGSTOP), so it ran
/// nothing after that, and the stop records it writes once resumed come late (the test
/// checks separately that they come at once).
pub fn work_runs(c: &Cluster, cut: &BTreeMap<u32, u64>) -> Vec<Run> {
    let mut runs = Vec::new();
    for i in 0..c.nodes.len() {
        let Ok(text) = std::fs::read_to_string(c.work_log_path(i)) else {
            continue;
        };
        let mut open: BTreeMap<(u32, String), Run> = BTreeMap::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let pid = v["pid"].as_u64().unwrap() as u32;
            let unit = v["unit"].as_str().unwrap().to_owned();
            let ts = v["ts_us"].as_u64().unwrap();
            if v["event"] == "start" {
                let run = Run {
                    node: v["node"].as_str().unwrap().to_owned(),
                    pid,
                    unit: unit.clone(),
                    from: ts,
                    to: None,
                };
                assert!(
                    open.insert((pid, unit), run).is_none(),
                    "started twice in one process: {line}"
                );
            } else if let Some(mut run) = open.remove(&(pid, unit)) {
                run.to = Some(cut.get(&pid).map_or(ts, |&c| c.min(ts)));
                runs.push(run);
            }
        }
        for (_, mut run) in open {
            run.to = cut.get(&run.pid).or(c.ended.get(&run.pid)).copied();
            runs.push(run);
        }
    }
    runs
}

/// No unit ever ran in two processes at once, judged from the workloads' own records
/// on one machine clock (not from samples of the nodes' state).
pub fn assert_no_unit_ran_twice(c: &Cluster, cut: &BTreeMap<u32, u64>) -> Vec<Run> {
    let mut runs = work_runs(c, cut);
    runs.sort_by(|a, b| (&a.unit, a.from).cmp(&(&b.unit, b.from)));
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.unit == b.unit {
            let overlap = a.to.is_none_or(|to| to > b.from);
            assert!(
                !overlap,
                "unit {} ran twice: on {} (pid {}) from {} to {:?} and on {} (pid {}) from {}; logs in {}",
                a.unit, a.node, a.pid, a.from, a.to, b.node, b.pid, b.from, c.dir.display()
            );
        }
    }
    runs
}

/// The units running now (open stretches), each with the node it runs on.
pub fn running_now(runs: &[Run]) -> BTreeMap<String, String> {
    runs.iter()
        .filter(|r| r.to.is_none())
        .map(|r| (r.unit.clone(), r.node.clone()))
        .collect()
}
