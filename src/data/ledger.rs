//! The authority's persistent ledger in LMDB (heed): admitted query ids with
//! their issue time (replay protection across restarts) and the epsilon spent
//! per dataset. `admit` checks and charges in one write transaction, so a
//! crash leaves either both changes or neither. It reads only what it needs
//! (the query's id, the dataset, and the records old enough to forget, found
//! through an index by issue time), so an admission costs the same however
//! many queries the replay window holds.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RwTxn};

use crate::protocol::ledger::{AdmissionCharge, Charge, Ledger};
use crate::protocol::{ProtocolError, QueryId};
use crate::stats::{Epsilon, PrivacyBudget};

/// Spent epsilon per dataset, and admitted query ids with their issue time.
pub type LedgerMaps = (HashMap<String, Epsilon>, HashMap<QueryId, u64>);

pub struct LmdbLedger {
    dir: PathBuf,
    env: Env,
    spent: Database<'static, Bytes, Bytes>,
    /// query id -> issued_at BE: the replay records
    seen: Database<'static, Bytes, Bytes>,
    /// (issued_at BE ‖ query id) -> (): the replay records in issue order,
    /// so that the ones to forget are found without reading the others
    expiry: Database<'static, Bytes, Bytes>,
    /// (issued_at BE ‖ query id) -> (epsilon micros BE ‖ dataset length u16 BE ‖ dataset ‖ user)
    charges: Database<'static, Bytes, Bytes>,
}

fn err(dir: &Path, what: &str, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Ledger(format!("{}: {what}: {e}", dir.display()))
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// The `expiry` key of a replay record: issued_at BE ‖ query id.
fn expiry_key(issued_at: u64, id: &QueryId) -> Vec<u8> {
    let mut key = issued_at.to_be_bytes().to_vec();
    key.extend_from_slice(&id.0);
    key
}

impl LmdbLedger {
    pub fn open(dir: &Path) -> Result<Self, ProtocolError> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, "cannot create the ledger folder", e))?;
        let mut options = EnvOpenOptions::new();
        options.map_size(64 << 20).max_dbs(4);
        // SAFETY: the ledger folder belongs to this node; it is opened once per process.
        let env = unsafe { options.open(dir) }.map_err(|e| err(dir, "cannot open the ledger", e))?;
        let wtxn = env.write_txn().map_err(|e| err(dir, "write transaction", e))?;
        let (spent, seen, expiry, charges) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let spent: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("spent"))?;
                let seen: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("seen"))?;
                let expiry: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("expiry"))?;
                let charges: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("charges"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((spent, seen, expiry, charges)))
            })
            .map_err(|e| err(dir, "cannot create the ledger databases", e))?
            .unwrap_commit();
        let ledger = LmdbLedger { dir: dir.to_path_buf(), env, spent, seen, expiry, charges };
        ledger.index_unindexed()?;
        Ok(ledger)
    }

    /// A ledger written before the `expiry` index existed gets it, once.
    fn index_unindexed(&self) -> Result<(), ProtocolError> {
        let mut wtxn = self.env.write_txn().map_err(|e| err(&self.dir, "write transaction", e))?;
        let count =
            |db: &Database<'static, Bytes, Bytes>, wtxn: &RwTxn| db.len(wtxn).map_err(|e| err(&self.dir, "read", e));
        if count(&self.expiry, &wtxn)? > 0 || count(&self.seen, &wtxn)? == 0 {
            return Ok(());
        }
        let (_, seen) = self.load()?;
        for (id, at) in &seen {
            self.expiry.put(&mut wtxn, &expiry_key(*at, id), &[]).map_err(|e| err(&self.dir, "index a record", e))?;
        }
        wtxn.commit().map_err(|e| err(&self.dir, "commit", e))
    }

    /// Deletes the replay records issued before `cutoff` (and their index
    /// entries), in `wtxn`.
    fn forget_before(&self, wtxn: &mut RwTxn, cutoff: u64) -> Result<(), ProtocolError> {
        let end = cutoff.to_be_bytes();
        let old: Vec<Vec<u8>> = self
            .expiry
            .range(wtxn, &(Bound::Unbounded, Bound::Excluded(&end[..])))
            .map_err(|e| err(&self.dir, "read", e))?
            .map(|item| item.map(|(key, _)| key.to_vec()).map_err(|e| err(&self.dir, "read", e)))
            .collect::<Result<_, _>>()?;
        for key in old {
            let (at, id) =
                key.split_first_chunk::<8>().ok_or_else(|| err(&self.dir, "corrupt index entry", "short"))?;
            // a record raised by a handover has a newer index entry: keep it
            let current = self.seen.get(wtxn, id).map_err(|e| err(&self.dir, "read", e))?.and_then(u64_of);
            if current == Some(u64::from_be_bytes(*at)) {
                self.seen.delete(wtxn, id).map_err(|e| err(&self.dir, "prune", e))?;
            }
            self.expiry.delete(wtxn, &key).map_err(|e| err(&self.dir, "prune", e))?;
        }
        Ok(())
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
            self.expiry
                .put(&mut wtxn, &expiry_key(value, id), &[])
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
    /// What `protocol::ledger::admit_in` does over maps, in one write
    /// transaction (aborted on a refusal): forget the records issued more
    /// than twice the window before `now`, refuse a known id, charge.
    fn admit(&mut self, charge: &AdmissionCharge<'_>) -> Result<Epsilon, ProtocolError> {
        let AdmissionCharge { dataset, query, user, issued_at, cost, budget_total, now, window_secs } = *charge;
        let mut wtxn = self.env.write_txn().map_err(|e| err(&self.dir, "write transaction", e))?;
        self.forget_before(&mut wtxn, now.saturating_sub(window_secs.saturating_mul(2)))?;
        if self.seen.get(&wtxn, &query.0).map_err(|e| err(&self.dir, "read", e))?.is_some() {
            return Err(ProtocolError::Replay(query.to_string()));
        }
        let spent = self.spent.get(&wtxn, dataset.as_bytes()).map_err(|e| err(&self.dir, "read", e))?;
        let spent = match spent {
            Some(bytes) => {
                Epsilon(u64_of(bytes).ok_or_else(|| err(&self.dir, "corrupt budget entry", "wrong length"))?)
            }
            None => Epsilon::default(),
        };
        let mut budget = PrivacyBudget { total: budget_total, spent };
        budget.charge(dataset, cost)?;
        self.seen.put(&mut wtxn, &query.0, &issued_at.to_be_bytes()).map_err(|e| err(&self.dir, "record query", e))?;
        self.expiry
            .put(&mut wtxn, &expiry_key(issued_at, query), &[])
            .map_err(|e| err(&self.dir, "record query", e))?;
        self.spent
            .put(&mut wtxn, dataset.as_bytes(), &budget.spent.0.to_be_bytes())
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
        Ok(budget.remaining())
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

    /// Records are forgotten twice the window after their issue time, found
    /// through the index, also in a ledger written before the index existed.
    #[test]
    fn records_are_forgotten_after_twice_the_window_also_in_a_ledger_without_index() {
        let dir = tempfile::tempdir().unwrap();
        let total = Epsilon::parse("10").unwrap();
        let (q1, q2) = (QueryId([1; 16]), QueryId([2; 16]));
        {
            let mut l = LmdbLedger::open(dir.path()).unwrap();
            l.admit(&charge(&q1, "user-alice", Epsilon(1), total, 100)).unwrap();
            l.absorb(&HashMap::new(), &HashMap::from([(q2, 50)])).unwrap();
            // as written before the index existed
            let mut wtxn = l.env.write_txn().unwrap();
            l.expiry.clear(&mut wtxn).unwrap();
            wtxn.commit().unwrap();
        }
        let mut l = LmdbLedger::open(dir.path()).unwrap();
        let ids = |l: &LmdbLedger| {
            let mut ids: Vec<QueryId> = l.snapshot().unwrap().1.into_keys().collect();
            ids.sort_by_key(|id| id.0);
            ids
        };
        // issued at 50 (q2, handed over) and 100 (q1), window 3600: a record
        // is kept while now - issued <= 7200
        let fresh = QueryId([3; 16]);
        l.admit(&charge(&fresh, "user-bob", Epsilon(0), total, 7260)).unwrap();
        assert_eq!(ids(&l), vec![q1, fresh], "q2 is forgotten");
        let e = l.admit(&charge(&q1, "user-bob", Epsilon(0), total, 7300)).unwrap_err();
        assert!(matches!(e, ProtocolError::Replay(_)), "{e}");
        l.admit(&charge(&q1, "user-bob", Epsilon(1), total, 7301)).unwrap();
        assert_eq!(ids(&l), vec![q1]);
        let indexed = l.expiry.len(&l.env.read_txn().unwrap()).unwrap();
        assert_eq!(indexed, 1, "no stale index entry");
        assert_eq!(l.remaining("areas", total).unwrap(), Epsilon(total.0 - 2), "both charges of q1 stay spent");
    }
}
