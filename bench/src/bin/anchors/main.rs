//! `anchors`: jitsh side by side with the tools administrators would pick instead (see
//! `common.rs`), under the allocator the shipped `jitsh` uses (`src/main.rs`), so the per-line,
//! load and memory rows time and weigh jitsh as it ships.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

fn main() {
    common::main();
}
