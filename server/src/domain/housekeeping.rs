//! The background purge of dead refresh-token rows and sessions.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::{AuthError, Clock};
use crate::storage::housekeeping;

#[derive(Debug, Clone)]
pub struct Housekeeping {
    /// How long expired or revoked rows are kept (for audits and reuse detection).
    pub retention: Duration,
    /// Rows deleted per statement.
    pub batch: u64,
    /// Time between purges.
    pub interval: Duration,
}

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub tokens: u64,
    pub sessions: u64,
}

impl Housekeeping {
    /// Deletes everything past the retention, batch after batch, until
    /// nothing is left (bounded, so a huge backlog spreads over runs).
    pub async fn purge(
        &self,
        db: &DatabaseConnection,
        clock: &dyn Clock,
    ) -> Result<Purged, AuthError> {
        const MAX_BATCHES: usize = 100;
        let cutoff = clock.now().saturating_sub(self.retention).as_millis();
        let mut purged = Purged::default();
        for _ in 0..MAX_BATCHES {
            let n = housekeeping::purge_tokens(db, cutoff, self.batch).await?;
            purged.tokens += n;
            if n < self.batch {
                break;
            }
        }
        for _ in 0..MAX_BATCHES {
            let n = housekeeping::purge_sessions(db, cutoff, self.batch).await?;
            purged.sessions += n;
            if n < self.batch {
                break;
            }
        }
        Ok(purged)
    }

    /// Purges every `interval` until the task is dropped.
    pub fn spawn(
        self,
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            loop {
                tick.tick().await;
                match self.purge(&db, clock.as_ref()).await {
                    Ok(p) if p.tokens + p.sessions > 0 => tracing::info!(
                        event = "housekeeping",
                        tokens = p.tokens,
                        sessions = p.sessions,
                        "purged expired and revoked rows"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
                }
            }
        })
    }
}
