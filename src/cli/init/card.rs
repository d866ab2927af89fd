//! Cards and the cluster file: the only files that travel between hosts.
//!
//! A card (`NAME.card.yaml`, written by `crux-node init ROLE NAME` on the
//! node's own host) holds one node's public parts: name, role, address
//! (serving roles), TLS certificate (PEM) and, for a relay, its ed25519
//! public key. The cluster file (`cluster.yaml`, written by `crux-node init
//! assemble` from every card) holds the dataset, `min_relays` and every card.
//! Both are read back here and checked in one place (`check_cluster`) so
//! that `assemble` and `join` refuse the same things: unknown roles, bad
//! names, duplicate names, certificates or addresses, a card carrying a
//! private key, no or two processors, too few relays. Nothing secret is read
//! or written here.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::files::check_name;
use crate::actors::tls::PinnedPeer;
use crate::config::defaults;
use crate::crypto::RelayPublicKey;

/// The `format` of a card file.
pub(crate) const CARD_FORMAT: &str = "crux-card/v1";
/// The `format` of a cluster file.
pub(super) const CLUSTER_FORMAT: &str = "crux-cluster/v1";
/// Largest card or cluster file read (a card is about 1 KB).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The role a card names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CardRole {
    Authority,
    Processor,
    Relay,
    User,
}

impl CardRole {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CardRole::Authority => "authority",
            CardRole::Processor => "processor",
            CardRole::Relay => "relay",
            CardRole::User => "user",
        }
    }

    fn parse(text: &str) -> Option<CardRole> {
        match text {
            "authority" => Some(CardRole::Authority),
            "processor" => Some(CardRole::Processor),
            "relay" => Some(CardRole::Relay),
            "user" => Some(CardRole::User),
            _ => None,
        }
    }
}

/// One node's public parts, as a card file or an entry of `cluster.yaml`'s
/// `nodes` (where `format` is left out).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Card {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub name: String,
    pub role: String,
    /// host:port the other nodes reach it at; users have none
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// the node's TLS certificate, PEM (pinned by its peers)
    pub certificate: String,
    /// a relay's ed25519 public key, hex
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// `cluster.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterFile {
    pub format: String,
    /// the privacy-budget key of the data the relays serve
    pub dataset: String,
    /// relays a query must cover
    pub min_relays: u32,
    /// processor, authorities (in committee order), relays, users
    pub nodes: Vec<Card>,
}

/// A card that passed `check_card`, with where it came from.
#[derive(Clone, Debug)]
pub(crate) struct CheckedCard {
    pub card: Card,
    pub role: CardRole,
    /// SHA-256 of the certificate (DER), hex: to compare out of band
    pub fingerprint: String,
    /// the file it was read from (for messages)
    pub source: String,
}

/// Reads a YAML file of at most `MAX_FILE_BYTES`.
fn read_small(path: &Path, what: &str, hint: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}: {hint}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        bail!("{what} {} is {} bytes, far more than one holds: is it the right file?", path.display(), meta.len());
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}: {hint}", path.display()))
}

/// Reads and checks one card file.
pub(crate) fn read_card(path: &Path) -> anyhow::Result<CheckedCard> {
    let hint = "ask the node's operator for the NAME.card.yaml that `crux-node init ROLE NAME` wrote";
    let text = read_small(path, "card", hint)?;
    let source = path.display().to_string();
    let card: Card = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("card {source} is not a card (name, role, address, certificate, public_key)"))?;
    if card.format.as_deref() != Some(CARD_FORMAT) {
        bail!(
            "card {source} has format {:?}, expected {CARD_FORMAT:?}: use the card `crux-node init ROLE NAME` wrote",
            card.format.as_deref().unwrap_or("(none)")
        );
    }
    check_card(card, source)
}

/// Reads `cluster.yaml` and checks it as `assemble` did.
pub(super) fn read_cluster(path: &Path) -> anyhow::Result<(ClusterFile, Vec<CheckedCard>)> {
    let text = read_small(path, "cluster file", "ask the admin for the cluster.yaml of `crux-node init assemble`")?;
    let file: ClusterFile = serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "{} is not a cluster file (format, dataset, min_relays, nodes); make it with `crux-node init assemble`",
            path.display()
        )
    })?;
    if file.format != CLUSTER_FORMAT {
        bail!("{} has format {:?}, expected {CLUSTER_FORMAT:?}", path.display(), file.format);
    }
    let cards = file
        .nodes
        .iter()
        .map(|card| check_card(card.clone(), format!("{} (node {:?})", path.display(), card.name)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_cluster(&cards, file.min_relays)?;
    Ok((file, cards))
}

/// One card on its own: role, name, address, certificate, public key.
fn check_card(card: Card, source: String) -> anyhow::Result<CheckedCard> {
    let role = CardRole::parse(&card.role).with_context(|| {
        format!("card {source}: role {:?} is not one of authority, processor, relay, user", card.role)
    })?;
    check_name(role.as_str(), &card.name).with_context(|| format!("card {source}"))?;
    match (role, &card.address) {
        (CardRole::User, Some(_)) => bail!("card {source}: a user card has no address (users serve nothing)"),
        (CardRole::User, None) => {}
        (_, None) => bail!("card {source}: a {} card needs `address: HOST:PORT`", role.as_str()),
        (_, Some(address)) => check_address(address).with_context(|| format!("card {source}"))?,
    }
    if card.certificate.contains("PRIVATE KEY") {
        bail!("card {source} holds a private key: delete that file everywhere it went and make the node again with `crux-node init`; a card carries the certificate only");
    }
    let fingerprint = PinnedPeer::from_pem(&card.name, &card.certificate)
        .with_context(|| format!("card {source}: `certificate` is not a PEM certificate"))?
        .fingerprint_hex();
    match (role, &card.public_key) {
        (CardRole::Relay, None) => bail!("card {source}: a relay card needs its `public_key`"),
        (CardRole::Relay, Some(key)) => {
            RelayPublicKey::from_hex(key).with_context(|| format!("card {source}: `public_key` is not a relay key"))?;
        }
        (_, Some(_)) => bail!("card {source}: only relay cards carry a `public_key`"),
        (_, None) => {}
    }
    Ok(CheckedCard { card, role, fingerprint, source })
}

/// `HOST:PORT` (or `[IPv6]:PORT`) with a port from 1 to 65535.
fn check_address(address: &str) -> anyhow::Result<()> {
    let (host, port) = address
        .rsplit_once(':')
        .with_context(|| format!("address {address:?} is not HOST:PORT, e.g. 10.0.0.5:7101"))?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    if host.is_empty() || !port_ok {
        bail!("address {address:?} is not HOST:PORT with a port from 1 to 65535, e.g. 10.0.0.5:7101");
    }
    Ok(())
}

/// The cards together: unique names, certificates and addresses, one
/// processor, at least one authority, at least `min_relays` relays.
pub(super) fn check_cluster(cards: &[CheckedCard], min_relays: u32) -> anyhow::Result<()> {
    unique(cards, "name", |c| Some(c.card.name.clone()))?;
    unique(cards, "certificate", |c| Some(c.fingerprint.clone()))?;
    unique(cards, "address", |c| c.card.address.clone())?;
    let count = |role: CardRole| cards.iter().filter(|c| c.role == role).count();
    let processors: Vec<&str> =
        cards.iter().filter(|c| c.role == CardRole::Processor).map(|c| c.source.as_str()).collect();
    match processors.len() {
        1 => {}
        0 => bail!("no processor card: add the card `crux-node init processor NAME` wrote"),
        _ => bail!("{} processor cards ({}): a cluster has one processor", processors.len(), processors.join(", ")),
    }
    if count(CardRole::Authority) == 0 {
        bail!("no authority card: add the cards `crux-node init authority NAME` wrote");
    }
    let relays = count(CardRole::Relay);
    if relays == 0 {
        bail!("no relay card: add the cards `crux-node init relay NAME` wrote");
    }
    if min_relays == 0 || usize::try_from(min_relays).map_or(true, |k| k > relays) {
        bail!("--min-relays {min_relays} must be between 1 and the {relays} relays");
    }
    Ok(())
}

/// Fails naming both cards when two give the same `what`.
fn unique(cards: &[CheckedCard], what: &str, key: impl Fn(&CheckedCard) -> Option<String>) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for card in cards {
        let Some(value) = key(card) else { continue };
        if let Some(first) = seen.insert(value.clone(), &card.source) {
            let shown = if what == "certificate" { format!("fingerprint {value}") } else { format!("{value:?}") };
            bail!(
                "two cards have the same {what} ({shown}): {first} and {}; every node needs its own (each runs `crux-node init ROLE NAME` on its own host)",
                card.source
            );
        }
    }
    Ok(())
}

/// `min_relays` when the admin gives none: 2, or 1 with a single relay.
pub(super) fn default_min_relays(cards: &[CheckedCard]) -> u32 {
    if cards.iter().filter(|c| c.role == CardRole::Relay).count() == 1 {
        1
    } else {
        defaults::MIN_RELAYS
    }
}

/// "1 relay", "3 relays".
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        for good in ["10.0.0.5:7101", "relay-1:7102", "[::1]:7100"] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for bad in ["10.0.0.5", ":7101", "host:0", "host:70000", "host:x", ""] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_the_four_known_ones() {
        for role in [CardRole::Authority, CardRole::Processor, CardRole::Relay, CardRole::User] {
            assert_eq!(CardRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(CardRole::parse("Authority"), None);
        assert_eq!(CardRole::parse("auditor"), None);
    }
}
