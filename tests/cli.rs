//! The CLI as a Unix filter (issue #18, #17): `predict` streams line by line with a per-line cap
//! that never buffers a long line whole, and `predict` / `inspect` stop quietly when the reader
//! of their output goes away (`| head -1`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

const MODEL: &str = "tests/golden/tiny.skedge";

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    err
}

#[test]
fn predict_prints_as_the_input_arrives_and_stops_quietly_when_stdout_closes() {
    // `yes good | skedge predict m.skedge | head -1`: the first prediction must come out while
    // the input is still being written, and the closed pipe must end it without a message.
    const CAP: usize = 64 << 20;
    let mut child = spawn(&["predict", MODEL]);
    let mut stdin = child.stdin.take().unwrap();
    let seen = Arc::new(AtomicBool::new(false));
    let writer = {
        let seen = Arc::clone(&seen);
        thread::spawn(move || {
            let chunk = "good\n".repeat(1 << 14);
            let mut written = 0;
            while written < CAP && !seen.load(Ordering::SeqCst) {
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    break; // skedge exited: the pipe closed
                }
                written += chunk.len();
            }
            written
        })
    };
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    seen.store(true, Ordering::SeqCst);
    drop(stdout);
    let written = writer.join().unwrap();
    assert!(first.contains(r#""label":"pos""#), "{first}");
    assert!(
        written < CAP,
        "nothing was printed before the whole input ({written} bytes) was read"
    );
    let err = stderr_of(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(err.is_empty(), "a closed pipe is not an error to report: {err}");
}

/// Peak resident memory of a running process, in bytes (Linux).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
#[cfg(target_os = "linux")]
fn a_200_mb_line_is_refused_with_its_code_without_being_buffered_whole() {
    const LINE: usize = 200 << 20;
    let mut child = spawn(&["predict", MODEL]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (done, wait) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..LINE / chunk.len() {
            stdin.write_all(&chunk).unwrap();
        }
        stdin.write_all(b"\ngood\n").unwrap();
        // Keep the input open (skedge running) until its memory was read; the bound only keeps
        // a reader that waits for the end of input from hanging the test.
        let _ = wait.recv_timeout(Duration::from_secs(120));
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    let peak = peak_rss(pid);
    done.send(()).unwrap();
    writer.join().unwrap();
    let err = stderr_of(&mut child);
    let status = child.wait().unwrap();
    assert!(first.contains(r#""code":"INPUT_TOO_LARGE""#), "{first}");
    assert!(first.contains(&format!("{LINE} bytes")), "{first}");
    assert!(
        second.contains(r#""label":"pos""#),
        "the next line is predicted: {second}"
    );
    assert_eq!(status.code(), Some(1), "a refused line makes the status 1: {err}");
    let peak = peak.expect("skedge had exited before the end of its input");
    assert!(peak < 64 << 20, "peak RSS {peak} bytes for a {LINE}-byte line");
}

#[test]
fn predict_reads_records_of_a_dataframe_model() {
    use skedge::artifact::{self, example::tiny, schema};
    let dir = std::env::temp_dir().join(format!("skedge-cli-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("review.skedge");
    let body = schema::Body {
        input: schema::Input::Column("review".into()),
        ..tiny()
    };
    std::fs::write(&path, artifact::to_bytes(&body).unwrap()).unwrap();
    let path = path.to_str().unwrap();

    let inspect = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["inspect", path])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info["input_column"], "review");
    assert_eq!(info["format_version"], 4);

    let mut child = spawn(&["predict", path, "--format", "jsonl"]);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"review\": \"good\"}\n{\"text\": \"good\"}\n{\"review\": 1}\n[\"good\"]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["label"], "pos");
    for line in &lines[1..] {
        assert_eq!(line["error"]["code"], "INVALID_INPUT");
        assert!(
            line["error"]["message"].as_str().unwrap().contains("\"review\""),
            "{line}"
        );
    }
    // Texts are taken as they are.
    let mut child = spawn(&["predict", path]);
    child.stdin.take().unwrap().write_all(b"good\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(text, lines[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cmd` with stdout the write end of a pipe whose read end is already closed (`| head -0`), so
/// that its first write fails whatever the scheduling: dropping our end after spawning raced with
/// a fast child.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = stderr_of(&mut child);
    (child.wait().unwrap().code(), err)
}

#[test]
fn every_command_that_prints_stops_quietly_when_stdout_is_closed_and_reports_a_full_disk() {
    // `predict` has its own test above: it streams.
    let expected = std::env::temp_dir().join(format!("skedge-cli-expected-{}.jsonl", std::process::id()));
    let line = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["predict", MODEL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"good\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let mut want: serde_json::Value = serde_json::from_slice(&line.stdout).unwrap();
    want["text"] = "good".into();
    std::fs::write(&expected, format!("{want}\n")).unwrap();
    let expected = expected.to_str().unwrap();
    let pointer = "tests/fuzz/seeds/pointer/first.json";
    for args in [
        &["inspect", MODEL][..],
        &["verify", MODEL, "--expected", expected],
        &["verify-pointer", pointer],
        &[
            "sign-pointer",
            pointer,
            "--sign-key",
            "tests/golden/test-signing.key",
        ],
    ] {
        let (code, err) = into_closed_pipe(args);
        assert_eq!(code, Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        let full = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&full.stderr);
        assert_eq!(full.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("error[IO]") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn predict_goes_on_when_stderr_is_closed() {
    // `skedge predict m 2>&1 | head -1`: a line's error cannot be reported on stderr, and must
    // not end the command with a panic; its stdout decides.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["predict", MODEL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\ngood\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with(b"{\"error\""));
}

#[test]
fn verify_refuses_a_malformed_expected_line_instead_of_passing_it() {
    let dir = std::env::temp_dir().join(format!("skedge-cli-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, line) in [
        (
            "decision a number",
            r#"{"text": "good", "label": "pos", "decision": 1.0, "proba": null}"#,
        ),
        (
            "no decision",
            r#"{"text": "good", "label": "pos", "proba": null}"#,
        ),
        (
            "a null in decision",
            r#"{"text": "good", "label": "pos", "decision": [null], "proba": null}"#,
        ),
        (
            "no label",
            r#"{"text": "good", "decision": [1.0], "proba": null}"#,
        ),
        (
            "proba a string",
            r#"{"text": "good", "label": "pos", "decision": [1.0], "proba": "x"}"#,
        ),
    ] {
        let path = dir.join("expected.jsonl");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(["verify", MODEL, "--expected", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("error[INVALID_INPUT]"), "{name}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args([
            "verify",
            MODEL,
            "--expected",
            "/dev/null",
            "--proba-tolerance",
            "NaN",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn pack_refuses_softmax_probabilities_over_a_binary_model_as_an_invalid_interchange() {
    // One coef row, two classes: a softmax would give one probability for two classes.
    let text = std::fs::read_to_string("tests/fixtures/cases/tfidf_l1_noidf_lr.interchange.json").unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["pipeline"]["classifier"]["coef"].as_array().unwrap().len(), 1);
    doc["pipeline"]["classifier"]["proba"] = "softmax".into();
    let dir = std::env::temp_dir().join(format!("skedge-cli-softmax-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("softmax.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let out_path = dir.join("softmax.skedge");
    let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["pack", path.to_str().unwrap(), "-o", out_path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[INTERCHANGE_INVALID]") && err.contains("softmax"),
        "{err}"
    );
    assert!(!out_path.exists() && !dir.join("softmax.skedge.tmp").exists());
}

#[test]
fn a_device_is_read_no_further_than_an_artifact_or_a_key_extends() {
    // /dev/zero never ends: read whole, it would take all the memory there is.
    for (args, code) in [
        (&["inspect", "/dev/zero"][..], "error[ARTIFACT_CORRUPT]"),
        (&["repack", "/dev/zero", "/dev/null"], "error[ARTIFACT_CORRUPT]"),
        (&["inspect", MODEL, "--public-key", "/dev/zero"], "error[IO]"),
        (
            &["pack", "/dev/zero", "-o", "/dev/null"],
            "error[INTERCHANGE_INVALID]",
        ),
        // An artifact given to pack by mistake: not an interchange, not a failure to read.
        (&["pack", MODEL, "-o", "/dev/null"], "error[INTERCHANGE_INVALID]"),
        (
            &["verify", MODEL, "--expected", "/dev/zero"],
            "error[INVALID_INPUT]",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(code), "{args:?}: {err}");
    }
}

#[test]
fn verify_counts_every_mismatch_and_shows_the_first_ten() {
    let dir = std::env::temp_dir().join(format!("skedge-cli-mismatches-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("expected.jsonl");
    let wrong = r#"{"text": "good", "label": "neg", "decision": [1.75], "proba": [0.14804719803168942, 0.8519528019683106]}"#;
    let right = r#"{"text": "good", "label": "pos", "decision": [1.75], "proba": [0.14804719803168942, 0.8519528019683106]}"#;
    let lines: Vec<&str> = (0..25).map(|i| if i % 2 == 0 { wrong } else { right }).collect();
    std::fs::write(&path, lines.join("\r\n") + "\n\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["verify", MODEL, "--expected", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 25);
    assert_eq!(report["mismatches"], 13);
    let first = report["first"].as_array().unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[9]["line"], 19);
}

#[test]
fn a_pointer_that_is_not_utf8_is_an_invalid_pointer() {
    let dir = std::env::temp_dir().join(format!("skedge-cli-pointer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pointer.json");
    std::fs::write(&path, b"\xff\xfe{}").unwrap();
    for command in ["verify-pointer", "sign-pointer"] {
        let mut args = vec![command, path.to_str().unwrap()];
        if command == "sign-pointer" {
            args.extend(["--sign-key", "/dev/null"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(err.contains("error[POINTER_INVALID]"), "{command}: {err}");
    }
}

#[test]
fn pointer_signature_errors_name_the_pointer_not_an_artifact() {
    // `skedge verify-pointer` (and the sync tools that run it) refuses an unsigned pointer and one
    // signed by another key with the artifact's codes, in messages about the pointer.
    let dir = std::env::temp_dir().join(format!("skedge-cli-pointer-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The Ed25519 base point: a valid public key nobody signed these pointers with.
    let other = dir.join("other.pub");
    std::fs::write(&other, format!("skedge-ed25519-public:58{}\n", "66".repeat(31))).unwrap();
    let run = |pointer: &str, key: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(["verify-pointer", pointer, "--public-key", key])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let other = other.to_str().unwrap();
    let signed = "tests/fuzz/seeds/pointer/second-signed.json";
    assert_eq!(run(signed, "tests/golden/test-signing.pub").0, Some(0));
    let (code, err) = run(signed, other);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error[SIGNATURE_INVALID]: pointer signature does not verify with the 1 pinned"),
        "{err}"
    );
    let (code, err) = run(
        "tests/fuzz/seeds/pointer/first.json",
        "tests/golden/test-signing.pub",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error[SIGNATURE_MISSING]: pointer is not signed, but a public key is pinned"),
        "{err}"
    );
    assert!(!err.contains("artifact"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The CLI audit: writing artifacts and keys, what repack keeps, bounded reads, verify's report.
// ---------------------------------------------------------------------------------------------

/// A fresh, empty folder of this test process.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("skedge-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn skedge<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// `skedge ARGS` with `input` on stdin.
fn skedge_with_input(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = spawn(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn err_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temporary_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn repack_never_writes_over_its_input_through_a_temporary_name() {
    // `repack m.skedge.tmp m.skedge`: the fixed temporary name of m.skedge was the input, which
    // was written over and then renamed away.
    let dir = scratch("repack-tmp-name");
    let input = dir.join("m.skedge.tmp");
    std::fs::copy(MODEL, &input).unwrap();
    let out = skedge(&["repack", p(&input), p(&dir.join("m.skedge"))]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(MODEL).unwrap());
    assert_eq!(
        std::fs::read(dir.join("m.skedge")).unwrap(),
        std::fs::read(MODEL).unwrap()
    );
    // And another output of the folder whose name the fixed temporary one was (`m.a`, `m.b` ->
    // `m.skedge.tmp`) leaves that file alone.
    let out = skedge(&["repack", MODEL, p(&dir.join("m.a"))]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(MODEL).unwrap());
    assert!(
        temporary_files(&dir) == ["m.skedge.tmp"],
        "{:?}",
        temporary_files(&dir)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_packs_into_one_folder_each_leave_their_own_model() {
    // Two models packed again and again at once to `m.a` and `m.b` (one shared temporary name
    // before): each path must end up holding its own model, whole.
    let dir = scratch("pack-race");
    let cases = ["tfidf_l1_noidf_lr", "voting_hard_svc_lr_bnb_binary"];
    let wanted: Vec<Vec<u8>> = cases
        .iter()
        .map(|case| {
            let reference = dir.join(format!("{case}.skedge"));
            let interchange = format!("tests/fixtures/cases/{case}.interchange.json");
            let out = skedge(&["pack", &interchange, "-o", p(&reference)]);
            assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
            std::fs::read(&reference).unwrap()
        })
        .collect();
    assert_ne!(wanted[0], wanted[1]);
    for _ in 0..20 {
        let children: Vec<(usize, Child)> = (0..6)
            .map(|i| {
                let case = cases[i % 2];
                let out = dir.join(["m.a", "m.b"][i % 2]);
                let child = Command::new(env!("CARGO_BIN_EXE_skedge"))
                    .args([
                        "pack",
                        &format!("tests/fixtures/cases/{case}.interchange.json"),
                        "-o",
                        p(&out),
                    ])
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (i % 2, child)
            })
            .collect();
        for (_, child) in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
        }
        for (i, name) in ["m.a", "m.b"].iter().enumerate() {
            assert!(
                std::fs::read(dir.join(name)).unwrap() == wanted[i],
                "{name} holds another model"
            );
        }
    }
    assert!(temporary_files(&dir).is_empty(), "{:?}", temporary_files(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(unix)]
fn a_replaced_artifact_keeps_its_mode_and_a_failed_write_names_the_output_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("write-mode");
    let out_path = dir.join("m.skedge");
    std::fs::write(&out_path, b"old").unwrap();
    std::fs::set_permissions(&out_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = skedge(&["repack", MODEL, p(&out_path)]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    let meta = std::fs::metadata(&out_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::read(&out_path).unwrap(), std::fs::read(MODEL).unwrap());

    // A write that fails once the temporary file exists (no file may grow: `ulimit -f 0`, its
    // signal ignored so that the write fails with EFBIG): the error names the path given, the old
    // file stays, and no temporary file is left.
    std::fs::write(&out_path, b"old").unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            r#"trap '' XFSZ; ulimit -f 0; exec "$0" repack "$1" "$2""#,
            env!("CARGO_BIN_EXE_skedge"),
            MODEL,
            p(&out_path),
        ])
        .output()
        .unwrap();
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("error[IO]: {}: ", out_path.display())),
        "{err}"
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), b"old");
    assert!(temporary_files(&dir).is_empty(), "{:?}", temporary_files(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn repack_refuses_to_drop_a_signature_or_encryption_unless_told() {
    let dir = scratch("repack-keeps");
    let (sign, public, enc) = (
        "tests/golden/test-signing.key",
        "tests/golden/test-signing.pub",
        "tests/golden/test-encryption.key",
    );
    let inspect = |path: &std::path::Path, keys: &[&str]| -> serde_json::Value {
        let mut args = vec!["inspect", p(path)];
        args.extend(keys);
        let out = skedge(&args);
        assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for (golden, signed, encrypted) in [
        ("tiny.signed.skedge", true, false),
        ("tiny.encrypted.skedge", false, true),
        ("tiny.signed-encrypted.skedge", true, true),
    ] {
        // In place, as the audit did: the file must be left as it was.
        let path = dir.join(golden);
        std::fs::copy(format!("tests/golden/{golden}"), &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut args = vec!["repack", p(&path), p(&path)];
        if encrypted {
            args.extend(["--decryption-key", enc]);
        }
        let out = skedge(&args);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{golden}: {err}");
        let code = if signed {
            "SIGNATURE_MISSING"
        } else {
            "ENCRYPTION_MISSING"
        };
        assert!(err.contains(&format!("error[{code}]")), "{golden}: {err}");
        for (lost, flag) in [(signed, "--allow-unsigned"), (encrypted, "--allow-unencrypted")] {
            assert_eq!(err.contains(flag), lost, "{golden}: {err}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "{golden}");

        // Made again: kept.
        let mut again = args.clone();
        if signed {
            again.extend(["--sign-key", sign]);
        }
        if encrypted {
            again.extend(["--encrypt-key", enc]);
        }
        let out = skedge(&again);
        assert_eq!(out.status.code(), Some(0), "{golden}: {}", err_of(&out));
        let mut keys = vec![];
        if signed {
            keys.extend(["--public-key", public]);
        }
        if encrypted {
            keys.extend(["--decryption-key", enc]);
        }
        let info = inspect(&path, &keys);
        assert_eq!(
            (info["signed"] == true, info["encrypted"] == true),
            (signed, encrypted)
        );

        // Dropped on purpose.
        let plain = dir.join(format!("plain-{golden}"));
        let mut dropped = vec![
            "repack",
            p(&path),
            p(&plain),
            "--allow-unsigned",
            "--allow-unencrypted",
        ];
        if encrypted {
            dropped.extend(["--decryption-key", enc]);
        }
        let out = skedge(&dropped);
        assert_eq!(out.status.code(), Some(0), "{golden}: {}", err_of(&out));
        let info = inspect(&plain, &[]);
        assert_eq!(
            (info["signed"] == true, info["encrypted"] == true),
            (false, false)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_with_nothing_to_check_fails() {
    let dir = scratch("verify-empty");
    for (name, content) in [("empty", ""), ("blank", "\n  \r\n\n")] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = skedge(&["verify", MODEL, "--expected", p(&path)]);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("error[INVALID_INPUT]") && err.contains("nothing was checked"),
            "{name}: {err}"
        );
        assert!(err.contains(p(&path)), "{name}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_readme_documents_the_exit_statuses_of_every_command() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("\n## Command line").unwrap();
    let end = start + 1 + readme[start + 1..].find("\n## ").unwrap();
    let section = &readme[start..end];
    let table: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| command | 0 | 1 | 2 | 141 |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        table.len() > 2,
        "no exit status table in README's Command line section"
    );
    // Every subcommand `skedge help` lists, and the hidden one, has its row.
    let help = String::from_utf8(skedge(&["help"]).stdout).unwrap();
    let mut commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    commands.push("ln-table");
    assert!(commands.len() >= 9, "{commands:?}");
    for command in commands {
        assert!(
            table[2..].iter().any(|row| row
                .split('|')
                .nth(1)
                .is_some_and(|c| c.contains(&format!("`{command}`")))),
            "README's exit status table has no row for `{command}`"
        );
    }
    for status in ["141", "usage error"] {
        assert!(section.contains(status), "{status}");
    }
}

#[test]
fn usage_errors_are_coded_lines_before_clap_s_tips_and_help_is_unchanged() {
    let usage_errors: [&[&str]; 6] = [
        &["--bogus"],
        &["inspect", "--bogus", MODEL],
        &["predict", MODEL, "--format", "nope"],
        &["inspect"],
        &["no-such-command"],
        &[],
    ];
    for args in usage_errors {
        let out = skedge(args);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("skedge: error[INVALID_INPUT]: "),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let err = err_of(&skedge(&["inspect", "--bogus", MODEL]));
    assert!(
        err.starts_with("skedge: error[INVALID_INPUT]: unexpected argument '--bogus' found\n"),
        "{err}"
    );
    assert!(
        err.contains("tip: to pass '--bogus' as a value") && err.contains("Usage: skedge inspect"),
        "{err}"
    );
    let err = err_of(&skedge(&["predict", MODEL, "--format", "nope"]));
    assert!(err.contains("[possible values: text, jsonl]"), "{err}");
    // without a command: the coded line, then clap's help listing the commands
    let err = err_of(&skedge::<&str>(&[]));
    assert!(
        err.contains("\nCommands:\n") && err.contains("  predict "),
        "{err}"
    );
    // help and version are no errors: stdout, status 0
    let help: [&[&str]; 6] = [
        &["--help"],
        &["help"],
        &["help", "inspect"],
        &["inspect", "--help"],
        &["--version"],
        &["-V"],
    ];
    for args in help {
        let out = skedge(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", err_of(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", err_of(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Usage: skedge") || text == format!("skedge {}\n", env!("CARGO_PKG_VERSION")),
            "{args:?}: {text}"
        );
    }
    // skedge-monitor likewise
    let monitor = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_skedge-monitor"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for args in [&["--bogus"][..], &["check", "--bogus"], &["simulate"], &[]] {
        let out = monitor(args);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("skedge-monitor: error[INVALID_INPUT]: "),
            "{args:?}: {err}"
        );
        assert!(err.contains("Usage: skedge-monitor"), "{args:?}: {err}");
    }
    let out = monitor(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty()
            && String::from_utf8(out.stdout)
                .unwrap()
                .contains("Usage: skedge-monitor")
    );
}

#[test]
#[cfg(feature = "cli")]
fn simulated_monitors_given_one_seed_keep_their_snapshot_ids_apart() {
    // Two monitors of one model, one seed, one start time (a fleet's isolates): the same sample,
    // never the same ids (the collector and `report.py push` keep one snapshot per id).
    let run = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skedge-monitor"))
            .args([
                "simulate",
                MODEL,
                "--seed",
                "42",
                "--sample-rate",
                "0.5",
                "--per-snapshot",
                "10",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all("good movie\nbad\ngreat\n".repeat(10).as_bytes())
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 3);
    let ids = |s: &[serde_json::Value]| {
        s.iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (a_ids, b_ids) = (ids(&a), ids(&b));
    assert!(a_ids.iter().all(|id| !b_ids.contains(id)), "{a_ids:?} {b_ids:?}");
    let stats = |s: &[serde_json::Value]| {
        s.iter()
            .map(|s| s["stats"]["label_counts"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(stats(&a), stats(&b));
}

/// `skedge ARGS` with its address space limited to `mb` MB (`ulimit -v`): reading a gigabyte
/// whole aborts it.
fn with_memory_limit(mb: u32, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .args([
            "-c",
            &format!(r#"ulimit -v {}; exec "$0" "$@""#, mb * 1024),
            env!("CARGO_BIN_EXE_skedge"),
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[cfg(unix)]
fn a_file_longer_than_it_declares_is_refused_without_being_read_whole() {
    let dir = scratch("sparse");
    // An artifact followed by a gigabyte (sparse: nothing is written to the disk).
    let big = dir.join("big.skedge");
    std::fs::copy(MODEL, &big).unwrap();
    let model_len = std::fs::metadata(MODEL).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    for command in ["inspect", "repack"] {
        let mut args = vec![command, p(&big)];
        let out_path = dir.join("out.skedge");
        if command == "repack" {
            args.push(p(&out_path));
        }
        let out = with_memory_limit(256, &args);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!(
                "error[ARTIFACT_CORRUPT]: artifact has {} unexpected bytes",
                (1u64 << 30) - model_len
            )),
            "{command}: {err}"
        );
        assert!(!out_path.exists());
    }
    // An interchange past the largest one read.
    let interchange = dir.join("big.json");
    std::fs::File::create(&interchange)
        .unwrap()
        .set_len((2 << 30) + 1)
        .unwrap();
    let out = with_memory_limit(256, &["pack", p(&interchange), "-o", p(&dir.join("x.skedge"))]);
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[INTERCHANGE_INVALID]") && err.contains("larger than"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(unix)]
fn a_stream_is_refused_by_its_declared_length_before_its_body_is_read() {
    // The header of a tiny artifact declaring a 4 GiB body, then a stream of zeros: refused after
    // its header (a stream is read up to 256 MiB), not buffered until 4 GiB or memory ran out.
    const WRITTEN_AT_MOST: u64 = 512 << 20;
    let mut header = std::fs::read(MODEL).unwrap()[..24].to_vec();
    header[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut child = spawn(&["inspect", "/dev/stdin"]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let mut written = 0u64;
        let chunk = vec![0u8; 1 << 20];
        if stdin.write_all(&header).is_ok() {
            while written < WRITTEN_AT_MOST && stdin.write_all(&chunk).is_ok() {
                written += chunk.len() as u64;
            }
        }
        written // then the input ends (a reader of 4 GiB would find it truncated)
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error[INPUT_TOO_LARGE]: artifact of {} bytes (as its header declares) is larger than the {} bytes",
            24 + u64::from(u32::MAX),
            256 << 20
        )),
        "{err}"
    );
    assert!(
        written < 64 << 20,
        "the stream was read on: {written} bytes were written"
    );
    // An artifact within the limit is read from a stream as from its file.
    let out = skedge_with_input(&["inspect", "/dev/stdin"], &std::fs::read(MODEL).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    assert_eq!(out.stdout, skedge(&["inspect", MODEL]).stdout);
}

#[test]
#[cfg(unix)]
fn a_key_path_that_is_not_a_regular_file_is_refused_unread() {
    // A FIFO with no writer would hold the open for ever; a device or a directory is no key file.
    let dir = scratch("key-fifo");
    let fifo = dir.join("key.pub");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (path, kind) in [
        (p(&fifo), "a FIFO"),
        ("/dev/zero", "a device"),
        (p(&dir), "a directory"),
    ] {
        let child = Command::new(env!("CARGO_BIN_EXE_skedge"))
            .args(["inspect", MODEL, "--public-key", path])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A guard only, far above the milliseconds it takes: a blocked open is a failure, not a
        // hung test run.
        let (sent, done) = mpsc::channel();
        let id = child.id();
        thread::spawn(move || {
            if done.recv_timeout(Duration::from_secs(120)).is_err() {
                let _ = Command::new("kill").arg(id.to_string()).status();
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = sent.send(());
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains(&format!("error[IO]: {path}: not a regular file ({kind})")),
            "{path}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn predict_skips_a_byte_order_mark_and_blank_json_lines() {
    let good = skedge_with_input(&["predict", MODEL], b"good\n");
    assert_eq!(good.status.code(), Some(0));
    let good = String::from_utf8(good.stdout).unwrap();
    // Text: the mark is skipped at the start only; a blank line is the empty text.
    let out = skedge_with_input(&["predict", MODEL], b"\xef\xbb\xbfgood\n\ngood\n");
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(format!("{}\n", lines[0]), good);
    assert_ne!(format!("{}\n", lines[1]), good);
    // JSON lines: the mark skipped, blank lines (as verify skips them) get no output line.
    let out = skedge_with_input(
        &["predict", MODEL, "--format", "jsonl"],
        b"\xef\xbb\xbf{\"text\": \"good\"}\n\n  \r\n{\"text\": \"good\"}\n\t\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), good.repeat(2));
    // A mark elsewhere is not skipped: it is not JSON.
    let out = skedge_with_input(
        &["predict", MODEL, "--format", "jsonl"],
        b"{\"text\": \"good\"}\n\xef\xbb\xbf{\"text\": \"good\"}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    // verify's expected lines: the same mark skipped.
    let dir = scratch("bom");
    let mut want: serde_json::Value = serde_json::from_str(&good).unwrap();
    want["text"] = "good".into();
    let expected = dir.join("expected.jsonl");
    std::fs::write(&expected, format!("\u{feff}{want}\n")).unwrap();
    let out = skedge(&["verify", MODEL, "--expected", p(&expected)]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_caps_what_its_report_repeats() {
    let dir = scratch("verify-cap");
    let text = "good ".repeat(20_000);
    let line = serde_json::json!({"text": text, "label": "neg", "decision": [0.0], "proba": null});
    let expected = dir.join("expected.jsonl");
    std::fs::write(&expected, format!("{line}\n").repeat(12)).unwrap();
    let out = skedge(&["verify", MODEL, "--expected", p(&expected)]);
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
    assert!(
        out.stdout.len() < 20_000,
        "a report of {} bytes",
        out.stdout.len()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mismatches"], 12);
    let first = &report["first"][0];
    let shown = first["text"].as_str().unwrap();
    assert!(
        shown.starts_with("good good") && shown.ends_with("… (100000 bytes)"),
        "{shown}"
    );
    assert_eq!(first["expected"]["text"], first["text"]);
    assert_eq!(first["expected"]["label"], "neg");
    assert_eq!(first["why"], "label");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_json_line_too_long_is_reported_as_a_line_not_a_text() {
    // Just over the JSON line limit (16 MiB × 6 + 1024), skipped without being kept.
    const LINE: usize = (16 << 20) * 6 + 1024 + 1;
    let mut input = vec![b'a'; LINE];
    input.extend_from_slice(b"\n{\"text\": \"good\"}\n");
    let out = skedge_with_input(&["predict", MODEL, "--format", "jsonl"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["error"]["code"], "INPUT_TOO_LARGE");
    let message = lines[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "JSON line of {LINE} bytes exceeds the line limit of {} bytes",
            LINE - 1
        )),
        "{message}"
    );
    assert!(!message.contains("input text of"), "{message}");
    assert_eq!(lines[1]["label"], "pos");
}

#[test]
fn ln_table_stops_quietly_when_stdout_is_closed() {
    let (code, err) = into_closed_pipe(&["ln-table", "100000"]);
    assert_eq!(code, Some(141), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
#[cfg(unix)]
fn keygen_names_its_files_once_refuses_a_folder_and_leaves_no_half_pair() {
    let dir = scratch("keygen");
    // A trailing `.key` is the secret key's own name, not doubled.
    let out = skedge(&["keygen", p(&dir.join("my.key"))]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["my.key", "my.pub"]);
    // A folder, spelled as one or not, gets no hidden `.key`.
    let folder = dir.join("kd");
    std::fs::create_dir(&folder).unwrap();
    for name in [
        format!("{}/", p(&folder)),
        p(&folder).to_owned(),
        format!("{}/.key", p(&folder)),
    ] {
        let out = skedge(&["keygen", &name]);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("error[INVALID_INPUT]"), "{name}: {err}");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0, "{name}");
    }
    // The public half cannot be created (a dangling link holds its name): no secret is left
    // without it.
    std::os::unix::fs::symlink(dir.join("nowhere"), folder.join("half.pub")).unwrap();
    let out = skedge(&["keygen", p(&folder.join("half"))]);
    assert_eq!(out.status.code(), Some(2), "{}", err_of(&out));
    assert!(!folder.join("half.key").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn input_dash_is_stdin_and_errors_name_their_file() {
    let out = skedge_with_input(&["predict", MODEL, "--input", "-"], b"good\n");
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""label":"pos""#));

    let dir = scratch("names");
    let out = skedge(&["predict", MODEL, "--input", p(&dir)]);
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("error[IO]: {}: ", p(&dir))), "{err}");

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"format\":").unwrap();
    let out = skedge(&["pack", p(&bad), "-o", p(&dir.join("x.skedge"))]);
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error[INTERCHANGE_INVALID]: invalid interchange: {}: ",
            p(&bad)
        )),
        "{err}"
    );

    let expected = dir.join("expected.jsonl");
    std::fs::write(
        &expected,
        "\n{\"label\": \"pos\", \"decision\": [1.75], \"proba\": null}\n",
    )
    .unwrap();
    let out = skedge(&["verify", MODEL, "--expected", p(&expected)]);
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:2: no \"text\"", p(&expected))), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_holds_hard_voting_to_exact_decisions_and_soft_voting_to_the_tolerance() {
    let dir = scratch("voting");
    for (case, exact) in [
        ("voting_hard_svc_lr_bnb_binary", true),
        ("voting_soft_lr_mnb_weighted_3class_fr", false),
    ] {
        let model = dir.join(format!("{case}.skedge"));
        let out = skedge(&[
            "pack",
            &format!("tests/fixtures/cases/{case}.interchange.json"),
            "-o",
            p(&model),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
        let fixture = std::fs::read_to_string(format!("tests/fixtures/cases/{case}.expected.jsonl")).unwrap();
        let mut want: serde_json::Value = serde_json::from_str(fixture.lines().next().unwrap()).unwrap();
        let expected = dir.join(format!("{case}.jsonl"));
        std::fs::write(&expected, format!("{want}\n")).unwrap();
        let out = skedge(&["verify", p(&model), "--expected", p(&expected)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // A decision off by far less than the tolerance (1e-12).
        let d = want["decision"][0].as_f64().unwrap();
        want["decision"][0] = (d + 1e-14).into();
        assert_ne!(want["decision"][0].as_f64().unwrap(), d);
        std::fs::write(&expected, format!("{want}\n")).unwrap();
        let out = skedge(&["verify", p(&model), "--expected", p(&expected)]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if exact {
            assert_eq!(out.status.code(), Some(1), "{case}: {report}");
            assert_eq!(report["first"][0]["why"], "decision");
        } else {
            assert_eq!(out.status.code(), Some(0), "{case}: {report}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `skedge-monitor ARGS` with `input` on stdin, written by a thread that stops at the first
/// failed write: whether all of it was written (read) and the output.
#[cfg(feature = "cli")]
fn monitor_fed(args: &[&str], input_bytes: usize) -> (bool, std::process::Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skedge-monitor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        (0..input_bytes / chunk.len()).all(|_| stdin.write_all(&chunk).is_ok())
    });
    let out = child.wait_with_output().unwrap();
    (writer.join().unwrap(), out)
}

#[test]
#[cfg(all(unix, feature = "cli"))]
fn skedge_monitor_refuses_a_snapshot_past_the_limit_without_reading_it_whole() {
    // 64 MiB on stdin, no newline: refused after 1 MiB + 1 byte, the rest never read (the writer
    // finds the pipe closed).
    let (all_read, out) = monitor_fed(&["check"], 64 << 20);
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], "INPUT_TOO_LARGE", "{answer}");
    assert_eq!(
        answer["error"], "snapshot exceeds the limit of 1048576 bytes",
        "{answer}"
    );
    assert!(!all_read, "check read the whole input");

    let (all_read, out) = monitor_fed(&["drift", MODEL], 64 << 20);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        err_of(&out).trim_end(),
        "skedge-monitor: error[INPUT_TOO_LARGE]: snapshot exceeds the limit of 1048576 bytes"
    );
    assert!(!all_read, "drift read the whole input");
}

#[test]
#[cfg(feature = "cli")]
fn skedge_monitor_simulate_refuses_times_its_check_would_refuse() {
    let simulate = |args: &[&str], texts: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skedge-monitor"))
            .args(["simulate", MODEL])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // refused before its input is read: the pipe may be closed already
        let _ = child.stdin.take().unwrap().write_all(texts.as_bytes());
        child.wait_with_output().unwrap()
    };
    let texts = "good\nbad\ngreat\n";
    for args in [
        &["--start-ms", "1e300"][..],
        &["--start-ms", "inf"],
        &["--start-ms", "NaN"],
        &["--start-ms=-1"],
        &["--step-ms", "1e16"],
        &["--step-ms=-5"],
        &["--step-ms", "nan"],
        // the last snapshot, half a step after the third text, at 253402300800000
        &["--start-ms", "253402300799990", "--step-ms", "4"],
    ] {
        let out = simulate(args, texts);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("skedge-monitor: error[INVALID_INPUT]: invalid input: --"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // The last millisecond allowed: snapshots `check` accepts.
    let out = simulate(
        &[
            "--start-ms",
            "253402300799990",
            "--step-ms",
            "4",
            "--per-snapshot",
            "1",
        ],
        "good\nbad\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        let mut check = Command::new(env!("CARGO_BIN_EXE_skedge-monitor"))
            .arg("check")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        check.stdin.take().unwrap().write_all(line).unwrap();
        let out = check.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

// JSON lines read for the fields used (issue: a `serde_json::Value` of a line took ~17× the line).
// ---------------------------------------------------------------------------------------------

/// The tiny model fitted on a DataFrame's "review" column, written in `dir`.
fn review_model(dir: &std::path::Path) -> std::path::PathBuf {
    use skedge::artifact::{self, example::tiny, schema};
    let path = dir.join("review.skedge");
    let body = schema::Body {
        input: schema::Input::Column("review".into()),
        ..tiny()
    };
    std::fs::write(&path, artifact::to_bytes(&body).unwrap()).unwrap();
    path
}

/// `skedge predict MODEL --format jsonl` of `lines`: one answer a line, a prediction or an
/// error's message.
fn predict_jsonl(model: &str, lines: &[&str]) -> Vec<serde_json::Value> {
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = skedge_with_input(&["predict", model, "--format", "jsonl"], input.as_bytes());
    let answers: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .map(|a: serde_json::Value| match a["error"]["message"].as_str() {
            Some(m) => m.into(),
            None => a,
        })
        .collect();
    assert_eq!(answers.len(), lines.len(), "{}", err_of(&out));
    answers
}

#[test]
fn a_json_line_keeps_the_last_of_a_repeated_text_and_checks_what_it_skips() {
    let good = predict_jsonl(MODEL, &[r#"{"text": "good"}"#]).remove(0);
    assert_eq!(good["label"], "pos");
    let no_text = "invalid input: expected an object with a string \"text\"";
    let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let cases: &[(&str, &str)] = &[
        // As `serde_json::Value` and Python's json.loads read them: the last one counts.
        (r#"{"text": "bad", "text": "good"}"#, ""),
        (r#"{"text": 1, "text": "good"}"#, ""),
        (r#"{"text": "good", "text": 1}"#, no_text),
        // Other values are skipped, whatever they hold.
        (
            r#"{"x": [{"text": "bad", "a": [1, -2.5e300, null, true]}, "s\n\u00e9"], "text": "good", "y": {}}"#,
            "",
        ),
        (r#"{"text": {"text": "good"}}"#, no_text),
        (r#"["text", "good"]"#, no_text),
        (r#""good""#, no_text),
        (r#"null"#, no_text),
        // What they skip is still read as JSON: syntax, escapes, numbers, the depth limit.
        (r#"{"text": "good", "x": [1,]}"#, "not JSON: trailing comma"),
        (
            r#"{"text": "good", "x": {"a": 1 "b": 2}}"#,
            "not JSON: expected `,` or `}`",
        ),
        (r#"{"text": "good", "x": "\q"}"#, "not JSON: invalid escape"),
        (
            r#"{"text": "good", "x": "\udc00"}"#,
            "not JSON: lone leading surrogate",
        ),
        (r#"{"text": "good", "x": 1e400}"#, "not JSON: number out of range"),
        (r#"{"text": "good", "x": 01}"#, "not JSON: invalid number"),
        (r#"{"text": "good"} x"#, "not JSON: trailing characters"),
    ];
    let deep_line = format!(r#"{{"text": "good", "x": {deep}}}"#);
    let mut lines: Vec<&str> = cases.iter().map(|(l, _)| *l).collect();
    lines.push(&deep_line);
    let answers = predict_jsonl(MODEL, &lines);
    let wanted = cases
        .iter()
        .map(|(_, w)| *w)
        .chain(["not JSON: recursion limit exceeded"]);
    for ((line, answer), wanted) in lines.iter().zip(&answers).zip(wanted) {
        match wanted {
            "" => assert_eq!(answer, &good, "{line}"),
            _ => assert!(
                answer.as_str().is_some_and(|a| a.contains(wanted)),
                "{line}: {answer}"
            ),
        }
    }
}

#[test]
fn a_record_line_has_one_key_per_name_and_lists_at_most_a_thousand() {
    let dir = scratch("record-keys");
    let model = review_model(&dir);
    let model = p(&model);
    let good = predict_jsonl(model, &[r#"{"review": "good"}"#]).remove(0);
    assert_eq!(good["label"], "pos");
    let keys = |n: usize| {
        (0..n)
            .map(|i| format!(r#""k{i:04}": {i}"#))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listed = |shown: &str| {
        format!(
            "invalid input: expected a text or a record {{\"review\": text}} (the model's column), got \
             a record with keys [{shown}]"
        )
    };
    let first_20 = (0..20)
        .map(|i| format!("\"k{i:04}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cases = [
        (r#"{"review": "bad", "review": "good"}"#.to_owned(), None),
        (
            r#"{"review": "good", "review": 1}"#.to_owned(),
            Some("invalid input: record field \"review\" must be a string, got a number".to_owned()),
        ),
        (
            r#"{"review": {"review": "good", "x": [1]}}"#.to_owned(),
            Some("invalid input: record field \"review\" must be a string, got an object".to_owned()),
        ),
        (
            r#"{"b": 1, "review": "good", "b": [2], "a": {"c": 3}}"#.to_owned(),
            Some(listed(r#""a", "b", "review""#)),
        ),
        (
            "[1]".to_owned(),
            Some(
                "invalid input: expected a record {\"review\": text} (the model's column), got an array"
                    .into(),
            ),
        ),
        // Up to a thousand distinct keys, listed as before; repeats count once.
        (
            format!("{{{}, {}}}", keys(25), keys(3)),
            Some(listed(&format!("{first_20}, … 5 more"))),
        ),
        (
            format!("{{{}, {}}}", keys(1000), keys(1000)),
            Some(listed(&format!("{first_20}, … 980 more"))),
        ),
        // Past them, a record of millions of keys keeps no more than that.
        (
            format!("{{{}, \"review\": \"good\"}}", keys(1000)),
            Some(
                "invalid input: expected a text or a record {\"review\": text} (the model's column), got \
                 a record with more than 1000 keys"
                    .into(),
            ),
        ),
        (
            r#"{"review": "good", "x": [1,]}"#.to_owned(),
            Some("invalid input: not JSON: trailing comma at line 1 column 28".into()),
        ),
    ];
    let lines: Vec<&str> = cases.iter().map(|(l, _)| l.as_str()).collect();
    let answers = predict_jsonl(model, &lines);
    for ((line, wanted), answer) in cases.iter().zip(&answers) {
        match wanted {
            None => assert_eq!(answer, &good, "{line}"),
            Some(message) => assert_eq!(answer, message, "{}", &line[..line.len().min(80)]),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_reads_the_fields_it_compares_and_checks_the_rest_as_json() {
    let dir = scratch("verify-fields");
    let good = skedge_with_input(&["predict", MODEL], b"good\n");
    let got: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    let (label, decision, proba) = (&got["label"], &got["decision"], &got["proba"]);
    let expected = dir.join("expected.jsonl");
    let verify = |line: &str| {
        std::fs::write(&expected, format!("{line}\n")).unwrap();
        skedge(&["verify", MODEL, "--expected", p(&expected)])
    };
    // Other fields, before or after, nested or repeated, are skipped; the last "text" counts.
    let line = format!(
        r#"{{"x": [{{"text": "bad"}}, 1.5, null], "text": "bad", "label": {label}, "decision": {decision}, "proba": {proba}, "text": "good", "y": {{"z": [[]]}}}}"#
    );
    let out = verify(&line);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    // The report shows the fields compared.
    let out = verify(&format!(
        r#"{{"text": "good", "label": "neg", "decision": {decision}, "proba": {proba}, "note": [1, 2]}}"#
    ));
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = &report["first"][0]["expected"];
    assert_eq!(
        shown,
        &serde_json::json!({"text": "good", "label": "neg", "decision": decision, "proba": proba})
    );
    // What is skipped is still read as JSON; a line that is no object has no "text".
    for (line, why) in [
        (
            format!(r#"{line} "#).replace(r#""y""#, r#""y": 1e400, "w""#),
            "number out of range",
        ),
        (line.replace("[[]]", "[[],]"), "trailing comma"),
        (format!("[{line}]"), "no \"text\""),
    ] {
        let out = verify(&line);
        let err = err_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("error[INVALID_INPUT]") && err.contains(why), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Peak resident memory of `skedge ARGS` reading `input` (which it answers with one line),
/// read before its input closes.
#[cfg(target_os = "linux")]
fn peak_rss_of_one_line(args: &[&str], input: Vec<u8>) -> (String, u64) {
    let mut child = spawn(args);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (done, wait) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        stdin.write_all(&input).unwrap();
        // See a_200_mb_line_is_refused_with_its_code_without_being_buffered_whole.
        let _ = wait.recv_timeout(Duration::from_secs(120));
    });
    let mut answer = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut answer)
        .unwrap();
    let peak = peak_rss(pid).expect("skedge had exited before the end of its input");
    done.send(()).unwrap();
    writer.join().unwrap();
    child.wait().unwrap();
    (answer, peak)
}

#[test]
#[cfg(target_os = "linux")]
fn a_json_line_of_many_small_values_takes_about_its_own_size() {
    // A `serde_json::Value` of these lines took 17 and 10 times them.
    const LINE: usize = 32 << 20;
    let mut numbers = b"{\"text\": \"good\", \"x\": [".to_vec();
    while numbers.len() < LINE {
        numbers.extend_from_slice(b"0,");
    }
    numbers.extend_from_slice(b"0]}\n");
    let (answer, peak) = peak_rss_of_one_line(&["predict", MODEL, "--format", "jsonl"], numbers);
    assert!(answer.contains(r#""label":"pos""#), "{answer}");
    assert!(
        peak < 2 * LINE as u64,
        "peak RSS {peak} bytes for a {LINE}-byte line"
    );

    let dir = scratch("many-keys");
    let model = review_model(&dir);
    let mut keys = b"{".to_vec();
    for i in 0.. {
        if keys.len() >= LINE {
            break;
        }
        write!(keys, "\"k{i:07}\":0,").unwrap();
    }
    keys.extend_from_slice(b"\"review\":\"good\"}\n");
    let (answer, peak) = peak_rss_of_one_line(&["predict", p(&model), "--format", "jsonl"], keys);
    assert!(
        answer.contains("got a record with more than 1000 keys"),
        "{answer}"
    );
    assert!(
        peak < 2 * LINE as u64,
        "peak RSS {peak} bytes for a {LINE}-byte line"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
