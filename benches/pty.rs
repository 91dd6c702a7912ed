//! PTY proxy costs, measured end to end through a real terminal:
//! - throughput: 100 MB of runspace output through `jitsh shell` (recording on) vs the same
//!   runspace under util-linux `script -q -c ... /dev/null`, in the same run;
//! - keystroke echo latency at the prompt (write a byte, see it echoed), jitsh vs `script`;
//! - start-to-first-prompt, `jitsh shell` vs the bare runspace.
//!
//! Run: `cargo bench --bench pty` (`JITSH_BENCH_MB` changes the output size).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness: a failed step ends the run"
)]

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");
/// The simulated runspace as jitsh's hidden subcommand (feature `demo-runspace`): the
/// `jitsh-exsim` binary belongs to another package, so this package's benches cannot name it.
const EXSIM: [&str; 2] = [JITSH, "exsim"];
const PROMPT: &[u8] = b"PS C:\\> ";

const POLICY: &str = r#"
[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]
"#;

struct Term {
    writer: Box<dyn Write + Send>,
    rx: Receiver<Vec<u8>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Term {
    fn spawn(argv: &[String], dir: &Path) -> Term {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 50,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.cwd(dir);
        cmd.env("JITSH_EXSIM_STATE", dir.join("state.json"));
        cmd.env("TERM", "xterm");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Term {
            writer,
            rx,
            child,
            _master: pair.master,
        }
    }

    fn send(&mut self, b: &[u8]) {
        self.writer.write_all(b).unwrap();
        self.writer.flush().unwrap();
    }

    /// Read until the output so far ends with `tail` (looking only at the last bytes); returns
    /// the number of bytes read.
    fn until_tail(&self, tail: &[u8], timeout: Duration) -> usize {
        self.until_tail_after(tail, 0, timeout)
    }

    /// Same, but only once at least `min` bytes have arrived (the editor redraws the prompt as
    /// the command is typed).
    fn until_tail_after(&self, tail: &[u8], min: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut total = 0;
        let mut last: Vec<u8> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = self.rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "timed out; last bytes: {:?}",
                    String::from_utf8_lossy(&last)
                )
            });
            total += chunk.len();
            last.extend_from_slice(&chunk);
            if last.len() > 4096 {
                last.drain(..last.len() - 4096);
            }
            if total >= min && contains(&last, tail) {
                return total;
            }
        }
    }

    fn until_byte(&self, b: u8) {
        loop {
            let chunk = self.rx.recv_timeout(Duration::from_secs(5)).unwrap();
            if chunk.contains(&b) {
                return;
            }
        }
    }

    fn drain(&self) {
        while self.rx.recv_timeout(Duration::from_millis(100)).is_ok() {}
    }

    fn end(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn jitsh_argv(dir: &Path) -> Vec<String> {
    vec![
        JITSH.into(),
        "shell".into(),
        "--policies".into(),
        dir.join("policies").display().to_string(),
        "--user".into(),
        "bench".into(),
        "--record".into(),
        dir.join("rec").display().to_string(),
        "--".into(),
        EXSIM[0].into(),
        EXSIM[1].into(),
    ]
}

fn script_argv() -> Vec<String> {
    vec![
        "script".into(),
        "-q".into(),
        "-c".into(),
        EXSIM.join(" "),
        "/dev/null".into(),
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn first_prompt(argv: &[String], dir: &Path, runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let t = Term::spawn(argv, dir);
        t.until_tail(PROMPT, Duration::from_secs(30));
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        t.end();
    }
    median(&mut times)
}

fn throughput(argv: &[String], dir: &Path, mb: u64) -> f64 {
    let mut t = Term::spawn(argv, dir);
    t.until_tail(PROMPT, Duration::from_secs(30));
    t.drain();
    let t0 = Instant::now();
    t.send(format!("Get-LargeOutput -Megabytes {mb}\r").as_bytes());
    let size = usize::try_from(mb * 1024 * 1024).unwrap();
    let bytes = t.until_tail_after(PROMPT, size, Duration::from_secs(600));
    let secs = t0.elapsed().as_secs_f64();
    t.end();
    assert!(
        bytes as u64 >= mb * 1024 * 1024,
        "only {bytes} bytes arrived"
    );
    bytes as f64 / secs / 1e6
}

fn echo_latency(argv: &[String], dir: &Path, n: usize) -> (f64, f64) {
    let mut t = Term::spawn(argv, dir);
    t.until_tail(PROMPT, Duration::from_secs(30));
    t.drain();
    let mut times = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        t.send(b"a");
        t.until_byte(b'a');
        times.push(t0.elapsed().as_secs_f64() * 1e6);
        t.send(b"\x7f");
        t.drain_quick();
    }
    t.end();
    let med = median(&mut times);
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    (med, p99)
}

impl Term {
    fn drain_quick(&self) {
        while self.rx.recv_timeout(Duration::from_millis(5)).is_ok() {}
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let mb: u64 = std::env::var("JITSH_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/bench.toml"), POLICY).unwrap();
    let have_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok();
    let jitsh = jitsh_argv(dir.path());
    let script = script_argv();
    let bare: Vec<String> = EXSIM.iter().map(|a| a.to_string()).collect();

    println!("pty bench: {mb} MB of output, 2-core shared machine, same run for both sides");
    let p_bare = first_prompt(&bare, dir.path(), 5);
    let p_jitsh = first_prompt(&jitsh, dir.path(), 5);
    println!(
        "start to first prompt (median of 5): bare runspace {p_bare:.1} ms, jitsh shell {p_jitsh:.1} ms (+{:.1} ms)",
        p_jitsh - p_bare
    );

    let (l_jitsh, l_jitsh99) = echo_latency(&jitsh, dir.path(), 200);
    if have_script {
        let (l_script, l_script99) = echo_latency(&script, dir.path(), 200);
        println!(
            "keystroke echo (200 keys): jitsh median {l_jitsh:.0} us (p99 {l_jitsh99:.0}), script median {l_script:.0} us (p99 {l_script99:.0}); added {:.0} us",
            l_jitsh - l_script
        );
    } else {
        println!(
            "keystroke echo: jitsh median {l_jitsh:.0} us (p99 {l_jitsh99:.0}); script not found"
        );
    }

    // Alternate the sides so background load on a shared machine hits both alike.
    let rounds = 3;
    let t_bare = throughput(&bare, dir.path(), mb);
    println!("throughput: bare runspace {t_bare:.1} MB/s");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let t_jitsh = throughput(&jitsh, dir.path(), mb);
        if have_script {
            let t_script = throughput(&script, dir.path(), mb);
            let ratio = t_jitsh / t_script;
            ratios.push(ratio);
            println!(
                "throughput round {round}: jitsh (recording) {t_jitsh:.1} MB/s, script {t_script:.1} MB/s, jitsh/script = {ratio:.2}"
            );
        } else {
            println!(
                "throughput round {round}: jitsh (recording) {t_jitsh:.1} MB/s; script not found"
            );
        }
    }
    if !ratios.is_empty() {
        println!(
            "throughput jitsh/script, median of {rounds}: {:.2}",
            median(&mut ratios)
        );
    }
}
