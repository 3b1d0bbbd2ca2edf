//! A real, single-member etcd for tests: ephemeral loopback ports, a temporary data dir,
//! stop (SIGTERM, then SIGKILL) and start again on the same data and ports, killed on
//! drop. The process is `ebbtide::etcd_server`'s (the one `bench failover` starts);
//! this file adds what a test does without etcd.
//!
//! The binary comes from `EBBTIDE_ETCD`, else from `PATH` (Debian: `apt-get install
//! etcd-server`). Without one, [`Etcd::start`] prints how to get it and answers `None`,
//! so the test returns early; with `EBBTIDE_REQUIRE_ETCD=1` (as CI sets) it panics
//! instead, so a missing etcd cannot pass for a green run.
#![allow(dead_code)] // each test file uses its own part of the harness

pub use ebbtide::etcd_server::EtcdTlsFiles;
use ebbtide::etcd_server::{find_etcd, EtcdOptions, EtcdServer};
use std::io::Write;
use std::path::Path;

const SKIP: &str = "skipped: etcd not found; install etcd-server (or set EBBTIDE_ETCD) and run: cargo test --test etcd_cluster --test etcd_membership";

/// One etcd process (or none, while stopped) and its data dir.
pub struct Etcd(EtcdServer);

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
        let Some(bin) = find_etcd().unwrap_or_else(|e| panic!("{e}")) else {
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
        let options = EtcdOptions {
            tls,
            dir_prefix: "ebbtide-etcd-test".into(),
            ..EtcdOptions::default()
        };
        match EtcdServer::start(bin, options) {
            Ok(e) => Some(Etcd(e)),
            Err(e) => panic!("etcd did not start: {e}"),
        }
    }

    /// The client URL (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Stops etcd: SIGTERM, then SIGKILL after a grace period. No-op when stopped.
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Freezes etcd (SIGSTOP): its sockets stay open and answer nothing, as a hung host
    /// or a cut network would. [`Self::resume`] thaws it.
    pub fn freeze(&self) {
        self.0.signal("-STOP").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Thaws a frozen etcd (SIGCONT).
    pub fn resume(&self) {
        self.0.signal("-CONT").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts etcd again on the same data dir and ports (after [`Self::stop`]).
    pub fn start_again(&mut self) {
        if let Err(e) = self.0.start_again() {
            panic!("etcd did not start again: {e}");
        }
    }

    /// Where the data dir and log are.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }
}
