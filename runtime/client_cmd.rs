//! The CLI clients: `work add|list`, `drain`, `status`, `resign`.

use crate::cli::{ConnArgs, DrainArgs, ResignArgs, StatusArgs, WorkCommand};
use ebbtide::client::{self, ClientOptions, Reply};
use ebbtide::wire::DrainProgress;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Prints a line to stdout; a closed pipe (`| head`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// A checked `--server` and how to reach it.
struct Conn {
    server: String,
    opts: ClientOptions,
}

/// Checks `--server`, `--ca`, `--cert`, `--key` and `--token` before doing anything
/// (exit 2 naming the flag at fault).
fn connect(args: &ConnArgs) -> Result<Conn, ExitCode> {
    use ebbtide::tls::FileArg;
    let bad = |m: &str| crate::cli::bad_usage(m);
    client::authority(&args.server).map_err(|e| bad(&e))?;
    let server = args.server.trim();
    let https = server.starts_with("https://");
    if https && args.ca.is_none() {
        return Err(bad(&format!(
            "--server {server}: https needs --ca FILE, the cluster CA that signed the node's certificate"
        )));
    }
    if server.starts_with("http://") && args.ca.is_some() {
        return Err(bad(&format!(
            "--server {server} says http:// but --ca asks for TLS: write https:// or drop the scheme"
        )));
    }
    let tls = match &args.ca {
        None => None,
        Some(ca) => {
            let ca = FileArg::new("--ca", ca);
            let cert = args.cert.as_ref().map(|c| FileArg::new("--cert", c));
            let key = args.key.as_ref().map(|k| FileArg::new("--key", k));
            let identity = cert.as_ref().zip(key.as_ref());
            Some(ebbtide::tls::http_client_config(&ca, identity).map_err(|e| bad(&e.to_string()))?)
        }
    };
    let token = match &args.token {
        Some(t) if t.trim().is_empty() => {
            return Err(bad("--token (or EBBTIDE_API_TOKEN) is empty"));
        }
        Some(t) => Some(t.trim().to_owned()),
        None => None,
    };
    Ok(Conn {
        server: server.to_owned(),
        opts: ClientOptions { tls, token },
    })
}

fn call(conn: &Conn, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
    let reply = runtime().block_on(client::request_with(
        &conn.server,
        &conn.opts,
        method,
        path,
        body,
    ))?;
    if reply.ok() {
        Ok(reply)
    } else {
        Err(format!(
            "{method} {path}: HTTP {}: {}",
            reply.status,
            reply.error_message()
        ))
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `ebbtide work add|list`.
pub fn work(cmd: WorkCommand) -> ExitCode {
    match cmd {
        WorkCommand::Add { ids, conn } => {
            let server = match connect(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(bad) = ids.iter().find(|i| i.trim().is_empty()) {
                return crate::cli::bad_usage(&format!("work id {bad:?} is empty"));
            }
            match call(
                &server,
                "POST",
                "/api/v2/work",
                Some(&json!({ "work_ids": ids })),
            ) {
                Ok(_) => {
                    out!("added {} work unit(s)", ids.len());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        WorkCommand::List { conn, json } => {
            let server = match connect(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match call(&server, "GET", "/api/v2/work", None) {
                Ok(r) if json => {
                    out!("{}", r.body);
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    out!("{:<24} {:<12} STATE", "ID", "NODE");
                    for u in r.body.as_array().into_iter().flatten() {
                        out!(
                            "{:<24} {:<12} {}",
                            s(&u["id"]),
                            s(&u["node"]),
                            s(&u["state"])
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

/// `ebbtide status`.
pub fn status(args: StatusArgs) -> ExitCode {
    let server = match connect(&args.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match call(&server, "GET", "/api/v2/nodes", None) {
        Ok(r) if args.json => {
            out!("{}", r.body);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            out!(
                "{:<12} {:>6} {:<9} {:<5} {:>6} {:>4}  ADDRESS",
                "ID",
                "EPOCH",
                "LIVENESS",
                "COORD",
                "UNITS",
                "OPS"
            );
            for n in r.body.as_array().into_iter().flatten() {
                let coord = if n["is_coordinator"].as_bool() == Some(true) {
                    "*"
                } else {
                    ""
                };
                out!(
                    "{:<12} {:>6} {:<9} {:<5} {:>6} {:>4}  {}",
                    s(&n["id"]),
                    s(&n["epoch"]),
                    s(&n["liveness"]),
                    coord,
                    s(&n["units"]),
                    s(&n["operations"]),
                    s(&n["address"])
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn reason_text(report: &Value) -> String {
    let reasons: Vec<String> = report["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| s(&r["message"]))
        .collect();
    if reasons.is_empty() {
        s(&report["phase"])
    } else {
        format!("{}: {}", s(&report["phase"]), reasons.join("; "))
    }
}

fn bar(initial: u64, remaining: u64) -> String {
    const WIDTH: u64 = 30;
    let done = (initial.saturating_sub(remaining) * WIDTH)
        .checked_div(initial)
        .unwrap_or(WIDTH);
    format!(
        "[{}{}]",
        "#".repeat(done as usize),
        ".".repeat((WIDTH - done) as usize)
    )
}

/// `ebbtide drain`: exit 0 only when remaining is 0.
pub fn drain(args: DrainArgs) -> ExitCode {
    let server = match connect(&args.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.node.trim().is_empty() {
        return crate::cli::bad_usage("node id must not be empty");
    }
    let rt = runtime();
    let path = format!("/api/v2/drain/{}", args.node);
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut initial: Option<u64> = None;
    let mut last_line = String::new();
    loop {
        let reply = match rt.block_on(client::request_with(
            &server.server,
            &server.opts,
            "PUT",
            &path,
            None,
        )) {
            Ok(r) if r.ok() => r,
            Ok(r) => {
                if tty {
                    eprintln!();
                }
                return fail(&format!(
                    "drain {}: HTTP {}: {}",
                    args.node,
                    r.status,
                    r.error_message()
                ));
            }
            Err(e) if args.wait && start.elapsed() < args.timeout => {
                // The coordinator may be restarting: keep polling until the timeout.
                eprintln!("warning: {e}");
                std::thread::sleep(args.interval);
                continue;
            }
            Err(e) => return fail(&e),
        };
        // Checked before anything is shown or decided: an answer about another node,
        // or a 0 whose phase is not `done`, is not a permission to stop the node.
        let remaining = match DrainProgress::from_json(&args.node, &reply.body) {
            Ok(p) => p.remaining,
            Err(e) => {
                if tty {
                    eprintln!();
                }
                return fail(&format!(
                    "drain {}: refusing the answer of {}: {e}",
                    args.node, server.server
                ));
            }
        };
        let init = *initial.get_or_insert(remaining.max(1));
        let line = format!(
            "{} {} remaining {remaining:>6}  {}",
            args.node,
            bar(init, remaining.min(init)),
            reason_text(&reply.body)
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if remaining == 0 {
            if tty {
                eprintln!();
            }
            out!("node {} is drained: remaining 0, safe to stop", args.node);
            return ExitCode::SUCCESS;
        }
        if !args.wait {
            if tty {
                eprintln!();
            }
            out!("remaining {remaining}: drain in progress (poll again, or use --wait)");
            return ExitCode::from(1);
        }
        if start.elapsed() >= args.timeout {
            if tty {
                eprintln!();
            }
            return fail(&format!(
                "drain {}: timed out after {} with remaining {remaining}",
                args.node,
                ebbtide::node::config::fmt_duration(args.timeout)
            ));
        }
        std::thread::sleep(args.interval.min(Duration::from_secs(60)));
    }
}

/// The coordinator's node id, as `GET /api/v1/captures` names it.
fn owner(server: &Conn) -> Result<Option<String>, String> {
    let r = call(server, "GET", "/api/v1/captures", None)?;
    Ok(r.body.as_array().and_then(|list| {
        list.iter()
            .find(|c| c["is_owner"] == true)
            .and_then(|c| c["id"].as_str().map(str::to_owned))
    }))
}

/// `ebbtide resign`: the coordinator resigns; waits until another node coordinates
/// (exit 0), or `--timeout` passes (exit 1).
pub fn resign(args: ResignArgs) -> ExitCode {
    let server = match connect(&args.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let before = match owner(&server) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    if let Err(e) = call(&server, "POST", "/api/v1/owner/resign", None) {
        return fail(&e);
    }
    out!(
        "coordinator {} resigned; waiting for another node to take over",
        before.as_deref().unwrap_or("?")
    );
    let deadline = Instant::now() + args.timeout;
    loop {
        match owner(&server) {
            Ok(Some(now)) if Some(&now) != before.as_ref() => {
                out!("node {now} coordinates now");
                return ExitCode::SUCCESS;
            }
            _ if Instant::now() >= deadline => {
                return fail(&format!(
                    "no other node took over within {}",
                    ebbtide::node::config::fmt_duration(args.timeout)
                ))
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
