//! Client mode: log in to an MP1 server (mp1d or any implementation, bare
//! or newline framing) and chat. One mio loop over the TCP socket and the
//! stdin waker.

use super::command::{self, Command, HELP};
use super::display::{self, Outcome, Refusal};
use super::{Ended, Input, NamePrompt, Screen, STDIN};
pub use crate::protocol::RequestFraming as Framing;
use crate::protocol::{decode_reply, Frame, Reply, Request, Splitter, Status, AUTO_FRAMING_WAIT};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);
/// How long /quit waits for the server's Goodbye.
const QUIT_WAIT: Duration = Duration::from_secs(3);
/// Largest reply object accepted from a server.
const MAX_REPLY: usize = 1 << 20;
/// How long one's own line may still be refused. The server confirms
/// nothing positively; its refusals come straight back, in order with the
/// answers to one's other requests.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// One's own chat or whisper, shown as sent, which the server may still
/// refuse: then its line is marked so where it stands.
struct Sent {
    screen_line: u64,
    line: String,
    /// The recipients of a whisper; empty for a chat.
    to: Vec<String>,
    /// Recipients the server said are not online.
    missing: Vec<String>,
    at: Instant,
    /// Requests with an answer of their own sent before this line: once
    /// more answers than that arrived, the server took the line.
    answers_before: u64,
}

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
    /// Own lines not yet refused (oldest first); refusals come in order.
    sent: VecDeque<Sent>,
    /// Requests sent that get an answer of their own, and answers come.
    asked: u64,
    answered: u64,
    /// The announcement of the admin command just answered `OK`: the
    /// answer said it already, so it is not shown twice...
    skip_announcement: Option<String>,
    /// ...and the last announcement shown, for a server that announces
    /// before it answers.
    last_announcement: Option<String>,
}

impl Session {
    fn send(&mut self, req: &Request) {
        if is_asking(req) {
            self.asked += 1;
        }
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
            crate::protocol::encode_request(&req, self.newline, &mut self.out);
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
        sent: VecDeque::new(),
        asked: 0,
        answered: 0,
        skip_announcement: None,
        last_announcement: None,
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
            if !s.logged_in {
                return never_logged_in();
            }
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
            if let Some(ended) = on_input(&mut s, &mut screen, input) {
                return ended;
            }
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
                                if let Some(ended) = on_reply(s, screen, &reply) {
                                    return Some(ended);
                                }
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

fn on_reply(s: &mut Session, screen: &mut Screen, reply: &Reply) -> Option<Ended> {
    if is_answer(reply) {
        // Lines sent before the request this answers were taken.
        s.answered += 1;
        let answered = s.answered;
        s.sent.retain(|p| p.answers_before >= answered);
    }
    if !own_line_refused(s, screen, reply) && !said_already(s, reply) {
        let (line, _) = display::reply(reply);
        screen.show(&line);
    }
    let (_, outcome) = display::reply(reply);
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
        // Ctrl-D (or the end of a script) came before the answer.
        Outcome::AskName if !s.logged_in && s.quitting.is_some() => return Some(never_logged_in()),
        Outcome::AskName if !s.logged_in => s.name_prompt.ask(screen),
        Outcome::AskName => {}
        Outcome::Closed => s.closed = true,
    }
    None
}

/// A reply that answers one request of ours, and comes in order with the
/// refusals of our lines.
fn is_answer(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::AssignUsername { .. }
            | Reply::SetUsername { .. }
            | Reply::ProvideUserInfo { .. }
            | Reply::SendLocalTime { .. }
            | Reply::SendOnlineList { .. }
            | Reply::Admin { .. }
    )
}

/// A request answered by one of [`is_answer`]'s replies.
fn is_asking(req: &Request) -> bool {
    matches!(
        req,
        Request::Login { .. }
            | Request::SetUsername { .. }
            | Request::RequestUserInfo { .. }
            | Request::RequestLocalTime
            | Request::RequestOnlineList
            | Request::KickUser { .. }
            | Request::MuteUser { .. }
            | Request::UnmuteUser { .. }
            | Request::SetAsAdmin { .. }
    )
}

fn never_logged_in() -> Ended {
    Ended::failed("never logged in".into())
}

/// A refusal of one's own chat or whisper marks that line where it
/// stands (or, if more lines came since, shows it again, marked).
fn own_line_refused(s: &mut Session, screen: &Screen, reply: &Reply) -> bool {
    let Reply::ServerMessage { message } = reply else {
        return false;
    };
    let Some(refusal) = display::refusal(message) else {
        return false;
    };
    let now = Instant::now();
    s.sent.retain(|p| now.duration_since(p.at) < REFUSAL_WAIT);
    let i = match &refusal {
        Refusal::All(_) => s.sent.iter().position(|p| p.missing.is_empty()),
        Refusal::Recipient(name) => s
            .sent
            .iter()
            .position(|p| p.to.contains(name) && !p.missing.contains(name)),
    };
    let Some(i) = i else {
        return false;
    };
    let line = match refusal {
        Refusal::All(why) => {
            let p = s.sent.remove(i).expect("found");
            screen.amend(p.screen_line, &display::refused(&p.line, Some(&why), &[]));
            return true;
        }
        Refusal::Recipient(name) => {
            let p = &mut s.sent[i];
            p.missing.push(name);
            display::refused(&p.line, None, &p.missing)
        }
    };
    let p = &mut s.sent[i];
    p.screen_line = screen.amend(p.screen_line, &line);
    if p.missing.len() == p.to.len() {
        s.sent.remove(i);
    }
    true
}

/// An admin command's `OK` and the announcement to everyone say the same:
/// the admin is shown the first of the two only.
fn said_already(s: &mut Session, reply: &Reply) -> bool {
    match reply {
        Reply::Admin {
            command,
            name,
            status: Status::Ok,
        } => {
            let announced = display::announcement(*command, name);
            if s.last_announcement.as_deref() == Some(announced.as_str()) {
                return true;
            }
            s.skip_announcement = Some(announced);
            false
        }
        Reply::ServerMessage { message } => {
            if s.skip_announcement.as_deref() == Some(message.as_str()) {
                s.skip_announcement = None;
                return true;
            }
            s.last_announcement = Some(message.clone());
            false
        }
        _ => false,
    }
}

fn on_input(s: &mut Session, screen: &mut Screen, input: Input) -> Option<Ended> {
    let line = match input {
        Input::Line(l) => l,
        // At the name prompt: nothing to say goodbye to.
        Input::End if !s.logged_in && s.name_prompt.answer("").is_some() => {
            return Some(never_logged_in())
        }
        Input::End => {
            quit(s);
            return None;
        }
    };
    if let Some(answer) = s.name_prompt.answer(&line) {
        if let Some(name) = answer {
            s.name_prompt.settled();
            s.send(&Request::Login {
                name: Some(name.to_string()),
            });
        }
        return None;
    }
    if line.is_empty() {
        return None;
    }
    let cmd = match command::parse(&line) {
        Ok(c) => c,
        Err(e) => {
            screen.show(&e);
            return None;
        }
    };
    let asked = s.asked;
    let mut shown = |line: String, to: &[String]| {
        s.sent.push_back(Sent {
            answers_before: asked,
            screen_line: screen.show_numbered(&line),
            line,
            to: to.to_vec(),
            missing: Vec::new(),
            at: Instant::now(),
        })
    };
    let req = match cmd {
        Command::Chat(message) => {
            shown(display::own_chat(&s.name, &message), &[]);
            Request::SendChat { message }
        }
        Command::Nick(name) => Request::SetUsername { name: Some(name) },
        Command::Who(name) => Request::RequestUserInfo { name },
        Command::Time => Request::RequestLocalTime,
        Command::Msg { to, text } => {
            shown(display::own_whisper(&to, &text), &to);
            Request::WhisperToUser { to, message: text }
        }
        Command::List => Request::RequestOnlineList,
        Command::Kick(name) => Request::KickUser { name },
        Command::Mute(name) => Request::MuteUser { name },
        Command::Unmute(name) => Request::UnmuteUser { name },
        Command::Op(name) => Request::SetAsAdmin { name },
        Command::Connect { .. } => {
            screen.show("/connect is for peer mode");
            return None;
        }
        Command::Help => {
            screen.show(HELP);
            return None;
        }
        Command::Quit => {
            quit(s);
            return None;
        }
    };
    s.send(&req);
    None
}

fn quit(s: &mut Session) {
    if s.quitting.is_none() {
        s.send(&Request::Disconnect);
        s.quitting = Some(Instant::now() + QUIT_WAIT);
    }
}
