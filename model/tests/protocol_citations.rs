//! Every citation of the protocol points at something `specs/protocol.md` defines, and
//! nothing in the repository points outside it.
//!
//! The citation format (`specs/protocol.md`, "Citing this page"): rules by id (`A1`,
//! `C9`, ranges as `C1–C3`), tests named after them (`fn a1_...`, `fn c9_...`), sections
//! as `§N`. This test scans the repository's sources, specs, scripts and generated
//! counterexamples for every such token and checks each one against the headings and
//! rule definitions of `specs/protocol.md`. It also refuses the citations this format
//! replaced ("rule 9", `rule9_`: agent and coordinator rules used to share numbers) and
//! any reference to the protocol's old home outside the repository.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root (the model crate lives in `model/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the model crate is inside the repository")
        .to_path_buf()
}

const PROTOCOL: &str = "specs/protocol.md";

/// What the protocol page defines: rule ids (`A1`, `C18`, from lines `**A1. ...`) and
/// top-level section numbers (from headings `## 4. ...`).
struct Defined {
    rules: BTreeSet<String>,
    sections: BTreeSet<u32>,
}

fn defined(text: &str) -> Defined {
    let mut rules = BTreeSet::new();
    let mut sections = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("**") {
            if let Some((id, _)) = rest.split_once(". ") {
                if is_rule_id(id) {
                    assert!(
                        rules.insert(id.to_string()),
                        "{PROTOCOL}: {id} defined twice"
                    );
                }
            }
        }
        if let Some(rest) = line.strip_prefix("## ") {
            if let Some((n, _)) = rest.split_once(". ") {
                if let Ok(n) = n.parse::<u32>() {
                    assert!(sections.insert(n), "{PROTOCOL}: section {n} defined twice");
                }
            }
        }
    }
    Defined { rules, sections }
}

/// `A` or `C` followed by digits only.
fn is_rule_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A' | 'C')) && s.len() > 1 && chars.all(|c| c.is_ascii_digit())
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every rule id cited in `text`: a standalone `A<digits>`/`C<digits>` token, or the
/// prefix of a test named `a<digits>_...`/`c<digits>_...`.
fn cited_rules(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_word = i == 0 || !is_word(chars[i - 1]);
        if starts_word && matches!(c, 'A' | 'C' | 'a' | 'c') {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let digits = j > i + 1;
            let next = chars.get(j).copied();
            let token = || format!("{}{}", c.to_ascii_uppercase(), &text_of(&chars[i + 1..j]));
            if digits && c.is_ascii_uppercase() && !next.is_some_and(is_word) {
                found.push(token());
            } else if digits && c.is_ascii_lowercase() && next == Some('_') {
                // A test named after a rule: `fn c9_...`.
                let before: String = chars[i.saturating_sub(3)..i].iter().collect();
                if before == "fn " {
                    found.push(token());
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

fn text_of(chars: &[char]) -> String {
    chars.iter().collect()
}

/// Every section cited as `§N` in `text`, with whether it names a subsection (`§N.M`).
fn cited_sections(text: &str) -> Vec<(String, Option<u32>)> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices('§') {
        let rest = &text[i + '§'.len_utf8()..];
        let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if n.is_empty() {
            continue; // "§N" as a placeholder in prose
        }
        let after = &rest[n.len()..];
        let sub = after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
        let shown = if sub {
            let m: String = after[1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            format!("§{n}.{m}")
        } else {
            format!("§{n}")
        };
        found.push((shown, if sub { None } else { n.parse().ok() }));
    }
    found
}

/// The old, ambiguous forms: "rule 9", "rules 1–3", `rule9_`.
fn legacy_rule_citation(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.match_indices("rule").any(|(i, _)| {
        let rest = &lower[i + 4..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let word_start = i == 0 || !lower[..i].ends_with(is_word);
        word_start && rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// References to the protocol's old home, outside the repository.
fn outside_references() -> [String; 4] {
    [
        ["PROTOCOL", ".md"].concat(),
        ["..", "/shared"].concat(),
        ["/work", "/shared"].concat(),
        ["seed", "/pr-"].concat(),
    ]
}

/// The files that may cite the protocol: sources, specs, scripts, the wire protocol,
/// manifests, generated counterexamples and CI. Skips `target/` and `.git`.
fn scanned_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "target" || name == ".git" {
            continue;
        }
        if path.is_dir() {
            scanned_files(&path, out);
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let in_ci = path.parent().and_then(|p| p.file_name()) == Some(".ci".as_ref());
        if in_ci || matches!(ext, "rs" | "md" | "sh" | "txt" | "proto" | "toml") {
            out.push(path);
        }
    }
}

/// Checks every scanned file under `root` against `protocol`; returns one line per
/// problem.
fn problems(root: &Path, protocol: &str) -> Vec<String> {
    let defs = defined(protocol);
    let mut files = Vec::new();
    scanned_files(root, &mut files);
    let mut problems = Vec::new();
    for path in &files {
        let Ok(text) = fs::read_to_string(path) else {
            continue; // not text
        };
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        if rel == "model/tests/protocol_citations.rs" {
            continue; // its own examples
        }
        let is_protocol = rel == PROTOCOL;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{rel}:{}", n + 1);
            for id in cited_rules(line) {
                if !defs.rules.contains(&id) {
                    problems.push(format!("{at}: {id} is not a rule of {PROTOCOL}"));
                }
            }
            for (shown, n) in cited_sections(line) {
                match n {
                    Some(n) if defs.sections.contains(&n) => {}
                    Some(_) => {
                        problems.push(format!("{at}: {shown} is not a section of {PROTOCOL}"))
                    }
                    None => problems.push(format!(
                        "{at}: {shown}: cite a rule id (A1, C9) or a top-level section"
                    )),
                }
            }
            if !is_protocol && legacy_rule_citation(line) {
                problems.push(format!(
                    "{at}: \"rule N\" is ambiguous: cite A<N> (agent) or C<N> (coordinator)"
                ));
            }
            for bad in outside_references() {
                if line.contains(&bad) {
                    problems.push(format!(
                        "{at}: points outside the repository ({bad}); cite {PROTOCOL}"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_citation_names_a_rule_or_section_that_the_protocol_defines() {
    let root = root();
    let protocol = fs::read_to_string(root.join(PROTOCOL)).expect("specs/protocol.md exists");
    let defs = defined(&protocol);
    // The page defines what it promises: A1–A8, C1–C18, sections 1–7.
    let want: BTreeSet<String> = (1..=8)
        .map(|n| format!("A{n}"))
        .chain((1..=18).map(|n| format!("C{n}")))
        .collect();
    assert_eq!(defs.rules, want);
    assert_eq!(defs.sections, (1..=7).collect());
    let problems = problems(&root, &protocol);
    assert!(
        problems.is_empty(),
        "{} bad citation(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_scanner_finds_what_it_must() {
    assert_eq!(
        cited_rules("see C9, A1–A3 and C15."),
        ["C9", "A1", "A3", "C15"]
    );
    assert_eq!(cited_rules("fn c9_a_target() {} fn a12_x()"), ["C9", "A12"]);
    // Not citations: words, hex, test helpers without a rule.
    assert!(cited_rules("CA1 0xC1 A1B c9 fn abc_1 x_c9_y PROTOCOL_VERSION").is_empty());
    assert_eq!(
        cited_sections("specs/protocol.md §4, §5.15 and §N"),
        [("§4".to_string(), Some(4)), ("§5.15".to_string(), None)]
    );
    assert!(legacy_rule_citation("(rule 9)"));
    assert!(legacy_rule_citation("Rules 1–3: observation"));
    assert!(legacy_rule_citation("fn rule9_a_tombstone"));
    assert!(!legacy_rule_citation("the rules of C9; a ruler 3"));
    assert!(!legacy_rule_citation("a schedule 5"));
}
