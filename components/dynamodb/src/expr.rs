//! DynamoDB's expression language: a tokenizer, a recursive-descent parser into an
//! AST (names and values substituted from `ExpressionAttributeNames` / `…Values` as
//! they are parsed), and evaluation against typed items.
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

fn invalid(message: impl Into<String>) -> DynamoError {
    DynamoError::validation(message)
}

fn syntax(kind: &str, near: &str) -> DynamoError {
    invalid(format!("Invalid {kind}: Syntax error; token: \"{near}\""))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Name(String),
    Value(String),
    Int(usize),
    Punct(&'static str),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Name(s) => format!("#{s}"),
            Token::Value(s) => format!(":{s}"),
            Token::Int(n) => n.to_string(),
            Token::Punct(p) => (*p).to_owned(),
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Token::Ident(s) if s.eq_ignore_ascii_case(word))
    }
}

fn tokenize(text: &str, kind: &str) -> Result<Vec<Token>, DynamoError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |start: usize| {
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        end
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = text.get(i..i + 2);
        if let Some(p) = ["<>", "<=", ">="].into_iter().find(|p| two == Some(*p)) {
            out.push(Token::Punct(p));
            i += 2;
            continue;
        }
        if let Some(p) = ["(", ")", "[", "]", ",", ".", "=", "<", ">", "+", "-"]
            .into_iter()
            .find(|p| p.as_bytes()[0] == c)
        {
            out.push(Token::Punct(p));
            i += 1;
            continue;
        }
        if c == b'#' || c == b':' {
            let end = word(i + 1);
            if end == i + 1 {
                return Err(syntax(kind, &text[i..i + 1]));
            }
            let name = text[i + 1..end].to_owned();
            out.push(if c == b'#' {
                Token::Name(name)
            } else {
                Token::Value(name)
            });
            i = end;
            continue;
        }
        if c.is_ascii_digit() {
            let mut end = i;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let n = text[i..end]
                .parse()
                .map_err(|_| syntax(kind, &text[i..end]))?;
            out.push(Token::Int(n));
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let end = word(i);
            out.push(Token::Ident(text[i..end].to_owned()));
            i = end;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or('?');
        return Err(syntax(kind, &ch.to_string()));
    }
    Ok(out)
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

fn note_used(used: &RefCell<Vec<String>>, alias: &str) {
    let mut used = used.borrow_mut();
    if !used.iter().any(|u| u == alias) {
        used.push(alias.to_owned());
    }
}

/// The substitutions of a request, with what the parsed expressions used of them.
#[derive(Debug)]
pub struct Substitutions {
    /// Alias → name, by alias: read from a JSON object, whose keys come in order.
    names: Vec<(String, String)>,
    values: BTreeMap<String, AttrValue>,
    /// The aliases used (a handful a request: a `Vec`, not a set's compiled tree).
    used_names: RefCell<Vec<String>>,
    used_values: RefCell<Vec<String>>,
}

impl Substitutions {
    /// Parses `ExpressionAttributeNames` and `ExpressionAttributeValues` of a request.
    pub fn from_request(body: &Value) -> Result<Self, DynamoError> {
        let mut names = Vec::new();
        if let Some(map) = body.get("ExpressionAttributeNames") {
            let map = map.as_object().ok_or_else(|| {
                DynamoError::serialization("ExpressionAttributeNames must be a map")
            })?;
            for (k, v) in map {
                let v = v.as_str().ok_or_else(|| {
                    DynamoError::serialization("ExpressionAttributeNames values must be strings")
                })?;
                let key = k.strip_prefix('#').ok_or_else(|| {
                    invalid(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                    ))
                })?;
                // Every key starts with `#`, so stripping it keeps the object's order.
                names.push((key.to_owned(), v.to_owned()));
            }
        }
        let mut values = BTreeMap::new();
        if let Some(map) = body.get("ExpressionAttributeValues") {
            let map = map.as_object().ok_or_else(|| {
                DynamoError::serialization("ExpressionAttributeValues must be a map")
            })?;
            for (k, v) in map {
                let key = k.strip_prefix(':').ok_or_else(|| {
                    invalid(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                    ))
                })?;
                values.insert(key.to_owned(), AttrValue::from_json(v)?);
            }
        }
        Ok(Self {
            names,
            values,
            used_names: RefCell::default(),
            used_values: RefCell::default(),
        })
    }

    fn name(&self, alias: &str) -> Result<String, DynamoError> {
        let name = self
            .names
            .binary_search_by(|(a, _)| a.as_str().cmp(alias))
            .ok()
            .and_then(|i| self.names.get(i))
            .map(|(_, name)| name)
            .ok_or_else(|| {
            invalid(format!(
                "Value provided in ExpressionAttributeNames unused in expressions or an expression attribute name used in the document path is not defined; attribute name: #{alias}"
            ))
        })?;
        note_used(&self.used_names, alias);
        Ok(name.clone())
    }

    fn value(&self, alias: &str) -> Result<AttrValue, DynamoError> {
        let value = self.values.get(alias).ok_or_else(|| {
            invalid(format!(
                "An expression attribute value used in expression is not defined; attribute value: :{alias}"
            ))
        })?;
        note_used(&self.used_values, alias);
        Ok(value.clone())
    }

    /// After parsing every expression of a request: substitutions nobody used are an
    /// error, as in DynamoDB.
    pub fn check_all_used(&self) -> Result<(), DynamoError> {
        let unused = |all: Vec<String>, used: &[String], sigil: &str| -> Vec<String> {
            all.into_iter()
                .filter(|k| !used.contains(k))
                .map(|k| format!("{sigil}{k}"))
                .collect()
        };
        let names = unused(
            self.names.iter().map(|(alias, _)| alias.clone()).collect(),
            &self.used_names.borrow(),
            "#",
        );
        if !names.is_empty() {
            return Err(invalid(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values = unused(
            self.values.keys().cloned().collect(),
            &self.used_values.borrow(),
            ":",
        );
        if !values.is_empty() {
            return Err(invalid(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }
}

struct Parser<'s> {
    tokens: Vec<Token>,
    at: usize,
    subs: &'s Substitutions,
    kind: &'static str,
    /// The token span `[open, after close)` of the last parenthesised condition, to
    /// spot `((…))`, which DynamoDB refuses as redundant.
    last_parens: Option<(usize, usize)>,
    /// Open parentheses and `NOT`s around the current token: bounded, so that no
    /// expression can exhaust the stack.
    depth: usize,
}

/// DynamoDB's limit on an expression's length.
const MAX_EXPRESSION_BYTES: usize = 4096;
/// How deep parentheses and `NOT`s may nest.
const MAX_DEPTH: usize = 64;
/// DynamoDB's limit on the operands of one `IN`.
const MAX_IN_OPERANDS: usize = 100;
/// DynamoDB's limit on the steps of one document path (`a.b[0].c` has four).
const MAX_PATH_DEPTH: usize = 32;

const FUNCTIONS: [&str; 8] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
];

impl<'s> Parser<'s> {
    fn new(text: &str, subs: &'s Substitutions, kind: &'static str) -> Result<Self, DynamoError> {
        if text.trim().is_empty() {
            return Err(invalid(format!(
                "Invalid {kind}: The expression can not be empty;"
            )));
        }
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(invalid(format!(
                "Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {}",
                text.len()
            )));
        }
        Ok(Self {
            tokens: tokenize(text, kind)?,
            at: 0,
            subs,
            kind,
            last_parens: None,
            depth: 0,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    /// The syntax error of the token just taken (stepping back onto it).
    fn unexpected(&mut self) -> DynamoError {
        self.at = self.at.saturating_sub(1);
        self.error_here()
    }

    fn error_here(&self) -> DynamoError {
        match self.peek() {
            Some(t) => syntax(self.kind, &t.text()),
            None => syntax(self.kind, "<EOF>"),
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(x)) if *x == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), DynamoError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> Result<(), DynamoError> {
        if self.at < self.tokens.len() {
            Err(self.error_here())
        } else {
            Ok(())
        }
    }

    /// A name written as itself in a path, which must not be a reserved word.
    fn plain_name(&self, name: String) -> Result<String, DynamoError> {
        if reserved::is_reserved(&name) {
            return Err(invalid(format!(
                "Invalid {}: Attribute name is a reserved keyword; reserved keyword: {name}",
                self.kind
            )));
        }
        Ok(name)
    }

    fn path(&mut self) -> Result<Path, DynamoError> {
        let first = match self.next() {
            Some(Token::Ident(name)) if !FUNCTIONS.contains(&name.as_str()) => {
                self.plain_name(name)?
            }
            Some(Token::Name(alias)) => self.subs.name(&alias)?,
            _ => {
                return Err(self.unexpected());
            }
        };
        let mut steps = vec![Step::Name(first)];
        loop {
            if steps.len() > MAX_PATH_DEPTH {
                return Err(invalid(format!(
                    "Invalid {}: The document path has too many nesting levels; nesting levels: {}",
                    self.kind,
                    steps.len()
                )));
            }
            if self.eat(".") {
                match self.next() {
                    Some(Token::Ident(name)) => steps.push(Step::Name(self.plain_name(name)?)),
                    Some(Token::Name(alias)) => steps.push(Step::Name(self.subs.name(&alias)?)),
                    _ => {
                        return Err(self.unexpected());
                    }
                }
            } else if self.eat("[") {
                match self.next() {
                    Some(Token::Int(n)) => steps.push(Step::Index(n)),
                    _ => {
                        return Err(self.unexpected());
                    }
                }
                self.expect("]")?;
            } else {
                return Ok(Path(steps));
            }
        }
    }

    fn function_name(&self) -> Option<String> {
        match (self.tokens.get(self.at), self.tokens.get(self.at + 1)) {
            (Some(Token::Ident(name)), Some(Token::Punct("("))) => Some(name.clone()),
            _ => None,
        }
    }

    fn operand(&mut self) -> Result<Operand, DynamoError> {
        if let Some(name) = self.function_name() {
            if name == "size" {
                self.at += 2;
                let path = self.path()?;
                self.expect(")")?;
                return Ok(Operand::Size(path));
            }
            return Err(invalid(format!(
                "Invalid {}: The function is not allowed to be used this way in an expression; function: {name}",
                self.kind
            )));
        }
        if self.eat("(") {
            let inner = self.nested(Self::operand)?;
            self.expect(")")?;
            return Ok(inner);
        }
        match self.peek() {
            Some(Token::Value(alias)) => {
                let alias = alias.clone();
                self.at += 1;
                Ok(Operand::Value(self.subs.value(&alias)?))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    /// DynamoDB's "distinct operands" rule: `a = a`, `begins_with(a, a)` are refused.
    fn distinct(&self, op: &str, a: &Operand, b: &Operand) -> Result<(), DynamoError> {
        match (a, b) {
            (Operand::Path(x), Operand::Path(y)) if x == y => Err(invalid(format!(
                "Invalid {}: The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {x}",
                self.kind
            ))),
            _ => Ok(()),
        }
    }

    fn operand_type_error(&self, function: &str, v: &AttrValue) -> DynamoError {
        invalid(format!(
            "Invalid {}: Incorrect operand type for operator or function; operator or function: {function}, operand type: {}",
            self.kind,
            v.type_name()
        ))
    }

    /// BETWEEN with two literal bounds: DynamoDB wants one type, low ≤ high.
    fn between_bounds(&self, low: &Operand, high: &Operand) -> Result<(), DynamoError> {
        let (Operand::Value(l), Operand::Value(h)) = (low, high) else {
            return Ok(());
        };
        if l.type_name() != h.type_name() {
            return Err(invalid(format!(
                "Invalid {}: The BETWEEN operator requires same data type for lower and upper bounds",
                self.kind
            )));
        }
        if order(l, h) == Some(std::cmp::Ordering::Greater) {
            return Err(invalid(format!(
                "Invalid {}: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                self.kind
            )));
        }
        Ok(())
    }

    fn condition(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, DynamoError> {
        if self.eat_keyword("NOT") {
            let inner = self.nested(Self::not)?;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.primary()
    }

    /// Runs `parse` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, DynamoError>,
    ) -> Result<T, DynamoError> {
        if self.depth == MAX_DEPTH {
            return Err(invalid(format!(
                "Invalid {}: The expression nests parentheses or NOT more than {MAX_DEPTH} deep",
                self.kind
            )));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Cond, DynamoError> {
        let open = self.at;
        if self.eat("(") {
            // A parenthesised condition, or else a comparison whose first operand is
            // parenthesised (`(a) = :v`): try the one, fall back to the other.
            let inner_start = self.at;
            let parsed = self.nested(|p| {
                let c = p.condition()?;
                p.expect(")")?;
                Ok(c)
            });
            match parsed {
                Ok(inner) => {
                    if self.last_parens == Some((inner_start, self.at - 1)) {
                        return Err(invalid(format!(
                            "Invalid {}: The expression has redundant parentheses;",
                            self.kind
                        )));
                    }
                    self.last_parens = Some((open, self.at));
                    return Ok(inner);
                }
                Err(e) => {
                    self.at = open;
                    if let Ok(cond) = self.comparison() {
                        return Ok(cond);
                    }
                    return Err(e);
                }
            }
        }
        if let Some(name) = self.function_name() {
            if name != "size" {
                self.at += 2;
                let cond = match name.as_str() {
                    "attribute_exists" => Cond::Exists(self.path()?),
                    "attribute_not_exists" => Cond::NotExists(self.path()?),
                    "attribute_type" => {
                        let path = self.path()?;
                        self.expect(",")?;
                        Cond::Type(path, self.operand()?)
                    }
                    "begins_with" | "contains" => {
                        let a = self.operand()?;
                        self.expect(",")?;
                        let b = self.operand()?;
                        self.distinct(&name, &a, &b)?;
                        if name == "begins_with" {
                            for operand in [&a, &b] {
                                if let Operand::Value(v) = operand {
                                    if !matches!(v, AttrValue::S(_) | AttrValue::B(_)) {
                                        return Err(self.operand_type_error(&name, v));
                                    }
                                }
                            }
                        }
                        if name == "contains" {
                            Cond::Contains(a, b)
                        } else {
                            Cond::BeginsWith(a, b)
                        }
                    }
                    other => {
                        return Err(invalid(format!(
                            "Invalid {}: Invalid function name; function: {other}",
                            self.kind
                        )))
                    }
                };
                self.expect(")")?;
                return Ok(cond);
            }
        }
        self.comparison()
    }

    /// `operand comparator operand`, `operand BETWEEN … AND …`, `operand IN (…)`.
    fn comparison(&mut self) -> Result<Cond, DynamoError> {
        let left = self.operand()?;
        let cmp = match self.next() {
            Some(Token::Punct("=")) => Cmp::Eq,
            Some(Token::Punct("<>")) => Cmp::Ne,
            Some(Token::Punct("<")) => Cmp::Lt,
            Some(Token::Punct("<=")) => Cmp::Le,
            Some(Token::Punct(">")) => Cmp::Gt,
            Some(Token::Punct(">=")) => Cmp::Ge,
            Some(t) if t.is_keyword("BETWEEN") => {
                let low = self.operand()?;
                if !self.eat_keyword("AND") {
                    return Err(self.error_here());
                }
                let high = self.operand()?;
                self.between_bounds(&low, &high)?;
                return Ok(Cond::Between(left, low, high));
            }
            Some(t) if t.is_keyword("IN") => {
                self.expect("(")?;
                let mut list = vec![self.operand()?];
                while self.eat(",") {
                    if list.len() == MAX_IN_OPERANDS {
                        return Err(invalid(format!(
                            "Invalid {}: The IN operator is provided with too many operands; number of operands: {}",
                            self.kind,
                            list.len() + 1
                        )));
                    }
                    list.push(self.operand()?);
                }
                self.expect(")")?;
                return Ok(Cond::In(left, list));
            }
            _ => {
                return Err(self.unexpected());
            }
        };
        let right = self.operand()?;
        self.distinct(cmp.symbol(), &left, &right)?;
        Ok(Cond::Compare(left, cmp, right))
    }

    fn term(&mut self) -> Result<Term, DynamoError> {
        if let Some(name) = self.function_name() {
            self.at += 2;
            let term = match name.as_str() {
                "if_not_exists" => {
                    let path = self.path()?;
                    self.expect(",")?;
                    Term::IfNotExists(path, Box::new(self.term()?))
                }
                "list_append" => {
                    let a = self.term()?;
                    self.expect(",")?;
                    Term::ListAppend(Box::new(a), Box::new(self.term()?))
                }
                other => {
                    return Err(invalid(format!(
                        "Invalid {}: The function is not allowed in an update expression; function: {other}",
                        self.kind
                    )))
                }
            };
            self.expect(")")?;
            return Ok(term);
        }
        match self.peek() {
            Some(Token::Value(alias)) => {
                let alias = alias.clone();
                self.at += 1;
                Ok(Term::Value(self.subs.value(&alias)?))
            }
            _ => Ok(Term::Path(self.path()?)),
        }
    }

    fn set_value(&mut self) -> Result<Term, DynamoError> {
        let left = self.term()?;
        if self.eat("+") {
            return Ok(Term::Plus(Box::new(left), Box::new(self.term()?)));
        }
        if self.eat("-") {
            return Ok(Term::Minus(Box::new(left), Box::new(self.term()?)));
        }
        Ok(left)
    }

    fn value_alias(&mut self) -> Result<AttrValue, DynamoError> {
        match self.next() {
            Some(Token::Value(alias)) => self.subs.value(&alias),
            _ => Err(self.unexpected()),
        }
    }

    fn update(&mut self) -> Result<Vec<Action>, DynamoError> {
        let mut actions = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        while self.peek().is_some() {
            let clause = match self.next() {
                Some(Token::Ident(word)) => word.to_ascii_uppercase(),
                _ => {
                    return Err(self.unexpected());
                }
            };
            if !["SET", "REMOVE", "ADD", "DELETE"].contains(&clause.as_str()) {
                return Err(self.unexpected());
            }
            if seen.contains(&clause) {
                return Err(invalid(format!(
                    "Invalid UpdateExpression: The \"{clause}\" section can only be used once in an update expression;"
                )));
            }
            seen.push(clause.clone());
            loop {
                let path = self.path()?;
                actions.push(match clause.as_str() {
                    "SET" => {
                        self.expect("=")?;
                        Action::Set(path, self.set_value()?)
                    }
                    "REMOVE" => Action::Remove(path),
                    "ADD" => Action::Add(path, self.value_alias()?),
                    _ => Action::Delete(path, self.value_alias()?),
                });
                if !self.eat(",") {
                    break;
                }
            }
        }
        let paths: Vec<&Path> = actions
            .iter()
            .map(|a| match a {
                Action::Set(p, _)
                | Action::Remove(p)
                | Action::Add(p, _)
                | Action::Delete(p, _) => p,
            })
            .collect();
        distinct_paths(paths, self.kind)?;
        Ok(actions)
    }
}

/// Parses a `ConditionExpression` / `FilterExpression` / `KeyConditionExpression`.
pub fn parse_condition(
    text: &str,
    subs: &Substitutions,
    kind: &'static str,
) -> Result<Cond, DynamoError> {
    let mut p = Parser::new(text, subs, kind)?;
    let cond = p.condition()?;
    p.done()?;
    Ok(cond)
}

/// Parses an `UpdateExpression`.
pub fn parse_update(text: &str, subs: &Substitutions) -> Result<Vec<Action>, DynamoError> {
    let mut p = Parser::new(text, subs, "UpdateExpression")?;
    let actions = p.update()?;
    p.done()?;
    Ok(actions)
}

/// Parses a `ProjectionExpression`.
pub fn parse_projection(text: &str, subs: &Substitutions) -> Result<Vec<Path>, DynamoError> {
    let mut p = Parser::new(text, subs, "ProjectionExpression")?;
    let mut paths = vec![p.path()?];
    while p.eat(",") {
        paths.push(p.path()?);
    }
    p.done()?;
    distinct_paths(&paths, "ProjectionExpression")?;
    Ok(paths)
}

fn value_of<'a>(operand: &'a Operand, item: &'a Item) -> Option<std::borrow::Cow<'a, AttrValue>> {
    use std::borrow::Cow;
    match operand {
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Path(p) => p.resolve(item).map(Cow::Borrowed),
        Operand::Size(p) => {
            let n = match p.resolve(item)? {
                AttrValue::S(s) => s.len(),
                AttrValue::B(b) => b.len(),
                AttrValue::Ss(s) => s.len(),
                AttrValue::Ns(s) => s.len(),
                AttrValue::Bs(s) => s.len(),
                AttrValue::L(l) => l.len(),
                AttrValue::M(m) => m.len(),
                _ => return None,
            };
            Number::parse(&n.to_string())
                .ok()
                .map(|n| Cow::Owned(AttrValue::N(n)))
        }
    }
}

/// DynamoDB's order, defined only between two numbers, two strings or two binaries.
fn order(a: &AttrValue, b: &AttrValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (AttrValue::N(x), AttrValue::N(y)) => Some(x.cmp(y)),
        (AttrValue::S(x), AttrValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttrValue::B(x), AttrValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality as DynamoDB compares: sets regardless of order.
pub fn same(a: &AttrValue, b: &AttrValue) -> bool {
    fn set_eq<T: PartialEq>(x: &[T], y: &[T]) -> bool {
        x.len() == y.len() && x.iter().all(|v| y.contains(v))
    }
    match (a, b) {
        (AttrValue::Ss(x), AttrValue::Ss(y)) => set_eq(x, y),
        (AttrValue::Ns(x), AttrValue::Ns(y)) => set_eq(x, y),
        (AttrValue::Bs(x), AttrValue::Bs(y)) => set_eq(x, y),
        (AttrValue::L(x), AttrValue::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (AttrValue::M(x), AttrValue::M(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

impl Cond {
    /// Whether the condition holds for `item` (an absent item is the empty item).
    pub fn holds(&self, item: &Item) -> bool {
        match self {
            Cond::Compare(a, cmp, b) => {
                let (Some(a), Some(b)) = (value_of(a, item), value_of(b, item)) else {
                    // A missing operand equals nothing, so it is unequal to anything.
                    return *cmp == Cmp::Ne;
                };
                match cmp {
                    Cmp::Eq => same(&a, &b),
                    Cmp::Ne => !same(&a, &b),
                    _ => order(&a, &b).is_some_and(|o| match cmp {
                        Cmp::Lt => o.is_lt(),
                        Cmp::Le => o.is_le(),
                        Cmp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    }),
                }
            }
            Cond::Between(x, low, high) => {
                let (Some(x), Some(low), Some(high)) =
                    (value_of(x, item), value_of(low, item), value_of(high, item))
                else {
                    return false;
                };
                order(&low, &x).is_some_and(|o| o.is_le())
                    && order(&x, &high).is_some_and(|o| o.is_le())
            }
            Cond::In(x, list) => value_of(x, item).is_some_and(|x| {
                list.iter()
                    .any(|o| value_of(o, item).is_some_and(|v| same(&x, &v)))
            }),
            Cond::Exists(p) => p.resolve(item).is_some(),
            Cond::NotExists(p) => p.resolve(item).is_none(),
            Cond::Type(p, t) => match (p.resolve(item), value_of(t, item)) {
                (Some(v), Some(t)) => matches!(&*t, AttrValue::S(name) if name == v.type_name()),
                _ => false,
            },
            Cond::BeginsWith(a, b) => match (value_of(a, item), value_of(b, item)) {
                (Some(a), Some(b)) => match (&*a, &*b) {
                    (AttrValue::S(x), AttrValue::S(y)) => x.starts_with(y.as_str()),
                    (AttrValue::B(x), AttrValue::B(y)) => x.starts_with(y),
                    _ => false,
                },
                _ => false,
            },
            Cond::Contains(a, b) => match (value_of(a, item), value_of(b, item)) {
                (Some(a), Some(b)) => match (&*a, &*b) {
                    (AttrValue::S(x), AttrValue::S(y)) => x.contains(y.as_str()),
                    (AttrValue::Ss(x), AttrValue::S(y)) => x.contains(y),
                    (AttrValue::Ns(x), AttrValue::N(y)) => x.contains(y),
                    (AttrValue::Bs(x), AttrValue::B(y)) => x.contains(y),
                    (AttrValue::L(x), y) => x.iter().any(|v| same(v, y)),
                    _ => false,
                },
                _ => false,
            },
            Cond::And(a, b) => a.holds(item) && b.holds(item),
            Cond::Or(a, b) => a.holds(item) || b.holds(item),
            Cond::Not(a) => !a.holds(item),
        }
    }
}

fn operand_type(op: &str, v: &AttrValue) -> DynamoError {
    invalid(format!(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {op}, operand type: {}",
        v.type_name()
    ))
}

fn missing_attribute() -> DynamoError {
    invalid("The provided expression refers to an attribute that does not exist in the item")
}

fn bad_path() -> DynamoError {
    invalid("The document path provided in the update expression is invalid for update")
}

impl Term {
    /// The value, computed from the item as it was before the update.
    fn eval(&self, item: &Item) -> Result<AttrValue, DynamoError> {
        Ok(match self {
            Term::Value(v) => v.clone(),
            Term::Path(p) => p.resolve(item).cloned().ok_or_else(missing_attribute)?,
            Term::IfNotExists(p, t) => match p.resolve(item) {
                Some(v) => v.clone(),
                None => t.eval(item)?,
            },
            Term::ListAppend(a, b) => match (a.eval(item)?, b.eval(item)?) {
                (AttrValue::L(mut x), AttrValue::L(y)) => {
                    x.extend(y);
                    AttrValue::L(x)
                }
                (AttrValue::L(_), other) | (other, _) => {
                    return Err(operand_type("list_append", &other))
                }
            },
            Term::Plus(a, b) | Term::Minus(a, b) => {
                let op = if matches!(self, Term::Plus(..)) {
                    "+"
                } else {
                    "-"
                };
                match (a.eval(item)?, b.eval(item)?) {
                    (AttrValue::N(x), AttrValue::N(y)) => AttrValue::N(if op == "+" {
                        x.add(&y)?
                    } else {
                        x.add(&y.negated())?
                    }),
                    (AttrValue::N(_), other) | (other, _) => return Err(operand_type(op, &other)),
                }
            }
        })
    }
}

/// The value at `steps` below `slot`, creating nothing: the parent must exist.
fn slot_mut<'a>(item: &'a mut Item, steps: &[Step]) -> Result<&'a mut AttrValue, DynamoError> {
    let Some((Step::Name(first), rest)) = steps.split_first() else {
        return Err(bad_path());
    };
    let mut current = item.get_mut(first).ok_or_else(bad_path)?;
    for step in rest {
        current = match (step, current) {
            (Step::Name(n), AttrValue::M(m)) => m.get_mut(n).ok_or_else(bad_path)?,
            (Step::Index(i), AttrValue::L(l)) => l.get_mut(*i).ok_or_else(bad_path)?,
            _ => return Err(bad_path()),
        };
    }
    Ok(current)
}

fn set_path(item: &mut Item, path: &Path, value: AttrValue) -> Result<(), DynamoError> {
    let (last, parent) = match path.0.split_last() {
        Some(split) => split,
        None => return Err(bad_path()),
    };
    if parent.is_empty() {
        let Step::Name(name) = last else {
            return Err(bad_path());
        };
        item.insert(name.clone(), value);
        return Ok(());
    }
    match (last, slot_mut(item, parent)?) {
        (Step::Name(n), AttrValue::M(m)) => {
            m.insert(n.clone(), value);
        }
        // Past the end appends, as in DynamoDB.
        (Step::Index(i), AttrValue::L(l)) => match l.get_mut(*i) {
            Some(slot) => *slot = value,
            None => l.push(value),
        },
        _ => return Err(bad_path()),
    }
    Ok(())
}

fn remove_path(item: &mut Item, path: &Path) -> Result<(), DynamoError> {
    let (last, parent) = match path.0.split_last() {
        Some(split) => split,
        None => return Err(bad_path()),
    };
    if parent.is_empty() {
        if let Step::Name(name) = last {
            item.remove(name);
        }
        return Ok(());
    }
    // As for SET, the parent must be there and be a map (a list for an index): only
    // the last step may be missing.
    match (last, slot_mut(item, parent)?) {
        (Step::Name(n), AttrValue::M(m)) => {
            m.remove(n);
        }
        (Step::Index(i), AttrValue::L(l)) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(bad_path()),
    }
    Ok(())
}

/// Whether `path`'s parent is in `item` as a container its last step can address:
/// DynamoDB refuses any update action on a path whose parent is not.
fn check_parent(item: &Item, path: &Path) -> Result<(), DynamoError> {
    let Some((last, parent)) = path.0.split_last() else {
        return Err(bad_path());
    };
    if parent.is_empty() {
        return Ok(());
    }
    match (last, resolve(parent, item)) {
        (Step::Name(_), Some(AttrValue::M(_))) | (Step::Index(_), Some(AttrValue::L(_))) => Ok(()),
        _ => Err(bad_path()),
    }
}

fn wrong_data_type() -> DynamoError {
    invalid("An operand in the update expression has an incorrect data type")
}

fn add_to(current: Option<&AttrValue>, value: &AttrValue) -> Result<AttrValue, DynamoError> {
    fn union<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        let mut out = a.to_vec();
        out.extend(b.iter().filter(|v| !a.contains(v)).cloned());
        out
    }
    Ok(match (current, value) {
        (None, AttrValue::N(_) | AttrValue::Ss(_) | AttrValue::Ns(_) | AttrValue::Bs(_)) => {
            value.clone()
        }
        (Some(AttrValue::N(a)), AttrValue::N(b)) => AttrValue::N(a.add(b)?),
        (Some(AttrValue::Ss(a)), AttrValue::Ss(b)) => AttrValue::Ss(union(a, b)),
        (Some(AttrValue::Ns(a)), AttrValue::Ns(b)) => AttrValue::Ns(union(a, b)),
        (Some(AttrValue::Bs(a)), AttrValue::Bs(b)) => AttrValue::Bs(union(a, b)),
        _ => return Err(wrong_data_type()),
    })
}

/// `None` when nothing is left of the set.
fn delete_from(current: &AttrValue, value: &AttrValue) -> Result<Option<AttrValue>, DynamoError> {
    fn minus<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|v| !b.contains(v)).cloned().collect()
    }
    let left = match (current, value) {
        (AttrValue::Ss(a), AttrValue::Ss(b)) => AttrValue::Ss(minus(a, b)),
        (AttrValue::Ns(a), AttrValue::Ns(b)) => AttrValue::Ns(minus(a, b)),
        (AttrValue::Bs(a), AttrValue::Bs(b)) => AttrValue::Bs(minus(a, b)),
        _ => return Err(wrong_data_type()),
    };
    let empty = matches!(&left, AttrValue::Ss(v) if v.is_empty())
        || matches!(&left, AttrValue::Ns(v) if v.is_empty())
        || matches!(&left, AttrValue::Bs(v) if v.is_empty());
    Ok((!empty).then_some(left))
}

/// The paths an update changes (for `UPDATED_OLD` / `UPDATED_NEW`).
pub fn updated_paths(actions: &[Action]) -> Vec<Path> {
    actions
        .iter()
        .map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => {
                p.clone()
            }
        })
        .collect()
}

/// Applies `actions` to `item`: every `SET` value is computed from the item as it was,
/// then the actions change it in order. Whether they may touch the key attributes is
/// [`refuse_key_updates`]'s to say, before the item is read.
pub fn apply(item: &Item, actions: &[Action]) -> Result<Item, DynamoError> {
    let values = actions
        .iter()
        .map(|a| match a {
            Action::Set(_, term) => term.eval(item).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = item.clone();
    for (action, value) in actions.iter().zip(values) {
        match action {
            Action::Set(path, _) => {
                if let Some(value) = value {
                    set_path(&mut out, path, value)?;
                }
            }
            Action::Remove(path) => remove_path(&mut out, path)?,
            Action::Add(path, value) => {
                let sum = add_to(path.resolve(&out), value)?;
                set_path(&mut out, path, sum)?;
            }
            Action::Delete(path, value) => {
                if !matches!(
                    value,
                    AttrValue::Ss(_) | AttrValue::Ns(_) | AttrValue::Bs(_)
                ) {
                    return Err(wrong_data_type());
                }
                check_parent(&out, path)?;
                if let Some(current) = path.resolve(&out).cloned() {
                    match delete_from(&current, value)? {
                        Some(left) => set_path(&mut out, path, left)?,
                        None => remove_path(&mut out, path)?,
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Refuses actions on a key attribute (`keys`): DynamoDB checks this before it reads
/// the item, so it is a `ValidationException` whatever the item and the condition.
pub fn refuse_key_updates(actions: &[Action], keys: &[&str]) -> Result<(), DynamoError> {
    for path in updated_paths(actions) {
        if let Some(Step::Name(top)) = path.0.first() {
            if keys.contains(&top.as_str()) {
                return Err(invalid(format!(
                    "One or more parameter values were invalid: Cannot update attribute {top}. This attribute is part of the key"
                )));
            }
        }
    }
    Ok(())
}

/// The item holding only `paths` of `item` (a projection).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        if let Some(value) = path.resolve(item) {
            insert_projected(&mut out, &path.0, value.clone());
        }
    }
    out
}

fn insert_projected(out: &mut BTreeMap<String, AttrValue>, steps: &[Step], value: AttrValue) {
    let Some((Step::Name(first), rest)) = steps.split_first() else {
        return;
    };
    if rest.is_empty() {
        out.insert(first.clone(), value);
        return;
    }
    let slot = out.entry(first.clone()).or_insert_with(|| match rest[0] {
        Step::Name(_) => AttrValue::M(BTreeMap::new()),
        Step::Index(_) => AttrValue::L(Vec::new()),
    });
    insert_nested(slot, rest, value);
}

fn insert_nested(slot: &mut AttrValue, steps: &[Step], value: AttrValue) {
    match (slot, steps.first()) {
        (AttrValue::M(m), Some(Step::Name(_))) => insert_projected(m, steps, value),
        (AttrValue::L(l), Some(Step::Index(_))) => {
            // Projected list elements keep their order, not their indexes.
            if steps.len() == 1 {
                l.push(value);
            } else {
                let mut inner = match steps[1] {
                    Step::Name(_) => AttrValue::M(BTreeMap::new()),
                    Step::Index(_) => AttrValue::L(Vec::new()),
                };
                insert_nested(&mut inner, &steps[1..], value);
                l.push(inner);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::json;

    fn subs(names: Value, values: Value) -> Substitutions {
        Substitutions::from_request(&json!({
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }))
        .unwrap()
    }

    fn movie() -> Item {
        item_from_json(&json!({
            "year": {"N": "2013"}, "title": {"S": "Rush"},
            "info": {"M": {
                "rating": {"N": "8.3"}, "genres": {"SS": ["Action", "Drama"]},
                "actors": {"L": [{"S": "Daniel Bruhl"}, {"S": "Chris Hemsworth"}]},
            }},
        }))
        .unwrap()
    }

    fn holds(text: &str, values: Value) -> bool {
        let s = subs(json!({"#yr": "year", "#i": "info"}), values);
        parse_condition(text, &s, "ConditionExpression")
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .holds(&movie())
    }

    #[test]
    fn conditions_evaluate_like_dynamodb() {
        let v = json!({
            ":y": {"N": "2013"}, ":lo": {"N": "2000"}, ":hi": {"N": "2020.5"},
            ":t": {"S": "Ru"}, ":r": {"N": "8"}, ":g": {"S": "Drama"}, ":a": {"S": "Daniel Bruhl"},
            ":ty": {"S": "SS"}, ":two": {"N": "2"}, ":s": {"S": "2013"},
        });
        for (text, want) in [
            ("#yr = :y", true),
            ("#yr = :s", false),
            ("#yr <> :s", true),
            ("#yr BETWEEN :lo AND :hi", true),
            ("begins_with(title, :t)", true),
            ("#i.rating > :r AND contains(#i.genres, :g)", true),
            ("contains(#i.actors, :a) AND #i.actors[1] <> :a", true),
            ("attribute_type(#i.genres, :ty)", true),
            ("size(#i.actors) = :two", true),
            (
                "attribute_exists(#i.rating) AND attribute_not_exists(#i.plot)",
                true,
            ),
            ("NOT #yr IN (:lo, :hi)", true),
            ("#yr IN (:lo, :y)", true),
            ("#yr < :s", false),
            (
                "(#yr = :lo OR #yr = :y) AND NOT attribute_exists(nothing)",
                true,
            ),
            ("#yr = :lo OR #yr = :hi AND #yr = :y", false),
            ("nothing <> :y", true),
            ("nothing = :y", false),
            ("nothing < :y OR nothing >= :y", false),
        ] {
            assert_eq!(holds(text, v.clone()), want, "{text}");
        }
    }

    #[test]
    fn malformed_expressions_and_substitutions_are_validation_errors() {
        let s = subs(json!({"#yr": "year"}), json!({":y": {"N": "1"}}));
        for bad in [
            "#yr =",
            "#yr = :y AND",
            "#nope = :y",
            "#yr = :missing",
            "year == :y",
            "begins_with(#yr)",
            "frobnicate(#yr)",
            "#yr = :y)",
            "",
            "#yr @ :y",
        ] {
            let e = parse_condition(bad, &s, "ConditionExpression").unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Validation, "{bad}");
        }
        let s = subs(json!({"#yr": "year", "#x": "x"}), json!({":y": {"N": "1"}}));
        parse_condition("#yr = :y", &s, "ConditionExpression").unwrap();
        let unused = s.check_all_used().unwrap_err();
        assert!(unused.message.contains("#x"), "{unused}");
    }

    #[test]
    fn conditions_follow_dynamodbs_static_rules() {
        let s = subs(
            json!({}),
            json!({":n": {"N": "1"}, ":five": {"N": "5"}, ":s": {"S": "x"}}),
        );
        let parse = |text: &str| parse_condition(text, &s, "FilterExpression");
        for good in [
            "(a = :n)",
            "(a) = :n",
            "a = (:n)",
            "((a = :n) OR b = :n)",
            "(a = :n) AND (b = :n)",
            "NOT (a = :n)",
            "size(a) = size(a)",
            "a BETWEEN :n AND :five",
            "a BETWEEN :n AND :n",
            "begins_with(a, :s)",
        ] {
            assert!(parse(good).is_ok(), "{good}: {:?}", parse(good).err());
        }
        for (bad, why) in [
            ("((a = :n))", "redundant parentheses"),
            ("NOT ((a = :n))", "redundant parentheses"),
            ("a = a", "distinct"),
            ("begins_with(a, a)", "distinct"),
            ("a.b[1] <> a.b[1]", "first operand: [a, b, [1]]"),
            ("begins_with(a, :n)", "operand type: N"),
            ("a BETWEEN :five AND :n", "upper bound"),
            ("a BETWEEN :n AND :s", "same data type"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn expressions_too_long_or_too_deep_are_refused_without_exhausting_the_stack() {
        let s = subs(json!({}), json!({":n": {"N": "1"}}));
        let long = format!("a = :n{}", " OR a = :n".repeat(500));
        let e = parse_condition(&long, &s, "FilterExpression").unwrap_err();
        assert!(e.message.contains("maximum allowed size"), "{}", e.message);
        for deep in [
            format!("{}a = :n{}", "(".repeat(2000), ")".repeat(2000)),
            format!("{}a = :n", "NOT ".repeat(1000)),
            format!("{}a{} = :n", "(".repeat(2000), ")".repeat(2000)),
        ] {
            let e = parse_condition(&deep, &s, "FilterExpression").unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Validation);
        }
        let fine = format!("{}a = :n", "NOT ".repeat(60));
        assert!(parse_condition(&fine, &s, "FilterExpression").is_ok());
    }

    #[test]
    fn update_expressions_parse_into_actions_and_refuse_overlaps() {
        let s = subs(
            json!({"#i": "info"}),
            json!({":r": {"N": "5.5"}, ":p": {"S": "x"}, ":one": {"N": "1"}, ":l": {"L": []}, ":g": {"SS": ["a"]}}),
        );
        let actions = parse_update(
            "SET #i.rating = :r, #i.plot = :p, n = if_not_exists(n, :one) + :one, l = list_append(l, :l) REMOVE #i.actors[0] ADD c :one DELETE #i.genres :g",
            &s,
        )
        .unwrap();
        assert_eq!(actions.len(), 7);
        assert!(matches!(&actions[2], Action::Set(_, Term::Plus(_, _))));
        assert!(parse_update("SET a = :one, a.b = :one", &s).is_err());
        assert!(parse_update("SET a = :one SET b = :one", &s).is_err());
        assert!(parse_update("PUT a = :one", &s).is_err());
    }

    fn updated(text: &str, values: Value) -> Result<Value, DynamoError> {
        let s = subs(json!({"#i": "info"}), values);
        let actions = parse_update(text, &s)?;
        let keys = ["year", "title"];
        refuse_key_updates(&actions, &keys)?;
        apply(&movie(), &actions).map(|i| crate::value::item_to_json(&i))
    }

    #[test]
    fn updates_apply_like_the_getting_started_guide() {
        let got = updated(
            "SET #i.rating = #i.rating + :val, #i.plot = :p REMOVE #i.actors[0]",
            json!({":val": {"N": "1.2"}, ":p": {"S": "Everything happens all at once."}}),
        )
        .unwrap();
        assert_eq!(got["info"]["M"]["rating"], json!({"N": "9.5"}));
        assert_eq!(
            got["info"]["M"]["plot"],
            json!({"S": "Everything happens all at once."})
        );
        assert_eq!(
            got["info"]["M"]["actors"],
            json!({"L": [{"S": "Chris Hemsworth"}]})
        );
        let counted = updated(
            "SET n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD #i.genres :g, c :one DELETE #i.genres :drop",
            json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":l": {"L": [{"S": "x"}]},
                   ":g": {"SS": ["Sport"]}, ":drop": {"SS": ["Action"]}}),
        );
        // ADD and DELETE of one set in one expression overlap: refused, as DynamoDB does.
        assert!(counted.is_err());
        let counted = updated(
            "SET n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD c :one, #i.genres :g",
            json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":l": {"L": [{"S": "x"}]},
                   ":g": {"SS": ["Sport"]}}),
        )
        .unwrap();
        assert_eq!(counted["n"], json!({"N": "1"}));
        assert_eq!(counted["c"], json!({"N": "1"}));
        assert_eq!(counted["l"], json!({"L": [{"S": "x"}]}));
        assert_eq!(
            counted["info"]["M"]["genres"],
            json!({"SS": ["Action", "Drama", "Sport"]})
        );
        let emptied = updated(
            "DELETE #i.genres :g",
            json!({":g": {"SS": ["Action", "Drama"]}}),
        )
        .unwrap();
        assert!(emptied["info"]["M"].get("genres").is_none());
    }

    #[test]
    fn updates_that_dynamodb_refuses_are_refused() {
        for (text, values) in [
            ("SET #i.rating = #i.rating + :s", json!({":s": {"S": "x"}})),
            ("SET a = nothing", json!({})),
            ("SET missing.deep = :s", json!({":s": {"S": "x"}})),
            ("SET year = :s", json!({":s": {"S": "x"}})),
            ("ADD title :s", json!({":s": {"S": "x"}})),
            ("ADD #i.rating :s", json!({":s": {"S": "x"}})),
        ] {
            let e = updated(text, values).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Validation, "{text}: {e}");
        }
    }

    #[test]
    fn projections_refuse_overlapping_and_conflicting_paths() {
        let s = subs(json!({"#a": "a", "#b": "a"}), json!({}));
        for bad in [
            "a, a",
            "#a[2], #b[2]",
            "a.b, a",
            "a.b, a[0]",
            "a[0].x, a[0][1]",
        ] {
            let err = parse_projection(bad, &s).unwrap_err();
            assert_eq!(err.kind, crate::error::Kind::Validation, "{bad}");
        }
        for good in ["a.b, a.c", "a[0], a[1]", "a, b"] {
            assert!(parse_projection(good, &s).is_ok(), "{good}");
        }
    }

    #[test]
    fn projections_keep_only_the_named_paths() {
        let s = subs(json!({"#i": "info"}), json!({}));
        let paths = parse_projection("title, #i.rating, #i.actors[1]", &s).unwrap();
        let got = crate::value::item_to_json(&project(&movie(), &paths));
        assert_eq!(
            got,
            json!({"title": {"S": "Rush"}, "info": {"M": {"rating": {"N": "8.3"}, "actors": {"L": [{"S": "Chris Hemsworth"}]}}}})
        );
    }
}
