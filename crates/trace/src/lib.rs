//! `shmlab trace -- PROGRAM`: runs a program under `ptrace(2)` and
//! explains what it does with POSIX shared memory, named semaphores and
//! pipes — every call decoded, every classic failure explained as it
//! happens, hangs diagnosed, and what it leaked reported at the end.

pub mod event;
pub mod explain;
mod filter;
mod sys;
pub mod tracer;

pub use event::{Event, Output, Summary};
pub use tracer::{Options, RootEnd, TraceError, attach, run};
