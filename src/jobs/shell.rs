//! Where a reference sits in a shell script: the quoting context at each token.
//!
//! A value from outside (an option, result data, a node attribute) must never
//! become shell code, and the only way to be sure of that is to never put the
//! value into the script at all: a reference becomes a *variable reference*
//! (`"${SORTIE_OPTION_X}"`), which the shell expands without parsing the value.
//! How that reference must be written depends on where the author put the
//! token: unquoted (`"${V}"`, so it is one word and no glob), inside `"…"`
//! (`${V}`), inside `'…'` or `$'…'` of an argument taken as data (the quotes
//! closed around `"${V}"`), in a here-document (`${V}`), inside `$(…)` or
//! backquotes (a script of its own), in a comment (left alone).
//!
//! The shell then hands the word to a command, and what that command does
//! with it is the other half ([`reader`](crate::jobs::reader)): a nested shell
//! parses it again ([`Ctx::Nested`], escaped for that shell to expand, inside
//! the quotes the token has *there* — found by scanning the nested script
//! as far as the token), a remote shell, an interpreter's program or a shell
//! without sortie's environment would make the value code or lose it
//! ([`Ctx::Remote`], [`Ctx::Code`], [`Ctx::Cleared`]: refused). bash evaluates
//! a variable's *value* as an arithmetic expression in `$((…))`, `((…))`
//! (also `for((`, `if((`), `let`, `$[…]`, array subscripts (`${a[…]}`,
//! `a[…]=`, `a=([…]=v)`), substring offsets (`${s:…}`), `declare -i`, the `-eq` family and
//! `-v` inside `[[ … ]]`, and as a name in `printf -v`, `unset`, `read`,
//! `declare -n`: `a[$(cmd)]` runs `cmd`. There only an integer may go
//! ([`Ctx::Arithmetic`]).
//!
//! This module is the scanner that tells those contexts apart. It follows POSIX
//! sh and bash's extensions closely enough for the scripts people write; where
//! it cannot be sure, the context it falls back to is still one where a
//! variable reference is inert. It follows a value into the variables a
//! script assigns it to and into its functions' arguments, and reads each
//! place they are used as it reads a token, and a bare name of one where bash
//! evaluates it as arithmetic; other data flow (a bare name in a nested
//! shell's arithmetic, a file run in a later step) it cannot see (sortie(1)).

use std::ops::Range;

use crate::jobs::reader::{self, Reader};

/// The quoting context of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// Outside any quotes (also inside `$(…)`, backquotes and `[[ … ]]`).
    Unquoted,
    /// Inside `"…"`.
    Double,
    /// Inside `'…'`, an argument a command takes as data.
    Single,
    /// Inside bash's `$'…'`, an argument a command takes as data.
    DollarSingle,
    /// In the body of a here-document (`literal`: its delimiter was quoted;
    /// `shell`: a shell reads it as its script, and the quotes the token is
    /// in there).
    Heredoc { literal: bool, shell: Option<Quote> },
    /// Where bash evaluates values as arithmetic expressions.
    Arithmetic,
    /// Where bash takes a value as a variable's name (`read`, `printf -v`,
    /// `unset`, `declare`, `-v`), and evaluates a subscript in it. A value
    /// gets what [`Ctx::Arithmetic`] gets; a bare name there is only named.
    Name,
    /// In a word a nested shell parses again, written inside `quote` here and
    /// inside `inner` for the nested shell.
    Nested { quote: Quote, inner: Quote },
    /// In the remote command of `ssh`, parsed by a shell on another host.
    Remote,
    /// In code another program reads (what it is, for the error).
    Code(&'static str),
    /// In a command line for a shell that does not get sortie's environment
    /// (behind what, for the error).
    Cleared(&'static str),
    /// In a comment, or escaped with a backslash: not a reference at all.
    Inert,
}

/// The quotes a nested shell's word is written in, in the outer script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    None,
    Double,
    Single,
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
    /// Where the command's first word began.
    began: Option<usize>,
    /// Where its pipeline's first command began, past a `|`.
    pipeline: Option<usize>,
    /// What the command prints is code (it writes into `>(sh)`): every
    /// token of it is refused.
    feeds: Option<&'static str>,
}

/// A here-document announced on the current line.
struct Pending {
    delimiter: String,
    literal: bool,
    strip_tabs: bool,
    /// What reads it.
    reader: Option<Reader>,
    /// The command that announced it (its words tell what reads it once
    /// they are all read: `<<EOF bash`).
    cmd: usize,
    /// The variables `read` assigns it to (`read -r cmd <<EOF`).
    assigns: Vec<String>,
}

/// A file the script writes (`> gen.sh`, `tee gen.sh`, `cp a gen.sh`), by
/// its name's last part, and the tokens that went into it: the writing
/// command's (the first range, with its here-documents': `open` until their
/// bodies are read), and those of the files it read (`cp a.txt gen.sh`).
struct Written {
    name: String,
    sites: Vec<Range<usize>>,
    open: bool,
}

/// `ranges` sorted, those that overlap or touch made one.
fn merged(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// A token in a word a nested shell parses again (`sh -c "…"`), looked at
/// again once the word is whole: the nested script's later text (`| sh`, a
/// `-eq`) may change what the token is there.
struct NestedWord {
    site: usize,
    cmd: usize,
    start: usize,
}

/// bash's integer comparisons inside `[[ … ]]`: both sides are evaluated as
/// arithmetic expressions (and `-v` takes a name, evaluating a subscript).
const ARITH_TESTS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];

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

/// Find every token in `text` and its context. `token_at(rest)` returns the
/// length of the token that starts `rest`, if one does.
pub fn sites(text: &str, token_at: &dyn Fn(&str) -> Option<usize>) -> Vec<Site> {
    let Scan {
        sites: mut found,
        assigned,
        function_args,
    } = quoted_sites(text, token_at);
    // Where a value is evaluated as code, its tokens are refused; where only
    // as arithmetic (or a name), they get what a token there gets: an
    // integer is inserted, anything else fails.
    let mut mark = |sites: &[usize], how: Evaluation, why: &'static str| {
        for &i in sites {
            found[i].ctx = match (found[i].ctx, how) {
                (ctx @ (Ctx::Inert | Ctx::Code(_)), _) => ctx,
                (_, Evaluation::Code) => Ctx::Code(why),
                (Ctx::Arithmetic | Ctx::Name, Evaluation::Arithmetic) => found[i].ctx,
                (_, Evaluation::Arithmetic) => Ctx::Arithmetic,
            };
        }
    };
    // A function that evaluates its arguments (`retry() { eval "$1"; }`,
    // `local cmd=$1; eval "$cmd"`): the tokens given to the script's
    // functions are refused.
    // Scans of the whole script for the uses of values, in all: a script
    // that would need more is refused where the values lead (not followed).
    let mut budget = MOST_SCANS;
    if !function_args.is_empty() {
        if let Some(how) = evaluated(text, POSITIONAL, &mut budget) {
            let why = "an argument of a function that evaluates its arguments";
            mark(&function_args, how, why);
        }
    }
    // A variable assigned a token's value (`cmd="deploy ${option.x}"`, also
    // through another variable) holds that value: where the script evaluates
    // the variable (`eval "$cmd"`, `sh -c "$cmd"`), the token is refused;
    // where only as arithmetic (`[[ $n -eq 1 ]]`, `$((n + 1))`), only an
    // integer may go.
    let mut held: Vec<(String, Vec<usize>)> = Vec::new();
    for (name, site) in assigned {
        match held.iter_mut().find(|(n, _)| *n == name) {
            Some((_, from)) => from.push(site),
            None => held.push((name, vec![site])),
        }
    }
    for (name, from) in &held {
        if let Some(how) = evaluated(text, name, &mut budget) {
            mark(from, how, HELD);
        }
    }
    found
}

/// How a script evaluates a value it holds, where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evaluation {
    /// As an arithmetic expression, or a variable's name.
    Arithmetic,
    /// As code: a command line, a nested shell's script, another program's code.
    Code,
}

/// Whether what `name` holds (a variable, or with [`POSITIONAL`] or `1`…
/// the positional parameters) is evaluated at one of its uses in `text`, or
/// through a variable assigned from one, and so on, and how (as code, if
/// anywhere). Each scan takes one from `budget`; with none left, the value
/// is taken as evaluated as code.
fn evaluated(text: &str, name: &str, budget: &mut usize) -> Option<Evaluation> {
    let mut followed: Vec<String> = vec![name.to_string()];
    let mut queue: Vec<String> = vec![name.to_string()];
    let mut found = None;
    while let Some(name) = queue.pop() {
        let Some(left) = budget.checked_sub(1) else {
            return Some(Evaluation::Code);
        };
        *budget = left;
        // `for x; do`, `select x do`: loops over "$@" that do not say so.
        let looped = if is_positional(&name) {
            loops_over_arguments(text)
        } else {
            Vec::new()
        };
        let scan = quoted_sites(text, &|rest: &str| use_of(text, rest, &name));
        found = scan
            .sites
            .iter()
            .filter_map(|u| evaluates(text, u))
            .chain(found)
            .max();
        if found == Some(Evaluation::Code) {
            return found;
        }
        // A value given to one of the script's functions is in its
        // positional parameters, as one given to `set --` is (assigned `1`…).
        let passed = (!scan.function_args.is_empty()).then(|| POSITIONAL.to_string());
        let next = scan.assigned.into_iter().map(|(n, _)| n);
        for name in next.chain(passed).chain(looped) {
            if !followed.contains(&name) && followed.len() < MOST_VARIABLES {
                followed.push(name.clone());
                queue.push(name);
            }
        }
    }
    found
}

/// Whether, and how, a use of a value found in `text` evaluates it. A
/// `$name` use does where the value is not read as data. A bare name does
/// where bash evaluates it as arithmetic (`$((n + 1))`, `((n))`, `let m=n`,
/// `${a[n]}`, `[[ n -eq 1 ]]`: bash evaluates the *value* of `n` as an
/// expression, so `a[$(cmd)]` there runs `cmd`), and after `${!` (the value
/// is taken as a name, whose subscript bash evaluates). In a
/// here-document's `$(…)`, `$((…))` or `${…}`, which the scanner does not
/// tell apart, a bare name is taken as arithmetic; so is one in the
/// subscript of a name (`unset 'a[n]'`, `printf -v 'a[n]'`). `${v@P}`
/// expands the value as a prompt, which runs its `$(…)`: code.
fn evaluates(text: &str, site: &Site) -> Option<Evaluation> {
    let at = site.range.start;
    let written = &text[site.range.clone()];
    if written.starts_with('$') {
        match site.ctx {
            _ if written.starts_with("${") && written.ends_with("@P}") => Some(Evaluation::Code),
            ctx if as_data(ctx) => None,
            Ctx::Arithmetic | Ctx::Name => Some(Evaluation::Arithmetic),
            _ => Some(Evaluation::Code),
        }
    } else {
        let start = text[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(p, c)| p + c.len_utf8());
        let word = &text[start..at];
        let subscript = site.ctx == Ctx::Name && word.rfind('[') > word.rfind(']');
        let indirect = text[..at].ends_with("${!");
        if indirect && text[site.range.end..].starts_with("@P}") {
            return Some(Evaluation::Code);
        }
        let arithmetic =
            subscript || matches!(site.ctx, Ctx::Arithmetic | HEREDOC_CODE) || indirect;
        arithmetic.then_some(Evaluation::Arithmetic)
    }
}

/// How many variables holding a value are followed from one.
const MOST_VARIABLES: usize = 64;

/// How many scans for the uses of values one script may take.
const MOST_SCANS: usize = 256;

const HELD: &str = "a variable holding the value, which the script then evaluates";

/// The length of a use of the variable `name` at the start of `rest`:
/// `$name`, `${name}`, or `${name` with an operator (`${name:-…}`,
/// `${name%…}`, `${name[…]}`) as far as its closing brace.
fn variable_use(rest: &str, name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    let after = rest.strip_prefix('$')?;
    if let Some(tail) = after.strip_prefix(name) {
        return (!tail.starts_with(is_ident)).then_some(1 + name.len());
    }
    let braced = after.strip_prefix('{')?.strip_prefix(name)?;
    if braced.starts_with('}') {
        return Some(3 + name.len());
    }
    if !braced.starts_with([':', '-', '=', '+', '?', '%', '#', '/', '^', ',', '@', '[']) {
        return None;
    }
    let mut depth = 1usize;
    for (i, b) in braced.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(2 + name.len() + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The name [`evaluated`] follows for the positional parameters of the
/// script and its functions.
const POSITIONAL: &str = "@";

/// A use at the start of `rest` of what `name` holds: a positional
/// parameter's (any of them, also `$@` and `${*@P}`) when `name` is one
/// (`1`, from `set -- …`) or [`POSITIONAL`], else the variable's.
fn use_of(text: &str, rest: &str, name: &str) -> Option<usize> {
    if is_positional(name) {
        positional_use(rest)
    } else {
        held_use(text, rest, name)
    }
}

fn is_positional(name: &str) -> bool {
    name == POSITIONAL || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
}

/// The names of the `for` and `select` loops in `text` that have no `in`,
/// and so loop over the positional parameters (`for x; do`, `for x do`,
/// `for x` at the end of a line). Found in the text as it is, quotes and
/// all: a name too many is followed for nothing.
fn loops_over_arguments(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for keyword in ["for", "select"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| !c.is_whitespace() && !";&|({".contains(c)) {
                continue;
            }
            let rest = &text[at + keyword.len()..];
            let Some(rest) = rest.strip_prefix([' ', '\t']) else {
                continue;
            };
            let rest = rest.trim_start_matches([' ', '\t']);
            let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            let after = rest[len..].trim_start_matches([' ', '\t']);
            let bare = after.is_empty()
                || after.starts_with([';', '\n'])
                || after
                    .strip_prefix("do")
                    .is_some_and(|d| !d.starts_with(is_ident));
            if len > 0 && bare {
                names.push(rest[..len].to_string());
            }
        }
    }
    names
}

/// A use of the variable `name` at the start of `rest`, a suffix of `text`:
/// as [`variable_use`], or the bare name as a word of its own (not part of
/// a longer name, not a `$name`, not the target of `name=`), for
/// [`evaluates`] to judge by where it is. A nested shell's word is scanned
/// as a string of its own, where no bare name is looked for: a bare name
/// in a nested shell's arithmetic is not seen (sortie(1)).
fn held_use(text: &str, rest: &str, name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    if let Some(len) = variable_use(rest, name) {
        return Some(len);
    }
    // Where `rest` starts in `text` (`rest` may also end before it does).
    let at = (rest.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    if at + rest.len() > text.len() {
        return None;
    }
    let before = text.get(..at)?;
    let tail = rest.strip_prefix(name)?;
    // `n=…`, and `n = …` in arithmetic.
    let operator = tail.trim_start_matches([' ', '\t']);
    let assigned = operator.starts_with('=') && !operator.starts_with("==");
    let whole = !tail.starts_with(is_ident) && !before.ends_with(|c: char| is_ident(c) || c == '$');
    // `${#n}` is a length; `${!n[@]}` an array's keys, `${!n*}` names (`${!n}`
    // and `${!n@P}` are uses).
    let keys = ["[@]}", "[*]}", "*}", "@}"];
    let counted = before.ends_with("${#")
        || before.ends_with("${!") && keys.iter().any(|k| tail.starts_with(k));
    (whole && !assigned && !counted).then_some(name.len())
}

/// The length of a use of a positional parameter at the start of `rest`
/// (`$1`, `${2}`, `$@`, `$*`).
fn positional_use(rest: &str) -> Option<usize> {
    let after = rest.strip_prefix('$')?;
    if after.starts_with(|c: char| c.is_ascii_digit() || c == '@' || c == '*') {
        return Some(2);
    }
    // `${1}`, `${12}`, `${@}`, and with an operator: `${1:-x}`, `${@@P}`.
    let inner = after.strip_prefix('{')?;
    let digits = inner
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(inner.len());
    let name = match digits {
        0 => inner.get(..1).filter(|n| *n == "@" || *n == "*")?,
        _ => &inner[..digits],
    };
    variable_use(rest, name)
}

/// Whether a variable used in this context is read as data: not run, not
/// evaluated, not pasted into another shell's script (a single-quoted word of
/// a nested shell or a quoted here-document is that shell's own `$name`).
fn as_data(ctx: Ctx) -> bool {
    matches!(
        ctx,
        Ctx::Unquoted
            | Ctx::Double
            | Ctx::Single
            | Ctx::DollarSingle
            | Ctx::Inert
            | Ctx::Heredoc { shell: None, .. }
            | Ctx::Heredoc { literal: true, .. }
            | Ctx::Nested {
                quote: Quote::Single,
                ..
            }
    )
}

/// What one reading of a script found.
struct Scan {
    sites: Vec<Site>,
    /// The variables assigned a value that holds a token (`v="a ${option.x}"`,
    /// `v=$(echo ${option.x})`), with the token's index.
    assigned: Vec<(String, usize)>,
    /// The tokens given as arguments to a function the script defines.
    function_args: Vec<usize>,
}

/// The tokens in `text` and their contexts, as bash and sh both read them.
fn quoted_sites(text: &str, token_at: &dyn Fn(&str) -> Option<usize>) -> Scan {
    // `$'…'` is a string with escapes to bash and `$` then `'…'` to sh (dash):
    // read both ways, and where they differ the token is in text whose quoting
    // depends on the shell that runs it — refused rather than guessed.
    let bash = scan(text, token_at, true);
    let posix = scan(text, token_at, false).sites;
    let Scan {
        sites: bash,
        assigned,
        function_args,
    } = bash;
    let with = |sites| Scan {
        sites,
        assigned,
        function_args,
    };
    if bash == posix {
        return with(bash);
    }
    const DIFFERS: Ctx = Ctx::Code("text that sh and bash quote differently ($'…')");
    if bash.len() != posix.len() || bash.iter().zip(&posix).any(|(a, b)| a.range != b.range) {
        let refused = bash
            .into_iter()
            .map(|s| Site {
                ctx: if s.ctx == Ctx::Inert {
                    Ctx::Inert
                } else {
                    DIFFERS
                },
                ..s
            })
            .collect();
        return with(refused);
    }
    let merged = bash
        .into_iter()
        .zip(posix)
        .map(|(a, b)| Site {
            ctx: if a.ctx == b.ctx { a.ctx } else { DIFFERS },
            range: a.range,
        })
        .collect();
    with(merged)
}

fn scan(text: &str, token_at: &dyn Fn(&str) -> Option<usize>, bash_quotes: bool) -> Scan {
    // A match of no length would hold the scan where it is, for ever.
    let token_at = |rest: &str| token_at(rest).filter(|len| *len > 0);
    Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        token_at: &token_at,
        stack: vec![Frame::Script {
            close: Close::Eof,
            depth: 0,
            cmd: 0,
        }],
        cmds: vec![Command::default()],
        codes: vec![None],
        sites: Vec::new(),
        pending: Vec::new(),
        dbracket: false,
        cases: Vec::new(),
        bash_quotes,
        arrays: Vec::new(),
        heredoc_open: Vec::new(),
        heredoc_unsure: false,
        functions: Vec::new(),
        integers: integer_names(text),
        reads_into: Vec::new(),
        open_reader: None,
        written: Vec::new(),
        nested: Vec::new(),
        compounds: Vec::new(),
        closed: None,
        assigned: Vec::new(),
        function_args: Vec::new(),
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
    /// For each script frame (by its command's index): what its output
    /// becomes when that is code (a substitution in a nested shell's word,
    /// a process substitution a shell reads as its script).
    codes: Vec<Option<&'static str>>,
    sites: Vec<Site>,
    pending: Vec<Pending>,
    /// Inside `[[ … ]]`.
    dbracket: bool,
    /// Open `case` statements: the stack depth of their frame, and whether a
    /// pattern (ended by `)`) comes next.
    cases: Vec<(usize, bool)>,
    /// `$'…'` read as bash reads it (else as sh: `$` and a `'…'` string).
    bash_quotes: bool,
    /// The parenthesis depths (of their script frames) at which an array's
    /// list (`a=(…)`) is open, and the array's name: a word there that
    /// starts with `[` is a subscript, which bash evaluates as arithmetic;
    /// a value there is the array's.
    arrays: Vec<(usize, u32, String)>,
    /// In an unquoted here-document's body: the closers of the `$(…)`,
    /// `` `…` ``, `$((…))`, `$[…]` and `${…}` open so far, which the shell
    /// runs or evaluates there.
    heredoc_open: Vec<u8>,
    /// In that body, a comment, a `case` or a here-document was met inside a
    /// command substitution: its `)` may not close anything, so where the
    /// substitution ends is not known, and every later token of the body is
    /// taken as code.
    heredoc_unsure: bool,
    /// The functions the script defines so far: what one prints comes from
    /// its body, not from the words where it is called.
    functions: Vec<String>,
    /// The variables the script declares integer (`declare -i n`), whose
    /// every assignment bash evaluates as arithmetic.
    integers: Vec<String>,
    /// Process substitutions (by their script frame's command) whose output
    /// is read into variables (`done < <(…)`).
    reads_into: Vec<(usize, Vec<String>)>,
    /// A reader of code stays open for later commands (a coprocess, or
    /// `exec` writing into `>(bash)`): what the script writes after that may
    /// be its code, so every later token is refused, for this reason.
    open_reader: Option<&'static str>,
    /// The files the script has written so far, each with the tokens that
    /// went into it.
    written: Vec<Written>,
    /// Tokens in nested shells' words not yet whole.
    nested: Vec<NestedWord>,
    /// Where the compound commands open so far (`while`, `if`, `{`, `(`…) begin.
    compounds: Vec<usize>,
    /// The text of the compound command closed last (its redirections,
    /// `done <<EOF`, `} < <(…)`, follow it).
    closed: Option<Range<usize>>,
    /// See [`Scan`].
    assigned: Vec<(String, usize)>,
    function_args: Vec<usize>,
}

impl Scanner<'_> {
    fn run(mut self) -> Scan {
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
        // The last command, when no line break ends it.
        if let Some(&Frame::Script { cmd, .. }) = self.stack.first() {
            self.pos = self.bytes.len();
            self.end_command(cmd);
        }
        Scan {
            sites: self.sites,
            assigned: self.assigned,
            function_args: self.function_args,
        }
    }

    /// What the compound command just closed reads its input into, when
    /// `words` are its end's (`while read -r n; do …; done <<EOF`).
    fn loop_read_targets(&self, words: &[String]) -> Vec<String> {
        match (words.first().map(String::as_str), &self.closed) {
            (Some("done" | "}"), Some(range)) => piped_read_targets(&self.text[range.clone()]),
            _ => Vec::new(),
        }
    }

    /// Whether the innermost array list open is this script frame's, at `depth`.
    fn in_array_list(&self, depth: u32) -> bool {
        self.arrays
            .last()
            .is_some_and(|(frame, at, _)| (*frame, *at) == (self.stack.len(), depth))
    }

    fn push_site(&mut self, len: usize, ctx: Ctx) {
        // A here-string `read` assigns (`read -r cmd <<< "…"`).
        let cmd = self.command();
        let current = cmd.start.map_or("", |s| &self.text[s..self.pos]);
        let here_string = |w: &str| {
            w.trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with("<<<")
        };
        if here_string(current) || cmd.words.last().is_some_and(|w| here_string(w)) {
            let site = self.sites.len();
            let mut names: Vec<String> = reader::read_targets(&cmd.words)
                .into_iter()
                .map(str::to_string)
                .collect();
            names.extend(self.loop_read_targets(&cmd.words));
            self.assigned
                .extend(names.into_iter().map(|name| (name, site)));
        }
        // `printf -v NAME …`, `set -- …` ($1, $2 …), `for NAME in …` assign too.
        let words = &self.command().words;
        let looped = match reader::command_name(words) {
            Some(w @ ("for" | "select")) => words.iter().position(|x| x == w),
            _ => None,
        }
        .filter(|at| words.get(at + 2).is_some_and(|w| w == "in"));
        let name = match reader::command_name(words) {
            _ if looped.is_some() => looped.and_then(|at| words.get(at + 1)).cloned(),
            Some("printf") => words
                .iter()
                .enumerate()
                .find_map(|(at, w)| match w.strip_prefix("-v") {
                    Some("") => words.get(at + 1).map(String::as_str),
                    attached => attached,
                })
                .map(|w| {
                    reader::unquoted(w)
                        .split('[')
                        .next()
                        .unwrap_or("")
                        .to_string()
                }),
            Some("set") => words
                .iter()
                .position(|w| w == "--")
                .map(|at| (words.len() - at).to_string()),
            _ => None,
        };
        if let Some(name) = name {
            self.assigned.push((name, self.sites.len()));
        }
        let called = self.command().words.first();
        if called.is_some_and(|w| self.functions.contains(w)) {
            self.function_args.push(self.sites.len());
        }
        // In a process substitution read into variables.
        for frame in &self.stack {
            if let Frame::Script { cmd, .. } = frame {
                for (_, names) in self.reads_into.iter().filter(|(c, _)| c == cmd) {
                    let site = self.sites.len();
                    self.assigned
                        .extend(names.iter().map(|n| (n.clone(), site)));
                }
            }
        }
        // In an array's list (`a=(… "$(…)" …)`), the array holds it.
        for (_, _, name) in &self.arrays {
            if !name.is_empty() {
                self.assigned.push((name.clone(), self.sites.len()));
            }
        }
        // In the value of an assignment, of this command or around it.
        for frame in &self.stack {
            if let Frame::Script { cmd, .. } = frame {
                if let Some(start) = self.cmds[*cmd].start {
                    let word = &self.text[start..self.pos];
                    if let Some(name) = assignment_name(word) {
                        // `n=$(grep -c "$v" f)`: a number computed from the
                        // value, which does not hold it.
                        let value = &self.text[start + word.find('=').unwrap_or(0) + 1..];
                        if !computes_a_number(value) {
                            self.assigned.push((name.to_string(), self.sites.len()));
                        }
                    }
                }
            }
        }
        if let (Ctx::Nested { .. }, Some(start)) = (ctx, self.command().start) {
            let cmd = self.command_index();
            self.nested.push(NestedWord {
                site: self.sites.len(),
                cmd,
                start,
            });
        }
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
        let code = self.substitution_code(false);
        self.enter_substitution(close, len, code);
    }

    fn enter_substitution(&mut self, close: Close, len: usize, code: Option<&'static str>) {
        self.codes.push(code);
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

    /// What the output of a substitution starting here becomes, when code:
    /// the word it is in is read by a nested shell, an interpreter, ssh or
    /// arithmetic (`sh -c "$(…)"`, `eval "$(…)"`, `$(( $(…) ))`), or
    /// (`process`) a shell or interpreter reads it as its script file
    /// (`. <(…)`, `bash <(…)`). Inherited by substitutions inside.
    fn substitution_code(&self, process: bool) -> Option<&'static str> {
        if let Some(code) = self.frame_code() {
            return Some(code);
        }
        let arith = self
            .stack
            .iter()
            .any(|f| matches!(f, Frame::Arith { .. } | Frame::Param { arith: true, .. }));
        if arith || self.reader().is_some() {
            return Some("the output of a command substitution that becomes code");
        }
        let cmd = self.command();
        let current = cmd
            .start
            .map_or("", |s| &self.text[s..self.pos.min(self.text.len())]);
        (process && reader::script_file(&cmd.words, current))
            .then_some("a script read through a process substitution")
    }

    /// The code the innermost enclosing substitution's output becomes, if any.
    fn frame_code(&self) -> Option<&'static str> {
        self.stack.iter().rev().find_map(|f| match f {
            Frame::Script { cmd, .. } => self.codes[*cmd],
            _ => None,
        })
    }

    /// The command of the innermost script frame.
    fn command(&self) -> &Command {
        &self.cmds[self.command_index()]
    }

    fn command_index(&self) -> usize {
        self.stack
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Script { cmd, .. } => Some(*cmd),
                _ => None,
            })
            .expect("the script frame is never popped")
    }

    fn command_mut(&mut self, cmd: usize) -> &mut Command {
        &mut self.cmds[cmd]
    }

    /// A word begins here, if none is being read in the innermost script.
    fn begin_word(&mut self) {
        if let Some(Frame::Script { cmd, .. }) = self.stack.last().copied() {
            let pos = self.pos;
            let command = self.command_mut(cmd);
            command.start.get_or_insert(pos);
            command.began.get_or_insert(pos);
        }
    }

    /// The word being read ends here.
    fn end_word(&mut self, cmd: usize) {
        let pos = self.pos;
        if let Some(start) = self.cmds[cmd].start.take() {
            let word = self.text[start..pos].to_string();
            let first = self.cmds[cmd]
                .words
                .iter()
                .all(|w| matches!(w.as_str(), "!" | "then" | "do" | "else" | "elif" | "time"));
            match word.as_str() {
                "while" | "until" | "for" | "if" | "select" | "{" if first => {
                    self.compounds.push(start)
                }
                "done" | "fi" | "}" if first => self.close_compound(pos),
                _ => {}
            }
            self.cmds[cmd].words.push(word);
            let (whole, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nested)
                .into_iter()
                .partition(|n| n.cmd == cmd && n.start == start);
            self.nested = open;
            for n in whole {
                self.nested_again(&n, pos);
            }
        }
        // `case WORD in` opens patterns; `esac` where a pattern would be closes it.
        let depth = self.stack.len();
        let words = &self.cmds[cmd].words;
        if words.len() == 2 && words[0] == "function" {
            let name = words[1].trim_end_matches("()").to_string();
            self.functions.push(name);
        }
        let words = &self.cmds[cmd].words;
        if words.len() == 3 && words[0] == "case" && words[2] == "in" {
            self.cases.push((depth, true));
            self.cmds[cmd].words.clear();
        } else if words.len() == 1
            && words[0] == "esac"
            && self.cases.last().is_some_and(|(d, _)| *d == depth)
        {
            // Kept as the command's first word: what the `case` printed is
            // piped on from here (`esac | sh`).
            self.cases.pop();
        }
    }

    /// The tokens that went into the files named `names`, which are code
    /// (`why`) now.
    fn generated(&mut self, names: &[String], why: &'static str) {
        let into: Vec<Range<usize>> = self
            .written
            .iter()
            .filter(|w| names.contains(&w.name))
            .flat_map(|w| w.sites.iter().cloned())
            .collect();
        let len = self.sites.len();
        for range in into {
            for site in &mut self.sites[range.start.min(len)..range.end.min(len)] {
                // In a quoted here-document the file gets the variable's
                // name (`${V}`), which it expands itself, as data.
                let named = matches!(site.ctx, Ctx::Inert | Ctx::Heredoc { literal: true, .. });
                if !named {
                    site.ctx = Ctx::Code(why);
                }
            }
        }
    }

    fn close_compound(&mut self, end: usize) {
        if let Some(start) = self.compounds.pop() {
            self.closed = Some(start..end);
        }
    }

    /// Inside a `case` of this frame, where a pattern comes next.
    fn at_pattern(&self) -> bool {
        self.cases
            .last()
            .is_some_and(|(d, pattern)| *d == self.stack.len() && *pattern)
    }

    fn set_pattern(&mut self, pattern: bool) {
        let depth = self.stack.len();
        if let Some(top) = self.cases.last_mut().filter(|(d, _)| *d == depth) {
            top.1 = pattern;
        }
    }

    /// The simple command ends here.
    fn end_command(&mut self, cmd: usize) {
        self.end_word(cmd);
        let words = &self.cmds[cmd].words;
        // Whatever it runs (`coproc sh -c 'exec bash'`, a function).
        if words.first().is_some_and(|w| w == "coproc") {
            self.open_reader = Some("text after a coprocess was started");
        }
        // A script the script wrote and now runs (`cat > gen.sh <<EOF …`,
        // `bash gen.sh`): what went into it is code.
        let mut run: Vec<&str> = reader::files_run(words);
        // `while read c; do eval "$c"; done < cmds.txt`
        if matches!(self.stdin_reader(words), Some(Reader::Code(_))) {
            run.extend(reader::input_files(words));
        }
        let run: Vec<String> = run.into_iter().map(str::to_string).collect();
        self.generated(&run, "a script file the script writes and then runs");
        // `eval "$(cat f)"`, `bash -c "$(< f)"`: a file read where its text is code.
        if let Some(code) = self.frame_code() {
            let words = &self.cmds[cmd].words;
            let mut read: Vec<&str> = words.iter().map(|w| reader::file_name(w)).collect();
            read.extend(reader::input_files(words));
            let read: Vec<String> = read.into_iter().map(str::to_string).collect();
            self.generated(&read, code);
        }
        let words = &self.cmds[cmd].words;
        let names: Vec<String> = reader::written_files(words)
            .into_iter()
            .map(str::to_string)
            .collect();
        if !names.is_empty() {
            // What a pipeline's earlier stages print goes in too (`echo … | tee f`).
            let began = self.cmds[cmd]
                .pipeline
                .or(self.cmds[cmd].began)
                .unwrap_or(self.pos);
            let from = self
                .sites
                .iter()
                .position(|s| s.range.start >= began)
                .unwrap_or(self.sites.len());
            let open = self.pending.iter().any(|d| d.cmd == cmd);
            let words = &self.cmds[cmd].words;
            let first = reader::command_name(words);
            let own: Range<usize> = match first {
                // `exec 5>gen.sh`: what every later command writes may go in.
                Some("exec") => from..usize::MAX,
                // What a compound command or a function prints comes from
                // anywhere before.
                None | Some("}" | "done" | "fi" | "esac") => 0..self.sites.len(),
                Some(name) if self.functions.iter().any(|f| f == name) => 0..self.sites.len(),
                _ => from..self.sites.len(),
            };
            // What went into the files this command reads goes on, each
            // range once: a script that writes one file again and again
            // (`cmd >log 2>&1` on every line) must not double it each time.
            let mut from_files: Vec<Range<usize>> = Vec::new();
            for word in &self.cmds[cmd].words {
                let read = reader::file_name(word);
                for file in self.written.iter().filter(|w| w.name == read) {
                    from_files.extend(file.sites.iter().cloned());
                }
            }
            let mut sites = vec![own];
            sites.extend(merged(from_files));
            let mut names = names;
            names.sort();
            names.dedup();
            for name in names {
                // One record a file, unless a here-document still goes in.
                let kept = self
                    .written
                    .iter_mut()
                    .find(|w| w.name == name && !w.open && !open);
                match kept {
                    Some(file) => {
                        file.sites.extend(sites.iter().cloned());
                        file.sites = merged(std::mem::take(&mut file.sites));
                    }
                    None => self.written.push(Written {
                        name,
                        sites: sites.clone(),
                        open,
                    }),
                }
            }
        }
        // What reads a here-document is known once the command is whole (`<<EOF bash`).
        let words = &self.cmds[cmd].words;
        if self
            .pending
            .iter()
            .any(|d| d.cmd == cmd && d.reader.is_none())
        {
            let reader = match self.cmds[cmd].feeds {
                Some(code) => Some(Reader::Code(code)),
                None => self.stdin_reader(words),
            };
            for doc in self
                .pending
                .iter_mut()
                .filter(|d| d.cmd == cmd && d.reader.is_none())
            {
                doc.reader = reader;
            }
        }
        // A function whose output becomes code (`eval "$(f)"`, `bash <(f)`):
        // its body's tokens are that code.
        let function = words.first().is_some_and(|w| self.functions.contains(w));
        if let (true, Some(code)) = (function, self.frame_code()) {
            for site in self.sites.iter_mut().filter(|s| s.ctx != Ctx::Inert) {
                site.ctx = Ctx::Code(code);
            }
        }
        self.cmds[cmd].words.clear();
        self.cmds[cmd].began = None;
        self.cmds[cmd].feeds = None;
        self.cmds[cmd].pipeline = None;
    }

    /// At a `|`: when the next command reads its input as code (`| sh`,
    /// `| ssh host`, `| python3`), what this command prints is that code, so
    /// its tokens — and the here-documents it feeds — are refused.
    fn pipe(&mut self, cmd: usize) {
        let after = past_bodies(&self.text[self.pos + 1..], &self.pending);
        if let Some(reader) = pipeline_reader(after, &self.functions) {
            self.output_is_code(cmd, reader, true);
        }
        // `… | while read -r n; do …`: what this command prints goes into n.
        let began = self.cmds[cmd].began.unwrap_or(0);
        for name in piped_read_targets(after) {
            let fed = (0..self.sites.len()).filter(|i| self.sites[*i].range.start >= began);
            let held: Vec<(String, usize)> = fed.map(|i| (name.clone(), i)).collect();
            self.assigned.extend(held);
        }
    }

    /// What `cmd` prints is read as code by `reader`, through a pipe or (not
    /// `piped`) a process substitution it writes into (`> >(sh)`, `tee
    /// >(bash)`): its tokens, and the here-documents it feeds, are refused.
    fn output_is_code(&mut self, cmd: usize, reader: Reader, piped: bool) {
        let into = match (reader, piped) {
            (Reader::Arithmetic | Reader::Name, _) => return,
            (Reader::Remote, true) => "text piped into a remote shell (ssh)",
            (Reader::Shell | Reader::Cleared(_), true) => "text piped into a shell",
            (Reader::Code(_), true) => "text piped into an interpreter",
            (_, false) => "text written into a process substitution that runs it",
        };
        if !piped {
            self.cmds[cmd].feeds = Some(into);
        }
        let reader = Some(reader);
        // A simple command's own words; what a compound command (`( … )`,
        // `{ …; }`, a loop) or a function printed cannot be told apart from
        // the rest of the script before it, so all of that is refused.
        let closes = self.cmds[cmd].words.first().is_some_and(|w| {
            matches!(w.as_str(), "}" | "done" | "fi" | "esac")
                || self.functions.contains(w)
                || reader::unknown(reader::basename(w))
        });
        // `cat gen.sh | bash`: what went into a file the script wrote.
        let read: Vec<String> = self.cmds[cmd]
            .words
            .iter()
            .map(|w| reader::file_name(w).to_string())
            .collect();
        self.generated(&read, into);
        let began = match self.cmds[cmd].began {
            Some(began) if !closes => began,
            _ => 0,
        };
        for site in self.sites.iter_mut().filter(|s| s.range.start >= began) {
            if site.ctx != Ctx::Inert {
                site.ctx = Ctx::Code(into);
            }
        }
        // A here-document piped into a shell is that shell's script, as if
        // the shell read it itself (`cat <<EOF | sh` is `sh <<EOF`).
        let feeds = match reader {
            Some(Reader::Shell | Reader::Cleared(_)) => reader,
            _ => Some(Reader::Code(into)),
        };
        for doc in &mut self.pending {
            doc.reader = feeds;
        }
    }

    fn token_ctx(&self, len: usize) -> Ctx {
        if let Some(code) = self.frame_code().or(self.command().feeds) {
            return Ctx::Code(code);
        }
        if let Some(why) = self.open_reader {
            return Ctx::Code(why);
        }
        let quoted = match self.stack.last().expect("a frame") {
            Frame::Arith { .. } | Frame::Param { arith: true, .. } => return Ctx::Arithmetic,
            Frame::Double | Frame::Param { quoted: true, .. } => true,
            Frame::Script { .. } | Frame::Param { quoted: false, .. } => false,
        };
        if let Some(ctx) = self.arithmetic_test(len) {
            return ctx;
        }
        if self.integer_assignment() {
            return Ctx::Arithmetic;
        }
        if self.evaluated_assignment() {
            return EVALUATED_VARIABLE;
        }
        let quote = if quoted { Quote::Double } else { Quote::None };
        match self.reader() {
            Some(Reader::Shell) if self.nested_arithmetic() => Ctx::Arithmetic,
            Some(reader) => self.refine(for_reader(reader, quote), len),
            None if quoted => Ctx::Double,
            None => Ctx::Unquoted,
        }
    }

    /// The word being read assigns a variable whose value bash itself runs
    /// or expands again: the prompts (`PS4` under `set -x`),
    /// `PROMPT_COMMAND`, and `BASH_ENV`/`ENV` (a file a later shell sources).
    /// Whether the word being read is the value of an assignment to a
    /// variable the script declares integer (`n=…`, `n+=…`).
    fn integer_assignment(&self) -> bool {
        let Some(start) = self.command().start else {
            return false;
        };
        assignment_name(&self.text[start..self.pos])
            .is_some_and(|name| self.integers.iter().any(|i| i == name))
    }

    fn evaluated_assignment(&self) -> bool {
        let Some(start) = self.command().start else {
            return false;
        };
        self.text[start..self.pos]
            .split_once('=')
            .map(|(name, _)| name.trim_end_matches('+'))
            .is_some_and(|name| {
                matches!(
                    name,
                    "PS0" | "PS1" | "PS2" | "PS3" | "PS4" | "PROMPT_COMMAND" | "BASH_ENV" | "ENV"
                )
            })
    }

    /// What reads the input of the command made of `words`: what
    /// [`reader::stdin`] says, but a function the script defines, or a
    /// compound command (`{ …; }`, `( … )`, a loop) where the script so far
    /// names a reader of code, may read it as code.
    fn stdin_reader(&self, words: &[String]) -> Option<Reader> {
        match reader::command_name(words) {
            Some(name) if self.functions.iter().any(|f| f == name) => {
                Some(Reader::Code("the input of a function the script defines"))
            }
            None | Some("}" | "done" | "fi")
                if self
                    .closed
                    .clone()
                    .is_some_and(|body| reader::names_a_reader(&self.text[body])) =>
            {
                Some(Reader::Code(
                    "the input of a compound command that runs a reader of code",
                ))
            }
            _ => reader::stdin(words),
        }
    }

    /// What reads the word being read: the command it is an argument of, or,
    /// for a here-string (`<<<WORD`), what reads the command's input.
    fn reader(&self) -> Option<Reader> {
        let cmd = self.command();
        let current = cmd
            .start
            .map_or("", |s| &self.text[s..self.pos.min(self.text.len())]);
        let here_string = |w: &str| {
            w.trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with("<<<")
        };
        if here_string(current) || cmd.words.last().is_some_and(|w| here_string(w)) {
            // On another descriptor, or opened by exec for later commands.
            let other =
                |w: &str| w.starts_with(|c: char| c.is_ascii_digit()) && !w.starts_with("0<");
            if other(current)
                || cmd.words.last().is_some_and(|w| other(w))
                || cmd.words.first().is_some_and(|w| w == "exec")
            {
                return Some(Reader::Code(ON_A_DESCRIPTOR));
            }
            self.stdin_reader(&cmd.words)
        } else {
            reader::word(&cmd.words, current)
        }
    }

    /// A token in a nested shell's word, looked at as that shell will see it:
    /// a context there that makes a value code (a shell nested once more, an
    /// interpreter's program, ssh) is that context here. Backquotes take one
    /// level of backslashes away, so a nested word inside them is refused.
    fn refine(&self, ctx: Ctx, len: usize) -> Ctx {
        let Ctx::Nested { quote, .. } = ctx else {
            return ctx;
        };
        if self.stack.iter().any(|f| {
            matches!(
                f,
                Frame::Script {
                    close: Close::Backquote,
                    ..
                }
            )
        }) {
            return Ctx::Code("a nested shell's script inside backquotes (write $(…) instead)");
        }
        let start = self.command().start.unwrap_or(self.pos).min(self.pos);
        let script = unquote(&self.text[start..self.pos]);
        match self.inner(&script, len) {
            Ok(inner) => Ctx::Nested { quote, inner },
            Err(refused) => refused,
        }
    }

    /// The quotes the token at the position sits in for a nested shell whose
    /// script so far is `script`, or the context that refuses it there.
    fn inner(&self, script: &str, len: usize) -> Result<Quote, Ctx> {
        let text = format!("{script}{}", &self.text[self.pos..self.pos + len]);
        inner_quote(sites(&text, self.token_at).last().map(|s| s.ctx))
    }

    /// The token at `sites[n.site]`, in a nested shell's word that ends at
    /// `end`: what it is in the whole of the nested script.
    fn nested_again(&mut self, n: &NestedWord, end: usize) {
        let site = &self.sites[n.site];
        let Ctx::Nested { quote, .. } = site.ctx else {
            return;
        };
        let before = unquote(&self.text[n.start..site.range.start]);
        let token = &self.text[site.range.clone()];
        // Its place among the nested script's tokens.
        let at = sites(&format!("{before}{token}"), self.token_at).len() - 1;
        let whole = sites(&unquote(&self.text[n.start..end]), self.token_at);
        self.sites[n.site].ctx = match inner_quote(whole.get(at).map(|s| s.ctx)) {
            Ok(inner) => Ctx::Nested { quote, inner },
            Err(refused) => refused,
        };
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
    /// evaluated as arithmetic; after `-v`, it is a name.
    fn arithmetic_test(&self, len: usize) -> Option<Ctx> {
        if !self.dbracket {
            return None;
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
        if prev == "-v" {
            Some(Ctx::Name)
        } else if ARITH_TESTS.contains(&prev) || ARITH_TESTS.contains(&next) {
            Some(Ctx::Arithmetic)
        } else {
            None
        }
    }

    fn script(&mut self, close: Close, depth: u32, cmd: usize) {
        // A line continuation joins lines; it is never a word of its own.
        if self.at("\\\n") {
            self.pos += 2;
            return;
        }
        let b = self.bytes[self.pos];
        // `>&2`, `2>&1`, `<&3`, `&>f`, `&>>f`: a redirection, one word with
        // its operator, not a command's end.
        let after_arrow = self.pos > 0 && matches!(self.bytes[self.pos - 1], b'>' | b'<');
        let redirection = (b == b'&' && (self.at("&>") || after_arrow))
            || (b == b'|' && self.pos > 0 && self.bytes[self.pos - 1] == b'>');
        if redirection || !matches!(b, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')') {
            self.begin_word();
        }
        match b {
            b'&' | b'|' if redirection => self.pos += 1,
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
                if self.pos > 0 && self.bytes[self.pos - 1] == b'=' {
                    let word = self.command().start.map_or("", |s| &self.text[s..self.pos]);
                    let name = assignment_name(word).unwrap_or_default().to_string();
                    self.arrays.push((self.stack.len(), depth + 1, name));
                }
                self.end_word(cmd);
                // `f() …`: a function's head.
                if self.at("()") {
                    // (`a=()` is an empty array.)
                    if let [.., name] = self.cmds[cmd].words.as_slice() {
                        if !name.contains('=') {
                            self.functions.push(name.clone());
                        }
                    }
                }
                self.end_command(cmd);
                self.compounds.push(self.pos);
                self.set_top(Frame::Script {
                    close,
                    depth: depth + 1,
                    cmd,
                });
                self.pos += 1;
            }
            // The `)` that ends a `case` pattern.
            b')' if self.at_pattern()
                && self.cmds[cmd].start.map(|s| &self.text[s..self.pos]) != Some("esac") =>
            {
                self.end_command(cmd);
                self.set_pattern(false);
                self.pos += 1;
            }
            b')' if close == Close::Paren && depth == 0 => {
                self.end_command(cmd);
                self.leave(1);
            }
            b')' => {
                if self.in_array_list(depth) {
                    self.arrays.pop();
                }
                self.end_command(cmd);
                self.close_compound(self.pos + 1);
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
            // `name[…]=`: the subscript of an assignment is arithmetic, and
            // so is `[…]=` in an array's list.
            b'[' if self.assignment_subscript(cmd) => self.enter(SUBSCRIPT, 1),
            b'[' if self.word_start() && self.in_array_list(depth) => self.enter(SUBSCRIPT, 1),
            b';' if self.at(";;") => {
                self.end_command(cmd);
                self.set_pattern(true);
                self.pos += if self.at(";;&") { 3 } else { 2 };
            }
            b';' if self.at(";&") => {
                self.end_command(cmd);
                self.set_pattern(true);
                self.pos += 2;
            }
            b'|' if !self.at("||") => {
                self.end_word(cmd);
                self.pipe(cmd);
                let pipeline = self.cmds[cmd].pipeline.or(self.cmds[cmd].began);
                self.end_command(cmd);
                self.cmds[cmd].pipeline = pipeline;
                self.pos += 1;
            }
            b';' | b'&' | b'|' => {
                self.end_command(cmd);
                self.pos += if self.at("||") { 2 } else { 1 };
            }
            // `<(…)`, `>(…)`: a process substitution.
            b'<' | b'>' if self.rest().get(1) == Some(&b'(') => {
                if b == b'>' {
                    if let Some(reader) =
                        pipeline_reader(&self.text[self.pos + 2..], &self.functions)
                    {
                        self.output_is_code(cmd, reader, false);
                        // `exec > >(bash)`, `exec 4> >(bash)`: for every later command.
                        if self.command().words.first().is_some_and(|w| w == "exec") {
                            self.open_reader =
                                Some("text after exec opened a process substitution that runs it");
                        }
                    }
                }
                // `< <(…)`: what reads it as input; `3< <(…)`, `exec < <(…)`:
                // later commands may.
                let before = self.text[..self.pos].trim_end();
                let input = b == b'<' && before.ends_with('<');
                let fd = before
                    .trim_end_matches('<')
                    .ends_with(|c: char| c.is_ascii_digit() && c != '0');
                let words = &self.command().words;
                let exec = words.first().is_some_and(|w| w == "exec");
                let code = match (input, fd || exec) {
                    (true, true) => Some(ON_A_DESCRIPTOR),
                    (true, false) => match self.stdin_reader(words) {
                        Some(Reader::Code(code)) => Some(code),
                        _ => self.substitution_code(true),
                    },
                    _ => self.substitution_code(true),
                };
                // `read -r n < <(…)`, `while read -r n; …; done < <(…)`: what
                // it prints is read into n.
                let into: Vec<String> = match input && !fd && !exec {
                    true => reader::read_targets(words)
                        .into_iter()
                        .map(str::to_string)
                        .chain(self.loop_read_targets(words))
                        .collect(),
                    false => Vec::new(),
                };
                self.enter_substitution(Close::Paren, 2, code);
                if !into.is_empty() {
                    self.reads_into.push((self.cmds.len() - 1, into));
                }
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
        } else if self.at("$'") && !quoted && self.bash_quotes {
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

    /// `'…'`: no escapes. Tokens inside are data ([`Ctx::Single`]), or in the
    /// context of the program that reads the word (a nested shell, an
    /// interpreter, arithmetic).
    fn single(&mut self) {
        self.pos += 1;
        let end = self.rest().iter().position(|b| *b == b'\'');
        let end = end.map_or(self.bytes.len(), |e| self.pos + e);
        let ctx = self.quoted_text_ctx(&self.text[self.pos..end], Ctx::Single);
        self.leaf(b'\'', ctx, false);
        self.pos += 1;
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

    /// The context of tokens in single-quoted `text`, by what reads the word:
    /// `data` for a command that takes it as data.
    fn quoted_text_ctx(&self, text: &str, data: Ctx) -> Ctx {
        if let Some(code) = self.frame_code() {
            return Ctx::Code(code);
        }
        if self.evaluated_assignment() {
            return EVALUATED_VARIABLE;
        }
        if self.integer_assignment() {
            return Ctx::Arithmetic;
        }
        match self.reader() {
            None => data,
            Some(Reader::Shell) if ARITH_MARKERS.iter().any(|m| text.contains(m)) => {
                Ctx::Arithmetic
            }
            Some(reader) => for_reader(reader, Quote::Single),
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
                let ctx = self.refine(ctx, len);
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
            // Inside a substitution whose output is code (`eval "$(cat <<EOF`),
            // so is what it reads.
            // On another descriptor (`3<<EOF`) or for later commands (`exec <<EOF`).
            let fd = self.text[..self.pos]
                .trim_end_matches(|c: char| c != '<')
                .trim_end_matches('<')
                .ends_with(|c: char| c.is_ascii_digit() && c != '0');
            let exec = self.command().words.first().is_some_and(|w| w == "exec");
            let reader = match self.frame_code().or(self.command().feeds) {
                Some(code) => Some(Reader::Code(code)),
                None if fd || exec => Some(Reader::Code(ON_A_DESCRIPTOR)),
                None => self.stdin_reader(&self.command().words),
            };
            let words = &self.command().words;
            let mut assigns: Vec<String> = reader::read_targets(words)
                .into_iter()
                .map(str::to_string)
                .collect();
            assigns.extend(self.loop_read_targets(words));
            self.pending.push(Pending {
                delimiter,
                literal,
                strip_tabs,
                reader,
                cmd: self.command_index(),
                assigns,
            });
        }
    }

    /// After a newline: the bodies of the here-documents announced on that line.
    fn heredoc_bodies(&mut self) {
        for doc in std::mem::take(&mut self.pending) {
            self.heredoc_open.clear();
            self.heredoc_unsure = false;
            let (start, first_site) = (self.pos, self.sites.len());
            let mut body_end = self.bytes.len();
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
                    body_end = self.pos;
                    self.pos = (line_end + 1).min(self.bytes.len());
                    break;
                }
                self.heredoc_line(line_end, doc.literal, doc.reader);
                self.pos = (line_end + 1).min(self.bytes.len());
            }
            if matches!(doc.reader, Some(Reader::Shell | Reader::Cleared(_))) {
                self.body_again(start..body_end.min(self.pos), first_site, doc.literal);
            }
            for site in first_site..self.sites.len() {
                for name in &doc.assigns {
                    self.assigned.push((name.clone(), site));
                }
            }
        }
        let end = self.sites.len();
        for file in self.written.iter_mut().filter(|w| w.open) {
            file.sites[0].end = file.sites[0].end.max(end);
            file.open = false;
        }
    }

    /// The tokens of a here-document a shell reads as its script (`body`,
    /// from `sites[first..]`), looked at in the whole of that script: its
    /// later lines (`| sh`, a `-eq`, a function piped on) may change what a
    /// token is there.
    fn body_again(&mut self, body: Range<usize>, first: usize, literal: bool) {
        let text = &self.text[body];
        let script = if literal {
            text.to_string()
        } else {
            unquote_heredoc(text)
        };
        let whole = sites(&script, self.token_at);
        // Each token of the body is one of the script's, in turn.
        let follows = whole.len() == self.sites.len() - first;
        for (at, site) in self.sites[first..].iter_mut().enumerate() {
            let Ctx::Heredoc {
                literal,
                shell: Some(_),
            } = site.ctx
            else {
                continue;
            };
            let there = whole.get(at).filter(|_| follows).map(|s| s.ctx);
            site.ctx = match inner_quote(there) {
                Ok(inner) => Ctx::Heredoc {
                    literal,
                    shell: Some(inner),
                },
                Err(refused) => refused,
            };
        }
    }

    fn heredoc_line(&mut self, end: usize, literal: bool, reader: Option<Reader>) {
        let line_start = self.pos;
        while self.pos < end {
            if !literal && self.bytes[self.pos] == b'\\' {
                self.escape();
                continue;
            }
            match (self.token_at)(&self.text[self.pos..end]) {
                // Written into a coprocess (`cat >&${COPROC[1]} <<EOF`), say.
                Some(len) if self.open_reader.is_some() => {
                    let why = self.open_reader.expect("a reason");
                    self.push_site(len, Ctx::Code(why))
                }
                // Inside what the shell runs or evaluates there.
                Some(len) if !self.heredoc_open.is_empty() || self.heredoc_unsure => {
                    self.push_site(len, HEREDOC_CODE)
                }
                Some(len) => {
                    let ctx = match reader {
                        None => Ctx::Heredoc {
                            literal,
                            shell: None,
                        },
                        // A shell reads the body as its script: the token's
                        // quotes there (the line so far is its context).
                        Some(Reader::Shell) => {
                            let script = &self.text[line_start..self.pos];
                            let script = if literal {
                                script.to_string()
                            } else {
                                unquote_heredoc(script)
                            };
                            match self.inner(&script, len) {
                                Ok(inner) => Ctx::Heredoc {
                                    literal,
                                    shell: Some(inner),
                                },
                                Err(refused) => refused,
                            }
                        }
                        Some(other) => for_reader(other, Quote::None),
                    };
                    self.push_site(len, ctx)
                }
                None if literal => self.advance(),
                None => {
                    if self.heredoc_construct() {
                        self.pos += 2;
                    } else {
                        self.advance();
                    }
                }
            }
        }
    }

    /// Keeps count of the substitutions and expansions open in an unquoted
    /// here-document's body, at the byte about to be passed; true when that
    /// is a two-byte opener (`$(`, `$[`, `${`), passed whole.
    fn heredoc_construct(&mut self) -> bool {
        let b = self.bytes[self.pos];
        // Quotes inside a substitution: nothing in them opens or closes one.
        match self.heredoc_open.last() {
            Some(&q) if q == b'\'' || q == b'"' => {
                if b == q {
                    self.heredoc_open.pop();
                }
                return false;
            }
            Some(_) if b == b'\'' || b == b'"' => {
                self.heredoc_open.push(b);
                return false;
            }
            // In a command substitution, a `)` that ends a `case` pattern, or
            // one in a comment or a nested here-document, closes nothing.
            Some(b')' | b'`') => {
                let word_start = matches!(
                    self.bytes[self.pos - 1],
                    b' ' | b'\t' | b'\n' | b';' | b'|' | b'&' | b'(' | b'`'
                );
                if (word_start && (b == b'#' || self.at("case ") || self.at("case\t")))
                    || self.at("<<")
                {
                    self.heredoc_unsure = true;
                }
            }
            _ => {}
        }
        for (opener, closer) in [("$(", b')'), ("$[", b']'), ("${", b'}')] {
            if self.at(opener) {
                self.heredoc_open.push(closer);
                return true;
            }
        }
        match b {
            b'`' if self.heredoc_open.last() == Some(&b'`') => {
                self.heredoc_open.pop();
            }
            b'`' => self.heredoc_open.push(b'`'),
            b'(' if !self.heredoc_open.is_empty() => self.heredoc_open.push(b')'),
            _ if self.heredoc_open.last() == Some(&b) => {
                self.heredoc_open.pop();
            }
            _ => {}
        }
        false
    }
}

/// The variable a word assigns (`NAME=…`, `NAME+=…`, `NAME[…]=…`), if it
/// is an assignment.
fn assignment_name(word: &str) -> Option<&str> {
    let end = word.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let name = &word[..end];
    let mut rest = &word[end..];
    if rest.starts_with('[') {
        rest = &rest[rest.find(']')? + 1..];
    }
    let starts = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (starts && (rest.starts_with('=') || rest.starts_with("+="))).then_some(name)
}

/// Whether an assignment's value (the text from just after its `=`) is
/// only a command substitution whose pipeline ends in a command that prints
/// a number, not its arguments: `$(grep -c "$v" f)`, `"$(wc -l < "$f")"`,
/// `$(df --output=pcent "$p" | tail -1 | tr -dc 0-9)`.
fn computes_a_number(value: &str) -> bool {
    let quoted = value.strip_prefix('"');
    let Some(inner) = quoted.unwrap_or(value).strip_prefix("$(") else {
        return false;
    };
    // To the `)` that closes it, outside quotes and nested parentheses.
    let (mut depth, mut quote, mut end) = (1, None, None);
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(end) = end else { return false };
    let after = &inner[end + 1..];
    let whole = match quoted {
        Some(_) => after.starts_with('"') && ends_value(&after[1..]),
        None => ends_value(after),
    };
    if !whole {
        return false;
    }
    // Its one pipeline (`$(grep -c x f; echo "$v")` prints more): a stage that
    // prints a number, and after it only stages that pass numbers on.
    let mut rest = &inner[..end];
    let mut numbers = false;
    loop {
        let at = stage_end(rest);
        let words = stage_words(&rest[..at]);
        numbers = reader::prints_a_number(&words) || numbers && reader::passes_numbers(&words);
        // `|| true`, `|| echo 0`: grep -c's exit status when it counts none.
        let fallback = rest[at..]
            .strip_prefix("||")
            .map(str::trim)
            .is_some_and(|f| {
                f == "true"
                    || f == ":"
                    || f.strip_prefix("echo ")
                        .is_some_and(|n| n.trim().parse::<u64>().is_ok())
            });
        match rest[at..].strip_prefix('|') {
            _ if fallback => return numbers,
            Some(next) if !next.starts_with(['|', '&']) => rest = next,
            Some(_) => return false,
            None if !rest[at..].trim().is_empty() => return false,
            None => return numbers,
        }
    }
}

/// Whether `rest` (after a word's value) ends the word.
fn ends_value(rest: &str) -> bool {
    rest.is_empty()
        || rest.starts_with(char::is_whitespace)
        || rest.starts_with([';', '&', '|', ')'])
}

/// The variables `text` declares integer anywhere (`declare -i n`,
/// `local -ir a b=1`, `typeset -i`): read by words, each command to its
/// `;`, `&`, `|` or line's end. Every scan of a script asks, so a script
/// that declares nothing is told at once.
fn integer_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    if !["declare", "typeset", "local"]
        .iter()
        .any(|k| text.contains(k))
    {
        return names;
    }
    for command in text.split(['\n', ';', '&', '|']) {
        // Past reserved words and a function's head (`f() { local -i n`).
        let all: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        let Some(at) = reader::command_name(&all)
            .filter(|n| matches!(*n, "declare" | "typeset" | "local"))
            .and_then(|n| all.iter().position(|w| w == n))
        else {
            continue;
        };
        let words: Vec<&str> = all[at + 1..].iter().map(String::as_str).collect();
        let integer = words
            .iter()
            .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('i'));
        if integer {
            names.extend(
                words
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| w.split(['=', '+', '[']).next().unwrap_or(""))
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
            );
        }
    }
    names
}

/// What a token's context in a nested shell's script makes of it here: the
/// quotes it is in there, or (`Err`) why it is refused.
fn inner_quote(ctx: Option<Ctx>) -> Result<Quote, Ctx> {
    match ctx {
        None => Err(Ctx::Code("a nested script sortie cannot follow")),
        Some(Ctx::Nested { .. } | Ctx::Heredoc { shell: Some(_), .. }) => {
            Err(Ctx::Code("a script for a shell nested in a nested shell"))
        }
        Some(c @ (Ctx::Remote | Ctx::Code(_) | Ctx::Cleared(_) | Ctx::Arithmetic | Ctx::Name)) => {
            Err(c)
        }
        Some(Ctx::Double | Ctx::Heredoc { literal: false, .. }) => Ok(Quote::Double),
        Some(Ctx::Single | Ctx::DollarSingle) => Ok(Quote::Single),
        Some(_) => Ok(Quote::None),
    }
}

/// Text given to a command on a descriptor other than its input, or to later
/// commands through `exec`: any of them may read it as code.
const ON_A_DESCRIPTOR: &str = "text opened on a descriptor (3<<EOF, exec <<EOF, 3< <(…))";

/// A token in the value of a variable bash evaluates (`PS4=…`).
const EVALUATED_VARIABLE: Ctx =
    Ctx::Code("a variable bash evaluates (PS1–PS4, PROMPT_COMMAND, BASH_ENV, ENV)");

/// A token in a here-document's `$(…)`, backquotes, `$((…))`, `$[…]` or `${…}`.
const HEREDOC_CODE: Ctx = Ctx::Code("a here-document's $(…), `…`, $((…)) or ${…}");

/// The variables a later stage of a pipeline reads its input into, given
/// the text after the `|`: `read -r a b`, `while read -r l`, `{ read -r l; …`,
/// also past stages that pass it on (`| tee log | while read -r l`).
fn piped_read_targets(after: &str) -> Vec<String> {
    // Joined only where a stage goes on past a line continuation: the rest
    // of the script is long, and this is asked at every `|`.
    let joined;
    let mut rest = after.strip_prefix('&').unwrap_or(after).trim_start();
    if rest[stage_end(rest)..].starts_with("\\\n") {
        joined = rest.replace("\\\n", " ");
        rest = &joined;
    }
    loop {
        for opener in ["while ", "until ", "{ ", "( ", "("] {
            if let Some(next) = rest.strip_prefix(opener) {
                rest = next.trim_start();
            }
        }
        let end = stage_end(rest);
        let words = stage_words(&rest[..end]);
        let targets = reader::read_targets(&words);
        if !targets.is_empty() {
            return targets.into_iter().map(str::to_string).collect();
        }
        match rest[end..].strip_prefix('|') {
            Some(next) if !next.starts_with('|') => {
                rest = next.strip_prefix('&').unwrap_or(next).trim_start()
            }
            _ => return Vec::new(),
        }
    }
}

/// The words of a pipeline's stage, quotes kept: split at blanks outside
/// quotes (`sed 's/^/echo /e'` is two words).
fn stage_words(stage: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = stage.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None | Some('"'), '\\') => {
                word.push(c);
                word.extend(chars.next());
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// What reads the output of a pipeline's stage as code, given the text after
/// its `|`: the first later stage that is a shell, an interpreter or `ssh`
/// (the stages between may pass the text on: `| tee log | sh`). `|&`, line
/// breaks and comments after a `|` do not end the pipeline.
fn pipeline_reader(after: &str, functions: &[String]) -> Option<Reader> {
    let mut rest = after.strip_prefix('&').unwrap_or(after);
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix('#') {
            rest = comment.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(next) = rest.strip_prefix("\\\n") {
            rest = next;
        } else if let Some(next) = rest.strip_prefix('(').or_else(|| {
            // `{ …; }`, not the brace expansion `{bash,}`.
            rest.strip_prefix('{')
                .filter(|n| n.starts_with(char::is_whitespace))
        }) {
            // A subshell or group around the reader; one that runs what it
            // reads (`| { read -r l; eval "$l"; }`).
            let body = next.split([')', '}']).next().unwrap_or(next);
            if reader::names_a_reader(body) {
                return Some(Reader::Code(
                    "the input of a compound command that runs a reader of code",
                ));
            }
            rest = next;
        } else {
            break;
        }
    }
    // A line continuation inside the stage joins its words (`sed \⏎ e`).
    let joined;
    if rest[stage_end(rest)..].starts_with("\\\n") {
        joined = rest.replace("\\\n", " ");
        rest = &joined;
    }
    let end = stage_end(rest);
    // `| tee >(sh)`: the stage writes what it reads into a reader.
    if let Some(at) = rest[..end].find(">(") {
        if let Some(found) = pipeline_reader(&rest[at + 2..], functions) {
            return Some(found);
        }
    }
    let words = stage_words(&rest[..end]);
    let first = words.first().map(String::as_str);
    if first.is_some_and(|w| functions.iter().any(|f| f == w)) {
        return Some(Reader::Code("the input of a function the script defines"));
    }
    // A loop or `if` reading the input, that runs a reader of code (`|
    // while read l; do sh -c "$l"; done`): the rest of the script is taken as its body.
    if matches!(first, Some("while" | "until" | "for" | "if" | "select"))
        && reader::names_a_reader(compound_body(rest))
    {
        return Some(Reader::Code(
            "the input of a compound command that runs a reader of code",
        ));
    }
    match reader::stdin(&words) {
        Some(found) => Some(found),
        None => {
            let mut next = &rest[end..];
            // A line continuation before the next `|`.
            while let Some(joined) = next.strip_prefix("\\\n") {
                next = joined.trim_start();
                next = &next[stage_end(next)..];
            }
            let piped = next.starts_with('|') && !next.starts_with("||");
            piped
                .then(|| pipeline_reader(&next[1..], functions))
                .flatten()
        }
    }
}

/// A loop's or `if`'s text at the start of `text`: up to its first `done`
/// or `fi` (a nested one ends it early: what it leaves out is the rest of
/// the script).
fn compound_body(text: &str) -> &str {
    let bytes = text.as_bytes();
    let boundary =
        |i: usize| i >= bytes.len() || !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_');
    let end = text
        .match_indices("done")
        .chain(text.match_indices("fi"))
        .filter(|(at, word)| (*at == 0 || boundary(at - 1)) && boundary(at + word.len()))
        .map(|(at, _)| at)
        .min();
    &text[..end.unwrap_or(text.len())]
}

/// The text after a `|` that ends its line, past the bodies of the
/// here-documents announced on that line, which come first
/// (`cat <<EOF |⏎…⏎EOF⏎sh`).
fn past_bodies<'t>(after: &'t str, pending: &[Pending]) -> &'t str {
    let Some((line, mut rest)) = after.split_once('\n') else {
        return after;
    };
    let line = line.trim_start_matches('&').trim();
    if pending.is_empty() || !(line.is_empty() || line.starts_with('#')) {
        return after;
    }
    for doc in pending {
        while !rest.is_empty() {
            let (body, next) = rest.split_once('\n').unwrap_or((rest, ""));
            rest = next;
            let body = if doc.strip_tabs {
                body.trim_start_matches('\t')
            } else {
                body
            };
            if body == doc.delimiter {
                break;
            }
        }
    }
    rest
}

/// Where a pipeline's stage ends in `text`: at a line break, `;`, `&`,
/// `|` or `)` outside quotes, but not at the `&` or `|` of a redirection (`2>&1`, `&>f`,
/// `>|f`), nor at a line continuation's line break (which it stops before).
fn stage_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let after_arrow = i > 0 && matches!(bytes[i - 1], b'>' | b'<');
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => return i,
            b'&' if after_arrow || bytes.get(i + 1) == Some(&b'>') => i += 1,
            b'|' if i > 0 && bytes[i - 1] == b'>' => i += 1,
            b'\n' | b';' | b'&' | b'|' | b')' => return i,
            // A quoted `;` or `|` is part of a word (`sed 's/a/b/;e'`).
            q @ (b'\'' | b'"') => {
                i += 1 + bytes[i + 1..]
                    .iter()
                    .position(|b| *b == q)
                    .map_or(bytes.len() - i - 1, |p| p + 1);
            }
            _ => i += 1,
        }
    }
    bytes.len()
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

/// The context of a word whose reader is `reader`, written inside `quote`.
fn for_reader(reader: Reader, quote: Quote) -> Ctx {
    match reader {
        Reader::Shell => Ctx::Nested {
            quote,
            inner: Quote::None,
        },
        Reader::Cleared(behind) => Ctx::Cleared(behind),
        Reader::Remote => Ctx::Remote,
        Reader::Code(what) => Ctx::Code(what),
        Reader::Arithmetic => Ctx::Arithmetic,
        Reader::Name => Ctx::Name,
    }
}

/// An unquoted here-document's text as the shell passes it on: `\$`, `` \` ``
/// and `\\` lose their backslash.
fn unquote_heredoc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('$' | '`' | '\\')) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `word` as the shell passes it on: quotes removed, backslash escapes undone
/// (roughly: enough to read a nested script's text up to a token).
fn unquote(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars().peekable();
    let mut quote = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') | (None, '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '\\') => out.extend(chars.next()),
            (Some('"'), '\\') if matches!(chars.peek(), Some('$' | '`' | '"' | '\\' | '\n')) => {
                out.extend(chars.next())
            }
            _ => out.push(c),
        }
    }
    out
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
        let nested = Nested {
            quote: Quote::None,
            inner: Quote::None,
        };
        let nested_quoted = Nested {
            quote: Quote::Double,
            inner: Quote::None,
        };
        let heredoc = |literal| Heredoc {
            literal,
            shell: None,
        };
        let table: &[(&str, &[Ctx])] = &[
            ("echo @X@", &[Unquoted]),
            ("echo \"a @X@ b\"", &[Double]),
            ("echo 'a @X@ b'", &[Single]),
            ("awk '{print @X@}'", &[Code("an awk program")]),
            (
                "echo $'a\\' @X@'",
                &[Code("text that sh and bash quote differently ($'…')")],
            ),
            ("echo $(printf %s @X@)", &[Unquoted]),
            ("echo \"$(printf %s \"@X@\")\"", &[Double]),
            ("echo `echo @X@`", &[Unquoted]),
            ("echo \"`echo '@X@'`\"", &[Single]),
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
                &[heredoc(false), Unquoted],
            ),
            ("cat <<'EOF'\n@X@\nEOF", &[heredoc(true)]),
            (
                "cat <<-\"E\"\n\t@X@\n\tE\necho '@X@'",
                &[heredoc(true), Single],
            ),
            (
                "cat <<A <<'B'\n@X@\nA\n@X@\nB\n",
                &[heredoc(false), heredoc(true)],
            ),
            (
                "cat <<$'EOF'\n@X@\nEOF\necho @X@",
                &[heredoc(true), Unquoted],
            ),
            ("cat <<<@X@", &[Unquoted]),
            // In an unquoted here-document the shell runs `$(…)` and
            // backquotes and evaluates `$((…))`, `$[…]` and `${…}`.
            (
                "cat <<EOF\nn=$(( @X@ + 1 )) `echo @X@` ${a[@X@]} $[@X@]\nEOF",
                &[HEREDOC_CODE, HEREDOC_CODE, HEREDOC_CODE, HEREDOC_CODE],
            ),
            (
                "cat <<EOF\n$(printf '%s\n' x\n@X@)\nplain $(date) \\$(@X@ ${HOME} @X@\nEOF",
                &[HEREDOC_CODE, heredoc(false), heredoc(false)],
            ),
            ("cat <<'EOF'\n$(( @X@ ))\nEOF", &[heredoc(true)]),
            // An array's list: `[…]=` is a subscript, the rest are values.
            (
                "a=([@X@]=v @X@) b+=( [1]=@X@ )\ndeclare -a c=( [@X@]=v )",
                &[Arithmetic, Unquoted, Unquoted, Arithmetic],
            ),
            ("(echo [@X@]) && f() ( [ @X@ ] )", &[Unquoted, Unquoted]),
            ("x=@X@ y='@X@' z=\"@X@\"", &[Unquoted, Single, Double]),
            ("case @X@ in a) echo '@X@';; esac", &[Unquoted, Single]),
            // Nested shells parse their script again.
            ("sh -c \"echo @X@\"", &[nested_quoted]),
            (
                "sh -c 'echo @X@'",
                &[Nested {
                    quote: Quote::Single,
                    inner: Quote::None,
                }],
            ),
            (
                "sh -c 'echo \"@X@\"'",
                &[Nested {
                    quote: Quote::Single,
                    inner: Quote::Double,
                }],
            ),
            (
                "sh -c \"echo '@X@'\"",
                &[Nested {
                    quote: Quote::Double,
                    inner: Quote::Single,
                }],
            ),
            ("sudo -E -u app bash -lc \"x @X@\" arg", &[nested_quoted]),
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

    /// Following values through variables costs a bounded number of scans:
    /// past that, what is left is refused rather than followed.
    #[test]
    fn following_values_through_variables_is_bounded() {
        let script: String = (0..300).map(|i| format!("v{i}=@X@\n")).collect();
        let found = ctxs(&script);
        assert_eq!(found.len(), 300);
        assert_eq!(found[0], Ctx::Unquoted);
        assert_eq!(found[299], Ctx::Code(HELD));
    }

    /// A file written on every line (`>>log 2>&1`, `>/dev/null 2>&1`) keeps
    /// one copy of what went into it: each write used to copy every earlier
    /// one's, and 32 such lines took gigabytes.
    #[test]
    fn a_file_written_on_every_line_is_followed_once() {
        for target in [">/dev/null 2>&1", ">>\"$LOG\" 2>&1", ">>log"] {
            let lines: String = (0..200)
                .map(|i| format!("command -v tool{i} {target} || missing+=(tool{i})\n"))
                .collect();
            let script = format!("v=@X@\n{lines}echo \"$v\" >>log\ncat log");
            assert_eq!(ctxs(&script), vec![Ctx::Unquoted], "{target}");
            let script = format!("echo \"@X@\" >>log\n{lines}bash log");
            assert!(matches!(ctxs(&script)[..], [Ctx::Code(_)]), "{target}");
        }
    }

    #[test]
    fn a_value_never_reaches_code_through_a_nested_reader() {
        let refused = |c: &Ctx| {
            matches!(
                c,
                Ctx::Code(_) | Ctx::Cleared(_) | Ctx::Remote | Ctx::Arithmetic | Ctx::Name
            )
        };
        for script in [
            "python3 -c \"print('@X@')\"",
            "env LC_ALL=C python3 -c 'print(\"@X@\")'",
            "perl -e \"print qq(@X@)\"",
            "awk \"BEGIN { print \\\"@X@\\\" }\"",
            "node -e \"console.log('@X@')\"",
            "echo a | sed \"s/a/@X@/\"",
            "jq -n \"\\\"@X@\\\"\"",
            "python3 <<EOS\nprint('@X@')\nEOS",
            "git -c alias.hi='!echo @X@' hi",
            "docker exec web python3 -c 'print(\"@X@\")'",
            "tar -xf a.tar --to-command='cat @X@'",
            "scp -o ProxyCommand='nc @X@' a b:",
            "sh -c 'sh -c \"echo @X@\"'",
            "eval 'sh -c \"echo @X@\"'",
            "trap 'sh -c \"echo @X@\"' EXIT",
            "bash -c 'python3 -c \"print(@X@)\"'",
            "echo `sh -c \"echo @X@\"`",
            "sshpass -p x ssh host \"echo @X@\"",
            "timeout 10 ssh host \"echo @X@\"",
            "ssh host <<EOF\necho @X@\nEOF",
            "docker exec web sh -c \"echo @X@\"",
            "kubectl exec pod -- sh -c \"echo @X@\"",
            "su - root -c \"echo @X@\"",
            "env -i sh -c \"echo @X@\"",
            "sudo bash -c \"echo @X@\"",
            "declare -n r=\"@X@\"",
            "unset \"@X@\"",
            "[ -v \"@X@\" ]",
            "read \"@X@\" <<< x",
            "if true; then python3 -c \"print('@X@')\"; fi",
            "{ ssh web1 \"echo @X@\"; }",
            "python3 -c\"print('@X@')\"",
            "perl -e'print \"@X@\"'",
            "echo a | sed -e\"s/a/@X@/\"",
            "node --eval=\"console.log('@X@')\"",
            "\\python3 -c \"print('@X@')\"",
            "$(command -v python3) -c \"print('@X@')\"",
            "$PY -c \"print('@X@')\"",
            "busybox awk \"BEGIN { print \\\"@X@\\\" }\"",
            "docker-compose exec -T web sh -c \"echo @X@\"",
            "kubectl run tmp -i --image=busybox -- sh -c \"echo @X@\"",
            "docker run --rm --entrypoint sh img -c \"echo @X@\"",
            "python3 \\\n  -c \"print('@X@')\"",
            "docker exec web \\\n  sh -c \"echo @X@\"",
            "python3 /dev/stdin <<EOF\nprint('@X@')\nEOF",
            "source <(echo \"echo @X@\")",
            "bash <(echo \"echo @X@\")",
            "python3 <(echo \"print('@X@')\")",
            "sh -c \"$(echo echo @X@)\"",
            "eval \"$(printf 'echo %s' \"@X@\")\"",
            "echo $'\\''; sh -c \"echo @X@\"; echo ''",
            "git config alias.zz \"!echo @X@\"",
            "let x=$(echo @X@)",
            "echo \"echo @X@\" | sh",
            "printf '%s' \"@X@\" | ssh host",
            "echo \"print('@X@')\" | python3",
            // However the pipeline goes on to the shell.
            "echo \"echo @X@\" |& sh",
            "echo \"echo @X@\" |\n  sh",
            "echo \"echo @X@\" | # to the shell\n  sh",
            "echo \"echo @X@\" | tee log | bash",
            "( echo \"echo @X@\" ) | bash",
            "{ echo \"echo @X@\"; } | bash",
            "for x in 1; do echo \"echo @X@\"; done | bash",
            // Variables whose values bash runs or expands again.
            "PS4=\"@X@\"; set -x",
            "export PROMPT_COMMAND=@X@",
            "PS4='+ @X@ '; set -x",
            "mapfile -tC \"@X@\" lines < f",
            "mapfile -tC@X@ lines < f",
            "echo \"echo @X@\" | \\\n  sh",
            "echo \"echo @X@\" |(sh)",
            "declare -a \"a=(@X@)\"",
            "a=( $( (echo) ) [@X@]=v )",
            "cat <<EOF\n$(echo ')' @X@)\nEOF",
            "echo \"@X@\" > >(bash)",
            "tee >(sh) <<< \"@X@\"",
            "echo \"@X@\" | eval \"$(cat)\"",
            "echo \"@X@\" | sh -c \"$(cat)\"",
            "printf '%s\\0' \"@X@\" | xargs -0 sh -c",
            "B=bash; $B <<EOF\necho @X@\nEOF",
            "f() { echo \"echo @X@\"; }\nf | sh",
            "function g { echo \"@X@\"; }; g | bash",
            "coproc bash\necho \"echo @X@\" >&\"${COPROC[1]}\"",
            "bash <<EOF\necho \"echo @X@\" | sh\nEOF",
            "bash <<EOF\nf() { echo \"echo @X@\"; }; f | sh\nEOF",
            "bash <<EOF\necho \"echo @X@\" > g.sh; bash g.sh\nEOF",
            "bash <<EOF\necho \"echo @X@\" > >(sh)\nEOF",
            "bash <<EOF\nbash <<X\necho @X@\nX\nEOF",
            "bash <<EOF\nprintf '%s' \"@X@\" | xargs -0 sh -c\nEOF",
            "cat <<EOF | sh\ncat <<X | sh\necho @X@\nX\nEOF",
            "cat <<EOF | bash\necho \"echo @X@\" | sh\nEOF",
            "bash -c \"echo 'echo @X@' | sh\"",
            "sh -c \"f() { echo 'echo @X@'; }; f | sh\"",
            "bash -c 'echo \"echo @X@\" | sh'",
            "bash -c '[[ @X@ -eq 1 ]]'",
            "bash <<EOF\nif [[ \"@X@\" -gt 0 ]]; then echo pos; fi\nEOF",
            "cat <<EOF | bash\n[[ @X@ -eq 1 ]] && echo one\nEOF",
            "eval \"$(cat <<EOF\necho @X@\nEOF\n)\"",
            "f() { echo \"echo @X@\"; }; bash < <(f)",
            "f() { echo \"echo @X@\"; }; bash <<< \"$(f)\"",
            "f() { echo \"echo @X@\"; }; bash -c \"$(f)\"",
            "f() { echo \"echo @X@\"; }; eval \"$(f)\"",
            "f() { echo \"echo @X@\"; }; source <(f)",
            "f() { echo \"echo @X@\"; }; fn=f; $fn | bash",
            "cat > >(bash) <<EOF\necho @X@\nEOF\nwait",
            "sqlite3 :memory: <<EOF\nselect '@X@';\nEOF",
            "echo \"select 1; -- @X@\" | sqlite3 :memory:",
            "mysql -u app shop <<EOF\nupdate t set v='@X@';\nEOF",
            "psql -c \"select '@X@'\" shop",
            "b\\ash <<EOF\necho @X@\nEOF",
            "`which bash` <<EOF\necho @X@\nEOF",
            "if true; then bash; fi <<EOF\necho @X@\nEOF",
            "{ bash; } <<EOF\necho @X@\nEOF",
            "( bash ) <<EOF\necho @X@\nEOF",
            "while read -r l; do bash -c \"$l\"; done <<EOF\necho @X@\nEOF",
            "echo \"echo @X@\" | while read -r l; do eval \"$l\"; done",
            "run() { bash; }; run <<EOF\necho @X@\nEOF",
            "run() { bash; }; echo \"echo @X@\" | run",
            "exec 4> >(bash); echo \"echo @X@\" >&4",
            "exec > >(bash); echo \"echo @X@\"",
            "exec 3<<< \"echo @X@\"; bash <&3",
            "exec <<EOF\necho @X@\nEOF\nbash",
            "{ bash <&3; } 3< <(echo \"echo @X@\")",
            "bash /dev/fd/3 3<<EOF\necho @X@\nEOF",
            "while read -r l; do bash -c \"$l\"; done < <(echo \"echo @X@\")",
            "coproc sh -c 'exec bash'; echo \"echo @X@\" >&${COPROC[1]}",
            "coproc ( bash ); echo \"echo @X@\" >&${COPROC[1]}",
            "coproc bash\ncat >&${COPROC[1]} <<EOF\necho @X@\nEOF",
            "cmd=\"deploy @X@\"; eval \"$cmd\"",
            "v=@X@; bash -c \"echo $v\"",
            "n=@X@; [[ $n -eq 1 ]]",
            "a=@X@\nb=\"x ${a}\"\neval \"$b\"",
            "v=$(echo @X@); sh -c \"$v\"",
            "export V=\"@X@\"; ssh host \"echo $V\"",
            "local v=@X@; bash <<EOF\necho $v\nEOF",
            "retry() { eval \"$1\" || eval \"$1\"; }; retry \"echo @X@\"",
            "read -r cmd <<< \"echo @X@\"; eval \"$cmd\"",
            "f() { local cmd=$1; eval \"$cmd\"; }\nf \"echo @X@\"",
            "set -- \"@X@\"; bash -c \"echo $1\"",
            "printf -v S 'echo %s' \"@X@\"; bash -c \"$S\"",
            "echo \"@X@\" > d.txt\nbash -c \"echo $(cat d.txt)\"",
            "echo \"echo @X@\" > f.sh\neval \"$(< f.sh)\"",
            "read -r a cmd <<EOF\nx echo @X@\nEOF\nbash -c \"$cmd\"",
            "log_run() { bash -c \"$*\"; }\nlog_run echo @X@",
            "echo \"echo @X@\" > f; timeout 5 bash f",
            "echo \"echo @X@\" > f; nohup nice -n 5 bash f",
            "echo \"echo @X@\" > f; sudo -u app bash f",
            "echo \"echo @X@\" > f; exec bash f",
            "echo \"echo @X@\" > f; command bash ./f",
            "sqlite3 app.db \"select '@X@'\"",
            "echo \"echo @X@\" | { read -r l; eval \"$l\"; }",
            "echo \"echo @X@\" | /bin/ba?h",
            "/bin/ba[s]h -c \"echo @X@\"",
            "echo \"echo @X@\" | {bash,}",
            "echo \"echo @X@\" > gen.sh; sh < gen.sh",
            "echo \"echo @X@\" > gen.sh; cat gen.sh | bash",
            "tee gen.sh >/dev/null <<EOF\necho @X@\nEOF\nbash gen.sh",
            "echo \"echo @X@\" > a.txt; cp a.txt gen.sh; bash gen.sh",
            "echo \"echo @X@\" > gen.sh; env bash gen.sh",
            "echo \"echo @X@\" > gen.sh; exec 3<gen.sh; bash <&3",
            "echo \"echo @X@\" | dd of=gen.sh; bash gen.sh",
            "echo \"echo @X@\" | tee -a gen.sh | wc -l; . ./gen.sh",
            "f() { echo \"echo @X@\"; }; f > g.sh; bash g.sh",
            "{ echo \"echo @X@\"; } > gen.sh; bash gen.sh",
            "exec 5>gen.sh; echo \"echo @X@\" >&5; exec 5>&-; bash gen.sh",
            "exec 6>&1 >gen.sh; echo \"echo @X@\"; exec >&6; bash gen.sh",
            "echo \"echo @X@\" > cmds.txt; while read -r c; do eval \"$c\"; done < cmds.txt",
            "echo \"echo @X@\" | tee >(bash) >/dev/null",
            "case a in a) echo \"echo @X@\";; esac | sh",
            "case a in\n a) echo \"echo @X@\" ;;\nesac | sh",
            "exec 3< <(echo \"echo @X@\"); bash <&3",
            "cat > gen.sh <<EOF\necho @X@\nEOF\nbash gen.sh",
            "echo \"echo @X@\" > g.sh; bash ./g.sh",
            "echo \"echo @X@\" >>\"$DIR/g.sh\"\nchmod +x g.sh; ./g.sh",
            "cat <<EOF\n$(case a in a) sh -c \"echo @X@\";; esac)\nEOF",
            "cat <<EOF\n$(: # )\nsh -c \"echo @X@\")\nEOF",
            "cat <<EOF\n`case a in a) sh -c \"echo @X@\";; esac`\nEOF",
            "cat <<EOF\n$(cat <<X\n)\nX\nsh -c \"echo @X@\")\nEOF",
            "sh >|log -c \"echo $(printf %s @X@)\"",
            "python3 2>|err -c \"print('@X@')\"",
            "python3 >& log -c \"print('@X@')\"",
            "ssh host >& log <<EOF\necho @X@\nEOF",
            "echo \"echo @X@\" | tee log 2>&1 | sh",
            "echo \"echo @X@\" | tee /dev/null \\\n  | sh",
            "BASH_ENV=@X@ bash -c true",
            "mapfile -t -C \"@X@\" -c 1 lines < f",
            // A redirection's `&` is no command's end.
            "echo \"echo @X@\" 2>&1 | sh",
            "echo \"echo @X@\" >&2 |& sh",
            "sh 2>&1 -c \"echo $(printf %s @X@)\" | cat",
            "python3 2>&1 -c \"print('@X@')\"",
            "ssh host 2>&1 <<EOF\necho @X@\nEOF",
            "let 2>&1 \"y=@X@\"",
            "readarray -C@X@ lines < f",
            // A use with an operator is a use.
            "cmd=@X@; eval \"${cmd:-true}\"",
            "cmd=@X@; sh -c \"${cmd%% *}\"",
            "cmd=@X@; n=1; echo $((n)); eval \"$cmd\"",
            "mapfile -t cmds <<< \"@X@\"; eval \"${cmds[0]}\"",
            "readarray -t <<EOF\n@X@\nEOF\nbash -c \"${MAPFILE[0]}\"",
            "mapfile -d , -t a <<< \"@X@\"; n=${a[1]}; sh -c \"$n\"",
            // Programs whose commands run what they read.
            "echo \"@X@\" | sed e",
            "echo @X@ | sed 's/^/echo /e'",
            "echo @X@ | sed -n -e 'p' -e '1e'",
            "echo @X@ | sed '/x/{s/a/b/;e}'",
            "echo @X@ | awk '{ system($0) }'",
            "echo @X@ | awk '{ print | \"sh\" }'",
            "echo @X@ | gawk -F, '{ print $1 | cmd }'",
            "echo @X@ | awk '{ $0 | getline out }'",
            "awk '{ system($0) }' <<EOF\n@X@\nEOF",
            "echo \"!@X@\" | ed -s notes.txt",
            "echo @X@ | awk '{print|\"sh\"}'",
            "echo @X@ | awk '{ print | \"/bin/bash\" }'",
            "echo @X@ | mawk -W interactive '{ system($0) }'",
            "echo @X@ | awk \\\n  '{ system($0) }'",
            "echo @X@ | awk \"$prog\"",
            "echo @X@ | sed --expr=e",
            "echo @X@ | sed -nee",
            "echo @X@ | sed -n -e p -ee",
            "echo @X@ | sed $'e'",
            "echo @X@ | sed 'p;'e",
            "echo @X@ | sed \\\n  e",
            "echo @X@ | sed \"$script\"",
            "p=@X@; echo \"${p@P}\"",
            "f() { echo \"${1@P}\" \"${@@P}\"; }; f @X@",
            // A held value given to a function, or to `set --`.
            "n=@X@; f() { echo \"${1@P}\"; }; f \"$n\"",
            "n=@X@; set -- \"$n\"; echo \"${@@P}\"",
            "n=@X@; set -- \"$n\"; echo \"${*@P}\"",
            "n=@X@; set -- x \"$n\"; eval \"$2\"",
            "n=@X@; run() { local c=$1; eval \"$c\"; }; run \"$n\"",
            "n=@X@; f() { for x in \"$@\"; do sh -c \"$x\"; done; }; f \"$n\"",
            "n=@X@; set -- \"$n\"; for x; do eval \"$x\"; done",
            "n=@X@; f() { for x\n do bash -c \"$x\"; done; }; f \"$n\"",
            "n=@X@; set -- \"$n\"; select x do eval \"$x\"; done",
            "set -- @X@; for x; do eval \"$x\"; done",
            "f() { for x; do sh -c \"$x\"; done; }; f @X@",
            "n=@X@; o=-W; compgen $o \"$n\" -- x",
            "n=@X@; args=(-W \"$n\"); compgen \"${args[@]}\" -- x",
            "u=@X@; compgen -u \"$u\"",
            "f() { compgen -W \"$1\" -- x; }; n=@X@; f \"$n\"",
            "n=@X@; echo \"${!n@P}\"",
            "echo @X@ | awk '{ print | \"sh<&0\" }'",
            "echo @X@ | awk '{ print | \"(sh)\" }'",
            "echo @X@ | awk '{ print | \"sh -c \\\"sh\\\"\" }'",
            "echo @X@ | sed $'\\145'",
            "compgen -W \"@X@\" x",
            "compgen -W\"@X@\" x",
            "complete -C \"@X@\" git",
            "compgen -aW \"@X@\" x",
            "compgen -aC\"@X@\" x",
            "echo @X@ | awk '{ print | \"env sh\" }'",
            "echo @X@ | awk '{ print | \"timeout 5 sh\" }'",
            "echo @X@ | awk '{ print | \"cat | sh\" }'",
            "echo @X@ | awk '{ print | \"xargs -0 sh -c\" }'",
            "echo @X@ | awk '{ print | \"s\" \"h\" }'",
            "echo @X@ | awk 'BEGIN { system(\"sh\") }'",
            "echo @X@ | awk '/\"/ { system($0) }'",
            "echo @X@ | sed $'\\x65'",
            "w=\"@X@\"; compgen -W \"$w\" -- x",
        ] {
            let found = ctxs(script);
            assert!(
                !found.is_empty() && found.iter().all(refused),
                "{script:?}: {found:?}"
            );
        }
        // A redirection before `-c` does not hide the nested shell.
        assert_eq!(
            ctxs("sh 2>&1 -c \"echo @X@\" &>log"),
            vec![Ctx::Nested {
                quote: Quote::Double,
                inner: Quote::None
            }]
        );
        assert_eq!(ctxs("echo @X@ 2>&1 | grep x &"), vec![Ctx::Unquoted]);
        assert!(matches!(
            ctxs("eval 2>&1 \"echo @X@\"")[..],
            [Ctx::Nested { .. }]
        ));
        // A pipeline that ends in no reader of code takes the value as data.
        for script in [
            "echo @X@ | tee log | wc -l",
            "echo @X@ |\n  grep x",
            "echo @X@ || sh -c true",
            "echo @X@ | grep x; sh -c true",
            "curl @X@ 2>&1 | tee log",
            "echo @X@ >&2",
            "echo @X@ >| log & sh -c true",
            "f() { echo @X@; }\nf | grep x",
            "echo @X@ > >(tee log)",
            "a=()\necho @X@ | cat",
            "echo @X@ | while read -r l; do echo \"$l\"; done",
            "exec 3>log; echo @X@ >&3",
            "v=@X@; echo \"$v\" \"${v}\"; [[ $v == x* ]]",
            "v=@X@; export v; sh -c 'echo \"$v\"'",
            "v=@X@; cat <<'EOF' | sh\necho \"$v\"\nEOF",
            "say() { echo \"$1\"; }; say @X@",
            "read -r v <<< @X@; echo \"$v\"",
            "set -- @X@; echo \"$1\"",
            "echo @X@ > d.txt; echo \"$(cat d.txt)\"",
            "[ -e @X@ ]",
            "echo @X@ > release.txt\necho 'cat release.txt' > run.sh\nbash run.sh",
            "echo @X@ > out.txt; bash run.sh",
            "echo @X@ >> l.txt; perl -pi -e 'chomp if eof' l.txt",
            "echo @X@ > f.txt; sh -c 'cat f.txt' f.txt",
            "case a in a) echo @X@;; esac | cat",
            // The name as a word, not the variable's value.
            "n=@X@; echo n \"n\" $((nn + 1)) $((xn)) $(( ${#n} + 1 ))",
            "n=@X@; awk -v n=\"$n\" '{ print n }' f",
            "n=@X@; (( n = 2 )); echo \"${n:-none}\"",
            "n=@X@; m=2; echo $(( m + 1 )) \"${n%.*}\"",
            "mapfile -t hosts <<< @X@; for h in \"${hosts[@]}\"; do ping -c1 \"$h\"; done",
            "echo @X@ | sed 's/ex/ey/g; /^e/d; y/abc/xyz/'",
            "echo @X@ | sed -n -e '/error/p' -e 's/e/E/2'",
            "echo @X@ | awk -F: '/a|b/ { if ($1 || $2) print $1 }'",
            "echo @X@ | awk '{ printf \"%s\\n\", $1 }' | sort",
            "echo @X@ | sed -f edit.sed",
            "declare -i c=0; h=@X@; c+=1; echo \"$h\" \"$c\"",
            "echo @X@ | awk '{ print $1 | \"sort -k2nr\" }'",
            "echo @X@ | awk 'BEGIN { \"date\" | getline d } { print d, $0 }'",
            "echo @X@ | awk '{ print \"system(x) a|b\", $0 }'",
            "echo @X@ | awk '/error|warn/ { n++ } END { print n }'",
            "echo @X@ | awk 'BEGIN { system(\"sync\") } { print }'",
            "echo @X@ | sed -ie 's/a/b/' f",
            // A number computed from the value does not hold it.
            "host=@X@; count=$(grep -c \"$host\" /etc/hosts); echo $((count + 1))",
            "p=@X@; pct=$(df --output=pcent \"$p\" | tail -1 | tr -dc 0-9); (( pct > 99 ))",
            "f=@X@; size=$(stat -c %s \"$f\"); (( size > 0 ))",
            "list=@X@; n=$(echo \"$list\" | wc -w); for ((i = 0; i < n; i++)); do :; done",
            "f=@X@; lines=\"$(wc -l < \"$f\")\"; echo $(( lines * 2 ))",
            "d=@X@; t=$(date -d \"$d\" +%s); (( t > 0 ))",
            "echo @X@ | sed '$d'",
            "n=@X@\n# see\u{a0}n and\u{2009}n\necho \"$n\"",
            "while read -r h; do ping -c1 \"$h\"; done < <(echo @X@)",
            "echo @X@ | sed -e $'s/\\r$//' -e $'s/\\t/ /g'",
            "v=@X@; n=$(wc -w <<< \"$v\"); (( n ))",
            "f=@X@; s=$(stat --format=%s \"$f\"); t=$(stat -c%Y \"$f\"); (( s + t ))",
            "p=@X@; a=$(df --output=avail \"$p\" | tail -1); (( a > 0 ))",
            "v=@X@; n=$(grep -c -e \"$v\" /etc/hosts); (( n ))",
            "v=@X@; n=$(grep -c \"$v\" /etc/hosts || true); m=$(grep -c -- \"$v\" f || echo 0); (( n + m ))",
            "echo @X@ | sed -n '$!N;s/\\n/ /;$p'",
            "echo @X@ | awk '$2 != \"\" && $1 ~ /^web/'",
            "echo @X@ | awk '{ print $1 | \"sort -u\" } END { \"date\" | getline d; system(\"sync\") }'",
            "h=(@X@); for i in \"${!h[@]}\"; do echo \"$((i + 1)): ${h[i]}\"; done",
            "echo @X@ | while read -r h; do c=$((c + 1)); ping -c1 \"$h\"; done",
            "n=@X@; log() { echo \"$(date) $1\" \"${2:-}\" >&2; }; log \"$n\"",
            "n=@X@; set -- \"$n\" b; for h in \"$@\"; do ping -c1 \"$h\"; done; echo \"$#\"",
            "u=@X@; compgen -u -- \"$u\"; compgen -W \"a b\" -- \"$u\"",
            "n=@X@; set -- \"$n\"; for h; do ping -c1 \"$h\"; done; for x in a; do eval \"$x\"; done",
        ] {
            assert_eq!(ctxs(script), vec![Ctx::Unquoted], "{script:?}");
        }
        // A script written through a quoted here-document gets the
        // variable's name, which it expands itself.
        assert_eq!(
            ctxs("cat > chain.sh <<'EOF'\necho $$ >> @X@\nEOF\nsh ./chain.sh"),
            vec![Ctx::Heredoc {
                literal: true,
                shell: None
            }]
        );
        // A script file written and run holds none of the values.
        assert_eq!(
            ctxs("echo \"Deploying @X@\"\ncat > cleanup.sh <<'EOF'\nrm -rf /tmp/b-*\nEOF\nbash cleanup.sh"),
            vec![Ctx::Double]
        );
        // Loops over data that run nothing they read.
        for script in [
            "while read -r host; do ssh -n \"$host\" uptime; done <<EOF\n@X@\nEOF",
            "while read -r db; do psql -c 'vacuum' \"$db\"; done <<EOF\n@X@\nEOF",
            "while read -r l; do echo \"$l\"; done <<EOF\n@X@\nEOF",
        ] {
            assert_eq!(
                ctxs(script),
                vec![Ctx::Heredoc {
                    literal: false,
                    shell: None
                }],
                "{script:?}"
            );
        }
        // Shells reading a here-document, a here-string or standard input.
        for script in [
            "sh <<EOS\necho @X@\nEOS",
            ". /dev/stdin <<EOF\necho @X@\nEOF",
        ] {
            assert_eq!(
                ctxs(script),
                vec![Ctx::Heredoc {
                    literal: false,
                    shell: Some(Quote::None)
                }],
                "{script:?}"
            );
        }
        for script in [
            "sh /dev/stdin <<EOF\necho @X@\nEOF",
            "bash /dev/fd/0 <<EOF\necho @X@\nEOF",
            "cat <<EOF | sh\necho @X@\nEOF",
            "source <(cat) <<EOF\necho @X@\nEOF",
            "cat <<EOF |\necho @X@\nEOF\nsh",
            "<<EOF bash\necho @X@\nEOF",
            "cat <<EOF |&\n# a comment\necho @X@\nEOF\n  bash",
        ] {
            assert!(
                matches!(ctxs(script)[..], [Ctx::Heredoc { shell: Some(_), .. }]),
                "{script:?}: {:?}",
                ctxs(script)
            );
        }
        // Reserved words, line continuations, options in other orders and
        // wrappers do not hide a nested shell.
        for (script, quote) in [
            ("{ sh -c \"echo @X@\"; }", Quote::Double),
            ("if true; then sh -c \"echo @X@\"; fi", Quote::Double),
            ("! sh -c \"echo @X@\"", Quote::Double),
            ("for i in 1; do sh -c \"echo @X@\"; done", Quote::Double),
            ("f() { sh -c \"echo @X@\"; }", Quote::Double),
            ("sh -c \\\n  \"echo @X@\"", Quote::Double),
            ("bash -c -e \"echo @X@\"", Quote::Double),
            ("trap -- \"echo @X@\" EXIT", Quote::Double),
            ("${SHELL:-/bin/sh} -c \"echo @X@\"", Quote::Double),
            ("nice --adjustment 5 sh -c \"echo @X@\"", Quote::Double),
            ("setpriv --reuid=0 sh -c \"echo @X@\"", Quote::Double),
            ("sg root -c \"echo @X@\"", Quote::Double),
            ("su root --command=\"echo @X@\"", Quote::Double),
            ("git submodule foreach \"echo @X@\"", Quote::Double),
            (
                "x=\"$(case a in a) echo '\"' ;; esac)\"; sh -c \"echo @X@\"; echo \"'\"",
                Quote::Double,
            ),
            ("bash <<< \"echo @X@\"", Quote::Double),
            ("flock /tmp/l -c \"echo @X@\"", Quote::Double),
            ("script -qc \"echo @X@\" /dev/null", Quote::Double),
            ("$SHELL -c 'echo @X@'", Quote::Single),
            ("builtin eval \"echo @X@\"", Quote::Double),
        ] {
            assert_eq!(
                ctxs(script),
                vec![Ctx::Nested {
                    quote,
                    inner: Quote::None
                }],
                "{script:?}"
            );
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
            "a=(1 2); echo ${a[@X@]}",
            "a[@X@]=1",
            "s=abc; echo ${s:@X@}",
            "echo \"${s:0:@X@}\"",
            "declare -i x=@X@",
            "typeset -i y=@X@",
            "local -ir z=@X@",
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
        // A variable only evaluated as arithmetic (a bare name there: bash
        // evaluates its value as an expression) takes an integer; where bash
        // takes a name, it evaluates a subscript in it.
        let held: &[&str] = &[
            "n=@X@; echo $((n + 1))",
            "n=\"@X@\"; (( n > 1 )) && echo big",
            "n=@X@\nlet m=n+1",
            "n=@X@; [[ n -eq 1 ]]",
            "n=@X@; [[ $n -eq 1 ]]",
            "n=@X@; a=(1 2); echo \"${a[n]}\"",
            "n=@X@; a[n]=1",
            "n=@X@; s=abc; echo ${s:n}",
            "n=@X@; for ((i = 0; i < n; i++)); do :; done",
            "n=@X@; m=$n; echo $(( m * 2 ))",
            "n=@X@; (( n == 2 ))",
            "n=@X@; cat <<EOF\n$(( n ))\nEOF",
            // `${!n}`: the value is a name, whose subscript bash evaluates.
            "n=@X@; echo \"${!n}\"",
            "f() { echo $(( $1 + 1 )); }; f @X@",
            "f() { echo $(( ${1:-0} + 1 )); }; f @X@",
            "n=@X@; unset 'b[n]'",
            "n=@X@; printf -v 'b[n]' %s x",
            "n=@X@; declare -n r='a[n]'",
            "n=@X@; [ -v 'a[n]' ]",
            "for n in @X@; do echo $((n + 1)); done",
            "for n in 1 \"@X@\"\ndo\n  (( n > 0 )) && echo ok\ndone",
            "arr=(\"@X@\" 2); echo $(( arr + 1 ))",
            "declare -i m; n=@X@; m=n",
            "local -i m=0\nn=@X@\nm+=n",
            "typeset -i total; total=\"@X@\"",
            "echo @X@ | while read -r n; do echo $((n + 1)); done",
            "printf '%s\\n' \"@X@\" | { read -r n; (( n > 2 )); }",
            "while read -r n; do\n  echo $(( n * 2 ))\ndone <<EOF\n@X@\nEOF",
            "while read -r n; do echo $(( n * 2 )); done <<< \"@X@\"",
            "{ read -r n; (( n )); } <<< @X@",
            "echo @X@ | tee log | sort | while read -r n; do (( n )); done",
            "echo @X@ \\\n  | while read -r n; do (( n )); done",
            "if true; then for x in \"@X@\"; do echo $((x)); done; fi",
            "f() { local -i m=0; m+=n; }; n=@X@; f",
            "{ for x in @X@; do (( x )); done; }",
            "a[0]=\"@X@\"; echo $(( a[0] + 1 ))",
            "h[k]=@X@; (( h ))",
            "read -rd '' 'b[0]' <<< \"@X@\"; echo $(( b ))",
            "read -r -d '' -a b <<< \"@X@\"; echo $(( b ))",
            "while read -r n; do (( n )); done < <(echo \"@X@\")",
            "read -r 'a[0]' <<< @X@; (( a ))",
            "printf -v 'a[0]' %s @X@; (( a[0] ))",
            "printf -v'a[0]' %s @X@; (( a[0] ))",
            // What prints its arguments, or a file's name, holds the value.
            "v=@X@; n=$(grep -cH x \"$v\"); (( n ))",
            "v=@X@; n=$(wc -l \"$v\"); (( n ))",
            "v=@X@; n=$(echo \"$v\" | tr -d x); (( n ))",
            "v=@X@; n=\"$(grep -c \"$v\" f) x\"; (( n ))",
            "v=@X@; n=$(grep -c x f; echo \"$v\"); (( n ))",
            "v=@X@; n=$(grep -c x f || echo \"$v\"); (( n ))",
            "v=@X@; n=$(grep -c x f || true; echo \"$v\"); (( n ))",
            "v=@X@; n=$(stat -c %1n \"$v\"); (( n ))",
            "v=@X@; n=$(stat -c %s -c %n \"$v\"); (( n ))",
            "v=@X@; n=$(grep -c x - f --label=\"$v\"); (( n ))",
            "v=@X@; n=$(date -d \"$v\" \"+%s $v\"); (( n ))",
        ];
        let names: &[&str] = &[
            "[[ -v @X@ ]]",
            "test -v @X@",
            "printf -v @X@ %s x",
            "read -r @X@",
            "unset @X@",
            "export @X@",
            "declare -n r=@X@",
        ];
        for (scripts, ctx) in [(held, Ctx::Arithmetic), (names, Ctx::Name)] {
            for script in scripts {
                assert_eq!(ctxs(script), vec![ctx], "{script:?}");
            }
        }
    }
}
