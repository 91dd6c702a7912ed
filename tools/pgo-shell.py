"""One gated shell session for the profile tools/pgo.sh records.

    python3 tools/pgo-shell.py JITSH EXSIM WORKDIR

Runs `JITSH shell` over the simulated runspace EXSIM in a pseudo-terminal, as an admin would:
20 MB of output (the PTY reader, the prompt scanner, the recording), a few lines typed key by
key (the line editor and the gate), keys passed through to a running command, then `exit`. Left
out of the profile, that path counts as never run and is optimised for size. Exits non-zero,
saying why, when the session does not go as expected.
"""

import os
import pty
import select
import sys
import time

PROMPT = b"PS C:\\> "
POLICY = """[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*", "Read-Host"]
"""


SESSION = None


def fail(why):
    print(f"pgo-shell: {why}", file=sys.stderr)
    if SESSION is not None:
        # The shell and its demo service go with it: nothing of the training stays behind.
        try:
            os.kill(SESSION.pid, 9)
            os.waitpid(SESSION.pid, 0)
        except OSError:
            pass
    sys.exit(1)


class Session:
    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.seen = b""

    def read_until(self, tail, at_least=0, timeout=60.0):
        """Read until `tail` is in the output read after at least `at_least` bytes (the line
        editor draws its prompt and then moves the cursor, so it need not be the last bytes)."""
        got = 0
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                fail(f"no {tail!r} within {timeout:.0f} s (last output: {self.seen[-200:]!r})")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                fail(f"the session ended before {tail!r} (last output: {self.seen[-200:]!r})")
            got += len(chunk)
            self.seen = (self.seen + chunk)[-4096:]
            if got >= at_least and tail in self.seen[-(len(chunk) + len(tail)) :]:
                self.seen = b""
                return

    def type(self, text):
        for ch in text.encode():
            os.write(self.fd, bytes([ch]))
            time.sleep(0.002)

    def wait(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    os.read(self.fd, 65536)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        fail(f"the shell did not exit within {timeout:.0f} s")


def main():
    if len(sys.argv) != 4:
        fail("usage: pgo-shell.py JITSH EXSIM WORKDIR")
    jitsh, exsim, work = sys.argv[1:]
    work = os.path.join(os.path.abspath(work), "shell")
    policies = os.path.join(work, "policies")
    os.makedirs(policies, exist_ok=True)
    with open(os.path.join(policies, "train.toml"), "w", encoding="utf-8") as f:
        f.write(POLICY)
    env = dict(os.environ)
    env.update(
        {
            "HOME": os.path.join(work, "home"),
            "JITSH_STATE": os.path.join(work, "state"),
            "TERM": "xterm-256color",
        }
    )
    argv = [
        jitsh,
        "shell",
        "--policies",
        policies,
        "--user",
        "alice",
        "--record",
        os.path.join(work, "recordings"),
        "--",
        exsim,
    ]
    global SESSION
    s = SESSION = Session(argv, env)
    s.read_until(PROMPT)
    s.type("Get-LargeOutput -Megabytes 20\r")
    s.read_until(PROMPT, at_least=20 * 1024 * 1024, timeout=300)
    for line in ("Get-Mailbox -Identity alice", "Get-Mailbox | Get-MailboxStatistics"):
        s.type(line + "\r")
        s.read_until(PROMPT)
    # A denied line: the gate's refusal and the prompt again.
    s.type("Set-Mailbox -Identity alice -ForwardingSmtpAddress x@example.com\r")
    s.read_until(PROMPT)
    # Keys passed through while a command reads them.
    s.type("Read-Host 'value'\r")
    s.read_until(b"value: ")
    s.type("some typed text\r")
    s.read_until(PROMPT)
    s.type("exit\r")
    code = s.wait()
    if code != 0:
        fail(f"the shell exited with status {code}")


if __name__ == "__main__":
    main()
