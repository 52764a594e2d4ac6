//! mp1: the CoE 151 MP1 chat protocol.
//!
//! Layout (docs/ARCHITECTURE.md is the whole map, with the path of one
//! chat from a socket to everyone's screen):
//! - [`protocol`]: message types, JSON decoding, pure-ASCII encoding, stream
//!   framing, name rules. No state, no I/O.
//! - [`session`], [`websocket`]: one connection's input rules and reply
//!   framing; RFC 6455 frames. No I/O.
//! - [`chat`]: the server's protocol state machine (users, names, admin,
//!   mutes). No I/O: requests in through `handle_*`, effects out through
//!   `poll_effect`.
//! - [`cluster`]: the interface between the chat and the engine that
//!   decides its shared state (proposals, events, refusals): a single
//!   node's local engine, and the Redis engine of a cluster. No I/O.
//! - [`server`]: `mp1d`'s single-threaded mio loop, which only moves bytes
//!   between sockets and the state machines.
//! - [`peer`]: the peer-to-peer state machine (no I/O) and its UDP driver.
//! - [`terminal`]: the `mp1` terminal program's two modes, line editor and
//!   display.
//! - [`logging`]: a small stderr logger for the binaries.
//!
//! Every state machine is driven the same way: input and time in through
//! `handle_*`, output out through `poll_*`, and `poll_timeout` for when to
//! wake it.

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
