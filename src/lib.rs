//! mp1: the CoE 151 MP1 chat protocol.
//!
//! Layout:
//! - [`protocol`]: message types, JSON decoding, pure-ASCII encoding, stream
//!   framing, name rules. No state, no I/O.
//! - [`chat`]: the server's protocol state machine (users, names, admin,
//!   mutes). No I/O: requests in, [`chat::Effect`]s out.
//! - [`server`]: `mp1d`'s single-threaded mio loop that moves bytes between
//!   sockets and the state machine.
//! - [`peer`]: the peer-to-peer state machine (no I/O) and its UDP driver.
//! - [`terminal`]: the `mp1` terminal program's two modes, line editor and
//!   display.
//! - [`logging`]: a small stderr logger for the binaries.

pub mod chat;
pub mod cluster;
pub mod logging;
pub mod peer;
pub mod pending;
pub mod protocol;
pub mod server;
pub mod session;
pub mod terminal;
pub mod websocket;
