//! shell (being built).
