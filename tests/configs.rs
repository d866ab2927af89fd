//! The example configs in configs/ stay true to the code: each parses into
//! the configuration structs (unknown keys are refused) with a known role,
//! the defaults they show are the ones in `crux::config::defaults`, and
//! their `metrics` sections are where `crux-node init` puts them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use crux::config::defaults;
use crux::config::raw::RawConfig;

fn example(name: &str) -> RawConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(name);
    config::Config::builder()
        .add_source(config::File::from(path.as_path()).format(config::FileFormat::Yaml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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

/// configs/authority.yaml says "defaults shown" for its timeouts; it and
/// processor.yaml also show the default limits, budget, window and table.
#[test]
fn example_configs_show_the_defaults() {
    let authority = example("authority.yaml");
    let t = &authority.timeouts;
    assert_eq!(t.connect_ms, defaults::CONNECT_MS);
    assert_eq!(t.request_ms, defaults::REQUEST_MS);
    assert_eq!(t.query_ms, defaults::QUERY_MS);
    assert_eq!(t.retries, defaults::RETRIES);
    assert_eq!(t.retry_backoff_ms, defaults::RETRY_BACKOFF_MS);
    assert_eq!(usize::try_from(authority.limits.max_frame_bytes).unwrap(), defaults::MAX_FRAME_BYTES);
    assert_eq!(authority.cluster.min_relays, defaults::MIN_RELAYS);
    let a = authority.authority.unwrap();
    assert_eq!(a.budget_epsilon, defaults::BUDGET_EPSILON);
    assert_eq!(a.replay_window_secs, defaults::REPLAY_WINDOW_SECS);
    let p = example("processor.yaml").processor.unwrap();
    assert_eq!(p.dlog_table_bits, defaults::DLOG_TABLE_BITS);
    assert_eq!(p.dlog_range_bits, defaults::DLOG_RANGE_BITS);
    assert_eq!(p.rate_limit_per_minute, defaults::RATE_LIMIT_PER_MINUTE);
    assert_eq!(p.share_path, defaults::SHARE_PATH);
    assert_eq!(example("processor.yaml").cluster.processor.address, format!("127.0.0.1:{}", defaults::BASE_PORT));
}

/// The serving roles' examples show a `metrics` section as `crux-node init`
/// writes it: 127.0.0.1 at the node's own port number (TCP beside QUIC's
/// UDP); a user serves nothing and has none.
#[test]
fn example_configs_serve_metrics_on_their_own_port_number() {
    for role in ["authority", "processor", "relay"] {
        let raw = example(&format!("{role}.yaml"));
        let listen = raw.node.listen.unwrap();
        let port = listen.rsplit_once(':').unwrap().1;
        assert_eq!(raw.metrics.unwrap().listen, format!("127.0.0.1:{port}"), "{role}.yaml");
    }
    assert!(example("user.yaml").metrics.is_none());
}
