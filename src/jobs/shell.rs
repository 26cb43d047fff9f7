//! Where a reference sits in a shell script: the quoting context at each token.
//!
//! A value from outside (an option, result data, a node attribute) must never
//! become shell code, and the only way to be sure of that is to never put the
//! value into the script at all: a reference becomes a *variable reference*
//! (`"${SORTIE_OPTION_X}"`), which the shell expands without parsing the value.
//! How that reference must be written depends on where the author put the
//! token: unquoted (`"${V}"`, so it is one word and no glob), inside `"…"`
//! (`${V}`), inside `'…'` (close the quotes: `'"${V}"'`), inside `$'…'`, in a
//! here-document, inside `$(…)` or backquotes (a script of its own), in a
//! comment (left alone), or in arithmetic — `$((…))`, `((…))`, `let`, `$[…]`
//! and the integer comparisons of `[[ … ]]` — where bash evaluates a variable's
//! *value* as an expression (`a[$(cmd)]` runs `cmd`), so only an integer may go.
//!
//! This module is the scanner that tells those contexts apart. It follows POSIX
//! sh and bash's extensions closely enough for the scripts people write; where
//! it cannot be sure (a `case` pattern's lone `)` inside `$(…)`), the context it
//! falls back to is still one where a variable reference is inert.

use std::ops::Range;

/// The quoting context of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// Outside any quotes (also inside `$(…)`, backquotes and `[[ … ]]`).
    Unquoted,
    /// Inside `"…"`.
    Double,
    /// Inside `'…'`.
    Single,
    /// Inside bash's `$'…'`.
    DollarSingle,
    /// In the body of a here-document (`literal`: its delimiter was quoted).
    Heredoc { literal: bool },
    /// Where bash evaluates values as arithmetic expressions.
    Arithmetic,
    /// In a comment, or escaped with a backslash: not a reference at all.
    Inert,
}

/// A token found in a script, and its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub range: Range<usize>,
    pub ctx: Ctx,
}

/// What encloses the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A script: the top level, `$(…)` (with its parenthesis depth) or backquotes.
    Script {
        close: Close,
        depth: u32,
    },
    Double,
    /// `${…}` that is not a token; `quoted` when it sits inside `"…"`.
    Param {
        quoted: bool,
        depth: u32,
    },
    /// `$((…))`, `((…))` or `$[…]`, with its parenthesis depth.
    Arith {
        bracket: bool,
        depth: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Eof,
    Paren,
    Backquote,
}

/// Backquotes open a script of their own.
const BACKQUOTES: Frame = Frame::Script {
    close: Close::Backquote,
    depth: 0,
};
/// `$((` and `((` open arithmetic.
const ARITH: Frame = Frame::Arith {
    bracket: false,
    depth: 0,
};

/// A here-document announced on the current line.
struct Pending {
    delimiter: String,
    literal: bool,
    strip_tabs: bool,
}

/// bash's integer comparisons inside `[[ … ]]`: both sides are evaluated as
/// arithmetic expressions.
const ARITH_TESTS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];

/// Find every token in `text` and its context. `token_at(rest)` returns the
/// length of the token that starts `rest`, if one does.
pub fn sites(text: &str, token_at: &dyn Fn(&str) -> Option<usize>) -> Vec<Site> {
    Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        token_at,
        stack: vec![Frame::Script {
            close: Close::Eof,
            depth: 0,
        }],
        sites: Vec::new(),
        pending: Vec::new(),
        dbracket: false,
        let_command: false,
    }
    .run()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    token_at: &'a dyn Fn(&str) -> Option<usize>,
    stack: Vec<Frame>,
    sites: Vec<Site>,
    pending: Vec<Pending>,
    /// Inside `[[ … ]]`.
    dbracket: bool,
    /// In the arguments of a `let` command.
    let_command: bool,
}

impl Scanner<'_> {
    fn run(mut self) -> Vec<Site> {
        while self.pos < self.bytes.len() {
            if let Some(len) = (self.token_at)(&self.text[self.pos..]) {
                let ctx = self.token_ctx(len);
                self.sites.push(Site {
                    range: self.pos..self.pos + len,
                    ctx,
                });
                self.pos += len;
                continue;
            }
            match *self.stack.last().expect("the script frame is never popped") {
                Frame::Script { close, depth } => self.script(close, depth),
                Frame::Double => self.double(),
                Frame::Param { quoted, depth } => self.param(quoted, depth),
                Frame::Arith { bracket, depth } => self.arith(bracket, depth),
            }
        }
        self.sites
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    fn at(&self, s: &str) -> bool {
        self.rest().starts_with(s.as_bytes())
    }

    /// Whether the position starts a word (a comment, `((`, `[[`, `let`).
    fn word_start(&self) -> bool {
        self.pos == 0
            || matches!(
                self.bytes[self.pos - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
            )
    }

    /// Past `len` bytes that open `frame`.
    fn enter(&mut self, frame: Frame, len: usize) {
        self.stack.push(frame);
        self.pos += len;
    }

    /// Past `len` bytes that close the current frame.
    fn leave(&mut self, len: usize) {
        self.stack.pop();
        self.pos += len;
    }

    fn set_top(&mut self, frame: Frame) {
        *self.stack.last_mut().expect("a frame") = frame;
    }

    fn token_ctx(&self, len: usize) -> Ctx {
        match self.stack.last().expect("a frame") {
            Frame::Arith { .. } => Ctx::Arithmetic,
            Frame::Double | Frame::Param { quoted: true, .. } => {
                if self.arithmetic_test(len) {
                    Ctx::Arithmetic
                } else {
                    Ctx::Double
                }
            }
            Frame::Script { .. } | Frame::Param { quoted: false, .. } => {
                if self.let_command || self.arithmetic_test(len) {
                    Ctx::Arithmetic
                } else {
                    Ctx::Unquoted
                }
            }
        }
    }

    /// Inside `[[ … ]]`, a token next to `-eq` and the like is evaluated as arithmetic.
    fn arithmetic_test(&self, len: usize) -> bool {
        if !self.dbracket {
            return false;
        }
        let quote = |b: &u8| matches!(b, b'"' | b'\'' | b' ' | b'\t');
        let before = &self.text[..self.pos];
        let before = before.trim_end_matches(|c: char| c.is_ascii() && quote(&(c as u8)));
        let prev = before
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("");
        let after = &self.text[self.pos + len..];
        let after = after.trim_start_matches(|c: char| c.is_ascii() && quote(&(c as u8)));
        let next = after.split(char::is_whitespace).next().unwrap_or("");
        ARITH_TESTS.contains(&prev) || ARITH_TESTS.contains(&next)
    }

    fn script(&mut self, close: Close, depth: u32) {
        let b = self.bytes[self.pos];
        match b {
            b'\\' => self.escape(),
            b'\'' => self.single(),
            b'"' => self.enter(Frame::Double, 1),
            b'`' if close == Close::Backquote => self.leave(1),
            b'`' => self.enter(BACKQUOTES, 1),
            b'$' => self.dollar(false),
            b'#' if self.word_start() => self.comment(),
            b'(' if self.at("((") && self.word_start() => self.enter(ARITH, 2),
            b'(' => {
                self.set_top(Frame::Script {
                    close,
                    depth: depth + 1,
                });
                self.pos += 1;
            }
            b')' if close == Close::Paren && depth == 0 => self.leave(1),
            b')' => {
                self.set_top(Frame::Script {
                    close,
                    depth: depth.saturating_sub(1),
                });
                self.pos += 1;
            }
            b'[' if self.at("[[") && self.word_start() => {
                self.dbracket = true;
                self.pos += 2;
            }
            b']' if self.at("]]") && self.dbracket => {
                self.dbracket = false;
                self.pos += 2;
            }
            b'l' if self.word_start() && self.at("let") && self.word_ends_at(3) => {
                self.let_command = true;
                self.pos += 3;
            }
            b';' | b'&' | b'|' => {
                self.let_command = false;
                self.pos += 1;
            }
            b'<' if self.at("<<<") => self.pos += 3,
            b'<' if self.at("<<") => self.heredoc_operator(),
            b'\n' => {
                self.let_command = false;
                self.pos += 1;
                self.heredoc_bodies();
            }
            _ => self.advance(),
        }
    }

    /// A backslash and what it escapes; an escaped token is not a reference.
    fn escape(&mut self) {
        self.pos += 1;
        match (self.token_at)(&self.text[self.pos..]) {
            Some(len) => {
                self.sites.push(Site {
                    range: self.pos..self.pos + len,
                    ctx: Ctx::Inert,
                });
                self.pos += len;
            }
            None => self.advance(),
        }
    }

    /// Past one character (not one byte: positions stay on character boundaries).
    fn advance(&mut self) {
        self.pos += self.text[self.pos..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
    }

    fn word_ends_at(&self, len: usize) -> bool {
        self.rest()
            .get(len)
            .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\n' | b';'))
    }

    fn double(&mut self) {
        match self.bytes[self.pos] {
            b'\\' => self.escape(),
            b'"' => self.leave(1),
            b'`' => self.enter(BACKQUOTES, 1),
            b'$' => self.dollar(true),
            _ => self.advance(),
        }
    }

    /// `$(`, `$((`, `${`, `$'`, `$[`.
    fn dollar(&mut self, quoted: bool) {
        if self.at("$((") {
            self.enter(ARITH, 3);
        } else if self.at("$(") {
            self.enter(
                Frame::Script {
                    close: Close::Paren,
                    depth: 0,
                },
                2,
            );
        } else if self.at("${") {
            self.enter(Frame::Param { quoted, depth: 0 }, 2);
        } else if self.at("$[") {
            self.enter(
                Frame::Arith {
                    bracket: true,
                    depth: 0,
                },
                2,
            );
        } else if self.at("$'") && !quoted {
            self.dollar_single();
        } else {
            self.pos += 1;
        }
    }

    fn param(&mut self, quoted: bool, depth: u32) {
        match self.bytes[self.pos] {
            b'\\' => self.escape(),
            b'}' if depth == 0 => self.leave(1),
            b'}' => {
                self.set_top(Frame::Param {
                    quoted,
                    depth: depth - 1,
                });
                self.pos += 1;
            }
            b'{' => {
                self.set_top(Frame::Param {
                    quoted,
                    depth: depth + 1,
                });
                self.pos += 1;
            }
            b'\'' if !quoted => self.single(),
            b'"' => self.enter(Frame::Double, 1),
            b'`' => self.enter(BACKQUOTES, 1),
            b'$' => self.dollar(quoted),
            _ => self.advance(),
        }
    }

    fn arith(&mut self, bracket: bool, depth: u32) {
        match self.bytes[self.pos] {
            b'(' => {
                self.set_top(Frame::Arith {
                    bracket,
                    depth: depth + 1,
                });
                self.pos += 1;
            }
            b')' if !bracket && depth == 0 && self.at("))") => self.leave(2),
            b']' if bracket && depth == 0 => self.leave(1),
            b')' => {
                self.set_top(Frame::Arith {
                    bracket,
                    depth: depth.saturating_sub(1),
                });
                self.pos += 1;
            }
            b'$' => self.dollar(false),
            b'`' => self.enter(BACKQUOTES, 1),
            _ => self.advance(),
        }
    }

    /// `'…'`: no escapes, tokens inside are in [`Ctx::Single`].
    fn single(&mut self) {
        self.pos += 1;
        self.leaf(b'\'', Ctx::Single, false);
        self.pos += 1;
    }

    /// `$'…'`: backslash escapes, tokens inside are in [`Ctx::DollarSingle`].
    fn dollar_single(&mut self) {
        self.pos += 2;
        self.leaf(b'\'', Ctx::DollarSingle, true);
        self.pos += 1;
    }

    fn comment(&mut self) {
        self.leaf(b'\n', Ctx::Inert, false);
    }

    /// Up to `end` (not included): a stretch with no structure inside, where every
    /// token is in `ctx` and a backslash escapes the next character if `escapes`.
    fn leaf(&mut self, end: u8, ctx: Ctx, escapes: bool) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] != end {
            if escapes && self.bytes[self.pos] == b'\\' {
                self.pos += 1;
                self.advance();
            } else if let Some(len) = (self.token_at)(&self.text[self.pos..]) {
                self.sites.push(Site {
                    range: self.pos..self.pos + len,
                    ctx,
                });
                self.pos += len;
            } else {
                self.advance();
            }
        }
    }

    /// `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`, `<<\WORD`: the body follows the line.
    fn heredoc_operator(&mut self) {
        self.pos += 2;
        let strip_tabs = self.at("-");
        if strip_tabs {
            self.pos += 1;
        }
        while self.at(" ") || self.at("\t") {
            self.pos += 1;
        }
        let mut delimiter = String::new();
        let mut literal = false;
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            match b {
                b'\'' | b'"' => {
                    literal = true;
                    let end = self.rest()[1..]
                        .iter()
                        .position(|c| *c == b)
                        .map_or(self.bytes.len(), |p| self.pos + 1 + p);
                    delimiter.push_str(&self.text[self.pos + 1..end]);
                    self.pos = (end + 1).min(self.bytes.len());
                }
                b'\\' => {
                    literal = true;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => break,
                _ => {
                    let c = self.text[self.pos..].chars().next().expect("a char");
                    delimiter.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        if !delimiter.is_empty() {
            self.pending.push(Pending {
                delimiter,
                literal,
                strip_tabs,
            });
        }
    }

    /// After a newline: the bodies of the here-documents announced on that line.
    fn heredoc_bodies(&mut self) {
        for doc in std::mem::take(&mut self.pending) {
            while self.pos < self.bytes.len() {
                let end = self.rest().iter().position(|b| *b == b'\n');
                let line_end = end.map_or(self.bytes.len(), |e| self.pos + e);
                let line = &self.text[self.pos..line_end];
                let line = if doc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if line == doc.delimiter {
                    self.pos = (line_end + 1).min(self.bytes.len());
                    break;
                }
                self.heredoc_line(line_end, doc.literal);
                self.pos = (line_end + 1).min(self.bytes.len());
            }
        }
    }

    fn heredoc_line(&mut self, end: usize, literal: bool) {
        while self.pos < end {
            if !literal && self.bytes[self.pos] == b'\\' {
                self.escape();
                continue;
            }
            match (self.token_at)(&self.text[self.pos..end]) {
                Some(len) => {
                    self.sites.push(Site {
                        range: self.pos..self.pos + len,
                        ctx: Ctx::Heredoc { literal },
                    });
                    self.pos += len;
                }
                None => self.advance(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `@X@` is the token in these tests.
    fn ctxs(text: &str) -> Vec<Ctx> {
        let token = |rest: &str| rest.starts_with("@X@").then_some(3);
        sites(text, &token).into_iter().map(|s| s.ctx).collect()
    }

    #[test]
    fn quoting_contexts_are_told_apart() {
        use Ctx::*;
        let table: &[(&str, &[Ctx])] = &[
            ("echo @X@", &[Unquoted]),
            ("echo \"a @X@ b\"", &[Double]),
            ("echo 'a @X@ b'", &[Single]),
            ("echo $'a\\' @X@'", &[DollarSingle]),
            ("echo $(printf %s @X@)", &[Unquoted]),
            ("echo \"$(printf %s \"@X@\")\"", &[Double]),
            ("echo `echo @X@`", &[Unquoted]),
            ("echo \"`echo '@X@'`\"", &[Single]),
            ("echo $((@X@ + 1))", &[Arithmetic]),
            ("(( n = @X@ ))", &[Arithmetic]),
            ("let n=@X@+1", &[Arithmetic]),
            ("let n=1; echo @X@", &[Unquoted]),
            ("echo $[@X@]", &[Arithmetic]),
            ("[[ @X@ -eq 3 ]]", &[Arithmetic]),
            ("[[ \"@X@\" -gt 3 ]]", &[Arithmetic]),
            ("[[ 3 -le @X@ ]]", &[Arithmetic]),
            ("[[ @X@ == x* ]]", &[Unquoted]),
            ("[ @X@ -eq 3 ]", &[Unquoted]),
            ("echo x # @X@\necho @X@", &[Inert, Unquoted]),
            ("echo a#@X@", &[Unquoted]),
            ("echo \\@X@", &[Inert]),
            ("echo \\\\@X@", &[Unquoted]),
            ("echo \"\\@X@\"", &[Inert]),
            ("echo ${y:-@X@}", &[Unquoted]),
            ("echo \"${y:-@X@}\"", &[Double]),
            (
                "cat <<EOF\na @X@\nEOF\necho @X@",
                &[Heredoc { literal: false }, Unquoted],
            ),
            ("cat <<'EOF'\n@X@\nEOF", &[Heredoc { literal: true }]),
            (
                "cat <<-\"E\"\n\t@X@\n\tE\necho '@X@'",
                &[Heredoc { literal: true }, Single],
            ),
            (
                "cat <<A <<'B'\n@X@\nA\n@X@\nB\n",
                &[Heredoc { literal: false }, Heredoc { literal: true }],
            ),
            ("cat <<<@X@", &[Unquoted]),
            ("x=@X@ y='@X@' z=\"@X@\"", &[Unquoted, Single, Double]),
            ("case @X@ in a) echo '@X@';; esac", &[Unquoted, Single]),
        ];
        for (script, expected) in table {
            assert_eq!(ctxs(script), *expected, "{script:?}");
        }
    }
}
