//! Deterministic simulator for swimring.
