//! The ring, the FIFO and the two-process helpers: bytes arrive intact, a
//! dead or closed peer is an error (never a hang), and nothing is left in
//! `/dev/shm` or the temporary directory.
//!
//! The tests run one at a time (a lock): the spinning transports want a
//! core each, and the leftover check must not see a neighbour's objects.

use ipc::{End, Error, Fifo, Ring, Signal, Transport};
use shm::ShmName;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock; on drop checks that this process left no shared-memory
/// object and no FIFO behind.
struct Clean(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

fn serial() -> Clean {
    Clean(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn leftovers() -> Vec<String> {
    let tag = format!("-{}-", std::process::id());
    let mut left = Vec::new();
    for dir in [std::path::PathBuf::from(shm::SHM_DIR), std::env::temp_dir()] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("shmlab-") && name.contains(&tag) {
                left.push(format!("{}/{name}", dir.display()));
            }
        }
    }
    left
}

impl Drop for Clean {
    fn drop(&mut self) {
        let left = leftovers();
        if !std::thread::panicking() {
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn ring_moves_64_mib_between_processes_futex() {
    let _c = serial();
    ipc::shm_stream(64 * MIB, ipc::STREAM_MSG, Signal::Futex).unwrap();
    // Odd sizes put message boundaries everywhere in the ring.
    ipc::shm_stream(8 * MIB + 13, 4093, Signal::Futex).unwrap();
}

#[test]
fn ring_moves_64_mib_between_processes_spin() {
    let _c = serial();
    ipc::shm_stream(64 * MIB, ipc::STREAM_MSG, Signal::Spin).unwrap();
    ipc::shm_stream(
        8 * MIB + 13,
        3 * ipc::DEFAULT_CAPACITY / 2 + 1,
        Signal::Spin,
    )
    .unwrap();
    ipc::shm_stream(64 * MIB, ipc::STREAM_MSG, Signal::Adaptive).unwrap();
    ipc::shm_stream(
        8 * MIB + 13,
        3 * ipc::DEFAULT_CAPACITY / 2 + 1,
        Signal::Adaptive,
    )
    .unwrap();
}

/// Rings of other sizes, down to one page, between processes: messages
/// larger than the ring stream through it, both ways of receiving, every
/// byte checked by the receiver (`shm_stream_with` fails on any mismatch).
#[test]
fn rings_of_every_size_stream_intact_in_place_and_copying_out() {
    let _c = serial();
    for capacity in [ipc::MIN_CAPACITY, 64 << 10, 12 << 10, 4 << 20] {
        for signal in [Signal::Futex, Signal::Spin, Signal::Adaptive] {
            for receive in [ipc::Receive::InPlace, ipc::Receive::CopyOut] {
                let how = ipc::ShmStream {
                    signal,
                    capacity,
                    receive,
                };
                for msg in [1000, capacity + 4093] {
                    ipc::shm_stream_with(4 * MIB + 13, msg, &how)
                        .unwrap_or_else(|e| panic!("{how:?}, {msg}-byte messages: {e}"));
                }
            }
        }
    }
}

#[test]
fn a_ring_size_it_cannot_have_is_refused_and_creates_nothing() {
    let _c = serial();
    for capacity in [0, 4095, 4097, 6000, ipc::MAX_CAPACITY + 4096] {
        let name = ShmName::unique("ipc-test-bad-size");
        let err = Ring::with_capacity(&name, Signal::Futex, capacity).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.contains("multiple of 4096")),
            "{capacity}: {err}"
        );
        assert!(!name.path().exists(), "{capacity}: {name} was created");
        let how = ipc::ShmStream {
            capacity,
            ..ipc::ShmStream::new(Signal::Spin)
        };
        assert!(matches!(
            ipc::shm_stream_with(MIB, 1000, &how),
            Err(Error::Invalid(_))
        ));
    }
}

#[test]
fn an_opener_sees_the_creators_capacity() {
    let _c = serial();
    let made =
        Ring::with_capacity(&ShmName::unique("ipc-test-size"), Signal::Futex, 256 << 10).unwrap();
    assert_eq!(made.capacity(), 256 << 10);
    let opened = Ring::open(made.name()).unwrap();
    assert_eq!(opened.capacity(), 256 << 10);
    assert_eq!(
        std::fs::metadata(made.name().path()).unwrap().len(),
        shm::probe_header(made.name())
            .unwrap()
            .unwrap()
            .needed_len()
            .unwrap()
    );
    // A full ring refuses nothing but waits: fill it from one thread
    // exactly, then read it all back.
    let mut tx = made.sender().unwrap();
    let data: Vec<u8> = (0..256u32 << 10).map(|i| (i % 251) as u8).collect();
    tx.send(&data).unwrap();
    let mut rx = opened.receiver().unwrap();
    let mut got = vec![0u8; data.len()];
    rx.recv_exact(&mut got).unwrap();
    assert!(got == data);
}

#[test]
fn pipe_and_fifo_streams_arrive_intact() {
    let _c = serial();
    ipc::pipe_stream(16 * MIB + 1, ipc::STREAM_MSG).unwrap();
    ipc::fifo_stream(16 * MIB + 1, 1000).unwrap();
}

#[test]
fn every_round_trip_helper_runs_1000_times() {
    let _c = serial();
    for t in Transport::ALL {
        let d = ipc::round_trips(t, 1000).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(d > Duration::ZERO, "{t}");
    }
    assert_eq!(ipc::pipe_round_trips(0).unwrap(), Duration::ZERO);
}

#[test]
fn bad_message_sizes_are_refused() {
    let _c = serial();
    for msg in [0, ipc::MAX_STREAM_MSG + 1] {
        assert!(matches!(ipc::pipe_stream(10, msg), Err(Error::Invalid(_))));
    }
    assert!("carrier-pigeon".parse::<Transport>().is_err());
    assert_eq!("shm-spin".parse::<Transport>().unwrap(), Transport::ShmSpin);
}

/// Threads too, with random-ish chunk sizes on both sides, and end-of-file
/// once the sender is dropped.
#[test]
fn ring_between_threads_with_ragged_chunks_then_eof() {
    let _c = serial();
    for signal in [Signal::Futex, Signal::Spin, Signal::Adaptive] {
        let ring = Ring::create(&ShmName::unique("ipc-test-threads"), signal).unwrap();
        let total: usize = 5 * ipc::DEFAULT_CAPACITY + 777;
        let data: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
        std::thread::scope(|s| {
            let mut tx = ring.sender().unwrap();
            let data = &data;
            s.spawn(move || {
                let mut off = 0;
                let mut step = 1;
                while off < total {
                    let n = step.min(total - off);
                    tx.send(&data[off..off + n]).unwrap();
                    off += n;
                    step = (step * 3 + 1) % 300_000 + 1;
                }
            });
            let mut rx = ring.receiver().unwrap();
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0u8; 100_003];
            let mut want = 1;
            loop {
                let n = rx.recv(&mut buf[..want]).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                want = (want * 5 + 3) % buf.len() + 1;
            }
            assert_eq!(got.len(), total, "{signal}");
            assert!(got == *data, "{signal}: bytes differ");
            assert_eq!(rx.received(), total as u64);
        });
    }
}

#[test]
fn one_sender_and_one_receiver_per_ring() {
    let _c = serial();
    let ring = Ring::create(&ShmName::unique("ipc-test-busy"), Signal::Futex).unwrap();
    let tx = ring.sender().unwrap();
    let err = ring.sender().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Busy {
                end: End::Sender,
                ..
            }
        ),
        "{err}"
    );
    let rx = ring.receiver().unwrap();
    assert!(matches!(
        ring.receiver(),
        Err(Error::Busy {
            end: End::Receiver,
            ..
        })
    ));
    drop(tx);
    // A closed sender end stays closed: the receiver has seen (or will see)
    // end-of-file.
    assert!(matches!(
        ring.sender(),
        Err(Error::Closed {
            end: End::Sender,
            ..
        })
    ));
    drop(rx);
}

#[test]
fn a_futex_receiver_sleeps_instead_of_spinning() {
    let _c = serial();
    let ring = Ring::create(&ShmName::unique("ipc-test-sleep"), Signal::Futex).unwrap();
    std::thread::scope(|s| {
        let mut tx = ring.sender().unwrap();
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(120));
            tx.send(b"late").unwrap();
        });
        let mut rx = ring.receiver().unwrap();
        let mut buf = [0u8; 4];
        rx.recv_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        // Asleep the whole time: woken by each 50 ms liveness check and by
        // the data, not thousands of times.
        assert!((1..=10).contains(&rx.sleeps()), "{} sleeps", rx.sleeps());
    });
}

#[test]
fn a_sender_whose_receiver_closed_gets_an_error() {
    let _c = serial();
    let ring = Ring::create(&ShmName::unique("ipc-test-closed"), Signal::Futex).unwrap();
    let mut tx = ring.sender().unwrap();
    drop(ring.receiver().unwrap());
    let err = tx.send(&vec![0u8; ipc::DEFAULT_CAPACITY + 1]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Closed {
                end: End::Receiver,
                ..
            }
        ),
        "{err}"
    );
}

/// A receiver process that dies without closing: the sender, blocked on a
/// full ring, reports the death instead of waiting forever.
#[test]
fn a_dead_peer_process_is_an_error_not_a_hang() {
    let _c = serial();
    for signal in [Signal::Futex, Signal::Spin, Signal::Adaptive] {
        let ring = Ring::create(&ShmName::unique("ipc-test-dead"), signal).unwrap();
        let name = ring.name().clone();
        let (r, w) = ipc::pipe().unwrap();
        // SAFETY: `keep` is a pipe end; the child opens the ring, claims the
        // receiver and vanishes without closing it (no locks involved).
        let (mut child, r) = unsafe {
            ipc::spawn(r, move || {
                let ring = Ring::open(&name).unwrap();
                std::mem::forget(ring.receiver().unwrap());
                drop(w);
                0
            })
        }
        .unwrap();
        // Wait for the child to claim its end and finish.
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 0);
        let pid = child.pid();
        assert!(child.wait().unwrap().success());
        let mut tx = ring.sender().unwrap();
        let err = tx.send(&vec![1u8; 2 * ipc::DEFAULT_CAPACITY]).unwrap_err();
        match err {
            Error::PeerDied {
                end: End::Receiver,
                pid: p,
                ..
            } => assert_eq!(p, pid),
            e => panic!("{signal}: {e}"),
        }
    }
}

#[test]
fn fifo_is_a_fifo_and_is_removed() {
    let _c = serial();
    use std::os::unix::fs::FileTypeExt;
    let f = Fifo::create_temp("ipc-test").unwrap();
    let path = f.path().to_path_buf();
    assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
    // Nobody reads: a bounded open for writing gives up instead of hanging.
    assert!(Fifo::open_write(&path, Duration::from_millis(30)).is_err());
    drop(f);
    assert!(!path.exists());
    let f = Fifo::create_temp("ipc-test").unwrap();
    let path = f.path().to_path_buf();
    f.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn exit_statuses_are_told_apart() {
    let _c = serial();
    // SAFETY: no `keep`; the child only returns or raises a signal.
    let (mut child, ()) = unsafe { ipc::spawn((), || 3) }.unwrap();
    assert_eq!(child.wait().unwrap(), ipc::Exit::Code(3));
    // SAFETY: as above.
    let (mut child, ()) = unsafe {
        ipc::spawn((), || {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR1);
            0
        })
    }
    .unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit, ipc::Exit::Signal(libc::SIGUSR1));
    assert!(exit.to_string().contains("SIGUSR1"), "{exit}");
}
