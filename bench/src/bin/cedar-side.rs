//! `cedar-side`: the same program as `anchors` under the system allocator, which a crate such as
//! cedar-policy gets by default. `anchors` runs Cedar's per-line side and its load in it, so the
//! anchor is Cedar as its users run it; jitsh's sides run in `anchors`, under the allocator the
//! shipped `jitsh` uses.

#[path = "anchors/common.rs"]
mod common;

fn main() {
    common::main();
}
