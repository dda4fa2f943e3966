//! `bugbane-bench`: drives a Bugbane server with realistic SDK traffic on loopback and
//! reports accepted and end-to-end (grouped, stored, queryable) throughput, accept latency
//! percentiles, the server's peak memory and CPU per event, and bytes on disk per event.
//!
//! By default it starts the `bugbane` binary next to itself on a fresh data directory, so
//! one command measures everything. Traffic goes to loopback only and every run stops by
//! itself after `--duration`.

/// The server's allocator, so that `--process` costs what processing costs in the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod pages;
mod traces;
mod workload;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use tokio::io::AsyncBufReadExt;

use workload::{Size, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "bugbane-bench",
    about = "Benchmark Bugbane's ingestion end to end"
)]
struct Args {
    /// The bugbane binary to start (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Closed loop (each connection sends as soon as its last request is answered) or open
    /// loop (a fixed request rate, whatever the answers).
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Requests per second in open-loop mode.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Event size.
    #[arg(long, value_enum, default_value = "typical")]
    size: Size,
    /// Distinct issues, drawn with long-tail (Zipf) popularity.
    #[arg(long, default_value_t = 50)]
    issues: usize,
    /// Send bodies uncompressed instead of gzip (as the Node and browser SDKs do).
    #[arg(long)]
    identity: bool,
    /// Stop the load after this many accepted events (before `--duration` if sooner).
    #[arg(long)]
    events: Option<u64>,
    /// Also time the dashboard's issue list and issue page, while the load runs and once
    /// it has drained.
    #[arg(long)]
    pages: bool,
    /// Instead of the error load: send this many transactions (20 spans and a session
    /// each), then time the performance, release and trace pages over them.
    #[arg(long)]
    traces: Option<usize>,
    /// Run over PostgreSQL: a fresh database is created (and dropped afterwards) on the
    /// server this URL connects to, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
    #[arg(long)]
    postgres: Option<String>,
    /// Bugbane processes sharing that database; connections are spread over them.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Instead of running a server: decode, process, encode and compress this many
    /// envelopes of the workload on one thread of this process (after a warm-up that trains
    /// the compression dictionary) and print the time per envelope. Under
    /// `valgrind --tool=callgrind` this gives instruction counts, which unlike times do
    /// not depend on what else the machine is doing.
    #[arg(long)]
    process: Option<usize>,
    /// Print the results as one JSON object as well.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq)]
enum Mode {
    Closed,
    Open,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    limited: AtomicU64,
    failed: AtomicU64,
}

/// A tiny xorshift generator: the bench needs speed and reproducibility, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One keep-alive HTTP/1.1 connection to the server, used as `wrk` uses its own: the next
/// request is written as soon as the last answer is read. A pooling client's per-request
/// work (parsing the URL, finding an idle connection) would be the generator's own cost,
/// taken from the two cores the server is measured on.
struct Connection {
    authority: String,
    path: String,
    auth: hyper::header::HeaderValue,
    send: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Connection {
    fn new(url: &str, auth: &str) -> Connection {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Connection {
            authority: authority.to_string(),
            path: path.to_string(),
            auth: hyper::header::HeaderValue::from_str(auth)
                .unwrap_or(hyper::header::HeaderValue::from_static("")),
            send: None,
        }
    }

    /// Posts one envelope and reads the whole answer; connects (again) when needed.
    async fn post(&mut self, body: Vec<u8>, gzip: bool) -> Result<hyper::StatusCode> {
        let send = match &mut self.send {
            Some(s) if !s.is_closed() => s,
            _ => {
                let tcp = tokio::net::TcpStream::connect(&self.authority).await?;
                tcp.set_nodelay(true)?;
                let (send, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await?;
                tokio::spawn(conn);
                self.send.insert(send)
            }
        };
        let mut req = hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header("x-sentry-auth", self.auth.clone());
        if gzip {
            req = req.header(hyper::header::CONTENT_ENCODING, "gzip");
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let answer = async {
            send.ready().await?;
            let res = send.send_request(req).await?;
            let status = res.status();
            res.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        if answer.is_err() {
            self.send = None;
        }
        answer
    }
}

struct Server {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    dsn: bugbane_protocol::Dsn,
    /// The administrator's email and password, from the first-start banner.
    admin: Option<(String, String)>,
    data: tempfile::TempDir,
}

/// Starts one Bugbane process. The first process on a database prints the DSN and the
/// administrator; later ones (`joining`) find the installation set up.
async fn start_server(
    binary: &PathBuf,
    database_url: Option<&str>,
    joining: Option<&Server>,
) -> Result<Server> {
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("--data")
        .arg(data.path())
        .arg("serve")
        .env("BUGBANE_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        cmd.env("BUGBANE_DATABASE_URL", url);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("server pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut dsn = joining.map(|s| s.dsn.clone());
    let mut admin = joining.and_then(|s| s.admin.clone());
    while dsn.is_none() {
        if Instant::now() > deadline {
            bail!("the server printed no DSN");
        }
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(d) = line.trim().strip_prefix("DSN:") {
                    dsn = Some(d.trim().parse::<bugbane_protocol::Dsn>().context("DSN")?);
                }
                if let Some((e, p)) = line
                    .trim()
                    .strip_prefix("Admin:")
                    .and_then(|a| a.trim().split_once(" / "))
                {
                    admin = Some((e.to_owned(), p.to_owned()));
                }
            }
            _ => bail!("the server exited before printing its DSN"),
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("the server did not listen");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Server {
        child,
        pid,
        port,
        dsn: dsn.context("dsn")?,
        admin,
        data,
    })
}

/// A signed-in dashboard session on the benchmarked server.
async fn sign_in(server: &Server) -> Result<bugbane_test_support::WebClient> {
    let (email, password) = server
        .admin
        .clone()
        .context("the server printed no administrator")?;
    Ok(bugbane_test_support::WebClient::sign_in(
        format!("http://127.0.0.1:{}", server.port),
        &email,
        &password,
    )
    .await)
}

/// Peak resident memory (KiB) and CPU seconds of a process, from /proc.
fn process_stats(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    (hwm, ticks as f64 / 100.0)
}

async fn backlog(http: &reqwest::Client, port: u16) -> Option<u64> {
    let v: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/_health/"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["backlog"].as_u64()
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// CPU seconds used so far by every PostgreSQL server process on this machine.
fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| process_stats(pid).1)
        .sum()
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Envelopes processed before `--process` starts counting: enough for the store to train
/// its compression dictionary, as a running server has long done.
const PROCESS_WARM_UP: usize = 2000;

/// Processing alone, as the server's processing threads do it for each spooled envelope:
/// decode the body, parse the envelope, normalise, scrub, group, derive what is stored,
/// then encode and compress the records (with the trained dictionary) for the writer.
fn process_only(args: &Args, n: usize) -> Result<()> {
    let workload = Workload::new(args.issues, args.size, !args.identity);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    // A fixed set of bodies, reused, so that runs of different lengths differ only in
    // processing (the difference of two runs' instruction counts is processing alone).
    let bodies: Vec<Vec<u8>> = (0..64)
        .map(|i| workload.body(workload.pick(rng.unit()), &format!("{i:032x}"), now))
        .collect();
    let encoding = (!args.identity).then_some("gzip");
    let mut ctx = bugbane_core::ProcessContext::default();
    ctx.normalize.received = now;
    let dir = tempfile::tempdir()?;
    let store = bugbane_store::Store::open(dir.path(), bugbane_store::StoreOptions::default())?;
    let process = |body: &Vec<u8>| -> Result<usize> {
        let decoded = bugbane_protocol::decode_body(encoding, body, usize::MAX)?;
        let env = bugbane_protocol::Envelope::parse(&decoded)?;
        let processed = bugbane_core::items::process_envelope(&env, &ctx, usize::MAX);
        let records = processed.records.len();
        drop(bugbane_store::ProcessedEnvelope::new(
            &store, 0, 1, now, processed,
        ));
        Ok(records)
    };
    for body in bodies.iter().cycle().take(PROCESS_WARM_UP) {
        process(body)?;
    }
    let started = Instant::now();
    let mut events = 0;
    for body in bodies.iter().cycle().take(n) {
        events += process(body)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bugbane-bench: processed {n} envelopes ({events} records) on one thread: {:.1} µs per envelope",
        secs * 1e6 / n as f64
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let binary = match &args.server {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("bugbane"),
    };
    if let Some(n) = args.process {
        return process_only(&args, n);
    }
    if args.nodes > 1 && args.postgres.is_none() {
        bail!("several nodes share a PostgreSQL database: give --postgres");
    }
    let database = args
        .postgres
        .as_deref()
        .map(bugbane_test_support::TestDatabase::create_on);
    let db_url = database.as_ref().map(|d| d.url.clone());
    let mut server = start_server(&binary, db_url.as_deref(), None).await?;
    let mut others = Vec::new();
    for _ in 1..args.nodes {
        others.push(start_server(&binary, db_url.as_deref(), Some(&server)).await?);
    }
    let postgres_cpu_before = postgres_cpu();
    let workload = Arc::new(Workload::new(args.issues, args.size, !args.identity));
    let url = server.dsn.envelope_url();
    // Connections are spread over the nodes, as a round-robin load balancer would.
    let node_urls: Vec<String> = std::iter::once(server.port)
        .chain(others.iter().map(|o| o.port))
        .map(|p| url.replace(&format!(":{}/", server.port), &format!(":{p}/")))
        .collect();
    let auth = format!(
        "Sentry sentry_key={}, sentry_version=7, sentry_client=bugbane-bench/0",
        server.dsn.public_key
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    if let Some(count) = args.traces {
        let t = Instant::now();
        traces::send(url.clone(), auth.clone(), count, args.connections).await?;
        while backlog(&http, server.port).await.unwrap_or(0) > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "bugbane-bench: {count} transactions ({} spans, {count} sessions) stored in {secs:.1} s ({:.0} transactions/s)",
            count * 20,
            count as f64 / secs
        );
        for (path, p50, p95) in traces::time_pages(sign_in(&server).await?, 20).await {
            println!("  {path:<100} p50 {p50:>7.1} ms  p95 {p95:>7.1} ms");
        }
        let _ = server.child.kill().await;
        return Ok(());
    }
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    // The generator's own CPU, taken from the cores the server is measured on.
    let generator_cpu_before = process_stats(std::process::id()).1;
    let start = Instant::now();
    let mut workers = Vec::new();
    let per_worker_interval = match args.mode {
        Mode::Open => Some(Duration::from_secs_f64(
            args.connections as f64 / args.rate.max(1) as f64,
        )),
        Mode::Closed => None,
    };
    for w in 0..args.connections {
        let (url, auth, workload, counters, stop, seq) = (
            node_urls[w % node_urls.len()].clone(),
            auth.clone(),
            workload.clone(),
            counters.clone(),
            stop.clone(),
            seq.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut rng =
                Rng(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut next = Instant::now();
            let mut conn = Connection::new(&url, &auth);
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = per_worker_interval {
                    next += iv;
                    tokio::time::sleep_until(next.into()).await;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let issue = workload.pick(rng.unit());
                let id = format!("{:016x}{:016x}", 0xbe7c_0000_0000_0000u64 | w as u64, n);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let body = workload.body(issue, &id, now);
                let t = Instant::now();
                match conn.post(body, workload.gzip).await {
                    Ok(status) if status.is_success() => {
                        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        counters.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(status) if status.as_u16() == 429 || status.as_u16() == 503 => {
                        counters.limited.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    _ => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }

    // Sample the backlog while the load runs, to report the sustained processing rate.
    let mut peak_backlog = 0;
    let load_end = start + Duration::from_secs(args.duration);
    let sampler = if args.pages {
        Some(tokio::spawn(pages::sample_while(
            sign_in(&server).await?,
            stop.clone(),
        )))
    } else {
        None
    };
    let enough = |c: &Counters| {
        args.events
            .is_some_and(|n| c.accepted.load(Ordering::Relaxed) >= n)
    };
    while Instant::now() < load_end && !enough(&counters) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(b) = backlog(&http, server.port).await {
            peak_backlog = peak_backlog.max(b);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let under_load = match sampler {
        Some(s) => Some(s.await?),
        None => None,
    };
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let load_secs = start.elapsed().as_secs_f64();
    let generator_cpu = process_stats(std::process::id()).1 - generator_cpu_before;
    let accepted = counters.accepted.load(Ordering::Relaxed);
    let requests = accepted
        + counters.limited.load(Ordering::Relaxed)
        + counters.failed.load(Ordering::Relaxed);
    let backlog_at_end = backlog(&http, server.port).await.unwrap_or(0);
    // End to end: until everything acknowledged is grouped, stored and queryable.
    let drain_deadline = Instant::now() + Duration::from_secs(600);
    while backlog(&http, server.port).await.unwrap_or(0) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e2e_secs = start.elapsed().as_secs_f64();
    let (mut rss_kib, mut cpu) = process_stats(server.pid);
    for o in &others {
        let (r, c) = process_stats(o.pid);
        rss_kib = rss_kib.max(r);
        cpu += c;
    }
    let postgres_cpu = postgres_cpu() - postgres_cpu_before;
    let idle = if args.pages {
        Some(pages::sample_idle(sign_in(&server).await?, 50).await)
    } else {
        None
    };
    let disk = match &database {
        Some(db) => db.size(),
        None => {
            tokio::time::sleep(Duration::from_secs(11)).await; // let the idle writer checkpoint the WAL
            dir_bytes(server.data.path())
        }
    };
    let _ = server.child.kill().await;
    for mut o in others {
        let _ = o.child.kill().await;
    }

    latencies.sort_unstable();
    let processed_during_load = accepted.saturating_sub(backlog_at_end);
    let (mean_event, mean_wire) = workload.mean_sizes();
    let mean_event = mean_event as f64;
    let report = serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections,
        "size": format!("{:?}", args.size).to_lowercase(),
        "event_bytes": mean_event,
        "wire_bytes": mean_wire,
        "issues": args.issues,
        "gzip": !args.identity,
        "duration_s": load_secs,
        "accepted": accepted,
        "rejected_429_503": counters.limited.load(Ordering::Relaxed),
        "failed": counters.failed.load(Ordering::Relaxed),
        "accepted_per_s": accepted as f64 / load_secs,
        "processed_during_load_per_s": processed_during_load as f64 / load_secs,
        "end_to_end_per_s": accepted as f64 / e2e_secs,
        "drain_s": e2e_secs - load_secs,
        "peak_backlog": peak_backlog,
        "latency_ms": {"p50": percentile(&latencies, 0.5), "p90": percentile(&latencies, 0.9), "p99": percentile(&latencies, 0.99),
                        "max": percentile(&latencies, 1.0)},
        "engine": if database.is_some() { "postgresql" } else { "sqlite" },
        "nodes": args.nodes,
        "server_peak_rss_mb": rss_kib as f64 / 1024.0,
        "server_cpu_ms_per_event": if accepted > 0 { cpu * 1000.0 / accepted as f64 } else { 0.0 },
        "generator_cpu_ms_per_request": if requests > 0 { generator_cpu * 1000.0 / requests as f64 } else { 0.0 },
        "postgres_cpu_ms_per_event": if accepted > 0 && database.is_some() { postgres_cpu * 1000.0 / accepted as f64 } else { 0.0 },
        "disk_bytes_per_event": if accepted > 0 { disk as f64 / accepted as f64 } else { 0.0 },
        "pages_under_load_ms": under_load.as_ref().map(pages::Timings::json),
        "pages_idle_ms": idle.as_ref().map(pages::Timings::json),
    });
    println!(
        "bugbane-bench: {} loop, {} connections, {:?} events ({:.1} KiB JSON, {} B on the wire), {} issues, {:.0} s",
        report["mode"].as_str().unwrap_or(""),
        args.connections,
        args.size,
        mean_event / 1024.0,
        report["wire_bytes"],
        args.issues,
        load_secs
    );
    println!(
        "  accepted         {:>10.0} events/s  ({accepted} events, {} refused with 429/503, {} failed)",
        report["accepted_per_s"].as_f64().unwrap_or(0.0),
        report["rejected_429_503"],
        report["failed"]
    );
    println!(
        "  end to end       {:>10.0} events/s  (processed during load {:.0}/s; drained {:.1} s after; peak backlog {peak_backlog})",
        report["end_to_end_per_s"].as_f64().unwrap_or(0.0),
        report["processed_during_load_per_s"]
            .as_f64()
            .unwrap_or(0.0),
        report["drain_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  accept latency   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  server           peak RSS {:.1} MB{}, {:.3} ms CPU per event",
        rss_kib as f64 / 1024.0,
        if args.nodes > 1 {
            " (largest node)"
        } else {
            ""
        },
        report["server_cpu_ms_per_event"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  generator        {:.3} ms CPU per request ({:.0} % of one core during the load)",
        report["generator_cpu_ms_per_request"]
            .as_f64()
            .unwrap_or(0.0),
        generator_cpu * 100.0 / load_secs
    );
    if database.is_some() {
        println!(
            "  postgresql       {} node(s); the database server used {:.3} ms CPU per event",
            args.nodes,
            report["postgres_cpu_ms_per_event"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "  disk             {:.0} bytes per event",
        report["disk_bytes_per_event"].as_f64().unwrap_or(0.0)
    );
    if let Some(t) = &under_load {
        println!("  pages under load {}", t.summary());
    }
    if let Some(t) = &idle {
        println!("  pages after load {}", t.summary());
    }
    if args.json {
        println!("{report}");
    }
    Ok(())
}
