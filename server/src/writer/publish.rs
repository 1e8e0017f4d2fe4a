//! Handing committed frames to the hub, in commit (= seq) order. Only the writer publishes, so
//! the order it commits in is the order every subscriber sees.
use super::apply::Outgoing;
use crate::follow;
use crate::hub::{EventHub, Sequenced};
use crate::store::Conn;
use crate::store::Store;

/// Frames waiting to go to the hub: consecutive frames for the same streams travel as one hub
/// item, so a subscriber gets a group's events in one socket write.
#[derive(Default)]
pub(super) struct Publisher {
    pending: Vec<Outgoing>,
}

impl Publisher {
    pub fn extend(&mut self, outgoing: impl Iterator<Item = Outgoing>) {
        for o in outgoing {
            match self.pending.last_mut() {
                Some(p) if p.stream == o.stream && p.also == o.also => {
                    p.frames.extend(o.frames);
                    p.first_seq = p.first_seq.min(o.first_seq);
                    p.last_seq = p.last_seq.max(o.last_seq);
                }
                _ => self.pending.push(o),
            }
        }
    }

    /// Hands the pending frames to the hub. With `shared` (the database other servers write
    /// too), a stream's events go out only in seq order: events other servers committed before
    /// these are read from the database and published first (see `follow`), and events the
    /// follower already published from the database are not published twice.
    pub async fn flush(&mut self, hub: &EventHub, shared: Option<&Store>) {
        for o in self.pending.drain(..) {
            let Some(store) = shared.filter(|_| o.first_seq > 0) else {
                hub.publish(&o.stream, o.also.as_deref(), &o.frames, o.last_seq);
                continue;
            };
            loop {
                let published = match hub.publish_next(
                    &o.stream,
                    o.also.as_deref(),
                    &o.frames,
                    o.first_seq,
                    o.last_seq,
                ) {
                    Sequenced::Delivered | Sequenced::AlreadyPublished => break,
                    Sequenced::NotNext { published } => published,
                };
                // Behind: what lies before these first. Overlapping (part of these came from
                // the database already): the rest from the database too, as stored.
                let upto = if published < o.first_seq {
                    o.first_seq - 1
                } else {
                    o.last_seq
                };
                if let Err(e) = follow::publish_stored(store, hub, &o.stream, upto).await {
                    tracing::error!(error = %e, stream = %o.stream, "publishing in order failed");
                    break;
                }
            }
        }
    }
}

/// Reads a project's members (committed) and gives them to the hub's delivery filter.
pub(super) async fn refresh_members(hub: &EventHub, conn: &mut Conn<'_>, project_id: &str) {
    match crate::access::members_of(conn, project_id).await {
        Ok(members) => hub.set_members(project_id, members),
        Err(e) => tracing::error!(error = %e, "could not refresh project members"),
    }
}
