//! Types for which every bit pattern is a valid value: the only types that
//! may lie in shared memory.
//!
//! A region's bytes are written by whoever can write the object: a peer
//! running other code, a process that died half-way through a store, a
//! user with `dd`. Rust, though, assumes that every value it reads is
//! valid for its type: a `bool` is 0 or 1, a `char` a scalar value, an enum
//! one of its discriminants, a reference non-null and aligned, a `NonZero*`
//! not zero. Reading a `bool` whose byte is 2 is undefined behaviour even
//! through an `AtomicBool`, so a peer that stores 2 there would make a safe
//! function of ours unsound. Shared memory therefore holds integers
//! (`AtomicU8`, `AtomicU32`, …, compared with `!= 0` where they mean a
//! flag), C objects that are themselves arrays of integers
//! (`pthread_mutex_t`, `sem_t`, …), and structs and arrays of those.
//!
//! [`AnyBits`] is that rule as a trait, and [`Shared`](crate::Shared)
//! (what a region holds), [`RawLock::State`](crate::lock::RawLock::State)
//! (what a lock keeps in one) and every snapshot the `shmlab` tool decodes
//! require it. It is implemented here for the integer and atomic-integer
//! types (not `AtomicBool`, not `AtomicPtr`), arrays of `AnyBits`,
//! [`CachePadded`], `UnsafeCell`, `PhantomData` and the glibc objects libc
//! declares as byte arrays; a `#[repr(C)]` struct gets it from
//! [`any_bits!`](crate::any_bits), which checks every field at compile
//! time.
//!
//! `AnyBits` is about *validity* only: a value rebuilt from arbitrary bytes
//! is safe to hold and read, which is all a reader of a peer's bytes needs.
//! It says nothing about what the bytes *mean*: a lock state rebuilt from
//! bytes is not an initialised lock (see
//! [`LockState`](crate::lock::LockState)), and a length read from a region
//! is still to be checked before it is used.

use crate::pad::CachePadded;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize,
};

/// A type for which every bit pattern of `size_of::<Self>()` bytes is a
/// valid `Self`, and which has no drop glue: what may lie in memory that
/// another process writes.
///
/// Implement it for a struct with [`any_bits!`](crate::any_bits), never by
/// hand: the macro checks every field.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes (initialised bytes; for
/// an unsized `Self`, of every size `Self` can have) must be a valid
/// `Self`, and dropping a `Self` must do nothing (`needs_drop::<Self>()` is
/// false): no `bool`, `char`, enum, reference, pointer with a validity
/// invariant, `NonZero*`, `AtomicBool`, nor any type that owns something.
/// Padding bytes may hold anything and need no care.
pub unsafe trait AnyBits {}

/// Implements [`AnyBits`] for types that are plain integers.
macro_rules! plain {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: an integer (or an atomic one, the same bytes in an
            // `UnsafeCell`), or a float: every bit pattern is a value, and
            // none has drop glue.
            unsafe impl AnyBits for $t {}
        )*
    };
}

plain!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    (),
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize,
);

/// Implements [`AnyBits`] for the glibc objects libc declares as byte
/// arrays.
macro_rules! c_object {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: glibc declares it as a union of integer arrays and
            // integer fields, and the `libc` crate as a struct holding one
            // byte array (plus zero-sized alignment): every bit pattern is a
            // value of that struct (whether it is a *usable* object is
            // glibc's business, and what `init` and the region's "ready"
            // are for). It is `Copy`, so has no drop glue.
            unsafe impl AnyBits for $t {}
        )*
    };
}

c_object!(
    libc::pthread_mutex_t,
    libc::pthread_cond_t,
    libc::pthread_rwlock_t,
    libc::pthread_barrier_t,
    libc::sem_t,
);

// SAFETY: an array is its elements back to back, with no padding of its
// own; each element accepts any bit pattern and has no drop glue.
unsafe impl<T: AnyBits, const N: usize> AnyBits for [T; N] {}

// SAFETY: as for arrays, at every length.
unsafe impl<T: AnyBits> AnyBits for [T] {}

// SAFETY: `CachePadded` is `#[repr(C)]` around one `T` plus padding, and
// has no `Drop` impl; padding may hold anything.
unsafe impl<T: AnyBits> AnyBits for CachePadded<T> {}

// SAFETY: `UnsafeCell<T>` has the same layout and validity as `T`, and drops
// only what `T` drops (nothing).
unsafe impl<T: AnyBits + ?Sized> AnyBits for UnsafeCell<T> {}

// SAFETY: zero-sized, one value, no drop glue whatever `T` is.
unsafe impl<T: ?Sized> AnyBits for PhantomData<T> {}

// SAFETY: `#[repr(transparent)]` around `L::State`, which `RawLock` requires
// to be `AnyBits`; no `Drop` impl. (A `LockState` rebuilt from bytes is
// valid, not initialised: see the module docs.)
unsafe impl<L: crate::lock::RawLock> AnyBits for crate::lock::LockState<L> {}

/// Compiles only if `T` is [`AnyBits`]: what [`any_bits!`](crate::any_bits)
/// calls on each field. Does nothing at run time.
#[inline(always)]
pub fn is_any_bits<T: AnyBits + ?Sized>(_: &T) {}

/// Implemented for every type with a `Drop` impl; [`any_bits!`] implements
/// it for the type it is given too, which the compiler refuses (two
/// overlapping impls) if that type implements `Drop`. Not for any other use.
#[doc(hidden)]
pub trait NoDropImpl {}

#[allow(drop_bounds)]
impl<T: Drop> NoDropImpl for T {}

/// Implements [`AnyBits`] for a struct after checking, at compile time,
/// that every one of its fields is `AnyBits` and that it has no `Drop`
/// impl.
///
/// List **every** field, in any order: the check destructures the struct
/// with exactly these names and no `..`, so a field left out, or added to
/// the struct later, is a compile error, and so is a field whose type is
/// not `AnyBits`. Tuple structs name their fields `0`, `1`, ….
///
/// ```
/// use std::sync::atomic::{AtomicU32, AtomicU8};
///
/// #[repr(C)]
/// pub struct Flags {
///     ready: AtomicU8,
///     count: AtomicU32,
///     spare: [u8; 3],
/// }
/// shm::any_bits!(Flags { ready, count, spare });
///
/// #[repr(C)]
/// pub struct Cell(std::cell::UnsafeCell<libc::sem_t>);
/// shm::any_bits!(Cell { 0 });
///
/// // Generic: the impl's parameters in brackets, then the type, an optional
/// // `where [...]`, then the fields.
/// #[repr(C)]
/// pub struct Padded<T> {
///     value: shm::CachePadded<T>,
/// }
/// shm::any_bits!([T: shm::AnyBits] Padded<T> { value });
///
/// fn rebuildable<T: shm::AnyBits>() {}
/// rebuildable::<Flags>();
/// rebuildable::<Padded<Flags>>();
/// ```
///
/// A `bool` (here in its atomic form) is refused: a peer could store 2.
///
/// ```compile_fail
/// #[repr(C)]
/// pub struct Done {
///     count: std::sync::atomic::AtomicU32,
///     done: std::sync::atomic::AtomicBool,
/// }
/// shm::any_bits!(Done { count, done });
/// ```
///
/// So is a list that leaves a field out (it would go unchecked)…
///
/// ```compile_fail
/// #[repr(C)]
/// pub struct Done {
///     count: std::sync::atomic::AtomicU32,
///     done: std::sync::atomic::AtomicBool,
/// }
/// shm::any_bits!(Done { count });
/// ```
///
/// …and a struct with a `Drop` impl, whatever its fields.
///
/// ```compile_fail
/// #[repr(C)]
/// pub struct Noisy {
///     count: std::sync::atomic::AtomicU32,
/// }
/// impl Drop for Noisy {
///     fn drop(&mut self) {}
/// }
/// shm::any_bits!(Noisy { count });
/// ```
///
/// The macro checks validity only. That the struct is `#[repr(C)]` (the
/// same layout in every process) is [`Shared`](crate::Shared)'s and
/// [`RawLock`](crate::lock::RawLock)'s separate requirement.
#[macro_export]
macro_rules! any_bits {
    ($name:ident { $($field:tt),+ $(,)? }) => {
        $crate::any_bits!(@impl [] $name [] [] { $($field),+ });
    };
    (
        [$($gen:tt)*] $name:ident < $($arg:ty),+ $(,)? >
        $(where [$($wc:tt)*])?
        { $($field:tt),+ $(,)? }
    ) => {
        $crate::any_bits!(@impl [$($gen)*] $name [<$($arg),+>] [$($($wc)*)?] { $($field),+ });
    };
    (@impl [$($gen:tt)*] $name:ident [$($args:tt)*] [$($wc:tt)*] { $($field:tt),+ }) => {
        // SAFETY: `check` below names every field of the struct (an
        // exhaustive pattern: a field missing from the list does not
        // compile) and requires each one to be `AnyBits`, so every bit
        // pattern of each field is valid and none has drop glue; padding
        // may hold anything; and the `NoDropImpl` impl below conflicts with
        // the blanket one for `Drop` types, so the struct has no `Drop`
        // impl of its own.
        unsafe impl<$($gen)*> $crate::AnyBits for $name $($args)* where $($wc)* {}
        const _: () = {
            #[allow(dead_code, unused_variables, clippy::all)]
            fn check<$($gen)*>(value: &$name $($args)*) where $($wc)* {
                let $name { $($field: _),+ } = value;
                $( $crate::bits::is_any_bits(&value.$field); )+
            }
            impl<$($gen)*> $crate::bits::NoDropImpl for $name $($args)* where $($wc)* {}
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_bits<T: AnyBits + ?Sized>() {}

    #[test]
    fn the_building_blocks_are_any_bits() {
        any_bits::<u8>();
        any_bits::<[AtomicU64; 3]>();
        any_bits::<CachePadded<AtomicI32>>();
        any_bits::<UnsafeCell<libc::pthread_mutex_t>>();
        any_bits::<[UnsafeCell<libc::sem_t>; 2]>();
        any_bits::<PhantomData<fn() -> bool>>();
        any_bits::<[AtomicU8]>();
    }

    #[repr(C)]
    struct Mixed<T> {
        a: AtomicU8,
        b: CachePadded<T>,
        c: [AtomicU32; 2],
        _t: PhantomData<T>,
    }
    crate::any_bits!([T: AnyBits] Mixed<T> { a, b, c, _t });

    #[repr(C)]
    struct Tuple(AtomicU64, u8);
    crate::any_bits!(Tuple { 1, 0 });

    /// A struct made of `AnyBits` fields, rebuilt from bytes that are not
    /// all zeroes nor all ones, reads back what the bytes say.
    #[test]
    fn a_checked_struct_reads_any_bytes() {
        use std::sync::atomic::Ordering::Relaxed;
        any_bits::<Mixed<Tuple>>();
        let mut bytes = [0u8; size_of::<Tuple>()];
        bytes[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        bytes[8] = 2;
        // SAFETY: `Tuple: AnyBits` and `bytes` has its size; read unaligned
        // into a properly aligned value.
        let t: Tuple = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!((t.0.load(Relaxed), t.1), (u64::MAX, 2));
    }
}
