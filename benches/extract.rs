//! Extraction benchmark: our sandboxed extractor against the poppler and
//! Tesseract command-line tools on the same inputs, printed as a table.
//!
//! Run with `cargo bench --bench extract`. Rows: (a) PDF text layer vs
//! `pdftotext`, (b) OCR throughput vs the `tesseract` CLI, (c) OCR accuracy
//! (CER, word recall) on `ocr_gt_german`, (d) a hook for a whole-bundle row.
use nachweis::domain::document::TextSource;
use nachweis::extract::{DocumentFile, Limits, RunStats, SandboxExtractor};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/corpus.rs"]
mod support;

fn corpus() -> PathBuf {
    support::corpus_dir()
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// One line of the results table.
struct Row {
    name: String,
    pages: usize,
    wall: Duration,
    peak_rss: u64,
    note: String,
}

impl Row {
    fn pages_per_second(&self) -> f64 {
        self.pages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("\n{title}");
    println!("{:<44} {:>6} {:>9} {:>9} {:>12}  note", "what", "pages", "wall s", "pages/s", "peak RSS MiB");
    for r in rows {
        println!(
            "{:<44} {:>6} {:>9.2} {:>9.2} {:>12.1}  {}",
            r.name,
            r.pages,
            r.wall.as_secs_f64(),
            r.pages_per_second(),
            r.peak_rss as f64 / f64::from(1 << 20),
            r.note
        );
    }
    if let [ours, others @ ..] = rows {
        for theirs in others {
            println!(
                "ratio ours / {}: throughput {:.2}x, peak RSS {:.2}x",
                theirs.name,
                ours.pages_per_second() / theirs.pages_per_second(),
                ours.peak_rss as f64 / theirs.peak_rss.max(1) as f64
            );
        }
    }
}

/// Runs `jobs` on `parallelism` threads; each job returns its peak RSS.
fn run_parallel<T: Sync>(items: &[T], parallelism: usize, job: impl Fn(&T) -> u64 + Sync) -> (Duration, u64) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let peak = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parallelism.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    peak.fetch_max(job(item), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (started.elapsed(), peak.into_inner())
}

/// Runs a command to completion and returns its stdout and peak RSS (from
/// `wait4`, like the sandbox measures its children).
fn run_measured(mut cmd: Command) -> (Vec<u8>, u64) {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).stdin(Stdio::null()).spawn().expect("tool runs");
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: waiting for our own child; rusage is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    (out, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

fn extractor() -> SandboxExtractor {
    SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default())
}

/// Candidate text PDFs: the civil-status templates, the corpus categories
/// that are mostly text, and the fixture bundles' PDFs when present.
fn pdf_inputs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut walk = vec![
        corpus().join("german_admin_docs/pstv_personenstandsurkunden_muster"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundles"),
    ];
    while let Some(dir) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pdf")) {
                files.push(p);
            }
        }
    }
    let manifest = std::fs::read_to_string(corpus().join("pdf_robustness/MANIFEST.tsv")).unwrap_or_default();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [file, category, ..] = cols.as_slice()
            && matches!(*category, "misc_layout" | "german_text_layer" | "many_pages" | "fonts_and_encodings")
        {
            files.push(corpus().join("pdf_robustness").join(file));
        }
    }
    files.sort();
    files
}

fn doc(path: &Path, media_type: &str) -> DocumentFile {
    DocumentFile { document_id: path.display().to_string(), media_type: media_type.into(), path: path.to_path_buf() }
}

/// (a) Text-layer PDFs: only files whose every page we read from the text
/// layer (decided by a first, untimed pass), so both tools do the same work.
fn bench_text_layer() {
    let ex = extractor();
    // Selection pass: with no OCR pages allowed, files that would need OCR
    // are refused right after text extraction.
    let text_only = SandboxExtractor::new(
        PathBuf::from(env!("CARGO_BIN_EXE_nachweis")),
        Limits { max_pages: 0, ..Limits::default() },
    );
    let mut selected = Vec::new();
    let mut pages = 0;
    for path in pdf_inputs() {
        let (result, _) = text_only.extract_one(&doc(&path, "application/pdf"), 1);
        if result.problem.is_none() && result.pages.iter().all(|p| p.source == TextSource::TextLayer) {
            pages += result.pages.len();
            selected.push(path);
        }
    }
    let (wall, rss) = run_parallel(&selected, cores(), |p| ex.extract_one(&doc(p, "application/pdf"), 1).1.max_rss_bytes);
    let ours = Row {
        name: "nachweis sandbox (pdf-extract)".into(),
        pages,
        wall,
        peak_rss: rss,
        note: format!("{} PDFs, {} parallel children", selected.len(), cores()),
    };
    let (wall, rss) = run_parallel(&selected, cores(), |p| {
        let mut cmd = Command::new("pdftotext");
        cmd.arg("-enc").arg("UTF-8").arg(p).arg("-");
        run_measured(cmd).1
    });
    let theirs = Row { name: "pdftotext (poppler)".into(), pages, wall, peak_rss: rss, note: "same PDFs".into() };
    print_rows("(a) PDF text layer", &[ours, theirs]);
}

fn gt_pages() -> Vec<(PathBuf, String)> {
    let dir = corpus().join("ocr_gt_german");
    let mut pages: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("ocr_gt_german")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .filter_map(|png| {
            let stem = png.file_stem()?.to_string_lossy().to_string();
            let gt = std::fs::read_to_string(dir.join(format!("{stem}.gt.raw.txt"))).ok()?;
            Some((png, gt))
        })
        .collect();
    pages.sort();
    pages
}

/// (b) and (c): OCR throughput and accuracy, ours vs the `tesseract` CLI
/// (defaults, `-l deu`, `OMP_THREAD_LIMIT=1`), same parallelism.
fn bench_ocr() {
    let pages = gt_pages();
    let ex = extractor();
    let ours_text = std::sync::Mutex::new(vec![String::new(); pages.len()]);
    let indexed: Vec<usize> = (0..pages.len()).collect();
    let (wall, rss) = run_parallel(&indexed, cores(), |&i| {
        let (result, stats): (_, RunStats) = ex.extract_one(&doc(&pages[i].0, "image/png"), 1);
        ours_text.lock().unwrap()[i] = result.pages.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n");
        stats.max_rss_bytes
    });
    let ours = Row {
        name: "nachweis sandbox (PSM 1, Sauvola)".into(),
        pages: pages.len(),
        wall,
        peak_rss: rss,
        note: format!("{} parallel children, 1 thread each", cores()),
    };
    let run_cli = |extra: &[&str]| {
        let texts = std::sync::Mutex::new(vec![String::new(); pages.len()]);
        let (wall, rss) = run_parallel(&indexed, cores(), |&i| {
            let mut cmd = Command::new("tesseract");
            cmd.arg(&pages[i].0).arg("stdout").arg("-l").arg("deu").args(extra).env("OMP_THREAD_LIMIT", "1");
            let (out, rss) = run_measured(cmd);
            texts.lock().unwrap()[i] = String::from_utf8_lossy(&out).into_owned();
            rss
        });
        (wall, rss, texts.into_inner().unwrap())
    };
    let (wall, rss, cli_default_text) = run_cli(&[]);
    let cli = Row {
        name: "tesseract CLI (defaults: PSM 3, Otsu)".into(),
        pages: pages.len(),
        wall,
        peak_rss: rss,
        note: format!("{} parallel processes", cores()),
    };
    let (wall, rss, cli_same_text) = run_cli(&["--psm", "1", "-c", "thresholding_method=2"]);
    let cli_same = Row {
        name: "tesseract CLI (our settings: PSM 1, Sauvola)".into(),
        pages: pages.len(),
        wall,
        peak_rss: rss,
        note: format!("{} parallel processes", cores()),
    };
    print_rows("(b) OCR throughput on ocr_gt_german", &[ours, cli, cli_same]);

    println!("\n(c) OCR accuracy on ocr_gt_german ({} pages; whitespace-normalised)", pages.len());
    println!("{:<44} {:>9} {:>12}", "what", "CER %", "word recall %");
    for (name, texts) in [
        ("nachweis sandbox", ours_text.into_inner().unwrap()),
        ("tesseract CLI (defaults)", cli_default_text),
        ("tesseract CLI (our settings)", cli_same_text),
    ] {
        let (mut errors, mut chars, mut found, mut words) = (0usize, 0usize, 0usize, 0usize);
        for ((_, gt), text) in pages.iter().zip(&texts) {
            let (g, t) = (normalise(gt), normalise(text));
            errors += levenshtein(&g, &t);
            chars += g.chars().count();
            let (f, w) = word_recall(&g, &t);
            found += f;
            words += w;
        }
        println!(
            "{:<44} {:>9.2} {:>12.2}",
            name,
            100.0 * errors as f64 / chars.max(1) as f64,
            100.0 * found as f64 / words.max(1) as f64
        );
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Character-level edit distance (two rows, O(n·m) time).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Ground-truth words (multiset) that also occur in the OCR text.
fn word_recall(gt: &str, text: &str) -> (usize, usize) {
    let mut available: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for w in text.split(' ') {
        *available.entry(w).or_default() += 1;
    }
    let mut found = 0;
    let gt_words: Vec<&str> = gt.split(' ').filter(|w| !w.is_empty()).collect();
    for w in &gt_words {
        if let Some(n) = available.get_mut(w).filter(|n| **n > 0) {
            *n -= 1;
            found += 1;
        }
    }
    (found, gt_words.len())
}

/// (d) Whole bundles: every fixture bundle through intake, sandboxed
/// extraction, classification, check and draft (what `nachweis check` does),
/// one bundle after another with documents in parallel, as the worker runs.
fn bench_whole_bundles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(dirs) = nachweis::queue::local::bundle_dirs(&root.join("fixtures/bundles")) else { return };
    let schemas = nachweis::startup::load_schemas(&root.join("schemas")).expect("schemas are valid");
    let pipeline = nachweis::worker::Pipeline {
        schemas: schemas.into(),
        extractor: std::sync::Arc::new(extractor()),
        settings: nachweis::config::Settings::default(),
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let started = Instant::now();
    let mut pages = 0usize;
    for d in &dirs {
        let bundle = nachweis::intake::read_bundle_dir(d).expect("fixture bundle");
        if let Ok((_, extracted)) = nachweis::worker::check_bundle(&pipeline, &bundle, &[], "case-bench", today) {
            pages += extracted.iter().map(|e| e.pages.len()).sum::<usize>();
        }
    }
    let wall = started.elapsed();
    // SAFETY: getrusage fills a plain struct; RUSAGE_CHILDREN reports the
    // largest resident set of any waited-for child (the extraction sandboxes).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let peak_child = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    let row = Row {
        name: format!("{} fixture bundles (check, no store)", dirs.len()),
        pages,
        wall,
        peak_rss: peak_child,
        note: format!("{:.2} bundles/s; RSS = largest sandbox child of the whole bench run", dirs.len() as f64 / wall.as_secs_f64()),
    };
    print_rows("(d) whole bundles", &[row]);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing to
    // distinguish, so only run the measurements when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        println!("extract bench: skipped (run with `cargo bench --bench extract`)");
        return;
    }
    println!("extract bench on {} cores", cores());
    bench_text_layer();
    bench_ocr();
    bench_whole_bundles();
}
