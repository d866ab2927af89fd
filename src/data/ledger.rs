//! The authority's persistent ledger in LMDB (heed): admitted query ids with
//! their issue time (replay protection across restarts) and the epsilon spent
//! per dataset. `admit` checks and charges in one write transaction, so a
//! crash leaves either both changes or neither.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};

use crate::protocol::ledger::{admit_in, AdmissionCharge, Charge, Ledger};
use crate::protocol::{ProtocolError, QueryId};
use crate::stats::{Epsilon, PrivacyBudget};

/// Spent epsilon per dataset, and admitted query ids with their issue time.
pub type LedgerMaps = (HashMap<String, Epsilon>, HashMap<QueryId, u64>);

pub struct LmdbLedger {
    dir: PathBuf,
    env: Env,
    spent: Database<'static, Bytes, Bytes>,
    seen: Database<'static, Bytes, Bytes>,
    /// (issued_at BE ‖ query id) -> (epsilon micros BE ‖ dataset length u16 BE ‖ dataset ‖ user)
    charges: Database<'static, Bytes, Bytes>,
}

fn err(dir: &Path, what: &str, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Ledger(format!("{}: {what}: {e}", dir.display()))
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

impl LmdbLedger {
    pub fn open(dir: &Path) -> Result<Self, ProtocolError> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, "cannot create the ledger folder", e))?;
        let mut options = EnvOpenOptions::new();
        options.map_size(64 << 20).max_dbs(4);
        // SAFETY: the ledger folder belongs to this node; it is opened once per process.
        let env = unsafe { options.open(dir) }.map_err(|e| err(dir, "cannot open the ledger", e))?;
        let wtxn = env.write_txn().map_err(|e| err(dir, "write transaction", e))?;
        let (spent, seen, charges) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let spent: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("spent"))?;
                let seen: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("seen"))?;
                let charges: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("charges"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((spent, seen, charges)))
            })
            .map_err(|e| err(dir, "cannot create the ledger databases", e))?
            .unwrap_commit();
        Ok(LmdbLedger { dir: dir.to_path_buf(), env, spent, seen, charges })
    }

    /// Spent budget per dataset and admitted query ids: what a dealer hands
    /// to a new committee member (`protocol::committee::LedgerHandover`).
    pub fn snapshot(&self) -> Result<LedgerMaps, ProtocolError> {
        self.load()
    }

    /// Takes over a handed ledger: per dataset the larger of the spent
    /// budgets, and every replay record (so a new member never starts with
    /// a fresh budget). One write transaction.
    pub fn absorb(
        &mut self,
        spent: &HashMap<String, Epsilon>,
        seen: &HashMap<QueryId, u64>,
    ) -> Result<(), ProtocolError> {
        let (mine, known) = self.load()?;
        let mut wtxn = self.env.write_txn().map_err(|e| err(&self.dir, "write transaction", e))?;
        for (dataset, theirs) in spent {
            let value = mine.get(dataset).copied().unwrap_or_default().0.max(theirs.0);
            self.spent
                .put(&mut wtxn, dataset.as_bytes(), &value.to_be_bytes())
                .map_err(|e| err(&self.dir, "take over the budget", e))?;
        }
        for (id, at) in seen {
            let value = known.get(id).copied().unwrap_or_default().max(*at);
            self.seen
                .put(&mut wtxn, &id.0, &value.to_be_bytes())
                .map_err(|e| err(&self.dir, "take over a record", e))?;
        }
        wtxn.commit().map_err(|e| err(&self.dir, "commit", e))
    }

    fn load(&self) -> Result<LedgerMaps, ProtocolError> {
        let rtxn = self.env.read_txn().map_err(|e| err(&self.dir, "read transaction", e))?;
        let mut spent = HashMap::new();
        for item in self.spent.iter(&rtxn).map_err(|e| err(&self.dir, "read", e))? {
            let (k, v) = item.map_err(|e| err(&self.dir, "read", e))?;
            let name = String::from_utf8(k.to_vec()).map_err(|e| err(&self.dir, "corrupt dataset name", e))?;
            let micros = u64_of(v).ok_or_else(|| err(&self.dir, "corrupt budget entry", "wrong length"))?;
            spent.insert(name, Epsilon(micros));
        }
        let mut seen = HashMap::new();
        for item in self.seen.iter(&rtxn).map_err(|e| err(&self.dir, "read", e))? {
            let (k, v) = item.map_err(|e| err(&self.dir, "read", e))?;
            let id: [u8; 16] = k.try_into().map_err(|_| err(&self.dir, "corrupt query id", "wrong length"))?;
            let at = u64_of(v).ok_or_else(|| err(&self.dir, "corrupt query entry", "wrong length"))?;
            seen.insert(QueryId(id), at);
        }
        Ok((spent, seen))
    }
}

impl Ledger for LmdbLedger {
    fn admit(&mut self, charge: &AdmissionCharge<'_>) -> Result<Epsilon, ProtocolError> {
        let AdmissionCharge { dataset, query, user, issued_at, cost, .. } = *charge;
        let (mut spent, mut seen) = self.load()?;
        let before: Vec<QueryId> = seen.keys().copied().collect();
        let remaining = admit_in(&mut spent, &mut seen, charge)?;
        let mut wtxn = self.env.write_txn().map_err(|e| err(&self.dir, "write transaction", e))?;
        for id in before.iter().filter(|id| !seen.contains_key(id)) {
            self.seen.delete(&mut wtxn, &id.0).map_err(|e| err(&self.dir, "prune", e))?;
        }
        self.seen.put(&mut wtxn, &query.0, &issued_at.to_be_bytes()).map_err(|e| err(&self.dir, "record query", e))?;
        let spent_now = spent.get(dataset).copied().unwrap_or_default();
        self.spent
            .put(&mut wtxn, dataset.as_bytes(), &spent_now.0.to_be_bytes())
            .map_err(|e| err(&self.dir, "charge", e))?;
        let mut key = issued_at.to_be_bytes().to_vec();
        key.extend_from_slice(&query.0);
        let mut value = cost.0.to_be_bytes().to_vec();
        let name = dataset.as_bytes();
        value.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
        value.extend_from_slice(name.get(..usize::from(u16::MAX)).unwrap_or(name));
        value.extend_from_slice(user.as_bytes());
        self.charges.put(&mut wtxn, &key, &value).map_err(|e| err(&self.dir, "record the charge", e))?;
        wtxn.commit().map_err(|e| err(&self.dir, "commit", e))?;
        Ok(remaining)
    }

    fn charges(&self, n: usize) -> Result<(usize, Vec<Charge>), ProtocolError> {
        let rtxn = self.env.read_txn().map_err(|e| err(&self.dir, "read transaction", e))?;
        let total = usize::try_from(self.charges.len(&rtxn).map_err(|e| err(&self.dir, "read", e))?).unwrap_or(0);
        let mut recent = Vec::new();
        for item in self.charges.rev_iter(&rtxn).map_err(|e| err(&self.dir, "read", e))?.take(n) {
            let (k, v) = item.map_err(|e| err(&self.dir, "read", e))?;
            let corrupt = || err(&self.dir, "corrupt charge entry", "wrong length");
            let (at, id) = k.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let id: [u8; 16] = id.try_into().map_err(|_| corrupt())?;
            let (micros, rest) = v.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
            let len = usize::from(u16::from_be_bytes(*len));
            let dataset = rest.get(..len).ok_or_else(corrupt)?;
            let user = rest.get(len..).ok_or_else(corrupt)?;
            recent.push(Charge {
                issued_at: u64::from_be_bytes(*at),
                query: QueryId(id),
                dataset: String::from_utf8_lossy(dataset).to_string(),
                user: String::from_utf8_lossy(user).to_string(),
                epsilon: Epsilon(u64::from_be_bytes(*micros)),
            });
        }
        Ok((total, recent))
    }

    fn remaining(&self, dataset: &str, total: Epsilon) -> Result<Epsilon, ProtocolError> {
        let (spent, _) = self.load()?;
        Ok(PrivacyBudget { total, spent: spent.get(dataset).copied().unwrap_or_default() }.remaining())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn charge<'a>(query: &'a QueryId, user: &'a str, cost: Epsilon, total: Epsilon, now: u64) -> AdmissionCharge<'a> {
        AdmissionCharge {
            dataset: "areas",
            query,
            user,
            issued_at: 100,
            cost,
            budget_total: total,
            now,
            window_secs: 3600,
        }
    }

    #[test]
    fn survives_reopen_and_refuses_replays_and_overspending() {
        let dir = tempfile::tempdir().unwrap();
        let total = Epsilon::parse("3").unwrap();
        let two = Epsilon::parse("2").unwrap();
        let q1 = QueryId([1; 16]);
        {
            let mut l = LmdbLedger::open(dir.path()).unwrap();
            assert_eq!(l.admit(&charge(&q1, "user-alice", two, total, 100)).unwrap(), Epsilon::parse("1").unwrap());
        }
        let mut l = LmdbLedger::open(dir.path()).unwrap();
        assert!(matches!(l.admit(&charge(&q1, "user-alice", Epsilon(0), total, 101)), Err(ProtocolError::Replay(_))));
        let e = l.admit(&charge(&QueryId([2; 16]), "user-bob", two, total, 101)).unwrap_err();
        assert!(e.to_string().contains("budget"), "{e}");
        assert_eq!(l.remaining("areas", total).unwrap(), Epsilon::parse("1").unwrap());
        assert_eq!(l.remaining("other", total).unwrap(), total);
        // the one charge made is recorded with its user, also after the reopen
        let (count, recent) = l.charges(10).unwrap();
        assert_eq!(count, 1);
        assert_eq!(recent[0].user, "user-alice");
        assert_eq!(recent[0].epsilon, Epsilon::parse("2").unwrap());
        assert_eq!(recent[0].query, q1);
        assert_eq!(recent[0].dataset, "areas");
    }

    #[test]
    fn a_handed_ledger_raises_the_budget_and_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let total = Epsilon::parse("3").unwrap();
        let q1 = QueryId([1; 16]);
        let mut l = LmdbLedger::open(dir.path()).unwrap();
        l.admit(&charge(&q1, "user-alice", Epsilon::parse("1").unwrap(), total, 100)).unwrap();
        let spent = HashMap::from([("areas".to_string(), Epsilon::parse("2").unwrap()), ("other".into(), Epsilon(5))]);
        let seen = HashMap::from([(QueryId([7; 16]), 100)]);
        l.absorb(&spent, &seen).unwrap();
        assert_eq!(l.remaining("areas", total).unwrap(), Epsilon::parse("1").unwrap());
        // a lower figure never lowers what is spent
        l.absorb(&HashMap::from([("areas".to_string(), Epsilon(0))]), &HashMap::new()).unwrap();
        assert_eq!(l.remaining("areas", total).unwrap(), Epsilon::parse("1").unwrap());
        let e = l.admit(&charge(&QueryId([7; 16]), "user-bob", Epsilon(0), total, 101)).unwrap_err();
        assert!(matches!(e, ProtocolError::Replay(_)), "{e}");
        let (spent_now, seen_now) = l.snapshot().unwrap();
        assert_eq!(spent_now.get("other"), Some(&Epsilon(5)));
        assert_eq!(seen_now.len(), 2);
    }
}
