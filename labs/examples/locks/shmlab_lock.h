/*
 * shmlab_lock.h -- the ABI of a lock that lab9-algorithms can race.
 *
 * Build your lock as a shared library and race it across processes:
 *
 *     cc -O2 -shared -fPIC -o mylock.so mylock.c
 *     cargo run --release --bin lab9-algorithms -- --lock-lib ./mylock.so --check
 *
 * The lab counts every time two workers are inside the critical section at
 * once (a violation) and every lost update of a shared counter; --check
 * exits 1 if there was any.
 *
 * The state. Your lock keeps ALL its state in `state`: shmlab_lock_size()
 * bytes (at most 65536) that live in a POSIX shared-memory region mapped by
 * every worker process. So:
 *   - the bytes are 64-byte aligned and all zero before shmlab_lock_init;
 *   - every process sees the same bytes, but at a DIFFERENT ADDRESS: never
 *     store a pointer in the state, store indices;
 *   - no global or static variables: each process has its own copy of
 *     those (the library is loaded once, before the workers are forked);
 *   - workers run at the same time on different CPUs: read and write the
 *     state with atomics (__atomic_load_n, __atomic_store_n, ...), never
 *     with plain variables the compiler may keep in a register.
 *
 * The calls.
 *   shmlab_lock_init     once, in the coordinator, before any worker starts;
 *   shmlab_lock_acquire  by worker `worker` (0 .. workers-1) before each
 *                        entry into the critical section;
 *   shmlab_lock_release  by the same worker right after it.
 * acquire and release run concurrently in every worker; worker numbers are
 * distinct. A lock that never returns from acquire (a deadlock) is stopped
 * after --timeout seconds: its worker processes are killed and the lab
 * reports that the run did not finish.
 */
#ifndef SHMLAB_LOCK_H
#define SHMLAB_LOCK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of state the lock needs: 1 to 65536. */
size_t shmlab_lock_size(void);

/* Prepares the zeroed state for `workers` workers. */
void shmlab_lock_init(void *state, unsigned workers);

/* Waits until worker `worker` may enter the critical section. */
void shmlab_lock_acquire(void *state, unsigned worker);

/* Leaves the critical section. */
void shmlab_lock_release(void *state, unsigned worker);

/* OPTIONAL: the most workers the lock supports (e.g. 2 for Peterson). If
 * it is defined, the lab refuses to race more workers than this. */
unsigned shmlab_lock_max_workers(void);

#ifdef __cplusplus
}
#endif

/* A polite busy-wait step for your wait loops: the CPU's spin-wait hint,
 * and every 4096 turns a sched_yield(), so that a run with more workers
 * than CPUs (or a busy machine) still makes progress. */
#include <sched.h>
static inline void shmlab_spin(unsigned *turns) {
    if ((++*turns & 4095) == 0) {
        sched_yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
}

#endif /* SHMLAB_LOCK_H */
