//! The flags that select stored events, shared by `audit export` and `replay`.

use chrono::{DateTime, Utc};
use quorum_event_store::Selection;

#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    #[arg(long)]
    pub stream: Option<String>,
    #[arg(long = "type")]
    pub ty: Option<String>,
    /// Recorded at or after (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
}

impl SelectionArgs {
    pub fn selection(&self) -> Selection {
        Selection {
            tenant: self.tenant.clone(),
            correlation_id: self.correlation_id.clone(),
            stream: self.stream.clone(),
            ty: self.ty.clone(),
            since: self.since,
            until: self.until,
        }
    }
}
