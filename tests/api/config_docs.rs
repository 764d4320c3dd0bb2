//! `docs/configuration.md`: its generated parts (the configuration table
//! and the defaults as a file) match the settings declarations. After an
//! intended change, review the difference and accept it with
//! `UPDATE_SNAPSHOTS=1 cargo test`.

use palisade::settings::{Settings, Sources, docs_table};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");

/// `doc` with the text between the `BEGIN generated: {name}` and
/// `END generated: {name}` markers replaced by `body`.
fn splice(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN generated: {name} -->\n");
    let end = format!("<!-- END generated: {name} -->");
    let start = doc.find(&begin).expect("begin marker") + begin.len();
    let stop = doc.find(&end).expect("end marker");
    format!("{}{body}{}", &doc[..start], &doc[stop..])
}

fn defaults() -> Settings {
    Settings::load(&Sources::default()).unwrap()
}

#[test]
fn the_configuration_docs_match_the_declarations() {
    let doc = std::fs::read_to_string(DOC).unwrap();
    let file = format!("```toml\n{}```\n", defaults().to_redacted_toml());
    let rendered = splice(&doc, "settings::docs_table()", &docs_table());
    let rendered = splice(&rendered, "defaults", &file);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(DOC, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(DOC).unwrap();
    assert!(
        rendered == expected,
        "docs/configuration.md is out of date; review it and run with UPDATE_SNAPSHOTS=1 to accept"
    );
}

#[test]
fn the_configuration_docs_name_the_config_file_variable_and_the_built_in_limits() {
    let doc = std::fs::read_to_string(DOC).unwrap();
    assert!(doc.contains("| `PALISADE_CONFIG` |"));
    let limits = defaults().rate_limit;
    for (name, spec) in &limits.policies {
        let row = format!("| `{name}` | `{spec}` |");
        assert!(
            doc.contains(&row),
            "the built-in policy {name} is not in {row}"
        );
    }
    for (route, names) in &limits.routes {
        let entry = format!("`\"{route}\" = \"{}\"`", names.join(","));
        assert!(
            doc.contains(&entry),
            "the built-in route table lacks {entry}"
        );
    }
}
