//! service (being built).
