//! The flags that select stored events, shared by `audit export` and `replay`.

use chrono::{DateTime, Utc};
use quorum_event_store::Selection;

#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Every event of one correlation (a query's id); with --tenant when two tenants share it.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// One stream (`query/<id>`, `sub-acme/order/42`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Only events of this type (`quorum.query.submitted`).
    #[arg(long = "type")]
    pub ty: Option<String>,
    /// Recorded at or after: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub since: Option<DateTime<Utc>>,
    /// Recorded before: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub until: Option<DateTime<Utc>>,
}

impl SelectionArgs {
    /// The specific items asked for (a stream or a correlation), if any, as a phrase for an error
    /// saying that nothing matched; a selection of kinds (a tenant, a type, a time range) may
    /// rightly match nothing.
    pub fn specific(&self) -> Option<String> {
        match (&self.stream, &self.correlation_id) {
            (Some(s), _) => Some(format!("stream {s}")),
            (None, Some(c)) => Some(format!("correlation id {c}")),
            (None, None) => None,
        }
    }

    /// Whether no flag narrows the selection: every stored event is selected.
    pub fn is_everything(&self) -> bool {
        let Self {
            tenant,
            correlation_id,
            stream,
            ty,
            since,
            until,
        } = self;
        [tenant, correlation_id, stream, ty]
            .iter()
            .all(|f| f.is_none())
            && since.is_none()
            && until.is_none()
    }

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
