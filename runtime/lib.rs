//! ebbtide's runtime: the tokio/tonic shell around the protocol core in
//! `ebbtide-model`. It turns bytes and clock ticks into the core's inputs and the
//! core's outputs into bytes and timers; it holds no protocol decision of its own.
#![forbid(unsafe_code)]

pub mod client;
pub mod etcd_server;
pub mod http;
pub mod membership;
pub mod node;
pub mod tls;
pub mod trace_check;
pub mod wire;
