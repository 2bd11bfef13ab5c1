//! DynamoDB's expression language: a tokenizer (`lexer`), a recursive-descent parser
//! (`parser`) into the AST defined here (names and values substituted from
//! `ExpressionAttributeNames` / `…Values` as they are parsed: `substitutions`),
//! evaluation against typed items (`eval`), updates applied (`update`) and
//! projections (`projection`).
//!
//! Grammar (DynamoDB's precedence, loosest first: `OR`, `AND`, `NOT`, then comparisons,
//! `BETWEEN`, `IN` and functions):
//!
//! ```text
//! condition  := and ("OR" and)*
//! and        := not ("AND" not)*
//! not        := "NOT" not | primary
//! primary    := "(" condition ")" | function | operand comparison
//! comparison := ("=" | "<>" | "<" | "<=" | ">" | ">=") operand
//!             | "BETWEEN" operand "AND" operand | "IN" "(" operand ("," operand)* ")"
//! function   := attribute_exists(path) | attribute_not_exists(path)
//!             | attribute_type(path, value) | begins_with(operand, operand)
//!             | contains(operand, operand)
//! operand    := path | value | size(path)
//! path       := name ("." name | "[" digits "]")*      name: identifier or #alias
//! update     := (SET set ("," set)* | REMOVE path ("," path)*
//!               | ADD path value ("," path value)* | DELETE path value (…)*)+
//! set        := path "=" term (("+" | "-") term)?
//! term       := path | value | if_not_exists(path, term) | list_append(term, term)
//! projection := path ("," path)*
//! ```

use crate::error::DynamoError;
use crate::reserved;
use crate::value::{AttrValue, Item, Number};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

mod eval;
mod lexer;
mod parser;
mod projection;
mod substitutions;
mod update;

pub use eval::same;
pub use parser::{parse_condition, parse_projection, parse_update};
pub use projection::project;
pub use substitutions::Substitutions;
pub use update::{apply, refuse_key_updates, updated_paths};

// What one part of the language takes from another.
use eval::{bad_path, order};
use lexer::{tokenize, Token};

fn invalid(message: impl Into<String>) -> DynamoError {
    DynamoError::validation(message)
}

fn syntax(kind: &str, near: &str) -> DynamoError {
    invalid(format!("Invalid {kind}: Syntax error; token: \"{near}\""))
}

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Name(String),
    Index(usize),
}

/// A document path: `a.b[2].c`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Step>);

/// The value at `steps` in `item`: a path, or the parent part of one.
fn resolve<'i>(steps: &[Step], item: &'i Item) -> Option<&'i AttrValue> {
    let (first, rest) = steps.split_first()?;
    let mut current = match first {
        Step::Name(n) => item.get(n)?,
        Step::Index(_) => return None,
    };
    for step in rest {
        current = match (step, current) {
            (Step::Name(n), AttrValue::M(m)) => m.get(n)?,
            (Step::Index(i), AttrValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

impl Path {
    pub fn top(name: &str) -> Self {
        Path(vec![Step::Name(name.to_owned())])
    }

    /// The value at this path in `item`.
    pub fn resolve<'i>(&self, item: &'i Item) -> Option<&'i AttrValue> {
        resolve(&self.0, item)
    }

    /// The attribute the path starts at.
    pub fn head(&self) -> &str {
        match self.0.first() {
            Some(Step::Name(name)) => name,
            _ => "",
        }
    }

    fn overlaps(&self, other: &Path) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }

    /// Whether the paths part where one goes on by name and the other by index
    /// (`a.b` and `a[0]`): no item can have both.
    fn conflicts(&self, other: &Path) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .find(|(a, b)| a != b)
            .is_some_and(|(a, b)| std::mem::discriminant(a) != std::mem::discriminant(b))
    }
}

/// DynamoDB refuses an update or projection naming one document path inside another
/// (`a`, `a.b`; or twice) or naming paths that conflict (`a.b`, `a[0]`).
fn distinct_paths<'p>(
    paths: impl IntoIterator<Item = &'p Path>,
    kind: &str,
) -> Result<(), DynamoError> {
    let paths: Vec<&Path> = paths.into_iter().collect();
    for (i, a) in paths.iter().enumerate() {
        if paths[..i].iter().any(|b| a.overlaps(b)) {
            return Err(invalid(format!(
                "Invalid {kind}: Two document paths overlap with each other; must remove or rewrite one of these paths"
            )));
        }
        if paths[..i].iter().any(|b| a.conflicts(b)) {
            return Err(invalid(format!(
                "Invalid {kind}: Two document paths conflict with each other; must remove or rewrite one of these paths"
            )));
        }
    }
    Ok(())
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttrValue),
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// DynamoDB's own form of a path in messages: `[a, b, [0]]`.
impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self
            .0
            .iter()
            .map(|s| match s {
                Step::Name(n) => n.clone(),
                Step::Index(i) => format!("[{i}]"),
            })
            .collect();
        write!(f, "[{}]", steps.join(", "))
    }
}

/// A condition (also a key condition or a filter).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// The right-hand side of a `SET` action.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Path(Path),
    Value(AttrValue),
    IfNotExists(Path, Box<Term>),
    ListAppend(Box<Term>, Box<Term>),
    Plus(Box<Term>, Box<Term>),
    Minus(Box<Term>, Box<Term>),
}

/// One action of an update expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(Path, Term),
    Remove(Path),
    Add(Path, AttrValue),
    Delete(Path, AttrValue),
}

impl Operand {
    fn paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Operand::Path(p) | Operand::Size(p) => out.push(p),
            Operand::Value(_) => {}
        }
    }
}

impl Cond {
    /// Every document path the condition reads.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Cond::Compare(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                a.paths(out);
                b.paths(out);
            }
            Cond::Between(a, b, c) => [a, b, c].iter().for_each(|o| o.paths(out)),
            Cond::In(a, list) => {
                a.paths(out);
                list.iter().for_each(|o| o.paths(out));
            }
            Cond::Exists(p) | Cond::NotExists(p) => out.push(p),
            Cond::Type(p, o) => {
                out.push(p);
                o.paths(out);
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
            Cond::Not(a) => a.collect_paths(out),
        }
    }
}

impl Term {
    fn paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Term::Path(p) => out.push(p),
            Term::Value(_) => {}
            Term::IfNotExists(p, t) => {
                out.push(p);
                t.paths(out);
            }
            Term::ListAppend(a, b) | Term::Plus(a, b) | Term::Minus(a, b) => {
                a.paths(out);
                b.paths(out);
            }
        }
    }
}

/// Every document path an update expression names: its targets and what it reads.
pub fn update_paths(actions: &[Action]) -> Vec<&Path> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            Action::Set(p, term) => {
                out.push(p);
                term.paths(&mut out);
            }
            Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => out.push(p),
        }
    }
    out
}

/// DynamoDB refuses a path that goes inside a key attribute (`pk.x`, `pk[0]`) in a
/// projection, a filter or an update: key attributes are scalars.
pub fn refuse_nested_key_paths<'p>(
    paths: impl IntoIterator<Item = &'p Path>,
    keys: &[&str],
) -> Result<(), DynamoError> {
    for path in paths {
        if let [Step::Name(head), _, ..] = path.0.as_slice() {
            if keys.contains(&head.as_str()) {
                return Err(invalid(format!(
                    "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: {head}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
