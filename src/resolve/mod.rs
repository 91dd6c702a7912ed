//! resolve (being built).
