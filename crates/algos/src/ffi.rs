//! Bring your own lock, in C: [`CLock`] loads a shared library that exports
//! the four functions of `labs/examples/locks/shmlab_lock.h` and races it
//! like any other [`MutexAlgorithm`]. This module is the only place that
//! calls into foreign code.
//!
//! ```c
//! size_t shmlab_lock_size(void);                               // bytes of state
//! void   shmlab_lock_init(void *state, unsigned workers);      // once, before the workers start
//! void   shmlab_lock_acquire(void *state, unsigned worker);    // worker = 0 .. workers-1
//! void   shmlab_lock_release(void *state, unsigned worker);
//!
//! unsigned shmlab_lock_max_workers(void);                     // optional: most workers it supports
//! ```
//!
//! What shmlab promises the library: `state` points to
//! `shmlab_lock_size()` bytes (at most [`MAX_LIB_STATE`]), 64-byte aligned,
//! all zero before `shmlab_lock_init`, inside the shared region, so every
//! worker process sees the same bytes (at a different address in each:
//! the state must hold no pointers). `shmlab_lock_init` runs once, in the
//! coordinator, before any worker starts; `acquire` and `release` run
//! concurrently in every worker. What the library promises: nothing but
//! those bytes is written, and the functions return (a lock that never
//! returns is stopped at the deadline: its worker processes are killed).
//!
//! **Loading is trusting.** [`CLock::load`] is `unsafe`, as
//! `libloading::Library::new` and `Library::get` are: `dlopen` runs the
//! library's constructors in this process, and the dynamic linker matches
//! symbols by name only, so nothing can check that `shmlab_lock_acquire` is
//! a function of the declared type, nor that it writes only the state it
//! is given. Whoever calls `load` vouches for the library (lab 9 does so
//! because the student named it with `--lock-lib`); from then on the
//! [`CLock`] calls it from safe code.
//!
//! ```compile_fail
//! // Safe code cannot load a library: `CLock::load` is an `unsafe fn`.
//! let lock = algos::CLock::load(std::path::Path::new("./mylock.so"));
//! ```
//!
//! **Loading and fork.** The coordinator loads the library once
//! ([`CLock::load`], `dlopen`), checks the symbols and the size, and then
//! forks the workers: a child inherits the parent's address space with the
//! library mapped in it, so the function pointers are valid in every
//! worker, and no worker runs `dlopen` after `fork`.

use crate::{Aborted, MAX_WORKERS, MutexAlgorithm, Waiter};
use std::cell::UnsafeCell;
use std::ffi::{c_uint, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most bytes of state a C lock may ask for (64 KiB: a bakery lock for
/// [`MAX_WORKERS`] workers with every entry on its own 128-byte line needs
/// 32 KiB).
pub const MAX_LIB_STATE: usize = 64 * 1024;

/// The header students include, shipped with the labs.
pub const HEADER: &str = "labs/examples/locks/shmlab_lock.h";

/// The region's bytes for a C lock's state, 64-byte aligned (the region
/// places it at a 128-byte boundary).
#[repr(C, align(64))]
pub struct LibState {
    bytes: UnsafeCell<[u8; MAX_LIB_STATE]>,
}
shm::any_bits!(LibState { bytes });

impl LibState {
    /// The pointer the library's functions get.
    fn ptr(&self) -> *mut c_void {
        self.bytes.get().cast()
    }
}

impl std::fmt::Debug for LibState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibState").finish_non_exhaustive()
    }
}

// SAFETY: the bytes are only ever touched through the library's functions,
// which the ABI (shmlab_lock.h) requires to be callable from many threads
// and processes at once, like the lock they implement.
unsafe impl Sync for LibState {}

type SizeFn = unsafe extern "C" fn() -> usize;
type MaxFn = unsafe extern "C" fn() -> c_uint;
type InitFn = unsafe extern "C" fn(*mut c_void, c_uint);
type LockFn = unsafe extern "C" fn(*mut c_void, c_uint);

/// What is wrong with a lock library.
#[derive(Debug, thiserror::Error)]
pub enum LibError {
    /// No such file.
    #[error(
        "{path}: no such file; give the path of a shared library built with cc -O2 -shared -fPIC"
    )]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// `dlopen` refused it.
    #[error("cannot load {path}: {why}")]
    Open {
        /// The path.
        path: String,
        /// What `dlopen` said.
        why: String,
    },
    /// A function of the ABI is missing.
    #[error(
        "{path} does not export {symbol}; a lock library defines shmlab_lock_size, shmlab_lock_init, shmlab_lock_acquire and shmlab_lock_release (see {HEADER})"
    )]
    Missing {
        /// The path.
        path: String,
        /// The missing function.
        symbol: &'static str,
    },
    /// `shmlab_lock_size()` returned 0.
    #[error("{path}: shmlab_lock_size() returned 0; a lock needs at least one byte of state")]
    ZeroSize {
        /// The path.
        path: String,
    },
    /// `shmlab_lock_max_workers()` returned 0.
    #[error("{path}: shmlab_lock_max_workers() returned 0; a lock is for 1 worker or more")]
    NoWorkers {
        /// The path.
        path: String,
    },
    /// `shmlab_lock_size()` returned more than [`MAX_LIB_STATE`].
    #[error(
        "{path}: shmlab_lock_size() returned {size} bytes; shmlab gives a lock at most {MAX_LIB_STATE} bytes (64 KiB) of state"
    )]
    TooLarge {
        /// The path.
        path: String,
        /// What it returned.
        size: usize,
    },
}

/// A lock from a C shared library (see the module docs for the ABI).
/// Cloning shares the loaded library.
#[derive(Clone)]
pub struct CLock {
    /// Keeps the library loaded as long as the function pointers live.
    _lib: Arc<libloading::Library>,
    path: PathBuf,
    size: usize,
    max_workers: u32,
    init: InitFn,
    acquire: LockFn,
    release: LockFn,
}

impl std::fmt::Debug for CLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CLock")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl CLock {
    /// Loads `path` (`dlopen`), finds the four functions and asks the size
    /// of the state. A path without a `/` is taken relative to the current
    /// directory (not searched for, as `dlopen` would).
    ///
    /// # Safety
    /// The library is foreign code that this call runs and that the
    /// returned `CLock` calls from safe code; nothing can check it, so the
    /// caller vouches that:
    /// - its initialisers and constructors (and those of every library it
    ///   pulls in), which `dlopen` runs during this call, are sound to run
    ///   in this process, at this point;
    /// - each `shmlab_lock_*` symbol it exports is a function with the C
    ///   signature that `labs/examples/locks/shmlab_lock.h` declares (the
    ///   dynamic linker matches names, not types), `shmlab_lock_size` and
    ///   `shmlab_lock_max_workers` can be called at once, here;
    /// - `shmlab_lock_init`, `_acquire` and `_release` keep the ABI of the
    ///   [module docs](self): they write nothing but the `size` bytes of
    ///   state they are given, store no pointers there (each process maps
    ///   the region at its own address), and may run concurrently in every
    ///   worker, thread or process.
    pub unsafe fn load(path: &Path) -> Result<CLock, LibError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(LibError::NotFound { path: shown });
        }
        let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        // SAFETY: dlopen runs the library's initialisers, which our caller
        // vouches are sound to run here (this function's contract).
        let lib = unsafe { libloading::Library::new(&full) }.map_err(|e| LibError::Open {
            path: shown.clone(),
            why: one_line(&e),
        })?;
        let missing = |symbol: &'static str| LibError::Missing {
            path: shown.clone(),
            symbol,
        };
        // SAFETY: each symbol is looked up with the type shmlab_lock.h
        // declares for it, which our caller vouches is its real type (this
        // function's contract); the pointers are copied out and kept valid
        // by keeping `lib` loaded (in the returned CLock) as long as they
        // live.
        let (size_fn, init, acquire, release) = unsafe {
            (
                *lib.get::<SizeFn>(b"shmlab_lock_size\0")
                    .map_err(|_| missing("shmlab_lock_size"))?,
                *lib.get::<InitFn>(b"shmlab_lock_init\0")
                    .map_err(|_| missing("shmlab_lock_init"))?,
                *lib.get::<LockFn>(b"shmlab_lock_acquire\0")
                    .map_err(|_| missing("shmlab_lock_acquire"))?,
                *lib.get::<LockFn>(b"shmlab_lock_release\0")
                    .map_err(|_| missing("shmlab_lock_release"))?,
            )
        };
        // SAFETY: as above, for the optional symbol.
        let max_fn = unsafe { lib.get::<MaxFn>(b"shmlab_lock_max_workers\0") }
            .ok()
            .map(|f| *f);
        // SAFETY: `shmlab_lock_size` and `shmlab_lock_max_workers` take
        // nothing and return a size_t and an unsigned int, and may be called
        // now (our caller's promise).
        let (size, max_workers) = unsafe { (size_fn(), max_fn.map_or(MAX_WORKERS, |f| f())) };
        if max_workers == 0 {
            return Err(LibError::NoWorkers { path: shown });
        }
        if size == 0 {
            return Err(LibError::ZeroSize { path: shown });
        }
        if size > MAX_LIB_STATE {
            return Err(LibError::TooLarge { path: shown, size });
        }
        Ok(CLock {
            _lib: Arc::new(lib),
            path: path.to_path_buf(),
            size,
            max_workers: max_workers.min(MAX_WORKERS),
            init,
            acquire,
            release,
        })
    }

    /// Bytes of state the library asked for.
    pub fn state_size(&self) -> usize {
        self.size
    }

    /// The library's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `dlerror`'s text on one line.
fn one_line(e: &libloading::Error) -> String {
    e.to_string().replace('\n', " ")
}

// SAFETY: `LibState` is #[repr(C)] bytes in an UnsafeCell: no pointers,
// valid when zeroed and for any bytes (`AnyBits`), interior-mutable (the
// library writes it through the pointer it is given). A `CLock` exists only
// through `CLock::load`, whose caller vouched that the library keeps the
// ABI, which is what the calls below rely on.
unsafe impl MutexAlgorithm for CLock {
    type State = LibState;
    const NAME: &'static str = "lock-lib";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn init(&self, state: &LibState, workers: u32) {
        // SAFETY: the ABI's contract (module docs), which `load`'s caller
        // vouched the library keeps: `state` points to at least `size`
        // zeroed, 64-byte aligned bytes in the region, and no worker runs
        // yet.
        unsafe { (self.init)(state.ptr(), workers) }
    }

    /// The C code's wait loop cannot see the abort flag: a lock that never
    /// returns is stopped by killing its process at the deadline.
    fn acquire(&self, state: &LibState, me: u32, _wait: &mut Waiter<'_>) -> Result<(), Aborted> {
        // SAFETY: as in `init`; the ABI allows concurrent calls from every
        // worker, each with its own index.
        unsafe { (self.acquire)(state.ptr(), me) };
        Ok(())
    }

    fn release(&self, state: &LibState, me: u32) {
        // SAFETY: as in `acquire`; called by the worker that acquired.
        unsafe { (self.release)(state.ptr(), me) }
    }

    fn max_workers(&self) -> u32 {
        self.max_workers
    }

    fn label(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
    }
}
