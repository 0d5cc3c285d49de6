//! `skedge`: pack, predict, inspect and verify scikit-learn text models from the command line.

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skedge::artifact::crypto::{self, KeyKind};
use skedge::artifact::schema::Classes;
use skedge::artifact::{Encryption, LoadOptions, SealOptions};
use skedge::interchange::Interchange;
use skedge::pointer::Pointer;
use skedge::{artifact, Error, Field, Prediction, Result, TextClassifier, MAX_TEXT_BYTES};

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
        /// Sign with this Ed25519 secret key file (from `skedge keygen`).
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// Encrypt the body with this key file (from `skedge keygen --encryption`).
        #[arg(long, value_name = "FILE")]
        encrypt_key: Option<PathBuf>,
    },
    /// Rewrite an artifact (format 2 or 3 as format 3; format 4, a DataFrame model's, stays 4) in
    /// this version's layouts, without the interchange. A signature is never copied: sign again with --sign-key. With --public-key
    /// the input's signature is verified first; --decryption-key opens an encrypted input.
    Repack {
        /// The artifact to read.
        input: PathBuf,
        /// The artifact to write.
        output: PathBuf,
        /// Sign with this Ed25519 secret key file.
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// Encrypt the body with this key file.
        #[arg(long, value_name = "FILE")]
        encrypt_key: Option<PathBuf>,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Make a key: an Ed25519 pair NAME.key (secret) + NAME.pub (public) for signing, or with
    /// --encryption one XChaCha20-Poly1305 key NAME.key. Never overwrites a file.
    Keygen {
        /// Path and base name of the key files.
        name: PathBuf,
        /// Make an encryption key instead of a signing pair.
        #[arg(long)]
        encryption: bool,
    },
    /// Predict one text per input line; one JSON object per line on stdout.
    Predict {
        /// The artifact.
        model: PathBuf,
        /// Input file (default: stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        /// `text`: one text per line; `jsonl`: one {"text": ...} object per line, or for a model
        /// fitted on a DataFrame column (see `inspect`'s input_column) one record {COLUMN: ...}.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Print the artifact's metadata and pipeline summary as JSON.
    Inspect {
        /// The artifact.
        model: PathBuf,
        #[command(flatten)]
        keys: KeyArgs,
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
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Sign a publish pointer (FORMAT.md §5) with an Ed25519 secret key; the signed pointer,
    /// as it is to be stored, goes to stdout.
    SignPointer {
        /// The pointer JSON (its `signature` is replaced).
        pointer: PathBuf,
        /// Secret key file from `skedge keygen NAME`.
        #[arg(long, value_name = "FILE")]
        sign_key: PathBuf,
    },
    /// Check a publish pointer's fields and, with --public-key, its signature; prints it on
    /// success. Without a key an unsigned pointer passes (like an artifact with no key pinned).
    VerifyPointer {
        /// The pointer JSON.
        pointer: PathBuf,
        /// Refuse the pointer unless signed by this public key file; repeat during a rotation.
        #[arg(long, value_name = "FILE")]
        public_key: Vec<PathBuf>,
    },
    /// Write `log(k)` for k = 1..=N as little-endian f64 to stdout: the engine's log, which the
    /// exporter compares with numpy's to record the exceptions (FORMAT.md, log_exceptions).
    #[command(hide = true)]
    LnTable {
        /// N.
        n: u32,
    },
}

/// Keys a loader pins or holds (FORMAT.md §3).
#[derive(clap::Args)]
struct KeyArgs {
    /// Refuse the artifact unless signed by this public key file (NAME.pub); repeat the option
    /// to accept any of several keys during a rotation.
    #[arg(long, value_name = "FILE")]
    public_key: Vec<PathBuf>,
    /// Decrypt with this key file; plain artifacts are then refused.
    #[arg(long, value_name = "FILE")]
    decryption_key: Option<PathBuf>,
}

impl KeyArgs {
    fn options(&self) -> Result<LoadOptions> {
        let mut options = LoadOptions::default();
        for path in &self.public_key {
            options = options.public_key(read_key(path, KeyKind::SigningPublic)?);
        }
        if let Some(path) = &self.decryption_key {
            options = options.decryption_key(read_key(path, KeyKind::Encryption)?);
        }
        Ok(options)
    }
}

fn read_key(path: &Path, kind: KeyKind) -> Result<[u8; crypto::KEY_LEN]> {
    let text = artifact::read_small_text(path, MAX_KEY_FILE_BYTES).map_err(io_err(path))?;
    crypto::decode_key(&text, kind).map_err(|e| match e {
        Error::KeyInvalid(why) => Error::KeyInvalid(format!("{}: {why}", path.display())),
        e => e,
    })
}

/// A key file is one line of a few dozen characters; a larger one is refused unread.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// An interchange that does not come from a regular file (a pipe, a device) is read no further
/// than this, so that `/dev/zero` or a stream that never ends is refused, not read until memory
/// runs out; a regular file is read whole (its size bounds it; large hashing models pass this).
const MAX_STREAMED_INTERCHANGE_BYTES: u64 = 256 << 20;

fn read_interchange(path: &Path) -> Result<String> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let streamed = !file.metadata().map_err(io_err(path))?.is_file();
    let mut bytes = Vec::new();
    file.take(match streamed {
        true => MAX_STREAMED_INTERCHANGE_BYTES + 1,
        false => u64::MAX,
    })
    .read_to_end(&mut bytes)
    .map_err(io_err(path))?;
    if streamed && bytes.len() as u64 > MAX_STREAMED_INTERCHANGE_BYTES {
        return Err(Error::Interchange(format!(
            "{}: a stream longer than {MAX_STREAMED_INTERCHANGE_BYTES} bytes (write it to a file)",
            path.display()
        )));
    }
    // Bytes that are not UTF-8 (an artifact given by mistake) are not an interchange; the file
    // was read.
    String::from_utf8(bytes)
        .map_err(|e| Error::Interchange(format!("{}: not UTF-8 JSON: {}", path.display(), e.utf8_error())))
}

/// Pointers are small; a larger file is refused before it is read whole.
const MAX_POINTER_BYTES: u64 = 64 * 1024;

fn read_pointer(path: &Path) -> Result<Pointer> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_POINTER_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_POINTER_BYTES {
        return Err(Error::PointerInvalid(format!(
            "{}: larger than {MAX_POINTER_BYTES} bytes",
            path.display()
        )));
    }
    // Bytes that are not UTF-8 are a malformed pointer, not a failure to read it.
    serde_json::from_slice(&bytes).map_err(|e| Error::PointerInvalid(format!("{}: {e}", path.display())))
}

fn print_pointer(doc: &Pointer) -> Result<ExitCode> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Error::Io(e.to_string()))?;
    print_out(&text, ExitCode::SUCCESS)
}

/// `text` and a new line on stdout, then `status`; a reader gone away ends the command quietly
/// with [`EXIT_BROKEN_PIPE`], a full disk is an `IO` error (`println!` would panic on either).
fn print_out(text: &str, status: ExitCode) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(status),
        Err(e) => match stopped(e) {
            Err(Stop::Failed(e)) => Err(e),
            _ => Ok(ExitCode::from(EXIT_BROKEN_PIPE)),
        },
    }
}

/// A message on stderr. Nothing to do when stderr itself is gone (`skedge predict m 2>&1 | head`):
/// the command goes on, or stops, as its stdout decides (`eprintln!` would panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| Error::Io(format!("no system randomness: {e}")))?;
    Ok(buf)
}

/// Writes a new file, refusing to replace one; secret keys are readable by the owner only.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<()> {
    let mut open = fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = open.open(path).map_err(io_err(path))?;
    file.write_all(text.as_bytes()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn keygen(name: &Path, encryption: bool) -> Result<()> {
    let with_ext = |ext: &str| {
        let mut p = name.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (secret_path, public_path) = (with_ext(".key"), with_ext(".pub"));
    let targets: &[&Path] = if encryption {
        &[&secret_path]
    } else {
        &[&secret_path, &public_path]
    };
    if let Some(existing) = targets.iter().find(|p| p.exists()) {
        return Err(Error::Io(format!(
            "{}: already exists, not overwriting a key",
            existing.display()
        )));
    }
    let secret = random::<{ crypto::KEY_LEN }>()?;
    if encryption {
        write_new(
            &secret_path,
            &crypto::encode_key(KeyKind::Encryption, &secret),
            true,
        )?;
        say!("skedge: wrote encryption key {} (secret)", secret_path.display());
    } else {
        let public = crypto::encode_key(KeyKind::SigningPublic, &crypto::public_key(&secret));
        write_new(
            &secret_path,
            &crypto::encode_key(KeyKind::SigningSecret, &secret),
            true,
        )?;
        write_new(&public_path, &public, false)?;
        say!(
            "skedge: wrote {} (secret: keep it where artifacts are packed) and {} (public: pin it where they are loaded)",
            secret_path.display(),
            public_path.display()
        );
    }
    Ok(())
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
            say!("skedge: error[{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

fn seal_options(sign_key: Option<&Path>, encrypt_key: Option<&Path>) -> Result<SealOptions> {
    Ok(SealOptions {
        signing_key: sign_key
            .map(|p| read_key(p, KeyKind::SigningSecret))
            .transpose()?,
        encryption: match encrypt_key {
            Some(p) => Some(Encryption {
                key: read_key(p, KeyKind::Encryption)?,
                nonce: random()?,
            }),
            None => None,
        },
    })
}

/// Writes beside the target, then renames: a failed write never leaves half a file.
fn write_artifact(out: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = out.with_extension("skedge.tmp");
    let written = fs::write(&tmp, bytes)
        .map_err(io_err(&tmp))
        .and_then(|()| fs::rename(&tmp, out).map_err(io_err(out)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    say!("skedge: wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(())
}

fn load(path: &Path, keys: &KeyArgs) -> Result<(Vec<u8>, TextClassifier)> {
    let options = keys.options()?;
    let bytes = artifact::read_file(path).map_err(io_err(path))?;
    let model = TextClassifier::from_bytes_with(&bytes, &options)?;
    Ok((bytes, model))
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pack {
            interchange,
            out,
            sign_key,
            encrypt_key,
        } => {
            let seal = seal_options(sign_key.as_deref(), encrypt_key.as_deref())?;
            let text = read_interchange(&interchange)?;
            let doc: Interchange =
                serde_json::from_str(&text).map_err(|e| Error::Interchange(e.to_string()))?;
            // What the encoder finds inconsistent came from the interchange, not from an artifact.
            let bytes = doc
                .into_body()
                .and_then(|body| artifact::to_bytes_with(&body, &seal))
                .map_err(|e| match e {
                    Error::Corrupt(why) => Error::Interchange(why),
                    e => e,
                })?;
            write_artifact(&out, &bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Repack {
            input,
            output,
            sign_key,
            encrypt_key,
            keys,
        } => {
            let seal = seal_options(sign_key.as_deref(), encrypt_key.as_deref())?;
            let bytes = artifact::read_file(&input).map_err(io_err(&input))?;
            let (body, version) = artifact::body_v3(&bytes, &keys.options()?)?;
            let out = artifact::seal_version(&body, &seal, version)?;
            // What is written must load: the body was converted or copied, not trusted.
            let check = artifact::LoadOptions {
                decryption_key: seal.encryption.as_ref().map(|e| e.key),
                ..Default::default()
            };
            TextClassifier::from_bytes_with(&out, &check)?;
            write_artifact(&output, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { name, encryption } => {
            keygen(&name, encryption)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict {
            model,
            input,
            format,
            keys,
        } => {
            let (_, model) = load(&model, &keys)?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let source: Box<dyn Read> = match input {
                Some(p) => Box::new(fs::File::open(&p).map_err(io_err(&p))?),
                None => Box::new(io::stdin().lock()),
            };
            let mut input = BufReader::with_capacity(1 << 16, source);
            match predict_stream(&model, &mut input, &mut out, format) {
                Ok(failed) => Ok(ExitCode::from(u8::from(failed))),
                Err(Stop::Closed) => Ok(ExitCode::from(EXIT_BROKEN_PIPE)),
                Err(Stop::Failed(e)) => Err(e),
            }
        }
        Command::Inspect { model, keys } => {
            let (bytes, model) = load(&model, &keys)?;
            let info = inspect(&bytes, &model, !keys.public_key.is_empty());
            let text = serde_json::to_string_pretty(&info).map_err(|e| Error::Io(e.to_string()))?;
            print_out(&text, ExitCode::SUCCESS)
        }
        Command::Verify {
            model,
            expected,
            proba_tolerance,
            keys,
        } => {
            if !(proba_tolerance >= 0.0 && proba_tolerance.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "--proba-tolerance must be a finite number ≥ 0, got {proba_tolerance}"
                )));
            }
            let (_, model) = load(&model, &keys)?;
            // Read line by line, each line bounded, and only the first mismatches kept: a stream
            // of expectations of any length takes the memory of one line.
            let file = fs::File::open(&expected).map_err(io_err(&expected))?;
            let mut input = BufReader::with_capacity(1 << 16, file);
            let limit = line_limit(Format::Jsonl) + EXPECTED_SCORES_BYTES;
            let (mut checked, mut mismatched) = (0usize, 0usize);
            let mut mismatches = Vec::new();
            let mut buf = Vec::new();
            for n in 0.. {
                // `take`: a line too long is refused where it passes the limit, not skipped to
                // its end (`/dev/zero` has none).
                let mut line_input = (&mut input).take(limit as u64 + 2);
                let line = match next_line(&mut line_input, &mut buf, limit).map_err(io_err(&expected))? {
                    Line::End => break,
                    Line::TooLong(_) => {
                        return Err(Error::InvalidInput(format!(
                            "{}:{}: a line longer than {limit} bytes",
                            expected.display(),
                            n + 1
                        )))
                    }
                    Line::Kept => std::str::from_utf8(&buf)
                        .map_err(|e| Error::InvalidInput(format!("{}:{}: {e}", expected.display(), n + 1)))?,
                };
                if line.trim().is_empty() {
                    continue;
                }
                let want: Value = serde_json::from_str(line)
                    .map_err(|e| Error::InvalidInput(format!("{}:{}: {e}", expected.display(), n + 1)))?;
                let text = want["text"]
                    .as_str()
                    .ok_or_else(|| Error::InvalidInput(format!("line {}: no \"text\"", n + 1)))?;
                let got = prediction_json(&model.predict(text)?, model.classes());
                checked += 1;
                // A calibrated or voting classifier's decision is made of probabilities (hard votes
                // are exact sums): held to the proba tolerance.
                let calibrated = matches!(
                    model.classifier(),
                    skedge::classify::Classifier::Calibrated(_) | skedge::classify::Classifier::Voting(_)
                );
                let compared = compare(&want, &got, proba_tolerance, calibrated)
                    .map_err(|e| Error::InvalidInput(format!("{}:{}: {e}", expected.display(), n + 1)))?;
                if let Some(why) = compared {
                    mismatched += 1;
                    if mismatches.len() < SHOWN_MISMATCHES {
                        mismatches.push(
                            json!({"line": n + 1, "text": text, "why": why, "expected": want, "got": got}),
                        );
                    }
                }
            }
            let report = json!({
                "checked": checked,
                "mismatches": mismatched,
                "first": mismatches,
            });
            print_out(
                &report.to_string(),
                match mismatched == 0 {
                    true => ExitCode::SUCCESS,
                    false => ExitCode::from(1),
                },
            )
        }
        Command::SignPointer { pointer, sign_key } => {
            let mut doc = read_pointer(&pointer)?;
            doc.sign(&read_key(&sign_key, KeyKind::SigningSecret)?)?;
            print_pointer(&doc)
        }
        Command::VerifyPointer { pointer, public_key } => {
            let doc = read_pointer(&pointer)?;
            if public_key.is_empty() {
                doc.check()?;
            } else {
                let keys = public_key
                    .iter()
                    .map(|p| read_key(p, KeyKind::SigningPublic))
                    .collect::<Result<Vec<_>>>()?;
                doc.verify(&keys)?;
            }
            print_pointer(&doc)
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

/// Exit status when stdout is closed early (`skedge predict m.skedge | head -1`): the shell's
/// status for a filter ended by SIGPIPE (128 + 13), without a message.
const EXIT_BROKEN_PIPE: u8 = 141;

/// Why `predict` stopped before the end of its input.
enum Stop {
    /// The reader of stdout went away: stop quietly, as a Unix filter does.
    Closed,
    /// Reading the input or writing the output failed.
    Failed(Error),
}

/// A write error on stdout: a closed pipe stops the command quietly, anything else is an error.
fn stopped(e: io::Error) -> std::result::Result<(), Stop> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Err(Stop::Closed)
    } else {
        Err(Stop::Failed(Error::Io(format!("stdout: {e}"))))
    }
}

/// Longest input line kept: a text line holds at most one text of `MAX_TEXT_BYTES`; a JSON line
/// may spell each byte of it as a six-byte `\u00XX` escape.
/// `verify` reports the first mismatches only.
const SHOWN_MISMATCHES: usize = 10;

/// Room in an expected line beside its text: the label, decision and probabilities (25 bytes a
/// number leaves room for tens of thousands of classes).
const EXPECTED_SCORES_BYTES: usize = 1 << 20;

fn line_limit(format: Format) -> usize {
    match format {
        Format::Text => MAX_TEXT_BYTES,
        Format::Jsonl => MAX_TEXT_BYTES * 6 + 1024,
    }
}

/// Predicts line by line as the input arrives (`yes | skedge predict m.skedge` prints as it goes):
/// the output is flushed whenever the input has nothing more buffered, and memory is bounded by
/// one line of at most `line_limit`. Returns whether a line failed.
fn predict_stream(
    model: &TextClassifier,
    input: &mut BufReader<Box<dyn Read>>,
    out: &mut impl Write,
    format: Format,
) -> std::result::Result<bool, Stop> {
    let limit = line_limit(format);
    let mut line = Vec::new();
    let mut failed = false;
    for n in 1.. {
        if input.buffer().is_empty() {
            out.flush().or_else(stopped)?;
        }
        let result = match next_line(input, &mut line, limit) {
            Ok(Line::End) => break,
            Ok(Line::Kept) => parse_line(&line, format, model).and_then(|text| model.predict(&text)),
            Ok(Line::TooLong(bytes)) => Err(Error::InputTooLarge { bytes, limit }),
            Err(e) => return Err(Stop::Failed(Error::Io(format!("input: {e}")))),
        };
        let value = match result {
            Ok(p) => prediction_json(&p, model.classes()),
            Err(e) => {
                failed = true;
                say!("skedge: line {n}: error[{}]: {e}", e.code());
                json!({"error": {"code": e.code(), "message": e.to_string()}})
            }
        };
        writeln!(out, "{value}").or_else(stopped)?;
    }
    out.flush().or_else(stopped)?;
    Ok(failed)
}

/// What `next_line` read.
enum Line {
    /// A line, in the buffer, without its `\n` or `\r\n`.
    Kept,
    /// A line longer than the limit, skipped to its end without being kept: its length.
    TooLong(usize),
    /// The end of the input.
    End,
}

/// Reads one line into `buf`, keeping at most `limit` bytes of it (plus a `\r`); a final line
/// without a newline counts, an empty input has no lines.
fn next_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    buf.clear();
    let (mut len, mut any, mut too_long) = (0usize, false, false);
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if !any {
                return Ok(Line::End);
            }
            break;
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        len = len.saturating_add(part.len());
        if !too_long && len > limit.saturating_add(1) {
            too_long = true;
            buf.clear();
            buf.shrink_to(0);
        } else if !too_long {
            buf.extend_from_slice(part);
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if !too_long && buf.last() == Some(&b'\r') {
        buf.pop();
        len -= 1;
    }
    Ok(if too_long || len > limit {
        Line::TooLong(len)
    } else {
        Line::Kept
    })
}

fn parse_line(line: &[u8], format: Format, model: &TextClassifier) -> Result<String> {
    let text = std::str::from_utf8(line).map_err(|e| Error::InvalidInput(format!("not UTF-8: {e}")))?;
    match format {
        Format::Text => Ok(text.to_owned()),
        Format::Jsonl => {
            let v: Value =
                serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("not JSON: {e}")))?;
            if let Some(column) = model.input_column() {
                let Value::Object(record) = &v else {
                    return Err(Error::InvalidInput(format!(
                        "expected a record {{{column:?}: text}} (the model's column), got {}",
                        json_kind(&v)
                    )));
                };
                let fields: Vec<(String, Field)> = record
                    .iter()
                    .map(|(k, v)| {
                        let value = match v {
                            Value::String(s) => Field::Text(s),
                            other => Field::Other(json_kind(other)),
                        };
                        (k.clone(), value)
                    })
                    .collect();
                return model.record_text(&fields).map(str::to_owned);
            }
            match v.get("text") {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(Error::InvalidInput(
                    "expected an object with a string \"text\"".into(),
                )),
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
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

/// The numbers of an expected line's `decision` (an array of numbers) or `proba` (the same, or
/// `null`): anything else is a malformed line, not a value to skip.
fn expected_floats(want: &Value, key: &str, nullable: bool) -> std::result::Result<Option<Vec<f64>>, String> {
    match &want[key] {
        Value::Null if nullable => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| format!("\"{key}\" holds {}", json_kind(v)))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        v => Err(format!(
            "\"{key}\" must be an array of numbers, got {}",
            json_kind(v)
        )),
    }
}

/// Labels and decisions must be identical, probabilities within the tolerance (a CLI output's
/// NaN is `null`, and never equals).
fn compare(
    want: &Value,
    got: &Value,
    tol: f64,
    decision_is_proba: bool,
) -> std::result::Result<Option<String>, String> {
    if want.get("label").is_none() {
        return Err("no \"label\"".into());
    }
    let (d, w) = (
        expected_floats(want, "decision", false)?,
        expected_floats(want, "proba", true)?,
    );
    if want["label"] != got["label"] {
        return Ok(Some("label".into()));
    }
    let floats = |v: &Value| -> Option<Vec<Option<f64>>> {
        v.as_array().map(|a| a.iter().map(Value::as_f64).collect())
    };
    let same = |a: &f64, b: &Option<f64>, exact: bool| match b {
        Some(b) if exact => a.to_bits() == b.to_bits(),
        Some(b) => (a - b).abs() <= tol,
        None => false,
    };
    let (d, g) = (
        d.unwrap_or_default(),
        floats(&got["decision"]).unwrap_or_default(),
    );
    if d.len() != g.len() || !d.iter().zip(&g).all(|(a, b)| same(a, b, !decision_is_proba)) {
        return Ok(Some("decision".into()));
    }
    Ok(match (w, floats(&got["proba"])) {
        (None, None) => None,
        (Some(w), Some(g)) if w.len() == g.len() && w.iter().zip(&g).all(|(a, b)| same(a, b, false)) => None,
        _ => Some("proba".into()),
    })
}

fn inspect(bytes: &[u8], model: &TextClassifier, signature_verified: bool) -> Value {
    let envelope = artifact::parse(bytes).ok();
    let m = model.metadata();
    let sha = Sha256::digest(bytes);
    let classes = match model.classes() {
        Classes::Int(v) => json!(v),
        Classes::Str(v) => json!(v),
    };
    json!({
        "name": m.name,
        "version": m.version,
        "format_version": model.format_version(),
        "input_column": model.input_column(),
        "bytes": bytes.len(),
        "signed": envelope.is_some_and(|e| e.is_signed()),
        "signature_prehash": envelope.filter(|e| e.is_signed()).map(|e| e.prehash().name()),
        "signature_verified": signature_verified,
        "encrypted": envelope.is_some_and(|e| e.is_encrypted()),
        "checksum": envelope.map(|e| if e.is_xxh3() { "xxh3" } else { "xxh64" }),
        "sha256": skedge::hex::encode(&sha),
        "skedge_version": m.skedge_version,
        "sklearn_version": m.sklearn_version,
        "python_version": m.python_version,
        "numpy_version": m.numpy_version,
        "unicode_version": m.unicode_version,
        "source_sha256": m.source_sha256,
        "created": m.created,
        "precision": m.precision.name(),
        "agreement": m.agreement,
        "provenance": m.provenance,
        "metrics": m.metrics,
        "estimator": model.classifier().estimator(),
        "classes": classes,
        "n_features": model.n_features(),
    })
}
