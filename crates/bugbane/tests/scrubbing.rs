//! Secrets sent by a real SDK with its own scrubbing off never reach the database: the raw
//! bytes of every database file (on PostgreSQL: a full dump) are searched, with every
//! compressed frame in them inflated.

mod common;

use std::time::Duration;

use common::{Server, api, free_port};

/// Every zstd frame and gzip member found anywhere in `bytes`, inflated.
fn inflate_frames(bytes: &[u8]) -> Vec<u8> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i..i + 3] == [0x1f, 0x8b, 0x08] {
            let mut member = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&bytes[i..]),
                &mut member,
            );
            out.extend_from_slice(&member);
        }
        if bytes[i..i + 4] == MAGIC {
            let mut frame = Vec::new();
            if let Ok(d) = zstd::stream::read::Decoder::new(&bytes[i..]) {
                let mut d = d.single_frame();
                let _ = std::io::Read::read_to_end(&mut d, &mut frame);
            }
            out.extend_from_slice(&frame);
        }
        i += 1;
    }
    out
}

/// The bytes of every `\\x…` hex literal in a PostgreSQL dump (how it writes `bytea`).
fn unhex_bytea(dump: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(dump);
    let mut out = Vec::new();
    for part in text.split("\\\\x").skip(1) {
        let hex: String = part.chars().take_while(char::is_ascii_hexdigit).collect();
        for pair in hex.as_bytes().chunks_exact(2) {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(pair), 16) {
                out.push(b);
            }
        }
        out.extend_from_slice(&[0; 8]);
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Server::start(dir.path(), port);
    let token = server.token.clone().expect("token");
    let dsn = server.dsn.clone().expect("dsn");
    let http = reqwest::Client::new();

    let secrets = [
        ("password", "pw-Zx81-local"),
        ("api_token", "tok-Qm55-local"),
        ("form_password", "pw-Hh20-form"),
        ("bearer", "brr-Kd73-header"),
        ("session", "sess-Wn19-cookie"),
        ("query_token", "qtok-Ya64-url"),
        ("card", "4111111111111111"),
        ("card_local", "5555 5555 5555 4444"),
        ("card_in_text", "4012-8888-8888-1881"),
    ];
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/scrub_case.py"
    ))
    .env("SENTRY_DSN", &dsn);
    for (k, v) in secrets {
        cmd.env(format!("SECRET_{}", k.to_uppercase()), v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("python in time")
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.processed(&http).await;

    // The event arrived, with the secrets replaced rather than dropped wholesale.
    let issues = api(
        &http,
        server.url("/api/0/projects/default/default/issues/"),
        &token,
    )
    .await;
    let issue = issues
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|i| i["title"] == "ValueError: payment declined")
        })
        .expect("issue");
    let event = api(
        &http,
        server.url(&format!(
            "/api/0/issues/{}/events/latest/",
            issue["id"].as_str().expect("id")
        )),
        &token,
    )
    .await;
    let text = event.to_string();
    assert!(text.contains("[Filtered]"), "{text}");
    assert!(
        text.contains("theme") && text.contains("hello"),
        "non-secret data is kept: {text}"
    );

    // Stop gracefully (the WAL is checkpointed), then read every byte on disk.
    let pid = server.child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while server.child.try_wait().ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    server.kill();
    let mut raw = Vec::new();
    match common::database_url(dir.path()) {
        // Everything PostgreSQL holds, as its own dump tool reads it (binary columns
        // decoded back to their bytes).
        Some(url) => {
            let dump = std::process::Command::new("pg_dump")
                .args(["--data-only", "--no-owner", &url])
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            raw.extend(&dump.stdout);
            raw.extend(unhex_bytea(&dump.stdout));
        }
        None => {
            for entry in std::fs::read_dir(dir.path()).expect("data dir").flatten() {
                if entry.path().is_file() {
                    raw.extend(std::fs::read(entry.path()).expect("read db file"));
                }
            }
        }
    }
    assert!(raw.len() > 4096, "database contents found");
    let mut all = raw.clone();
    all.extend(inflate_frames(&raw));
    for (name, secret) in secrets {
        assert!(
            !contains(&all, secret),
            "{name} ({secret}) reached the database"
        );
    }
}
