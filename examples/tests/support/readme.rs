//! README.md as the tests read it: the shell commands of its ```sh blocks and its TOML
//! blocks, so that a test can run each command and README cannot drift from what works.
//! Shared by the tests of every crate whose commands README shows.

#![allow(dead_code, unreachable_pub)]

/// README.md's text.
pub fn text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).unwrap()
}

/// The bodies of README's fenced blocks of `language` (the word after the opening fence),
/// in order.
pub fn blocks(language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // Inside a block: its language and what it holds so far.
    let mut open: Option<(String, String)> = None;
    for line in text().lines() {
        if let Some(fence) = line.strip_prefix("```") {
            match open.take() {
                Some((lang, body)) if lang == language => blocks.push(body),
                Some(_) => {}
                None => open = Some((fence.trim().to_string(), String::new())),
            }
            continue;
        }
        if let Some((_, body)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    blocks
}

/// Every command of README's `sh` blocks: lines continued with `\` joined, comments (from a
/// `#` after whitespace) removed, blank lines skipped.
pub fn commands() -> Vec<String> {
    let mut commands = Vec::new();
    for block in blocks("sh") {
        let mut pending = String::new();
        for line in block.lines() {
            let code = match line.find(" #").or(line.starts_with('#').then_some(0)) {
                Some(at) => &line[..at],
                None => line,
            };
            let code = code.trim_end();
            if let Some(continued) = code.strip_suffix('\\') {
                pending.push_str(continued.trim_end());
                pending.push(' ');
                continue;
            }
            pending.push_str(code.trim_start());
            let command = pending.split_whitespace().collect::<Vec<_>>().join(" ");
            if !command.is_empty() {
                commands.push(command);
            }
            pending.clear();
        }
    }
    commands
}

/// `command`'s words, with each `"$(cat FILE)"` replaced by what `cat` would print (read
/// from `folder`) and quotes removed; split on whitespace otherwise.
pub fn words(command: &str, folder: &std::path::Path) -> Vec<String> {
    let mut command = command.to_string();
    while let Some(start) = command.find("\"$(cat ") {
        let end = start + command[start..].find(")\"").expect("closed substitution");
        let file = &command[start + "\"$(cat ".len()..end];
        let contents = std::fs::read_to_string(folder.join(file)).unwrap();
        command.replace_range(start..end + 2, contents.trim());
    }
    command
        .split_whitespace()
        .map(|word| word.trim_matches('"').to_string())
        .collect()
}
