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
