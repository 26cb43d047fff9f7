//! What a command does with a word it is given: data, or code of some kind.
//!
//! A value a job refers to reaches a step as a variable the shell expands, so
//! the step's own shell never parses it. But the shell hands the expanded
//! word to a command, and some commands parse *their* arguments as code: a
//! nested shell (`sh -c WORD`, `eval`, `trap`, a here-document fed to `sh`), a
//! remote shell (`ssh HOST WORD`), an interpreter's program (`python3 -c`,
//! `perl -e`, an awk or sed program, a jq filter) or an option that is a
//! command line (`git -c alias.x=!…`, `tar --to-command`, `ssh -o
//! ProxyCommand=…`). This module reads a simple command's words — through the
//! wrappers that run another command (`sudo`, `env`, `timeout`, `nice`,
//! `docker exec`, `kubectl exec --`, `find -exec`, `xargs`, …) — and says what
//! the word being read is to the command that finally gets it. Every command it
//! does not know takes its arguments as data; sortie(1) says so, and lists the
//! readers known to run code.

/// What the command does with the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A nested shell parses it, with sortie's environment (so it can expand a
    /// variable reference itself).
    Shell,
    /// A shell parses it without sortie's environment (behind `sudo`, `su -`,
    /// `env -i`, or in a container): a variable reference would be empty there.
    Cleared(&'static str),
    /// A shell on another host parses it (`ssh HOST WORD`).
    Remote,
    /// Another interpreter's program, or an option that holds a command line.
    Code(&'static str),
    /// bash evaluates it as an arithmetic expression.
    Arithmetic,
    /// bash takes it as a variable's name, and evaluates a subscript in it.
    Name,
}

/// Shells, and commands whose `-c` argument is a shell command line.
pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ksh", "mksh", "zsh", "ash", "busybox", "su", "runuser", "$SHELL",
    "${SHELL}", "$BASH", "${BASH}",
];

/// Commands that take a variable *name* (bash evaluates a subscript in it).
const NAMERS: &[&str] = &["declare", "typeset", "local", "export", "readonly", "unset"];

/// Interpreters and the options whose argument is their program.
const INTERPRETERS: &[(&str, &[&str], &str)] = &[
    ("python", &["-c"], "a Python program"),
    ("perl", &["-e", "-E"], "a Perl program"),
    ("ruby", &["-e"], "a Ruby program"),
    (
        "node",
        &["-e", "--eval", "-p", "--print"],
        "a JavaScript program",
    ),
    (
        "nodejs",
        &["-e", "--eval", "-p", "--print"],
        "a JavaScript program",
    ),
    ("php", &["-r", "-B", "-R", "-E"], "a PHP program"),
    ("psql", &["-c", "--command"], "SQL for psql"),
    ("mysql", &["-e", "--execute"], "SQL for mysql"),
    ("mariadb", &["-e", "--execute"], "SQL for mariadb"),
    ("sqlite3", &["-cmd"], "SQL for sqlite3"),
    ("lua", &["-e"], "a Lua program"),
    ("luajit", &["-e"], "a Lua program"),
    ("Rscript", &["-e"], "an R program"),
    ("osascript", &["-e"], "an AppleScript program"),
    (
        "pwsh",
        &["-c", "-Command", "-command"],
        "a PowerShell command",
    ),
    (
        "powershell",
        &["-c", "-Command", "-command"],
        "a PowerShell command",
    ),
    ("tclsh", &[], "a Tcl program"),
    ("expect", &["-c"], "an Expect program"),
    ("groovy", &["-e"], "a Groovy program"),
];

/// Programs whose first operand is their program, and their options that take an argument.
const PROGRAM_FIRST: &[(&str, &[&str], &str, &str)] = &[
    ("awk", &["-F", "-v"], "-f", "an awk program"),
    ("gawk", &["-F", "-v"], "-f", "an awk program"),
    ("mawk", &["-F", "-v"], "-f", "an awk program"),
    ("nawk", &["-F", "-v"], "-f", "an awk program"),
    ("sed", &["-l"], "-f", "a sed script"),
    ("gsed", &["-l"], "-f", "a sed script"),
    ("jq", &["--indent", "-L"], "-f", "a jq filter"),
    ("gojq", &["--indent", "-L"], "-f", "a jq filter"),
    ("yq", &["--indent", "-I"], "--from-file", "a yq expression"),
];

/// Options whose argument is a command line, by command.
const COMMAND_OPTIONS: &[(&str, &[&str], &str)] = &[
    (
        "git",
        &["-c"],
        "a git configuration value (an alias or command)",
    ),
    ("ssh", &["-o"], "an ssh option (ProxyCommand, LocalCommand)"),
    (
        "scp",
        &["-o", "-S"],
        "an scp option (ProxyCommand, the ssh program)",
    ),
    (
        "sftp",
        &["-o", "-S"],
        "an sftp option (ProxyCommand, the ssh program)",
    ),
    (
        "rsync",
        &["-e", "--rsh", "--rsync-path"],
        "rsync's remote shell command",
    ),
    (
        "tar",
        &[
            "--to-command",
            "--checkpoint-action",
            "--use-compress-program",
            "-I",
            "--info-script",
            "-F",
            "--new-volume-script",
            "--rsh-command",
        ],
        "a command tar runs",
    ),
    ("zip", &["-TT", "--unzip-command"], "a command zip runs"),
    (
        "env",
        &["-S", "--split-string"],
        "a command line env splits",
    ),
    ("watch", &[], "a command line watch runs"),
    ("mapfile", &["-C"], "a callback mapfile runs"),
    ("readarray", &["-C"], "a callback readarray runs"),
];

/// Database clients whose input is SQL, and their own commands, some of
/// which run a shell (`\\!`, `.shell`, `.system`): what they read is code.
const SQL_CLIENTS: &[&str] = &["psql", "mysql", "mariadb", "sqlite3", "sqlplus", "sqlcmd"];

/// Words that may come before a command without being it.
const RESERVED: &[&str] = &[
    "!", "{", "}", "if", "then", "elif", "else", "while", "until", "do", "time", "coproc",
];

/// Paths through which a program reads its standard input as a file.
const STDIN_FILES: &[&str] = &["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"];

/// Wrappers that run the command after their options, keeping the environment:
/// (name, options that take an argument, operands before the command).
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"], 1),
    ("ionice", &["-c", "-n", "-p"], 0),
    ("stdbuf", &["-i", "-o", "-e"], 0),
    ("setsid", &[], 0),
    ("exec", &["-a"], 0),
    ("command", &[], 0),
    ("builtin", &[], 0),
    ("time", &["-f", "-o"], 0),
    ("taskset", &[], 1),
    ("chrt", &[], 1),
    (
        "xargs",
        &[
            "-I",
            "-n",
            "-P",
            "-d",
            "-E",
            "-L",
            "-s",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--max-lines",
            "--max-chars",
            "--eof",
        ],
        0,
    ),
    ("chroot", &[], 1),
    ("unshare", &[], 0),
    ("nsenter", &["-t", "-S", "-G"], 0),
    ("sshpass", &["-p", "-f", "-d", "-P"], 0),
    ("flock", &["-w", "-E", "--timeout"], 1),
    ("doas", &["-u", "-C"], 0),
    ("caffeinate", &[], 0),
    ("strace", &["-o", "-e", "-p"], 0),
    (
        "setpriv",
        &[
            "--reuid",
            "--regid",
            "--groups",
            "--inh-caps",
            "--ambient-caps",
            "--bounding-set",
        ],
        0,
    ),
    ("prlimit", &["-p", "--pid", "-o", "--output"], 0),
    ("numactl", &["-C", "-N", "-m", "-p", "-i"], 0),
];

/// `word` without the quotes around it.
pub fn unquoted(word: &str) -> &str {
    word.trim_matches(|c| c == '\'' || c == '"')
}

pub fn basename(word: &str) -> &str {
    // `\sh` (an alias suppressed) is `sh`.
    let w = unquoted(word).trim_start_matches('\\');
    if unknown(w) {
        return w;
    }
    w.rsplit('/').next().unwrap_or("")
}

/// A program name sortie cannot read as written: a variable or a
/// substitution (`$B`, `` `which bash` ``), quotes and backslashes inside it
/// (`b\ash`), or a pattern the shell expands (`/bin/ba?h`, `{bash,}`).
pub fn unknown(name: &str) -> bool {
    let pattern = !matches!(name, "[" | "[[" | "{") && name.contains(['?', '*', '[', '{']);
    name.starts_with('$') || name.contains(['\\', '\'', '"', '`']) || pattern
}

/// Whether a command in `text` (a compound command's body, split at its
/// separators) may run what it reads as code: `eval`, `source`, a reader of
/// its input (`bash`, `ssh host`), a program sortie cannot name, or a
/// shell or interpreter whose program holds a variable (`bash -c "$l"`).
pub fn names_a_reader(text: &str) -> bool {
    text.split(['\n', ';', '&', '|']).any(|piece| {
        let words: Vec<String> = piece
            .split_whitespace()
            .map(|w| w.trim_matches(|c| "(){}".contains(c)).to_string())
            .filter(|w| !w.is_empty())
            .collect();
        let Some(name) = command_name(&words).map(basename) else {
            return false;
        };
        // The program a `-c` (or an interpreter's flag) gives, made of a variable.
        let flag = |w: &String| {
            if SHELLS.contains(&name) {
                cluster_has(w, 'c')
            } else {
                interpreter(name).is_some_and(|(_, flags, _)| flags.contains(&unquoted(w)))
            }
        };
        let program = words
            .iter()
            .position(flag)
            .and_then(|at| words.get(at + 1))
            .is_some_and(|p| p.contains('$'));
        matches!(name, "eval" | "source" | "." | "coproc")
            || unknown(name)
            || stdin(&words).is_some()
            || program
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| is_name(k))
}

/// A redirection (`>f`, `2>&1`, `<<EOF`, `<<<`) rather than an argument.
fn is_redirection(word: &str) -> bool {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let process = w.starts_with("<(") || w.starts_with(">(");
    !process && (w.starts_with('<') || w.starts_with('>') || w.starts_with("&>"))
}

/// `-c`, `-lc`, `-ec`: a cluster of short options that ends with (or holds) `c`.
fn cluster_has(word: &str, letter: char) -> bool {
    let w = unquoted(word);
    w.len() > 1
        && w.starts_with('-')
        && !w.starts_with("--")
        && w[1..].chars().all(|c| c.is_ascii_alphabetic())
        && w.contains(letter)
}

/// The command's arguments as a shell gives them: redirections and the file
/// names of bare redirection operators left out.
fn arguments(words: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut skip = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if is_redirection(w) {
            // `>` alone: its target is the next word.
            let op = w.trim_start_matches(|c: char| c.is_ascii_digit());
            skip = matches!(
                op,
                "<" | ">" | ">>" | "&>" | "&>>" | "<>" | ">|" | ">&" | "<&" | ">>&"
            );
            continue;
        }
        out.push(w.as_str());
    }
    out
}

/// What the simple command made of `words` does with its next word (the word
/// being read). `current` is that word as read so far (for `--opt=VALUE`).
pub fn word(words: &[String], current: &str) -> Option<Reader> {
    let args = arguments(words);
    let first = command_start(&args)?;
    walk(&args[first..], current, true).or_else(|| {
        // A command behind something sortie does not know (a wrapper, a
        // function): any later word that starts a reader counts.
        (first + 1..args.len()).find_map(|start| walk(&args[start..], current, true))
    })
}

/// Where the command starts: past reserved words (`{`, `if`, `!`, `do`, …),
/// a function's head (`f() {`) and assignments.
fn command_start(args: &[&str]) -> Option<usize> {
    args.iter()
        .position(|w| !is_assignment(w) && !RESERVED.contains(&unquoted(w)) && !w.ends_with("()"))
}

/// The command's name among `words`: past reserved words, assignments and
/// redirections (none after a compound command's `)`).
pub fn command_name(words: &[String]) -> Option<&str> {
    let args = arguments(words);
    command_start(&args).map(|i| args[i])
}

/// Whether the command made of `words` prints only numbers computed from
/// its arguments and input, never them: `grep -c` (one file at most, or
/// `-h`), `wc` reading its input, `stat -c` with a format of numbers,
/// `df --output=` of sizes, `date +FORMAT`, `tr -dc 0-9`. Each with the
/// options named here only: another may print a name (`grep --label`).
pub fn prints_a_number(words: &[String]) -> bool {
    // A here-string is input (`wc -w <<< "$v"`), not an operand.
    let mut input = false;
    let words: Vec<String> = words
        .iter()
        .filter(|w| {
            let skip = input || w.as_str() == "<<<";
            input = w.as_str() == "<<<";
            !skip
        })
        .cloned()
        .collect();
    let args = arguments(&words);
    let Some(first) = command_start(&args) else {
        return false;
    };
    let (name, args) = (basename(args[first]), &args[first + 1..]);
    // Short options from `letters` (clustered or not), long ones from `long`;
    // `valued` take the next word (or the rest of the cluster). An option
    // or its value that the shell makes (`-c "$f"`) is not known.
    let read = |letters: &str, valued: &str, long: &[&str]| -> Option<(Vec<String>, Vec<&str>)> {
        let (mut given, mut operands) = (Vec::new(), Vec::new());
        let mut words = args.iter().map(|w| (unquoted(w), expands(w)));
        while let Some((w, made)) = words.next() {
            if w == "--" {
                operands.extend(words.by_ref().map(|(w, _)| w));
                break;
            }
            if w.starts_with('-') && made {
                return None;
            }
            if let Some(l) = w.strip_prefix("--") {
                let (key, _) = l.split_once('=').unwrap_or((l, ""));
                long.contains(&key).then_some(())?;
                given.push(w.to_string());
            } else if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
                for (at, c) in cluster.char_indices() {
                    if valued.contains(c) {
                        let value = match &cluster[at + 1..] {
                            // A format the shell makes is not known.
                            "" => match words.next() {
                                Some((_, true)) if name == "stat" => return None,
                                next => next.map_or("", |(v, _)| v),
                            },
                            rest => rest,
                        };
                        given.push(format!("-{c}{value}"));
                        break;
                    }
                    letters.contains(c).then_some(())?;
                    given.push(format!("-{c}"));
                }
            } else if made && matches!(name, "date" | "tr") {
                // A date's format or tr's set the shell makes.
                return None;
            } else {
                operands.push(w);
            }
        }
        Some((given, operands))
    };
    let has = |given: &[String], o: &str| {
        given
            .iter()
            .any(|g| g == o || g.starts_with(&format!("{o}=")))
    };
    let number_format = |f: &str| {
        !f.is_empty()
            && f.split('%')
                .skip(1)
                .all(|d| d.starts_with(|c: char| "sbBfhiugXYZWdo".contains(c)))
            && !f.contains(['$', '`'])
    };
    match name {
        "wc" => read("lwcm", "", &["lines", "words", "chars", "bytes"])
            .is_some_and(|(_, operands)| operands.is_empty()),
        "grep" | "egrep" | "fgrep" => {
            let long = [
                "count",
                "ignore-case",
                "invert-match",
                "word-regexp",
                "line-regexp",
                "no-messages",
            ];
            read("civwxEFGPsh", "e", &long).is_some_and(|(given, operands)| {
                let pattern_given = given.iter().any(|g| g.starts_with("-e"));
                let files = operands.len() - usize::from(!pattern_given).min(operands.len());
                (has(&given, "-c") || has(&given, "--count")) && (files <= 1 || has(&given, "-h"))
            })
        }
        "stat" => read("L", "c", &["format", "printf", "dereference"]).is_some_and(|(given, _)| {
            let formats: Vec<&str> = given
                .iter()
                .filter_map(|g| {
                    g.strip_prefix("-c")
                        .or_else(|| g.strip_prefix("--format="))
                        .or_else(|| g.strip_prefix("--printf="))
                })
                .collect();
            formats.len() == 1 && number_format(formats[0])
        }),
        "df" => read("hkPlH", "B", &["output"]).is_some_and(|(given, _)| {
            given.iter().any(|g| g.starts_with("--output="))
                && given
                    .iter()
                    .filter_map(|g| g.strip_prefix("--output="))
                    .all(|f| {
                        f.split(',').all(|field| {
                            matches!(
                                field,
                                "size"
                                    | "used"
                                    | "avail"
                                    | "pcent"
                                    | "itotal"
                                    | "iused"
                                    | "iavail"
                                    | "ipcent"
                            )
                        })
                    })
        }),
        "date" => read("uR", "dr", &["date", "utc", "reference"])
            .is_some_and(|(_, operands)| operands.len() == 1 && operands[0].starts_with('+')),
        "tr" => read("dcC", "", &[]).is_some_and(|(given, operands)| {
            has(&given, "-d")
                && (has(&given, "-c") || has(&given, "-C"))
                && matches!(operands[..], ["0-9" | "[:digit:]" | "[0-9]"])
        }),
        _ => false,
    }
}

/// Whether the command made of `words` passes on only what it reads, in
/// part (`tail -1`, `head -n 1`, `tr -d ' '`, `sort -n`, `cut -d, -f2`), with
/// nothing the shell makes in its words.
pub fn passes_numbers(words: &[String]) -> bool {
    let args = arguments(words);
    command_start(&args).is_some_and(|first| {
        matches!(
            basename(args[first]),
            "tail" | "head" | "tr" | "sort" | "uniq" | "cut"
        ) && !args[first..].iter().any(|w| expands(w))
    })
}

/// The variables `read` assigns what it reads to (`read -r a b`, `read -a arr`),
/// or `mapfile` and `readarray` (`mapfile -t lines`).
pub fn read_targets(words: &[String]) -> Vec<&str> {
    let args = arguments(words);
    let Some(first) = command_start(&args) else {
        return Vec::new();
    };
    let mut targets = Vec::new();
    let mut rest = args[first + 1..].iter().map(|w| unquoted(w));
    match basename(args[first]) {
        "read" => {
            while let Some(w) = rest.next() {
                match w {
                    // An option, alone or last in a cluster (`-rd ''`), whose
                    // argument is the next word.
                    w if w.starts_with('-')
                        && w.len() > 1
                        && w.ends_with(['p', 'd', 't', 'n', 'N', 'u', 'i']) =>
                    {
                        rest.next();
                    }
                    w if w.starts_with('-') && w.ends_with('a') => targets.extend(rest.next()),
                    w if w.starts_with('-') => {}
                    // `read -r 'a[0]'`: an element of the array.
                    w => targets.push(w.split('[').next().unwrap_or(w)),
                }
            }
        }
        // Into an array, `MAPFILE` when none is named.
        "mapfile" | "readarray" => {
            while let Some(w) = rest.next() {
                match w {
                    "-d" | "-n" | "-O" | "-s" | "-u" | "-C" | "-c" => {
                        rest.next();
                    }
                    w if w.starts_with('-') => {}
                    w => targets.push(w),
                }
            }
            if targets.is_empty() {
                targets.push("MAPFILE");
            }
        }
        _ => {}
    }
    // `read -rd '' …` leaves no name empty.
    targets.retain(|t| !t.is_empty());
    targets
}

/// What reads the command's standard input (a here-document or here-string):
/// a shell, a remote shell, an interpreter, or (`None`) a command for data.
pub fn stdin(words: &[String]) -> Option<Reader> {
    let args = arguments(words);
    let first = command_start(&args)?;
    stdin_of(&args[first..], true).or_else(|| {
        (first + 1..args.len())
            .filter(|start| !unknown(basename(args[*start])))
            .find_map(|start| stdin_of(&args[start..], true))
    })
}

/// The files a command writes through its redirections (`> f`, `>>f`,
/// `2>f`, `&>f`, `>|f`), by their names' last part.
pub fn written_files(words: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut next = false;
    // What goes to these is not kept (`>/dev/null`), or is the output's own.
    let sink = |w: &str| {
        matches!(
            unquoted(w),
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
        )
    };
    for w in words {
        if next {
            if !sink(w) {
                out.push(file_name(w));
            }
            next = false;
            continue;
        }
        let op = w.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(target) = op
            .strip_prefix("&>")
            .or_else(|| op.strip_prefix('>'))
            .map(|t| t.trim_start_matches(['>', '|']))
        else {
            continue;
        };
        if target.starts_with('&') || target.starts_with('(') {
            continue; // `>&2`, `>(…)`
        }
        if target.is_empty() {
            next = true;
        } else if !sink(target) {
            out.push(file_name(target));
        }
    }
    // Programs that write the files they are given.
    let args = arguments(words);
    if let Some(first) = command_start(&args) {
        let operands = || {
            args[first + 1..]
                .iter()
                .filter(|w| !unquoted(w).starts_with('-'))
        };
        match basename(args[first]) {
            "tee" => out.extend(operands().map(|w| file_name(w))),
            "cp" | "mv" | "install" | "ln" | "rsync" => {
                out.extend(operands().next_back().map(|w| file_name(w)))
            }
            "dd" => out.extend(
                args.iter()
                    .filter_map(|w| unquoted(w).strip_prefix("of="))
                    .map(file_name),
            ),
            _ => {}
        }
    }
    out
}

/// The files a command's input comes from (`< f`, `<f`).
pub fn input_files(words: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut next = false;
    for w in words {
        if std::mem::take(&mut next) {
            out.push(file_name(w));
            continue;
        }
        let op = w.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(target) = op.strip_prefix('<') else {
            continue;
        };
        if target.starts_with(['<', '(', '&', '>']) {
            continue; // `<<EOF`, `<(…)`, `<&3`, `<>`
        }
        if target.is_empty() {
            next = true;
        } else {
            out.push(file_name(target));
        }
    }
    out
}

/// A path's last part, unquoted.
pub fn file_name(word: &str) -> &str {
    unquoted(word).rsplit('/').next().unwrap_or("")
}

/// The files a command may run as a script, by their names' last part: the
/// command itself (`./gen.sh`), or the script operand of a shell, `.`,
/// `source` or an interpreter given no program (`bash gen.sh`).
pub fn files_run(words: &[String]) -> Vec<&str> {
    let args = arguments(words);
    let Some(mut first) = command_start(&args) else {
        return Vec::new();
    };
    // Past wrappers: `env [NAME=VALUE…] bash gen.sh`, `timeout 5 bash
    // gen.sh`, `sudo -u app bash gen.sh`, `exec bash gen.sh`.
    loop {
        let name = basename(args[first]);
        let wrapper = WRAPPERS.iter().find(|(n, ..)| *n == name);
        let with_arg: &[&str] = match (name, wrapper) {
            ("env", _) => &["-u", "-C", "--unset", "--chdir"],
            ("sudo" | "doas" | "runuser", _) => {
                &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"]
            }
            (_, Some((_, with_arg, _))) => with_arg,
            _ => break,
        };
        let operands = wrapper.map_or(0, |(_, _, operands)| *operands);
        let rest = &args[first + 1..];
        // Past the options, then past `NAME=VALUE` words (env, sudo).
        let skip = skip_options(rest, with_arg, operands)
            .map(|at| at + rest[at..].iter().take_while(|w| is_assignment(w)).count());
        match skip {
            Some(at) if first + 1 + at < args.len() => first += 1 + at,
            // `exec 3<gen.sh`: nothing wrapped.
            _ => break,
        }
    }
    let name = basename(args[first]);
    let rest = &args[first + 1..];
    let script = match name {
        // `exec 3< gen.sh`: opened for later commands.
        "." | "source" | "exec" => true,
        n if SHELLS.contains(&n) => !rest.iter().any(|w| cluster_has(w, 'c')),
        n => interpreter(n).is_some_and(|(_, flags, _)| {
            !rest.iter().any(|w| {
                flags
                    .iter()
                    .any(|f| unquoted(w) == *f || cluster_ends_with(w, &f[1..]))
            })
        }),
    };
    let mut out = vec![file_name(args[first])];
    if script {
        out.extend(
            rest.iter()
                .find(|w| !unquoted(w).starts_with('-'))
                .map(|w| file_name(w)),
        );
        // `sh < gen.sh`
        out.extend(input_files(words));
    }
    out
}

/// Whether the word being read is the script file of a shell, of `.` or
/// `source`, or of an interpreter (its first operand, no `-c`/`-e` given).
pub fn script_file(words: &[String], current: &str) -> bool {
    let args = arguments(words);
    let Some(first) = command_start(&args) else {
        return false;
    };
    let name = basename(args[first]);
    let rest = &args[first + 1..];
    let only_options = rest.iter().all(|w| unquoted(w).starts_with('-'));
    if current.starts_with('-') || !only_options {
        return false;
    }
    match name {
        "." | "source" => true,
        n if SHELLS.contains(&n) => !rest.iter().any(|w| cluster_has(w, 'c')),
        n => interpreter(n)
            .is_some_and(|(_, flags, _)| !rest.iter().any(|w| flags.contains(&unquoted(w)))),
    }
}

/// `cmd` is a command name followed by its arguments so far; the next word
/// is being read.
fn walk(cmd: &[&str], current: &str, env: bool) -> Option<Reader> {
    let name = basename(cmd[0]);
    let args = &cmd[1..];
    let last = args.last().map(|w| unquoted(w));
    let shell = |env: bool| {
        Some(if env {
            Reader::Shell
        } else {
            Reader::Cleared("a command that does not pass on sortie's environment")
        })
    };
    // A program named by a variable or a substitution: sortie cannot tell
    // which, so its code options are refused (`${SHELL:-/bin/sh}` is a shell).
    if unknown(name) && !SHELLS.contains(&name) {
        if name.starts_with("${SHELL") || name.starts_with("${BASH") {
            return shell_operand(args, current).then(|| shell(env)).flatten();
        }
        let code = last.is_some_and(|l| {
            matches!(l, "-c" | "-e" | "-E" | "-r" | "--eval" | "--command")
                || cluster_has(l, 'c')
                || cluster_has(l, 'e')
        });
        return code.then_some(Reader::Code(
            "code for a program named by a variable or a substitution",
        ));
    }
    match name {
        // `sqlite3 DB "SQL"`: what follows the database is SQL.
        "sqlite3" | "sqlite" if args.iter().any(|w| !unquoted(w).starts_with('-')) => {
            return Some(Reader::Code("SQL for sqlite3"))
        }
        // An alias's text is parsed again where it is used.
        "eval" | "alias" => return shell(env),
        "trap" if args.iter().all(|a| unquoted(a) == "--") => return shell(env),
        "." | "source" => return None,
        "let" => return Some(Reader::Arithmetic),
        // A word list compgen expands as the shell would (`$(…)` runs), and
        // a command it runs (`-C`); an option the shell computes (`$o`,
        // `"${a[@]}"`) may be either, and so may a value before `--`
        // (`-W$(cmd)`).
        "compgen" | "complete"
            if [last.unwrap_or(""), current].iter().any(|w| {
                // `-W`, `-aW`, `-W"…"`: a cluster that holds W or C.
                w.starts_with('-')
                    && !w.starts_with("--")
                    && w[1..].starts_with(|c: char| c.is_ascii_alphabetic())
                    && w.contains(['W', 'C'])
            }) || args.iter().any(|w| unquoted(w).contains(['$', '`']))
                || !args.iter().any(|w| unquoted(w) == "--") =>
        {
            return Some(Reader::Code("a word list or command compgen runs"))
        }
        "printf" if last == Some("-v") => return Some(Reader::Name),
        "read" if !matches!(last, Some("-p" | "-d" | "-t" | "-n" | "-N" | "-u" | "-i")) => {
            return Some(Reader::Name)
        }
        // `declare "a=(…)"`: a quoted list that declare parses again.
        n if NAMERS.contains(&n) && unquoted(current).contains("=(") => {
            return Some(Reader::Code("an array list declare parses again"))
        }
        n if NAMERS.contains(&n) => {
            // `declare -i x=…` evaluates the value; any of them evaluates a
            // subscript in the name (before `=`).
            // `-n`: the value is a name too.
            let flag = |f: char| {
                args.iter().any(|w| {
                    let w = unquoted(w);
                    w.starts_with('-') && w.contains(f)
                })
            };
            if flag('i') {
                return Some(Reader::Arithmetic);
            }
            if flag('n') || !current.contains('=') {
                return Some(Reader::Name);
            }
            return None;
        }
        "test" | "[" if last == Some("-v") => return Some(Reader::Name),
        "ssh" | "slogin" => {
            if matches!(last, Some("-o")) || current.starts_with("-o") && current.len() > 2 {
                return Some(Reader::Code("an ssh option (ProxyCommand, LocalCommand)"));
            }
            return ssh_host(args)
                .is_some_and(|h| args.len() > h)
                .then_some(Reader::Remote);
        }
        "watch" => return shell(env),
        "script" | "flock" if last.is_some_and(|l| l == "--command" || cluster_has(l, 'c')) => {
            return shell(env)
        }
        "parallel" => return shell(env),
        "env" => return env_command(args, current, env),
        "sudo" => return sudo(args, current, env),
        "su" | "runuser" | "sg" => {
            let login = args
                .iter()
                .any(|w| matches!(unquoted(w), "-" | "-l" | "--login"));
            if last.is_some_and(|l| l == "--command" || cluster_has(l, 'c'))
                || current.starts_with("--command=")
            {
                return shell(env && !login);
            }
            if let Some(dashes) = args.iter().position(|w| unquoted(w) == "--") {
                let rest = &args[dashes + 1..];
                return (!rest.is_empty())
                    .then(|| walk(rest, current, env && !login))
                    .flatten();
            }
            return None;
        }
        "busybox" if !args.is_empty() => return walk(args, current, env),
        "git" => {
            if let Some(reader) = git(args, current, env) {
                return Some(reader);
            }
        }
        "docker-compose" | "podman-compose" => return container(args, current),
        "ip" if args.first().is_some_and(|a| unquoted(a) == "netns") => {
            let exec = args.iter().position(|w| unquoted(w) == "exec")?;
            let rest = args.get(exec + 2..)?;
            return (!rest.is_empty())
                .then(|| walk(rest, current, env))
                .flatten();
        }
        "docker" | "podman" | "nerdctl" => return container(args, current),
        "kubectl" | "oc" => {
            let dashes = args.iter().position(|w| unquoted(w) == "--")?;
            if !args
                .iter()
                .any(|w| matches!(unquoted(w), "exec" | "run" | "debug"))
            {
                return None;
            }
            let rest = &args[dashes + 1..];
            return (!rest.is_empty())
                .then(|| walk(rest, current, false))
                .flatten();
        }
        "find" => {
            let exec = args
                .iter()
                .rposition(|w| matches!(unquoted(w), "-exec" | "-execdir" | "-ok" | "-okdir"))?;
            let rest = &args[exec + 1..];
            if rest
                .iter()
                .any(|w| matches!(unquoted(w), ";" | "\\;" | "+"))
            {
                return None;
            }
            return (!rest.is_empty())
                .then(|| walk(rest, current, env))
                .flatten();
        }
        _ => {}
    }
    if SHELLS.contains(&name) {
        return shell_operand(args, current).then(|| shell(env)).flatten();
    }
    if let Some((_, flags, what)) = interpreter(name) {
        let by_next = last.is_some_and(|l| {
            flags.contains(&l)
                || flags
                    .iter()
                    .any(|f| f.len() == 2 && cluster_ends_with(l, &f[1..]))
        });
        // `-c"…"`, `-e'…'`, `--eval=…`: the program attached to its option.
        let attached = flags.iter().any(|f| {
            current.len() > f.len()
                && (current.starts_with(&format!("{f}=")) || f.len() == 2 && current.starts_with(f))
        });
        return (by_next || attached).then_some(Reader::Code(what));
    }
    if let Some((_, with_arg, file, what)) = PROGRAM_FIRST.iter().find(|(n, ..)| *n == name) {
        return program_first(args, current, with_arg, file, what);
    }
    if let Some((_, options, what)) = COMMAND_OPTIONS.iter().find(|(n, ..)| *n == name) {
        // A one-letter option may end a cluster (`-tC CALLBACK`) or have its
        // argument attached (`-C…`, `-tC…`).
        let letter = |o: &str| o.len() == 2 && o.starts_with('-');
        let in_cluster =
            |w: &str, o: &str| letter(o) && cluster_has(w, o.chars().nth(1).expect("a letter"));
        let by_next = last.is_some_and(|l| {
            options.contains(&l)
                || options
                    .iter()
                    .any(|o| in_cluster(l, o) && l.ends_with(&o[1..]))
        });
        let inline = options.iter().any(|o| {
            (o.starts_with("--") && current.starts_with(&format!("{o}=")))
                || (letter(o) && (current.starts_with(o) || in_cluster(current, o)))
        });
        return (by_next || inline).then_some(Reader::Code(what));
    }
    if let Some((_, with_arg, operands)) = WRAPPERS.iter().find(|(n, ..)| *n == name) {
        let start = skip_options(args, with_arg, *operands)?;
        return walk(&args[start..], current, env);
    }
    None
}

/// Whether the word being read is a shell's script: its first operand, when
/// a `-c` came among its options (`sh -c`, `bash -e -c`, `bash -c -e`, `bash
/// -O extglob -c`, `sh -c --`).
fn shell_operand(args: &[&str], current: &str) -> bool {
    let mut saw_c = false;
    let mut i = 0;
    while let Some(w) = args.get(i).map(|w| unquoted(w)) {
        if w == "--" {
            // Past the options: the word after `--` is the operand.
            return saw_c && i + 1 == args.len();
        }
        if !(w.starts_with('-') || w.starts_with('+')) || w.len() < 2 {
            return false;
        }
        saw_c |= cluster_has(w, 'c') || w == "--command";
        i += if matches!(w, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file") {
            2
        } else {
            1
        };
    }
    saw_c && !current.starts_with('-')
}

/// git's ways to run a command line: `-c alias.x=!…`, a configuration value
/// it runs (`git config alias.x '!…'`), `submodule foreach`, `rebase -x`,
/// `bisect run`.
fn git(args: &[&str], current: &str, env: bool) -> Option<Reader> {
    let words: Vec<&str> = args.iter().map(|w| unquoted(w)).collect();
    let last = words.last().copied();
    let has = |w: &str| words.contains(&w);
    if has("submodule") && has("foreach") {
        return Some(if env {
            Reader::Shell
        } else {
            Reader::Cleared("git")
        });
    }
    if has("rebase") && matches!(last, Some("-x" | "--exec")) {
        return Some(Reader::Shell);
    }
    if has("bisect") {
        if let Some(run) = words.iter().position(|w| *w == "run") {
            let rest = &args[run + 1..];
            return (!rest.is_empty())
                .then(|| walk(rest, current, env))
                .flatten();
        }
    }
    if let Some(config) = words.iter().position(|w| *w == "config") {
        let key = words[config + 1..].iter().find(|w| !w.starts_with('-'));
        let runs = key.is_some_and(|k| {
            let k = k.to_ascii_lowercase();
            k.starts_with("alias.")
                || k.starts_with("credential.")
                || [
                    "sshcommand",
                    ".command",
                    ".editor",
                    ".pager",
                    ".textconv",
                    ".clean",
                    ".smudge",
                    ".process",
                ]
                .iter()
                .any(|e| k.ends_with(e))
        });
        if runs && key.is_some_and(|k| Some(*k) == last) {
            return Some(Reader::Code("a git configuration value that git runs"));
        }
    }
    None
}

/// The interpreter `name` is (`python3.11` is python), with its code options.
fn interpreter(
    name: &str,
) -> Option<&'static (&'static str, &'static [&'static str], &'static str)> {
    INTERPRETERS.iter().find(|(n, ..)| {
        name == *n
            || name.strip_prefix(n).is_some_and(|v| {
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            })
    })
}

/// `-ne`, `-le`: a cluster of short options ending with the code option's letter.
fn cluster_ends_with(word: &str, letter: &str) -> bool {
    word.starts_with('-')
        && !word.starts_with("--")
        && word.len() > 2
        && word[1..].bytes().all(|b| b.is_ascii_alphabetic())
        && word.ends_with(letter)
}

/// Past a wrapper's options (and `operands` words of its own): where the
/// command it runs starts, if it has started before the word being read.
fn skip_options(args: &[&str], with_arg: &[&str], operands: usize) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = args.get(i).map(|w| unquoted(w)) {
        if w == "--" {
            i += 1;
            break;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        i += if with_arg.contains(&w) { 2 } else { 1 };
    }
    let start = i + operands;
    (start < args.len()).then_some(start)
}

/// awk, sed, jq: the first operand is the program, unless a file gives it.
fn program_first(
    args: &[&str],
    current: &str,
    with_arg: &[&str],
    file: &str,
    what: &'static str,
) -> Option<Reader> {
    let sed = what.starts_with("a sed");
    let code_option = |w: &str| sed && matches!(w, "-e" | "--expression");
    if args.last().is_some_and(|w| code_option(unquoted(w))) {
        return Some(Reader::Code(what));
    }
    let mut i = 0;
    let mut program_given = false;
    while let Some(w) = args.get(i).map(|w| unquoted(w)) {
        if w == file || w.starts_with(&format!("{file}=")) || code_option(w) {
            program_given = true;
        }
        if w == "--" {
            i += 1;
            break;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        // jq's `--arg NAME VALUE`: a name and a value (data).
        i += match w {
            "--arg" | "--argjson" | "--slurpfile" | "--rawfile" => 3,
            _ if with_arg.contains(&w) || w == file || code_option(w) => 2,
            _ => 1,
        };
    }
    if sed
        && (current.starts_with("--expression=") || current.starts_with("-e") && current.len() > 2)
    {
        return Some(Reader::Code(what));
    }
    if i > args.len() {
        // The word being read is an option's argument.
        return None;
    }
    // The word being read is the first operand, and no file gave the program.
    (i == args.len() && !program_given && !current.starts_with('-')).then_some(Reader::Code(what))
}

/// `env [-i] [-u NAME] [NAME=VALUE]… COMMAND…`
fn env_command(args: &[&str], current: &str, env: bool) -> Option<Reader> {
    match env_options(args, env) {
        EnvCommand::At(i, keep) => walk(&args[i..], current, keep),
        // What follows `-S` is split into a command line.
        EnvCommand::Split => Some(Reader::Code("a command line env splits")),
        EnvCommand::None if current.starts_with("--split-string=") => {
            Some(Reader::Code("a command line env splits"))
        }
        EnvCommand::None => None,
    }
}

/// Where `env`'s options end among its `args`.
enum EnvCommand {
    /// The command starts at this index; the environment passes on (`false`
    /// after `-i`).
    At(usize, bool),
    /// `-S`: a command line env splits follows.
    Split,
    None,
}

fn env_options(args: &[&str], env: bool) -> EnvCommand {
    let mut keep = env;
    let mut i = 0;
    while let Some(w) = args.get(i).map(|w| unquoted(w)) {
        match w {
            "-i" | "--ignore-environment" | "-" => keep = false,
            "-u" | "--unset" | "-C" | "--chdir" => i += 1,
            w if w.starts_with("-S") || w.starts_with("--split-string") => {
                return EnvCommand::Split
            }
            w if w.starts_with('-') || is_assignment(w) => {}
            _ => return EnvCommand::At(i, keep),
        }
        i += 1;
    }
    EnvCommand::None
}

/// `sudo [options] COMMAND…`: the environment is reset unless kept.
fn sudo(args: &[&str], current: &str, env: bool) -> Option<Reader> {
    const WITH_ARG: &[&str] = &[
        "-u", "-g", "-C", "-h", "-p", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
        "--prompt", "--chdir", "--host",
    ];
    let keeps = args.iter().any(|w| {
        let w = unquoted(w);
        w == "-E" || w.starts_with("--preserve-env") || cluster_has(w, 'E')
    });
    let shell = args.iter().any(|w| {
        let w = unquoted(w);
        matches!(w, "-s" | "-i" | "--shell" | "--login")
    });
    let env = env && keeps;
    if shell {
        // `sudo -s CMD…`, `sudo -i CMD…`: the words become a shell command line.
        return Some(if env {
            Reader::Shell
        } else {
            Reader::Cleared("sudo (it resets the environment; keep it with --preserve-env=NAME)")
        });
    }
    match skip_options(args, WITH_ARG, 0) {
        Some(start) => match walk(&args[start..], current, env) {
            Some(Reader::Cleared(_)) => Some(Reader::Cleared(
                "sudo (it resets the environment; keep it with --preserve-env=NAME)",
            )),
            other => other,
        },
        None => None,
    }
}

/// `docker exec|run [options] CONTAINER COMMAND…`: the command runs in the
/// container, without sortie's environment.
fn container(args: &[&str], current: &str) -> Option<Reader> {
    const WITH_ARG: &[&str] = &[
        "-e",
        "--env",
        "-u",
        "--user",
        "-w",
        "--workdir",
        "-v",
        "--volume",
        "--name",
        "--network",
        "-p",
        "--publish",
        "--entrypoint",
        "--env-file",
        "-l",
        "--label",
        "--mount",
        "--cpus",
        "-m",
        "--memory",
        "--platform",
        "--pull",
        "--restart",
        "--device",
        "--cap-add",
        "--cap-drop",
        "--security-opt",
        "--hostname",
        "-h",
        "--add-host",
        "--dns",
        "--log-driver",
        "--ulimit",
        "--tmpfs",
        "--detach-keys",
    ];
    let sub = args
        .iter()
        .position(|w| matches!(unquoted(w), "exec" | "run"))?;
    let rest = &args[sub + 1..];
    let target = skip_options(rest, WITH_ARG, 0)?;
    // `--entrypoint PROGRAM`: the arguments after the image are its own.
    let entrypoint = rest[..target].iter().enumerate().find_map(|(i, w)| {
        let w = unquoted(w);
        w.strip_prefix("--entrypoint=").or_else(|| {
            (w == "--entrypoint")
                .then(|| rest.get(i + 1).map(|e| unquoted(e)))
                .flatten()
        })
    });
    let mut command: Vec<&str> = entrypoint.into_iter().collect();
    command.extend(&rest[target + 1..]);
    if command.is_empty() {
        return None;
    }
    match walk(&command, current, false) {
        Some(Reader::Cleared(_)) => Some(Reader::Cleared(
            "a container (docker/podman exec or run), which does not have sortie's environment",
        )),
        other => other,
    }
}

/// What reads the standard input of `cmd`.
fn stdin_of(cmd: &[&str], env: bool) -> Option<Reader> {
    let name = basename(cmd[0]);
    let args = &cmd[1..];
    let operands: Vec<&str> = args
        .iter()
        .map(|w| unquoted(w))
        .filter(|w| !w.starts_with('-'))
        .collect();
    let shell = if env {
        Reader::Shell
    } else {
        Reader::Cleared("a command that does not pass on sortie's environment")
    };
    // A substitution in an argument may read the input (`eval "$(cat)"`,
    // `sh -c "$(cat)"`, `. <(cat)`) and give it to what runs it as code.
    let substituted = args
        .iter()
        .any(|w| w.contains("$(") || w.contains('`') || w.contains("<("));
    if unknown(name) && !SHELLS.contains(&name) {
        return Some(Reader::Code(
            "the input of a program named by a variable or a substitution",
        ));
    }
    if SQL_CLIENTS.contains(&name) {
        // Not with the SQL given another way (`psql -c …`, `mysql -e …`).
        let given = interpreter(name)
            .is_some_and(|(_, flags, _)| args.iter().any(|w| flags.contains(&unquoted(w))));
        return (!given).then_some(Reader::Code("SQL, which a database client reads"));
    }
    match name {
        "eval" if substituted => return Some(shell),
        "." | "source" => {
            return (substituted || operands.first().is_some_and(|f| STDIN_FILES.contains(f)))
                .then_some(shell)
        }
        "ssh" | "slogin" => {
            // Without a remote command, the remote login shell reads the input;
            // with one, that command does (`ssh host cat > f` takes data).
            let remote = ssh_host(args).map(|h| &args[h + 1..]).unwrap_or_default();
            let reads_code = remote.is_empty()
                || stdin_of(remote, false).is_some()
                || remote.iter().any(|w| SHELLS.contains(&basename(w)));
            return reads_code.then_some(Reader::Remote);
        }
        // `xargs -I{} sh -c '… {} …'`: the input is pasted into the script.
        "xargs" | "parallel" => {
            let replaces = name == "parallel"
                || args.iter().any(|w| {
                    let w = unquoted(w);
                    w.starts_with("-I") || w == "-i" || w.starts_with("--replace")
                });
            let shell = args.iter().any(|w| SHELLS.contains(&basename(w)));
            // `xargs sh -c` with no script after `-c`: the first item read is the script.
            let c = args.iter().position(|w| cluster_has(w, 'c'));
            return (shell && c.is_some_and(|c| replaces || c + 1 == args.len())).then_some(
                Reader::Code("a shell's script that xargs pastes the input into"),
            );
        }
        // `env [-u NAME] [NAME=VALUE…] bash`: the environment passes, unless `-i`.
        "env" => {
            return match env_options(args, env) {
                EnvCommand::At(i, keep) => stdin_of(&args[i..], keep),
                EnvCommand::Split => Some(Reader::Code("a command line env splits")),
                EnvCommand::None => None,
            }
        }
        // Programs whose commands run what they read.
        "ed" | "ex" => return Some(Reader::Code("commands for ed, whose ! runs a shell")),
        _ if PROGRAM_FIRST.iter().any(|(n, ..)| *n == name) => {
            let runs = |text: &str| {
                if name.ends_with("sed") {
                    sed_executes(text)
                } else {
                    awk_runs_commands(text)
                }
            };
            return match programs(args, name.ends_with("sed")) {
                Some(texts) if !texts.iter().any(|t| runs(t)) => None,
                _ => Some(Reader::Code(
                    "the input of an awk program or sed script that runs what it reads",
                )),
            };
        }
        "sudo" | "docker" | "podman" | "nerdctl" | "kubectl" | "oc" => {
            // The wrapped command reads it: find it by asking what reads a word after it.
            return match walk(cmd, "", env) {
                Some(Reader::Cleared(w)) => Some(Reader::Cleared(w)),
                _ => inner_stdin(cmd),
            };
        }
        _ => {}
    }
    let reads_stdin = operands.first().is_none_or(|f| STDIN_FILES.contains(f))
        || args.iter().any(|w| STDIN_FILES.contains(&unquoted(w)));
    if SHELLS.contains(&name) {
        // A shell with no script operand (or `-s`, or /dev/stdin) reads its script from stdin.
        let reads = reads_stdin || args.iter().any(|w| unquoted(w) == "-s");
        let has_c = args.iter().any(|w| cluster_has(w, 'c'));
        return (reads && !has_c || has_c && substituted).then_some(shell);
    }
    if let Some((_, flags, what)) = interpreter(name) {
        let has_code = args.iter().any(|w| flags.contains(&unquoted(w)));
        return (reads_stdin && !has_code || has_code && substituted).then_some(Reader::Code(what));
    }
    if let Some((_, with_arg, operands)) = WRAPPERS.iter().find(|(n, ..)| *n == name) {
        let start = skip_options(args, with_arg, *operands)?;
        return stdin_of(&args[start..], env);
    }
    None
}

/// The program texts of an awk or sed command (`sed` says which): sed's
/// `-e` scripts (`-e S`, `-eS`, `-ne S`, `--expr=S`) or else the first
/// operand, its shell quotes taken out (all of them for sed, whose scripts
/// hold none: `'p;'e` is `p;e`). `None` when the shell makes a program
/// (`"$s"`, `$(…)`, `$'\x65'`), which is not written there; none when a file
/// gives it (`-f`).
fn programs(args: &[&str], sed: bool) -> Option<Vec<String>> {
    let plain = |w: &str| match sed {
        true => w.replace("$'", "'").replace(['\'', '"'], ""),
        false => unquoted(w).to_string(),
    };
    let mut scripts: Vec<(String, bool)> = Vec::new();
    let mut words = args.iter().map(|w| (plain(w), expands(w)));
    let mut from_file = false;
    while let Some((w, made)) = words.next() {
        if w == "--" {
            scripts.extend(words.next().filter(|_| !sed || scripts.is_empty()));
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, value) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v)));
            let is = |full: &str| !name.is_empty() && full.starts_with(name);
            if sed && is("expression") {
                let script = value
                    .map(|v| (v.to_string(), made))
                    .or_else(|| words.next());
                scripts.push(script?);
            } else if is("file") && !(sed && name == "f") {
                from_file = true;
            }
            continue;
        }
        if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
            // Short options, clustered; the first that takes an argument
            // takes the rest of the word, or the next word.
            let takes: &[char] = if sed {
                &['e', 'f', 'l', 'i']
            } else {
                &['F', 'v', 'f', 'W']
            };
            if let Some(at) = cluster.find(takes) {
                let option = cluster[at..].chars().next().expect("found");
                let rest = &cluster[at + 1..];
                // sed's -i takes an optional suffix, only attached.
                let value = match (rest.is_empty(), sed && option == 'i') {
                    (true, false) => words.next(),
                    _ => Some((rest.to_string(), made)),
                };
                match option {
                    'e' => scripts.push(value?),
                    'f' => from_file = true,
                    _ => {}
                }
            }
            continue;
        }
        if scripts.is_empty() && !from_file {
            scripts.push((w, made));
        }
        break;
    }
    if scripts.iter().any(|(_, made)| *made) {
        return None;
    }
    Some(scripts.into_iter().map(|(s, _)| s).collect())
}

/// Whether the shell makes a word into text not written in it: a parameter
/// or a substitution outside single quotes, or escapes in `$'…'`.
fn expands(word: &str) -> bool {
    let bytes = word.as_bytes();
    let mut single = false;
    let mut i = 0;
    while i < bytes.len() {
        match (single, bytes[i]) {
            (true, b'\'') => single = false,
            (false, b'\'') => single = true,
            (false, b'`') => return true,
            (false, b'$') => match bytes.get(i + 1) {
                // `$'…'`: an escape that can write any letter (`\x65`,
                // `\145`, `\u0065`, `\cE`); `\t`, `\r`, `\n` and the like cannot.
                Some(b'\'') => {
                    let end = word[i + 2..].find('\'').map_or(word.len(), |e| i + 2 + e);
                    let escapes = word[i + 2..end].split('\\').skip(1);
                    if escapes
                        .clone()
                        .any(|e| e.starts_with(|c: char| "xuUc01234567".contains(c)))
                    {
                        return true;
                    }
                    i = end;
                }
                Some(c) if c.is_ascii_alphanumeric() || b"_{(@*#?!-".contains(c) => return true,
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether an awk program may run what it reads: the commands it runs
/// (`system(…)`, `print | …`, `… | getline`, `|&`) inherit its input, so
/// one that is not a literal, or a literal command line with a reader of
/// code in it (`"sh"`, `"env sh"`, `"xargs sh -c"`), runs what was read. A
/// fixed command that reads no code (`print | "sort"`, `"date" | getline`,
/// `system("sync")`) does not.
fn awk_runs_commands(program: &str) -> bool {
    static JOINED: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| regex_lite::Regex::new(r#""\s*""#).expect("a valid pattern"));
    static RUNS: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        regex_lite::Regex::new(concat!(
            r#"system\s*\(\s*(?:"(?P<system>[^"]*)"\s*\)|[^\s)])"#,
            r#"|(?:"(?P<getline>[^"]*)"|[^"\s])\s*(?P<gbar>\|)&?\s*getline"#,
            r#"|\bprintf?\b(?:[^;{}\n|]|\|\|)*(?P<pbar>\|)&?\s*(?:"(?P<print>[^"]*)"|[^\s"])"#,
            r#"|(?P<co>\|&)"#,
        ))
        .expect("a valid pattern")
    });
    // Adjacent literals are one string: `"s" "h"` is `"sh"`.
    let program = JOINED.replace_all(program, "");
    // Where the string literals are, so that a `system(` or `|` in one is
    // text; not looked for where a regex (`/"/`) could hold a quote.
    let mut literals = Vec::new();
    if !program.contains('/') {
        let mut open = None;
        let mut escaped = false;
        for (i, c) in program.char_indices() {
            match (open, c) {
                (Some(_), '\\') if !escaped => escaped = true,
                (Some(start), '"') if !escaped => {
                    literals.push(start..i);
                    open = None;
                }
                (None, '"') => open = Some(i),
                _ => escaped = false,
            }
        }
    }
    let in_literal = |at: usize| literals.iter().any(|r| r.start < at && at < r.end);
    RUNS.captures_iter(&program).any(|found| {
        let at = ["gbar", "pbar", "co"]
            .iter()
            .find_map(|g| found.name(g))
            .map_or(found.get(0).expect("a match").start(), |m| m.start());
        if in_literal(at) {
            return false;
        }
        match ["system", "getline", "print"]
            .iter()
            .find_map(|g| found.name(g))
        {
            Some(command) => command_line_reads_code(command.as_str()),
            None => true,
        }
    })
}

/// Whether a command line (an awk program's literal) has a stage or
/// command that reads its input as code. One with escapes, a subshell or
/// redirections (`\"sh\"`, `(sh)`, `sh<&0`) is not read further: it may.
fn command_line_reads_code(line: &str) -> bool {
    if line.contains(['\\', '(', '<', '>', '`', '$', '\'', '{']) {
        return true;
    }
    line.split(['|', ';', '&', '\n']).any(|part| {
        let words: Vec<String> = part
            .split_whitespace()
            .skip_while(|w| matches!(*w, "exec" | "command" | "builtin" | "nohup" | "time"))
            .map(str::to_string)
            .collect();
        stdin(&words).is_some()
    })
}

/// Whether a sed script runs its pattern space as a command: GNU sed's `e`
/// command, or the `e` flag of `s`.
fn sed_executes(script: &str) -> bool {
    let bytes = script.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // `e` as a command: at a command's start (after a separator,
            // an address or `!`).
            b'e' => {
                let before = script[..i].trim_end_matches([' ', '\t']);
                let after = bytes.get(i + 1).copied();
                let command = before.is_empty()
                    || before.ends_with([';', '\n', '{', '}', '!', '$', '/'])
                    || before.ends_with(|c: char| c.is_ascii_digit());
                if command && after.is_none_or(|b| b" \t;\n}".contains(&b)) {
                    return true;
                }
                i += 1;
            }
            // `s/re/replacement/flags`: past its two parts, to its flags.
            b's' if i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphanumeric() => {
                let delimiter = bytes[i + 1];
                let mut parts = 0;
                let mut j = i + 2;
                while j < bytes.len() && parts < 2 {
                    if bytes[j] == b'\\' {
                        j += 1;
                    } else if bytes[j] == delimiter {
                        parts += 1;
                    }
                    j += 1;
                }
                let flags = bytes[j.min(bytes.len())..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric());
                if flags.clone().any(|b| *b == b'e') {
                    return true;
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    false
}

/// The stdin reader of the command a wrapper such as `sudo` or `docker exec`
/// runs (taken as not having sortie's environment).
fn inner_stdin(cmd: &[&str]) -> Option<Reader> {
    // The first word after the wrapper's own words that names a known reader.
    cmd.iter().enumerate().skip(1).find_map(|(i, w)| {
        let n = basename(w);
        let known = SHELLS.contains(&n) || interpreter(n).is_some() || n == "ssh";
        known.then(|| stdin_of(&cmd[i..], false)).flatten()
    })
}

/// The index of ssh's host among its arguments (past its options and theirs).
pub fn ssh_host(args: &[&str]) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(line: &str) -> Option<Reader> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        word(&words, "")
    }

    fn stdin_reader(line: &str) -> Option<Reader> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        stdin(&words)
    }

    #[test]
    fn the_reader_of_the_next_word_is_found_through_wrappers() {
        use Reader::*;
        let code = |r: Option<Reader>| matches!(r, Some(Code(_)));
        let cleared = |r: Option<Reader>| matches!(r, Some(Cleared(_)));
        for line in [
            "python3 -c",
            "python3.11 -u -c",
            "env LC_ALL=C python3 -c",
            "nice -n 5 perl -e",
            "perl -ne",
            "node -e",
            "ruby -e",
            "awk",
            "awk -F :",
            "gawk -v x=1",
            "sed",
            "sed -n",
            "sed -e",
            "jq -n",
            "jq --arg k v",
            "git -c",
            "tar -x --to-command",
            "rsync -a -e",
            "ssh -o",
            "scp -o",
            "zip -TT",
            "timeout 10 python3 -c",
            "xargs -I {} python3 -c",
            "find . -exec perl -e",
            "docker exec web python3 -c",
            "kubectl exec pod -- python3 -c",
            "sudo -E python3 -c",
        ] {
            assert!(code(reader(line)), "{line}: {:?}", reader(line));
        }
        for line in [
            "sh -c",
            "bash -lc",
            "eval",
            "trap",
            "su root -c",
            "sudo -E bash -c",
            "sudo --preserve-env=X bash -c",
            "flock /tmp/l -c",
            "script -q -c",
            "$SHELL -c",
            "watch -n 1",
            "timeout 5 sh -c",
            "builtin eval",
            "command eval",
            "env FOO=1 sh -c",
            "find . -exec sh -c",
            "xargs sh -c",
            "sshpass -p x sh -c",
        ] {
            assert_eq!(reader(line), Some(Shell), "{line}");
        }
        for line in [
            "sudo bash -c",
            "sudo -u app bash -lc",
            "su - root -c",
            "runuser -l app -c",
            "env -i sh -c",
            "docker exec web sh -c",
            "kubectl exec pod -- sh -c",
            "sudo -i",
        ] {
            assert!(cleared(reader(line)), "{line}: {:?}", reader(line));
        }
        for line in [
            "ssh host",
            "ssh -p 22 host",
            "sshpass -p x ssh host",
            "timeout 10 ssh host",
            "env A=1 ssh host",
        ] {
            assert_eq!(reader(line), Some(Remote), "{line}");
        }
        assert_eq!(reader("let"), Some(Arithmetic));
        assert_eq!(reader("declare -i x"), Some(Arithmetic));
        for line in [
            "unset",
            "read",
            "read -r",
            "declare -n r",
            "[ -v",
            "printf -v",
        ] {
            assert_eq!(reader(line), Some(Name), "{line}");
        }
        for line in [
            "echo",
            "echo sh",
            "python3 script.py",
            "awk -f prog.awk",
            "sed -e s/a/b/",
            "jq -n --arg",
            "jq .",
            "git commit -m",
            "ssh",
            "docker exec web systemctl restart",
            "sudo systemctl restart",
            "curl -d",
            "systemctl restart",
            "read -p",
            "tar -xf",
            "mycommand --flag",
        ] {
            assert_eq!(reader(line), None, "{line}");
        }
    }

    #[test]
    fn the_reader_of_standard_input_is_found() {
        use Reader::*;
        for line in [
            "sh",
            "bash -s",
            "bash -s arg",
            ". /dev/stdin",
            "source /dev/stdin",
            "timeout 5 bash",
            "/usr/bin/env bash",
            "env -u FOO LC_ALL=C bash -s",
            "eval \"$(cat)\"",
            "eval `cat`",
            ". <(cat)",
            "sh -c \"$(cat /dev/stdin)\"",
        ] {
            assert_eq!(stdin_reader(line), Some(Shell), "{line}");
        }
        assert_eq!(stdin_reader("ssh host cat"), None);
        for line in [
            "ssh host",
            "ssh host sh -s",
            "sshpass -p x ssh host",
            "ssh host sudo bash",
        ] {
            assert_eq!(stdin_reader(line), Some(Remote), "{line}");
        }
        for line in [
            "python3",
            "python3 -",
            "perl",
            "node",
            "xargs -I{} sh -c 'echo {}'",
            "xargs -0 sh -c",
            "xargs bash -ec",
            "mysql -u \"$DB_USER\" \"$DB\"",
            "sqlite3 app.db",
            "python3 -c \"$(cat)\"",
            "$B",
            "\"${RUN}\" -x",
            "timeout 5 $(command -v dash)",
        ] {
            assert!(matches!(stdin_reader(line), Some(Code(_))), "{line}");
        }
        assert!(matches!(stdin_reader("env -S 'bash -e'"), Some(Code(_))));
        for line in [
            "docker exec -i web sh",
            "sudo bash",
            "env -i sh",
            "env -u X -i bash",
        ] {
            assert!(
                matches!(stdin_reader(line), Some(Cleared(_))),
                "{line}: {:?}",
                stdin_reader(line)
            );
        }
        for line in [
            "cat",
            "tee /tmp/x",
            "python3 script.py",
            "bash script.sh",
            "kubectl apply -f -",
            "sh -c x",
            "xargs -0 sh -c 'echo \"$1\"'",
            "grep -e \"$PATTERN\" \"$DIR\"",
            "eval x",
        ] {
            assert_eq!(stdin_reader(line), None, "{line}");
        }
    }
}
