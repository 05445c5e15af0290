//! berth-agent as a library: configuration, host facts, session backends and the link to the leader, so that
//! `berth-agent` and in-process test harnesses run the same code.

pub mod backend;
pub mod config;
pub mod facts;
pub mod link;
pub mod screenshot;
