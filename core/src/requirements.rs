//! The placement requirements language of CreateSessions (`Requirements`): its syntax tree, the parser, the
//! canonical printer and the evaluator that tells whether a server satisfies an expression.
//!
//! # Grammar
//!
//! ```text
//! requirement := or
//! or          := and ( "or" and )*
//! and         := unary ( "and" unary )*
//! unary       := "not" unary | "(" or ")" | comparison
//! comparison  := subject operator value
//! subject     := "tag:" KEY | "server:" PROPERTY | KEY          (a bare KEY is a tag, see below)
//! operator    := "=" | "!=" | ">" | ">=" | "<" | "<=" | ":="
//! value       := STRING | NUMBER
//! ```
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons. With A, B, C comparisons, `A or B and not C` reads
//! `A or (B and (not C))`, and `not tag:a = 1` is `not (tag:a = 1)`. A chain `a and b and c` is one [`Requirement::And`] with three terms; parentheses
//! the user wrote (`(a and b) and c`) are kept as a nested node, so printing gives the same grouping back.
//!
//! # Tokens
//!
//! Positions in errors count characters (not bytes) from 1; the end of input is one past the last character.
//!
//! - Whitespace (any Unicode white space) separates tokens and is otherwise ignored.
//! - A word starts with a letter or `_` and goes on with letters, digits, `_`, `-`, `.` and `:`, except that a
//!   `:` directly followed by `=` ends the word (so `tag:color:='red'` is `tag:color` `:=` `'red'`).
//!   - `and`, `or`, `not`, in any case, are keywords.
//!   - `tag:KEY` (prefix in any case) names the tag KEY, which may itself contain `:` (`tag:dcv:os-family`).
//!     Keys with other characters (`/`, `@`, spaces) cannot be written.
//!   - `server:PROPERTY` (prefix in any case) names a server property; see [`Property`] for the list.
//!   - A word with no `:` names a tag too: the first Session Manager releases had no prefixes, and the reference
//!     API spec still gives `ram_gb = '4' and software='my software'` as its example. A word with a `:` but
//!     neither prefix is an error, because it is almost always a misspelt prefix (`sever:Id`).
//! - A string is written in single quotes; a quote inside it is doubled (`'o''neil'` is `o'neil`). It may hold
//!   any other character, newlines included. Double quotes are not string delimiters.
//! - A number is `[+-]? digits ( "." digits )? ( [eE] [+-]? digits )?`: `2`, `-1.5`, `1024E6`, `1.5e-3`. The sign
//!   is part of the number, so `> -5` needs no space but `- 5` is an error. A number running into letters, `_` or
//!   `.` (`1024E`, `1.2.3`, `4gb`) is an error rather than two tokens; text belongs in quotes.
//! - Operators: `=`, `!=`, `>`, `>=`, `<`, `<=`, `:=`; and the parentheses `(`, `)`. Nothing else.
//!
//! Nesting (parentheses and `not`) is limited to [`MAX_NESTING`] levels so that a hostile request cannot exhaust
//! the stack of the parser, the evaluator or `Drop`.
//!
//! # Meaning
//!
//! A comparison reads its subject from the server ([`ServerInfo`]): a tag's value (the last one if the agent sent
//! the key twice, as a later tag source overrides an earlier one), or a property rendered as text.
//!
//! - When both the subject's text and the value parse as numbers (the number syntax above, whole string, no
//!   spaces), `=`, `!=`, `<`, `<=`, `>`, `>=` compare exact decimal values: `tag:ram_gb >= 4` holds for `"16"`,
//!   `server:Host.Memory.TotalBytes > 1024E6` compares bytes, and `'16'` quoted counts as a number too.
//! - Otherwise they compare the strings exactly: case-sensitive, ordered by Unicode scalar values. The guide's
//!   values are lower case (`server:Host.Os.Family = 'windows'`) and that is what agents report.
//! - `:=` holds when the subject's text contains the value's text, case-sensitive (`Ec2InstanceType := 't2'`).
//! - A missing tag, or a property the server does not have, makes the comparison false, except `!=`, which is
//!   always exactly `not (a = b)`, and so holds. `tag:idea_session_id = 'x'` therefore never picks a host
//!   without that tag, while `tag:reserved != 'true'` keeps the hosts that have no `reserved` tag.
//!   Absent properties: every `Host.Aws.*` on a host that is not an EC2 instance, and any text property the agent
//!   left empty (`Host.Os.KernelVersion` on Windows, `Host.Os.BuildNumber` on Linux). A tag whose value is the
//!   empty string is present.
//!
//! # Case
//!
//! Keywords, the `tag:` and `server:` prefixes and property names are case-insensitive (`SERVER:host.os.family`
//! is accepted; the printer writes the canonical spelling). Tag keys, tag values and string literals are
//! case-sensitive, as in the original broker.

mod number;
mod parse;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::model::ServerInfo;

pub use number::Number;
pub use parse::{parse, ParseError, MAX_NESTING};

/// A parsed `Requirements` expression.
///
/// The parser builds `And` and `Or` with at least two terms. A hand-built one with fewer still evaluates
/// (`And` of nothing holds, `Or` of nothing does not) but does not print as text that parses back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    Compare(Comparison),
    Not(Box<Requirement>),
    And(Vec<Requirement>),
    Or(Vec<Requirement>),
}

/// `subject operator value`, e.g. `tag:color := 'red'`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comparison {
    pub subject: Subject,
    pub op: CompareOp,
    pub value: Value,
}

/// What a comparison reads from the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `tag:<key>`; the key is case-sensitive.
    Tag(String),
    /// `server:<Property>`.
    Server(Property),
}

/// The literal on the right of a comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A quoted string, unescaped.
    Text(String),
    Number(Number),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `:=`: the subject contains the value.
    Contains,
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Contains => ":=",
        }
    }

    /// Whether `subject op value` holds given how the subject orders against the value.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::Ge => ordering != Ordering::Less,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
            // Containment is decided on the text, never from an ordering.
            CompareOp::Contains => false,
        }
    }
}

macro_rules! properties {
    ($($variant:ident => $name:literal,)*) => {
        /// The server properties a requirement may name after `server:` (the list of the Session Manager guide).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Property {
            $($variant,)*
        }

        impl Property {
            /// Every property, in the guide's order.
            pub const ALL: &'static [Property] = &[$(Property::$variant,)*];

            /// The canonical spelling, as the guide writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Property::$variant => $name,)*
                }
            }
        }
    };
}

properties! {
    Id => "Id",
    Hostname => "Hostname",
    Version => "Version",
    SessionManagerAgentVersion => "SessionManagerAgentVersion",
    OsBuildNumber => "Host.Os.BuildNumber",
    OsFamily => "Host.Os.Family",
    OsKernelVersion => "Host.Os.KernelVersion",
    OsName => "Host.Os.Name",
    OsVersion => "Host.Os.Version",
    MemoryTotalBytes => "Host.Memory.TotalBytes",
    MemoryUsedBytes => "Host.Memory.UsedBytes",
    SwapTotalBytes => "Host.Swap.TotalBytes",
    SwapUsedBytes => "Host.Swap.UsedBytes",
    LoadOneMinute => "Host.CpuLoadAverage.OneMinute",
    LoadFiveMinutes => "Host.CpuLoadAverage.FiveMinutes",
    LoadFifteenMinutes => "Host.CpuLoadAverage.FifteenMinutes",
    AwsEc2InstanceId => "Host.Aws.Ec2InstanceId",
    AwsEc2InstanceType => "Host.Aws.Ec2InstanceType",
    AwsRegion => "Host.Aws.Region",
    AwsEc2ImageId => "Host.Aws.Ec2ImageId",
    CpuArchitecture => "Host.CpuInfo.Architecture",
    CpuModelName => "Host.CpuInfo.ModelName",
    CpuNumberOfCpus => "Host.CpuInfo.NumberOfCpus",
    CpuPhysicalCoresPerCpu => "Host.CpuInfo.PhysicalCoresPerCpu",
    CpuVendor => "Host.CpuInfo.Vendor",
}

impl Property {
    /// Looks a property up by name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Property> {
        Property::ALL.iter().copied().find(|property| property.name().eq_ignore_ascii_case(name))
    }

    /// The property's value on `server` as text, or None when the server does not have it (no AWS facts, or a
    /// text fact the agent left empty).
    pub fn value(self, server: &ServerInfo) -> Option<Cow<'_, str>> {
        let host = &server.host;
        let aws = host.aws.as_ref();
        match self {
            Property::Id => text(&server.id),
            Property::Hostname => text(&server.hostname),
            Property::Version => text(&server.version),
            Property::SessionManagerAgentVersion => text(&server.agent_version),
            Property::OsBuildNumber => text(&host.os.build_number),
            Property::OsFamily => text(&host.os.family),
            Property::OsKernelVersion => text(&host.os.kernel_version),
            Property::OsName => text(&host.os.name),
            Property::OsVersion => text(&host.os.version),
            Property::MemoryTotalBytes => number(host.memory.total_bytes),
            Property::MemoryUsedBytes => number(host.memory.used_bytes),
            Property::SwapTotalBytes => number(host.swap.total_bytes),
            Property::SwapUsedBytes => number(host.swap.used_bytes),
            Property::LoadOneMinute => real(host.load.one_minute),
            Property::LoadFiveMinutes => real(host.load.five_minutes),
            Property::LoadFifteenMinutes => real(host.load.fifteen_minutes),
            Property::AwsEc2InstanceId => aws.and_then(|aws| text(&aws.ec2_instance_id)),
            Property::AwsEc2InstanceType => aws.and_then(|aws| text(&aws.ec2_instance_type)),
            Property::AwsRegion => aws.and_then(|aws| text(&aws.region)),
            Property::AwsEc2ImageId => aws.and_then(|aws| text(&aws.ec2_image_id)),
            Property::CpuArchitecture => text(&host.cpu.architecture),
            Property::CpuModelName => text(&host.cpu.model_name),
            Property::CpuNumberOfCpus => number(host.cpu.number_of_cpus.into()),
            Property::CpuPhysicalCoresPerCpu => number(host.cpu.physical_cores_per_cpu.into()),
            Property::CpuVendor => text(&host.cpu.vendor),
        }
    }
}

/// The model writes an empty string for a fact the agent did not report.
fn text(value: &str) -> Option<Cow<'_, str>> {
    (!value.is_empty()).then_some(Cow::Borrowed(value))
}

fn number(value: u64) -> Option<Cow<'static, str>> {
    Some(Cow::Owned(value.to_string()))
}

/// f64's Display never uses an exponent and always parses back as a number here; NaN and the infinities do not,
/// and then compare as text.
fn real(value: f64) -> Option<Cow<'static, str>> {
    Some(Cow::Owned(value.to_string()))
}

impl Subject {
    /// The subject's text on `server`, or None when the tag is missing or the property absent.
    pub fn value<'a>(&self, server: &'a ServerInfo) -> Option<Cow<'a, str>> {
        match self {
            Subject::Tag(key) => {
                server.tags.iter().rev().find(|(k, _)| k == key).map(|(_, value)| Cow::Borrowed(value.as_str()))
            }
            Subject::Server(property) => property.value(server),
        }
    }
}

impl Value {
    /// The literal's text: the unescaped string, or the number as written.
    pub fn as_str(&self) -> &str {
        match self {
            Value::Text(text) => text,
            Value::Number(number) => number.as_str(),
        }
    }
}

impl Comparison {
    pub fn matches(&self, server: &ServerInfo) -> bool {
        let Some(actual) = self.subject.value(server) else {
            return self.op == CompareOp::Ne;
        };
        let expected = self.value.as_str();
        if self.op == CompareOp::Contains {
            return actual.contains(expected);
        }
        let ordering = match (number::Decimal::parse(&actual), number::Decimal::parse(expected)) {
            (Some(actual), Some(expected)) => actual.cmp(&expected),
            _ => actual.as_ref().cmp(expected),
        };
        self.op.holds(ordering)
    }
}

impl Requirement {
    /// Whether `server` satisfies the expression.
    pub fn matches(&self, server: &ServerInfo) -> bool {
        match self {
            Requirement::Compare(comparison) => comparison.matches(server),
            Requirement::Not(inner) => !inner.matches(server),
            Requirement::And(terms) => terms.iter().all(|term| term.matches(server)),
            Requirement::Or(terms) => terms.iter().any(|term| term.matches(server)),
        }
    }
}

impl FromStr for Requirement {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text)
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Always with the prefix: the bare legacy form cannot hold a `:`.
            Subject::Tag(key) => write!(f, "tag:{key}"),
            Subject::Server(property) => write!(f, "server:{property}"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => write!(f, "'{}'", text.replace('\'', "''")),
            Value::Number(number) => f.write_str(number.as_str()),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.subject, self.op, self.value)
    }
}

/// Prints the canonical text: single spaces, lower-case keywords, prefixed subjects, canonical property names,
/// re-escaped quotes, and parentheses only where the tree needs them to parse back the same.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Compare(comparison) => comparison.fmt(f),
            Requirement::Not(inner) => {
                f.write_str("not ")?;
                write_term(f, inner, matches!(**inner, Requirement::And(_) | Requirement::Or(_)))
            }
            Requirement::And(terms) => {
                write_terms(f, terms, " and ", |term| matches!(term, Requirement::And(_) | Requirement::Or(_)))
            }
            Requirement::Or(terms) => write_terms(f, terms, " or ", |term| matches!(term, Requirement::Or(_))),
        }
    }
}

fn write_terms(
    f: &mut fmt::Formatter<'_>,
    terms: &[Requirement],
    separator: &str,
    needs_parentheses: impl Fn(&Requirement) -> bool,
) -> fmt::Result {
    for (index, term) in terms.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write_term(f, term, needs_parentheses(term))?;
    }
    Ok(())
}

fn write_term(f: &mut fmt::Formatter<'_>, term: &Requirement, parenthesize: bool) -> fmt::Result {
    if parenthesize {
        write!(f, "({term})")
    } else {
        write!(f, "{term}")
    }
}
