//! chaos-tests: the load generator and benchmarks (`berth-bench`), built on `berth dev`'s launch machinery.
//! The fault-injection harness and history checkers come later.

pub mod measure;
