//! What a person types, parsed: chat text or a `/` command (with the
//! aliases users of the class clients know). Pure: no I/O.

/// One typed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Chat(String),
    Nick(String),
    Who(String),
    Time,
    Msg {
        to: Vec<String>,
        text: String,
    },
    List,
    Kick(String),
    Mute(String),
    Unmute(String),
    Op(String),
    /// Peer mode: handshake with a peer by address.
    Connect {
        ip: String,
        port: u16,
    },
    Help,
    Quit,
}

/// The `/help` text.
pub const HELP: &str = "\
commands:
  TEXT                     chat to everyone
  /msg NAME[,NAME...] TEXT whisper (also /w, /whisper_to_user)
  /nick NAME               change your name (also /changename, /setusername)
  /who NAME                where NAME is connected from (server)
  /time                    the server's local time (server)
  /list                    who is online (also /online, /request_online_list)
  /kick NAME  /mute NAME  /unmute NAME
                           admin commands (server)
  /op NAME                 hand the admin role to NAME (also /setadmin; server)
  /connect IP PORT         handshake with a peer by address (peer mode)
  /quit                    leave
  //TEXT                   chat a line that starts with /";

/// Parses one line; `Err` carries a message for the user.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Chat(line.to_string()));
    };
    if rest.starts_with('/') {
        return Ok(Command::Chat(rest.to_string()));
    }
    let (cmd, args) = match rest.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (rest, ""),
    };
    let name = |usage: &str| -> Result<String, String> {
        match args.split_whitespace().collect::<Vec<_>>().as_slice() {
            [n] => Ok(n.to_string()),
            _ => Err(format!("usage: /{cmd} {usage}")),
        }
    };
    Ok(match cmd.to_ascii_lowercase().as_str() {
        "nick" | "changename" | "setusername" => Command::Nick(name("NAME")?),
        "who" => Command::Who(name("NAME")?),
        "time" => Command::Time,
        "msg" | "w" | "whisper" | "whisper_to_user" => {
            let (to, text) = args
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("usage: /{cmd} NAME[,NAME...] TEXT"))?;
            let to: Vec<String> = to
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if to.is_empty() {
                return Err(format!("usage: /{cmd} NAME[,NAME...] TEXT"));
            }
            Command::Msg {
                to,
                text: text.trim_start().to_string(),
            }
        }
        "list" | "online" | "request_online_list" => Command::List,
        "kick" => Command::Kick(name("NAME")?),
        "mute" => Command::Mute(name("NAME")?),
        "unmute" => Command::Unmute(name("NAME")?),
        "op" | "setadmin" => Command::Op(name("NAME")?),
        "connect" => {
            let parts: Vec<&str> = args.split_whitespace().collect();
            let usage = || "usage: /connect IP PORT".to_string();
            match parts.as_slice() {
                [ip, port] => Command::Connect {
                    ip: ip.to_string(),
                    port: port.parse().map_err(|_| usage())?,
                },
                [addr] => {
                    let (ip, port) = addr.rsplit_once(':').ok_or_else(usage)?;
                    Command::Connect {
                        ip: ip.to_string(),
                        port: port.parse().map_err(|_| usage())?,
                    }
                }
                _ => return Err(usage()),
            }
        }
        "help" | "?" => Command::Help,
        "quit" | "exit" | "disconnect" => Command::Quit,
        other => return Err(format!("unknown command /{other}; /help lists them")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_aliases() {
        assert_eq!(
            parse("hello there"),
            Ok(Command::Chat("hello there".into()))
        );
        assert_eq!(
            parse("//not a command"),
            Ok(Command::Chat("/not a command".into()))
        );
        assert_eq!(parse("/nick bob"), Ok(Command::Nick("bob".into())));
        assert_eq!(parse("/changename bob"), Ok(Command::Nick("bob".into())));
        assert_eq!(parse("/setusername bob"), Ok(Command::Nick("bob".into())));
        assert_eq!(
            parse("/msg a,b  hi  there"),
            Ok(Command::Msg {
                to: vec!["a".into(), "b".into()],
                text: "hi  there".into()
            })
        );
        assert_eq!(
            parse("/w a hi"),
            Ok(Command::Msg {
                to: vec!["a".into()],
                text: "hi".into()
            })
        );
        assert_eq!(
            parse("/whisper_to_user a hi"),
            Ok(Command::Msg {
                to: vec!["a".into()],
                text: "hi".into()
            })
        );
        assert_eq!(parse("/list"), Ok(Command::List));
        assert_eq!(parse("/online"), Ok(Command::List));
        assert_eq!(parse("/request_online_list"), Ok(Command::List));
        assert_eq!(parse("/op c"), Ok(Command::Op("c".into())));
        assert_eq!(parse("/setadmin c"), Ok(Command::Op("c".into())));
        assert_eq!(parse("/KICK c"), Ok(Command::Kick("c".into())));
        assert_eq!(parse("/mute c"), Ok(Command::Mute("c".into())));
        assert_eq!(parse("/unmute c"), Ok(Command::Unmute("c".into())));
        assert_eq!(parse("/who c"), Ok(Command::Who("c".into())));
        assert_eq!(parse("/time"), Ok(Command::Time));
        assert_eq!(
            parse("/connect 10.0.0.2 15151"),
            Ok(Command::Connect {
                ip: "10.0.0.2".into(),
                port: 15151
            })
        );
        assert_eq!(
            parse("/connect 10.0.0.2:4000"),
            Ok(Command::Connect {
                ip: "10.0.0.2".into(),
                port: 4000
            })
        );
        assert_eq!(parse("/quit"), Ok(Command::Quit));
        assert_eq!(parse("/help"), Ok(Command::Help));
    }

    #[test]
    fn mistakes_get_usage() {
        assert_eq!(parse("/nick"), Err("usage: /nick NAME".into()));
        assert_eq!(
            parse("/msg bob"),
            Err("usage: /msg NAME[,NAME...] TEXT".into())
        );
        assert!(parse("/connect x").is_err());
        assert!(parse("/dance")
            .unwrap_err()
            .contains("unknown command /dance"));
    }
}
