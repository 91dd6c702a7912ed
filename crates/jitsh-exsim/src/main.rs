fn main() -> std::process::ExitCode {
    jitsh_exsim::main()
}
