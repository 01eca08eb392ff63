"""Shared by ci/join-test and ci/k3s-test: build the CI profile's images, read the files a
node carries out of its image's boot partition, and a private test network of network
namespaces (one per node, veths on a bridge that lives in its own namespace, so no
address is ever added to the host's interfaces). Nothing here sends traffic outside it.
"""
import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


def binary():
    """The debug bakery-image, built if needed (CI compiles the crate once, for tests too)."""
    run(["cargo", "build", "--locked", "-q"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "bakery-image")


def build(profile, out, reuse=False):
    """Build every node's image of `profile` into `out`, offline (or, with `reuse`, use
    the images already there: for re-running a test quickly); returns the plan."""
    b = binary()
    if not reuse:
        r = run([b, "build", profile, "--offline", "--out", out], check=False, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"bakery-image build failed:\n{r.stderr[-3000:]}")
    return json.loads(run([b, "plan", profile, "--json"], capture_output=True).stdout)


def boot_files(out, node, dest):
    """Copy `bakery/` from the node's image's boot partition (FAT, read with mtools) to
    dest/bakery; returns that directory. The image is decompressed into a temp file."""
    part = node["boot_partition"]
    os.makedirs(dest, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest, suffix=".img") as raw:
        # Only the bytes up to the end of p1 are needed.
        xz = subprocess.Popen(["xz", "-dc", os.path.join(out, node["output"])], stdout=subprocess.PIPE)
        run(["head", "-c", str(part["start"] + part["size"])], stdin=xz.stdout, stdout=raw)
        xz.stdout.close()
        xz.wait()
        raw.flush()
        img = f"{raw.name}@@{part['start']}"
        run(["mcopy", "-s", "-n", "-i", img, "::bakery", dest])
    return os.path.join(dest, "bakery")


class Net:
    """Network namespaces `<prefix>-<name>` on one bridge in `<prefix>-hub`."""

    def __init__(self, prefix, prefix_len):
        self.prefix = prefix
        self.plen = prefix_len
        self.nodes = []
        self.hub = f"{prefix}-hub"
        self.cleanup()
        run(["ip", "netns", "add", self.hub])
        self.hub_ip(["link", "add", "br0", "type", "bridge"])
        self.hub_ip(["link", "set", "br0", "up"])

    def hub_ip(self, args):
        run(["ip", "-n", self.hub] + args)

    def ns(self, name):
        return f"{self.prefix}-{name}"

    def add(self, name, address):
        """A namespace for node `name` with `address` on eth0 (and loopback up)."""
        ns = self.ns(name)
        run(["ip", "netns", "add", ns])
        i = len(self.nodes)
        host_end = f"{self.prefix[:6]}h{i}"
        run(["ip", "link", "add", host_end, "netns", self.hub, "type", "veth", "peer", "name", "eth0", "netns", ns])
        self.hub_ip(["link", "set", host_end, "master", "br0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{address}/{self.plen}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        self.nodes.append(name)
        return ns

    def cut(self, name, up=False):
        """Unplug (or plug back) a node's cable: its eth0 goes down."""
        run(["ip", "-n", self.ns(name), "link", "set", "eth0", "up" if up else "down"])

    def cleanup(self):
        have = run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for ns in have:
            if ns.startswith(self.prefix + "-"):
                run(["ip", "netns", "del", ns], check=False)


def exec_in(ns, cmd):
    return ["ip", "netns", "exec", ns] + cmd


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


class Proc:
    """A process in a namespace, its output collected (and kept in a log file)."""

    def __init__(self, name, cmd, env, logf, t0):
        self.t0 = t0
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.logf = logf
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            t = raw.decode("utf-8", "replace").rstrip("\n")
            self.logf.write(f"{time.monotonic() - self.t0:7.2f} {self.name}: {t}\n")
            self.logf.flush()
            with self.cond:
                self.lines.append(t)
                self.cond.notify_all()

    def wait_for(self, pattern, timeout):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for t in self.lines:
                    m = rx.search(t)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    tail = "\n    ".join(self.lines[-12:])
                    raise AssertionError(f"{self.name}: no /{pattern}/ within {timeout}s:\n    {tail}")
                self.cond.wait(min(left, 0.5))

    def has(self, pattern):
        with self.cond:
            return any(re.search(pattern, t) for t in self.lines)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()
