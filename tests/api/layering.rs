//! The module layering of `docs/architecture.md`, kept by a test.
//!
//! Every top-level module of `src/` sits in one layer of [`LAYERS`],
//! lowest first. A module may use modules of lower layers only: never one
//! of its own layer (peers stay independent) and never one above. So the
//! graph of top-level modules has no cycle, and each layer can be read,
//! tested and replaced knowing only the layers below it.
//!
//! The scan reads every `crate::name` path in the code (imports, inline
//! paths, attribute arguments such as utoipa's `body = crate::error::Problem`),
//! comment lines excluded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::sql_hygiene::rust_files;

/// The layers, lowest first. Keep in step with `docs/architecture.md`.
pub const LAYERS: &[&[&str]] = &[
    // Values that can only be valid, and the one error type with its
    // problem-details rendering. They import nothing of the crate.
    &["domain", "error"],
    // The typed configuration.
    &["settings"],
    // Engines that know nothing about HTTP: the database, the limiter
    // engine and its stores, logging, the session cache and the channels
    // that invalidate it.
    &["storage", "ratelimit", "telemetry", "cache", "mail"],
    // HTTP plumbing: the layer stack, client IP, request id, CORS,
    // headers, the rate-limit middleware. Knows no users or databases.
    &["http"],
    // Authentication mechanisms: hashing, tokens, extractors, back-off,
    // audit, and the narrow states features reach through `FromRef`.
    &["auth"],
    // Features: each owns its routes and talks to storage and auth.
    &["accounts", "tokens", "admin", "mfa", "api_keys", "gateway"],
    // The assembly: the whole state, the route table and router, the
    // server, the command line.
    &["state"],
    &["routes"],
    &["startup", "check_config", "cli"],
    &["admin_cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`None` for the crate
/// roots, which declare the modules and may name any of them).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The top-level modules a source text names through `crate::`.
pub fn imports(source: &str) -> BTreeSet<String> {
    let single = regex::Regex::new(r"\bcrate::([a-z_][a-z0-9_]*)").unwrap();
    let group = regex::Regex::new(r"\bcrate::\{([^}]*)\}").unwrap();
    let first = regex::Regex::new(r"(?:^|,)\s*([a-z_][a-z0-9_]*)").unwrap();
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out: BTreeSet<String> = single
        .captures_iter(&code)
        .map(|c| c[1].to_owned())
        .collect();
    // `use crate::{a::X, b}`: the first segment of each item. Nested
    // braces are rare; their inner items are not top-level names anyway.
    for c in group.captures_iter(&code) {
        for item in first.captures_iter(&c[1]) {
            out.insert(item[1].to_owned());
        }
    }
    out
}

/// Every `from -> to` import between distinct top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|to| *to != from));
    }
    graph
}

/// The imports that break the layering, as readable lines.
pub fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in graph {
        let Some(lf) = layer_of(from) else {
            out.push(format!(
                "{from}: not in LAYERS (place it in tests/api/layering.rs and docs/architecture.md)"
            ));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                None => out.push(format!("{from} -> {to}: {to} is not in LAYERS")),
                Some(lt) if lt == lf => {
                    out.push(format!(
                        "{from} -> {to}: peers in one layer must not import each other"
                    ));
                }
                // Numbered from 1, as docs/architecture.md lists them.
                Some(lt) if lt > lf => out.push(format!(
                    "{from} -> {to}: points up (layer {} imports layer {})",
                    lf + 1,
                    lt + 1
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// A cycle among the top-level modules, if any (depth-first search).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut found = path[i..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_import_points_down_the_documented_layers() {
    let bad = violations(&graph());
    assert!(
        bad.is_empty(),
        "imports that break the layering of docs/architecture.md:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn the_top_level_modules_have_no_cycle() {
    if let Some(cycle) = cycle(&graph()) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_architecture_doc_lists_the_same_layers() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md"))
        .unwrap();
    for (i, layer) in LAYERS.iter().enumerate() {
        let line = format!(
            "{}. {}",
            i + 1,
            layer
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(
            doc.contains(&line),
            "docs/architecture.md lacks the layer line {line:?}"
        );
    }
}

#[test]
fn the_scan_sees_upward_imports_in_every_form() {
    let source = "use crate::routes::router;\n\
                  // use crate::startup::Application;\n\
                  fn f() { crate::state::AppState::x(); }\n\
                  use crate::{admin::rules, cli};\n\
                  #[utoipa::path(responses((status = 500, body = crate::error::Problem)))]\n";
    let found = imports(source);
    let expected: BTreeSet<String> = ["routes", "state", "admin", "cli", "error"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
    let mut graph = BTreeMap::new();
    graph.insert("http".to_owned(), found);
    let bad = violations(&graph);
    for up in ["routes", "state", "admin", "cli"] {
        assert!(
            bad.iter().any(|b| b.starts_with(&format!("http -> {up}:"))),
            "{up} not reported: {bad:?}"
        );
    }
    assert!(
        !bad.iter().any(|b| b.starts_with("http -> error")),
        "{bad:?}"
    );
}

#[test]
fn a_cycle_is_found() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_owned()].into());
    graph.insert("b".into(), ["c".to_owned()].into());
    graph.insert("c".into(), ["a".to_owned()].into());
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert!(cycle(&graph).is_none());
}
