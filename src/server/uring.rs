//! The fan-out's writes through io_uring (`--io-uring`): once a flush,
//! one submission entry per connection owed output (its ranges of the
//! shared blocks as one `SEND`, or one `SENDMSG` when it owes more than
//! one range), one `io_uring_enter` for all of them, then each completion
//! advances its connection's queue as a `writev` would have.
//!
//! Everything else stays with mio: readiness, reads, accepts. The sends
//! carry `MSG_DONTWAIT`, so a full socket completes at once with `EAGAIN`
//! (the kernel arms no poll for it) and the flush never waits on a client:
//! the connection gets `WRITABLE` interest, exactly as on the `writev`
//! path. A short send leaves the rest queued and does the same.
//!
//! The ring is made for one thread (`SINGLE_ISSUER`, `DEFER_TASKRUN`, or
//! `COOP_TASKRUN` on older kernels), its fd is registered, and there is
//! no `SQPOLL` thread: all of its CPU is the server's, counted as such.
//! The sends complete inline, during the `io_uring_enter` that submits
//! them, so a flush is one system call for all its connections.
//!
//! What a submitted send reads stays valid until its completion: the
//! blocks are immutable (`block.rs`) and each entry holds its own
//! reference to the ones it sends from; its `msghdr` and iovecs live in a
//! boxed slot that is reused, flush after flush (no allocation per
//! recipient once the widest flush has been seen).
//!
//! The `io-uring` crate has bindings for 64-bit targets only: elsewhere
//! (32-bit ARM) mp1d is built without the ring, and `--io-uring auto`
//! says so and writes with `writev`.

/// `--io-uring`: whether the fan-out's writes go through io_uring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Where the kernel offers it; `writev` elsewhere.
    Auto,
    /// Always: start-up fails where it is unavailable.
    On,
    /// Never: one `writev` per connection.
    Off,
}

impl Mode {
    /// Without `--io-uring`: off. At 5000 clients io_uring cut the CPU per
    /// delivery by 4-8 %, short of the 10 % that would make `auto` the
    /// default (BENCHMARKS.md, "io_uring for the fan-out").
    pub const DEFAULT: Mode = Mode::Off;
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "on" => Ok(Mode::On),
            "off" => Ok(Mode::Off),
            _ => Err(format!("expected auto, on or off, not {s:?}")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::On => "on",
            Mode::Off => "off",
        })
    }
}

#[cfg(with_io_uring)]
mod ring;
#[cfg(with_io_uring)]
pub use ring::Uring;

#[cfg(not(with_io_uring))]
pub use absent::Uring;

/// Where mp1d is built without io_uring: a ring that is never made.
#[cfg(not(with_io_uring))]
mod absent {
    use crate::server::table::Table;
    use mio::Registry;

    pub enum Uring {}

    impl Uring {
        pub fn new() -> Result<Uring, String> {
            Uring::with_entries(0)
        }

        pub fn with_entries(_: u32) -> Result<Uring, String> {
            Err("this build has no io_uring (no bindings for the target)".into())
        }

        pub fn setup(&self) -> &str {
            match *self {}
        }

        pub fn flush(&mut self, _: &mut Table, _: &Registry) -> Result<(), String> {
            match *self {}
        }
    }
}
