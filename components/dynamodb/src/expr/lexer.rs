//! The tokenizer: an expression's text as tokens.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Ident(String),
    Name(String),
    Value(String),
    Int(usize),
    Punct(&'static str),
}

impl Token {
    pub(super) fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Name(s) => format!("#{s}"),
            Token::Value(s) => format!(":{s}"),
            Token::Int(n) => n.to_string(),
            Token::Punct(p) => (*p).to_owned(),
        }
    }

    pub(super) fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Token::Ident(s) if s.eq_ignore_ascii_case(word))
    }
}

pub(super) fn tokenize(text: &str, kind: &str) -> Result<Vec<Token>, DynamoError> {
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
