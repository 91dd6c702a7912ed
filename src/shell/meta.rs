//! Meta-commands typed at the jitsh prompt (`:request`, `:status`, ...). They are handled by
//! jitsh itself and never reach the runspace. Pure parsing.

/// Help text for `:help`.
pub(crate) const HELP: &str = "\
jitsh meta-commands (handled by jitsh, never sent to the runspace):
  :request TASK --reason TEXT --for DURATION [--param NAME=VALUE]...
                      ask the approval service for TASK (for example New-MoveRequest)
  :status             pending requests, active tokens, and the elevated access
                      control when approval control is disabled
  :tokens             the tokens this session holds
  :help               this text
  :quit               end the session";

/// A parsed meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Request(RequestSpec),
    Status,
    Tokens,
    Help,
    Quit,
}

/// What `:request` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub task: String,
    pub reason: String,
    /// As typed (`1h`, `30m`); the service validates it.
    pub duration: String,
    pub params: Vec<(String, String)>,
}

/// Why a meta-command line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("unknown meta-command `{0}`; type :help for the list")]
    Unknown(String),
    #[error("{0}; usage: :request TASK --reason TEXT --for DURATION [--param NAME=VALUE]...")]
    Usage(String),
}

/// Whether a submitted line is meant for jitsh rather than the runspace. A leading `:` is not
/// valid PowerShell at the start of a line, so nothing legitimate is shadowed.
pub(crate) fn is_meta(line: &str) -> bool {
    line.trim_start().starts_with(':')
}

/// Parse a meta-command line (with its leading `:`).
pub fn parse(line: &str) -> Result<Meta, MetaError> {
    let words = split_words(line.trim_start().trim_start_matches(':'))?;
    let mut it = words.into_iter();
    let name = it.next().unwrap_or_default();
    match name.to_ascii_lowercase().as_str() {
        "status" => Ok(Meta::Status),
        "tokens" => Ok(Meta::Tokens),
        "help" | "?" | "" => Ok(Meta::Help),
        "quit" | "exit" | "q" => Ok(Meta::Quit),
        "request" => parse_request(it.collect()),
        _ => Err(MetaError::Unknown(name)),
    }
}

fn parse_request(words: Vec<String>) -> Result<Meta, MetaError> {
    let mut task = None;
    let mut reason = None;
    let mut duration = None;
    let mut params = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| MetaError::Usage(format!("`{flag}` needs a value")))
        };
        match w.as_str() {
            "--reason" => reason = Some(value("--reason")?),
            "--for" | "--duration" => duration = Some(value("--for")?),
            "--param" => {
                let pv = value("--param")?;
                let Some((n, v)) = pv.split_once('=') else {
                    return Err(MetaError::Usage(format!("`{pv}` is not NAME=VALUE")));
                };
                params.push((n.to_string(), v.to_string()));
            }
            "--task" => task = Some(value("--task")?),
            flag if flag.starts_with("--") => {
                return Err(MetaError::Usage(format!("unknown option `{flag}`")))
            }
            _ if task.is_none() => task = Some(w),
            _ => return Err(MetaError::Usage(format!("unexpected `{w}`"))),
        }
    }
    let task = task.ok_or_else(|| MetaError::Usage("a task is needed".into()))?;
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| MetaError::Usage("a reason is needed (`--reason TEXT`)".into()))?;
    Ok(Meta::Request(RequestSpec {
        task,
        reason,
        duration: duration.unwrap_or_else(|| "1h".into()),
        params,
    }))
}

/// Split on whitespace, honouring single and double quotes.
fn split_words(s: &str) -> Result<Vec<String>, MetaError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(MetaError::Usage("a quote is not closed".into()));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_quotes_and_params() {
        let m = parse(
            r#":request New-MoveRequest --reason "move bob's box" --for 2h --param Identity=bob@contoso.com"#,
        );
        assert_eq!(
            m,
            Ok(Meta::Request(RequestSpec {
                task: "New-MoveRequest".into(),
                reason: "move bob's box".into(),
                duration: "2h".into(),
                params: vec![("Identity".into(), "bob@contoso.com".into())],
            }))
        );
    }

    #[test]
    fn request_without_reason_is_a_usage_error() {
        assert!(matches!(
            parse(":request New-MoveRequest --for 1h"),
            Err(MetaError::Usage(_))
        ));
    }

    #[test]
    fn simple_commands_and_unknown() {
        assert_eq!(parse(":status"), Ok(Meta::Status));
        assert_eq!(parse("  :QUIT"), Ok(Meta::Quit));
        assert_eq!(parse(":frob"), Err(MetaError::Unknown("frob".into())));
        assert!(is_meta(" :help"));
        assert!(!is_meta("Get-Mailbox :x"));
    }
}
