//! Client mode: log in to an MP1 server (mp1d or any implementation, bare
//! or newline framing) and chat. One mio loop over the TCP socket and the
//! stdin waker.

use super::command::{self, Command, HELP};
use super::display::{self, Outcome};
use super::{Ended, Input, NamePrompt, Screen, STDIN};
pub use crate::protocol::RequestFraming as Framing;
use crate::protocol::{decode_reply, Frame, Request, Splitter, AUTO_FRAMING_WAIT};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);
/// How long /quit waits for the server's Goodbye.
const QUIT_WAIT: Duration = Duration::from_secs(3);
/// Largest reply object accepted from a server.
const MAX_REPLY: usize = 1 << 20;

struct Session {
    stream: TcpStream,
    out: Vec<u8>,
    /// Requests end with `\n`.
    newline: bool,
    /// Auto framing, undecided: when to add the line break, and the
    /// requests typed meanwhile (sent once the framing is known).
    auto_until: Option<Instant>,
    held: Vec<Request>,
    splitter: Splitter,
    name: String,
    logged_in: bool,
    name_prompt: NamePrompt,
    quitting: Option<Instant>,
    closed: bool,
}

impl Session {
    fn send(&mut self, req: &Request) {
        if self.auto_until.is_some() {
            self.held.push(req.clone());
            return;
        }
        crate::protocol::encode_request(req, self.newline, &mut self.out);
    }

    /// Auto framing: the server answered, so bare objects are understood.
    fn heard_back(&mut self) {
        if self.auto_until.take().is_some() {
            self.send_held();
        }
    }

    /// Auto framing: no answer to the bare `Login`; the server must be
    /// waiting for the end of a line.
    fn no_answer(&mut self, now: Instant) {
        if self.auto_until.is_some_and(|t| now >= t) {
            self.auto_until = None;
            self.newline = true;
            self.out.push(b'\n');
            self.send_held();
        }
    }

    fn send_held(&mut self) {
        for req in std::mem::take(&mut self.held) {
            self.send(&req);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        crate::pending::write_pending(&mut self.stream, &mut self.out)
    }
}

/// Connects to `addr` and logs in as `name`; runs until the person quits
/// or the server closes the connection.
pub fn run(addr: SocketAddr, name: &str, framing: Framing) -> Ended {
    let std_stream = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => return Ended::failed(format!("cannot reach {addr}: {e}")),
    };
    let _ = std_stream.set_nodelay(true);
    if let Err(e) = std_stream.set_nonblocking(true) {
        return Ended::failed(e.to_string());
    }
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => return Ended::failed(e.to_string()),
    };
    let mut s = Session {
        stream: TcpStream::from_std(std_stream),
        out: Vec::new(),
        newline: framing == Framing::Newline,
        auto_until: None,
        held: Vec::new(),
        splitter: Splitter::new(),
        name: name.to_string(),
        logged_in: false,
        name_prompt: NamePrompt::default(),
        quitting: None,
        closed: false,
    };
    let registered = poll.registry().register(
        &mut s.stream,
        SOCKET,
        Interest::READABLE | Interest::WRITABLE,
    );
    let waker = Waker::new(poll.registry(), STDIN);
    let (Ok(()), Ok(waker)) = (registered, waker) else {
        return Ended::failed("cannot set up the event loop".into());
    };
    let mut screen = Screen::new(waker, &format!("{name}> "));
    s.send(&Request::Login {
        name: Some(name.to_string()),
    });
    if framing == Framing::Auto {
        s.auto_until = Some(Instant::now() + AUTO_FRAMING_WAIT);
    }
    let mut events = Events::with_capacity(16);
    loop {
        if let Err(e) = s.flush() {
            return lost(&s, &screen, e.to_string());
        }
        let now = Instant::now();
        let timeout = [s.quitting, s.auto_until]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Ended::failed(e.to_string());
            }
        }
        let now = Instant::now();
        if s.quitting.is_some_and(|t| now >= t) {
            return Ended { code: 0, why: None };
        }
        s.no_answer(now);
        for event in events.iter() {
            if event.token() == SOCKET && event.is_readable() {
                if let Some(ended) = read_replies(&mut s, &mut screen) {
                    return ended;
                }
            }
        }
        for input in screen.take_input() {
            on_input(&mut s, &mut screen, input);
        }
    }
}

/// The connection ended without a Disconnect from the server.
fn lost(s: &Session, screen: &Screen, why: String) -> Ended {
    if s.quitting.is_some() || s.closed {
        return Ended { code: 0, why: None };
    }
    screen.show("* connection lost");
    Ended::failed(format!("the server dropped the connection ({why})"))
}

/// Reads and shows every reply that arrived; `Some` when the session ends.
fn read_replies(s: &mut Session, screen: &mut Screen) -> Option<Ended> {
    let mut buf = [0u8; 16384];
    loop {
        match s.stream.read(&mut buf) {
            Ok(0) => {
                if s.closed {
                    let code = if s.quitting.is_some() { 0 } else { 1 };
                    return Some(Ended { code, why: None });
                }
                return Some(lost(s, screen, "closed".into()));
            }
            Ok(n) => {
                // Out of `s` while its replies are handled.
                let mut splitter = std::mem::take(&mut s.splitter);
                let mut frames = splitter.frames(&buf[..n], MAX_REPLY);
                while let Some(f) = frames.next_frame() {
                    match f {
                        Frame::Object(o) => match decode_reply(o) {
                            Ok(reply) => {
                                s.heard_back();
                                on_reply(s, screen, &reply)
                            }
                            Err(e) => screen.show(&format!("! unreadable reply: {e}")),
                        },
                        Frame::Oversized => {
                            return Some(Ended::failed(
                                "the server sent an object over 1 MiB".into(),
                            ))
                        }
                        Frame::LineBreak | Frame::Garbage => {}
                    }
                }
                s.splitter = splitter;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Some(lost(s, screen, e.to_string())),
        }
    }
}

fn on_reply(s: &mut Session, screen: &mut Screen, reply: &crate::protocol::Reply) {
    let (line, outcome) = display::reply(reply);
    screen.show(&line);
    match outcome {
        Outcome::Show => {}
        Outcome::LoggedIn(name) => {
            s.logged_in = true;
            screen.set_prompt(&format!("{name}> "));
            s.name = name;
        }
        Outcome::Renamed(name) => {
            screen.set_prompt(&format!("{name}> "));
            s.name = name;
        }
        Outcome::AskName if !s.logged_in => s.name_prompt.ask(screen),
        Outcome::AskName => {}
        Outcome::Closed => s.closed = true,
    }
}

fn on_input(s: &mut Session, screen: &mut Screen, input: Input) {
    let line = match input {
        Input::Line(l) => l,
        Input::End => return quit(s),
    };
    if let Some(answer) = s.name_prompt.answer(&line) {
        if let Some(name) = answer {
            s.name_prompt.settled();
            s.send(&Request::Login {
                name: Some(name.to_string()),
            });
        }
        return;
    }
    if line.is_empty() {
        return;
    }
    let cmd = match command::parse(&line) {
        Ok(c) => c,
        Err(e) => return screen.show(&e),
    };
    let req = match cmd {
        Command::Chat(message) => {
            screen.show(&display::own_chat(&s.name, &message));
            Request::SendChat { message }
        }
        Command::Nick(name) => Request::SetUsername { name: Some(name) },
        Command::Who(name) => Request::RequestUserInfo { name },
        Command::Time => Request::RequestLocalTime,
        Command::Msg { to, text } => {
            screen.show(&display::own_whisper(&to, &text));
            Request::WhisperToUser { to, message: text }
        }
        Command::List => Request::RequestOnlineList,
        Command::Kick(name) => Request::KickUser { name },
        Command::Mute(name) => Request::MuteUser { name },
        Command::Unmute(name) => Request::UnmuteUser { name },
        Command::Op(name) => Request::SetAsAdmin { name },
        Command::Connect { .. } => return screen.show("/connect is for peer mode"),
        Command::Help => return screen.show(HELP),
        Command::Quit => return quit(s),
    };
    s.send(&req);
}

fn quit(s: &mut Session) {
    if s.quitting.is_none() {
        s.send(&Request::Disconnect);
        s.quitting = Some(Instant::now() + QUIT_WAIT);
    }
}
