//! What can go wrong while a server starts, as a type: which socket could
//! not be set up, so that the command line names the option that picks
//! another (callers match on the kind, never on the message).

use std::fmt;
use std::io;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum StartError {
    /// The MP1 port (`--bind`, `--port`).
    Mp1(SocketAddr, io::Error),
    /// The HTTP face (`--http`).
    Http(SocketAddr, io::Error),
    /// The LAN bridge's UDP port (`--peer-port`), or its peer name.
    Bridge(u16, io::Error),
    /// `--io-uring on`, where io_uring cannot be set up.
    IoUring(io::Error),
    /// The loop itself (the poll, a registration).
    Loop(io::Error),
}

impl StartError {
    /// The error underneath.
    pub fn io(&self) -> &io::Error {
        match self {
            StartError::Mp1(_, e)
            | StartError::Http(_, e)
            | StartError::Bridge(_, e)
            | StartError::IoUring(e)
            | StartError::Loop(e) => e,
        }
    }

    /// Whether the address or port is in use by another process.
    pub fn in_use(&self) -> bool {
        self.io().kind() == io::ErrorKind::AddrInUse
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Mp1(addr, e) => write!(f, "MP1 on {addr}: {e}"),
            StartError::Http(addr, e) => write!(f, "HTTP on {addr}: {e}"),
            StartError::Bridge(port, e) => write!(f, "UDP port {port} for the LAN bridge: {e}"),
            StartError::IoUring(e) => {
                write!(f, "--io-uring on: io_uring is unavailable here: {e}")
            }
            StartError::Loop(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> StartError {
        StartError::Loop(e)
    }
}
