//! syntax (being built).
