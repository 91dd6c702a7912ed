//! token (being built).
