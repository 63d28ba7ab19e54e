//! # shmlab IPC: pipes, FIFOs and a shared-memory ring, side by side
//!
//! The pieces lab 6 and the IPC benchmarks are built from:
//!
//! - [`Ring`]: a single-producer single-consumer byte ring in a shared
//!   region (1 MiB unless created with another capacity), opened by name from any process, whose ends wait
//!   either on a futex or by spinning ([`Signal`]);
//! - [`Fifo`]: a named pipe in the temporary directory, removed on drop and
//!   on Ctrl-C;
//! - [`spawn`], [`Child`], [`Exit`]: `fork` a child that runs a closure and
//!   `_exit`s, reap it, tell an exit status from a signal;
//! - [`pipe`], [`wait_readable`], [`set_sigpipe`]: the small pipe calls the
//!   pipe pitfalls need (close-on-exec pipes, `poll` with a timeout, the
//!   SIGPIPE disposition);
//! - [`round_trips`] and [`stream`] (and one function per transport, such
//!   as [`pipe_round_trips`]): time `iters` round trips, or a stream of
//!   bytes, between two processes, checking every byte on arrival.
//!
//! All system calls except plain reads and writes live in the private
//! `sys` module.

mod adaptive;
mod child;
mod error;
mod fifo;
pub mod ladder;
mod measure;
mod process;
mod ring;
mod sys;

pub use error::{End, Error, Result};
pub use fifo::Fifo;
pub use measure::{
    MAX_STREAM_MSG, ROUND_TRIP_BYTES, Receive, STREAM_MSG, ShmStream, Transport, fifo_round_trips,
    fifo_stream, pipe_round_trips, pipe_stream, round_trips, shm_round_trips, shm_stream,
    shm_stream_with, stream,
};
pub use process::{Child, Exit, SigPipe, pipe, set_sigpipe, spawn, wait_readable};
pub use ring::{
    DEFAULT_CAPACITY, MAX_CAPACITY, MIN_CAPACITY, PEER_CHECK, Receiver, Ring, RingConfig,
    RingShared, Sender, Signal,
};
