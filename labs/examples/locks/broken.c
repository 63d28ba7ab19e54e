/*
 * broken.c -- OSTEP's first attempt at a lock (chapter 28): test the flag,
 * then set it. Two workers can both see the flag down before either sets
 * it, so both enter. No fence can fix that; only an atomic test-and-set
 * (__atomic_exchange_n) can.
 *
 *     cc -O2 -shared -fPIC -o broken.so broken.c
 *     lab9-algorithms --lock-lib ./broken.so --check     # exit 1: violations
 */
#include "shmlab_lock.h"

struct flag_lock {
    int flag; /* 1 while someone holds it */
};

size_t shmlab_lock_size(void) { return sizeof(struct flag_lock); }

void shmlab_lock_init(void *state, unsigned workers) {
    (void)state;
    (void)workers; /* zero: free */
}

void shmlab_lock_acquire(void *state, unsigned me) {
    struct flag_lock *l = state;
    unsigned turns = 0;
    (void)me;
    while (__atomic_load_n(&l->flag, __ATOMIC_ACQUIRE) == 1) /* test ... */
        shmlab_spin(&turns);
    __atomic_store_n(&l->flag, 1, __ATOMIC_RELEASE); /* ... then set: too late */
}

void shmlab_lock_release(void *state, unsigned me) {
    struct flag_lock *l = state;
    (void)me;
    __atomic_store_n(&l->flag, 0, __ATOMIC_RELEASE);
}
