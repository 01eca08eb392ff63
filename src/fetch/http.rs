//! One download into the cache's `*.partial` file: resume with a Range request, retry
//! transient failures with bounded exponential backoff, hash while streaming.
//!
//! Transient: connection errors, timeouts, a body cut short, HTTP 408/429/5xx. Anything
//! else (404, 403, a full disk) fails at once. The partial file survives transient
//! failures so the next attempt, or the next run, continues where the last one stopped.

use std::io::{Read, Write};
use std::path::Path;

use sha2::Digest;
use ureq::Agent as Client;
use ureq::http::StatusCode;
use ureq::http::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, RANGE};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use super::{FetchError, FetchOptions};
use crate::io::{HashReader, ProgressReader};
use crate::profile::Sha256;
use crate::progress::Task;

/// Why one attempt failed.
enum Failure {
    /// Worth another try (the message says what happened).
    Transient(String),
    /// Not worth retrying.
    Permanent(FetchError),
}

/// An HTTP(S) client for URLs on `host`: rustls with the ring provider and the platform's
/// certificate store, no proxy for loopback. `opts.timeout` bounds the connection, the wait
/// for the response head and each read of the body (a large download may take as long as
/// it needs while bytes keep arriving).
pub fn client(host: &str, opts: &FetchOptions) -> Result<Client, FetchError> {
    // ureq is built with `rustls-no-provider`: it uses the process default. Another part of
    // the program may have installed one already; that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::PlatformVerifier)
        .build();
    let mut b = Client::config_builder()
        .user_agent(concat!("bakery-image/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(opts.timeout))
        .timeout_recv_response(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .http_status_as_error(false)
        .tls_config(tls);
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    if loopback {
        b = b.proxy(None);
    }
    Ok(b.build().into())
}

/// Download `url` into `partial`, resuming what is there, and return the digest and size
/// of the complete file. The caller compares the digest and renames.
pub fn download(
    client: &Client,
    url: &str,
    partial: &Path,
    opts: &FetchOptions,
    task: &dyn Task,
) -> Result<(Sha256, u64), FetchError> {
    let mut delay = opts.retry_delay;
    let mut attempt = 1;
    loop {
        match attempt_once(client, url, partial, task) {
            Ok(done) => return Ok(done),
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient(message)) if attempt >= opts.tries => {
                return Err(FetchError::Transport {
                    url: url.to_owned(),
                    attempts: attempt,
                    message,
                });
            }
            Err(Failure::Transient(message)) => {
                tracing::warn!(
                    "{url}: {message}; retrying in {delay:?} (attempt {attempt} of {})",
                    opts.tries
                );
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
        }
    }
}

fn attempt_once(
    client: &Client,
    url: &str,
    partial: &Path,
    task: &dyn Task,
) -> Result<(Sha256, u64), Failure> {
    let io = |e: std::io::Error| Failure::Permanent(FetchError::Io(e));
    let have = match fs_err::metadata(partial) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(e)),
    };
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(RANGE, format!("bytes={have}-"));
    }
    tracing::debug!("GET {url} (from byte {have})");
    let resp = req.call().map_err(|e| {
        let message = chain(&e);
        // A certificate the client rejects will not get better by asking again.
        if matches!(e, ureq::Error::Rustls(_)) || message.contains("certificate") {
            Failure::Permanent(FetchError::Transport {
                url: url.to_owned(),
                attempts: 1,
                message,
            })
        } else {
            Failure::Transient(message)
        }
    })?;

    let (head, body) = resp.into_parts();
    let status = head.status;
    let offset = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 && range_starts_at(&head.headers, have) => have,
        StatusCode::OK => 0,
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            // The partial is as long as the file or longer (a crash after the last
            // byte, or a changed file): start over on the next attempt.
            tracing::debug!("{url}: range from {have} not satisfiable");
            fs_err::remove_file(partial).map_err(io)?;
            return Err(Failure::Transient(format!(
                "server refused to resume at byte {have}"
            )));
        }
        s if s.is_server_error()
            || s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS =>
        {
            return Err(Failure::Transient(format!("HTTP {s}")));
        }
        s if s.is_success() => {
            // A 206 for a range we did not ask for, or some other 2xx: start over.
            fs_err::remove_file(partial).ok();
            return Err(Failure::Transient(format!("unexpected HTTP {s}")));
        }
        s => {
            return Err(Failure::Permanent(FetchError::Status {
                url: url.to_owned(),
                status: s.as_u16(),
            }));
        }
    };

    // Hash what we keep from earlier, then continue the hash over the new bytes.
    let mut hasher = sha2::Sha256::new();
    if offset > 0 {
        let mut f = fs_err::File::open(partial).map_err(io)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    let mut out = fs_err::OpenOptions::new()
        .create(true)
        .write(true)
        .append(offset > 0)
        .truncate(offset == 0)
        .open(partial)
        .map_err(io)?;
    let expected_len = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|l| l + offset);
    if let Some(len) = expected_len {
        task.set_total(len);
    }
    task.set_position(offset);
    let mut body = HashReader::with_hasher(
        ProgressReader::new(body.into_reader(), task),
        hasher,
        offset,
    );
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.flush().map_err(io)?;
                return Err(Failure::Transient(format!(
                    "transfer interrupted after {} bytes: {}",
                    body.count(),
                    chain(&e)
                )));
            }
        };
        out.write_all(&buf[..n]).map_err(io)?;
    }
    out.flush().map_err(io)?;
    out.file().sync_all().map_err(io)?;
    let (digest, size) = body.finish();
    if let Some(len) = expected_len.filter(|l| *l != size) {
        return Err(Failure::Transient(format!(
            "transfer ended after {size} of {len} bytes"
        )));
    }
    Ok((digest, size))
}

fn range_starts_at(headers: &HeaderMap, at: u64) -> bool {
    headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(at)
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
