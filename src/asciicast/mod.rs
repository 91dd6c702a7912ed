//! asciicast (being built).
