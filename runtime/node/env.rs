//! The seams between a node and the world it runs in: the network, the disk, the
//! clock, and the message layer between the transport and the wire.
//!
//! A production node runs with [`Env::os`]: the OS's TCP through tokio, the OS's file
//! system, the system clock, no fault layer. Everything else in [`super::start`] is the
//! same code whatever the environment, which is the point: a deterministic simulation
//! (`tests/sim.rs`, on turmoil) swaps only these seams and so tests the real tasks, the
//! real tonic and axum servers and clients, the real storage protocol (fsync, rename,
//! directory fsync) and the real wire conversions. The simulated implementations live
//! in the test crate, so the production binary does not depend on the simulator.
//!
//! Each seam is as small as the node needs and no smaller:
//!
//! - [`Net`]: bind a listener (served by tonic through `serve_with_incoming` and by
//!   axum through its `Listener` trait) and open a connection (the gRPC clients'
//!   connector). Without it (`None`) the node binds and dials exactly as it always
//!   did, with tokio's `TcpListener`, tonic's `TcpIncoming` and tonic's own connector.
//! - [`Disk`]: the few file operations the data directory needs. The protocol that
//!   makes a record durable (write a temporary file, fsync it, rename it, fsync the
//!   directory) stays in [`super::storage::DataDir`]: a simulated disk that loses
//!   unsynced writes on a crash then tests that protocol, not a copy of it.
//! - the clock of the step trace's `ts_us` ([`super::trace::Tracer::with_clock`]).
//! - [`WireFaults`]: decides, for each batch the transport is about to put on the wire,
//!   which messages go (some lost, some twice) and when (some late, so after later
//!   ones). TCP never loses, duplicates or reorders what it carries, so faults the
//!   protocol must tolerate are injected here, above the wire, where a real network's
//!   retries, reconnections and proxies would produce them.
//! - [`Env::membership`]: an elected membership service
//!   ([`crate::membership::ElectedMembership`]) in place of the flags' static or etcd
//!   one.

use super::shell_bug::ShellBugs;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A boxed `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a node runs on. [`Env::os`] (the default) is production's.
#[derive(Clone, Debug)]
pub struct Env {
    /// The network; `None`: the OS's TCP through tokio, as a production node has it.
    pub net: Option<Arc<dyn Net>>,
    /// The disk the data directory is on.
    pub disk: Arc<dyn Disk>,
    /// The step trace's clock (microseconds); `None`: the system clock.
    pub clock: Option<fn() -> u64>,
    /// The fault layer between the transport and the wire; `None`: none.
    pub faults: Option<Arc<dyn WireFaults>>,
    /// HTTP/2 keep-alive on the peer connections: a connection whose peer stopped
    /// answering (crashed without a reset, or cut off) fails after `interval +
    /// timeout` instead of hanging until the next call's timeout. `None` in
    /// production, as before; a simulation sets it.
    pub keep_alive: Option<Duration>,
    /// An observer of the agent's real state after each of its steps (a simulation
    /// judges safety on it); `None` in production.
    pub probe: Option<Arc<dyn AgentProbe>>,
    /// An elected membership service for this process (this incarnation); `None`: the
    /// flags choose (static, or etcd). When set it replaces both: `--peer` and
    /// `--coordinator` are ignored, and the node runs it as it runs etcd's (a
    /// simulation's etcd, in the test crate).
    pub membership: Option<Arc<dyn crate::membership::ElectedMembership>>,
    /// Shell bugs a test switches on to prove that a judge catches them
    /// ([`super::shell_bug`]): the tasks of this node consult these, and nothing else.
    /// All off in production.
    #[doc(hidden)]
    pub bugs: ShellBugs,
}

impl Default for Env {
    fn default() -> Self {
        Env::os()
    }
}

impl Env {
    /// Production's environment: the OS's network, disk and clock, no faults.
    pub fn os() -> Self {
        Env {
            net: None,
            disk: Arc::new(OsDisk),
            clock: None,
            faults: None,
            keep_alive: None,
            probe: None,
            membership: None,
            bugs: ShellBugs::default(),
        }
    }
}

/// A connection, whatever carries it.
pub struct NetStream(Pin<Box<dyn NetIo>>);

/// What a connection must do: read and write bytes.
pub trait NetIo: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> NetIo for T {}

impl NetStream {
    /// Wraps a connection.
    pub fn new(io: impl NetIo) -> Self {
        NetStream(Box::pin(io))
    }
}

impl fmt::Debug for NetStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetStream")
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }
}

/// tonic's server asks each connection for what it knows of its peer; a simulated
/// one knows nothing more than its bytes (no TLS, so no certificate names).
impl tonic::transport::server::Connected for NetStream {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

/// A network: where a node listens and how it dials.
pub trait Net: Send + Sync + fmt::Debug + 'static {
    /// Binds a listener at `addr`.
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn NetListener>>>;
    /// Opens a connection to `addr` (`host:port`).
    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<NetStream>>;
}

/// A bound listener. `accept` takes an `Arc` so that the future it returns owns what
/// it needs: tonic's incoming stream and axum's listener poll it from a struct that
/// cannot borrow from itself.
pub trait NetListener: Send + Sync + 'static {
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The next connection.
    fn accept(self: Arc<Self>) -> BoxFuture<'static, io::Result<(NetStream, SocketAddr)>>;
}

/// A listener's connections, as tonic's `serve_with_incoming` takes them (a stream)
/// and as `axum::serve` takes them (its `Listener`).
pub struct Incoming {
    listener: Arc<dyn NetListener>,
    next: Option<BoxFuture<'static, io::Result<(NetStream, SocketAddr)>>>,
}

impl Incoming {
    /// The connections of `listener`.
    pub fn new(listener: Arc<dyn NetListener>) -> Self {
        Incoming {
            listener,
            next: None,
        }
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<NetStream>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let l = self.listener.clone();
        let fut = self.next.get_or_insert_with(|| l.accept());
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.next = None;
                Poll::Ready(Some(r.map(|(s, _)| s)))
            }
        }
    }
}

impl axum::serve::Listener for Incoming {
    type Io = NetStream;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (NetStream, SocketAddr) {
        loop {
            match self.listener.clone().accept().await {
                Ok(c) => return c,
                Err(e) => {
                    // As axum's own TCP listener does: an accept error (out of file
                    // descriptors, a reset before accept) is not the server's end.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The file operations a data directory needs. Paths are absolute or relative to the
/// process's working directory, as `--data-dir` gives them.
pub trait Disk: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock that keeps a second process off `dir` for as long as
    /// the returned guard lives; the error is the message for the operator.
    fn lock(&self, dir: &Path) -> Result<Box<dyn fmt::Debug + Send + Sync>, String>;
    /// Reads a whole file.
    fn read_to_string(&self, file: &Path) -> io::Result<String>;
    /// Creates (or truncates) `file` and writes `bytes`; with `sync`, fsyncs it.
    fn write(&self, file: &Path, bytes: &[u8], sync: bool) -> io::Result<()>;
    /// Renames `from` to `to`, replacing it.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Fsyncs the directory `dir` (its entries: a rename in it becomes durable).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The OS's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

impl Disk for OsDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn fmt::Debug + Send + Sync>, String> {
        use std::io::Write;
        let lock_path = path.join("lock");
        let lock = std::fs::OpenOptions::new()
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
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                return Err(format!(
                    "--data-dir {}: already in use by another ebbtide process ({}); \
                     each node needs its own data directory",
                    path.display(),
                    holder.trim()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("--data-dir {}: cannot lock: {e}", path.display()))
            }
        }
        // Name the holder for whoever finds the directory locked.
        let _ = lock.set_len(0);
        let _ = (&lock).write_all(format!("pid {}\n", std::process::id()).as_bytes());
        Ok(Box::new(lock))
    }

    fn read_to_string(&self, file: &Path) -> io::Result<String> {
        std::fs::read_to_string(file)
    }

    fn write(&self, file: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(file)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

/// What becomes of one message the transport is about to put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Sent now, in its batch.
    Send,
    /// Lost.
    Drop,
    /// Sent twice.
    Duplicate,
    /// Sent on its own after this long (so after messages queued later).
    Delay(Duration),
}

/// The fault layer between the transport and the wire (see the module's docs).
pub trait WireFaults: Send + Sync + fmt::Debug + 'static {
    /// The fate of each message of a batch from `from` to `to`; `kinds` are the
    /// messages' metrics labels (`add_work`, `heartbeat`, ...). Returns one fate per
    /// message.
    fn plan(&self, from: &str, to: &str, kinds: &[&'static str]) -> Vec<Fate>;
    /// The messages of `kinds` planned by `plan` have left (their call returned or
    /// failed): they are no longer in flight in this layer.
    fn done(&self, _from: &str, _to: &str, _kinds: &[&'static str]) {}
}

/// Observes a node agent's real state: called after every core step, before its
/// outputs are applied, so that an observer that judges the workload hooks the
/// outputs then run (a start on a Stopping node) sees the liveness they run under.
pub trait AgentProbe: Send + Sync + fmt::Debug + 'static {
    /// Node `node`'s incarnation `epoch` is now `liveness`.
    fn stepped(&self, node: &str, epoch: ebbtide_model::Epoch, liveness: ebbtide_model::Liveness);
}
