//! [`stable_codes!`]: a closed set of stable machine-readable codes declared from one list.

/// Declares an enum whose variants each have one stable code string, with `ALL` (every variant, in
/// declaration order), `code()` and `from_code()` generated from the same list: a variant cannot be
/// added without a code, nor left out of `ALL`, and a code is written exactly once.
macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $code:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),*
        }

        impl $name {
            /// Every variant, in declaration order (for tests, docs and label sets).
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable code: part of the public contract and of stored data; never renamed or reused.
            pub const fn code(self) -> &'static str {
                match self {
                    $( $name::$variant => $code ),*
                }
            }

            /// The variant `code` names; `None` for a code this version does not know.
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $( $code => Some($name::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use stable_codes;
