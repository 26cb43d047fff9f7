//! Where a reference sits in a shell script: the quoting context at each token.
//!
//! A value from outside (an option, result data, a node attribute) must never
//! become shell code, and the only way to be sure of that is to never put the
//! value into the script at all: a reference becomes a *variable reference*
//! (`"${SORTIE_OPTION_X}"`), which the shell expands without parsing the value.
//! How that reference must be written depends on where the author put the
//! token: unquoted (`"${V}"`, so it is one word and no glob), inside `"…"`
//! (`${V}`), inside `'…'` or `$'…'` (left as the text `${V}`: what is quoted
//! there is often code for another program — `sh -c '…'`, `trap '…'`, awk, sed
//! — which must not receive the value as code; a nested shell expands the
//! variable itself), in a here-document (`${V}`), inside `$(…)` or backquotes
//! (a script of its own), in a comment (left alone).
//!
//! Two kinds of place make a value code even as a variable:
//! - bash evaluates a variable's *value* as an arithmetic expression in
//!   `$((…))`, `((…))` (also `for((`, `if((`), `let`, `$[…]`, array subscripts
//!   (`${a[…]}`, `a[…]=`), substring offsets (`${s:…}`), `declare -i`, the
//!   `-eq` family and `-v` inside `[[ … ]]`, and `printf -v`; `a[$(cmd)]` runs
//!   `cmd`. There only an integer may go ([`Ctx::Arithmetic`]).
//! - a word that is a script for a *nested* shell — the argument after `-c` of a
//!   shell (`sh -c "…"`, `sudo bash -lc …`, `find -exec sh -c …`, `su -c …`),
//!   the words of `eval`, the first argument of `trap` — is parsed again by
//!   that shell, so the variable reference is escaped for it to expand
//!   ([`Ctx::Nested`]); a remote command of `ssh` would be parsed by a shell that
//!   does not have the variable, so a reference there is refused
//!   ([`Ctx::Remote`]).
//!
//! This module is the scanner that tells those contexts apart. It follows POSIX
//! sh and bash's extensions closely enough for the scripts people write; where
//! it cannot be sure, the context it falls back to is still one where a
//! variable reference is inert. What it cannot see is data flow: a script that
//! copies a value into another variable and later evaluates that one
//! (`x=${option.n}; echo $((x))`, `echo "$v" | sh`) evaluates it (sortie(1)).

use std::ops::Range;

/// The quoting context of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// Outside any quotes (also inside `$(…)`, backquotes and `[[ … ]]`).
    Unquoted,
    /// Inside `"…"`.
    Double,
    /// Inside `'…'` (`data`: an argument of a command that takes it as data,
    /// such as `echo`, or the value of an assignment).
    Single { data: bool },
    /// Inside bash's `$'…'`.
    DollarSingle,
    /// In the body of a here-document (`literal`: its delimiter was quoted).
    Heredoc { literal: bool },
    /// Where bash evaluates values as arithmetic expressions.
    Arithmetic,
    /// In a word a nested shell parses again (`quoted`: inside `"…"`).
    Nested { quoted: bool },
    /// In the remote command of `ssh`, parsed by a shell on another host.
    Remote,
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
    /// A script: the top level, `$(…)` (with its parenthesis depth) or
    /// backquotes; `cmd` indexes its simple command in [`Scanner::cmds`].
    Script {
        close: Close,
        depth: u32,
        cmd: usize,
    },
    Double,
    /// `${…}` that is not a token; `quoted` when it sits inside `"…"`;
    /// `arith` once a substring offset (`${s:…}`) began.
    Param {
        quoted: bool,
        depth: u32,
        arith: bool,
    },
    /// `$((…))`, `((…))`, `$[…]` or a subscript `[…]`, with its depth.
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

/// The words of the simple command being read in one script frame.
#[derive(Debug, Default)]
struct Command {
    /// The words so far, as written (quotes included).
    words: Vec<String>,
    /// Where the word being read began.
    start: Option<usize>,
}

/// A here-document announced on the current line.
struct Pending {
    delimiter: String,
    literal: bool,
    strip_tabs: bool,
}

/// bash's integer comparisons inside `[[ … ]]`: both sides are evaluated as
/// arithmetic expressions (and `-v` evaluates a subscript).
const ARITH_TESTS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v"];

/// Shells, and commands whose `-c` argument is a shell command line.
pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ksh", "mksh", "zsh", "ash", "busybox", "su", "runuser",
];

/// Commands whose arguments bash may evaluate as arithmetic (with `-i`).
const DECLARERS: &[&str] = &["declare", "typeset", "local", "export", "readonly"];

/// Text that shows a nested script does arithmetic: its references must be integers.
const ARITH_MARKERS: &[&str] = &[
    "((",
    "$[",
    "let ",
    "-eq",
    "-ne",
    "-lt",
    "-le",
    "-gt",
    "-ge",
    "declare -",
    "typeset -",
];

/// Commands that take their arguments as data, never as code of their own.
const DATA_COMMANDS: &[&str] = &[
    "echo",
    "printf",
    "export",
    "local",
    "readonly",
    "test",
    "[",
    "cd",
    "mkdir",
    "touch",
    "cp",
    "mv",
    "rm",
    "ls",
    "cat",
    "tee",
    "grep",
    "egrep",
    "fgrep",
    "curl",
    "wget",
    "logger",
    "chmod",
    "chown",
    "ln",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "basename",
    "dirname",
    "stat",
    "id",
    "getent",
    "systemctl",
    "service",
    "kill",
    "ping",
    "host",
    "dig",
    "nslookup",
    "tar",
    "gzip",
    "zip",
    "unzip",
    "rsync",
    "scp",
    "docker",
    "kubectl",
    "apt-get",
    "yum",
    "dnf",
    "apk",
    "dpkg",
    "rpm",
    "git",
];

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
            cmd: 0,
        }],
        cmds: vec![Command::default()],
        sites: Vec::new(),
        pending: Vec::new(),
        dbracket: false,
    }
    .run()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    token_at: &'a dyn Fn(&str) -> Option<usize>,
    stack: Vec<Frame>,
    cmds: Vec<Command>,
    sites: Vec<Site>,
    pending: Vec<Pending>,
    /// Inside `[[ … ]]`.
    dbracket: bool,
}

impl Scanner<'_> {
    fn run(mut self) -> Vec<Site> {
        while self.pos < self.bytes.len() {
            if let Some(len) = (self.token_at)(&self.text[self.pos..]) {
                self.begin_word();
                let ctx = self.token_ctx(len);
                self.push_site(len, ctx);
                continue;
            }
            match *self.stack.last().expect("the script frame is never popped") {
                Frame::Script { close, depth, cmd } => self.script(close, depth, cmd),
                Frame::Double => self.double(),
                Frame::Param {
                    quoted,
                    depth,
                    arith,
                } => self.param(quoted, depth, arith),
                Frame::Arith { bracket, depth } => self.arith(bracket, depth),
            }
        }
        self.sites
    }

    fn push_site(&mut self, len: usize, ctx: Ctx) {
        self.sites.push(Site {
            range: self.pos..self.pos + len,
            ctx,
        });
        self.pos += len;
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    fn at(&self, s: &str) -> bool {
        self.rest().starts_with(s.as_bytes())
    }

    /// Whether the position starts a word (a comment, `((`, `[[`).
    fn word_start(&self) -> bool {
        self.pos == 0
            || matches!(
                self.bytes[self.pos - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b'<' | b'>'
            )
    }

    /// Past `len` bytes that open `frame`.
    fn enter(&mut self, frame: Frame, len: usize) {
        self.stack.push(frame);
        self.pos += len;
    }

    /// A new script frame (`$(` or a backquote), with a command of its own.
    fn enter_script(&mut self, close: Close, len: usize) {
        self.cmds.push(Command::default());
        let cmd = self.cmds.len() - 1;
        self.enter(
            Frame::Script {
                close,
                depth: 0,
                cmd,
            },
            len,
        );
    }

    /// Past `len` bytes that close the current frame.
    fn leave(&mut self, len: usize) {
        self.stack.pop();
        self.pos += len;
    }

    fn set_top(&mut self, frame: Frame) {
        *self.stack.last_mut().expect("a frame") = frame;
    }

    /// The command of the innermost script frame.
    fn command(&self) -> &Command {
        let cmd = self
            .stack
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Script { cmd, .. } => Some(*cmd),
                _ => None,
            })
            .expect("the script frame is never popped");
        &self.cmds[cmd]
    }

    fn command_mut(&mut self, cmd: usize) -> &mut Command {
        &mut self.cmds[cmd]
    }

    /// A word begins here, if none is being read in the innermost script.
    fn begin_word(&mut self) {
        if let Some(Frame::Script { cmd, .. }) = self.stack.last().copied() {
            let pos = self.pos;
            self.command_mut(cmd).start.get_or_insert(pos);
        }
    }

    /// The word being read ends here.
    fn end_word(&mut self, cmd: usize) {
        let pos = self.pos;
        if let Some(start) = self.cmds[cmd].start.take() {
            let word = self.text[start..pos].to_string();
            self.cmds[cmd].words.push(word);
        }
    }

    /// The simple command ends here.
    fn end_command(&mut self, cmd: usize) {
        self.end_word(cmd);
        self.cmds[cmd].words.clear();
    }

    fn token_ctx(&self, len: usize) -> Ctx {
        let quoted = match self.stack.last().expect("a frame") {
            Frame::Arith { .. } | Frame::Param { arith: true, .. } => return Ctx::Arithmetic,
            Frame::Double | Frame::Param { quoted: true, .. } => true,
            Frame::Script { .. } | Frame::Param { quoted: false, .. } => false,
        };
        if self.arithmetic_test(len) {
            return Ctx::Arithmetic;
        }
        match nesting(self.command()) {
            Some(Nesting::Remote) => Ctx::Remote,
            Some(Nesting::Arithmetic) => Ctx::Arithmetic,
            Some(Nesting::Shell) => {
                if self.nested_arithmetic() {
                    Ctx::Arithmetic
                } else {
                    Ctx::Nested { quoted }
                }
            }
            None if quoted => Ctx::Double,
            None => Ctx::Unquoted,
        }
    }

    /// Whether the nested script around the position does arithmetic (its text
    /// from the word's start to the end of the line).
    fn nested_arithmetic(&self) -> bool {
        let start = self.command().start.unwrap_or(self.pos);
        let end = self.text[self.pos..]
            .find('\n')
            .map_or(self.text.len(), |e| self.pos + e);
        let text = &self.text[start..end];
        ARITH_MARKERS.iter().any(|m| text.contains(m))
    }

    /// Inside `[[ … ]]`, a token in a word next to `-eq` and the like is
    /// evaluated as arithmetic.
    fn arithmetic_test(&self, len: usize) -> bool {
        if !self.dbracket {
            return false;
        }
        let blank = |c: char| c == ' ' || c == '\t' || c == '\n';
        let before = &self.text[..self.pos];
        let word_start = before.rfind(blank).map_or(0, |p| p + 1);
        let prev = before[..word_start]
            .trim_end_matches(blank)
            .rsplit(blank)
            .next()
            .unwrap_or("");
        let after = &self.text[self.pos + len..];
        let word_end = after.find(blank).unwrap_or(after.len());
        let next = after[word_end..]
            .trim_start_matches(blank)
            .split(blank)
            .next()
            .unwrap_or("");
        ARITH_TESTS.contains(&prev) || ARITH_TESTS.contains(&next)
    }

    fn script(&mut self, close: Close, depth: u32, cmd: usize) {
        let b = self.bytes[self.pos];
        if !matches!(b, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')') {
            self.begin_word();
        }
        match b {
            b' ' | b'\t' => {
                self.end_word(cmd);
                self.pos += 1;
            }
            b'\\' => self.escape(),
            b'\'' => self.single(),
            b'"' => self.enter(Frame::Double, 1),
            b'`' if close == Close::Backquote => {
                self.end_command(cmd);
                self.leave(1);
            }
            b'`' => self.enter_script(Close::Backquote, 1),
            b'$' => self.dollar(false),
            b'#' if self.word_start() => self.comment(),
            b'(' if self.at("((") => {
                self.end_command(cmd);
                self.enter(ARITH, 2);
            }
            b'(' => {
                self.end_command(cmd);
                self.set_top(Frame::Script {
                    close,
                    depth: depth + 1,
                    cmd,
                });
                self.pos += 1;
            }
            b')' if close == Close::Paren && depth == 0 => {
                self.end_command(cmd);
                self.leave(1);
            }
            b')' => {
                self.end_command(cmd);
                self.set_top(Frame::Script {
                    close,
                    depth: depth.saturating_sub(1),
                    cmd,
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
            // `name[…]=`: the subscript of an assignment is arithmetic.
            b'[' if self.assignment_subscript(cmd) => self.enter(SUBSCRIPT, 1),
            b';' | b'&' | b'|' => {
                self.end_command(cmd);
                self.pos += 1;
            }
            b'<' if self.at("<<<") => self.pos += 3,
            b'<' if self.at("<<") => self.heredoc_operator(),
            b'\n' => {
                self.end_command(cmd);
                self.pos += 1;
                self.heredoc_bodies();
            }
            _ => self.advance(),
        }
    }

    /// The word read so far is a variable name: a `[` starts its subscript.
    fn assignment_subscript(&self, cmd: usize) -> bool {
        let Some(start) = self.cmds[cmd].start else {
            return false;
        };
        let name = &self.text[start..self.pos];
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit()
    }

    /// A backslash and what it escapes; an escaped token is not a reference.
    fn escape(&mut self) {
        self.pos += 1;
        match (self.token_at)(&self.text[self.pos..]) {
            Some(len) => self.push_site(len, Ctx::Inert),
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

    fn double(&mut self) {
        match self.bytes[self.pos] {
            b'\\' => self.escape(),
            b'"' => self.leave(1),
            b'`' => self.enter_script(Close::Backquote, 1),
            b'$' => self.dollar(true),
            _ => self.advance(),
        }
    }

    /// `$(`, `$((`, `${`, `$'`, `$[`.
    fn dollar(&mut self, quoted: bool) {
        if self.at("$((") {
            self.enter(ARITH, 3);
        } else if self.at("$(") {
            self.enter_script(Close::Paren, 2);
        } else if self.at("${") {
            self.enter(
                Frame::Param {
                    quoted,
                    depth: 0,
                    arith: false,
                },
                2,
            );
        } else if self.at("$[") {
            self.enter(SUBSCRIPT, 2);
        } else if self.at("$'") && !quoted {
            self.dollar_single();
        } else {
            self.pos += 1;
        }
    }

    fn param(&mut self, quoted: bool, depth: u32, arith: bool) {
        match self.bytes[self.pos] {
            b'\\' => self.escape(),
            b'}' if depth == 0 => self.leave(1),
            b'}' => {
                self.set_top(Frame::Param {
                    quoted,
                    depth: depth - 1,
                    arith,
                });
                self.pos += 1;
            }
            b'{' => {
                self.set_top(Frame::Param {
                    quoted,
                    depth: depth + 1,
                    arith,
                });
                self.pos += 1;
            }
            // `${a[…]}`: a subscript, evaluated as arithmetic.
            b'[' if depth == 0 => self.enter(SUBSCRIPT, 1),
            // `${s:offset:length}` (not `:-`, `:=`, `:+`, `:?`): arithmetic.
            b':' if depth == 0
                && !matches!(self.rest().get(1), Some(b'-' | b'=' | b'+' | b'?')) =>
            {
                self.set_top(Frame::Param {
                    quoted,
                    depth,
                    arith: true,
                });
                self.pos += 1;
            }
            b'\'' if !quoted => self.single(),
            b'"' => self.enter(Frame::Double, 1),
            b'`' => self.enter_script(Close::Backquote, 1),
            b'$' => self.dollar(quoted),
            _ => self.advance(),
        }
    }

    fn arith(&mut self, bracket: bool, depth: u32) {
        match self.bytes[self.pos] {
            b'(' | b'[' => {
                self.set_top(Frame::Arith {
                    bracket,
                    depth: depth + 1,
                });
                self.pos += 1;
            }
            b')' if !bracket && depth == 0 && self.at("))") => self.leave(2),
            b']' if bracket && depth == 0 => self.leave(1),
            b')' | b']' => {
                self.set_top(Frame::Arith {
                    bracket,
                    depth: depth.saturating_sub(1),
                });
                self.pos += 1;
            }
            b'$' => self.dollar(false),
            b'`' => self.enter_script(Close::Backquote, 1),
            _ => self.advance(),
        }
    }

    /// `'…'`: no escapes. Tokens inside are in [`Ctx::Single`], or in arithmetic
    /// when the quoted text does arithmetic (it may be a nested script).
    fn single(&mut self) {
        self.pos += 1;
        let end = self.rest().iter().position(|b| *b == b'\'');
        let end = end.map_or(self.bytes.len(), |e| self.pos + e);
        let data = self.data_word();
        let ctx = self.quoted_text_ctx(&self.text[self.pos..end], Ctx::Single { data });
        self.leaf(b'\'', ctx, false);
        self.pos += 1;
    }

    /// Whether the word being read is data, not code: an argument of a
    /// command known to take its arguments as data, or an assignment's value.
    fn data_word(&self) -> bool {
        let cmd = self.command();
        let words = &cmd.words;
        let current = cmd
            .start
            .map_or("", |s| &self.text[s..self.pos.min(self.text.len())]);
        match words
            .iter()
            .position(|w| !w.split_once('=').is_some_and(|(k, _)| is_name(k)))
        {
            None => current.split_once('=').is_some_and(|(k, _)| is_name(k)),
            Some(first) => {
                nesting(cmd).is_none() && DATA_COMMANDS.contains(&basename(&words[first]))
            }
        }
    }

    /// `$'…'`: backslash escapes; like `'…'` otherwise.
    fn dollar_single(&mut self) {
        self.pos += 2;
        let end = self.rest().iter().position(|b| *b == b'\'');
        let end = end.map_or(self.bytes.len(), |e| self.pos + e);
        let ctx = self.quoted_text_ctx(&self.text[self.pos..end], Ctx::DollarSingle);
        self.leaf(b'\'', ctx, true);
        self.pos += 1;
    }

    /// The context of tokens in single-quoted `text`: arithmetic when the text
    /// (a nested script, an awk program…) does arithmetic, else `plain`.
    fn quoted_text_ctx(&self, text: &str, plain: Ctx) -> Ctx {
        if ARITH_MARKERS.iter().any(|m| text.contains(m)) {
            Ctx::Arithmetic
        } else if nesting(self.command()) == Some(Nesting::Remote) {
            Ctx::Remote
        } else {
            plain
        }
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
                self.push_site(len, ctx);
            } else {
                self.advance();
            }
        }
    }

    /// `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`, `<<\WORD`, `<<$'WORD'`: the
    /// body follows the line.
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
                b'$' if matches!(self.rest().get(1), Some(b'\'' | b'"')) => self.pos += 1,
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
                Some(len) => self.push_site(len, Ctx::Heredoc { literal }),
                None => self.advance(),
            }
        }
    }
}

/// Backquotes and `$(` open a script of their own; `$((`, `((` open arithmetic,
/// `[`, `$[` a subscript or legacy arithmetic.
const ARITH: Frame = Frame::Arith {
    bracket: false,
    depth: 0,
};
const SUBSCRIPT: Frame = Frame::Arith {
    bracket: true,
    depth: 0,
};

/// What a simple command does with the word being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nesting {
    /// A nested shell parses it (`sh -c WORD`, `eval WORD…`, `trap WORD`).
    Shell,
    /// A remote shell parses it (`ssh HOST WORD…`).
    Remote,
    /// bash evaluates it as arithmetic (`let`, `declare -i`, `printf -v WORD`).
    Arithmetic,
}

/// The word without the quotes around it (for matching command names and options).
fn unquoted(word: &str) -> &str {
    word.trim_matches(|c| c == '\'' || c == '"')
}

fn basename(word: &str) -> &str {
    unquoted(word).rsplit('/').next().unwrap_or("")
}

/// `-c`, `-lc`, `-ec`, `-xc`: a cluster of short options that holds `c`.
fn dash_c(word: &str) -> bool {
    let w = unquoted(word);
    w.len() > 1
        && w.starts_with('-')
        && !w.starts_with("--")
        && w[1..].bytes().all(|b| b.is_ascii_alphabetic())
        && w.contains('c')
}

/// Whether the word being read (the next after `cmd.words`) is nested code.
fn nesting(cmd: &Command) -> Option<Nesting> {
    let words = &cmd.words;
    // The command's name: past assignments (X=1).
    let first = words
        .iter()
        .position(|w| !w.split_once('=').is_some_and(|(k, _)| is_name(k)))?;
    let name = basename(&words[first]);
    let index = words.len();
    match name {
        "eval" => return Some(Nesting::Shell),
        "trap" if index == first + 1 => return Some(Nesting::Shell),
        "let" => return Some(Nesting::Arithmetic),
        "ssh" if index > ssh_host(&words[first + 1..]).map_or(usize::MAX, |h| first + 1 + h) => {
            return Some(Nesting::Remote)
        }
        "printf" if unquoted(&words[index - 1]) == "-v" => return Some(Nesting::Arithmetic),
        n if DECLARERS.contains(&n)
            && words[first + 1..].iter().any(|w| {
                let w = unquoted(w);
                w.starts_with('-') && w.contains('i')
            }) =>
        {
            return Some(Nesting::Arithmetic)
        }
        _ => {}
    }
    // The argument after `-c` (or `-c --`) of a shell anywhere in the command
    // (`sudo bash -lc …`, `find . -exec sh -c …`, `kubectl exec p -- sh -c …`).
    let c_at = match words.last().map(|w| unquoted(w)) {
        Some("--") if index >= 2 && dash_c(&words[index - 2]) => index - 2,
        Some(_) if dash_c(&words[index - 1]) => index - 1,
        _ => return None,
    };
    words[..c_at]
        .iter()
        .any(|w| SHELLS.contains(&basename(w)))
        .then_some(Nesting::Shell)
}

/// The index of ssh's host among its arguments (past its options and theirs).
fn ssh_host(args: &[String]) -> Option<usize> {
    const WITH_ARGUMENT: &str = "BbcDEeFIiJLlmOopQRSWw";
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let arg = unquoted(arg);
        if !arg.starts_with('-') || arg == "-" {
            return Some(i);
        }
        if arg == "--" {
            return Some(i + 1).filter(|h| *h < args.len());
        }
        // An option that takes an argument, given apart (`-p 22`), skips it.
        let last = arg.chars().last().unwrap_or(' ');
        i += if arg.len() == 2 && WITH_ARGUMENT.contains(last) {
            2
        } else {
            1
        };
    }
    None
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
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
        let nested = Nested { quoted: false };
        let nested_quoted = Nested { quoted: true };
        let table: &[(&str, &[Ctx])] = &[
            ("echo @X@", &[Unquoted]),
            ("echo \"a @X@ b\"", &[Double]),
            ("echo 'a @X@ b'", &[Single { data: true }]),
            ("awk '{print @X@}'", &[Single { data: false }]),
            ("echo $'a\\' @X@'", &[DollarSingle]),
            ("echo $(printf %s @X@)", &[Unquoted]),
            ("echo \"$(printf %s \"@X@\")\"", &[Double]),
            ("echo `echo @X@`", &[Unquoted]),
            ("echo \"`echo '@X@'`\"", &[Single { data: true }]),
            ("echo x # @X@\necho @X@", &[Inert, Unquoted]),
            ("echo a#@X@", &[Unquoted]),
            ("echo $(echo)#x @X@", &[Unquoted]),
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
                &[Heredoc { literal: true }, Single { data: true }],
            ),
            (
                "cat <<A <<'B'\n@X@\nA\n@X@\nB\n",
                &[Heredoc { literal: false }, Heredoc { literal: true }],
            ),
            (
                "cat <<$'EOF'\n@X@\nEOF\necho @X@",
                &[Heredoc { literal: true }, Unquoted],
            ),
            ("cat <<<@X@", &[Unquoted]),
            (
                "x=@X@ y='@X@' z=\"@X@\"",
                &[Unquoted, Single { data: true }, Double],
            ),
            (
                "case @X@ in a) echo '@X@';; esac",
                &[Unquoted, Single { data: true }],
            ),
            // Nested shells parse their script again.
            ("sh -c \"echo @X@\"", &[nested_quoted]),
            ("sh -c 'echo @X@'", &[Single { data: false }]),
            ("sudo -u app bash -lc \"x @X@\" arg", &[nested_quoted]),
            ("find . -exec sh -c -- \"x @X@\" \\;", &[nested_quoted]),
            ("su root -c \"x @X@\"", &[nested_quoted]),
            ("eval echo @X@", &[nested]),
            (
                "trap \"echo @X@\" EXIT; echo @X@",
                &[nested_quoted, Unquoted],
            ),
            ("bash -c \"echo \\$((@X@))\"", &[Arithmetic]),
            ("sh -c 'echo $((@X@))'", &[Arithmetic]),
            ("ssh -p 22 host \"echo @X@\"", &[Remote]),
            ("ssh host 'echo @X@'", &[Remote]),
            ("ssh @X@ uptime", &[Unquoted]),
            ("echo sh -c @X@", &[nested]),
        ];
        for (script, expected) in table {
            assert_eq!(ctxs(script), *expected, "{script:?}");
        }
    }

    #[test]
    fn every_place_bash_does_arithmetic_is_arithmetic() {
        for script in [
            "echo $((@X@ + 1))",
            "(( n = @X@ ))",
            "for((i=0;i<@X@;i++)); do :; done",
            "if((@X@>1)); then :; fi",
            "while((@X@>5)); do :; done",
            "let n=@X@+1",
            "echo $[@X@]",
            "[[ @X@ -eq 3 ]]",
            "[[ \"@X@\" -gt 3 ]]",
            "[[ 3 -le @X@ ]]",
            "[[ 1 -eq 0+@X@ ]]",
            "[[ @X@+0 -eq 1 ]]",
            "[[ -v @X@ ]]",
            "a=(1 2); echo ${a[@X@]}",
            "a[@X@]=1",
            "s=abc; echo ${s:@X@}",
            "echo \"${s:0:@X@}\"",
            "declare -i x=@X@",
            "typeset -i y=@X@",
            "local -ir z=@X@",
            "printf -v @X@ %s x",
            "if((1<<2)); then :; fi\necho $(( @X@ ))",
        ] {
            let found = ctxs(script);
            assert!(
                !found.is_empty() && found.iter().all(|c| *c == Ctx::Arithmetic),
                "{script:?}: {found:?}"
            );
        }
        for script in ["[[ @X@ == x* ]]", "[ @X@ -eq 3 ]", "let n=1; echo @X@"] {
            assert_ne!(ctxs(script), vec![Ctx::Arithmetic], "{script:?}");
        }
    }
}
