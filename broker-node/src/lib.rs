//! broker-node: the `berth` binary's library. Node wiring, configuration, dev mode (shared with the tests,
//! benchmarks and chaos harness), admin commands and a small REST client.

pub mod admin;
pub mod client;
pub mod config;
pub mod dev;
pub mod node;
