//! The clients: they add work and drain nodes through the HTTP API (the
//! TiCDC-compatible v1 route and the v2 routes), poll at any time, and at the end,
//! once faults stopped, check L1 (every requested drain answers 0, every desired unit
//! runs exactly once).

use super::judge::{Judge, Rng};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};

/// What the clients did.
#[derive(Debug, Default)]
pub struct Report {
    /// Nodes whose drain a coordinator took (a 2xx answer).
    pub drains: BTreeSet<String>,
    /// Units a coordinator accepted (200).
    pub desired: BTreeSet<String>,
    /// Units whose request got no answer: they may or may not be desired.
    pub maybe: BTreeSet<String>,
    /// Answers of 0 seen.
    pub zeros: u64,
    /// Requests answered, and not.
    pub answered: u64,
    pub unanswered: u64,
}

/// One HTTP/1 request over turmoil's TCP; the status and the JSON body.
async fn call(
    ip: IpAddr,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<(u16, serde_json::Value), String> {
    let go = async {
        let s = turmoil::net::TcpStream::connect((ip, super::HTTP))
            .await
            .map_err(|e| e.to_string())?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", ip.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = tx.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    };
    timeout(Duration::from_secs(3), go)
        .await
        .map_err(|_| "timed out".to_string())?
}

struct Client {
    rng: Rng,
    ips: BTreeMap<String, IpAddr>,
    judge: Judge,
    report: Arc<Mutex<Report>>,
    next_unit: u64,
}

impl Client {
    fn any_node(&mut self) -> IpAddr {
        let ips: Vec<IpAddr> = self.ips.values().copied().collect();
        *self.rng.pick(&ips)
    }

    fn count(&self, answered: bool) {
        let mut r = self.report.lock().unwrap();
        if answered {
            r.answered += 1;
        } else {
            r.unanswered += 1;
        }
    }

    async fn add_unit(&mut self, via: IpAddr) -> bool {
        let unit = format!("u{:03}", self.next_unit);
        self.next_unit += 1;
        let body = serde_json::json!({ "work_ids": [unit] }).to_string();
        let res = call(via, "POST", "/api/v2/work", Some(body)).await;
        self.count(res.is_ok());
        let mut r = self.report.lock().unwrap();
        match res {
            Ok((200, _)) => {
                r.desired.insert(unit);
                true
            }
            // Refused as invalid: never applied.
            Ok((400..=499, _)) => false,
            // No answer, or 503: a forwarded call can fail after the coordinator
            // applied it (its answer was lost), so the unit may run.
            _ => {
                r.maybe.insert(unit);
                false
            }
        }
    }

    /// DrainNode(target) through one of the routes that request it; the remaining
    /// count, judged at once if it is 0.
    async fn drain(&mut self, target: &str, via: IpAddr, v1: bool) -> Option<u64> {
        let crashes = self.crashes(target);
        let (res, route) = if v1 {
            let body = serde_json::json!({ "capture_id": target }).to_string();
            let res = call(via, "PUT", "/api/v1/captures/drain", Some(body)).await;
            (res, "PUT /api/v1/captures/drain")
        } else {
            let res = call(via, "PUT", &format!("/api/v2/drain/{target}"), None).await;
            (res, "PUT /api/v2/drain")
        };
        self.count(res.is_ok());
        if let Ok((409, _)) = res {
            // The target coordinates (C10; elected membership only, static never drains
            // its coordinator's node): move leadership away first, as TiUP does.
            let ip = self.ips[target];
            let resigned = call(ip, "POST", "/api/v1/owner/resign", None).await;
            self.count(resigned.is_ok());
            return None;
        }
        let remaining = match res {
            Ok((202, v)) => v["current_table_count"].as_u64(),
            Ok((200, v)) => v["remaining"].as_u64(),
            _ => None,
        }?;
        self.report.lock().unwrap().drains.insert(target.to_owned());
        if remaining == 0 {
            self.report.lock().unwrap().zeros += 1;
            self.judge
                .lock()
                .unwrap()
                .zero_answered(target, crashes, route);
        }
        Some(remaining)
    }

    /// DrainStatus(target) (`GET /api/v2/drain/<id>`), judged if it is 0.
    async fn poll(&mut self, target: &str, via: IpAddr) {
        let crashes = self.crashes(target);
        let res = call(via, "GET", &format!("/api/v2/drain/{target}"), None).await;
        self.count(res.is_ok());
        if let Ok((200, v)) = res {
            if v["remaining"].as_u64() == Some(0) {
                self.report.lock().unwrap().zeros += 1;
                self.judge
                    .lock()
                    .unwrap()
                    .zero_answered(target, crashes, "GET /api/v2/drain");
            }
        }
    }

    fn crashes(&self, node: &str) -> u64 {
        let s = self.judge.lock().unwrap();
        s.crashes.get(node).copied().unwrap_or(0)
    }

    fn fail(&self, what: String) {
        let mut s = self.judge.lock().unwrap();
        let what = format!("at {:?}: {what}", s.now);
        eprintln!("VIOLATION {what}");
        s.violations.push(what);
    }
}

/// The clients' run: `faults_for` of random requests while faults happen, then the
/// end checks.
pub async fn run(
    seed: u64,
    ips: BTreeMap<String, IpAddr>,
    judge: Judge,
    report: Arc<Mutex<Report>>,
    faults_for: Duration,
) -> turmoil::Result {
    let t0 = Instant::now();
    let mut c = Client {
        rng: Rng::new(seed ^ 0xc11e_c11e),
        ips,
        judge,
        report,
        next_unit: 0,
    };
    // Some work first, through the coordinator's node once it serves.
    let n1 = c.ips[super::COORDINATOR];
    while c.next_unit < 6 {
        if !c.add_unit(n1).await {
            sleep(Duration::from_millis(200)).await;
        }
    }
    // Two of the three other nodes will be drained: one stays Alive beside the
    // coordinator's node, somewhere for the work to go.
    let mut others: Vec<String> = c
        .ips
        .keys()
        .filter(|n| *n != super::COORDINATOR)
        .cloned()
        .collect();
    others.remove(c.rng.next() as usize % others.len());
    let all: Vec<String> = c.ips.keys().cloned().collect();
    while t0.elapsed() < faults_for {
        sleep(Duration::from_millis(c.rng.range(20, 600))).await;
        let via = c.any_node();
        match c.rng.range(0, 9) {
            0..=1 => {
                c.add_unit(via).await;
            }
            2..=4 => {
                let t = c.rng.pick(&others).clone();
                c.drain(&t, via, true).await;
            }
            5..=6 => {
                let t = c.rng.pick(&others).clone();
                c.drain(&t, via, false).await;
            }
            _ => {
                let t = c.rng.pick(&all).clone();
                c.poll(&t, via).await;
            }
        }
    }
    // Faults are over (the driver repaired everything): time to settle, then L1.
    sleep(Duration::from_secs(5)).await;
    // Every requested drain is asked again, round robin (one session is active at a
    // time, C5: a client that waited on one target alone could wait for ever on a
    // session that only its own poll completes), until each has answered 0.
    let mut pending: Vec<String> = c.report.lock().unwrap().drains.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = BTreeMap::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for t in pending {
            let r = c.drain(&t, n1, true).await;
            if r != Some(0) {
                last.insert(t.clone(), r);
                still.push(t);
            }
        }
        pending = still;
        if !pending.is_empty() && Instant::now() > deadline {
            c.fail(format!(
                "L1: drains never answered 0 after faults stopped: {pending:?} (last answers {last:?})"
            ));
            return Ok(());
        }
        sleep(Duration::from_millis(250)).await;
    }
    // Every desired unit runs exactly once, and nothing else runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wrong = {
            let r = c.report.lock().unwrap();
            let s = c.judge.lock().unwrap();
            let mut wrong = Vec::new();
            for u in &r.desired {
                let n = s.running.get(u).map_or(0, |n| n.len());
                if n != 1 {
                    wrong.push(format!("{u} runs on {n} nodes"));
                }
            }
            for (u, nodes) in &s.running {
                if !nodes.is_empty() && !r.desired.contains(u) && !r.maybe.contains(u) {
                    wrong.push(format!("{u} runs on {nodes:?} but was never added"));
                }
            }
            wrong
        };
        if wrong.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            c.fail(format!("L1: after faults stopped: {}", wrong.join("; ")));
            return Ok(());
        }
        sleep(Duration::from_millis(250)).await;
    }
}
