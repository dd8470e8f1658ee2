//! The core's one error type. The binding maps each variant to a Python exception
//! (ValueError / MemoryError); the core itself never panics on user input.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// An argument is unusable; `name` is the argument as the Python API spells it.
    InvalidArgument { name: &'static str, message: String },
    /// The requested outputs cannot be allocated.
    OutOfMemory { message: String },
    /// The kernel leaves the range of the floating-point type.
    Overflow { message: String },
    /// A composition neural-tangents does not define either (its `NotImplementedError`s): an
    /// argument of the layer language the kernels are not implemented for.
    Unsupported { name: &'static str, message: String },
    /// The call was cancelled (Ctrl-C, interpreter shutdown) before it finished; nothing it
    /// computed is returned.
    Interrupted,
}

impl Error {
    pub fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument { name, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { name, message } | Error::Unsupported { name, message } => {
                write!(f, "{name}: {message}")
            }
            Error::OutOfMemory { message } | Error::Overflow { message } => f.write_str(message),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {}
