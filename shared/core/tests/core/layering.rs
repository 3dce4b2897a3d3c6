//! jit-core's modules use each other in one direction only, as the README's layout section
//! draws them: read from the sources (test modules and comments left out), compared with the
//! README's list, and checked for circles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The top-level modules each top-level module names as `crate::<module>`, outside comments
/// and outside `#[cfg(test)]` modules (tests may reach anywhere).
fn graph_in_code() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if name == "lib" {
            continue;
        }
        let mut files = Vec::new();
        sources(&path, &mut files);
        let uses = graph.entry(name.to_owned()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for line in code.lines().map(str::trim_start) {
                if line.starts_with("//") {
                    continue;
                }
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let module: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !module.is_empty() && module != name && src_has(&src, &module) {
                        uses.insert(module);
                    }
                }
            }
        }
    }
    graph
}

fn src_has(src: &Path, module: &str) -> bool {
    src.join(module).is_dir() || src.join(format!("{module}.rs")).is_file()
}

/// The list in the README's layout section, after `<!-- jit-core modules -->`.
fn graph_in_readme() -> Graph {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let (_, after) = text
        .split_once("<!-- jit-core modules -->\n```\n")
        .expect("the README draws jit-core's modules");
    let (block, _) = after.split_once("```").unwrap();
    block
        .lines()
        .map(|line| {
            let (module, uses) = line.split_once("->").expect("`module -> uses`");
            (
                module.trim().to_owned(),
                uses.split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

#[test]
fn the_modules_use_each_other_as_the_readme_draws_them_without_a_circle() {
    let code = graph_in_code();
    assert_eq!(
        code,
        graph_in_readme(),
        "the README's list of jit-core's modules does not match the code"
    );
    // Kahn's algorithm: a module whose uses are all placed is placed next; whatever is left
    // sits on a circle.
    let mut placed = BTreeSet::new();
    while placed.len() < code.len() {
        let next: Vec<&String> = code
            .iter()
            .filter(|(m, uses)| !placed.contains(*m) && uses.iter().all(|u| placed.contains(u)))
            .map(|(m, _)| m)
            .collect();
        assert!(
            !next.is_empty(),
            "these modules use each other in a circle: {:?}",
            code.keys()
                .filter(|m| !placed.contains(*m))
                .collect::<Vec<_>>()
        );
        placed.extend(next.into_iter().cloned());
    }
}
