//! `shm::process::fork_child` in a process whose other threads print: the
//! child never inherits stdout's lock held by a thread it does not have.
//! (A child forked while the test harness printed a result once blocked
//! forever in its final flush.) Its own test binary: the printing thread
//! would disturb other tests.

use shm::process::Exit;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn children_forked_while_another_thread_prints_all_exit() {
    let stop = Arc::new(AtomicBool::new(false));
    // Holds the real stdout's lock nearly all the time (the test harness's
    // capture does not apply to an explicit `stdout().lock()`).
    let printer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(b"");
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(200) {
                    std::hint::spin_loop();
                }
                drop(out);
            }
        })
    };
    let mut stuck = Vec::new();
    for i in 0..100 {
        // SAFETY: the child only prints (through the lock this fork holds
        // for it) and exits; it takes no other lock.
        let child = unsafe {
            shm::process::fork_child(move || {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "");
                drop(out);
                i % 7
            })
        }
        .expect("fork");
        let mut child = child;
        let status = match child.stop_by(Instant::now() + Duration::from_secs(5)) {
            Ok((exit, false)) => Some(exit),
            _ => None,
        };
        match status {
            Some(Exit::Code(code)) => assert_eq!(code, i % 7),
            Some(other) => panic!("child {i} ended with {other:?}"),
            None => {
                stuck.push(i);
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    printer.join().unwrap();
    assert!(stuck.is_empty(), "child {stuck:?} stuck after 5 s");
}
