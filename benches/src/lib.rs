//! Shared helpers for the shmlab benchmarks.
