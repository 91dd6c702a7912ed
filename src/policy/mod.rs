//! policy (being built).
