// A line's parse, resolution and decision allocate and free many short-lived nodes. Under glibc
// they came from free lists spread over a large policy set's heap, merged again whenever a
// request passed 1 KiB, and a line took 1.15x as long at 100,000 rules as at 10; mimalloc keeps
// them on a few pages per size class (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    jitsh::cli::main()
}
