//! Absolute deadlines on `CLOCK_MONOTONIC`, for the timed waits of the lock
//! crates (`sem_clockwait`, `pthread_mutex_clocklock`): an absolute deadline
//! survives retries after `EINTR` without restarting the timeout, and the
//! monotonic clock is not moved by changes to the wall clock.

use std::time::Duration;

/// `clock_gettime(CLOCK_MONOTONIC)` + `d`, normalised (`tv_nsec < 1e9`).
pub fn monotonic_deadline(d: Duration) -> libc::timespec {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    timespec_add(
        libc::timespec {
            tv_sec: now.tv_sec(),
            tv_nsec: now.tv_nsec(),
        },
        d,
    )
}

/// `t + d` with the nanoseconds carried into seconds, saturating: the
/// kernel rejects `tv_nsec >= 1e9` with `EINVAL`.
pub fn timespec_add(t: libc::timespec, d: Duration) -> libc::timespec {
    let nsec = t.tv_nsec as u64 + u64::from(d.subsec_nanos());
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    libc::timespec {
        tv_sec: t
            .tv_sec
            .saturating_add(secs)
            .saturating_add((nsec / 1_000_000_000) as libc::time_t),
        tv_nsec: (nsec % 1_000_000_000) as libc::c_long,
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds: one clock for every
/// process on the machine, so timestamps taken by workers in different
/// processes compare with each other and with their coordinator's.
pub fn monotonic_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// `clock_gettime(CLOCK_MONOTONIC_RAW)` in nanoseconds: the hardware clock
/// without NTP's slewing, the same in every process of the machine, read
/// through the vDSO (no system call), so timestamps taken by two processes
/// around single instructions compare with each other.
pub fn monotonic_raw_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC_RAW)
}

/// `clock_gettime(id)` in nanoseconds; both clocks always exist on Linux.
fn clock_ns(id: nix::time::ClockId) -> u64 {
    let ts = nix::time::clock_gettime(id).expect("the monotonic clocks always exist on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_normalised() {
        let t = libc::timespec {
            tv_sec: 5,
            tv_nsec: 999_999_999,
        };
        let r = timespec_add(t, Duration::from_nanos(2));
        assert_eq!((r.tv_sec, r.tv_nsec), (6, 1));
        let r = timespec_add(t, Duration::from_millis(1500));
        assert_eq!((r.tv_sec, r.tv_nsec), (7, 499_999_999));
        let r = timespec_add(t, Duration::MAX);
        assert_eq!(r.tv_sec, libc::time_t::MAX);
        assert!(r.tv_nsec < 1_000_000_000);
        let d = monotonic_deadline(Duration::from_secs(1));
        assert!(d.tv_nsec < 1_000_000_000 && d.tv_sec > 0);
    }
}
