//! Reading step traces: JSON lines from one or more files, grouped by the process that
//! wrote them and put back in that process's order.
//!
//! Several processes may append to one file (a node restarted with the same `--trace`),
//! and a process takes a record's `seq` before it takes the file lock, so its lines can
//! be out of `seq` order in the file: the order that counts is `seq` within a process.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which core a record's step ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Coordinator,
}

/// Where a record is: its file and 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One step record, as `runtime/node/trace.rs` writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub process: String,
    pub seq: u64,
    #[serde(default)]
    pub ts_us: u64,
    pub role: Role,
    pub node: String,
    pub epoch: u64,
    pub term: Option<u64>,
    pub input: Value,
    pub outputs: Vec<Value>,
    #[serde(skip)]
    pub place: Option<Place>,
}

impl Record {
    /// Where the record was read (always set by [`read`]).
    pub fn place(&self) -> Place {
        self.place.clone().unwrap_or(Place {
            file: PathBuf::new(),
            line: 0,
        })
    }
}

/// A trace that cannot be read: the command's exit status 2.
#[derive(Debug)]
pub struct InputError {
    pub file: PathBuf,
    /// 0 when the file itself cannot be read.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// The records of one OS process, in its `seq` order.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub records: Vec<Record>,
}

/// Reads every file and groups the records by process, each in `seq` order; processes
/// in the order their first record was read. A line that is not a record is an
/// [`InputError`], except a last line without its newline (a write cut short by a
/// kill), which is skipped and counted in the second value.
pub fn read(files: &[PathBuf]) -> Result<(Vec<Process>, usize), InputError> {
    let mut by_process: BTreeMap<String, usize> = BTreeMap::new();
    let mut processes: Vec<Process> = Vec::new();
    let mut torn = 0;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| InputError {
            file: file.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let lines: Vec<&str> = text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let last_unterminated = i + 1 == lines.len();
            let mut record = match parse_line(file, i + 1, line) {
                Ok(r) => r,
                Err(_) if last_unterminated => {
                    torn += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            record.place = Some(Place {
                file: file.clone(),
                line: i + 1,
            });
            let idx = *by_process.entry(record.process.clone()).or_insert_with(|| {
                processes.push(Process {
                    name: record.process.clone(),
                    records: Vec::new(),
                });
                processes.len() - 1
            });
            processes[idx].records.push(record);
        }
    }
    for p in &mut processes {
        p.records.sort_by_key(|r| r.seq);
    }
    Ok((processes, torn))
}

fn parse_line(file: &Path, line: usize, text: &str) -> Result<Record, InputError> {
    serde_json::from_str(text).map_err(|e| InputError {
        file: file.to_path_buf(),
        line,
        message: format!("not a trace record: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(process: &str, seq: u64) -> String {
        format!(
            r#"{{"process":"{process}","seq":{seq},"ts_us":0,"role":"agent","node":"n1","epoch":1,"term":0,"input":"HeartbeatTimer","outputs":[]}}"#
        )
    }

    /// Two processes appended to one file, one of them out of `seq` order, and a last
    /// line cut short by a kill: grouped by process, each in `seq` order, places kept,
    /// the torn line skipped. A torn line anywhere else is malformed input.
    #[test]
    fn records_are_grouped_by_process_in_seq_order() {
        let dir = std::env::temp_dir().join(format!("ebbtide-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("n1.trace.jsonl");
        let text = [line("a", 1), line("a", 0), line("b", 0), line("a", 2)].join("\n");
        std::fs::write(&file, format!("{text}\n{{\"process\":\"b\",\"se")).unwrap();
        let (processes, torn) = read(std::slice::from_ref(&file)).unwrap();
        assert_eq!(torn, 1);
        let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a: Vec<(u64, usize)> = processes[0]
            .records
            .iter()
            .map(|r| (r.seq, r.place().line))
            .collect();
        assert_eq!(a, [(0, 2), (1, 1), (2, 4)]);

        std::fs::write(
            &file,
            format!("{}\nnot json\n{}\n", line("a", 0), line("a", 1)),
        )
        .unwrap();
        let e = read(std::slice::from_ref(&file)).unwrap_err();
        assert_eq!((e.line, e.file.clone()), (2, file.clone()));
        assert!(
            e.to_string()
                .contains("n1.trace.jsonl:2: not a trace record"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
