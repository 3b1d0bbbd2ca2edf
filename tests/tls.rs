//! TLS and authentication: node processes with certificates generated here (rcgen,
//! through `ebbtide::tls::CertAuthority`), never checked in. Each test starts its own
//! nodes on ephemeral loopback ports.

mod support;

use ebbtide::client::{request_raw_with, request_with, ClientOptions, Reply};
use ebbtide::tls::{http_client_config, CertAuthority, FileArg};
use ebbtide::wire::pb;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::etcd::{Etcd, EtcdTlsFiles};
use support::nodes::{until, Cluster, Membership, BIN};

const DAY: Duration = Duration::from_secs(86_400);
/// A term no real coordinator of these tests reaches.
const HUGE_TERM: u64 = 1 << 60;

/// A CA and the files of the certificates it signed, in a directory of the test.
struct Pki {
    dir: PathBuf,
    ca: CertAuthority,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = CertAuthority::generate(&format!("{name} CA"), DAY).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.ca.cert_pem).unwrap();
        Pki { dir, ca }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn save(&self, name: &str, cert: ebbtide::tls::GeneratedCert) -> (PathBuf, PathBuf) {
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&c, cert.cert_pem).unwrap();
        std::fs::write(&k, cert.key_pem).unwrap();
        (c, k)
    }

    /// A node certificate naming `id`, localhost and 127.0.0.1.
    fn node(&self, id: &str) -> (PathBuf, PathBuf) {
        let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
        self.save(id, self.ca.node(id, &hosts, DAY).unwrap())
    }

    /// An operator's client certificate named `name`.
    fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        self.save(name, self.ca.client(name, DAY).unwrap())
    }

    /// The `--tls-*` flags of node `id`.
    fn node_flags(&self, id: &str) -> Vec<String> {
        let (cert, key) = self.node(id);
        vec![
            "--tls-ca".into(),
            self.ca().display().to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]
    }

    /// An HTTP client that trusts this CA, with `identity` as its certificate.
    fn http(&self, identity: Option<&(PathBuf, PathBuf)>) -> ClientOptions {
        let ca = FileArg::new("--ca", self.ca());
        let ident = identity.map(|(c, k)| (FileArg::new("--cert", c), FileArg::new("--key", k)));
        let tls = http_client_config(&ca, ident.as_ref().map(|(c, k)| (c, k))).unwrap();
        ClientOptions {
            tls: Some(tls),
            token: None,
        }
    }

    /// A gRPC channel to `addr` over TLS, expecting the server to be `node`, trusting
    /// `self`'s CA and presenting `identity`.
    async fn grpc(
        &self,
        addr: &str,
        node: &str,
        identity: Option<&(PathBuf, PathBuf)>,
    ) -> Result<tonic::transport::Channel, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(self.ca()).unwrap()))
            .domain_name(node);
        if let Some((c, k)) = identity {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(c).unwrap(),
                std::fs::read(k).unwrap(),
            ));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))
    }
}

fn grpc_addr(c: &Cluster, i: usize) -> String {
    format!("127.0.0.1:{}", c.nodes[i].grpc)
}

async fn call(
    c: &Cluster,
    i: usize,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    request_with(&c.http(i), opts, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until node 0 (the coordinator) sees exactly `ids`, every one Alive.
async fn wait_alive(c: &Cluster, opts: &ClientOptions, ids: &[&str]) {
    let server = c.http(0);
    until("every node alive", Duration::from_secs(15), || {
        let (server, opts) = (server.clone(), opts.clone());
        async move {
            let r = request_with(&server, &opts, "GET", "/api/v2/nodes", None)
                .await
                .ok()?;
            let list = r.body.as_array()?.clone();
            let seen: Vec<&str> = list.iter().filter_map(|n| n["id"].as_str()).collect();
            (seen == ids && list.iter().all(|n| n["liveness"] == "alive")).then_some(())
        }
    })
    .await
}

/// Adds `count` units through node 0 and waits until they all run.
async fn add_units(c: &Cluster, opts: &ClientOptions, count: usize) {
    let ids: Vec<String> = (0..count).map(|i| format!("w{i:02}")).collect();
    let r = call(
        c,
        0,
        opts,
        "POST",
        "/api/v2/work",
        Some(&json!({ "work_ids": ids })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let server = c.http(0);
    until("all units running", Duration::from_secs(20), || {
        let (server, opts) = (server.clone(), opts.clone());
        async move {
            let r = request_with(&server, &opts, "GET", "/api/v2/work", None)
                .await
                .ok()?;
            let list = r.body.as_array()?.clone();
            (list.len() == count && list.iter().all(|u| u["state"] == "running")).then_some(())
        }
    })
    .await;
}

/// Drains node `id` through node 0 until remaining is 0.
async fn drain_to_zero(c: &Cluster, opts: &ClientOptions, id: &str) {
    let server = c.http(0);
    let path = format!("/api/v2/drain/{id}");
    until("the drain to complete", Duration::from_secs(20), || {
        let (server, opts, path) = (server.clone(), opts.clone(), path.clone());
        async move {
            let r = request_with(&server, &opts, "PUT", &path, None)
                .await
                .ok()?;
            (r.status == 200 && r.body["remaining"] == 0).then_some(())
        }
    })
    .await;
}

fn log_of(c: &Cluster, i: usize) -> String {
    std::fs::read_to_string(c.log_path(i)).unwrap_or_default()
}

/// A Bootstrap of `term` as if sent by the coordinator on node `from`.
fn forged_bootstrap(from: &str, term: u64) -> pb::NodeMessage {
    pb::NodeMessage::from_core(from.into(), ebbtide_model::ToNode::Bootstrap { term })
}

async fn send_bootstrap(ch: tonic::transport::Channel, from: &str) -> Result<(), tonic::Status> {
    pb::peer_client::PeerClient::new(ch)
        .to_node(forged_bootstrap(from, HUGE_TERM))
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_certificate_from_another_ca_cannot_join_and_the_cluster_carries_on() {
    let mut c = Cluster::new("tls-foreign-ca", 3);
    let pki = Pki::new(&c.dir, "cluster");
    let rogue_pki = Pki::new(&c.dir, "rogue");
    for n in &mut c.nodes {
        n.extra = pki.node_flags(&n.id);
    }
    c.start_all();
    let op = pki.http(Some(&pki.client("operator")));
    wait_alive(&c, &op, &["n1", "n2", "n3"]).await;

    // n4 trusts its own CA and presents a certificate from it; it asks n1 to join.
    let mut rogue = Cluster::new("tls-foreign-ca-n4", 1);
    rogue.nodes[0].id = "n4".into();
    rogue.nodes[0].extra = rogue_pki.node_flags("n4");
    rogue.nodes[0]
        .extra
        .extend(["--peer".into(), format!("n1={}", grpc_addr(&c, 0))]);
    rogue.spawn(0, &[]);

    // A client with the rogue certificate that trusts the cluster CA: refused at the
    // handshake, whoever it claims to be.
    let rogue_cert = rogue_pki.node("n3");
    let refused = match pki.grpc(&grpc_addr(&c, 1), "n2", Some(&rogue_cert)).await {
        Err(e) => e,
        Ok(ch) => send_bootstrap(ch, "n3")
            .await
            .expect_err("a foreign certificate's call was taken")
            .to_string(),
    };
    // The client sees an UnknownCA alert, or a broken connection if the server closed
    // it first; the reason is in n2's log (checked below).
    eprintln!("foreign certificate: {refused}");

    add_units(&c, &op, 6).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_alive(&c, &op, &["n1", "n2", "n3"]).await;
    // n1 refused n4 (which refused n1's certificate in turn), n2 the rogue client.
    assert!(
        log_of(&c, 0).contains("TLS handshake refused"),
        "n1 did not log the refusal; its log is in {}",
        c.log_path(0).display()
    );
    assert!(
        log_of(&c, 1).contains("refused a client certificate: not valid under the cluster CA"),
        "n2 did not log the refusal; its log is in {}",
        c.log_path(1).display()
    );
    let log4 = log_of(&rogue, 0);
    assert!(
        !log4.contains("membership change acknowledged"),
        "n4 joined: {log4}"
    );
    drain_to_zero(&c, &op, "n3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_allowed_names_a_valid_certificate_with_another_name_is_refused() {
    let mut c = Cluster::new("tls-allowed-names", 3);
    let pki = Pki::new(&c.dir, "cluster");
    for n in &mut c.nodes {
        n.extra = pki.node_flags(&n.id);
        for allowed in ["n1", "n2", "n3", "operator"] {
            n.extra
                .extend(["--tls-allowed-name".into(), allowed.into()]);
        }
    }
    c.start_all();
    let operator = pki.client("operator");
    let op = pki.http(Some(&operator));
    wait_alive(&c, &op, &["n1", "n2", "n3"]).await;

    // A certificate from the cluster CA, named "intruder": valid, but not allowed.
    let intruder = pki.node("intruder");
    let grpc = match pki.grpc(&grpc_addr(&c, 1), "n2", Some(&intruder)).await {
        Err(e) => e,
        Ok(ch) => send_bootstrap(ch, "intruder")
            .await
            .expect_err("a certificate with a name not allowed was taken on gRPC")
            .to_string(),
    };
    // An AccessDenied alert, or a broken connection; the reason is in n2's log.
    eprintln!("gRPC with a name not allowed: {grpc}");
    let http = request_with(
        &c.http(0),
        &pki.http(Some(&intruder)),
        "PUT",
        "/api/v1/captures/drain",
        Some(&json!({"capture_id": "n3"})),
    )
    .await;
    assert!(
        http.is_err(),
        "HTTP with a name not allowed was served: {http:?}"
    );
    assert!(
        log_of(&c, 1).contains("none of its names is allowed"),
        "n2 did not log the refusal"
    );
    // The allowed operator certificate works.
    let r = call(
        &c,
        0,
        &op,
        "PUT",
        "/api/v1/captures/drain",
        Some(&json!({"capture_id": "n3"})),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_bootstrap_with_a_huge_term_never_reaches_the_core() {
    let mut c = Cluster::new("tls-forged-bootstrap", 3);
    let pki = Pki::new(&c.dir, "cluster");
    let other = Pki::new(&c.dir, "other");
    for n in &mut c.nodes {
        n.extra = pki.node_flags(&n.id);
    }
    c.start_all();
    let op = pki.http(Some(&pki.client("operator")));
    wait_alive(&c, &op, &["n1", "n2", "n3"]).await;
    add_units(&c, &op, 6).await;
    let target = grpc_addr(&c, 1); // n2's gRPC

    // 1. Plain text, no TLS at all.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{target}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let e = send_bootstrap(plain, "n1")
        .await
        .expect_err("plain text was taken");
    eprintln!("plain text: {e}");
    // 2. TLS that trusts the cluster CA, without a client certificate.
    match pki.grpc(&target, "n2", None).await {
        Err(e) => eprintln!("no client certificate: {e}"),
        Ok(ch) => {
            let e = send_bootstrap(ch, "n1")
                .await
                .expect_err("a call without a client certificate was taken");
            eprintln!("no client certificate: {e}");
        }
    }
    // 3. A certificate named n1 from another CA.
    let foreign = other.node("n1");
    match pki.grpc(&target, "n2", Some(&foreign)).await {
        Err(e) => eprintln!("foreign n1: {e}"),
        Ok(ch) => {
            let e = send_bootstrap(ch, "n1")
                .await
                .expect_err("a foreign certificate's call was taken");
            eprintln!("foreign n1: {e}");
        }
    }
    // 4. A member (n3's own certificate) that speaks for n1.
    let n3 = (pki.dir.join("n3.pem"), pki.dir.join("n3-key.pem"));
    let ch = pki
        .grpc(&target, "n2", Some(&n3))
        .await
        .expect("n3's certificate is valid");
    let e = send_bootstrap(ch, "n1").await.expect_err("n3 spoke for n1");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    assert!(e.message().contains("speak only for itself"), "{e}");

    // Nothing reached n2's core: no step of its trace names the term, its persisted
    // leader did not move, and it still obeys n1, its real coordinator.
    let trace = std::fs::read_to_string(c.trace_path(1)).unwrap();
    assert!(
        !trace.contains(&HUGE_TERM.to_string()),
        "the forged term reached n2's core (trace {})",
        c.trace_path(1).display()
    );
    let leader = std::fs::read_to_string(c.dir.join("n2").join("leader.json")).unwrap();
    assert!(
        !leader.contains(&HUGE_TERM.to_string()),
        "n2 persisted the forged term: {leader}"
    );
    drain_to_zero(&c, &op, "n2").await;
    let local = call(&c, 1, &op, "GET", "/api/v2/local", None).await;
    assert_eq!(local.body["liveness"], "stopping", "{:?}", local.body);
    assert_eq!(local.body["running"], json!([]), "{:?}", local.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_without_token_or_client_certificate_gets_401_and_with_either_202() {
    let mut c = Cluster::new("tls-token", 3);
    let pki = Pki::new(&c.dir, "cluster");
    let token_file = c.dir.join("api-token");
    std::fs::write(&token_file, "s3cret-token-for-the-test\n").unwrap();
    let token_path = token_file.display().to_string();
    for n in &mut c.nodes {
        n.extra = pki.node_flags(&n.id);
        n.extra
            .extend(["--api-token-file".into(), token_path.clone()]);
    }
    c.start_all();
    let anonymous = pki.http(None);
    let op = pki.http(Some(&pki.client("operator")));
    wait_alive(&c, &anonymous, &["n1", "n2", "n3"]).await; // reads stay open
    let drain = json!({"capture_id": "n3"});
    let path = "/api/v1/captures/drain";

    let r = call(&c, 1, &anonymous, "PUT", path, Some(&drain)).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"], "unauthenticated", "{:?}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{:?}",
        r.body
    );
    let wrong = ClientOptions {
        token: Some("not-the-token".into()),
        ..anonymous.clone()
    };
    let r = call(&c, 1, &wrong, "PUT", path, Some(&drain)).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"], "unauthenticated");
    for route in [
        ("POST", "/api/v2/work"),
        ("POST", "/api/v1/owner/resign"),
        ("PUT", "/api/v2/drain/n3"),
    ] {
        let r = call(
            &c,
            1,
            &anonymous,
            route.0,
            route.1,
            Some(&json!({"work_ids": ["x"]})),
        )
        .await;
        assert_eq!(r.status, 401, "{route:?}: {:?}", r.body);
    }
    // Nothing was drained by the refused requests.
    let status = call(&c, 0, &anonymous, "GET", "/api/v2/drain/n3", None).await;
    assert_eq!(status.body["phase"], "not-requested", "{:?}", status.body);

    let with_token = ClientOptions {
        token: Some("s3cret-token-for-the-test".into()),
        ..anonymous.clone()
    };
    let r = call(&c, 1, &with_token, "PUT", path, Some(&drain)).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = call(&c, 2, &op, "PUT", path, Some(&drain)).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_auth_reads_the_read_routes_need_the_token_too_even_without_tls() {
    let mut c = Cluster::new("token-reads", 2);
    let token_file = c.dir.join("api-token");
    std::fs::write(&token_file, "another-token").unwrap();
    for n in &mut c.nodes {
        n.extra = vec![
            "--api-token-file".into(),
            token_file.display().to_string(),
            "--api-auth-reads".into(),
        ];
    }
    c.start_all();
    let token = ClientOptions {
        tls: None,
        token: Some("another-token".into()),
    };
    wait_alive(&c, &token, &["n1", "n2"]).await;
    for path in ["/api/v2/nodes", "/metrics", "/api/v1/health"] {
        let r = call(&c, 1, &ClientOptions::plain(), "GET", path, None).await;
        assert_eq!(r.status, 401, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"], "unauthenticated", "{path}");
    }
    let r = call(&c, 1, &token, "GET", "/metrics", None).await;
    assert_eq!(r.status, 200);
}

/// Sends `head` and then `body` on a raw connection, and reads the answer.
fn raw_http(addr: &str, head: &str, body: &[u8]) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body); // the server may answer and close before it read it all
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .and_then(|b| {
            let start = b.find('{')?;
            let end = b.rfind('}')?;
            serde_json::from_str(&b[start..=end]).ok()
        })
        .unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_messages_are_refused_and_the_node_stays_healthy() {
    let mut c = Cluster::new("limits", 2);
    for n in &mut c.nodes {
        n.extra = [
            "--max-body-bytes",
            "64KiB",
            "--max-message-bytes",
            "64KiB",
            "--max-units-per-request",
            "100",
        ]
        .map(String::from)
        .to_vec();
    }
    c.start_all();
    let plain = ClientOptions::plain();
    wait_alive(&c, &plain, &["n1", "n2"]).await;
    let http = c.http(1);

    // A body announced larger than the limit: refused before it is read.
    let head = format!(
        "PUT /api/v1/captures/drain HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = raw_http(&http, &head, &[b' '; 4096]);
    assert_eq!(status, 413, "{body:?}");
    assert_eq!(body["error"], "body-too-large", "{body:?}");
    assert!(
        body["message"].as_str().unwrap().contains("65536 bytes"),
        "{body:?}"
    );
    // A chunked body that grows past it.
    let chunk = vec![b' '; 32 * 1024];
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend(&chunk);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let head = format!(
        "POST /api/v2/work HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = raw_http(&http, &head, &chunked);
    assert_eq!(status, 413, "{body:?}");
    assert_eq!(body["error"], "body-too-large", "{body:?}");
    // Too many units in one request.
    let ids: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let r = call(
        &c,
        1,
        &plain,
        "POST",
        "/api/v2/work",
        Some(&json!({ "work_ids": ids })),
    )
    .await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(r.body["error"], "too-many-units", "{:?}", r.body);

    // gRPC: a message larger than the limit, and an AddWork with too many units.
    let ch = ebbtide::node::transport::Dialer::plain()
        .channel(
            "n2",
            &format!("127.0.0.1:{}", c.nodes[1].grpc),
            Duration::from_secs(5),
        )
        .unwrap();
    let big = pb::NodeMessageBatch {
        messages: (0..20_000).map(|t| forged_bootstrap("n1", t + 1)).collect(),
    };
    let e = pb::peer_client::PeerClient::new(ch)
        .to_node_batch(big)
        .await
        .expect_err("a message over the limit was taken");
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e}");
    assert!(e.message().contains("too large"), "{e}");
    let ch = ebbtide::node::transport::Dialer::plain()
        .channel(
            "n1",
            &format!("127.0.0.1:{}", c.nodes[0].grpc),
            Duration::from_secs(5),
        )
        .unwrap();
    let many = pb::AddWorkRequest {
        work_ids: (0..101).map(|i| format!("u{i}")).collect(),
    };
    let e = pb::operator_client::OperatorClient::new(ch)
        .add_work(many)
        .await
        .expect_err("too many units were taken");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("--max-units-per-request"), "{e}");

    // The nodes carry on: healthy, and they place work and drain.
    let r = call(&c, 1, &plain, "GET", "/api/v1/health", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    add_units(&c, &plain, 8).await;
    drain_to_zero(&c, &plain, "n2").await;
    let r = request_raw_with(
        &c.http(0),
        &plain,
        "POST",
        "/api/v2/work",
        r#"{"work_ids":["z"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Runs `ebbtide node` with `args` until it logs that it started or exits; answers
/// (exit status if it exited, its output).
fn run_node(args: &[String], dir: &Path) -> (Option<std::process::ExitStatus>, String) {
    let log_path = dir.join(format!(
        "run-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (Some(status), std::fs::read_to_string(&log_path).unwrap());
        }
        let out = std::fs::read_to_string(&log_path).unwrap();
        if out.contains("node started") || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (None, out);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn node_args(dir: &Path, id: &str, listen: &str, more: &[String]) -> Vec<String> {
    let mut a: Vec<String> = ["node", "--id", id, "--coordinator", id]
        .map(String::from)
        .to_vec();
    a.extend([
        "--listen".into(),
        format!("{listen}:0"),
        "--http".into(),
        format!("{listen}:0"),
        "--data-dir".into(),
        dir.join(format!("data-{id}")).display().to_string(),
    ]);
    a.extend(more.iter().cloned());
    a
}

#[test]
fn bad_tls_files_are_named_with_their_flag_and_the_node_does_not_start() {
    let dir = std::env::temp_dir().join(format!("ebbtide-tls-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(&dir, "cluster");
    let (n1, n1_key) = pki.node("n1");
    let (_, n2_key) = pki.node("n2");
    let s = |p: &PathBuf| p.display().to_string();
    let ca = s(&pki.ca());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--tls-ca".into(),
                ca.clone(),
                "--tls-cert".into(),
                s(&dir.join("missing.pem")),
                "--tls-key".into(),
                s(&n1_key),
            ],
            "--tls-cert",
        ),
        (
            vec![
                "--tls-ca".into(),
                ca.clone(),
                "--tls-cert".into(),
                s(&n1),
                "--tls-key".into(),
                s(&n2_key),
            ],
            "is not the private key of --tls-cert",
        ),
        (
            vec![
                "--tls-ca".into(),
                ca.clone(),
                "--tls-cert".into(),
                s(&n1_key),
                "--tls-key".into(),
                s(&n1_key),
            ],
            "no PEM certificate",
        ),
        (
            vec![
                "--tls-ca".into(),
                s(&Pki::new(&dir, "other").ca()),
                "--tls-cert".into(),
                s(&n1),
                "--tls-key".into(),
                s(&n1_key),
            ],
            "is not valid as a TLS client certificate under --tls-ca",
        ),
    ];
    for (flags, expected) in cases {
        let (status, out) = run_node(&node_args(&dir, "n1", "127.0.0.1", &flags), &dir);
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{flags:?}: {out}");
        assert!(
            out.contains(expected),
            "{flags:?}: expected {expected:?} in: {out}"
        );
    }
    // The id must be in the certificate.
    let flags = vec![
        "--tls-ca".into(),
        ca.clone(),
        "--tls-cert".into(),
        s(&n1),
        "--tls-key".into(),
        s(&n1_key),
    ];
    let (status, out) = run_node(&node_args(&dir, "n7", "127.0.0.1", &flags), &dir);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(out.contains("but not this node's id \"n7\""), "{out}");
    // An empty token file.
    let empty = dir.join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let (status, out) = run_node(
        &node_args(
            &dir,
            "n1",
            "127.0.0.1",
            &["--api-token-file".into(), s(&empty)],
        ),
        &dir,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(
        out.contains("--api-token-file") && out.contains("is empty"),
        "{out}"
    );
    // Half the TLS flags: clap names the missing ones.
    let (status, out) = run_node(
        &node_args(&dir, "n1", "127.0.0.1", &["--tls-ca".into(), ca]),
        &dir,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{out}");
    assert!(out.contains("--tls-cert"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binding_a_non_loopback_address_without_tls_warns_what_is_exposed() {
    let dir = std::env::temp_dir().join(format!("ebbtide-tls-exposed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (status, out) = run_node(&node_args(&dir, "n1", "0.0.0.0", &[]), &dir);
    assert!(status.is_none(), "the node did not start: {out}");
    assert!(
        out.contains("--listen 0.0.0.0:")
            && out.contains("is not a loopback address and TLS is off"),
        "{out}"
    );
    assert!(
        out.contains("anyone who can reach it can drain any node"),
        "{out}"
    );
    // On loopback, nothing to say.
    let (status, out) = run_node(&node_args(&dir, "n2", "127.0.0.1", &[]), &dir);
    assert!(status.is_none(), "the node did not start: {out}");
    assert!(!out.contains("not a loopback address"), "{out}");
    // With TLS, nothing either.
    let pki = Pki::new(&dir, "cluster");
    let (status, out) = run_node(
        &node_args(&dir, "n3", "0.0.0.0", &pki.node_flags("n3")),
        &dir,
    );
    assert!(status.is_none(), "the node did not start: {out}");
    assert!(!out.contains("not a loopback address"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_https_with_client_certificates() {
    let dir = std::env::temp_dir().join(format!("ebbtide-tls-etcd-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(&dir, "cluster");
    let (cert, key) = pki.node("etcd");
    let Some(etcd) = Etcd::start_tls(EtcdTlsFiles {
        ca: pki.ca(),
        cert,
        key,
    }) else {
        return;
    };
    assert!(etcd.endpoint().starts_with("https://"));
    let mut c = Cluster::with_etcd("tls-etcd", 2, &etcd.endpoint());
    for n in &mut c.nodes {
        n.extra = pki.node_flags(&n.id); // etcd uses --tls-* too
    }
    c.spawn(0, &[]);
    let op = pki.http(Some(&pki.client("operator")));
    let server = c.http(0);
    until("n1 to coordinate", Duration::from_secs(20), || {
        let (server, op) = (server.clone(), op.clone());
        async move {
            let r = request_with(&server, &op, "GET", "/api/v1/captures", None)
                .await
                .ok()?;
            (r.body[0]["is_owner"] == true).then_some(())
        }
    })
    .await;
    c.spawn(1, &[]);
    wait_alive(&c, &op, &["n1", "n2"]).await;
    add_units(&c, &op, 4).await;

    // Without a client certificate etcd refuses the node, which says so and exits 1.
    let Membership::Etcd { cluster, .. } = &c.membership else {
        unreachable!()
    };
    let mut args = node_args(&dir, "n9", "127.0.0.1", &[]);
    args.drain(3..5); // no --coordinator
    args.extend([
        "--etcd".into(),
        etcd.endpoint(),
        "--cluster".into(),
        cluster.clone(),
    ]);
    args.extend(["--etcd-ca".into(), pki.ca().display().to_string()]);
    let (status, out) = run_node(&args, &dir);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(out.contains("--etcd https://"), "{out}");
    // Nor can it speak plain text to it.
    let plain = etcd.endpoint().replace("https://", "http://");
    let mut args = node_args(&dir, "n8", "127.0.0.1", &pki.node_flags("n8"));
    args.drain(3..5);
    args.extend(["--etcd".into(), plain, "--cluster".into(), cluster.clone()]);
    let (status, out) = run_node(&args, &dir);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
