//! Numbers that two processes agree on — a region's state word, a worker's
//! state in its slot, a forked child's exit status, a shared flag — declared
//! as enums with [`code_enum!`](crate::code_enum) so that neither side
//! writes a bare number.

/// Declares a fieldless enum with an explicit `#[repr(i32)]` or
/// `#[repr(u32)]` and every variant's number, plus the conversions both
/// ways: `From<Enum> for i32` (or `u32`), and `TryFrom<i32>` (or `u32`) for
/// the enum, whose error is the number that matched no variant:
///
/// ```text
/// shm::code_enum! {
///     /// How a worker exits.
///     enum WorkerExit: i32 {
///         /// It did all its work.
///         Done = 0,
///         /// It could not open the region.
///         NoRegion = 3,
///     }
/// }
/// ```
#[macro_export]
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr($repr)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $value),+
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                v as $repr
            }
        }

        impl TryFrom<$repr> for $name {
            /// The number, which is no variant's.
            type Error = $repr;

            fn try_from(n: $repr) -> Result<Self, $repr> {
                $(
                    if n == $value {
                        return Ok($name::$variant);
                    }
                )+
                Err(n)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    code_enum! {
        /// An example.
        enum Status: i32 {
            /// Fine.
            Done = 0,
            /// It could not start.
            NoStart = 3,
        }
    }

    code_enum! {
        /// A flag word.
        enum Flag: u32 {
            /// Down.
            Down = 0,
            /// Up.
            Up = 1,
        }
    }

    #[test]
    fn converts_both_ways() {
        assert_eq!(i32::from(Status::NoStart), 3);
        assert_eq!(Status::try_from(0), Ok(Status::Done));
        assert_eq!(Status::try_from(3), Ok(Status::NoStart));
        assert_eq!(Status::try_from(7), Err(7));
        assert_eq!(u32::from(Flag::Up), 1);
        assert_eq!(Flag::try_from(0), Ok(Flag::Down));
        assert_eq!(Flag::try_from(2), Err(2));
    }
}
