/*
 * peterson.c -- Peterson's algorithm for 2 workers, correct on x86 (and
 * any CPU) thanks to one full fence.
 *
 *     cc -O2 -shared -fPIC -o peterson.so peterson.c
 *     lab9-algorithms --lock-lib ./peterson.so --check           # exit 0
 *
 * Build it without the fence and watch it fail:
 *
 *     cc -O2 -shared -fPIC -DNO_FENCE -o peterson-nofence.so peterson.c
 *     lab9-algorithms --lock-lib ./peterson-nofence.so --check   # exit 1
 */
#include "shmlab_lock.h"

struct peterson {
    int flag[2]; /* flag[i]: worker i wants to enter */
    int turn;    /* who waits if both want to */
};

size_t shmlab_lock_size(void) { return sizeof(struct peterson); }

unsigned shmlab_lock_max_workers(void) { return 2; }

void shmlab_lock_init(void *state, unsigned workers) {
    (void)state;
    (void)workers; /* all zero already: nobody wants in */
}

void shmlab_lock_acquire(void *state, unsigned me) {
    struct peterson *p = state;
    unsigned other = 1 - me, turns = 0;
    __atomic_store_n(&p->flag[me], 1, __ATOMIC_RELEASE);
    __atomic_store_n(&p->turn, other, __ATOMIC_RELEASE);
#ifndef NO_FENCE
    /* mfence on x86: the loads below may not run before the two stores
     * above are visible to the other CPU. Without it, each worker can read
     * the other's flag as 0 while its own store still sits in its store
     * buffer, and both enter. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    while (__atomic_load_n(&p->flag[other], __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&p->turn, __ATOMIC_ACQUIRE) == (int)other)
        shmlab_spin(&turns);
}

void shmlab_lock_release(void *state, unsigned me) {
    struct peterson *p = state;
    __atomic_store_n(&p->flag[me], 0, __ATOMIC_RELEASE);
}
