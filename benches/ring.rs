//! Placement benchmarks (filled in with the ring module).
fn main() {}
