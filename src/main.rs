fn main() -> std::process::ExitCode {
    jitsh::cli::main()
}
