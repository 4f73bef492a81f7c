#!/usr/bin/env python3
"""Services benchmark (a report, not a test), run by `just bench`:
  - spawn rate: 100 trivial services from boot to all Ready (keel's own boot-clock stamps);
  - PID 1 CPU time during a crash loop (BENCH_CRASH_SECS, default 60 s);
  - PID 1 VmRSS with 10 running services.
keel runs as PID 1 of a PID namespace (unshare), each with a generated service table."""
import os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = "x86_64-unknown-linux-musl"


def build(name, toml):
    conf = os.path.join(ROOT, "target", "bench", f"{name}.toml")
    os.makedirs(os.path.dirname(conf), exist_ok=True)
    with open(conf, "w") as f:
        f.write(toml)
    target_dir = os.path.join(ROOT, "target", "bench", name)
    env = dict(os.environ, KEEL_CONFIG=conf)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target-dir", target_dir], cwd=ROOT, env=env, check=True)
    return os.path.join(target_dir, TARGET, "release", "keel")


def sleepers(n, prefix):
    return "".join(f'[service.{prefix}{i}]\nargv = ["/bin/sleep", "1000"]\nlog_ring = 256\necho = false\n\n' for i in range(n))


class Pid1:
    def __init__(self, binary):
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", binary],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.log = ""
        deadline = time.time() + 5
        self.pid = None
        while self.pid is None and time.time() < deadline:
            kids = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
            self.pid = int(kids[0]) if kids else None
            time.sleep(0.005)

    def read(self):
        try:
            self.log += self.proc.stdout.read() or ""
        except TypeError:
            pass
        return self.log

    def wait_for(self, pattern, count=1, timeout=30):
        deadline = time.time() + timeout
        while len(re.findall(pattern, self.read())) < count:
            if time.time() > deadline:
                sys.exit(f"timed out waiting for {count} x {pattern!r}")
            time.sleep(0.01)

    def stamps(self, pattern):
        return [float(m) for m in re.findall(r"\[\s*([0-9.]+)\] keel: " + pattern, self.read())]

    def status(self, field):
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()

    def cpu_seconds(self):
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        os.kill(self.pid, 12)  # SIGUSR2: poweroff
        self.proc.wait(timeout=15)


def spawn_rate():
    pid1 = Pid1(build("spawn100", sleepers(100, "s")))
    pid1.wait_for(r"svc s\d+: waiting -> ready", count=100)
    ready = pid1.stamps(r"ready\n")[0]
    last = max(pid1.stamps(r"svc s\d+: waiting -> ready"))
    pid1.stop()
    ms = (last - ready) * 1000
    print(f"spawn rate: 100 services to Ready in {ms:.1f} ms ({100 / (last - ready):.0f} services/s)")


def crash_loop(seconds):
    toml = '[service.crasher]\nargv = ["/bin/false"]\nbackoff_initial = "100ms"\nbackoff_max = "1s"\nmax_failures = 1000\n'
    pid1 = Pid1(build("crashloop", toml))
    pid1.wait_for(r"svc crasher: started")
    cpu0, t0 = pid1.cpu_seconds(), time.time()
    time.sleep(seconds)
    cpu1, t1 = pid1.cpu_seconds(), time.time()
    starts = len(pid1.stamps(r"svc crasher: started"))
    pid1.stop()
    print(f"crash loop: {starts} restarts in {t1 - t0:.0f} s (backoff 100 ms doubling to a 1 s cap); "
          f"PID 1 CPU {1000 * (cpu1 - cpu0):.0f} ms ({100 * (cpu1 - cpu0) / (t1 - t0):.2f} %)")


def rss_with_ten():
    pid1 = Pid1(build("ten", sleepers(10, "t")))
    pid1.wait_for(r"svc t\d+: waiting -> ready", count=10)
    time.sleep(0.2)
    rss = pid1.status("VmRSS")
    pid1.stop()
    print(f"VmRSS of PID 1 with 10 running services: {rss}")


if __name__ == "__main__":
    spawn_rate()
    rss_with_ten()
    crash_loop(int(os.environ.get("BENCH_CRASH_SECS", "60")))
