//! Helpers shared by integration tests. Each test file that needs them says `mod support;`.

pub mod etcd;
pub mod proxy;
