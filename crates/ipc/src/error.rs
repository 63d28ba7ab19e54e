//! One error type for the IPC crate; every message is one line that says
//! what went wrong and, where there is one, what to do.

use std::fmt;

/// Result with the IPC crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which end of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The one process (or thread) that writes.
    Sender,
    /// The one process (or thread) that reads.
    Receiver,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Sender => "sender",
            End::Receiver => "receiver",
        })
    }
}

/// What can go wrong moving bytes between processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating or opening the shared region failed.
    #[error(transparent)]
    Shm(#[from] shm::Error),
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Io {
        /// The call and what it was for.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Somebody else already holds this end of a single-producer
    /// single-consumer ring.
    #[error(
        "the {end} end of ring {ring} is already held by pid {pid}; a ring has exactly one sender and one receiver"
    )]
    Busy {
        /// The ring's name.
        ring: String,
        /// The end asked for.
        end: End,
        /// Who holds it.
        pid: i32,
    },
    /// The other end closed the ring (a receiver that has gone cannot take
    /// more bytes; a closed sender cannot be reopened).
    #[error("ring {ring} was closed by its {end}; create a new ring")]
    Closed {
        /// The ring's name.
        ring: String,
        /// Which end closed it.
        end: End,
    },
    /// The process at the other end died while this end waited for it.
    #[error("the {end} of ring {ring} (pid {pid}) died while this end was waiting for it")]
    PeerDied {
        /// The ring's name.
        ring: String,
        /// The end that died.
        end: End,
        /// Its pid.
        pid: i32,
    },
    /// A child process failed or died.
    #[error("child process {pid} {what}")]
    Child {
        /// Its pid.
        pid: i32,
        /// What happened.
        what: String,
    },
    /// The bytes that arrived are not the bytes that were sent.
    #[error("{transport}: the data arrived corrupted: {detail}")]
    Corrupt {
        /// The transport under test.
        transport: String,
        /// Where it differed.
        detail: String,
    },
    /// A ring's counters, as the peer stored them, are impossible: the
    /// bytes in flight (`head - tail`) are negative or more than the ring
    /// holds. Only a corrupted region or a peer that breaks the protocol
    /// does that; nothing was copied.
    #[error(
        "ring {ring} is corrupt: its {what} counter says {theirs} while this end is at {mine}, more than the {capacity}-byte ring apart (or behind): the peer broke the protocol or the region was overwritten; nothing was copied"
    )]
    RingCorrupt {
        /// The ring's name.
        ring: String,
        /// Which counter: `head` (the sender's) or `tail` (the receiver's).
        what: &'static str,
        /// That counter's value.
        theirs: u64,
        /// This end's own counter.
        mine: u64,
        /// Bytes the ring holds.
        capacity: usize,
    },
    /// A caller passed an argument outside what the call supports.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(op: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            op: op.into(),
            source: source.into(),
        }
    }
}
