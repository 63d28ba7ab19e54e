//! The guide cannot rot: every chapter of the book under `docs/src/` is
//! read, and
//!
//! - every relative link and image resolves (the file, and the anchor in
//!   it);
//! - every command line shown in a code block that runs a binary of this
//!   workspace (`cargo run … --bin NAME -- FLAGS`, or a bare `labN-… FLAGS`
//!   / `shmlab … FLAGS`) names a binary that exists, with flags its own
//!   parser accepts (`labs::commands`, the same clap definitions the
//!   binaries use: parse only, nothing runs);
//! - every binary has a chapter, and its `--help` names it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn book() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src")
}

fn chapters() -> Vec<(PathBuf, String)> {
    let mut v: Vec<_> = std::fs::read_dir(book())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    v
}

/// GitHub's and mdBook's heading anchor.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a chapter defines: `<a id="…">` and its headings.
fn anchors(text: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    let mut code = false;
    for l in text.lines() {
        if l.starts_with("```") {
            code = !code;
        }
        if code {
            continue;
        }
        if let Some(rest) = l.strip_prefix("<a id=\"") {
            if let Some(end) = rest.find('"') {
                set.insert(rest[..end].to_string());
            }
        }
        if l.starts_with('#') {
            set.insert(slug(l.trim_start_matches('#')));
        }
    }
    set
}

/// Every `](target)` outside code blocks, with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut code = false;
    for (n, l) in text.lines().enumerate() {
        if l.starts_with("```") {
            code = !code;
        }
        if code {
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_image_resolves() {
    let mut broken = Vec::new();
    for (path, text) in chapters() {
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            if !resolved.exists() {
                broken.push(format!(
                    "{}:{line}: {target} (no such file)",
                    path.display()
                ));
                continue;
            }
            if let Some(a) = anchor {
                if resolved.extension().is_some_and(|e| e == "md") {
                    let t = std::fs::read_to_string(&resolved).unwrap();
                    if !anchors(&t).contains(a) {
                        broken.push(format!(
                            "{}:{line}: {target} (no such anchor)",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Splits a shell command line into words (single and double quotes;
/// stops at a pipe, a redirection, `;`, `&&` or a comment).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    any = true;
                }
                ' ' | '\t' => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                _ => cur.push(c),
            },
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    let stop = out.iter().position(|w| {
        ["|", ";", "&&", "||", "&", "#"].contains(&w.as_str())
            || w.starts_with('>')
            || w.starts_with("2>")
            || w.starts_with('<')
    });
    out.truncate(stop.unwrap_or(out.len()));
    out
}

/// The binary and its arguments, if `line` (a line of a code block) runs
/// one of ours.
fn invocation(line: &str, bins: &HashSet<&str>) -> Option<(String, Vec<String>)> {
    let line = line.trim().trim_start_matches("$ ").trim();
    let w = words(line);
    let first = w.first()?;
    if first == "cargo" && w.get(1).is_some_and(|s| s == "run") {
        let i = w.iter().position(|s| s == "--bin")?;
        let name = w.get(i + 1)?.clone();
        let args = match w.iter().position(|s| s == "--") {
            Some(j) => w[j + 1..].to_vec(),
            None => Vec::new(),
        };
        return Some((name, args));
    }
    let base = Path::new(first).file_name()?.to_str()?;
    if bins.contains(base) && (first == base || first.contains("target/")) {
        return Some((base.to_string(), w[1..].to_vec()));
    }
    None
}

/// Every command line of the book that its binary's parser refuses.
fn refused(text: &str, file: &str) -> Vec<String> {
    let cmds = labs::commands::all();
    let bins: HashSet<&str> = cmds.iter().map(|(n, _)| *n).collect();
    let mut bad = Vec::new();
    // None outside a code block; Some(true) in a block of output (`text`),
    // where only `$ ` lines are commands; Some(false) in a shell block.
    let mut block: Option<bool> = None;
    let lines: Vec<&str> = text.lines().collect();
    for (n, l) in lines.iter().enumerate() {
        if let Some(info) = l.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(info.trim() == "text"),
            };
            continue;
        }
        let Some(output) = block else { continue };
        if output && !l.trim_start().starts_with("$ ") {
            continue;
        }
        // A synopsis (`[--json]`, `FLAGS`, `...`) is not a command line.
        if l.contains("...") || l.contains(" [-") || l.contains("FLAGS") || l.contains('…') {
            continue;
        }
        let Some((name, args)) = invocation(l, &bins) else {
            continue;
        };
        let Some((_, cmd)) = cmds.iter().find(|(b, _)| *b == name) else {
            bad.push(format!("{file}:{}: no binary named {name}: {l}", n + 1));
            continue;
        };
        // A command shown with an error under it (the next line starts
        // `error:`) is a bad-input example: its parser may refuse it (or
        // the lab may, when it runs).
        let shown_refused = lines
            .get(n + 1)
            .is_some_and(|next| next.trim_start().starts_with("error:"));
        let argv = std::iter::once(name.clone()).chain(args);
        match cmd.clone().try_get_matches_from(argv) {
            Ok(_) => {}
            Err(e) => {
                use clap::error::ErrorKind;
                let ok = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
                if !ok && !shown_refused {
                    let first = e.to_string();
                    let first = first.lines().next().unwrap_or("").to_string();
                    bad.push(format!("{file}:{}: {l}\n    {first}", n + 1));
                }
            }
        }
    }
    bad
}

#[test]
fn every_command_line_in_the_book_parses_with_its_binary() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for (path, text) in chapters() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        bad.extend(refused(&text, &name));
        seen += text
            .lines()
            .filter(|l| l.contains("--bin ") || l.trim_start().starts_with("lab"))
            .count();
    }
    assert!(
        seen > 50,
        "only {seen} command lines found: is the book there?"
    );
    assert!(bad.is_empty(), "the guide has rotted:\n{}", bad.join("\n"));
}

/// The check itself catches a renamed flag (what a guide edited with an
/// old flag looks like).
#[test]
fn a_renamed_flag_in_the_guide_is_caught() {
    let rotten = "```sh\ncargo run --release --bin lab4-race -- --syncc none\nlab7-buffer --items 10\nshmlab ps --jsn\n```\n";
    let bad = refused(rotten, "rotten.md");
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(bad[0].contains("--syncc"), "{bad:#?}");
    assert!(bad[1].contains("--jsn"), "{bad:#?}");
}

#[test]
fn every_binary_has_a_chapter_and_its_help_says_where() {
    for (name, cmd) in labs::commands::all() {
        let chapter =
            labs::commands::chapter(name).unwrap_or_else(|| panic!("{name} has no chapter"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(chapter);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", path.display()));
        assert!(text.contains(name), "{chapter} never names {name}");
        let help = cmd.clone().render_long_help().to_string();
        assert!(
            help.contains(chapter),
            "{name} --help does not name {chapter}:\n{help}"
        );
    }
}

#[test]
fn the_summary_lists_every_chapter() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).unwrap();
    for (path, _) in chapters() {
        let f = path.file_name().unwrap().to_string_lossy().into_owned();
        if f != "SUMMARY.md" {
            assert!(summary.contains(&format!("({f})")), "SUMMARY.md misses {f}");
        }
    }
}

/// `shmlab manpages DIR` writes a page for every binary, and each page
/// names every flag of its binary (and, for `shmlab`, every subcommand).
#[test]
fn man_pages_are_produced_and_name_every_flag() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmlab"))
        .arg("manpages")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, cmd) in labs::commands::all() {
        let page = std::fs::read_to_string(dir.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no page for {name}: {e}"));
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(
                    page.contains(&roff) || page.contains(&format!("--{long}")),
                    "{name}.1 does not name --{long}"
                );
            }
        }
        for sub in cmd.get_subcommands() {
            let n = sub.get_name();
            assert!(
                page.contains(n) || page.contains(&n.replace('-', "\\-")),
                "{name}.1 does not name {n}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `shmlab completions SHELL` covers every binary.
#[test]
fn completions_cover_every_binary() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmlab"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for (name, _) in labs::commands::all() {
            assert!(script.contains(name), "{shell} completions miss {name}");
        }
        for flag in ["sync", "kill-every"] {
            assert!(
                script.contains(&format!("--{flag}")) || script.contains(&format!("-l {flag}")),
                "{shell} completions miss --{flag}"
            );
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmlab"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
