//! The README's configuration table names every setting.

#[test]
fn the_readme_names_every_environment_variable() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let missing: Vec<&str> = palisade::settings::vars::VARS
        .iter()
        .map(|v| v.env)
        .chain([palisade::settings::vars::CONFIG_FILE_ENV])
        .filter(|env| !readme.contains(&format!("`{env}`")))
        .collect();
    assert!(missing.is_empty(), "README.md lacks {missing:?}");
}
