//! `SandboxExtractor`: runs each document's extraction in a child process
//! (`nachweis sandbox-extract`) with rlimits, a wall-clock timeout, no network
//! and a cleared environment, and maps every way the child can end to an
//! `ExtractedDocument` (text, or a typed `DocumentProblem`).
//!
//! Why a process: parser panics can be caught, but stack overflows, allocation
//! aborts and runaway C code (Tesseract, Leptonica) cannot, in-process.
use super::protocol::{ChildArgs, ChildLimits, ChildMessage};
use super::{DocumentFile, Extractor};
use crate::domain::document::{DocumentProblem, ExtractedDocument, ProblemKind};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Resource limits for one extraction child. Defaults suit A4 uploads of up
/// to 100 pages on a worker with a few GiB of memory per core.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock budget for a document before its page count is known
    /// (parsing, and the whole run of a single image).
    pub timeout: Duration,
    /// Added to the budget per page once the child has reported the page
    /// count: OCR of a page takes 0.5–3 s on one core.
    pub timeout_per_page: Duration,
    /// RLIMIT_AS per child. Tesseract's `deu` model plus a 300 dpi page is
    /// ~250 MB per OCR thread; a 60 MP photo needs ~250 MB more while decoding.
    pub address_space_bytes: u64,
    /// RLIMIT_CPU per child (all its threads together); a backstop behind
    /// the wall-clock timeout.
    pub cpu_seconds: u64,
    /// Files above this size are refused without starting a child.
    pub max_file_bytes: u64,
    /// Documents with more pages to OCR than this are refused as too large.
    pub max_pages: u32,
    /// Documents with more pages than this in all are refused as too large
    /// (text-layer pages cost milliseconds, so this is far above `max_pages`).
    pub max_total_pages: u32,
    /// Images (uploaded or embedded in a PDF) above this pixel count are
    /// refused before decoding.
    pub max_image_pixels: u64,
    /// The child's JSON result may not exceed this (100 pages of dense text
    /// are ~1 MB).
    pub max_output_bytes: usize,
    /// Documents extracted at once (one child each).
    pub parallelism: usize,
}

impl Limits {
    /// The part of the limits the child enforces itself, on its command line.
    pub(crate) fn child_limits(&self) -> ChildLimits {
        ChildLimits {
            max_pages: self.max_pages,
            max_total_pages: self.max_total_pages,
            max_image_pixels: self.max_image_pixels,
            max_file_bytes: self.max_file_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(60),
            timeout_per_page: Duration::from_secs(10),
            address_space_bytes: 3 << 30,
            cpu_seconds: 1200,
            max_file_bytes: 50_000_000,
            max_pages: 100,
            max_total_pages: 1000,
            max_image_pixels: 60_000_000,
            max_output_bytes: 16 << 20,
            parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// Measurements of one child run, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunStats {
    pub wall: Duration,
    /// Peak resident set size of the child (`ru_maxrss`), in bytes.
    pub max_rss_bytes: u64,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
    /// Whether the child ran in its own network namespace.
    pub network_isolated: bool,
}

/// The production `Extractor`: one sandboxed child process per document.
#[derive(Debug)]
pub struct SandboxExtractor {
    program: PathBuf,
    limits: Limits,
}

/// Warn once per process, not per document, when isolation is unavailable.
static NETWORK_WARNING_GIVEN: AtomicBool = AtomicBool::new(false);

/// Upper bound on captured stderr: enough to classify a crash.
const MAX_STDERR_BYTES: usize = 64 << 10;

/// How a child run ended, before mapping to a result. `M` is the final
/// protocol message of the child kind (extraction or rendering).
pub(crate) enum Ending<M> {
    Message(M),
    TimedOut,
    OutputTooLarge,
    Signaled(i32),
    Exited(i32),
    SpawnFailed(std::io::Error),
}

impl SandboxExtractor {
    /// `program` is the `nachweis` binary (`std::env::current_exe()` in the
    /// worker, `env!("CARGO_BIN_EXE_nachweis")` in tests).
    pub fn new(program: PathBuf, limits: Limits) -> Self {
        SandboxExtractor { program, limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Extracts one document with `threads` page threads in its child, and
    /// reports what the run cost.
    #[tracing::instrument(skip_all, fields(document_id = %document.document_id))]
    pub fn extract_one(&self, document: &DocumentFile, threads: usize) -> (ExtractedDocument, RunStats) {
        let problem = |kind: ProblemKind, detail: String| ExtractedDocument {
            document_id: document.document_id.clone(),
            pages: Vec::new(),
            problem: Some(DocumentProblem { kind, detail }),
        };
        match std::fs::metadata(&document.path) {
            Err(_) => return (problem(ProblemKind::MissingFile, "the file could not be opened".into()), RunStats::default()),
            Ok(meta) if !meta.is_file() => {
                return (problem(ProblemKind::MissingFile, "not a regular file".into()), RunStats::default());
            }
            Ok(meta) if meta.len() > self.limits.max_file_bytes => {
                let detail = format!("{} bytes exceed the limit of {} bytes", meta.len(), self.limits.max_file_bytes);
                return (problem(ProblemKind::TooLarge, detail), RunStats::default());
            }
            Ok(_) => {}
        }
        let (ending, stderr, stats) = self.run_child(document, threads);
        let document = self.interpret(document, ending, &stderr);
        (document, stats)
    }

    fn command(&self, document: &DocumentFile, threads: usize) -> Command {
        let args = ChildArgs {
            media_type: document.media_type.clone(),
            threads: threads.max(1),
            limits: self.limits.child_limits(),
            path: document.path.clone(),
        };
        sandboxed_command(&self.program, "sandbox-extract", args.to_argv(), &self.limits)
    }

    fn run_child(&self, document: &DocumentFile, threads: usize) -> (Ending<ChildMessage>, Vec<u8>, RunStats) {
        run_sandboxed(self.command(document, threads), &self.limits, &document.document_id)
    }

    fn interpret(&self, document: &DocumentFile, ending: Ending<ChildMessage>, stderr: &[u8]) -> ExtractedDocument {
        let mut out = ExtractedDocument { document_id: document.document_id.clone(), pages: Vec::new(), problem: None };
        let problem = |kind, detail: String| Some(DocumentProblem { kind, detail });
        let stderr = String::from_utf8_lossy(stderr);
        out.problem = match ending {
            Ending::Message(ChildMessage::Finished { pages }) => {
                if pages.iter().all(|p| p.text.trim().is_empty()) {
                    let detail = format!("no text found on any of {} page(s)", pages.len());
                    out.pages = pages;
                    problem(ProblemKind::NoText, detail)
                } else {
                    out.pages = pages;
                    None
                }
            }
            Ending::Message(ChildMessage::Failed { kind, detail }) => problem(kind, detail),
            Ending::Message(ChildMessage::Started { .. }) => {
                problem(ProblemKind::ExtractorCrashed, "extractor ended without a result".into())
            }
            Ending::TimedOut => problem(ProblemKind::Timeout, "extraction exceeded its time limit".into()),
            Ending::OutputTooLarge => problem(
                ProblemKind::TooLarge,
                format!("extracted text exceeds {} bytes", self.limits.max_output_bytes),
            ),
            Ending::Signaled(libc::SIGXCPU) => problem(ProblemKind::Timeout, "extraction exceeded its CPU time limit".into()),
            Ending::Signaled(sig) => {
                // Classify from the runtime's own last words (they carry no document data).
                let cause = if stderr.contains("memory allocation of") || stderr.contains("bad_alloc") {
                    format!("out of memory (address-space limit {} MiB); ", self.limits.address_space_bytes >> 20)
                } else if stderr.contains("has overflowed its stack") {
                    "stack overflow; ".to_string()
                } else {
                    String::new()
                };
                problem(ProblemKind::ExtractorCrashed, format!("{cause}extractor terminated by signal {sig}"))
            }
            Ending::Exited(code) => {
                problem(ProblemKind::ExtractorCrashed, format!("extractor exited with status {code} without a result"))
            }
            // Too many processes, no memory to fork, the binary replaced
            // during an upgrade: nothing the document can be blamed for.
            Ending::SpawnFailed(e) => {
                problem(ProblemKind::ExtractorUnavailable, format!("the extractor could not be started: {e}"))
            }
        };
        out
    }
}

impl Extractor for SandboxExtractor {
    fn extract_all(&self, documents: &[DocumentFile]) -> Vec<ExtractedDocument> {
        if documents.is_empty() {
            return Vec::new();
        }
        let workers = self.limits.parallelism.clamp(1, documents.len());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // Cores left idle by fewer documents go to page threads inside the children.
        let threads_per_child = (cores / workers).max(1);
        let next = AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<ExtractedDocument>>> =
            documents.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(document) = documents.get(i) else { break };
                        let (result, _) = self.extract_one(document, threads_per_child);
                        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    }
                });
            }
        });
        results
            .into_iter()
            .zip(documents)
            .map(|(slot, doc)| {
                slot.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| ExtractedDocument {
                    document_id: doc.document_id.clone(),
                    pages: Vec::new(),
                    problem: Some(DocumentProblem {
                        kind: ProblemKind::ExtractorCrashed,
                        detail: "document was not processed".into(),
                    }),
                })
            })
            .collect()
    }
}

/// The child command: this binary with `subcommand` and `argv`, a cleared
/// environment, rlimits, its own process group and no network. Shared by
/// extraction (`sandbox-extract`) and page rendering (`sandbox-render`).
pub(crate) fn sandboxed_command(program: &Path, subcommand: &str, argv: Vec<std::ffi::OsString>, limits: &Limits) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg(subcommand).args(argv);
    cmd.env_clear();
    // Must be in the environment at exec: OpenMP reads it once at start-up,
    // and its threading makes Tesseract several times slower under load.
    cmd.env("OMP_THREAD_LIMIT", "1");
    // glibc reserves 64 MB of address space per malloc arena and thread;
    // two arenas keep RLIMIT_AS about real memory, not reservations.
    cmd.env("MALLOC_ARENA_MAX", "2");
    cmd.env("LC_ALL", "C");
    if let Some(dir) = std::env::var_os("TESSDATA_PREFIX") {
        cmd.env("TESSDATA_PREFIX", dir);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Own process group, so a timeout kills everything the child started.
    cmd.process_group(0);
    let limits = limits.clone();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (setrlimit, prctl, unshare).
    unsafe {
        cmd.pre_exec(move || {
            set_rlimit(libc::RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes)?;
            set_rlimit(libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 5)?;
            // The child writes no files; a write to one raises SIGXFSZ.
            set_rlimit(libc::RLIMIT_FSIZE, 0, 0)?;
            set_rlimit(libc::RLIMIT_NOFILE, 64, 64)?;
            set_rlimit(libc::RLIMIT_CORE, 0, 0)?;
            // Die with the worker thread that waits for us.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // No network: a fresh, empty network namespace. Unprivileged
            // callers may get one inside a new user namespace; if neither
            // works the parent notices and warns (the child still runs).
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
            }
            Ok(())
        });
    }
    cmd
}

/// What the runner needs to know about a child's protocol messages.
pub(crate) trait ChildProtocol: serde::de::DeserializeOwned + Send + 'static {
    /// For a progress message that announces the page count: that count,
    /// which extends the time budget by `timeout_per_page` each. `None` for
    /// a result message (the last one wins).
    fn announced_pages(&self) -> Option<u32>;
}

impl ChildProtocol for ChildMessage {
    fn announced_pages(&self) -> Option<u32> {
        match self {
            ChildMessage::Started { pages } => Some(*pages),
            _ => None,
        }
    }
}

/// Runs a sandboxed child to its end under the wall-clock and output
/// limits, reading its JSON lines; `subject_id` names what it works on in
/// the (single) warning about missing network isolation.
pub(crate) fn run_sandboxed<M: ChildProtocol>(mut command: Command, limits: &Limits, subject_id: &str) -> (Ending<M>, Vec<u8>, RunStats) {
    let started = Instant::now();
    let mut stats = RunStats::default();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return (Ending::SpawnFailed(e), Vec::new(), stats),
    };
    let pid = child.id() as libc::pid_t;
    stats.network_isolated = network_isolated(pid);
    if !stats.network_isolated && !NETWORK_WARNING_GIVEN.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            message = "Sandboxed children run without network isolation (unshare failed).",
            subject_id = %subject_id
        );
    }

    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (events_tx, events) = mpsc::channel::<StdoutEvent<M>>();
    let max_output = limits.max_output_bytes;
    let stdout_reader = std::thread::spawn(move || read_protocol(stdout, max_output, events_tx));
    let stderr_reader = std::thread::spawn(move || read_bounded(stderr, MAX_STDERR_BYTES));

    let mut deadline = started + limits.timeout;
    let mut last_message = None;
    let mut too_large = false;
    let mut timed_out = false;
    let status = loop {
        // Waits for the child without reaping it until it has exited,
        // polling both the process and the protocol events.
        if let Some(done) = wait4(pid, false) {
            break Some(done);
        }
        match events.recv_timeout(Duration::from_millis(20)) {
            Ok(StdoutEvent::Message(msg)) => match msg.announced_pages() {
                Some(pages) => deadline = started + limits.timeout + limits.timeout_per_page * pages,
                None => last_message = Some(msg),
            },
            Ok(StdoutEvent::TooLarge) => {
                too_large = true;
                kill_group(pid);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // stdout is closed: the child is exiting; poll without spinning.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(10)),
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group(pid);
            break wait4(pid, true);
        }
    };
    // Drain what the reader saw after the last poll.
    let _ = stdout_reader.join();
    for event in events.try_iter() {
        match event {
            StdoutEvent::Message(msg) if msg.announced_pages().is_some() => {}
            StdoutEvent::Message(msg) => last_message = Some(msg),
            StdoutEvent::TooLarge => too_large = true,
        }
    }
    let stderr = stderr_reader.join().unwrap_or_default();
    stats.wall = started.elapsed();
    let ending = match status {
        None => Ending::TimedOut,
        Some((raw, usage)) => {
            stats.max_rss_bytes = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
            stats.user_cpu = timeval(usage.ru_utime);
            stats.system_cpu = timeval(usage.ru_stime);
            let status = std::process::ExitStatus::from_raw(raw);
            if timed_out {
                Ending::TimedOut
            } else if too_large {
                Ending::OutputTooLarge
            } else if let Some(msg) = last_message.filter(|_| status.success()) {
                Ending::Message(msg)
            } else if let Some(sig) = status.signal() {
                Ending::Signaled(sig)
            } else {
                Ending::Exited(status.code().unwrap_or(-1))
            }
        }
    };
    (ending, stderr, stats)
}

/// Entry point of `nachweis sandbox-extract ARGS…` (dispatched by `main`
/// before anything else starts); returns the exit code.
pub fn child_main(args: &[String]) -> i32 {
    super::child::run(args)
}

enum StdoutEvent<M> {
    Message(M),
    TooLarge,
}

/// Reads JSON lines from the child, forwarding each parsed message, and stops
/// (so the child gets EPIPE) once `max` bytes have been read.
fn read_protocol<M: ChildProtocol>(stdout: impl Read, max: usize, events: mpsc::Sender<StdoutEvent<M>>) {
    let mut reader = BufReader::new(stdout.take(max as u64 + 1));
    let mut total = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if total > max {
                    let _ = events.send(StdoutEvent::TooLarge);
                    return;
                }
                if let Ok(msg) = serde_json::from_slice::<M>(&line) {
                    let _ = events.send(StdoutEvent::Message(msg));
                }
            }
        }
    }
}

/// Keeps the first `max` bytes and drains the rest, so the child never blocks on a full pipe.
fn read_bounded(mut stream: impl Read, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a stack value.
    unsafe {
        if libc::getrlimit(resource, &mut current) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Never ask for more than the hard limit we already have (unprivileged
        // processes cannot raise it).
        let hard = hard.min(current.rlim_max);
        let limit = libc::rlimit { rlim_cur: soft.min(hard), rlim_max: hard };
        if libc::setrlimit(resource, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `wait4` on the child: `None` while it runs (non-blocking mode).
fn wait4(pid: libc::pid_t, block: bool) -> Option<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; the kernel fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: pid is our own child, status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            return Some((status, usage));
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // ECHILD: already reaped elsewhere; report a kill so callers do not wait forever.
            return Some((libc::SIGKILL, usage));
        }
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: signalling the child's own process group (it is its leader).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Whether the child's network namespace differs from ours. The namespace
/// is set up before exec, and `spawn` returns after exec, so this is final.
fn network_isolated(pid: libc::pid_t) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/net");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a != b)
}
