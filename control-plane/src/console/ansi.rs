//! A job's output as HTML: text escaped, ANSI colour codes (SGR) turned into
//! spans with classes, every other escape sequence dropped — nothing a job
//! prints becomes markup or moves a reader's cursor.

/// `text` with its SGR colours as `<span class="…">`, escaped.
pub fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut classes: Vec<String> = Vec::new();
    let mut open = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // OSC (`ESC ]` … BEL or `ESC \\`: titles, links): dropped whole.
            if chars.peek() == Some(&']') {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
                continue;
            }
            if chars.peek() != Some(&'[') {
                continue;
            }
            chars.next();
            let mut params = String::new();
            let mut end = None;
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    end = Some(c);
                    break;
                }
                params.push(c);
            }
            if end != Some('m') {
                continue;
            }
            sgr(&params, &mut classes);
            if open {
                out.push_str("</span>");
                open = false;
            }
            if !classes.is_empty() {
                out.push_str(&format!("<span class=\"{}\">", classes.join(" ")));
                open = true;
            }
            continue;
        }
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</span>");
    }
    out
}

/// Apply one SGR sequence's parameters to the classes in force.
fn sgr(params: &str, classes: &mut Vec<String>) {
    let codes: Vec<u32> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
    for code in codes {
        match code {
            0 => classes.clear(),
            1 => set(classes, "b", "b"),
            3 => set(classes, "i", "i"),
            4 => set(classes, "u", "u"),
            30..=37 | 90..=97 => set(
                classes,
                "fg",
                &format!("fg{}", code % 10 + if code >= 90 { 8 } else { 0 }),
            ),
            39 => classes.retain(|c| !c.starts_with("fg")),
            40..=47 | 100..=107 => set(
                classes,
                "bg",
                &format!("bg{}", code % 10 + if code >= 100 { 8 } else { 0 }),
            ),
            49 => classes.retain(|c| !c.starts_with("bg")),
            _ => {}
        }
    }
}

fn set(classes: &mut Vec<String>, family: &str, class: &str) {
    classes.retain(|c| !c.starts_with(family));
    classes.push(class.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_classes_and_nothing_becomes_markup() {
        assert_eq!(
            to_html("\u{1b}[1;31mfail\u{1b}[0m <b>&</b>"),
            "<span class=\"b fg1\">fail</span> &lt;b&gt;&amp;&lt;/b&gt;"
        );
        assert_eq!(to_html("a\u{1b}[2Jb\u{1b}]0;title\u{7}c"), "abc");
        assert_eq!(to_html("\u{1b}]8;;http://evil/\u{1b}\\link"), "link");
        assert_eq!(to_html("\u{1b}[92mok"), "<span class=\"fg10\">ok</span>");
    }
}
