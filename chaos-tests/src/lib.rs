//! chaos-tests: the load generator and benchmarks (`berth-bench`) built on `berth dev`'s launch machinery, and
//! the fleet simulator (`berth-fleet`: many agents in one process). The fault-injection harness and history
//! checkers come later.

pub mod fleet;
pub mod measure;
