//! The runspace's engine: one input line becomes statements and pipelines; each stage is bound
//! and run, objects flow between stages, and what reaches the end is printed.

use super::cmdlets::{lookup, Cmdlet};
use super::format::{render_default, Obj};
use super::lang::{bind, parse, Bound, Command, Value};
use super::state::{AuditEntry, State, StateFile};
use super::{Input, Interrupt, Term};

/// What a line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// Back to the prompt; `ok` is false when anything failed or was interrupted.
    Done { ok: bool },
    /// `exit`: end the runspace with this status.
    Exit(u8),
}

/// Why a pipeline stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// A terminating error; the engine prefixes the cmdlet's name when printing it.
    Error(String),
    /// Ctrl-C while the cmdlet ran.
    Interrupted,
    /// `exit N`.
    Exit(u8),
    Io(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Io(e)
    }
}

/// What flows between pipeline stages.
#[derive(Debug)]
pub(super) enum Flow {
    Nothing,
    Objects(Vec<Obj>),
    /// Already formatted lines (Format-*, strings).
    Text(Vec<String>),
}

impl From<String> for Stop {
    fn from(message: String) -> Self {
        Stop::Error(message)
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Self {
        Stop::Error(message.to_owned())
    }
}

#[derive(Debug)]
pub struct Session {
    pub(super) state: State,
    pub(super) file: StateFile,
    pub(super) term: Term,
    pub(super) interrupt: Interrupt,
    /// The Ctrl-C count when the current line was read.
    pub(super) seen: u64,
    /// "Yes to All" / "No to All" answered during the current cmdlet.
    pub(super) confirm_all: Option<bool>,
    pub(super) caller: String,
}

impl Session {
    pub(super) fn new(state: State, file: StateFile, term: Term, interrupt: Interrupt) -> Self {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "Administrator".into());
        let caller = format!("{}/Users/{user}", state.organization);
        let seen = interrupt.count();
        Session {
            state,
            file,
            term,
            interrupt,
            seen,
            confirm_all: None,
            caller,
        }
    }

    /// The line just read runs now: from here a Ctrl-C interrupts it. The count is read before
    /// the mark is written: a Ctrl-C sent the moment the mark appears may be counted before
    /// this thread reads the count after writing it, and would be lost.
    pub fn start_line(&mut self) -> std::io::Result<()> {
        self.seen = self.interrupt.count();
        self.term.command_runs()
    }

    /// Run one input line, after [`Session::start_line`].
    pub fn run_line(&mut self, line: &str) -> std::io::Result<LineResult> {
        let script = match parse(line) {
            Ok(script) => script,
            Err(message) => {
                self.term.error(&format!("ParserError: {message}"))?;
                return Ok(LineResult::Done { ok: false });
            }
        };
        let mut ok = true;
        for pipeline in &script {
            let result = self.run_pipeline(pipeline).and_then(|flow| self.emit(flow));
            match result {
                Ok(()) => {}
                Err(Stop::Error(message)) => {
                    self.term.error(&message)?;
                    ok = false;
                }
                Err(Stop::Interrupted) => {
                    self.term.write("\n")?;
                    return Ok(LineResult::Done { ok: false });
                }
                Err(Stop::Exit(code)) => return Ok(LineResult::Exit(code)),
                Err(Stop::Io(e)) => return Err(e),
            }
        }
        self.term.flush()?;
        Ok(LineResult::Done { ok })
    }

    fn run_pipeline(&mut self, pipeline: &[Command]) -> Result<Flow, Stop> {
        // Resolve every command first, as PowerShell does before running any of them.
        let mut stages = Vec::new();
        for command in pipeline {
            let Some(cmdlet) = lookup(&command.name) else {
                return Err(Stop::Error(format!(
                    "{0}: The term '{0}' is not recognized as a name of a cmdlet, function, script file, or executable program.\n\
                     Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
                    command.name
                )));
            };
            let bound = bind(cmdlet.params, cmdlet.positional, &command.args)
                .map_err(|m| Stop::Error(format!("{}: {m}", cmdlet.name)))?;
            stages.push((cmdlet, bound));
        }
        let mut flow = Flow::Nothing;
        for (cmdlet, bound) in stages {
            self.confirm_all = None;
            flow = self.invoke(cmdlet, &bound, flow)?;
            self.check_interrupt()?;
        }
        Ok(flow)
    }

    fn invoke(&mut self, cmdlet: &Cmdlet, bound: &Bound, input: Flow) -> Result<Flow, Stop> {
        let tag = |stop: Stop| match stop {
            Stop::Error(m) => Stop::Error(format!("{}: {m}", cmdlet.name)),
            other => other,
        };
        match input {
            Flow::Objects(objs) if !cmdlet.by_property.is_empty() => {
                let mut out = Vec::new();
                for obj in objs {
                    let mut per = bound.clone();
                    for name in cmdlet.by_property {
                        if !per.has(name) {
                            let value = obj.get(name).or_else(|| {
                                if *name == "Identity" {
                                    obj.get("Name")
                                } else {
                                    None
                                }
                            });
                            if let Some(v) = value {
                                per.set(name, v.clone());
                            }
                        }
                    }
                    match (cmdlet.run)(self, &per, Flow::Nothing).map_err(tag)? {
                        Flow::Objects(more) => out.extend(more),
                        Flow::Text(lines) => self.emit(Flow::Text(lines))?,
                        Flow::Nothing => {}
                    }
                    self.check_interrupt()?;
                }
                Ok(if out.is_empty() {
                    Flow::Nothing
                } else {
                    Flow::Objects(out)
                })
            }
            input => (cmdlet.run)(self, bound, input).map_err(tag),
        }
    }

    pub(super) fn emit(&mut self, flow: Flow) -> Result<(), Stop> {
        match flow {
            Flow::Nothing => {}
            Flow::Objects(objs) => self.term.write(&render_default(&objs))?,
            Flow::Text(lines) => {
                for line in lines {
                    self.term.write(&line)?;
                    self.term.write("\n")?;
                }
            }
        }
        self.term.flush()?;
        Ok(())
    }

    fn check_interrupt(&self) -> Result<(), Stop> {
        if self.interrupted() {
            Err(Stop::Interrupted)
        } else {
            Ok(())
        }
    }

    pub(super) fn interrupted(&self) -> bool {
        self.interrupt.count() != self.seen
    }

    /// PowerShell's ShouldProcess: `-WhatIf` reports, `-Confirm:$false` skips the question,
    /// high-impact actions (and any with `-Confirm`) ask.
    pub(super) fn should_process(
        &mut self,
        bound: &Bound,
        target: &str,
        high_impact: bool,
    ) -> Result<bool, Stop> {
        if bound.flag("WhatIf") {
            self.term.write(&format!("What if: {target}\n"))?;
            return Ok(false);
        }
        let explicit = bound.get("Confirm").map(Value::truthy);
        if explicit == Some(false) || !(high_impact || explicit == Some(true)) {
            return Ok(true);
        }
        if let Some(all) = self.confirm_all {
            return Ok(all);
        }
        loop {
            let question = format!(
                "Confirm\nAre you sure you want to perform this action?\n{target}\n\
                 [Y] Yes  [A] Yes to All  [N] No  [L] No to All  [?] Help (default is \"Y\"): "
            );
            self.term.write(&question)?;
            self.term.flush()?;
            let (count, seen) = (self.interrupt.clone(), self.seen);
            let stop = move || count.count() != seen;
            let answer = match self.term.read_line(Some(&stop))? {
                Input::Line(answer) => answer,
                Input::Interrupted => return Err(Stop::Interrupted),
                // End of input answers No: never act without consent.
                Input::Eof => return Ok(false),
            };
            match answer.trim().to_ascii_uppercase().as_str() {
                "" | "Y" => return Ok(true),
                "A" => {
                    self.confirm_all = Some(true);
                    return Ok(true);
                }
                "N" => return Ok(false),
                "L" => {
                    self.confirm_all = Some(false);
                    return Ok(false);
                }
                "?" => self.term.write(
                    "Y - Continue with only the next step of the operation.\n\
                         A - Continue with all the steps of the operation.\n\
                         N - Skip this operation and proceed with the next operation.\n\
                         L - Skip this operation and all subsequent operations.\n",
                )?,
                _ => {}
            }
        }
    }

    /// Append to the admin audit log and persist the state.
    pub(super) fn commit(
        &mut self,
        cmdlet: &str,
        object: &str,
        bound: &Bound,
    ) -> Result<(), String> {
        self.state.admin_audit_log.push(AuditEntry {
            cmdlet_name: cmdlet.to_owned(),
            object_modified: object.to_owned(),
            cmdlet_parameters: bound.describe(),
            caller: self.caller.clone(),
            succeeded: true,
            run_date: now_rfc3339(),
        });
        self.file.save(&self.state).map_err(|e| e.to_string())
    }

    pub(super) fn not_found(&self, identity: &str) -> Stop {
        let server = self
            .state
            .databases
            .first()
            .map(|d| d.server.clone())
            .unwrap_or_default();
        Stop::Error(format!(
            "The operation couldn't be performed because object '{identity}' couldn't be found on '{server}.{}'.",
            self.state.organization
        ))
    }

    pub(super) fn mailbox_index(&self, bound: &Bound, param: &str) -> Result<usize, Stop> {
        let identity = bound
            .str(param)
            .ok_or_else(|| format!("Cannot process command because of one or more missing mandatory parameters: {param}."))?;
        self.state
            .find_mailbox(&identity)
            .ok_or_else(|| self.not_found(&identity))
    }

    /// The name of the mailbox that `param` names (an error when it names none).
    pub(super) fn mailbox_name(&self, bound: &Bound, param: &str) -> Result<String, Stop> {
        let index = self.mailbox_index(bound, param)?;
        Ok(self
            .state
            .mailboxes
            .get(index)
            .map(|m| m.name.clone())
            .unwrap_or_default())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
