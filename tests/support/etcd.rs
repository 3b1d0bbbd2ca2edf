//! A real, single-member etcd for tests: ephemeral loopback ports, a temporary data dir,
//! stop (SIGTERM, then SIGKILL) and start again on the same data and ports, killed on
//! drop.
//!
//! The binary comes from `EBBTIDE_ETCD`, else from `PATH` (Debian: `apt-get install
//! etcd-server`). Without one, [`Etcd::start`] prints how to get it and answers `None`,
//! so the test returns early; with `EBBTIDE_REQUIRE_ETCD=1` (as CI sets) it panics
//! instead, so a missing etcd cannot pass for a green run.
#![allow(dead_code)] // each test file uses its own part of the harness

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
/// Fresh port pairs to try when etcd cannot bind the ones picked.
const PORT_ATTEMPTS: usize = 8;

const SKIP: &str = "skipped: etcd not found; install etcd-server (or set EBBTIDE_ETCD) and run: cargo test --test etcd_cluster --test etcd_membership";

/// One etcd process (or none, while stopped) and its data dir.
pub struct Etcd {
    bin: PathBuf,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    /// Serve clients over TLS with these files, requiring client certificates.
    tls: Option<EtcdTlsFiles>,
    /// With TLS: a plain-HTTP port for `/health` (`--listen-metrics-urls`).
    metrics_port: u16,
}

/// The files of an etcd that serves its clients over TLS and requires client
/// certificates signed by `ca`.
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The etcd binary: `EBBTIDE_ETCD`, else `etcd` on `PATH`.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EBBTIDE_ETCD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Some(p)
        } else {
            panic!("EBBTIDE_ETCD={} is not a file", p.display())
        };
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

impl Etcd {
    /// Starts etcd on fresh ports with an empty data dir; `None` (after printing why)
    /// when there is no etcd binary and `EBBTIDE_REQUIRE_ETCD` is not `1`.
    pub fn start() -> Option<Etcd> {
        Self::start_with(None)
    }

    /// Like [`Self::start`], serving clients over TLS (`https://`) and requiring client
    /// certificates signed by `tls.ca`.
    pub fn start_tls(tls: EtcdTlsFiles) -> Option<Etcd> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<EtcdTlsFiles>) -> Option<Etcd> {
        let Some(bin) = find_etcd() else {
            if std::env::var("EBBTIDE_REQUIRE_ETCD").as_deref() == Ok("1") {
                panic!("EBBTIDE_REQUIRE_ETCD=1 but no etcd binary was found (EBBTIDE_ETCD unset, no etcd on PATH); install etcd-server");
            }
            // Straight to the process's stderr, once: the test harness captures what
            // `println!` and `eprintln!` print in a passing test.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let _ = writeln!(std::io::stderr(), "{SKIP}");
            });
            return None;
        };
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ebbtide-etcd-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the etcd test dir");
        let mut etcd = Etcd {
            bin,
            dir,
            client_port: 0,
            peer_port: 0,
            child: None,
            tls,
            metrics_port: 0,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            // Both ports are held at once so that they differ; a process may still take
            // one before etcd binds it, hence the retries.
            let (c, p, m) = {
                let a = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                let b = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                let m = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                (
                    a.local_addr().unwrap().port(),
                    b.local_addr().unwrap().port(),
                    m.local_addr().unwrap().port(),
                )
            };
            etcd.client_port = c;
            etcd.peer_port = p;
            etcd.metrics_port = m;
            // A failed first start may leave a half-made member dir behind.
            let _ = std::fs::remove_dir_all(etcd.data_dir());
            match etcd.try_run() {
                Ok(()) => return Some(etcd),
                Err(e) if e.contains("address already in use") && attempt < PORT_ATTEMPTS => {
                    continue
                }
                Err(e) => panic!("etcd did not start: {e}"),
            }
        }
        unreachable!()
    }

    /// The client URL (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Stops etcd: SIGTERM, then SIGKILL after a grace period (at once when SIGTERM could
    /// not be sent). No-op when stopped.
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
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }

    /// Freezes etcd (SIGSTOP): its sockets stay open and answer nothing, as a hung host
    /// or a cut network would. [`Self::resume`] thaws it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen etcd (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("etcd is running");
        if let Err(e) = send_signal(sig, pid) {
            panic!("{e}");
        }
    }

    /// Starts etcd again on the same data dir and ports (after [`Self::stop`]). Retries
    /// while a port is still taken (by the previous process's sockets, or another).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "etcd is running");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.try_run() {
                Ok(()) => return,
                Err(e) if e.contains("address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("etcd did not start again: {e}"),
            }
        }
    }

    /// Runs etcd and waits until it serves; on failure answers why (with its log).
    fn try_run(&mut self) -> Result<(), String> {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open {}: {e}", self.log_path().display()))?;
        let mut cmd = Command::new(&self.bin);
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth")
                .arg(format!(
                    "--listen-metrics-urls=http://127.0.0.1:{}",
                    self.metrics_port
                ));
        }
        let child = cmd
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
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
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let health_port = if self.tls.is_some() {
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
                    self.log_tail()
                ));
            }
            if healthy(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "etcd did not serve within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Where the data dir and log are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Sends a signal (`-TERM`, `-STOP`, ...) to `pid` with the shell's `kill` builtin: no
/// libc in the tests, and no need for a `kill` program (procps) on the machine.
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

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL works on a frozen process too
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("etcd test dir kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
