//! Handing committed frames to the hub, in commit (= seq) order, and answering the callers.
//!
//! A group ends with an [`Outbox`]: its frames, the member lists its membership changes left,
//! and its callers' answers, in the order they must happen. The writer does not deliver it
//! itself: it hands it to the [`PublishTask`] and starts the next group while the frames go
//! out (writing them to a hundred sockets took a fifth of the writer's time, see
//! `bench/NOTES.md`). Outboxes are delivered one at a time in the order they were handed over,
//! so commit order is still the order every subscriber sees, and a caller's answer still comes
//! after the events of its write (ActivityLogCreated → event → response).
use tokio::sync::{mpsc, oneshot};

use super::apply::Outgoing;
use super::change::Committed;
use crate::error::AppResult;
use crate::follow;
use crate::hub::{ConnId, EventHub, Sequenced};
use crate::store::Conn;
use crate::store::Store;
use std::sync::Arc;

/// Outboxes the writer may be ahead of the publisher by before it waits: enough to keep both
/// busy, few enough that a slow publish slows the writer instead of piling up answers.
const AHEAD: usize = 4;

/// One step of an outbox, in order.
enum Step {
    /// Consecutive frames for the same streams travel as one hub item, so a subscriber gets a
    /// group's events in one socket write.
    Frames(Outgoing),
    /// A project's members as the group committed them: the hub's delivery filter follows
    /// before the next step (a new member gets the event that admits them, a removed one gets
    /// the event that removes them and nothing after).
    Members {
        project_id: String,
        members: Vec<String>,
    },
}

/// A caller's answer, and the connection the command came from when its answer must follow
/// the command's events there.
type Answer = (
    oneshot::Sender<AppResult<Committed>>,
    AppResult<Committed>,
    Option<ConnId>,
);

/// What one group leaves to deliver: steps first, then answers (for the usual group, the
/// answers go once the writing connections have the frames: see `deliver`).
#[derive(Default)]
pub(super) struct Outbox {
    steps: Vec<Step>,
    answers: Vec<Answer>,
}

impl Outbox {
    pub fn extend(&mut self, outgoing: impl Iterator<Item = Outgoing>) {
        for o in outgoing {
            match self.steps.last_mut() {
                Some(Step::Frames(p)) if p.stream == o.stream && p.also == o.also => {
                    p.frames.extend(o.frames);
                    p.first_seq = p.first_seq.min(o.first_seq);
                    p.last_seq = p.last_seq.max(o.last_seq);
                }
                _ => self.steps.push(Step::Frames(o)),
            }
        }
    }

    /// Reads a project's members (committed) for the hub's delivery filter, at this point of
    /// the outbox.
    pub async fn refresh_members(&mut self, conn: &mut Conn<'_>, project_id: &str) {
        match crate::access::members_of(conn, project_id).await {
            Ok(members) => self.steps.push(Step::Members {
                project_id: project_id.to_string(),
                members,
            }),
            Err(e) => tracing::error!(error = %e, "could not refresh project members"),
        }
    }

    /// An answer that announces no event of this outbox (a refusal, a failure, nothing
    /// changed).
    pub fn answer(
        &mut self,
        done: oneshot::Sender<AppResult<Committed>>,
        answer: AppResult<Committed>,
    ) {
        self.answers.push((done, answer, None));
    }

    /// The answer of a command whose events are in this outbox: it goes out once `origin`
    /// (the connection the command came from) has them.
    pub fn answer_after_events(
        &mut self,
        done: oneshot::Sender<AppResult<Committed>>,
        committed: Committed,
        origin: Option<ConnId>,
    ) {
        self.answers.push((done, Ok(committed), origin));
    }

    /// Delivers the steps, then the answers. With `shared` (the database other servers write
    /// too), a stream's events go out only in seq order: events other servers committed before
    /// these are read from the database and published first (see `follow`), and events the
    /// follower already published from the database are not published twice.
    async fn deliver(mut self, hub: &EventHub, shared: Option<&Store>) {
        let started = std::time::Instant::now();
        // The usual group: one run of frames for one stream. The callers' connections get the
        // frames first, then the answers go, then everyone else gets the frames: a writer's
        // answer need not wait for a hundred other sockets (the order on each connection is
        // unchanged). Several steps, or a database shared with other servers (whose follower
        // may publish the same stream between steps): every step first, then the answers.
        if shared.is_none() && matches!(self.steps.as_slice(), [Step::Frames(_)]) {
            if let Some(Step::Frames(o)) = self.steps.pop() {
                let mut origins: Vec<ConnId> = self.answers.iter().filter_map(|a| a.2).collect();
                origins.sort_unstable();
                origins.dedup();
                let answers = self.answers;
                let answer = move || {
                    for (done, answer, _) in answers {
                        let _ = done.send(answer);
                    }
                };
                hub.publish_answering(
                    &o.stream,
                    o.also.as_deref(),
                    &o.frames,
                    o.last_seq,
                    &origins,
                    answer,
                );
                hub.metrics
                    .publish_seconds
                    .record(started.elapsed().as_secs_f64());
                return;
            }
        }
        for step in self.steps {
            match step {
                Step::Frames(o) => publish(hub, shared, o).await,
                Step::Members {
                    project_id,
                    members,
                } => hub.set_members(&project_id, members),
            }
        }
        for (done, answer, _) in self.answers {
            let _ = done.send(answer);
        }
        hub.metrics
            .publish_seconds
            .record(started.elapsed().as_secs_f64());
    }
}

async fn publish(hub: &EventHub, shared: Option<&Store>, o: Outgoing) {
    let Some(store) = shared.filter(|_| o.first_seq > 0) else {
        hub.publish(&o.stream, o.also.as_deref(), &o.frames, o.last_seq);
        return;
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
        // Behind: what lies before these first. Overlapping (part of these came from the
        // database already): the rest from the database too, as stored.
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

enum Parcel {
    Outbox(Outbox),
    /// Answered once everything handed over before it is delivered.
    Drained(oneshot::Sender<()>),
}

/// The writer's end of the publish task.
pub(super) struct PublishTask {
    parcels: mpsc::Sender<Parcel>,
    hub: Arc<EventHub>,
    /// Set when the database is shared with other servers (PostgreSQL).
    shared: Option<Arc<Store>>,
}

impl PublishTask {
    pub fn spawn(hub: Arc<EventHub>, shared: Option<Arc<Store>>) -> PublishTask {
        let (parcels, mut received) = mpsc::channel(AHEAD);
        let (task_hub, task_store) = (hub.clone(), shared.clone());
        tokio::spawn(async move {
            while let Some(parcel) = received.recv().await {
                match parcel {
                    Parcel::Outbox(outbox) => {
                        outbox.deliver(&task_hub, task_store.as_deref()).await
                    }
                    Parcel::Drained(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        PublishTask {
            parcels,
            hub,
            shared,
        }
    }

    /// Hands a group's outbox over, waiting while the publisher is [`AHEAD`] outboxes behind.
    pub async fn hand_over(&self, outbox: Outbox) {
        if let Err(mpsc::error::SendError(Parcel::Outbox(outbox))) =
            self.parcels.send(Parcel::Outbox(outbox)).await
        {
            // The publish task is gone (it panicked in the hub): deliver here rather than
            // lose the group's events and answers.
            tracing::error!("the publish task has stopped; the writer publishes itself");
            outbox.deliver(&self.hub, self.shared.as_deref()).await;
        }
    }

    /// Waits until everything handed over so far is delivered (the writer's reset reads what
    /// the hub has published).
    pub async fn drained(&self) {
        let (done, drained) = oneshot::channel();
        if self.parcels.send(Parcel::Drained(done)).await.is_ok() {
            let _ = drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pm_shared::proto::Payload;

    fn frames(stream: &str, seq: u64) -> Outgoing {
        Outgoing {
            stream: stream.into(),
            also: None,
            first_seq: seq,
            last_seq: seq,
            frames: vec![
                Bytes::from_static(b"activity"),
                Bytes::from_static(b"event"),
            ],
        }
    }

    fn committed(seq: u64) -> AppResult<Committed> {
        Ok(Committed {
            event: Payload::Pong(Default::default()),
            stream: "s".into(),
            seq,
        })
    }

    /// Outboxes are delivered in the order they were handed over, each one's events before
    /// its answers, and `drained` returns only once all of them are delivered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outboxes_go_out_in_order_events_before_answers() {
        let hub = Arc::new(EventHub::default());
        let publisher = PublishTask::spawn(hub.clone(), None);
        let mut answers = Vec::new();
        for seq in 1..=50 {
            let mut outbox = Outbox::default();
            outbox.extend([frames("s", seq)].into_iter());
            let (done, answer) = oneshot::channel();
            outbox.answer(done, committed(seq));
            publisher.hand_over(outbox).await;
            answers.push(answer);
        }
        for (n, answer) in answers.into_iter().enumerate() {
            let seq = answer.await.unwrap().unwrap().seq;
            assert_eq!(seq, n as u64 + 1);
            assert!(
                hub.last_published("s") >= seq,
                "answer {seq} came before its event was published"
            );
        }
        let mut outbox = Outbox::default();
        outbox.extend([frames("s", 51), frames("s", 52)].into_iter());
        publisher.hand_over(outbox).await;
        publisher.drained().await;
        assert_eq!(hub.last_published("s"), 52);
    }

    /// Frames for the same stream in a row travel as one hub item; another stream starts a
    /// new one.
    #[test]
    fn consecutive_frames_of_one_stream_are_one_step() {
        let mut outbox = Outbox::default();
        outbox.extend(
            [
                frames("s", 1),
                frames("s", 2),
                frames("t", 1),
                frames("s", 3),
            ]
            .into_iter(),
        );
        let merged: Vec<(String, u64, u64, usize)> = outbox
            .steps
            .iter()
            .map(|step| match step {
                Step::Frames(o) => (o.stream.clone(), o.first_seq, o.last_seq, o.frames.len()),
                Step::Members { .. } => unreachable!("no membership here"),
            })
            .collect();
        assert_eq!(
            merged,
            [
                ("s".to_string(), 1, 2, 4),
                ("t".to_string(), 1, 1, 2),
                ("s".to_string(), 3, 3, 2)
            ]
        );
    }
}
