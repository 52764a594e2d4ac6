//! The event loop, which knows nothing of clients or chat (Redis's `ae.c`):
//! file events from one `mio::Poll`, time events from one [`Timers`] heap,
//! and a wait that sleeps until whichever comes first.
//!
//! The turn itself (what to do with each event, the before-sleep work)
//! belongs to the server (`server/mod.rs`).

use super::timers::Timers;
use mio::{Events, Poll, Registry};
use std::io;
use std::time::{Duration, Instant};

/// Events taken per poll at first; doubled while polls come back full, so
/// a large active set is not served 1024 sockets per turn.
const INITIAL_EVENTS: usize = 1024;
const MAX_EVENTS: usize = 65536;

pub struct EventLoop<T> {
    poll: Poll,
    events: Events,
    pub timers: Timers<T>,
}

impl<T> EventLoop<T> {
    pub fn new() -> io::Result<Self> {
        Ok(EventLoop {
            poll: Poll::new()?,
            events: Events::with_capacity(INITIAL_EVENTS),
            timers: Timers::new(),
        })
    }

    /// Where sockets are registered.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits for file events until the next timer is due (forever if none
    /// is set), or not at all when `busy` (work is left from the last
    /// turn). Returns the events; an interrupted wait returns none.
    pub fn wait(&mut self, busy: bool) -> io::Result<Events> {
        let timeout = if busy {
            Some(Duration::ZERO)
        } else {
            self.timers.sleep_for(Instant::now())
        };
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        match self.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            Err(e) => {
                self.events = events;
                return Err(e);
            }
        }
        Ok(events)
    }

    /// Hands the event buffer back after the turn, bigger if it filled up.
    pub fn done_with(&mut self, events: Events) {
        let full = events.iter().count() == events.capacity();
        self.events = if full && events.capacity() < MAX_EVENTS {
            Events::with_capacity(events.capacity() * 2)
        } else {
            events
        };
    }
}
