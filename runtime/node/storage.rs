//! What a node keeps in its data directory: its last epoch, the coordinator it last
//! followed, and (on the coordinator's node) the work units that must run. Every write
//! goes to a temporary file that is fsynced and renamed, then the directory is fsynced.

use ebbtide_model::protocol::agent::Leader;
use ebbtide_model::Epoch;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const EPOCH: &str = "epoch";
const LEADER: &str = "leader.json";
const UNITS: &str = "work-units";
const LOCK: &str = "lock";

/// A node's data directory, locked by this process for as long as any clone lives.
#[derive(Clone, Debug)]
pub struct DataDir {
    path: PathBuf,
    /// The exclusive OS lock on `<dir>/lock` (released when the process exits, however
    /// it exits): two processes on one data dir would share an epoch sequence and
    /// run the same units twice.
    _lock: Arc<fs::File>,
}

impl DataDir {
    /// Opens (creating it if needed) and locks the data directory at `path`; fails if
    /// another process holds it.
    pub fn open(path: &Path) -> Result<Self, String> {
        fs::create_dir_all(path)
            .map_err(|e| format!("--data-dir {}: cannot create: {e}", path.display()))?;
        let lock_path = path.join(LOCK);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                format!(
                    "--data-dir {}: cannot open {}: {e}",
                    path.display(),
                    lock_path.display()
                )
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&lock_path).unwrap_or_default();
                return Err(format!(
                    "--data-dir {}: already in use by another ebbtide process ({}); \
                     each node needs its own data directory",
                    path.display(),
                    holder.trim()
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("--data-dir {}: cannot lock: {e}", path.display()))
            }
        }
        // Name the holder for whoever finds the directory locked.
        let _ = lock.set_len(0);
        let _ = (&lock).write_all(format!("pid {}\n", std::process::id()).as_bytes());
        Ok(DataDir {
            path: path.to_owned(),
            _lock: Arc::new(lock),
        })
    }

    /// The last epoch recorded (0 if none).
    pub fn last_epoch(&self) -> Result<Epoch, String> {
        let file = self.path.join(EPOCH);
        match fs::read_to_string(&file) {
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
        let text = match fs::read_to_string(&file) {
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
        match fs::read_to_string(&file) {
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

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.path.join(format!("{name}.tmp"));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.path.join(name))?;
        fs::File::open(&self.path)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
