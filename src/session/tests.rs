//! The per-connection input rules and reply framing, without sockets.

use super::*;

const LIMITS: Limits = Limits {
    max_message_bytes: 64,
    max_unparsable: 3,
};

/// What a test sees of one input, in a form easy to compare.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Request(String),
    Bad,
    Answer(String),
    EndLine,
    Cut(Cut),
}

/// Feeds `bytes` as one read and returns every input.
fn read(s: &mut Session, bytes: &[u8]) -> Vec<Seen> {
    let mut at = Cursor::default();
    let mut seen = Vec::new();
    while let Some(input) = s.poll_input(bytes, &mut at, &LIMITS) {
        seen.push(match input {
            Input::Request(Ok(r)) => Seen::Request(r.mtp().to_string()),
            Input::Request(Err(_)) => Seen::Bad,
            Input::Answer(Reply::ServerMessage { message }) => Seen::Answer(message),
            Input::Answer(other) => panic!("unexpected answer {other:?}"),
            Input::EndLine => Seen::EndLine,
            Input::Cut(c) => Seen::Cut(c),
        });
    }
    seen
}

fn req(mtp: &str) -> Seen {
    Seen::Request(mtp.to_string())
}

const LOGIN: &[u8] = br#"{"mtp":"Login","data":{"name":"a"}}"#;
const TIME: &[u8] = br#"{"mtp":"RequestLocalTime"}"#;

#[test]
fn bare_objects_get_bare_replies() {
    let mut s = Session::new(Framing::Mirror);
    let both = [LOGIN, TIME].concat();
    assert_eq!(
        read(&mut s, &both),
        vec![req("Login"), req("RequestLocalTime")]
    );
    assert!(!s.is_newline());
    // "...}\n" is sent without its "\n".
    assert_eq!(s.framed_len(10), 9);
}

#[test]
fn a_line_break_with_the_first_object_frames_its_replies() {
    let mut s = Session::new(Framing::Mirror);
    let line = [LOGIN, b"\r\n"].concat();
    // The switch comes first, so the Login's own replies end in "\n";
    // nothing went out bare, so no lone "\n" is owed.
    assert_eq!(read(&mut s, &line), vec![req("Login")]);
    assert!(s.is_newline());
    assert_eq!(s.framed_len(10), 10);
}

#[test]
fn switching_after_bare_replies_owes_one_line_break() {
    let mut s = Session::new(Framing::Mirror);
    assert_eq!(read(&mut s, LOGIN), vec![req("Login")]);
    assert_eq!(s.framed_len(10), 9);
    // The line break arrives later, after spaces.
    assert_eq!(read(&mut s, b"  \n"), vec![Seen::EndLine]);
    assert!(s.is_newline());
    // Only once.
    assert_eq!(
        read(&mut s, &[TIME, b"\n"].concat()),
        vec![req("RequestLocalTime")]
    );
}

#[test]
fn fixed_framings_never_follow_the_client() {
    let mut newline = Session::new(Framing::Newline);
    assert_eq!(read(&mut newline, LOGIN), vec![req("Login")]);
    assert_eq!(newline.framed_len(10), 10);
    let mut bare = Session::new(Framing::Bare);
    assert_eq!(bare.framed_len(10), 9);
    assert_eq!(
        read(&mut bare, &[LOGIN, b"\n"].concat()),
        vec![req("Login")]
    );
    assert_eq!(bare.framed_len(10), 9);
}

#[test]
fn garbage_is_answered_and_a_run_of_it_cuts_after_the_last_answer() {
    let mut s = Session::new(Framing::Mirror);
    let junk = Seen::Answer(NOT_AN_OBJECT.to_string());
    assert_eq!(
        read(&mut s, b"hello\nworld\n"),
        vec![junk, Seen::Answer(NOT_AN_OBJECT.to_string())]
    );
    // Malformed JSON counts too; the third in a row is answered (by the
    // chat), then the connection is cut, and the rest is not read.
    assert_eq!(
        read(&mut s, &[&b"{nope}"[..], LOGIN].concat()),
        vec![Seen::Bad, Seen::Cut(Cut::Unparsable { count: 3 })]
    );
    assert_eq!(read(&mut s, LOGIN), vec![]);
}

#[test]
fn well_formed_json_breaks_an_unparsable_run() {
    let mut s = Session::new(Framing::Mirror);
    let unknown = br#"{"mtp":"Nonsense"}"#;
    let input = [&b"x\ny\n"[..], unknown, b"z\n{bad}"].concat();
    let seen = read(&mut s, &input);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen[2],
        Seen::Bad,
        "a bad mtp is a request error, not a cut"
    );
    assert!(!seen.iter().any(|x| matches!(x, Seen::Cut(_))));
}

#[test]
fn an_oversized_object_cuts_at_once() {
    let mut s = Session::new(Framing::Mirror);
    let big = format!(
        r#"{{"mtp":"SendChat","data":{{"message":"{}"}}}}"#,
        "x".repeat(64)
    );
    let input = [LOGIN, big.as_bytes(), TIME].concat();
    assert_eq!(
        read(&mut s, &input),
        vec![req("Login"), Seen::Cut(Cut::Oversized { limit: 64 })]
    );
    assert_eq!(
        Cut::Oversized { limit: 64 }.message(),
        "Message too large: the limit is 64 bytes."
    );
    assert_eq!(read(&mut s, TIME), vec![]);
}

#[test]
fn objects_split_across_reads_are_joined() {
    let mut s = Session::new(Framing::Mirror);
    let (a, b) = LOGIN.split_at(7);
    assert_eq!(read(&mut s, a), vec![]);
    assert_eq!(s.buffered(), 7);
    assert_eq!(read(&mut s, b), vec![req("Login")]);
    assert_eq!(s.buffered(), 0);
}
