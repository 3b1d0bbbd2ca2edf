//! Helpers shared by integration tests. Each test file that needs them says `mod support;`.
#![allow(dead_code)] // each test file uses its own part of the harness

pub mod etcd;
pub mod nodes;
pub mod proxy;
