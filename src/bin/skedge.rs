//! `skedge`: pack, predict, inspect and verify scikit-learn text models from the command line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
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
    /// this version's layouts, without the interchange. A signature is never copied: sign again with
    /// --sign-key (or drop it with --allow-unsigned); an encrypted input's output is encrypted again
    /// with --encrypt-key (or written plain with --allow-unencrypted). With --public-key the input's
    /// signature is verified first; --decryption-key opens an encrypted input.
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
        /// Write a signed input's output unsigned when no --sign-key is given (default: refused).
        #[arg(long)]
        allow_unsigned: bool,
        /// Write an encrypted input's output in plain text when no --encrypt-key is given
        /// (default: refused).
        #[arg(long)]
        allow_unencrypted: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Make a key: an Ed25519 pair NAME.key (secret) + NAME.pub (public) for signing, or with
    /// --encryption one XChaCha20-Poly1305 key NAME.key. A NAME ending in .key or .pub is not given
    /// a second suffix (release.key: release.key + release.pub); a folder is refused. Never
    /// overwrites a file, and never leaves one key of a pair without the other.
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
        /// Input file (default, or `-`: stdin).
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
/// runs out.
const MAX_STREAMED_INTERCHANGE_BYTES: u64 = 256 << 20;

/// The largest interchange file read. Its weights are JSON numbers of about 20 bytes each, so this
/// leaves room for about 100 million of them (a 2^20-feature hashing model of about 100 classes,
/// an 800 MB artifact); a larger file (or a sparse one made by mistake) is refused by its size,
/// unread.
const MAX_INTERCHANGE_FILE_BYTES: u64 = 2 << 30;

fn read_interchange(path: &Path) -> Result<String> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    let streamed = !meta.is_file();
    let limit = match streamed {
        true => MAX_STREAMED_INTERCHANGE_BYTES,
        false => MAX_INTERCHANGE_FILE_BYTES,
    };
    let too_long = |len: u64| {
        Error::Interchange(match streamed {
            true => format!(
                "{}: a stream longer than {limit} bytes (write it to a file)",
                path.display()
            ),
            false => format!(
                "{}: a file of {len} bytes, larger than the {limit} bytes an interchange may have",
                path.display()
            ),
        })
    };
    if !streamed && meta.len() > limit {
        return Err(too_long(meta.len()));
    }
    let mut bytes = Vec::new();
    // `take` for a file too: one that grows while it is read stops at the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_long(bytes.len() as u64));
    }
    // Bytes that are not UTF-8 (an artifact given by mistake) are not an interchange; the file
    // was read.
    String::from_utf8(bytes)
        .map_err(|e| Error::Interchange(format!("{}: not UTF-8 JSON: {}", path.display(), e.utf8_error())))
}

/// The UTF-8 byte order mark: skipped at the start of `predict`'s input and `verify`'s expected
/// lines, once, as Python's `utf-8-sig` skips it (which the exporter reads its tables with).
const BOM: &[u8] = b"\xEF\xBB\xBF";

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

/// Writes a new file, refusing to replace one; secret keys are readable by the owner only. A
/// file it created and could not fill is removed.
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
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(path));
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// The files `keygen NAME` writes: NAME.key and NAME.pub, the suffix added once (a NAME that ends
/// in `.key` or `.pub` is taken as the key file's name: `release.key` gives release.key and
/// release.pub). A folder is refused rather than given hidden `.key` / `.pub` files.
fn key_paths(name: &Path) -> Result<(PathBuf, PathBuf)> {
    let refused = |why: &str, folder: &Path| {
        Error::InvalidInput(format!(
            "keygen {}: {why}; give the keys' base name (e.g. {})",
            name.display(),
            folder.join("release").display()
        ))
    };
    let spelled_as_folder = name
        .as_os_str()
        .as_encoded_bytes()
        .last()
        .is_some_and(|&b| std::path::is_separator(char::from(b)));
    if spelled_as_folder || name.is_dir() {
        return Err(refused("a folder", name));
    }
    let folder = name.parent().unwrap_or(Path::new(""));
    match name.file_name() {
        None => return Err(refused("no file name", folder)),
        Some(file) if file == ".key" || file == ".pub" => {
            return Err(refused("no name before the suffix", folder))
        }
        Some(_) => {}
    }
    let base = match name.extension() {
        Some(ext) if ext == "key" || ext == "pub" => name.with_extension(""),
        _ => name.to_path_buf(),
    };
    let with = |suffix: &str| {
        let mut path = base.clone().into_os_string();
        path.push(suffix);
        PathBuf::from(path)
    };
    Ok((with(".key"), with(".pub")))
}

fn keygen(name: &Path, encryption: bool) -> Result<()> {
    let (secret_path, public_path) = key_paths(name)?;
    let targets: &[&Path] = if encryption {
        &[&secret_path]
    } else {
        &[&secret_path, &public_path]
    };
    // `symlink_metadata`: a dangling link counts (creating the file through it would fail).
    if let Some(existing) = targets.iter().find(|p| fs::symlink_metadata(p).is_ok()) {
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
        // A secret key without its public half is of no use and looks like a finished pair: the
        // pair is written whole or not at all (the secret was created here, so it is ours to remove).
        if let Err(e) = write_new(&public_path, &public, false) {
            let _ = fs::remove_file(&secret_path);
            return Err(e);
        }
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
    let result = match Cli::try_parse() {
        Ok(cli) => run(cli.command),
        Err(e) => Err(usage_error(e)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say!("skedge: error[{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}

/// A command line clap refuses, as an `INVALID_INPUT` error, so that every failure's first line
/// is `skedge: error[CODE]: ...` (scripts match it): clap's message, then its tip and usage lines.
/// `--help` and `--version` are no errors: clap prints them on stdout and exits 0.
fn usage_error(e: clap::Error) -> Failure {
    if !e.use_stderr() {
        e.exit();
    }
    // Plain text (`render` is styled; its `Display` strips the styles).
    let text = e.render().to_string();
    let text = text.trim_end();
    Failure::Refused {
        code: Error::InvalidInput(String::new()).code(),
        message: match text.strip_prefix("error: ") {
            Some(message) => message.to_string(),
            // No command at all: clap's help, which lists them.
            None => format!("a command is needed\n\n{text}"),
        },
    }
}

/// What ends a command with status 2: an error of the library, or a refusal of the CLI's own,
/// which carries a library code with a message of its own (`repack` naming what it would drop).
enum Failure {
    Error(Error),
    Refused { code: &'static str, message: String },
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::Error(e) => e.code(),
            Failure::Refused { code, .. } => code,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error(e) => e.fmt(f),
            Failure::Refused { message, .. } => f.write_str(message),
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

/// A temporary file, removed when dropped unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `out` as a whole or not at all: into a temporary file of this run's own in
/// `out`'s folder (`.NAME.skedge-RANDOM.tmp`, created exclusively, so concurrent runs, or an input
/// that happens to have the name, never share it), synced, then renamed over `out`. Readers see
/// the old file or the new one; on any error the temporary file is removed (only a killed run
/// leaves one, named so it is plainly skedge's). A file being replaced keeps its permissions, and a
/// link to one stays a link: the file it leads to is replaced, as `cp` would write through it (so
/// `/dev/stdout` redirected to a file is never itself replaced). An `out` that is not a regular
/// file (a FIFO, a device, `/dev/stdout` to a pipe) is written into: renaming over it is never
/// what is meant. Errors name `out` as given.
fn write_artifact(out: &Path, bytes: &[u8]) -> Result<()> {
    let failed = |e: io::Error| Error::Io(format!("{}: {e}", out.display()));
    let existing = fs::metadata(out).ok();
    if let Some(meta) = existing.as_ref().filter(|m| !m.is_file()) {
        if meta.is_dir() {
            return Err(Error::Io(format!("{}: is a folder", out.display())));
        }
        let mut file = fs::OpenOptions::new().write(true).open(out).map_err(failed)?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(failed)?;
        say!("skedge: wrote {} ({} bytes)", out.display(), bytes.len());
        return Ok(());
    }
    let linked = existing.is_some() && fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink());
    let target = match linked {
        true => fs::canonicalize(out).map_err(failed)?,
        false => out.to_path_buf(),
    };
    let name = target
        .file_name()
        .ok_or_else(|| Error::Io(format!("{}: not a file name", out.display())))?;
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tries = 0;
    let (mut file, mut tmp) = loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".skedge-{}.tmp", skedge::hex::encode(&random::<8>()?)));
        let tmp = folder.join(tmp_name);
        match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => {
                break (
                    file,
                    TempFile {
                        path: tmp,
                        renamed: false,
                    },
                )
            }
            // 64 random bits taken: another run's file, or one left by a killed run.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(failed(e)),
        }
    };
    if let Some(meta) = &existing {
        file.set_permissions(meta.permissions()).map_err(failed)?;
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    drop(file);
    fs::rename(&tmp.path, &target).map_err(failed)?;
    tmp.renamed = true;
    // The rename itself is durable once the folder is synced; not every file system can sync one.
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    say!("skedge: wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(())
}

/// The artifact at `path` (read no further than its header declares) and the file's length.
fn read_artifact(path: &Path) -> Result<(Vec<u8>, u64)> {
    artifact::read_file_sized(path).map_err(|e| artifact::read_error(e, path.display()))
}

/// An error of loading `bytes` read from a file of `len` bytes: trailing bytes are counted in the
/// file, which was read only one byte past the artifact.
fn in_file(bytes: &[u8], len: u64) -> impl Fn(Error) -> Error + '_ {
    move |e| artifact::in_file(e, bytes.len(), len)
}

fn load(path: &Path, keys: &KeyArgs) -> Result<(Vec<u8>, TextClassifier)> {
    let options = keys.options()?;
    let (bytes, len) = read_artifact(path)?;
    let model = TextClassifier::from_bytes_with(&bytes, &options).map_err(in_file(&bytes, len))?;
    Ok((bytes, model))
}

fn run(command: Command) -> std::result::Result<ExitCode, Failure> {
    match command {
        Command::Pack {
            interchange,
            out,
            sign_key,
            encrypt_key,
        } => {
            let seal = seal_options(sign_key.as_deref(), encrypt_key.as_deref())?;
            let text = read_interchange(&interchange)?;
            let doc: Interchange = serde_json::from_str(&text)
                .map_err(|e| Error::Interchange(format!("{}: {e}", interchange.display())))?;
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
            allow_unsigned,
            allow_unencrypted,
            keys,
        } => {
            let seal = seal_options(sign_key.as_deref(), encrypt_key.as_deref())?;
            let options = keys.options()?;
            let (bytes, len) = read_artifact(&input)?;
            let (body, version) = artifact::body_v3(&bytes, &options).map_err(in_file(&bytes, len))?;
            // The input opened, so its envelope parses. What it had and the output would not is
            // refused unless made again or dropped on purpose: a signature is never copied (it
            // signs other bytes), and a key cannot be guessed.
            let envelope = artifact::parse(&bytes)?;
            let lost_signature = envelope.is_signed() && seal.signing_key.is_none() && !allow_unsigned;
            let lost_encryption = envelope.is_encrypted() && seal.encryption.is_none() && !allow_unencrypted;
            if lost_signature || lost_encryption {
                let (code, what, written, flags) = match (lost_signature, lost_encryption) {
                    (true, true) => (
                        "SIGNATURE_MISSING",
                        "signed and encrypted",
                        "unsigned and in plain text",
                        "--sign-key and --encrypt-key to sign and encrypt it again, or --allow-unsigned \
                         and --allow-unencrypted to write it so",
                    ),
                    (true, false) => (
                        "SIGNATURE_MISSING",
                        "signed",
                        "unsigned",
                        "--sign-key to sign it again, or --allow-unsigned to write it so",
                    ),
                    _ => (
                        "ENCRYPTION_MISSING",
                        "encrypted",
                        "in plain text",
                        "--encrypt-key to encrypt it again, or --allow-unencrypted to write it so",
                    ),
                };
                return Err(Failure::Refused {
                    code,
                    message: format!(
                        "{} is {what}, and repack copies neither a signature nor a key: {} would be \
                         written {written}; give {flags}",
                        input.display(),
                        output.display()
                    ),
                });
            }
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
            // `-` is stdin, as for most Unix filters; a file named `-` is `./-`.
            let (source, name): (Box<dyn Read>, String) = match input {
                Some(p) if p.as_os_str() != "-" => (
                    Box::new(fs::File::open(&p).map_err(io_err(&p))?),
                    p.display().to_string(),
                ),
                _ => (Box::new(io::stdin().lock()), "stdin".into()),
            };
            let mut input = BufReader::with_capacity(1 << 16, source);
            match predict_stream(&model, &mut input, &name, &mut out, format) {
                Ok(failed) => Ok(ExitCode::from(u8::from(failed))),
                Err(Stop::Closed) => Ok(ExitCode::from(EXIT_BROKEN_PIPE)),
                Err(Stop::Failed(e)) => Err(e.into()),
            }
        }
        Command::Inspect { model, keys } => {
            let (bytes, model) = load(&model, &keys)?;
            let info = inspect(&bytes, &model, !keys.public_key.is_empty());
            let text = serde_json::to_string_pretty(&info).map_err(|e| Error::Io(e.to_string()))?;
            Ok(print_out(&text, ExitCode::SUCCESS)?)
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
                ))
                .into());
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
            for n in 1.. {
                let at = |why: &dyn std::fmt::Display| {
                    Error::InvalidInput(format!("{}:{n}: {why}", expected.display()))
                };
                // `take`: a line too long is refused where it passes the limit, not skipped to
                // its end (`/dev/zero` has none).
                let mut line_input = (&mut input).take(limit as u64 + 2);
                let line = match next_line(&mut line_input, &mut buf, limit).map_err(io_err(&expected))? {
                    Line::End => break,
                    Line::TooLong(_) => return Err(at(&format!("a line longer than {limit} bytes")).into()),
                    Line::Kept => {
                        let line = match n {
                            1 => buf.strip_prefix(BOM).unwrap_or(&buf),
                            _ => &buf,
                        };
                        std::str::from_utf8(line).map_err(|e| at(&e))?
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                // Only the fields compared are kept, and shown in the report.
                let want = match read_json_line(line, &["text", "label", "decision", "proba"])
                    .map_err(|e| at(&e))?
                {
                    JsonLine::Object(o) => Value::Object(o.values.into_iter().collect()),
                    // As indexing a `Value` has it: a line that is no object has no "text".
                    JsonLine::Other(_) => Value::Null,
                };
                let text = want["text"].as_str().ok_or_else(|| at(&"no \"text\""))?;
                let prediction = model.predict(text)?;
                let got = prediction_json(&prediction, model.classes());
                checked += 1;
                // A calibrated or soft voting classifier's decision is its probabilities, held to
                // the proba tolerance; hard voting's is vote counts (sums of weights), exact like a
                // linear decision. Only soft voting has probabilities (as tests/fixtures.rs tells).
                let decision_is_proba = match model.classifier() {
                    skedge::classify::Classifier::Calibrated(_) => true,
                    skedge::classify::Classifier::Voting(_) => prediction.proba.is_some(),
                    _ => false,
                };
                let compared =
                    compare(&want, &got, proba_tolerance, decision_is_proba).map_err(|e| at(&e))?;
                if let Some(why) = compared {
                    mismatched += 1;
                    if mismatches.len() < SHOWN_MISMATCHES {
                        mismatches.push(json!({
                            "line": n,
                            "text": clipped_str(text),
                            "why": why,
                            "expected": clipped(&want),
                            "got": clipped(&got),
                        }));
                    }
                }
            }
            if checked == 0 {
                return Err(Error::InvalidInput(format!(
                    "{}: no expected line, nothing was checked",
                    expected.display()
                ))
                .into());
            }
            let report = json!({
                "checked": checked,
                "mismatches": mismatched,
                "first": mismatches,
            });
            Ok(print_out(
                &report.to_string(),
                match mismatched == 0 {
                    true => ExitCode::SUCCESS,
                    false => ExitCode::from(1),
                },
            )?)
        }
        Command::SignPointer { pointer, sign_key } => {
            let mut doc = read_pointer(&pointer)?;
            doc.sign(&read_key(&sign_key, KeyKind::SigningSecret)?)?;
            Ok(print_pointer(&doc)?)
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
            Ok(print_pointer(&doc)?)
        }
        Command::LnTable { n } => {
            let mut out = BufWriter::new(io::stdout().lock());
            let written = (1..=n)
                .try_for_each(|k| {
                    out.write_all(&libm::log(f64::from(k)).to_le_bytes())
                        .or_else(stopped)
                })
                .and_then(|()| out.flush().or_else(stopped));
            match written {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(Stop::Closed) => Ok(ExitCode::from(EXIT_BROKEN_PIPE)),
                Err(Stop::Failed(e)) => Err(e.into()),
            }
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

/// Characters of a string, and items of an array, a mismatch report shows of each value it echoes:
/// ten mismatches of 16 MiB texts make a report of kilobytes, not of hundreds of megabytes.
const SHOWN_CHARS: usize = 200;
const SHOWN_ITEMS: usize = 50;

/// `v` as a mismatch report shows it: a longer string as its first [`SHOWN_CHARS`] characters and
/// `… (N bytes)`, a longer array as its first [`SHOWN_ITEMS`] items and `"… (N items)"`, the same
/// within objects and arrays (keys too: an expected line may have any).
fn clipped(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(clipped_str(s)),
        Value::Array(a) => {
            let mut shown: Vec<Value> = a.iter().take(SHOWN_ITEMS).map(clipped).collect();
            if a.len() > SHOWN_ITEMS {
                shown.push(Value::String(format!("… ({} items)", a.len())));
            }
            Value::Array(shown)
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (clipped_str(k), clipped(v))).collect()),
        _ => v.clone(),
    }
}

fn clipped_str(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}… ({} bytes)", &s[..end], s.len()),
        None => s.to_owned(),
    }
}

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
/// one line of at most `line_limit`. A byte order mark starting the input is skipped; in JSONL a
/// blank line is no text and gets no output line (as in `verify`'s expected lines), in text mode
/// it is the empty text. Returns whether a line failed; `name` names the input in errors.
fn predict_stream(
    model: &TextClassifier,
    input: &mut BufReader<Box<dyn Read>>,
    name: &str,
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
            Ok(Line::Kept) => {
                let line = match n {
                    1 => line.strip_prefix(BOM).unwrap_or(&line),
                    _ => &line,
                };
                if matches!(format, Format::Jsonl)
                    && std::str::from_utf8(line).is_ok_and(|l| l.trim().is_empty())
                {
                    continue;
                }
                parse_line(line, format, model)
                    .and_then(|text| model.predict(&text))
                    .map_err(Failure::from)
            }
            Ok(Line::TooLong(bytes)) => Err(match format {
                Format::Text => Error::InputTooLarge { bytes, limit }.into(),
                // The line holds the text spelled in JSON, which may take six bytes a byte: its
                // length says nothing of the text's.
                Format::Jsonl => Failure::Refused {
                    code: Error::InputTooLarge { bytes, limit }.code(),
                    message: format!(
                        "JSON line of {bytes} bytes exceeds the line limit of {limit} bytes (a text's \
                         limit is {MAX_TEXT_BYTES} bytes of UTF-8, which a JSON line may spell in up to \
                         six bytes each)"
                    ),
                },
            }),
            Err(e) => return Err(Stop::Failed(Error::Io(format!("{name}: {e}")))),
        };
        let value = match result {
            Ok(p) => prediction_json(&p, model.classes()),
            Err(e) => {
                failed = true;
                say!("skedge: {name}: line {n}: error[{}]: {e}", e.code());
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
    if let Format::Text = format {
        return Ok(text.to_owned());
    }
    let column = model.input_column();
    let line = read_json_line::<Str>(text, &[column.unwrap_or("text")])
        .map_err(|e| Error::InvalidInput(format!("not JSON: {e}")))?;
    let no_text = || Error::InvalidInput("expected an object with a string \"text\"".into());
    let mut record = match (line, column) {
        (JsonLine::Object(o), _) => o,
        (JsonLine::Other(_), None) => return Err(no_text()),
        (JsonLine::Other(kind), Some(column)) => {
            return Err(Error::InvalidInput(format!(
                "expected a record {{{column:?}: text}} (the model's column), got {kind}"
            )))
        }
    };
    let Some(column) = column else {
        return match record.values.remove("text") {
            Some(Str::Text(s)) => Ok(s),
            _ => Err(no_text()),
        };
    };
    if record.more_keys {
        return Err(Error::InvalidInput(format!(
            "expected a text or a record {{{column:?}: text}} (the model's column), got a record \
             with more than {LISTED_KEYS} keys"
        )));
    }
    let value = match record.values.get(column) {
        Some(Str::Text(s)) => Field::Text(s),
        Some(Str::Other(kind)) => Field::Other(kind),
        // Never read: the column is not among the keys.
        None => Field::Other(""),
    };
    // `record_text` reads a value only when the one key is the column: the others need none.
    let fields: Vec<(String, Field)> = record.keys.into_iter().map(|k| (k, value)).collect();
    model.record_text(&fields).map(str::to_owned)
}

/// Distinct keys of a JSON line's object that [`read_json_line`] keeps for an error to list: past
/// them it only notes that there are more, so that a line of millions of keys is not kept whole.
const LISTED_KEYS: usize = 1000;

/// A JSON line as [`read_json_line`] reads it.
enum JsonLine<V> {
    /// An object.
    Object(Picked<V>),
    /// Anything else: its kind, as [`json_kind`] names it.
    Other(&'static str),
}

/// What [`read_json_line`] keeps of an object.
struct Picked<V> {
    /// The values of the keys asked for: the last of a repeated key, as `serde_json::Value`
    /// keeps it.
    values: BTreeMap<String, V>,
    /// Its distinct keys, up to [`LISTED_KEYS`] of them.
    keys: BTreeSet<String>,
    /// Whether it has more distinct keys than `keys`.
    more_keys: bool,
}

/// Reads a JSON line keeping only the values of the keys `wanted`, each as a `V`: the rest is
/// read as [`Str`], so checked as `serde_json::Value` checks it (syntax, numbers, escapes, the
/// depth limit) and dropped. A `Value` of a line of small values is about 17 times the line.
fn read_json_line<V: DeserializeOwned>(line: &str, wanted: &[&str]) -> serde_json::Result<JsonLine<V>> {
    // Anything but an object is read as a `Str`, which keeps no more than a string.
    if !line.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{') {
        return Ok(JsonLine::Other(match serde_json::from_str(line)? {
            Str::Text(_) => "a string",
            Str::Other(kind) => kind,
        }));
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let picked = de.deserialize_map(Pick {
        wanted,
        value: PhantomData,
    })?;
    de.end()?;
    Ok(JsonLine::Object(picked))
}

struct Pick<'w, V> {
    wanted: &'w [&'w str],
    value: PhantomData<V>,
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for Pick<'_, V> {
    type Value = Picked<V>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Picked<V>, A::Error> {
        let mut picked = Picked {
            values: BTreeMap::new(),
            keys: BTreeSet::new(),
            more_keys: false,
        };
        while let Some(key) = map.next_key::<String>()? {
            if self.wanted.contains(&key.as_str()) {
                picked.values.insert(key.clone(), map.next_value()?);
            } else {
                map.next_value::<Str>()?;
            }
            if picked.keys.len() < LISTED_KEYS || picked.keys.contains(&key) {
                picked.keys.insert(key);
            } else {
                picked.more_keys = true;
            }
        }
        Ok(picked)
    }
}

/// A JSON value read for a text: the string, or the kind of anything else, whose content is
/// read (so checked as `serde_json::Value` checks it) and dropped.
enum Str {
    Text(String),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Str, E> {
        Ok(Str::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Str, E> {
        Ok(Str::Text(s))
    }

    fn visit_unit<E>(self) -> std::result::Result<Str, E> {
        Ok(Str::Other("null"))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Str, E> {
        Ok(Str::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Str, E> {
        Ok(Str::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Str, E> {
        Ok(Str::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Str, E> {
        Ok(Str::Other("a number"))
    }

    // Not `IgnoredAny`: serde_json skips that without its depth limit and without checking
    // escapes or number ranges, so lines a `Value` refuses would pass (a lone surrogate, 1e400,
    // 129 levels deep).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Str, A::Error> {
        while seq.next_element::<Str>()?.is_some() {}
        Ok(Str::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Str, A::Error> {
        while map.next_entry::<String, Str>()?.is_some() {}
        Ok(Str::Other("an object"))
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
