//! What a node keeps in its data directory: its last epoch, the coordinator it last
//! followed, and (on the coordinator's node) the work units that must run. Every write
//! goes to a temporary file that is fsynced and renamed, then the directory is fsynced.

use super::env::{Disk, OsDisk};
use ebbtide_model::protocol::agent::Leader;
use ebbtide_model::Epoch;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const EPOCH: &str = "epoch";
const LEADER: &str = "leader.json";
const UNITS: &str = "work-units";

/// A node's data directory, locked by this process for as long as any clone lives.
#[derive(Clone, Debug)]
pub struct DataDir {
    path: PathBuf,
    /// The disk it is on ([`OsDisk`] in production).
    disk: Arc<dyn Disk>,
    /// Whether writes are fsynced (always, except under the test-only shell bug
    /// `ShellBugs::skip_fsync`).
    sync: bool,
    /// The exclusive lock on the directory (an OS lock on `<dir>/lock`, released when
    /// the process exits, however it exits): two processes on one data dir would share
    /// an epoch sequence and run the same units twice.
    _lock: Arc<dyn fmt::Debug + Send + Sync>,
}

impl DataDir {
    /// Opens (creating it if needed) and locks the data directory at `path`; fails if
    /// another process holds it.
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::open_on(Arc::new(OsDisk), path)
    }

    /// [`DataDir::open`] on `disk`.
    pub fn open_on(disk: Arc<dyn Disk>, path: &Path) -> Result<Self, String> {
        disk.create_dir_all(path)
            .map_err(|e| format!("--data-dir {}: cannot create: {e}", path.display()))?;
        let lock = disk.lock(path)?;
        Ok(DataDir {
            path: path.to_owned(),
            disk,
            sync: true,
            _lock: Arc::from(lock),
        })
    }

    /// The test-only shell bug `skip_fsync`: writes without fsync.
    #[doc(hidden)]
    pub fn without_fsync(mut self) -> Self {
        self.sync = false;
        self
    }

    /// The last epoch recorded (0 if none).
    pub fn last_epoch(&self) -> Result<Epoch, String> {
        let file = self.path.join(EPOCH);
        match self.disk.read_to_string(&file) {
            Ok(s) => s
                .trim()
                .parse::<Epoch>()
                .map_err(|_| format!("{}: not an epoch number: {:?}", file.display(), s.trim())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(format!("{}: {e}", file.display())),
        }
    }

    /// Durably records `epoch` (one the membership service handed out) as the last.
    pub fn record_epoch(&self, epoch: Epoch) -> Result<(), String> {
        self.write_atomic(EPOCH, format!("{epoch}\n").as_bytes())
            .map_err(|e| format!("{}: cannot write: {e}", self.path.join(EPOCH).display()))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a new incarnation: reads the last epoch (0 if none), and durably records
    /// and returns the next one. A restart therefore always gets a larger epoch.
    pub fn next_epoch(&self) -> Result<Epoch, String> {
        let next = self
            .last_epoch()?
            .checked_add(1)
            .ok_or_else(|| format!("{}: epoch overflow", self.path.join(EPOCH).display()))?;
        self.record_epoch(next)?;
        Ok(next)
    }

    /// The coordinator an earlier incarnation last followed, if any.
    pub fn leader(&self) -> Result<Option<Leader<String>>, String> {
        let file = self.path.join(LEADER);
        let text = match self.disk.read_to_string(&file) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
        let term = v["term"].as_u64();
        let node = v["node"].as_str();
        match (term, node) {
            (Some(term), Some(node)) if term > 0 && !node.is_empty() => Ok(Some(Leader {
                term,
                node: node.to_owned(),
            })),
            _ => Err(format!(
                "{}: expected {{\"term\": <n>, \"node\": \"<id>\"}}",
                file.display()
            )),
        }
    }

    /// Durably records the coordinator this node follows.
    pub fn persist_leader(&self, leader: &Leader<String>) -> io::Result<()> {
        let v = serde_json::json!({ "term": leader.term, "node": leader.node });
        self.write_atomic(LEADER, format!("{v}\n").as_bytes())
    }

    /// The work units that must run (kept by the coordinator's node).
    pub fn units(&self) -> Result<Vec<String>, String> {
        let file = self.path.join(UNITS);
        match self.disk.read_to_string(&file) {
            Ok(s) => Ok(s
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("{}: {e}", file.display())),
        }
    }

    /// Durably records the work units that must run.
    pub fn persist_units<'a>(&self, units: impl IntoIterator<Item = &'a String>) -> io::Result<()> {
        let mut text = String::new();
        for u in units {
            text.push_str(u);
            text.push('\n');
        }
        self.write_atomic(UNITS, text.as_bytes())
    }

    /// Durable replacement: a temporary file, fsynced, renamed over the record, then
    /// the directory fsynced so that the rename survives a crash. A crash at any
    /// point leaves either the old record or the new one, never a torn one.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.path.join(format!("{name}.tmp"));
        self.disk.write(&tmp, bytes, self.sync)?;
        self.disk.rename(&tmp, &self.path.join(name))?;
        if self.sync {
            self.disk.sync_dir(&self.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tempdir(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ebbtide-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn epochs_grow_across_opens_and_leader_round_trips() {
        let p = tempdir("storage");
        let d = DataDir::open(&p).unwrap();
        assert_eq!(d.next_epoch(), Ok(1));
        assert!(DataDir::open(&p)
            .unwrap_err()
            .contains("already in use by another ebbtide process"));
        assert_eq!(d.next_epoch(), Ok(2));
        assert_eq!(d.leader(), Ok(None));
        let l = Leader {
            term: 3,
            node: "n1".to_string(),
        };
        d.persist_leader(&l).unwrap();
        assert_eq!(d.leader(), Ok(Some(l)));
        d.persist_units(&["a".to_string(), "b".to_string()])
            .unwrap();
        assert_eq!(d.units().unwrap(), vec!["a", "b"]);
        fs::write(p.join(EPOCH), "garbage").unwrap();
        assert!(d.next_epoch().unwrap_err().contains("not an epoch"));
        let _ = fs::remove_dir_all(&p);
    }
}
