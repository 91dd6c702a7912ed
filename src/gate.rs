//! The gate's decision for one line (being built).
