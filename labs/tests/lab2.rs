//! lab2-producer / lab2-consumer: the textbook pair in separate processes,
//! in either order, and with the textbook's C programs on either side.

mod common;
use common::*;
use std::time::{Duration, Instant};

const MSG: &str = "Studying Operating Systems Is Fun!";

#[test]
fn producer_then_consumer_sees_the_message_and_removes_it() {
    let (guard, name) = Unlink::new("lab2-pc");
    let p = run(PRODUCER, &["--name", name.as_str()]);
    p.expect_code(0);
    assert!(
        exists(&name),
        "the producer must leave the object for the consumer"
    );
    let c = run(CONSUMER, &["--name", name.as_str(), "--wait", "5"]);
    c.expect_code(0);
    assert!(c.stdout.lines().any(|l| l == MSG), "{}", c.stdout);
    assert!(
        c.stdout.contains("34 bytes, NUL-terminated"),
        "{}",
        c.stdout
    );
    assert!(!exists(&name), "the consumer must unlink");
    drop(guard);
}

#[test]
fn consumer_keep_leaves_it_and_a_custom_message_round_trips() {
    let (guard, name) = Unlink::new("lab2-keep");
    run(
        PRODUCER,
        &[
            "--name",
            name.as_str(),
            "--message",
            "hello, ünïcode",
            "--size",
            "64",
        ],
    )
    .expect_code(0);
    let c = run(CONSUMER, &["--name", name.as_str(), "--keep"]);
    c.expect_code(0);
    assert!(
        c.stdout.lines().any(|l| l == "hello, ünïcode"),
        "{}",
        c.stdout
    );
    assert!(exists(&name));
    assert_eq!(std::fs::metadata(name.path()).unwrap().len(), 64);
    drop(guard);
}

#[test]
fn consumer_started_first_waits_for_the_producer() {
    let (guard, name) = Unlink::new("lab2-wait");
    let consumer = spawn(CONSUMER, &["--name", name.as_str(), "--wait", "20"]);
    std::thread::sleep(Duration::from_millis(500));
    let mut consumer = consumer;
    assert!(
        consumer.try_wait().unwrap().is_none(),
        "the consumer gave up instead of waiting"
    );
    run(
        PRODUCER,
        &["--name", name.as_str(), "--message", "late but here"],
    )
    .expect_code(0);
    let out = consumer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("does not exist yet: waiting"), "{stdout}");
    assert!(stdout.contains("appeared after"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "late but here"), "{stdout}");
    assert!(!exists(&name));
    drop(guard);
}

#[test]
fn consumer_without_producer_gives_up_after_its_wait() {
    let (guard, name) = Unlink::new("lab2-nowait");
    let t = Instant::now();
    let c = run(CONSUMER, &["--name", name.as_str(), "--wait", "1"]);
    let took = t.elapsed();
    c.expect_code(2);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert_eq!(c.stderr.lines().count(), 1, "{}", c.stderr);
    assert!(c.stderr.contains("does not exist"), "{}", c.stderr);
    assert!(c.stderr.contains("lab2-producer"), "{}", c.stderr);
    assert!(!exists(&name));
    drop(guard);
}

#[test]
fn c_producer_then_lab2_consumer() {
    let dir = TempDir::new("c-producer");
    let producer = compile_c(&dir.0, "producer", C_PRODUCER);
    let (guard, name) = Unlink::new("lab2-c2rust");
    run(producer.to_str().unwrap(), &[name.as_str(), "written in C"]).expect_code(0);
    assert!(exists(&name));
    let c = run(CONSUMER, &["--name", name.as_str(), "--wait", "0"]);
    c.expect_code(0);
    assert!(
        c.stdout.lines().any(|l| l == "written in C"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("4096 bytes"), "{}", c.stdout);
    assert!(!exists(&name));
    drop(guard);
}

#[test]
fn lab2_producer_then_c_consumer() {
    let dir = TempDir::new("c-consumer");
    let consumer = compile_c(&dir.0, "consumer", C_CONSUMER);
    let (guard, name) = Unlink::new("lab2-rust2c");
    run(PRODUCER, &["--name", name.as_str()]).expect_code(0);
    let c = run(consumer.to_str().unwrap(), &[name.as_str()]);
    c.expect_code(0);
    assert_eq!(c.stdout, format!("{MSG}\n"));
    assert!(!exists(&name), "the C consumer unlinks");
    drop(guard);
}

#[test]
fn textbook_name_os_is_normalised() {
    // Only checks the normalisation the producer reports; runs the real
    // pair under a unique name so a real /OS is never touched.
    let r = run(PRODUCER, &["--help"]);
    r.expect_code(0);
    assert!(r.stdout.contains("[default: OS]"), "{}", r.stdout);
    let (guard, name) = Unlink::new("lab2-slash");
    let bare = name.file_name().to_owned();
    run(PRODUCER, &["--name", &bare]).expect_code(0);
    assert!(exists(&name), "{bare} should become {name}");
    let c = run(CONSUMER, &["--name", name.as_str()]);
    c.expect_code(0);
    drop(guard);
}

/// Finding 9 of "Trust nothing that is shared": a producer that shrinks
/// the object under a consumer's mapping. The consumer maps 4096 bytes and
/// polls the first byte for a message; the object is then truncated to 0,
/// so its next poll touches a page that no longer exists. The old consumer
/// died of SIGBUS ("Bus error"); now it prints one line naming the object
/// and the offset and exits 2.
#[test]
fn consumer_whose_object_shrinks_says_so_and_exits_2() {
    let (guard, name) = Unlink::new("lab2-shrink");
    plain_object(&name, 4096, b"\0");
    let child = spawn(CONSUMER, &["--name", name.as_str(), "--wait", "20"]);
    // Wait until it has mapped the object (it says so), then shrink it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mapped = std::fs::read_to_string(format!("/proc/{}/maps", child.id()))
            .unwrap_or_default()
            .contains(name.file_name());
        if mapped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer never mapped {name}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let obj = shm::ShmOptions::new().open(&name).unwrap();
    nix::unistd::ftruncate(obj.fd(), 0).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {:?}; stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(
        lines[0].contains(name.as_str())
            && lines[0].contains("offset 0")
            && lines[0].contains("ftruncate"),
        "{stderr}"
    );
    drop(guard);
}
