//! The syntax tree of a PowerShell line, as far as jitsh understands PowerShell.
//!
//! Every node carries the byte [`Span`] of the source it came from. Operator chains and postfix
//! chains are stored flat (`first` + `rest`) so that the tree's depth grows only with explicit
//! nesting (parentheses, blocks, subexpressions), which the parser bounds: consumers may recurse
//! over the tree without risking the stack.

use std::borrow::Cow;

use serde::Serialize;
use smol_str::SmolStr;

use crate::span::Span;

/// `script := statement-list`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Script {
    pub statements: Vec<Statement>,
    pub span: Span,
}

/// A `{ ... }` body: a script block, a loop or branch body, a function body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    pub statements: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub kind: StatementKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StatementKind {
    /// Pipelines joined by `&&` / `||`.
    Chain(Chain),
    /// `$x = value`, `$x += value`, `$h.Key = value`.
    Assignment {
        target: Expr,
        op: String,
        value: Box<Statement>,
    },
    If {
        clauses: Vec<(Statement, Block)>,
        else_block: Option<Block>,
    },
    Foreach {
        variable: VarRef,
        iterable: Box<Statement>,
        body: Block,
    },
    For {
        init: Option<Box<Statement>>,
        condition: Option<Box<Statement>>,
        step: Option<Box<Statement>>,
        body: Block,
    },
    While {
        condition: Box<Statement>,
        body: Block,
    },
    /// `do { } while (...)` or `do { } until (...)`.
    Do {
        body: Block,
        until: bool,
        condition: Box<Statement>,
    },
    Switch {
        options: Vec<String>,
        subject: Box<Statement>,
        clauses: Vec<SwitchClause>,
    },
    Function {
        filter: bool,
        name: String,
        params: Vec<ParamDecl>,
        body: Block,
    },
    /// `param( ... )` at the top of a script block or script.
    Param(Vec<ParamDecl>),
    /// `begin { }`, `process { }`, `end { }` inside a script block.
    NamedBlock {
        name: String,
        body: Block,
    },
    Try {
        body: Block,
        catches: Vec<(Vec<String>, Block)>,
        finally: Option<Block>,
    },
    Trap {
        types: Vec<String>,
        body: Block,
    },
    /// `return`, `throw`, `exit`, `break`, `continue` with an optional operand.
    Flow {
        keyword: String,
        value: Option<Box<Statement>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchClause {
    /// `None` for the `default` clause.
    pub pattern: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// One `param()` entry: `[Parameter(Mandatory)][string]$Name = 'default'`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamDecl {
    pub attributes: Vec<Attribute>,
    pub variable: VarRef,
    pub default: Option<Expr>,
    pub span: Span,
}

/// `[Name]` (a type constraint) or `[Name(args)]` (an attribute).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub name: String,
    /// `None` for a plain type constraint; named arguments are `(Some(name), value)`.
    pub args: Option<Vec<(Option<String>, Option<Expr>)>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub first: Pipeline,
    /// `("&&" | "||", pipeline)` pairs.
    pub rest: Vec<(String, Pipeline)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    pub elements: Vec<PipelineElement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PipelineElement {
    Command(Command),
    Expression {
        expr: Expr,
        redirections: Vec<Redirection>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// `&` or `.` when the command is invoked through a call operator.
    pub call_operator: Option<CallOperator>,
    pub name: CommandName,
    pub elements: Vec<CommandElement>,
    pub redirections: Vec<Redirection>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CallOperator {
    /// `&`
    Call,
    /// `.`
    DotSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CommandName {
    /// A bare word: `Get-Mailbox`, `Exchange\New-MoveRequest`, `?`, `.\script.ps1`.
    Word(Word),
    /// Anything after a call operator that is not a bare word: a string, variable, block, ...
    Expr(Expr),
}

/// A bare word with backtick escapes applied (`text`); its span gives the text as written.
///
/// The tree's text is `SmolStr`: up to 23 bytes held in place, as nearly every word, name and
/// string of a line is, so reading a line and copying its names into invocations allocates
/// little, and a longer text is shared rather than copied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    pub text: SmolStr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CommandElement {
    Parameter(ParameterToken),
    Argument(Expr),
}

/// `-Name`, `-Name:value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterToken {
    /// The name without its dash, backtick escapes applied.
    pub name: SmolStr,
    /// The value given with `-Name:value` (`None` for `-Name` alone).
    pub value: Option<Expr>,
    /// Whether the token was written with a colon (`-Name:` / `-Name:value`).
    pub colon: bool,
    /// Span of the `-Name` / `-Name:` token itself.
    pub token_span: Span,
    pub span: Span,
}

/// `>`, `>>`, `2>`, `2>&1`, `*>` ... with its target (none for a stream merge).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redirection {
    pub operator: String,
    pub target: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExprKind {
    /// Quoted strings, here-strings and bare-word arguments.
    String(StringLit),
    /// A numeric literal as written (`42`, `0x1F`, `1.5`, `10MB`).
    Number(String),
    Variable(VarRef),
    /// `@name` in argument position.
    Splat(VarRef),
    /// `a, b, c`
    List(Vec<Expr>),
    /// `@( ... )`
    ArraySubexpression(Vec<Statement>),
    /// `@{ k = v; ... }`
    Hashtable(Vec<HashEntry>),
    ScriptBlock(Box<Block>),
    /// `$( ... )`
    Subexpression(Vec<Statement>),
    /// `( ... )`
    Paren(Box<Statement>),
    /// `[TypeName]`
    Type(String),
    /// `[TypeName] operand`
    Cast {
        type_name: String,
        operand: Box<Expr>,
    },
    /// Prefix operators: `!`, `-not`, `-`, `+`, `-bnot`, `-split`, `-join`, `++`, `--`.
    Unary {
        op: String,
        operand: Box<Expr>,
    },
    /// Operators of one precedence level, left to right (`first op e op e ...`).
    Binary {
        first: Box<Expr>,
        rest: Vec<(String, Expr)>,
    },
    /// Member access, method calls, indexing and `++`/`--` after an operand.
    Postfix {
        base: Box<Expr>,
        ops: Vec<PostfixOp>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostfixOp {
    pub kind: PostfixKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PostfixKind {
    /// `.Name`, `::Name`, `.Name(args)`, `::Name(args)`.
    Member {
        name: MemberName,
        is_static: bool,
        /// `Some` when the member is called as a method.
        args: Option<Vec<Expr>>,
    },
    Index(Box<Expr>),
    /// `++` or `--`.
    Step(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MemberName {
    Name(String),
    /// `.$name`, `.(expr)`, `."string"`: computed at run time.
    Dynamic(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HashEntry {
    pub key: Expr,
    pub value: Statement,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringLit {
    pub quoting: Quoting,
    pub parts: Vec<StringPart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Quoting {
    Bare,
    Single,
    Double,
    HereSingle,
    HereDouble,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StringPart {
    /// Literal text, escapes applied.
    Text(SmolStr),
    /// `$name` or `${name}` expanded at run time.
    Variable(VarRef, Span),
    /// `$( ... )` expanded at run time.
    Subexpression(Vec<Statement>, Span),
}

/// `$name`, `${name}`, `$scope:name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarRef {
    /// The name including any scope or drive qualifier (`env:PATH`), without `$` or braces.
    pub name: String,
    pub braced: bool,
}

impl StringLit {
    /// The literal value when the string has no run-time expansion: borrowed when it is one
    /// piece of text (most words and strings), so asking costs no copy.
    pub fn static_value(&self) -> Option<Cow<'_, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [StringPart::Text(t)] => Some(Cow::Borrowed(t)),
            parts => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        StringPart::Text(t) => out.push_str(t),
                        StringPart::Variable(..) | StringPart::Subexpression(..) => return None,
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }
}

impl VarRef {
    /// The name without a `scope:` qualifier, lowercased, for comparisons (`$Script:H` is `h`).
    pub fn plain_name(&self) -> SmolStr {
        // An ASCII name (nearly all) lowercases the same either way, and in place when short.
        let lower: SmolStr = if self.name.is_ascii() {
            smol_str::StrExt::to_ascii_lowercase_smolstr(self.name.as_str())
        } else {
            self.name.to_lowercase().into()
        };
        for scope in ["global:", "script:", "local:", "private:", "using:"] {
            if let Some(rest) = lower.strip_prefix(scope) {
                return SmolStr::new(rest);
            }
        }
        lower
    }
}
