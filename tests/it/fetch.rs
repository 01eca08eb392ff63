//! Fetching against a loopback HTTP server started by each test: verified downloads,
//! digest mismatches, retries, resumption with Range, offline mode, concurrent builds.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bakery_image::fetch::{self, FetchError, FetchOptions, Origin};
use bakery_image::plan::Artifact;
use bakery_image::profile::{Sha256, Source};
use bakery_image::progress::Quiet;
use sha2::Digest;

/// What the server does for one request (in order; then `Full` forever).
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Serve the body (honouring a Range request).
    Full,
    /// Answer with this status and no body.
    Status(u16),
    /// Announce the full length, send this many bytes, then close the connection.
    CutAfter(usize),
    /// Serve the body in four parts with this many milliseconds between them.
    Trickle(u64),
    /// Announce the full length, send this many bytes, go silent for this many
    /// milliseconds, then close the connection.
    Stall(usize, u64),
}

/// Request line and Range header of every request served.
type Log = Mutex<Vec<(String, Option<String>)>>;

/// A tiny HTTP/1.1 server on 127.0.0.1 serving one body at every path.
struct Server {
    port: u16,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(body: Vec<u8>, script: Vec<Act>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut script = script.into_iter();
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let act = script.next().unwrap_or(Act::Full);
                handle(conn, &body, act, &log2);
            }
        });
        Server {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }
    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut conn: TcpStream, body: &[u8], act: Act, log: &Log) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return; // the wake-up connection
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_owned());
        }
    }
    log.lock()
        .unwrap()
        .push((first.trim().to_owned(), range.clone()));
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= body.len());
    let (status, part) = match from {
        Some(n) => ("206 Partial Content", &body[n..]),
        None => ("200 OK", body),
    };
    let mut head = match act {
        Act::Status(code) => {
            format!("HTTP/1.1 {code} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        _ => format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            part.len()
        ),
    };
    if let (Some(n), Act::Full | Act::CutAfter(_) | Act::Trickle(_) | Act::Stall(..)) = (from, act)
    {
        head.push_str(&format!(
            "Content-Range: bytes {n}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        ));
    }
    if !matches!(act, Act::Status(_)) {
        head.push_str("\r\n");
    }
    let _ = conn.write_all(head.as_bytes());
    let send = match act {
        Act::Full => part,
        Act::Status(_) => &[][..],
        Act::CutAfter(n) => &part[..n.min(part.len())],
        Act::Trickle(ms) => {
            for chunk in part.chunks(part.len().div_ceil(4).max(1)) {
                let _ = conn.write_all(chunk);
                let _ = conn.flush();
                std::thread::sleep(Duration::from_millis(ms));
            }
            &[][..]
        }
        Act::Stall(n, ms) => {
            let _ = conn.write_all(&part[..n.min(part.len())]);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(ms));
            &[][..]
        }
    };
    let _ = conn.write_all(send);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 991) as u8).collect()
}

fn sha(b: &[u8]) -> Sha256 {
    Sha256::from_bytes(&sha2::Sha256::digest(b))
}

fn url_artifact(role: &str, url: String, sha256: Sha256) -> Artifact {
    Artifact {
        role: role.into(),
        source: Source::Url { url, sha256 },
    }
}

fn opts(cache: &Path) -> FetchOptions {
    let mut o = FetchOptions::new(cache);
    o.retry_delay = Duration::from_millis(20);
    o.timeout = Duration::from_secs(10);
    o
}

/// Every file under the cache's sha256 directory, by name.
fn cache_files(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("sha256"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn download_is_verified_cached_and_reused() {
    let data = body(300_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let a = [url_artifact("k3s", srv.url("k3s"), sha(&data))];
    let got = fetch::fetch_all(&a, &opts(&cache), &Quiet).unwrap();
    assert_eq!(got[0].origin, Origin::Downloaded);
    assert_eq!(got[0].path, cache.join("sha256").join(sha(&data).as_str()));
    assert_eq!(got[0].size, data.len() as u64);
    assert_eq!(std::fs::read(&got[0].path).unwrap(), data);
    assert_eq!(
        cache_files(&cache),
        [sha(&data).to_string()],
        "no partial left"
    );
    // Second run: from the cache, no request.
    let again = fetch::fetch_all(&a, &opts(&cache), &Quiet).unwrap();
    assert_eq!(again[0].origin, Origin::Cached);
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn digest_mismatch_names_both_digests_and_leaves_nothing() {
    let data = body(50_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let pinned = sha(b"something else");
    let url = srv.url("tampered");
    let err = fetch::fetch_all(
        &[url_artifact("rootfs", url.clone(), pinned.clone())],
        &opts(&cache),
        &Quiet,
    )
    .unwrap_err();
    match &err {
        FetchError::HashMismatch {
            url: u,
            expected,
            actual,
        } => {
            assert_eq!((u, expected, actual), (&url, &pinned, &sha(&data)));
        }
        e => panic!("expected HashMismatch, got {e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(pinned.as_str()) && msg.contains(sha(&data).as_str()) && msg.contains(&url),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
    assert!(err.is_user_error());
    assert!(
        cache_files(&cache).is_empty(),
        "left: {:?}",
        cache_files(&cache)
    );
    assert_eq!(srv.requests().len(), 1, "a mismatch is not retried");
}

#[test]
fn server_error_is_retried() {
    let data = body(10_000);
    let srv = Server::start(data.clone(), vec![Act::Status(500), Act::Status(503)]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let got = fetch::fetch_all(
        &[url_artifact("k3s", srv.url("k3s"), sha(&data))],
        &opts(&cache),
        &Quiet,
    )
    .unwrap();
    assert_eq!(got[0].origin, Origin::Downloaded);
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn retries_are_bounded_and_client_errors_are_not_retried() {
    let data = body(1000);
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(data.clone(), vec![Act::Status(500); 10]);
    let err = fetch::fetch_all(
        &[url_artifact("k3s", srv.url("k3s"), sha(&data))],
        &opts(&tmp.path().join("c1")),
        &Quiet,
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(srv.requests().len(), 4);

    let srv = Server::start(data.clone(), vec![Act::Status(404)]);
    let err = fetch::fetch_all(
        &[url_artifact("k3s", srv.url("gone"), sha(&data))],
        &opts(&tmp.path().join("c2")),
        &Quiet,
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn interrupted_transfer_resumes_with_range() {
    let data = body(400_000);
    let srv = Server::start(data.clone(), vec![Act::CutAfter(150_000)]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let got = fetch::fetch_all(
        &[url_artifact("rootfs", srv.url("rootfs.tar"), sha(&data))],
        &opts(&cache),
        &Quiet,
    )
    .unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), data);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].1, None);
    assert_eq!(reqs[1].1.as_deref(), Some("bytes=150000-"), "{reqs:?}");
}

#[test]
fn a_later_run_resumes_the_partial_of_an_earlier_one() {
    let data = body(200_000);
    let srv = Server::start(data.clone(), vec![Act::CutAfter(64_000)]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let a = [url_artifact("rootfs", srv.url("r"), sha(&data))];
    let mut once = opts(&cache);
    once.tries = 1;
    let err = fetch::fetch_all(&a, &once, &Quiet).unwrap_err();
    assert!(matches!(err, FetchError::Transport { .. }), "{err:?}");
    assert!(!err.is_user_error());
    let partial = cache.join("sha256").join(format!("{}.partial", sha(&data)));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 64_000);
    let got = fetch::fetch_all(&a, &opts(&cache), &Quiet).unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), data);
    assert_eq!(srv.requests()[1].1.as_deref(), Some("bytes=64000-"));
    assert!(!partial.exists());
}

#[test]
fn offline_uses_the_cache_and_lists_every_missing_part() {
    let data = body(20_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let have = url_artifact("k3s", srv.url("k3s"), sha(&data));
    fetch::fetch_all(std::slice::from_ref(&have), &opts(&cache), &Quiet).unwrap();
    let mut off = opts(&cache);
    off.offline = true;
    // Hit: served from the cache, no request.
    let got = fetch::fetch_all(std::slice::from_ref(&have), &off, &Quiet).unwrap();
    assert_eq!(got[0].origin, Origin::Cached);
    // Miss: both missing parts are named, nothing is requested.
    let miss1 = url_artifact("rootfs", srv.url("rootfs.tar"), sha(b"rootfs"));
    let miss2 = url_artifact(
        "airgap-images[0]",
        srv.url("images.tar.zst"),
        sha(b"images"),
    );
    let err = fetch::fetch_all(&[miss1, have, miss2], &off, &Quiet).unwrap_err();
    let FetchError::Offline { missing, .. } = &err else {
        panic!("expected Offline, got {err:?}")
    };
    let roles: Vec<&str> = missing.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["rootfs", "airgap-images[0]"]);
    let msg = err.to_string();
    assert!(
        msg.contains(&srv.url("rootfs.tar")) && msg.contains(&srv.url("images.tar.zst")),
        "{msg}"
    );
    assert!(msg.contains(sha(b"images").as_str()), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
    assert_eq!(srv.requests().len(), 1, "offline sent requests");
}

#[test]
fn corrupted_cache_entry_is_replaced() {
    let data = body(30_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("sha256")).unwrap();
    std::fs::write(cache.join("sha256").join(sha(&data).as_str()), b"poison").unwrap();
    let got = fetch::fetch_all(
        &[url_artifact("k3s", srv.url("k3s"), sha(&data))],
        &opts(&cache),
        &Quiet,
    )
    .unwrap();
    assert_eq!(got[0].origin, Origin::Downloaded);
    assert_eq!(std::fs::read(&got[0].path).unwrap(), data);
}

#[test]
fn concurrent_fetches_share_one_download() {
    let data = body(2_000_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let a = [url_artifact("rootfs", srv.url("r"), sha(&data))];
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| fetch::fetch_all(&a, &opts(&cache), &Quiet)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        let f = &r.as_ref().unwrap()[0];
        assert_eq!(std::fs::read(&f.path).unwrap(), data);
    }
    assert_eq!(srv.requests().len(), 1, "the others waited for the lock");
    assert_eq!(cache_files(&cache), [sha(&data).to_string()]);
}

#[test]
fn local_paths_and_file_urls() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let file = tmp.path().join("k3s");
    let data = body(70_000);
    std::fs::write(&file, &data).unwrap();
    let arts = [
        Artifact {
            role: "k3s".into(),
            source: Source::Path {
                path: file.clone(),
                sha256: None,
            },
        },
        Artifact {
            role: "rootfs".into(),
            source: Source::Path {
                path: file.clone(),
                sha256: Some(sha(&data)),
            },
        },
        url_artifact(
            "packages[0]",
            format!("file://{}", file.display()),
            sha(&data),
        ),
    ];
    let got = fetch::fetch_all(&arts, &opts(&cache), &Quiet).unwrap();
    assert_eq!(
        (got[0].origin, &got[0].path),
        (Origin::Local, &file),
        "read in place"
    );
    assert_eq!(got[0].sha256, sha(&data), "digest computed and reported");
    assert_eq!(got[1].origin, Origin::Local);
    assert_eq!(got[2].origin, Origin::Downloaded);
    assert_eq!(got[2].path, cache.join("sha256").join(sha(&data).as_str()));

    let bad = Artifact {
        role: "rootfs".into(),
        source: Source::Path {
            path: file.clone(),
            sha256: Some(sha(b"other")),
        },
    };
    let err = fetch::fetch_all(&[bad], &opts(&cache), &Quiet).unwrap_err();
    assert!(matches!(err, FetchError::HashMismatch { .. }), "{err:?}");
    let gone = Artifact {
        role: "rootfs".into(),
        source: Source::Path {
            path: tmp.path().join("nope.tar"),
            sha256: None,
        },
    };
    let err = fetch::fetch_all(&[gone], &opts(&cache), &Quiet).unwrap_err();
    assert!(err.to_string().contains("nope.tar"), "{err}");
}

fn profile(dir: &Path, rootfs_url: &str, rootfs_sha: &Sha256) -> std::path::PathBuf {
    std::fs::write(dir.join("k3s"), b"#!/bin/sh\n").unwrap();
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"[cluster]
name = "t"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"

[[nodes]]
hostname = "a"
role = "server"
address = "10.0.0.9"

[image]
board = "qemu-x86_64"

[sources]
rootfs = {{ url = "{rootfs_url}", sha256 = "{rootfs_sha}" }}
k3s = {{ path = "k3s" }}
"#
        ),
    )
    .unwrap();
    p
}

#[test]
fn fetch_command_fills_the_cache_then_works_offline() {
    let data = body(120_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let p = profile(tmp.path(), &srv.url("rootfs.tar"), &sha(&data));
    let run = |extra: &[&str]| {
        assert_cmd::Command::cargo_bin("bakery-image")
            .unwrap()
            .arg("fetch")
            .arg(&p)
            .arg("--cache-dir")
            .arg(&cache)
            .args(extra)
            .env_remove("CI")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        cols[..4],
        ["rootfs", sha(&data).as_str(), "120000", "downloaded"]
    );
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cols[..4],
        ["k3s", sha(b"#!/bin/sh\n").as_str(), "10", "local"]
    );

    let out = run(&["--offline"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cached"));
    assert_eq!(srv.requests().len(), 1, "the second run needed no network");

    // A tampered part: refused with both digests, exit code 1.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let p2 = profile(&other, &srv.url("rootfs.tar"), &sha(b"pinned"));
    let out = assert_cmd::Command::cargo_bin("bakery-image")
        .unwrap()
        .args(["fetch"])
        .arg(&p2)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(sha(b"pinned").as_str()) && stderr.contains(sha(&data).as_str()),
        "{stderr}"
    );
}

#[test]
fn a_stale_partial_is_discarded_once() {
    let data = body(100_000);
    let srv = Server::start(data.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let dir = cache.join("sha256");
    std::fs::create_dir_all(&dir).unwrap();
    // A partial from an older upstream file with different first bytes.
    let partial = dir.join(format!("{}.partial", sha(&data)));
    std::fs::write(&partial, vec![0xee; 30_000]).unwrap();
    let got = fetch::fetch_all(
        &[url_artifact("rootfs", srv.url("r"), sha(&data))],
        &opts(&cache),
        &Quiet,
    )
    .unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), data);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].1.as_deref(), Some("bytes=30000-"));
    assert_eq!(reqs[1].1, None);
}

/// TLS through rustls (ring): a real handshake with `openssl s_server` whose self-signed
/// certificate must be rejected, at once rather than after retries.
#[test]
fn https_rejects_an_untrusted_certificate_without_retrying() {
    let have = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have && crate::need::skip("openssl is not installed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1"])
        .args([
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server", "-quiet", "-www", "-cert", "c.pem", "-key", "k.pem",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("https://127.0.0.1:{port}/k3s");
    let result = up.then(|| {
        fetch::fetch_all(
            &[url_artifact("k3s", url.clone(), sha(b"x"))],
            &opts(&d.join("cache")),
            &Quiet,
        )
    });
    let _ = server.kill();
    let _ = server.wait();
    let err = result.expect("openssl s_server did not start").unwrap_err();
    match &err {
        FetchError::Transport {
            attempts, message, ..
        } => {
            assert_eq!(*attempts, 1, "{err}");
            assert!(message.contains("certificate"), "{err}");
        }
        e => panic!("expected a TLS failure, got {e:?}"),
    }
}

/// The timeout bounds each wait for bytes, not the whole transfer: a download that takes
/// longer than the timeout while bytes keep arriving succeeds in one request; a server
/// that goes silent mid-body is given up on after the timeout and the transfer resumes.
#[test]
fn the_timeout_is_per_read_and_a_stalled_transfer_resumes() {
    let data = body(64 * 1024);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&tmp.path().join("cache"));
    o.timeout = Duration::from_millis(1000);

    let server = Server::start(data.clone(), vec![Act::Trickle(450)]);
    let got = fetch::fetch_all(
        &[url_artifact("slow", server.url("slow"), sha(&data))],
        &o,
        &Quiet,
    )
    .unwrap();
    assert_eq!(got[0].size, data.len() as u64);
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());

    let server = Server::start(data.clone(), vec![Act::Stall(10_000, 1400)]);
    let mut o2 = o.clone();
    o2.cache_dir = tmp.path().join("cache2");
    let got = fetch::fetch_all(
        &[url_artifact("stall", server.url("stall"), sha(&data))],
        &o2,
        &Quiet,
    )
    .unwrap();
    assert_eq!(got[0].sha256, sha(&data));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].1.as_deref(), Some("bytes=10000-"), "{reqs:?}");
}
