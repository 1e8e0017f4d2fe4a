//! Handing committed frames to the hub, in commit (= seq) order. Only the writer publishes, so
//! the order it commits in is the order every subscriber sees.
use super::apply::Outgoing;
use crate::hub::EventHub;
use crate::store::Conn;

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
                    p.last_seq = p.last_seq.max(o.last_seq);
                }
                _ => self.pending.push(o),
            }
        }
    }

    pub fn flush(&mut self, hub: &EventHub) {
        for o in self.pending.drain(..) {
            hub.publish(&o.stream, o.also.as_deref(), &o.frames, o.last_seq);
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
