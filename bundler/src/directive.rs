//! Finds the `"use node"` directive: a string-literal statement in a file's
//! directive prologue (before any other statement), which is how Convex marks
//! modules whose actions run in Node.js. Scanning the prologue, rather than
//! searching the text, keeps `"use node"` inside code or comments from counting.

/// Whether `source` starts with a directive prologue that contains `"use node"`.
pub(crate) fn has_use_node(source: &str) -> bool {
    let mut rest = skip_trivia(source.strip_prefix("#!").map_or(source, |s| s.split_once('\n').map_or("", |x| x.1)));
    while let Some((literal, after)) = string_literal(rest) {
        let (crossed_line, after) = skip_trivia_noting_newline(after);
        let ends_statement = after.is_empty() || after.starts_with(';') || after.starts_with('}') || crossed_line;
        if !ends_statement {
            return false; // `"use node" + x` is an expression, not a directive
        }
        if literal == "use node" {
            return true;
        }
        rest = skip_trivia(after.strip_prefix(';').unwrap_or(after));
    }
    false
}

/// The content of the string literal that `text` starts with (escapes kept
/// as written: a directive containing an escape is never "use node").
fn string_literal(text: &str) -> Option<(&str, &str)> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &text[1..];
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\n' => return None,
            c if c == quote => return Some((&body[..i], &body[i + 1..])),
            _ => {}
        }
    }
    None
}

fn skip_trivia(text: &str) -> &str {
    skip_trivia_noting_newline(text).1
}

/// Skips white space and comments; says whether a line break was among them.
fn skip_trivia_noting_newline(mut text: &str) -> (bool, &str) {
    let mut newline = false;
    loop {
        let trimmed = text.trim_start();
        newline |= text[..text.len() - trimmed.len()].contains('\n');
        text = trimmed;
        if let Some(line_comment) = text.strip_prefix("//") {
            newline = true;
            text = line_comment.split_once('\n').map_or("", |x| x.1);
        } else if let Some(block) = text.strip_prefix("/*") {
            let (comment, after) = block.split_once("*/").unwrap_or((block, ""));
            newline |= comment.contains('\n');
            text = after;
        } else {
            return (newline, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::has_use_node;

    #[test]
    fn directives_in_the_prologue_count() {
        for source in [
            "\"use node\";\nexport const a = 1;",
            "'use node'\nimport x from 'y';",
            "// header\n/* block\n */\n\"use strict\";\n\"use node\";",
            "#!/usr/bin/env node\n\"use node\"",
            "\"use node\"",
            "  \"use node\" // trailing\nexport {}",
        ] {
            assert!(has_use_node(source), "{source:?}");
        }
    }

    #[test]
    fn anything_else_does_not() {
        for source in [
            "import x from 'y';\n\"use node\";",
            "// \"use node\";\nexport {}",
            "/* \"use node\" */ export {}",
            "\"use node\" + x;",
            "\"use nodes\";",
            "\"use\\x20node\";",
            "const s = \"use node\";",
            "",
        ] {
            assert!(!has_use_node(source), "{source:?}");
        }
    }
}
