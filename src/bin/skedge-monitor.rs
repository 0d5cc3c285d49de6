//! `skedge-monitor`: the native side of `skedge::monitor`, for tests and the monitoring scripts.
//!
//! ```text
//! skedge-monitor simulate MODEL.skedge --input texts.txt [--sample-rate R] [--seed S]
//!                [--per-snapshot N] [--start-ms T] [--step-ms D] [--time] [--max-texts K]
//!     predicts every text (one per line, or {"text": ...} per line with --format jsonl) with a
//!     Monitor, text i at time T + i·D, closing a snapshot every N texts (and at the end); prints
//!     one snapshot JSON per line (a seed reproduces the sample; the ids are new on every run)
//! skedge-monitor baseline MODEL.skedge    name, version, sha256, classes and drift baseline as JSON
//! skedge-monitor drift MODEL.skedge [SNAPSHOTS.jsonl ...]
//!     aggregates the snapshots (all for this model) and prints their drift against the baseline
//! skedge-monitor check [SNAPSHOT.json]    validates one snapshot (Snapshot::parse, or
//!     ExperimentSnapshot::parse when its format is skedge-experiment-snapshot); exit 1 if invalid
//! ```
//!
//! Exit status: 0 success, 1 invalid snapshot, 2 other error (one `skedge-monitor: error[CODE]:
//! message` line first on stderr; a command line clap refuses is `INVALID_INPUT`).

#[cfg(feature = "cli")]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(feature = "cli"))]
fn main() {
    eprintln!("skedge-monitor: built without the `cli` feature");
    std::process::exit(2);
}

#[cfg(feature = "cli")]
mod cli {
    use std::fs;
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::time::Instant;

    use clap::{Parser, Subcommand, ValueEnum};
    use serde_json::json;
    use sha2::{Digest, Sha256};
    use skedge::experiment::{ExperimentSnapshot, EXPERIMENT_FORMAT};
    use skedge::monitor::{self, Monitor, MonitorConfig, Snapshot, Stats};
    use skedge::{Error, Result, TextClassifier};

    #[derive(Parser)]
    #[command(
        name = "skedge-monitor",
        about = "Monitoring snapshots and drift of skedge models"
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum Format {
        Text,
        Jsonl,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Predict texts with monitoring on and print the snapshots, one JSON per line.
        Simulate {
            model: PathBuf,
            /// Texts, one per line (default: stdin).
            #[arg(long)]
            input: Option<PathBuf>,
            #[arg(long, value_enum, default_value = "text")]
            format: Format,
            #[arg(long, default_value_t = 1.0)]
            sample_rate: f64,
            #[arg(long, default_value_t = 0)]
            seed: u64,
            /// Texts per snapshot (0: one snapshot at the end).
            #[arg(long, default_value_t = 0)]
            per_snapshot: usize,
            /// Time of the first text, ms since the Unix epoch.
            #[arg(long, default_value_t = 1_767_225_600_000.0)]
            start_ms: f64,
            /// Time between texts, ms.
            #[arg(long, default_value_t = 10.0)]
            step_ms: f64,
            /// Time each prediction (latency histogram).
            #[arg(long)]
            time: bool,
            /// Sampled texts kept per snapshot (opt-in).
            #[arg(long, default_value_t = 0)]
            max_texts: usize,
        },
        /// Print the model's identity and drift baseline as JSON.
        Baseline { model: PathBuf },
        /// Aggregate snapshots (JSON lines) of the model and print their drift against its baseline.
        Drift { model: PathBuf, snapshots: Vec<PathBuf> },
        /// Validate one snapshot (default: stdin).
        Check { snapshot: Option<PathBuf> },
    }

    pub fn main() -> ExitCode {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                let code = Error::InvalidInput(String::new()).code();
                eprintln!("skedge-monitor: error[{code}]: {}", usage_error(e));
                return ExitCode::from(2);
            }
        };
        match run(cli.command) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("skedge-monitor: error[{}]: {e}", e.code());
                ExitCode::from(2)
            }
        }
    }

    /// The message of a command line clap refuses, printed as an `INVALID_INPUT` error (the first
    /// line `skedge-monitor: error[INVALID_INPUT]: ...`, then clap's tip and usage lines), as
    /// `skedge` does; `--help` is no error: clap prints it on stdout and exits 0.
    fn usage_error(e: clap::Error) -> String {
        if !e.use_stderr() {
            e.exit();
        }
        // Plain text (`render` is styled; its `Display` strips the styles).
        let text = e.render().to_string();
        let text = text.trim_end();
        match text.strip_prefix("error: ") {
            Some(message) => message.to_string(),
            // No command at all: clap's help, which lists them.
            None => format!("a command is needed\n\n{text}"),
        }
    }

    /// The id of a valid monitoring or experiment snapshot (by its `format`, as the collector).
    fn check(bytes: &[u8]) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Format {
            format: Option<String>,
        }
        let experiment = bytes.len() <= monitor::MAX_SNAPSHOT_BYTES
            && serde_json::from_slice::<Format>(bytes)
                .is_ok_and(|f| f.format.as_deref() == Some(EXPERIMENT_FORMAT));
        if experiment {
            return ExperimentSnapshot::parse(bytes).map(|s| s.id);
        }
        Snapshot::parse(bytes).map(|s| s.id)
    }

    /// The input of `check` or `drift`: the file, or stdin.
    fn open(path: Option<&Path>) -> Result<(Box<dyn BufRead>, String)> {
        Ok(match path {
            Some(p) => {
                let file = fs::File::open(p).map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
                (Box::new(BufReader::new(file)), p.display().to_string())
            }
            None => (Box::new(io::stdin().lock()), "stdin".into()),
        })
    }

    /// One snapshot: at most [`monitor::MAX_SNAPSHOT_BYTES`], read no further than one byte past
    /// them (a gigabyte on stdin is refused, not kept).
    fn read_snapshot(path: Option<&Path>) -> Result<Vec<u8>> {
        let (input, name) = open(path)?;
        let limit = monitor::MAX_SNAPSHOT_BYTES;
        let mut buf = Vec::new();
        input
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::Io(format!("{name}: {e}")))?;
        if buf.len() > limit {
            return Err(Error::SnapshotTooLarge { bytes: None, limit });
        }
        Ok(buf)
    }

    /// Calls `f` with each non-empty line of the file (or stdin), one snapshot a line: a line is
    /// read no further than one byte past [`monitor::MAX_SNAPSHOT_BYTES`], a longer one refused.
    fn for_each_snapshot(path: Option<&Path>, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let (mut input, name) = open(path)?;
        let limit = monitor::MAX_SNAPSHOT_BYTES;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut input)
                .take(limit as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::Io(format!("{name}: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if line.len() > limit {
                return Err(Error::SnapshotTooLarge { bytes: None, limit });
            }
            if !line.is_empty() {
                f(&line)?;
            }
        }
    }

    fn read(path: Option<&Path>) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        match path {
            Some(p) => buf = fs::read(p).map_err(|e| Error::Io(format!("{}: {e}", p.display())))?,
            None => {
                io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::Io(format!("stdin: {e}")))?;
            }
        }
        Ok(buf)
    }

    fn load(path: &Path) -> Result<(TextClassifier, String)> {
        let bytes = read(Some(path))?;
        let sha = skedge::hex::encode(&Sha256::digest(&bytes));
        Ok((TextClassifier::from_bytes(&bytes)?, sha))
    }

    fn texts(input: &[u8], format: Format) -> Result<Vec<String>> {
        let text = std::str::from_utf8(input).map_err(|e| Error::InvalidInput(format!("not UTF-8: {e}")))?;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|line| match format {
                Format::Text => Ok(line.to_string()),
                Format::Jsonl => {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| Error::InvalidInput(format!("not JSON: {e}")))?;
                    v.get("text")
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| Error::InvalidInput("expected {\"text\": string}".into()))
                }
            })
            .collect()
    }

    fn print(out: &mut impl Write, line: &str) -> Result<()> {
        writeln!(out, "{line}").map_err(|e| Error::Io(format!("stdout: {e}")))
    }

    fn run(command: Command) -> Result<ExitCode> {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match command {
            Command::Simulate {
                model,
                input,
                format,
                sample_rate,
                seed,
                per_snapshot,
                start_ms,
                step_ms,
                time,
                max_texts,
            } => {
                // Times its own `check` accepts: every window within 0 ..= MAX_TIME_MS.
                if !(0.0..=monitor::MAX_TIME_MS as f64).contains(&start_ms) {
                    return Err(Error::InvalidInput(format!(
                        "--start-ms must be a time from 0 to {} ms (9999-12-31), got {start_ms:?}",
                        monitor::MAX_TIME_MS
                    )));
                }
                if !(step_ms.is_finite() && step_ms >= 0.0) {
                    return Err(Error::InvalidInput(format!(
                        "--step-ms must be a finite number ≥ 0, got {step_ms:?}"
                    )));
                }
                let (clf, sha) = load(&model)?;
                let config = MonitorConfig {
                    sample_rate,
                    window_seconds: None,
                    seed,
                    max_texts,
                };
                // The ids' key from the system, whatever --seed: two runs with one seed and one
                // --start-ms draw the same sample, as two monitors would, but keep ids apart.
                let mut id_key = [0u8; 16];
                getrandom::getrandom(&mut id_key)
                    .map_err(|e| Error::Io(format!("no system randomness: {e}")))?;
                let mut mon = Monitor::new(&clf, &sha, config, start_ms, id_key)?;
                let texts = texts(&read(input.as_deref())?, format)?;
                // The last snapshot closes half a step after the last text.
                let last = start_ms + (texts.len().max(1) - 1) as f64 * step_ms + step_ms / 2.0;
                if last > monitor::MAX_TIME_MS as f64 {
                    return Err(Error::InvalidInput(format!(
                        "--start-ms {start_ms:?} with {} texts --step-ms {step_ms:?} apart ends after {} \
                         (9999-12-31), the last time a snapshot may carry",
                        texts.len(),
                        monitor::MAX_TIME_MS
                    )));
                }
                let mut now = start_ms;
                for (i, text) in texts.iter().enumerate() {
                    now = start_ms + i as f64 * step_ms;
                    let t0 = Instant::now();
                    let p = clf.predict(text)?;
                    let latency = time.then(|| t0.elapsed().as_secs_f64() * 1000.0);
                    mon.record(&clf, text, &p, latency, now);
                    if per_snapshot > 0 && (i + 1) % per_snapshot == 0 && i + 1 < texts.len() {
                        print(&mut out, &mon.snapshot(now + step_ms / 2.0).to_json())?;
                    }
                }
                print(&mut out, &mon.snapshot(now + step_ms / 2.0).to_json())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Baseline { model } => {
                let (clf, sha) = load(&model)?;
                let m = clf.metadata();
                let doc = json!({
                    "name": m.name,
                    "version": m.version,
                    "sha256": sha,
                    "classes": monitor::class_names(clf.classes()),
                    "baseline": m.baseline.as_ref().map(Stats::from_baseline),
                });
                print(&mut out, &doc.to_string())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Drift { model, snapshots } => {
                let (clf, sha) = load(&model)?;
                let mut total: Option<Stats> = None;
                let mut n = 0usize;
                let sources: Vec<Option<&Path>> = if snapshots.is_empty() {
                    vec![None]
                } else {
                    snapshots.iter().map(|p| Some(p.as_path())).collect()
                };
                for source in sources {
                    for_each_snapshot(source, |line| {
                        let s = Snapshot::parse(line)?;
                        if s.model.sha256 != sha {
                            return Ok(());
                        }
                        n += 1;
                        match total.as_mut() {
                            Some(t) => t.merge(&s.stats)?,
                            None => total = Some(s.stats),
                        }
                        Ok(())
                    })?;
                }
                let baseline = clf.metadata().baseline.as_ref().map(Stats::from_baseline);
                let drift = match (&baseline, &total) {
                    (Some(b), Some(t)) => Some(monitor::drift(b, t)),
                    _ => None,
                };
                let doc = json!({
                    "snapshots": n,
                    "stats": total,
                    "oov_rate": total.as_ref().and_then(Stats::oov_rate),
                    "baseline_oov_rate": baseline.as_ref().and_then(Stats::oov_rate),
                    "drift": drift,
                });
                print(&mut out, &doc.to_string())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Check { snapshot } => match read_snapshot(snapshot.as_deref()).and_then(|b| check(&b)) {
                // a file that cannot be read is no invalid snapshot
                Err(e @ Error::Io(_)) => Err(e),
                Ok(id) => {
                    print(&mut out, &json!({"valid": true, "id": id}).to_string())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    print(
                        &mut out,
                        &json!({"valid": false, "code": e.code(), "error": e.to_string()}).to_string(),
                    )?;
                    Ok(ExitCode::from(1))
                }
            },
        }
    }
}
