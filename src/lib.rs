//! swimring: decentralised membership and work placement.

pub mod ring;
