//! The one token codec: every socket registered with the poll carries a
//! token made of its kind, its slot in the source table and the slot's
//! generation. The kind routes the event without a lookup's guesswork; the
//! generation tells an event meant for a slot's previous occupant from one
//! for the current occupant.
//!
//! The layout is fixed per platform and checked at compile time to fit
//! its `usize`: on a 32-bit board as on a 64-bit server every kind of
//! socket has the same room (there are no hand-laid token ranges).

use mio::Token;

/// What a registered socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A listening socket (MP1 or HTTP).
    Listener = 0,
    /// The pipe shutdown signals arrive on.
    Signals = 1,
    /// The LAN bridge's UDP socket.
    Bridge = 2,
    /// One of the cluster's Redis connections.
    Redis = 3,
    /// A stream connection: MP1, HTTP, or WebSocket (phases of one).
    Conn = 4,
}

const KINDS: [Kind; 5] = [
    Kind::Listener,
    Kind::Signals,
    Kind::Bridge,
    Kind::Redis,
    Kind::Conn,
];

const KIND_BITS: u32 = 3;
/// Slots the table can hold: 2^24 on 64-bit, 2^20 on 32-bit (more
/// sockets than a 32-bit board can open).
const KEY_BITS: u32 = if usize::BITS >= 64 { 24 } else { 20 };
/// What is left carries the generation (40 bits on 64-bit, 9 on 32-bit:
/// enough, since a stale event can only come from the last few
/// occupants of a slot, freed at the end of a turn).
const GEN_BITS: u32 = usize::BITS - KIND_BITS - KEY_BITS;
const _: () = assert!(GEN_BITS >= 8, "a token must carry a generation");
const _: () = assert!(KINDS.len() <= 1 << KIND_BITS);

/// Most sources the table can hold.
pub const MAX_KEYS: usize = 1 << KEY_BITS;

const KEY_MASK: usize = MAX_KEYS - 1;
const GEN_MASK: usize = (1 << GEN_BITS) - 1;

/// The token for `key` of `kind` in its `generation`.
pub fn encode(kind: Kind, key: usize, generation: u32) -> Token {
    debug_assert!(key < MAX_KEYS);
    let generation = generation as usize & GEN_MASK;
    Token(kind as usize | (key << KIND_BITS) | (generation << (KIND_BITS + KEY_BITS)))
}

/// The kind, key and (truncated) generation a token carries; `None` for a
/// token no kind has.
pub fn decode(token: Token) -> Option<(Kind, usize, usize)> {
    let kind = *KINDS.get(token.0 & ((1 << KIND_BITS) - 1))?;
    let key = (token.0 >> KIND_BITS) & KEY_MASK;
    let generation = token.0 >> (KIND_BITS + KEY_BITS);
    Some((kind, key, generation))
}

/// Whether a generation as a token carries it is `generation`.
pub fn same_generation(carried: usize, generation: u32) -> bool {
    carried == generation as usize & GEN_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_key_and_generation_comes_back() {
        for kind in KINDS {
            for key in [0, 1, 4095, MAX_KEYS - 1] {
                for generation in [0, 1, 255, u32::MAX] {
                    let (k, key2, g) = decode(encode(kind, key, generation)).unwrap();
                    assert_eq!((k, key2), (kind, key));
                    assert!(same_generation(g, generation));
                }
            }
        }
    }

    #[test]
    fn a_reused_slot_does_not_take_the_old_occupant_s_events() {
        let old = encode(Kind::Conn, 7, 41);
        let (_, _, g) = decode(old).unwrap();
        assert!(!same_generation(g, 42));
    }

    #[test]
    fn no_kind_is_made_up() {
        assert!(decode(Token(7)).is_none());
    }
}
