//! The k3s stand-in (`ci/k3s-standin/k3s`): started for real with the host's perl on
//! loopback ports, and inside the amd64/arm64 base root filesystems from ci/fetch-parts
//! (chroot, root only). Checks the log interface of ci/README.md: argv and config files
//! logged with `k3s-standin:` lines, tokens never shown, `GET /ping` answered `pong`,
//! `joined <url> ok` / `join <url> failed`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "K10-test-token-value-5f3c";
const AGENT_TOKEN: &str = "agent-token-value-9a8b";
const FLAG_TOKEN: &str = "flag-token-value-77e1";

fn standin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k3s-standin/k3s")
}

/// A running stand-in; its stdout+stderr lines are collected; killed on drop.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the stand-in");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Running { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until some line contains `needle`; panics with the whole output otherwise.
    fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no line containing {needle:?} within {timeout:?}; output:\n{}",
            self.output()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn request(port: u16, data: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the stand-in");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(data).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the reply");
    reply
}

/// Writes config.yaml and config.yaml.d/ like the node runtime installs them.
fn write_config(dir: &Path, node_yaml: &str) -> PathBuf {
    let d = dir.join("config.yaml.d");
    std::fs::create_dir_all(&d).unwrap();
    let main = dir.join("config.yaml");
    std::fs::write(&main, format!("# rendered by bakery\ntoken: \"{TOKEN}\"\n")).unwrap();
    std::fs::write(
        d.join("10-cluster.yaml"),
        format!(
            "cluster-cidr: 10.42.0.0/16\nagent-token: {AGENT_TOKEN}\ntls-san:\n  - 10.99.0.100\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join("20-node.yaml"), node_yaml).unwrap();
    std::fs::write(d.join("99-ignored.txt"), "server: https://ignored:1\n").unwrap();
    main
}

fn assert_no_secrets(out: &str) {
    for secret in [TOKEN, AGENT_TOKEN, FLAG_TOKEN] {
        assert!(!out.contains(secret), "secret {secret:?} logged:\n{out}");
    }
}

#[test]
fn server_answers_ping_and_a_joiner_joins() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let server_cfg = write_config(
        &tmp.path().join("s1"),
        "node-name: ci-s1\ncluster-init: true\n",
    );
    let mut cmd = Command::new(standin());
    cmd.args(["server", "--config"]).arg(&server_cfg);
    cmd.args(["--token", FLAG_TOKEN, "--disable=traefik"]);
    cmd.env("K3S_STANDIN_PORT", port.to_string());
    cmd.env("K3S_STANDIN_DATA", tmp.path().join("s1/data"));
    let server = Running::start(cmd);
    server.wait_for(
        &format!("k3s-standin: listening on 0.0.0.0:{port}"),
        Duration::from_secs(20),
    );

    let pong = request(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(pong.starts_with("HTTP/1.0 200 OK\r\n"), "{pong}");
    assert!(pong.ends_with("\r\n\r\npong\n"), "{pong}");
    let other = request(port, b"GET /version HTTP/1.1\r\n\r\n");
    assert!(other.starts_with("HTTP/1.0 404"), "{other}");
    assert_eq!(request(port, b"hello\n"), "k3s-standin\n");
    // A bare TCP probe (what the runtime does on first boot) must not disturb it.
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert!(request(port, b"GET /ping HTTP/1.0\r\n\r\n").contains("pong"));

    let url = format!("https://127.0.0.1:{port}");
    let joiner_cfg = write_config(
        &tmp.path().join("a1"),
        &format!("server: {url}\nnode-name: ci-a1\n"),
    );
    let mut cmd = Command::new(standin());
    cmd.arg("agent").env("K3S_CONFIG_FILE", &joiner_cfg);
    cmd.env("K3S_STANDIN_DATA", tmp.path().join("a1/data"));
    let joiner = Running::start(cmd);
    joiner.wait_for(
        &format!("k3s-standin: joined {url} ok"),
        Duration::from_secs(20),
    );
    server.wait_for(
        "k3s-standin: connection from 127.0.0.1:",
        Duration::from_secs(5),
    );

    let s = server.output();
    let j = joiner.output();
    assert!(s.contains("k3s-standin: argv server --config "), "{s}");
    assert!(s.contains("--token <redacted> --disable=traefik"), "{s}");
    for f in [
        "config.yaml",
        "config.yaml.d/10-cluster.yaml",
        "config.yaml.d/20-node.yaml",
    ] {
        assert!(
            s.contains(&format!("s1/{f}\n")) || s.ends_with(&format!("s1/{f}")),
            "{f}: {s}"
        );
    }
    assert!(!s.contains("99-ignored"), "{s}");
    assert!(s.contains(": token: <redacted>"), "{s}");
    assert!(s.contains(": agent-token: <redacted>"), "{s}");
    assert!(
        s.contains("k3s-standin: mode server, server none, cluster-init"),
        "{s}"
    );
    assert!(
        j.contains(&format!("k3s-standin: mode agent, server {url}")),
        "{j}"
    );
    // config.yaml first, then the drop-ins in name order.
    let order: Vec<_> = ["s1/config.yaml\n", "10-cluster.yaml\n", "20-node.yaml\n"]
        .iter()
        .map(|f| (s.clone() + "\n").find(f).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{s}");
    assert_no_secrets(&s);
    assert_no_secrets(&j);
    // Server mode keeps running.
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "server exited:\n{}",
        server.output()
    );
}

#[test]
fn join_to_a_dead_server_fails_after_the_timeout() {
    let port = free_port(); // nothing listens there
    let url = format!("https://127.0.0.1:{port}");
    let mut cmd = Command::new(standin());
    cmd.args([
        "agent",
        "--config",
        "/nonexistent/config.yaml",
        "--server",
        &url,
    ]);
    cmd.env("K3S_STANDIN_JOIN_TIMEOUT", "3");
    let tmp = tempfile::tempdir().unwrap();
    cmd.env("K3S_STANDIN_DATA", tmp.path());
    let joiner = Running::start(cmd);
    joiner.wait_for(
        &format!("k3s-standin: join {url} failed"),
        Duration::from_secs(20),
    );
    let out = joiner.output();
    assert!(
        out.contains("config /nonexistent/config.yaml: absent"),
        "{out}"
    );
    assert!(!out.contains("joined"), "{out}");
    let mut joiner = joiner;
    assert!(
        joiner.child.try_wait().unwrap().is_none(),
        "agent exited:\n{out}"
    );
}

/// Runs the stand-in inside a base rootfs from ci/fetch-parts with chroot. Needs root
/// and the part; in CI both must be there, locally the test is skipped with a reason.
fn in_rootfs(arch: &str) {
    let tar = crate::need::parts_root().join(format!("{arch}/rootfs.tar"));
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let missing = if !is_root {
        Some("needs root for chroot".to_string())
    } else if !tar.exists() {
        Some(format!("{} missing (run ci/fetch-parts)", tar.display()))
    } else {
        None
    };
    if let Some(why) = missing {
        crate::need::skip(format!("stand-in in the {arch} rootfs: {why}"));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-xf")
        .arg(&tar)
        .status()
        .unwrap();
    assert!(st.success(), "tar -xf {}", tar.display());
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(standin(), bin.join("k3s")).unwrap();
    write_config(
        &root.join("etc/rancher/k3s"),
        "node-name: ci-s1\ncluster-init: true\n",
    );

    let port = free_port();
    let mut cmd = Command::new("chroot");
    cmd.arg(&root)
        .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    cmd.arg(format!("K3S_STANDIN_PORT={port}"))
        .args(["/usr/local/bin/k3s", "server"]);
    let server = Running::start(cmd);
    server.wait_for(
        &format!("listening on 0.0.0.0:{port}"),
        Duration::from_secs(60),
    );
    assert!(request(port, b"GET /ping HTTP/1.0\r\n\r\n").ends_with("pong\n"));
    let out = server.output();
    assert!(
        out.contains("k3s-standin: config /etc/rancher/k3s/config.yaml\n"),
        "{out}"
    );
    assert!(
        out.contains("/etc/rancher/k3s/config.yaml.d/20-node.yaml: node-name: ci-s1"),
        "{out}"
    );
    assert_no_secrets(&out);
    assert!(
        !out.contains("Can't locate"),
        "perl module missing in the rootfs:\n{out}"
    );
}

#[test]
fn runs_in_the_amd64_rootfs() {
    in_rootfs("amd64");
}

#[test]
fn runs_in_the_arm64_rootfs_under_qemu_user() {
    if std::env::consts::ARCH != "aarch64"
        && !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
    {
        crate::need::skip("no qemu-aarch64 binfmt handler (ci/fetch-parts enables it)");
        return;
    }
    in_rootfs("arm64");
}

/// The join states the node runtime relies on: a joiner checks the CA on /cacerts against
/// its token's `K10<hash>`, and finishes only once the server it joins is ready; a server
/// that is still joining serves the CA but is not ready itself.
#[test]
fn joiners_check_the_ca_hash_and_wait_for_a_ready_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("s1/data");
    std::fs::create_dir_all(data.join("server/tls")).unwrap();
    let ca = tmp.path().join("ca.crt");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=test-ca", "-keyout"])
        .arg(tmp.path().join("ca.key"))
        .arg("-out")
        .arg(&ca)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::copy(&ca, data.join("server/tls/server-ca.crt")).unwrap();
    let hash = Command::new("sha256sum").arg(&ca).output().unwrap().stdout;
    let hash = String::from_utf8(hash).unwrap()[..64].to_owned();
    let token = |h: &str, name: &str| {
        let f = tmp.path().join(name);
        std::fs::write(&f, format!("K10{h}::server:{TOKEN}\n")).unwrap();
        f
    };
    let good = token(&hash, "good-token");
    let bad = token(&"0".repeat(64), "bad-token");

    let port = free_port();
    let s1_cfg = write_config(&tmp.path().join("s1"), "cluster-init: true\n");
    let mut cmd = Command::new(standin());
    cmd.args(["server", "--config"]).arg(&s1_cfg);
    cmd.env("K3S_STANDIN_PORT", port.to_string())
        .env("K3S_STANDIN_DATA", &data);
    let s1 = Running::start(cmd);
    s1.wait_for("k3s-standin: ready (cluster-init)", Duration::from_secs(20));
    s1.wait_for("listening on", Duration::from_secs(20));
    let url = format!("https://127.0.0.1:{port}");

    let joiner = |name: &str, tok: &Path, mode: &str, url: &str, p: Option<u16>| {
        // Only token-file (as the images do): a `token:` would win over it, as in K3s.
        let cfg = tmp.path().join(name).join("config.yaml");
        std::fs::create_dir_all(tmp.path().join(name)).unwrap();
        std::fs::write(
            &cfg,
            format!("server: {url}\ntoken-file: {}\n", tok.display()),
        )
        .unwrap();
        let mut cmd = Command::new(standin());
        cmd.args([mode, "--config"]).arg(&cfg);
        cmd.env("K3S_STANDIN_DATA", tmp.path().join(name).join("data"))
            .env("K3S_STANDIN_JOIN_TIMEOUT", "6");
        if let Some(p) = p {
            cmd.env("K3S_STANDIN_PORT", p.to_string());
        }
        Running::start(cmd)
    };
    let ok = joiner("a1", &good, "agent", &url, None);
    ok.wait_for(&format!("joined {url} ok"), Duration::from_secs(30));
    assert!(tmp.path().join("a1/data/agent").is_dir());
    let refused = joiner("a2", &bad, "agent", &url, None);
    refused.wait_for(
        "does not match the token's CA hash",
        Duration::from_secs(30),
    );
    refused.wait_for(&format!("join {url} failed"), Duration::from_secs(30));
    assert!(!tmp.path().join("a2/data/agent").exists());

    // A server still joining (its URL is dead) serves our CA but is not ready: a server
    // joining it waits and does not join.
    let dead = format!("https://127.0.0.1:{}", free_port());
    let p2 = free_port();
    std::fs::create_dir_all(tmp.path().join("s2/data/server/tls")).unwrap();
    std::fs::copy(&ca, tmp.path().join("s2/data/server/tls/server-ca.crt")).unwrap();
    let s2 = joiner("s2", &good, "server", &dead, Some(p2));
    s2.wait_for("listening on", Duration::from_secs(20));
    let s2_url = format!("https://127.0.0.1:{p2}");
    // keepalived's track script (bakery-vip-check, run as on a node with the paths moved
    // into the test) passes for a member and fails for a server still joining, although
    // that one already answers TCP and /cacerts on its API port.
    let vip_check = |data: &Path, port: u16| -> bool {
        Command::new(crate::root().join("overlays/runtime/usr/lib/bakery/bakery-vip-check"))
            .env("BAKERY_API_PORT", port.to_string())
            .env("BAKERY_K3S_DATA", data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(vip_check(&data, port), "a member passes the VIP check");
    assert!(
        !vip_check(&tmp.path().join("s2/data"), p2),
        "a server still joining must not hold the VIP"
    );
    assert!(
        !vip_check(&data, free_port()),
        "a member whose API does not answer must not hold the VIP"
    );
    let s3 = joiner("s3", &good, "server", &s2_url, Some(free_port()));
    s3.wait_for("the server is not ready", Duration::from_secs(30));
    s3.wait_for(&format!("join {s2_url} failed"), Duration::from_secs(30));
    assert!(!tmp.path().join("s3/data/server/db/etcd").exists());
    drop(s2);
    let s2 = joiner("s2b", &good, "server", &url, Some(p2));
    s2.wait_for(&format!("joined {url} ok"), Duration::from_secs(30));
    assert!(tmp.path().join("s2b/data/server/db/etcd").is_dir());
    assert_no_secrets(&(ok.output() + &refused.output() + &s2.output()));
}
