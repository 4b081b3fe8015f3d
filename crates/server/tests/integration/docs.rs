//! The README and the book (`docs/`): every page is in the book's summary and every summary
//! entry is a page; every link inside the repository leads to a file that exists and, with a
//! `#fragment`, to a heading of that page. (`./scripts/test` also builds the book with mdBook.)

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text outside fenced code blocks and inline code, where links are links.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            let mut inline = false;
            for c in line.chars() {
                if c == '`' {
                    inline = !inline;
                } else if !inline {
                    out.push(c);
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The ids mdBook gives a page's headings: lower case, spaces as `-`, other punctuation gone,
/// a repeated id numbered.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let id: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = id.clone();
        let mut n = 1;
        while ids.contains(&unique) {
            unique = format!("{id}-{n}");
            n += 1;
        }
        ids.insert(unique);
    }
    ids
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .expect("docs/src")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_page_is_in_the_summary_and_every_entry_is_a_page() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).expect("SUMMARY");
    let entry = Regex::new(r"\]\(([^)]+\.md)\)").expect("a regex");
    let listed: BTreeSet<String> = entry
        .captures_iter(&summary)
        .map(|c| c[1].to_owned())
        .collect();
    let present: BTreeSet<String> = pages()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .filter(|name| name != "SUMMARY.md")
        .collect();
    assert_eq!(listed, present, "SUMMARY.md and the pages of docs/src");
}

#[test]
fn every_link_inside_the_repository_leads_somewhere() {
    let root = root().canonicalize().expect("the repository");
    let link = Regex::new(r"\]\(([^)\s]+)\)").expect("a regex");
    let mut files = pages();
    files.push(root.join("README.md"));
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a page");
        let dir = file.parent().expect("a folder");
        for target in link.captures_iter(&prose(&text)).map(|c| c[1].to_owned()) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            // A link out of the repository (../shared) cannot be checked in a clone of it.
            if lexical_outside(dir, path, &root) {
                continue;
            }
            let Ok(resolved) = resolved.canonicalize() else {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            };
            checked += 1;
            if !fragment.is_empty() {
                let page = std::fs::read_to_string(&resolved).unwrap_or_default();
                if !anchors(&page).contains(fragment) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} links were checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Whether `dir/path` leaves `root`, by its `..` segments alone.
fn lexical_outside(dir: &Path, path: &str, root: &Path) -> bool {
    let mut at = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    for segment in path.split('/') {
        match segment {
            ".." => {
                at.pop();
            }
            "." | "" => {}
            other => at.push(other),
        }
    }
    !at.starts_with(root)
}
