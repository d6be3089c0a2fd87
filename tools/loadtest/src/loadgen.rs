//! A closed-loop HTTP/1.1 load generator: a fixed number of keep-alive connections, each sending
//! one request, reading the whole response, and sending the next, for a fixed time.
//!
//! It is deliberately minimal (one pre-encoded request, `Content-Length` and chunked bodies) so
//! that the generator costs as little CPU as possible on a 2-core machine where it shares the
//! cores with the server under test. Every latency is kept and percentiles are exact.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cpu::CpuTime;

/// The longest a single response may take before the connection counts an error and reconnects.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The name of the generator's threads (so that their CPU time is told apart from the
/// server's).
pub const GENERATOR_THREAD: &str = "loadgen";

/// What to send, and where.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    /// The complete request, head and body, sent as is on every iteration.
    pub request: Bytes,
    /// The status a successful response has; any other counts as an error.
    pub expect_status: u16,
}

impl Target {
    /// A target sending `method path` with `headers` (name, value) and `body` to `addr`, with
    /// `Host`, and `Content-Length` when there is a body.
    pub fn new(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        expect_status: u16,
    ) -> Self {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        Self {
            addr,
            request: Bytes::from(request),
            expect_status,
        }
    }
}

/// How hard and how long to drive a target.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// OS threads of the generator (each runs a single-threaded runtime with its share of the
    /// connections).
    pub threads: usize,
    /// Load before measuring starts (not counted).
    pub warmup: Duration,
    /// How long requests are measured.
    pub duration: Duration,
}

/// The outcome of one measurement.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Responses with the expected status completed in the measured window.
    pub ok: u64,
    /// Responses with another status, I/O errors and timeouts in the measured window.
    pub errors: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// The latency of every measured response, in nanoseconds (unsorted).
    pub latencies_ns: Vec<u64>,
    /// CPU time used by the process outside the generator's threads during the measured
    /// window, i.e. by the server under test (zero where `/proc` is not available).
    pub server_cpu: CpuTime,
    /// CPU time used by the generator's threads during the measured window.
    pub generator_cpu: CpuTime,
}

impl LoadReport {
    /// Successful responses per second.
    pub fn requests_per_sec(&self) -> f64 {
        per_second(self.ok as f64, self.elapsed)
    }

    /// The server's CPU time per completed request, user space and kernel (zero when unknown).
    pub fn server_cpu_per_request(&self) -> CpuTime {
        let requests = u32::try_from(self.ok + self.errors).unwrap_or(u32::MAX);
        if requests == 0 {
            return CpuTime::default();
        }
        CpuTime {
            user: self.server_cpu.user / requests,
            system: self.server_cpu.system / requests,
        }
    }

    /// The share of the measured window the server was on a CPU (1.0 = one core fully busy):
    /// near its worker count it is the bottleneck, as it should be; well below, the generator
    /// or other processes on the machine held it back.
    pub fn server_busy(&self) -> f64 {
        busy(self.server_cpu.total(), self.elapsed)
    }

    /// The share of the measured window the generator was on a CPU.
    pub fn generator_busy(&self) -> f64 {
        busy(self.generator_cpu.total(), self.elapsed)
    }

    /// Adds another measurement of the same target (rounds are summed).
    pub fn merge(&mut self, other: LoadReport) {
        self.server_cpu.add(other.server_cpu);
        self.generator_cpu.add(other.generator_cpu);
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_ns.extend(other.latencies_ns);
    }

    /// The latency percentiles `ps` (each in 0..=100), nearest rank; zero when nothing was
    /// measured.
    pub fn percentiles(&mut self, ps: &[f64]) -> Vec<Duration> {
        self.latencies_ns.sort_unstable();
        ps.iter()
            .map(|&p| Duration::from_nanos(percentile_sorted(&self.latencies_ns, p)))
            .collect()
    }
}

fn busy(cpu: Duration, elapsed: Duration) -> f64 {
    per_second(cpu.as_secs_f64(), elapsed)
}

/// `amount` per second of `elapsed`; 0 for an empty window.
pub fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { amount / secs } else { 0.0 }
}

/// The nearest-rank percentile `p` (0..=100) of sorted `values`; 0 for none.
pub fn percentile_sorted(values: &[u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Drives `target` with `options` and returns what was measured. Blocks the calling thread for
/// `warmup + duration` (plus at most one response timeout).
///
/// # Errors
/// When a generator thread cannot start its runtime.
pub fn run(target: &Target, options: LoadOptions) -> std::io::Result<LoadReport> {
    let measure_from = Instant::now() + options.warmup;
    let slice = Slice {
        target: 0,
        measure_from,
        end: measure_from + options.duration,
    };
    // The server's CPU time over the measured window: every thread of this process but the
    // generator's (the other servers are idle meanwhile).
    let run = run_schedule(
        std::slice::from_ref(target),
        options.connections,
        options.threads,
        &[slice],
        |_| crate::cpu::process_cpu_split(GENERATOR_THREAD),
    )?;
    let mut latencies = run.latencies_ns;
    let mut report = LoadReport {
        ok: run.slices[0].ok,
        errors: run.slices[0].errors,
        elapsed: slice.measured(),
        latencies_ns: latencies.swap_remove(0),
        ..LoadReport::default()
    };
    if let (Some(before), Some(after)) = run.samples[0] {
        report.server_cpu = after.0.since(before.0);
        report.generator_cpu = after.1.since(before.1);
    }
    Ok(report)
}

/// One part of a [schedule](run_schedule): from the end of the previous slice (or the start)
/// until `end`, every connection sends its requests to one target; the responses that complete
/// between `measure_from` and `end` are counted (the time before `measure_from` lets the
/// previous target's last responses arrive and the new one warm up; a response to a request of
/// the previous slice never counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// The index of the target, into the targets of the schedule.
    pub target: usize,
    /// When counting starts (at `end` or later: a slice of warm-up only).
    pub measure_from: Instant,
    /// When the slice ends.
    pub end: Instant,
}

impl Slice {
    /// The measured part of the slice.
    pub fn measured(&self) -> Duration {
        self.end.saturating_duration_since(self.measure_from)
    }
}

/// What one slice of a schedule counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SliceCount {
    /// Responses with the expected status in the measured part of the slice.
    pub ok: u64,
    /// Responses with another status, I/O errors and timeouts in the measured part.
    pub errors: u64,
}

/// What [`run_schedule`] measured.
#[derive(Debug, Clone, Default)]
pub struct ScheduleReport<S> {
    /// Per slice, in the schedule's order.
    pub slices: Vec<SliceCount>,
    /// Per target, the latency of every counted response, in nanoseconds (unsorted).
    pub latencies_ns: Vec<Vec<u64>>,
    /// Per slice, what the sampler returned at its `measure_from` and at its `end`.
    pub samples: Vec<(S, S)>,
}

/// Drives `connections` keep-alive connections per target from `threads` generator threads
/// through `slices`, one after the other (the same connection slot holds one connection to
/// every target and sends to the target of the current slice, so switching targets costs no
/// reconnection). Calls `sample` with the slice on the calling thread at every slice's
/// `measure_from` and `end` (to read CPU times). Blocks until the last slice's end (plus at most one response
/// timeout).
///
/// # Errors
/// When a generator thread cannot start its runtime.
pub fn run_schedule<S>(
    targets: &[Target],
    connections: usize,
    threads: usize,
    slices: &[Slice],
    mut sample: impl FnMut(&Slice) -> S,
) -> std::io::Result<ScheduleReport<S>> {
    let connections = connections.max(1);
    let threads = threads.clamp(1, connections);
    let targets: std::sync::Arc<[Target]> = targets.into();
    let schedule: std::sync::Arc<[Slice]> = slices.into();
    let mut handles = Vec::with_capacity(threads);
    // Dropped once the CPU times are read: until then the generator threads stay alive, so that
    // their time is still in /proc when it is read at the end of the window.
    let mut release = Vec::with_capacity(threads);
    for t in 0..threads {
        // Spread the connections as evenly as possible over the threads.
        let conns = connections / threads + usize::from(t < connections % threads);
        let (targets, schedule) = (targets.clone(), schedule.clone());
        let thread = std::thread::Builder::new().name(GENERATOR_THREAD.to_owned());
        let (released, linger) = std::sync::mpsc::channel::<()>();
        release.push(released);
        handles.push(thread.spawn(move || -> std::io::Result<Counted> {
            let _linger = Linger(linger);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..conns)
                    .map(|_| tokio::spawn(drive(targets.clone(), schedule.clone())))
                    .collect();
                let mut counted = Counted::new(targets.len(), schedule.len());
                for task in tasks {
                    if let Ok(part) = task.await {
                        counted.merge(part);
                    }
                }
                Ok(counted)
            })
        })?);
    }
    let mut samples = Vec::with_capacity(slices.len());
    for slice in slices {
        std::thread::sleep(slice.measure_from.saturating_duration_since(Instant::now()));
        let before = sample(slice);
        std::thread::sleep(slice.end.saturating_duration_since(Instant::now()));
        samples.push((before, sample(slice)));
    }
    drop(release);
    let mut counted = Counted::new(targets.len(), slices.len());
    for handle in handles {
        let part = handle
            .join()
            .map_err(|_| std::io::Error::other("a load generator thread panicked"))??;
        counted.merge(part);
    }
    Ok(ScheduleReport {
        slices: counted.slices,
        latencies_ns: counted.latencies_ns,
        samples,
    })
}

/// Keeps a generator thread alive until its sender is dropped (bounded, in case it never is).
struct Linger(std::sync::mpsc::Receiver<()>);

impl Drop for Linger {
    fn drop(&mut self) {
        let _ = self.0.recv_timeout(Duration::from_secs(30));
    }
}

/// What connections counted: per slice, and the latencies per target.
struct Counted {
    slices: Vec<SliceCount>,
    latencies_ns: Vec<Vec<u64>>,
}

impl Counted {
    fn new(targets: usize, slices: usize) -> Self {
        Self {
            slices: vec![SliceCount::default(); slices],
            latencies_ns: vec![Vec::new(); targets],
        }
    }

    fn merge(&mut self, other: Counted) {
        for (mine, theirs) in self.slices.iter_mut().zip(other.slices) {
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
        }
        for (mine, theirs) in self.latencies_ns.iter_mut().zip(other.latencies_ns) {
            mine.extend(theirs);
        }
    }
}

/// One connection slot's keep-alive connection to one target, and its read buffer.
struct Connection {
    stream: Option<TcpStream>,
    buf: BytesMut,
}

/// One connection slot's loop through the slices; reconnects after errors and
/// `Connection: close`.
async fn drive(targets: std::sync::Arc<[Target]>, schedule: std::sync::Arc<[Slice]>) -> Counted {
    let mut counted = Counted::new(targets.len(), schedule.len());
    for latencies in &mut counted.latencies_ns {
        latencies.reserve(64 * 1024);
    }
    let mut connections: Vec<Connection> = targets
        .iter()
        .map(|_| Connection {
            stream: None,
            buf: BytesMut::with_capacity(16 * 1024),
        })
        .collect();
    let mut current = 0;
    loop {
        let now = Instant::now();
        while schedule.get(current).is_some_and(|slice| now >= slice.end) {
            current += 1;
        }
        let Some(slice) = schedule.get(current) else {
            break;
        };
        let (measure_from, end) = (slice.measure_from, slice.end);
        let target = &targets[slice.target];
        let Connection { stream, buf } = &mut connections[slice.target];
        let count = &mut counted.slices[current];
        if stream.is_none() {
            match TcpStream::connect(target.addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    *stream = Some(s);
                }
                Err(_) => {
                    if now >= measure_from {
                        count.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(RESPONSE_TIMEOUT, async {
            s.write_all(&target.request).await?;
            read_response(s, buf).await
        })
        .await;
        let done = Instant::now();
        // Counted by completion: the responses completed in the window, whenever sent (in
        // this slice, so to this slice's target), measure the throughput without the bias of
        // the requests still in flight at either edge.
        let measured = done >= measure_from && done <= end;
        match outcome {
            Ok(Ok(head)) => {
                if measured {
                    if head.status == target.expect_status {
                        count.ok += 1;
                        counted.latencies_ns[slice.target].push(
                            u64::try_from(done.duration_since(sent).as_nanos()).unwrap_or(u64::MAX),
                        );
                    } else {
                        count.errors += 1;
                    }
                }
                if !head.keep_alive {
                    *stream = None;
                }
            }
            Ok(Err(_)) | Err(_) => {
                // A failure counts even when it ended (timed out) past the window.
                if sent >= measure_from {
                    count.errors += 1;
                }
                *stream = None;
            }
        }
    }
    counted
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The length of the head, final `\r\n\r\n` included.
    pub head_len: usize,
    /// How the body is delimited.
    pub body: BodyLength,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// `Content-Length` bytes (0 when absent on a keep-alive response without chunking).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Parses a response head from the start of `data`: `Ok(None)` when incomplete.
///
/// # Errors
/// When the head is not HTTP/1.x, or is too large.
pub fn parse_head(data: &[u8]) -> std::io::Result<Option<ResponseHead>> {
    let Some(pos) = find(data, b"\r\n\r\n") else {
        if data.len() > MAX_HEAD {
            return Err(invalid("response head too large"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..pos]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not an HTTP/1.x response"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("bad status code"))?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut body = BodyLength::Length(0);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse::<usize>()
                .map_err(|_| invalid("bad content-length"))?;
            if body != BodyLength::Chunked {
                body = BodyLength::Length(len);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                body = BodyLength::Chunked;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                keep_alive = false;
            } else if value.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Some(ResponseHead {
        status,
        head_len: pos + 4,
        body,
        keep_alive,
    }))
}

/// The length of a complete chunked body at the start of `data` (trailers included):
/// `Ok(None)` when incomplete.
///
/// # Errors
/// When a chunk size line is malformed.
pub fn chunked_body_len(data: &[u8]) -> std::io::Result<Option<usize>> {
    let mut pos = 0;
    loop {
        let Some(line_end) = find(&data[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[pos..pos + line_end])
            .map_err(|_| invalid("bad chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find(&data[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

/// Reads one complete response from `stream` (buffered in `buf`, which keeps any bytes past it).
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> std::io::Result<ResponseHead> {
    let (head, body_len) = read_until_complete(stream, buf).await?;
    buf.advance(head.head_len + body_len);
    Ok(head)
}

/// Reads until `buf` holds a complete response; returns its head and body length (nothing is
/// consumed from `buf`).
async fn read_until_complete(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> std::io::Result<(ResponseHead, usize)> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        fill(stream, buf).await?;
    };
    loop {
        let body = &buf[head.head_len..];
        let complete = match head.body {
            BodyLength::Length(n) => (body.len() >= n).then_some(n),
            BodyLength::Chunked => chunked_body_len(body)?,
        };
        if let Some(n) = complete {
            return Ok((head, n));
        }
        fill(stream, buf).await?;
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<()> {
    buf.reserve(8 * 1024);
    if stream.read_buf(buf).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Sends `target`'s request once on a new connection and returns the status and the body (raw:
/// still chunk-encoded when the response is chunked), to check a target before loading it.
///
/// # Errors
/// Connection, I/O and parse errors, or a timeout.
pub async fn probe(target: &Target) -> std::io::Result<(u16, Bytes)> {
    tokio::time::timeout(RESPONSE_TIMEOUT, async {
        let mut stream = TcpStream::connect(target.addr).await?;
        stream.write_all(&target.request).await?;
        let mut buf = BytesMut::new();
        let (head, body_len) = read_until_complete(&mut stream, &mut buf).await?;
        let body = Bytes::copy_from_slice(&buf[head.head_len..head.head_len + body_len]);
        Ok((head.status, body))
    })
    .await
    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed() {
        let data = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        let head = parse_head(data).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.body, BodyLength::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&data[head.head_len..], b"hello");

        let close =
            b"HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n";
        let head = parse_head(close).unwrap().unwrap();
        assert_eq!(
            (head.status, head.body, head.keep_alive),
            (401, BodyLength::Chunked, false)
        );

        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_are_delimited() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
        assert_eq!(chunked_body_len(body).unwrap(), Some(body.len() - 4));
        assert_eq!(chunked_body_len(&body[..10]).unwrap(), None);
        assert_eq!(
            chunked_body_len(b"0\r\nx-trailer: 1\r\n\r\n").unwrap(),
            Some(19)
        );
        assert!(chunked_body_len(b"zz\r\n").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_sorted(&values, 50.0), 50);
        assert_eq!(percentile_sorted(&values, 99.0), 99);
        assert_eq!(percentile_sorted(&values, 100.0), 100);
        assert_eq!(percentile_sorted(&values, 0.0), 1);
        assert_eq!(percentile_sorted(&[], 50.0), 0);
    }

    #[test]
    fn requests_are_encoded_with_host_and_length() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t = Target::new(addr, "POST", "/n", &[("Cookie", "a=b")], b"<xml/>", 200);
        assert_eq!(
            &t.request[..],
            b"POST /n HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nCookie: a=b\r\nContent-Length: 6\r\n\r\n<xml/>"
        );
        let g = Target::new(addr, "GET", "/", &[], b"", 200);
        assert_eq!(
            &g.request[..],
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn drives_a_real_server_and_counts_statuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let ok = Target::new(addr, "GET", "/", &[], b"", 200);
        assert_eq!(probe(&ok).await.unwrap(), (200, Bytes::from_static(b"hi")));
        let options = LoadOptions {
            connections: 2,
            threads: 1,
            // A functional check of the generator, not a measurement: keep it short.
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(100),
        };
        let mut report = tokio::task::spawn_blocking(move || run(&ok, options))
            .await
            .unwrap()
            .unwrap();
        assert!(report.ok > 0 && report.errors == 0, "{report:?}");
        assert_eq!(report.latencies_ns.len() as u64, report.ok);
        let p = report.percentiles(&[50.0, 99.0]);
        assert!(p[0] <= p[1]);
        let missing = Target::new(addr, "GET", "/missing", &[], b"", 200);
        let report = tokio::task::spawn_blocking(move || run(&missing, options))
            .await
            .unwrap()
            .unwrap();
        assert!(report.ok == 0 && report.errors > 0, "{report:?}");
    }
}
