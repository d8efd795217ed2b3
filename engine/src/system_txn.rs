//! Transactions the engine runs for itself, staged in Rust rather than by a
//! function: file storage records and deletes files this way. They read and
//! commit exactly as mutations do, so they conflict with (and re-run after)
//! concurrent writes and wake the live queries whose reads they touch.

use crate::committer::CommitError;
use crate::engine::Engine;
use crate::txn::{Transaction, TxnError};
use crate::types::Timestamp;
use crate::udf::now_ms;

/// Conflicts tolerated before giving up, as for imports.
const MAX_ATTEMPTS: u32 = 16;

impl Engine {
    /// A transaction at the latest snapshot, under the live deployment.
    pub(crate) fn begin_system(&self) -> Transaction {
        Transaction::begin(self.txn_env(&self.deployment()), now_ms())
    }

    /// Runs `stage` in a fresh transaction and commits what it wrote, staging
    /// again after a conflict. Returns its result and the commit timestamp.
    pub(crate) async fn transact<T>(
        &self,
        mut stage: impl FnMut(&mut Transaction) -> Result<T, TxnError>,
    ) -> Result<(T, Timestamp), TxnError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = self.begin_system();
            let out = stage(&mut txn)?;
            match self.inner.committer.commit(txn.prepare()).await {
                Ok(ts) => return Ok((out, ts)),
                Err(CommitError::Conflict { retry_after, .. }) => self.inner.committer.wait_for(retry_after).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TxnError::User("the write kept conflicting with concurrent writes; try again".into()))
    }
}
