//! The simulated network and disk behind the node's seams (`ebbtide::node::env`).

use crate::judge::Faults;
use ebbtide::node::env::{BoxFuture, Disk, Net, NetListener, NetStream};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// turmoil's TCP: each node's gRPC and HTTP listeners, and its gRPC clients' connections.
#[derive(Debug)]
pub struct SimNet;

/// A listener and the address it was asked for: a turmoil host binds only its
/// unspecified address (0.0.0.0), but the node registers its own address for its
/// peers to reach it at, so the listener reports the one it was asked for.
struct SimListener(turmoil::net::TcpListener, SocketAddr);

impl Net for SimNet {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn NetListener>>> {
        Box::pin(async move {
            let any = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port());
            let l = turmoil::net::TcpListener::bind(any).await?;
            Ok(Arc::new(SimListener(l, addr)) as Arc<dyn NetListener>)
        })
    }

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<NetStream>> {
        Box::pin(async move {
            let s = turmoil::net::TcpStream::connect(addr.as_str()).await?;
            Ok(NetStream::new(s))
        })
    }
}

impl NetListener for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.1)
    }

    fn accept(self: Arc<Self>) -> BoxFuture<'static, io::Result<(NetStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, a) = self.0.accept().await?;
            Ok((NetStream::new(s), a))
        })
    }
}

/// turmoil's disk: each host has its own; what was not fsynced (a file's data, a
/// directory's entries) is lost when the host crashes. The fsync of the leader
/// record (the agent's term floor) fails now and then (EIO, as a real disk's can):
/// the data is written but not durable, and the node must stop (`PersistFailed`)
/// without applying anything after it; the driver then crashes it.
#[derive(Debug)]
pub struct SimDisk(pub Arc<Faults>);

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        turmoil::fs::shim::std::fs::create_dir_all(dir)
    }

    /// One process per host: a crash ends the only holder, so there is nothing to lock.
    fn lock(&self, _dir: &Path) -> Result<Box<dyn std::fmt::Debug + Send + Sync>, String> {
        Ok(Box::new(()))
    }

    fn read_to_string(&self, file: &Path) -> io::Result<String> {
        turmoil::fs::shim::std::fs::read_to_string(file)
    }

    fn write(&self, file: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut f = turmoil::fs::shim::std::fs::File::create(file)?;
        f.write_all(bytes)?;
        let leader = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("leader"));
        if sync && leader && self.0.fsync_fails() {
            return Err(io::Error::other("simulated fsync failure (EIO)"));
        }
        if sync {
            f.sync_all()?;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        turmoil::fs::shim::std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        turmoil::fs::shim::std::fs::sync_dir(dir)
    }
}

/// The step trace's clock: simulated time since the simulation started, in µs.
pub fn sim_micros() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_micros() as u64)
}
