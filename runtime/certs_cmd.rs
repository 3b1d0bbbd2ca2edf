//! `ebbtide certs`: a CA, node certificates, an operator's client certificate and an
//! API token in one directory, ready for `--tls-*`, `--api-token-file` and the
//! client's `--ca --cert --key`.

use crate::cli::CertsArgs;
use ebbtide::tls::{generate_api_token, CertAuthority};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Writes `text` to `path`, readable by its owner only when `secret`; refuses to
/// replace an existing file unless `force`.
fn write(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists already: remove it, or pass --force to replace it",
            path.display()
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = options
        .open(path)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// A `--node` value: `ID` or `ID=HOST[,HOST...]`.
fn node_spec(s: &str) -> Result<(String, Vec<String>), String> {
    let (id, hosts) = match s.split_once('=') {
        Some((id, hosts)) => (
            id.trim(),
            hosts
                .split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect(),
        ),
        None => (s.trim(), Vec::new()),
    };
    if id.is_empty() {
        return Err(format!("--node {s:?}: the node id is empty"));
    }
    if rustls::pki_types::ServerName::try_from(id.to_owned()).is_err() {
        return Err(format!(
            "--node {id:?}: a node id must be a valid DNS name (letters, digits, '-' and '.') \
             to be carried in its certificate"
        ));
    }
    Ok((id.to_owned(), hosts))
}

fn run(args: &CertsArgs) -> Result<(), String> {
    let out = &args.out;
    let valid = Duration::from_secs(u64::from(args.days) * 86_400);
    let nodes = args
        .nodes
        .iter()
        .map(|s| node_spec(s))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((id, _)) = nodes.iter().find(|(id, _)| *id == args.client) {
        return Err(format!(
            "--client {id}: a node has that name too; choose another client name"
        ));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| format!("--out {}: cannot create: {e}", out.display()))?;
    let (ca_pem, ca_key) = (out.join("ca.pem"), out.join("ca-key.pem"));
    let ca = if ca_pem.exists() && ca_key.exists() {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
        };
        let ca = CertAuthority::load(&read(&ca_pem)?, &read(&ca_key)?)
            .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        println!(
            "using the CA in {} (signing with {})",
            ca_pem.display(),
            ca_key.display()
        );
        ca
    } else {
        let ca = CertAuthority::generate(&args.ca_name, valid)?;
        write(&ca_pem, &ca.ca.cert_pem, false, args.force)?;
        write(&ca_key, &ca.ca.key_pem, true, args.force)?;
        println!(
            "CA:          {} (its key: {}; keep it offline)",
            ca_pem.display(),
            ca_key.display()
        );
        ca
    };
    for (id, extra) in &nodes {
        let mut hosts = args.hosts.clone();
        hosts.extend(extra.iter().cloned());
        let cert = ca.node(id, &hosts, valid)?;
        let (c, k) = (
            out.join(format!("{id}.pem")),
            out.join(format!("{id}-key.pem")),
        );
        write(&c, &cert.cert_pem, false, args.force)?;
        write(&k, &cert.key_pem, true, args.force)?;
        println!(
            "node {id}:{}{} and {} (names: {id}, {})",
            " ".repeat(7usize.saturating_sub(id.len())),
            c.display(),
            k.display(),
            hosts.join(", ")
        );
    }
    let client = ca.client(&args.client, valid)?;
    let (c, k) = (
        out.join(format!("{}.pem", args.client)),
        out.join(format!("{}-key.pem", args.client)),
    );
    write(&c, &client.cert_pem, false, args.force)?;
    write(&k, &client.key_pem, true, args.force)?;
    println!(
        "client:      {} and {} (name: {})",
        c.display(),
        k.display(),
        args.client
    );
    let token = out.join("api-token");
    if token.exists() {
        println!("API token:   {} (kept)", token.display());
    } else {
        write(&token, &format!("{}\n", generate_api_token()?), true, false)?;
        println!("API token:   {}", token.display());
    }
    let d = out.display();
    println!();
    println!("Start each node with:");
    println!("  --tls-ca {d}/ca.pem --tls-cert {d}/<id>.pem --tls-key {d}/<id>-key.pem --api-token-file {d}/api-token");
    println!("and call the API with https://, a client certificate or the token:");
    println!(
        "  ebbtide status --server https://127.0.0.1:8001 --ca {d}/ca.pem --cert {c} --key {k}",
        c = c.display(),
        k = k.display()
    );
    println!("  EBBTIDE_API_TOKEN=$(cat {d}/api-token) ebbtide drain n3 --server https://127.0.0.1:8001 --ca {d}/ca.pem");
    Ok(())
}

/// `ebbtide certs`.
pub fn certs(args: CertsArgs) -> ExitCode {
    if args.nodes.is_empty() {
        return crate::cli::bad_usage("give at least one --node ID");
    }
    if args.days == 0 {
        return crate::cli::bad_usage("--days must be at least 1");
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
