//! The example configs in configs/ stay true to the code: each parses into
//! the configuration structs (unknown keys are refused) with a known role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crux::config::raw::RawConfig;

#[test]
fn example_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Yaml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().unwrap().to_str().unwrap();
        if let Some(relay) = &raw.relay {
            assert!(
                relay.sources.iter().all(|s| s.decimals.is_some()),
                "{}: relays must declare decimals",
                path.display()
            );
        }
        assert_eq!(raw.node.role, stem, "{} declares role {}", path.display(), raw.node.role);
        seen += 1;
    }
    assert_eq!(seen, 4);
}
