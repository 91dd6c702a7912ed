//! audit (being built).
