//! `skedge`: pack, predict, inspect and verify scikit-learn text models from the command line.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skedge::artifact::schema::Classes;
use skedge::interchange::Interchange;
use skedge::{artifact, Error, Prediction, Result, TextClassifier};

#[derive(Parser)]
#[command(
    name = "skedge",
    version,
    about = "scikit-learn text classifiers, bit-exact, at the edge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack an interchange JSON (written by scripts/export.py) into an artifact.
    Pack {
        /// The interchange file.
        interchange: PathBuf,
        /// The artifact to write.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Predict one text per input line; one JSON object per line on stdout.
    Predict {
        /// The artifact.
        model: PathBuf,
        /// Input file (default: stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        /// `text`: one text per line; `jsonl`: one {"text": ...} object per line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the artifact's metadata and pipeline summary as JSON.
    Inspect {
        /// The artifact.
        model: PathBuf,
    },
    /// Compare predictions with expected JSON lines ({"text", "label", "decision", "proba"}).
    Verify {
        /// The artifact.
        model: PathBuf,
        /// Expected outputs.
        #[arg(long)]
        expected: PathBuf,
        /// Largest accepted |Δproba|.
        #[arg(long, default_value_t = 1e-12)]
        proba_tolerance: f64,
    },
    /// Write `log(k)` for k = 1..=N as little-endian f64 to stdout: the engine's log, which the
    /// exporter compares with numpy's to record the exceptions (FORMAT.md, log_exceptions).
    #[command(hide = true)]
    LnTable {
        /// N.
        n: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skedge: error[{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

fn load(path: &Path) -> Result<(Vec<u8>, TextClassifier)> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let model = TextClassifier::from_bytes(&bytes)?;
    Ok((bytes, model))
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pack { interchange, out } => {
            let text = fs::read_to_string(&interchange).map_err(io_err(&interchange))?;
            let doc: Interchange =
                serde_json::from_str(&text).map_err(|e| Error::Interchange(e.to_string()))?;
            let bytes = artifact::to_bytes(&doc.into_body()?)?;
            // Write beside the target, then rename: a failed pack never leaves half a file.
            let tmp = out.with_extension("skedge.tmp");
            fs::write(&tmp, &bytes).map_err(io_err(&tmp))?;
            fs::rename(&tmp, &out).map_err(io_err(&out))?;
            eprintln!("skedge: wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict { model, input, format } => {
            let (_, model) = load(&model)?;
            let input = read_input(input.as_deref())?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let mut failed = false;
            for (n, line) in lines(&input).enumerate() {
                let result = parse_line(line, format).and_then(|text| model.predict(&text));
                let value = match result {
                    Ok(p) => prediction_json(&p, model.classes()),
                    Err(e) => {
                        failed = true;
                        eprintln!("skedge: line {}: error[{}]: {e}", n + 1, e.code());
                        json!({"error": {"code": e.code(), "message": e.to_string()}})
                    }
                };
                writeln!(out, "{value}").map_err(|e| Error::Io(e.to_string()))?;
            }
            out.flush().map_err(|e| Error::Io(e.to_string()))?;
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Inspect { model } => {
            let (bytes, model) = load(&model)?;
            let info = inspect(&bytes, &model);
            println!(
                "{}",
                serde_json::to_string_pretty(&info).map_err(|e| Error::Io(e.to_string()))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            model,
            expected,
            proba_tolerance,
        } => {
            let (_, model) = load(&model)?;
            let text = fs::read_to_string(&expected).map_err(io_err(&expected))?;
            let mut checked = 0usize;
            let mut mismatches = Vec::new();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let want: Value = serde_json::from_str(line)
                    .map_err(|e| Error::InvalidInput(format!("{}:{}: {e}", expected.display(), n + 1)))?;
                let text = want["text"]
                    .as_str()
                    .ok_or_else(|| Error::InvalidInput(format!("line {}: no \"text\"", n + 1)))?;
                let got = prediction_json(&model.predict(text)?, model.classes());
                checked += 1;
                if let Some(why) = compare(&want, &got, proba_tolerance) {
                    mismatches
                        .push(json!({"line": n + 1, "text": text, "why": why, "expected": want, "got": got}));
                }
            }
            let report = json!({
                "checked": checked,
                "mismatches": mismatches.len(),
                "first": mismatches.iter().take(10).collect::<Vec<_>>(),
            });
            println!("{report}");
            Ok(if mismatches.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::LnTable { n } => {
            let mut out = BufWriter::new(io::stdout().lock());
            for k in 1..=n {
                out.write_all(&libm::log(f64::from(k)).to_le_bytes())
                    .map_err(|e| Error::Io(e.to_string()))?;
            }
            out.flush().map_err(|e| Error::Io(e.to_string()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        Some(p) => buf = fs::read(p).map_err(io_err(p))?,
        None => {
            io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::Io(e.to_string()))?;
        }
    }
    Ok(buf)
}

/// Lines without their `\n` or `\r\n`; a final line without a newline counts.
fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn parse_line(line: &[u8], format: Format) -> Result<String> {
    let text = std::str::from_utf8(line).map_err(|e| Error::InvalidInput(format!("not UTF-8: {e}")))?;
    match format {
        Format::Text => Ok(text.to_owned()),
        Format::Jsonl => {
            let v: Value =
                serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("not JSON: {e}")))?;
            match v.get("text") {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(Error::InvalidInput(
                    "expected an object with a string \"text\"".into(),
                )),
            }
        }
    }
}

fn label_json(classes: &Classes, i: usize) -> Value {
    match classes {
        Classes::Int(v) => json!(v[i]),
        Classes::Str(v) => json!(v[i]),
    }
}

fn prediction_json(p: &Prediction, classes: &Classes) -> Value {
    json!({
        "label": label_json(classes, p.label),
        "decision": p.decision,
        "proba": p.proba,
    })
}

/// Labels and decisions must be identical, probabilities within the tolerance.
fn compare(want: &Value, got: &Value, tol: f64) -> Option<String> {
    if want["label"] != got["label"] {
        return Some("label".into());
    }
    let floats = |v: &Value| -> Option<Vec<f64>> {
        v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect())
    };
    if let Some(d) = floats(&want["decision"]) {
        let g = floats(&got["decision"]).unwrap_or_default();
        if d.len() != g.len() || d.iter().zip(&g).any(|(a, b)| a.to_bits() != b.to_bits()) {
            return Some("decision".into());
        }
    }
    match (floats(&want["proba"]), floats(&got["proba"])) {
        (None, None) => None,
        (Some(w), Some(g)) if w.len() == g.len() && w.iter().zip(&g).all(|(a, b)| (a - b).abs() <= tol) => {
            None
        }
        _ => Some("proba".into()),
    }
}

fn inspect(bytes: &[u8], model: &TextClassifier) -> Value {
    let m = model.metadata();
    let sha = Sha256::digest(bytes);
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let classes = match model.classes() {
        Classes::Int(v) => json!(v),
        Classes::Str(v) => json!(v),
    };
    json!({
        "name": m.name,
        "version": m.version,
        "format_version": artifact::FORMAT_VERSION,
        "bytes": bytes.len(),
        "sha256": hex,
        "skedge_version": m.skedge_version,
        "sklearn_version": m.sklearn_version,
        "python_version": m.python_version,
        "numpy_version": m.numpy_version,
        "unicode_version": m.unicode_version,
        "source_sha256": m.source_sha256,
        "created": m.created,
        "precision": format!("{:?}", m.precision).to_lowercase(),
        "provenance": m.provenance,
        "metrics": m.metrics,
        "estimator": model.classifier().estimator(),
        "classes": classes,
        "n_features": model.vectorizers().iter().map(|v| v.n_features()).sum::<u64>(),
    })
}
