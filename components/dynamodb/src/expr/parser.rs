//! The recursive-descent parser into the AST, with DynamoDB's static rules and limits.

use super::*;

pub(super) struct Parser<'s> {
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
pub(super) const MAX_EXPRESSION_BYTES: usize = 4096;
/// How deep parentheses and `NOT`s may nest.
pub(super) const MAX_DEPTH: usize = 64;
/// DynamoDB's limit on the operands of one `IN`.
pub(super) const MAX_IN_OPERANDS: usize = 100;
/// DynamoDB's limit on the steps of one document path (`a.b[0].c` has four).
pub(super) const MAX_PATH_DEPTH: usize = 32;

pub(super) const FUNCTIONS: [&str; 8] = [
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
    pub(super) fn new(
        text: &str,
        subs: &'s Substitutions,
        kind: &'static str,
    ) -> Result<Self, DynamoError> {
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

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    pub(super) fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    /// The syntax error of the token just taken (stepping back onto it).
    pub(super) fn unexpected(&mut self) -> DynamoError {
        self.at = self.at.saturating_sub(1);
        self.error_here()
    }

    pub(super) fn error_here(&self) -> DynamoError {
        match self.peek() {
            Some(t) => syntax(self.kind, &t.text()),
            None => syntax(self.kind, "<EOF>"),
        }
    }

    pub(super) fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(x)) if *x == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, p: &str) -> Result<(), DynamoError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    pub(super) fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn done(&self) -> Result<(), DynamoError> {
        if self.at < self.tokens.len() {
            Err(self.error_here())
        } else {
            Ok(())
        }
    }

    /// A name written as itself in a path, which must not be a reserved word.
    pub(super) fn plain_name(&self, name: String) -> Result<String, DynamoError> {
        if reserved::is_reserved(&name) {
            return Err(invalid(format!(
                "Invalid {}: Attribute name is a reserved keyword; reserved keyword: {name}",
                self.kind
            )));
        }
        Ok(name)
    }

    pub(super) fn path(&mut self) -> Result<Path, DynamoError> {
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

    pub(super) fn function_name(&self) -> Option<String> {
        match (self.tokens.get(self.at), self.tokens.get(self.at + 1)) {
            (Some(Token::Ident(name)), Some(Token::Punct("("))) => Some(name.clone()),
            _ => None,
        }
    }

    pub(super) fn operand(&mut self) -> Result<Operand, DynamoError> {
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
    pub(super) fn distinct(&self, op: &str, a: &Operand, b: &Operand) -> Result<(), DynamoError> {
        match (a, b) {
            (Operand::Path(x), Operand::Path(y)) if x == y => Err(invalid(format!(
                "Invalid {}: The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {x}",
                self.kind
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn operand_type_error(&self, function: &str, v: &AttrValue) -> DynamoError {
        invalid(format!(
            "Invalid {}: Incorrect operand type for operator or function; operator or function: {function}, operand type: {}",
            self.kind,
            v.type_name()
        ))
    }

    /// BETWEEN with two literal bounds: DynamoDB wants one type, low ≤ high.
    pub(super) fn between_bounds(&self, low: &Operand, high: &Operand) -> Result<(), DynamoError> {
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

    pub(super) fn condition(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    pub(super) fn and(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    pub(super) fn not(&mut self) -> Result<Cond, DynamoError> {
        if self.eat_keyword("NOT") {
            let inner = self.nested(Self::not)?;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.primary()
    }

    /// Runs `parse` one nesting level deeper, refusing past [`MAX_DEPTH`].
    pub(super) fn nested<T>(
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

    pub(super) fn primary(&mut self) -> Result<Cond, DynamoError> {
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
    pub(super) fn comparison(&mut self) -> Result<Cond, DynamoError> {
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

    pub(super) fn term(&mut self) -> Result<Term, DynamoError> {
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

    pub(super) fn set_value(&mut self) -> Result<Term, DynamoError> {
        let left = self.term()?;
        if self.eat("+") {
            return Ok(Term::Plus(Box::new(left), Box::new(self.term()?)));
        }
        if self.eat("-") {
            return Ok(Term::Minus(Box::new(left), Box::new(self.term()?)));
        }
        Ok(left)
    }

    pub(super) fn value_alias(&mut self) -> Result<AttrValue, DynamoError> {
        match self.next() {
            Some(Token::Value(alias)) => self.subs.value(&alias),
            _ => Err(self.unexpected()),
        }
    }

    pub(super) fn update(&mut self) -> Result<Vec<Action>, DynamoError> {
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
