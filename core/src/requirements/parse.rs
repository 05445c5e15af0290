//! The lexer and recursive-descent parser of the requirements language; the grammar and the token rules are
//! written down in the parent module's documentation.

use super::{CompareOp, Comparison, Number, Property, Requirement, Subject, Value};

/// The deepest nesting of parentheses and `not` accepted. Generous for people, and it bounds the recursion of
/// the parser, the evaluator, the printer and `Drop` on expressions that arrive over the network.
pub const MAX_NESTING: usize = 100;

/// Text quoted back in an error is cut to this many characters, so that a huge request gives a short message.
const QUOTE_LIMIT: usize = 40;

/// Why a requirements expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based character (not byte) position; the end of input is one past the last character.
    pub position: usize,
    pub expected: String,
    pub found: String,
}

/// Parses a `Requirements` expression.
pub fn parse(text: &str) -> Result<Requirement, ParseError> {
    let mut parser = Parser { lexer: Lexer::new(text), depth: 0 };
    let requirement = parser.or(None)?;
    let token = parser.lexer.next()?;
    if token.kind != Kind::End {
        return Err(token.unexpected("'and', 'or' or end of input"));
    }
    Ok(requirement)
}

#[derive(Debug, PartialEq)]
enum Kind {
    Word,
    Str(String),
    Num(Number),
    Op(CompareOp),
    Open,
    Close,
    Other,
    End,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    /// 1-based character position of the token's first character.
    position: usize,
    /// The token as written.
    text: String,
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    fn describe(&self) -> String {
        match self.kind {
            Kind::End => "end of input".to_owned(),
            Kind::Str(_) => format!("string {}", shorten(&self.text)),
            Kind::Other => self.text.chars().map(show_char).collect(),
            _ => format!("'{}'", shorten(&self.text)),
        }
    }

    fn unexpected(&self, expected: impl Into<String>) -> ParseError {
        ParseError { position: self.position, expected: expected.into(), found: self.describe() }
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Quotes a character for a message; control characters are escaped so that the message stays one clean line.
fn show_char(c: char) -> String {
    if c.is_control() {
        format!("'{}'", c.escape_debug())
    } else {
        format!("'{c}'")
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// Characters that glue onto a number and make it malformed rather than ending it.
fn sticks_to_number(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    peeked: Option<Token>,
}

impl Lexer {
    fn new(text: &str) -> Lexer {
        Lexer { chars: text.chars().collect(), at: 0, peeked: None }
    }

    fn peek(&mut self) -> Result<&Token, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan()?);
        }
        Ok(self.peeked.as_ref().expect("filled just above"))
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.scan(),
        }
    }

    fn char_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).copied()
    }

    /// Describes the character at a 1-based position, for errors that point inside a word.
    fn describe_char(&self, position: usize) -> String {
        match self.char_at(position - 1) {
            None => "end of input".to_owned(),
            Some(c) if c.is_whitespace() => "white space".to_owned(),
            Some(c) => show_char(c),
        }
    }

    fn text(&self, start: usize) -> String {
        self.chars[start..self.at].iter().collect()
    }

    fn token(&self, kind: Kind, start: usize) -> Token {
        Token { kind, position: start + 1, text: self.text(start) }
    }

    fn scan(&mut self) -> Result<Token, ParseError> {
        while self.char_at(self.at).is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        let start = self.at;
        let Some(c) = self.char_at(start) else {
            return Ok(self.token(Kind::End, start));
        };
        let next = self.char_at(start + 1);
        let (kind, length) = match (c, next) {
            ('(', _) => (Kind::Open, 1),
            (')', _) => (Kind::Close, 1),
            ('=', _) => (Kind::Op(CompareOp::Eq), 1),
            ('!', Some('=')) => (Kind::Op(CompareOp::Ne), 2),
            ('>', Some('=')) => (Kind::Op(CompareOp::Ge), 2),
            ('>', _) => (Kind::Op(CompareOp::Gt), 1),
            ('<', Some('=')) => (Kind::Op(CompareOp::Le), 2),
            ('<', _) => (Kind::Op(CompareOp::Lt), 1),
            (':', Some('=')) => (Kind::Op(CompareOp::Contains), 2),
            ('\'', _) => return self.string(start),
            ('0'..='9', _) | ('+' | '-', Some('0'..='9')) => return self.number(start),
            (c, _) if is_word_start(c) => return Ok(self.word(start)),
            _ => (Kind::Other, 1),
        };
        self.at += length;
        Ok(self.token(kind, start))
    }

    fn word(&mut self, start: usize) -> Token {
        self.at = start + 1;
        while let Some(c) = self.char_at(self.at) {
            let continues = match c {
                ':' => self.char_at(self.at + 1) != Some('='),
                '_' | '-' | '.' => true,
                c => c.is_alphanumeric(),
            };
            if !continues {
                break;
            }
            self.at += 1;
        }
        self.token(Kind::Word, start)
    }

    fn string(&mut self, start: usize) -> Result<Token, ParseError> {
        let mut value = String::new();
        self.at = start + 1;
        loop {
            match self.char_at(self.at) {
                None => {
                    return Err(ParseError {
                        position: start + 1,
                        expected: "a closing quote for the string that starts here".to_owned(),
                        found: "end of input".to_owned(),
                    })
                }
                Some('\'') if self.char_at(self.at + 1) == Some('\'') => {
                    value.push('\'');
                    self.at += 2;
                }
                Some('\'') => {
                    self.at += 1;
                    return Ok(self.token(Kind::Str(value), start));
                }
                Some(c) => {
                    value.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn number(&mut self, start: usize) -> Result<Token, ParseError> {
        let digit = |lexer: &Lexer, index: usize| lexer.char_at(index).is_some_and(|c| c.is_ascii_digit());
        self.at = start;
        if matches!(self.char_at(self.at), Some('+' | '-')) {
            self.at += 1;
        }
        while digit(self, self.at) {
            self.at += 1;
        }
        if self.char_at(self.at) == Some('.') && digit(self, self.at + 1) {
            self.at += 1;
            while digit(self, self.at) {
                self.at += 1;
            }
        }
        if matches!(self.char_at(self.at), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.char_at(self.at + 1), Some('+' | '-')));
            if digit(self, self.at + 1 + sign) {
                self.at += 1 + sign;
                while digit(self, self.at) {
                    self.at += 1;
                }
            }
        }
        let well_formed = !self.char_at(self.at).is_some_and(sticks_to_number);
        while self.char_at(self.at).is_some_and(sticks_to_number) {
            self.at += 1;
        }
        let text = self.text(start);
        match Number::new(&text).filter(|_| well_formed) {
            Some(number) => Ok(Token { kind: Kind::Num(number), position: start + 1, text }),
            None => Err(ParseError {
                position: start + 1,
                expected: "a number (text goes in single quotes)".to_owned(),
                found: format!("'{}'", shorten(&text)),
            }),
        }
    }
}

struct Parser {
    lexer: Lexer,
    depth: usize,
}

impl Parser {
    /// `after` names the token just consumed, for the message when no term follows it.
    fn or(&mut self, after: Option<&str>) -> Result<Requirement, ParseError> {
        let mut terms = vec![self.and(after)?];
        while self.lexer.peek()?.is_keyword("or") {
            let keyword = self.lexer.next()?;
            terms.push(self.and(Some(&keyword.text))?);
        }
        Ok(group(terms, Requirement::Or))
    }

    fn and(&mut self, after: Option<&str>) -> Result<Requirement, ParseError> {
        let mut terms = vec![self.unary(after)?];
        while self.lexer.peek()?.is_keyword("and") {
            let keyword = self.lexer.next()?;
            terms.push(self.unary(Some(&keyword.text))?);
        }
        Ok(group(terms, Requirement::And))
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Requirement, ParseError> {
        let token = self.lexer.next()?;
        if token.is_keyword("not") {
            let inner = self.nested(&token, |parser| parser.unary(Some(&token.text)))?;
            return Ok(Requirement::Not(Box::new(inner)));
        }
        match token.kind {
            Kind::Open => {
                let inner = self.nested(&token, |parser| parser.or(Some("(")))?;
                let close = self.lexer.next()?;
                if close.kind != Kind::Close {
                    let expected = format!("'and', 'or' or ')' to close the '(' at position {}", token.position);
                    return Err(close.unexpected(expected));
                }
                Ok(inner)
            }
            Kind::Word if !token.is_keyword("and") && !token.is_keyword("or") => {
                self.comparison(&token).map(Requirement::Compare)
            }
            _ => Err(token.unexpected(match after {
                None => "a comparison, 'not' or '('".to_owned(),
                Some(after) => format!("a comparison, 'not' or '(' after '{after}'"),
            })),
        }
    }

    fn nested(
        &mut self,
        token: &Token,
        parse: impl FnOnce(&mut Parser) -> Result<Requirement, ParseError>,
    ) -> Result<Requirement, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(ParseError {
                position: token.position,
                expected: format!("at most {MAX_NESTING} levels of parentheses and 'not'"),
                found: format!("'{}' at level {}", token.text, MAX_NESTING + 1),
            });
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn comparison(&mut self, subject_token: &Token) -> Result<Comparison, ParseError> {
        let subject = self.subject(subject_token)?;
        let op_token = self.lexer.next()?;
        let Kind::Op(op) = op_token.kind else {
            let expected =
                format!("a comparison operator (=, !=, >, >=, <, <=, :=) after '{}'", shorten(&subject_token.text));
            return Err(op_token.unexpected(expected));
        };
        let value_token = self.lexer.next()?;
        let value = match value_token.kind {
            Kind::Str(text) => Value::Text(text),
            Kind::Num(number) => Value::Number(number),
            _ => return Err(value_token.unexpected(format!("a value after '{}'", op.symbol()))),
        };
        Ok(Comparison { subject, op, value })
    }

    fn subject(&self, token: &Token) -> Result<Subject, ParseError> {
        let word = token.text.as_str();
        if let Some(key) = strip_prefix_ignoring_case(word, "tag:") {
            if key.is_empty() {
                return Err(self.nothing_after(token, "a tag key after 'tag:'", "tag:".len()));
            }
            return Ok(Subject::Tag(key.to_owned()));
        }
        if let Some(name) = strip_prefix_ignoring_case(word, "server:") {
            if name.is_empty() {
                return Err(self.nothing_after(token, "a server property after 'server:'", "server:".len()));
            }
            return Property::from_name(name).map(Subject::Server).ok_or_else(|| ParseError {
                position: token.position + "server:".len(),
                expected: "a known server property".to_owned(),
                found: format!("unknown property '{}'", shorten(name)),
            });
        }
        if word.contains(':') {
            return Err(token.unexpected("'tag:' or 'server:' before a name that holds a ':'"));
        }
        Ok(Subject::Tag(word.to_owned()))
    }

    /// A prefix with nothing after it: point just past the prefix (prefixes are ASCII, so bytes are characters).
    fn nothing_after(&self, token: &Token, expected: &str, prefix_length: usize) -> ParseError {
        let position = token.position + prefix_length;
        ParseError { position, expected: expected.to_owned(), found: self.lexer.describe_char(position) }
    }
}

fn strip_prefix_ignoring_case<'a>(word: &'a str, prefix: &str) -> Option<&'a str> {
    let head = word.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &word[prefix.len()..])
}

fn group(mut terms: Vec<Requirement>, combine: fn(Vec<Requirement>) -> Requirement) -> Requirement {
    if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        combine(terms)
    }
}
