fn main() -> std::process::ExitCode {
    jitsh::exsim::main()
}
