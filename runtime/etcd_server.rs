//! A single-member etcd this process starts for itself: free loopback ports, a
//! temporary directory, stopped by its process id. `ebbtide bench failover` starts one
//! when no `--etcd` is given, and the integration tests start theirs with it
//! (`tests/support/etcd.rs` adds only how a test without etcd skips or fails).
//!
//! Signals go through the shell's `kill` builtin: no libc, and no `kill` program
//! (procps) needed on the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long etcd may take to serve after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Fresh ports to try when etcd cannot bind the ones picked (another process may take
/// a port between the pick and etcd's bind).
const PORT_ATTEMPTS: usize = 8;

/// The etcd binary: `EBBTIDE_ETCD`, else `etcd` on `PATH`. `Ok(None)` when there is
/// none; an error when `EBBTIDE_ETCD` names something that is not a file.
pub fn find_etcd() -> Result<Option<PathBuf>, String> {
    if let Some(p) = std::env::var_os("EBBTIDE_ETCD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(Some(p))
        } else {
            Err(format!("EBBTIDE_ETCD={} is not a file", p.display()))
        };
    }
    Ok(std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
    }))
}

/// The files of an etcd that serves its clients over TLS and requires client
/// certificates signed by `ca`.
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to run it.
#[derive(Clone, Debug, Default)]
pub struct EtcdOptions {
    /// Serve clients over TLS (`https://`), requiring client certificates.
    pub tls: Option<EtcdTlsFiles>,
    /// `--quota-backend-bytes` (etcd's default, 2 GiB, when `None`).
    pub quota_backend_bytes: Option<usize>,
    /// The temporary directory's name starts with this.
    pub dir_prefix: String,
}

/// One etcd process (or none, while stopped) and its directory (`data/`, `etcd.log`).
/// Dropping it kills the process and removes the directory, unless the thread is
/// panicking (then the directory is kept and its path printed, for the log).
#[derive(Debug)]
pub struct EtcdServer {
    bin: PathBuf,
    dir: PathBuf,
    options: EtcdOptions,
    client_port: u16,
    peer_port: u16,
    /// With TLS: a plain-HTTP port for `/health` (`--listen-metrics-urls`).
    metrics_port: u16,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts `bin` on fresh loopback ports with an empty data directory under the
    /// system's temporary directory, and waits until it serves.
    pub fn start(bin: PathBuf, options: EtcdOptions) -> Result<EtcdServer, String> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{}-{}-{}",
            if options.dir_prefix.is_empty() {
                "ebbtide-etcd"
            } else {
                &options.dir_prefix
            },
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut etcd = EtcdServer {
            bin,
            dir,
            options,
            client_port: 0,
            peer_port: 0,
            metrics_port: 0,
            child: None,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            // The three ports are held at once so that they differ.
            let ports = [free_port()?, free_port()?, free_port()?];
            [etcd.client_port, etcd.peer_port, etcd.metrics_port] = ports.map(|(_, p)| p);
            // A failed first start may leave a half-made member directory behind.
            let _ = std::fs::remove_dir_all(etcd.data_dir());
            match etcd.run() {
                Ok(()) => return Ok(etcd),
                Err(e) if e.contains("address already in use") && attempt < PORT_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
        Err("no free ports for etcd".into())
    }

    /// The client URL (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Where the data directory and the log are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// The last `lines` lines of etcd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The size of the data directory (the backend and the WAL), in bytes.
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.data_dir())
    }

    /// Stops etcd: SIGTERM, then SIGKILL after a grace period (at once when SIGTERM
    /// could not be sent). No-op when stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let termed = send_signal("-TERM", child.id()).is_ok();
        let deadline = Instant::now() + if termed { STOP_GRACE } else { Duration::ZERO };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill(); // SIGKILL, by the same pid
        let _ = child.wait();
    }

    /// Sends a signal (`-STOP` freezes it: its sockets stay open and answer nothing, as
    /// a hung host or a cut network would; `-CONT` thaws it).
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        let pid = self.pid().ok_or("etcd is not running")?;
        send_signal(sig, pid)
    }

    /// Starts etcd again on the same data directory and ports (after [`Self::stop`]),
    /// retrying while a port is still taken (by the previous process's sockets, or
    /// another), for up to 20 s.
    pub fn start_again(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("etcd is running".into());
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.run() {
                Ok(()) => return Ok(()),
                Err(e) if e.contains("address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs etcd and waits until it serves; on failure answers why (with its log).
    fn run(&mut self) -> Result<(), String> {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open {}: {e}", self.log_path().display()))?;
        let mut cmd = Command::new(&self.bin);
        if let Some(tls) = &self.options.tls {
            cmd.arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth")
                .arg(format!(
                    "--listen-metrics-urls=http://127.0.0.1:{}",
                    self.metrics_port
                ));
        }
        if let Some(quota) = self.options.quota_backend_bytes {
            cmd.arg(format!("--quota-backend-bytes={quota}"));
        }
        let child = cmd
            .arg("--name=local")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=local={peer}"))
            .arg("--initial-cluster-state=new")
            // A single member elects itself at once with short raft timeouts, which
            // keeps start and restart well under a second.
            .arg("--heartbeat-interval=25")
            .arg("--election-timeout=250")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let health_port = if self.options.tls.is_some() {
            self.metrics_port
        } else {
            self.client_port
        };
        let addr: SocketAddr = ([127, 0, 0, 1], health_port).into();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "etcd exited with {status}; its log:\n{}",
                    self.log_tail(30)
                ));
            }
            if healthy(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "etcd did not serve within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL works on a frozen process too
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("etcd directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port free on loopback right now, with its listener (held until dropped).
fn free_port() -> Result<(TcpListener, u16), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    Ok((l, port))
}

/// Sends a signal (`-TERM`, `-STOP`, ...) to `pid` with the shell's `kill` builtin.
fn send_signal(sig: &str, pid: u32) -> Result<(), String> {
    let status = Command::new("/bin/sh")
        .args(["-c", "kill \"$0\" \"$1\"", sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("kill {sig} {pid}: {other:?}")),
    }
}

/// Whether etcd at `addr` answers `GET /health` with `"health":"true"`.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}
