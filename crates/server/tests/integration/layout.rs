//! The code's layout: within each crate, no module reaches itself through others (at the top
//! level, and one level down), so that every crate reads from its door inwards.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use regex::Regex;

/// A crate's modules (their paths) and the modules each one names through `crate::`/`super::`.
fn references(src: &Path) -> Vec<(Vec<String>, BTreeSet<Vec<String>>)> {
    let named = Regex::new(r"crate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?").expect("valid");
    let grouped = Regex::new(r"(?s)use crate::\{(.*?)\};").expect("valid");
    let item = Regex::new(r"^\s*([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?").expect("valid");
    let parent = Regex::new(r"super::([a-z_][a-z0-9_]*)").expect("valid");
    let grouped_parent = Regex::new(r"(?s)use super::\{(.*?)\};").expect("valid");
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("a readable folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut module: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("a readable file");
            // Doc comments and tests name what they like.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut names = BTreeSet::new();
            let pair = |a: &str, b: Option<&str>| {
                let mut p = vec![a.to_owned()];
                p.extend(b.map(str::to_owned));
                p
            };
            for c in named.captures_iter(&code) {
                names.insert(pair(&c[1], c.get(2).map(|m| m.as_str())));
            }
            for g in grouped.captures_iter(&code) {
                let mut depth = 0;
                let mut current = String::new();
                for ch in g[1].chars().chain([',']) {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            if let Some(c) = item.captures(&current) {
                                names.insert(pair(&c[1], c.get(2).map(|m| m.as_str())));
                            }
                            current.clear();
                            continue;
                        }
                        _ => {}
                    }
                    current.push(ch);
                }
            }
            if module.len() >= 2 {
                let siblings = parent.captures_iter(&code).map(|c| c[1].to_owned()).chain(
                    grouped_parent.captures_iter(&code).flat_map(|g| {
                        g[1].split(',')
                            .filter_map(|i| item.captures(i).map(|c| c[1].to_owned()))
                            .collect::<Vec<_>>()
                    }),
                );
                for sibling in siblings {
                    let mut p = module[..module.len() - 1].to_vec();
                    p.push(sibling);
                    names.insert(p);
                }
            }
            out.push((module, names));
        }
    }
    out
}

/// The modules of `graph` that reach themselves through others.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[from].iter().collect();
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone())
                && let Some(more) = graph.get(next)
            {
                todo.extend(more);
            }
        }
        seen
    };
    graph
        .keys()
        .filter(|m| reaches(m).contains(*m))
        .cloned()
        .collect()
}

#[test]
fn no_module_reaches_itself_through_others() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&crates)
        .expect("the crates folder")
        .flatten()
    {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let modules = references(&src);
        for level in [1, 2] {
            let key = |m: &[String]| m[..m.len().min(level)].join("::");
            let known: BTreeSet<String> = modules
                .iter()
                .filter(|(m, _)| !m.is_empty())
                .map(|(m, _)| key(m))
                .collect();
            let mut graph: BTreeMap<String, BTreeSet<String>> =
                known.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
            for (module, names) in modules.iter().filter(|(m, _)| !m.is_empty()) {
                let me = key(module);
                for name in names {
                    // The module named, or the one it is in.
                    let target = [key(name), name[0].clone()]
                        .into_iter()
                        .find(|t| known.contains(t));
                    if let Some(target) = target.filter(|t| *t != me) {
                        graph.entry(me.clone()).or_default().insert(target);
                    }
                }
            }
            for module in circles(&graph) {
                found.push(format!("{}: {module}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found.sort();
    found.dedup();
    assert!(found.is_empty(), "modules in a circle: {found:#?}");
}
