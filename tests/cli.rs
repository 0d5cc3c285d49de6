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

#[test]
fn inspect_stops_quietly_when_stdout_is_closed() {
    // The pipe's read end is closed before skedge starts (`| head -0`), so its first write fails
    // whatever the scheduling: dropping our end after spawning raced with a fast child.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(["inspect", MODEL])
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = stderr_of(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(err.is_empty(), "{err}");
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
