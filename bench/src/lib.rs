//! pm-bench: a load generator for pm-compatible servers that speaks only the public protocol
//! (binary protobuf WebSocket frames at `/ws`, REST under `/api/v1`), so it can be pointed at
//! any compatible server with `--url`. The reference's own server is driven too (`--reference`,
//! or detected): see [`Env::reference`] and [`live::Identity`].
//!
//! Scenarios: `fanout` (latency from a writer's send to every subscriber's receipt, with seq
//! checks), `throughput` (concurrent writers as fast as the server allows), `slow-consumer`
//! (fan-out with one subscriber that stops reading, against a baseline), `idle` (server memory
//! per idle subscribed connection), `growth` (create/update/GetWorkItems latency as a project
//! grows) and `resume-storm` (a writer's latency while many clients resume a long history at
//! once) and `presence` (the traffic of U users on one board). Each returns a [`scenarios::Report`]; `main.rs` prints its table and writes its JSON.
pub mod attack;
pub mod failover;
pub mod floor;
pub mod live;
pub mod net;
pub mod presence;
pub mod raw;
pub mod scan;
pub mod scenarios;
pub mod stats;
pub mod summary;

pub use scenarios::{
    Env, FanoutParams, GrowthParams, IdleParams, Report, ResumeStormParams, SlowConsumerParams,
    ThroughputParams,
};

/// A scenario with its parameters.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// N subscribers on one project, one writer at R mutations/s for D seconds: fan-out
    /// latency p50/p99/max, lost and duplicated events.
    Fanout(FanoutParams),
    /// W writers as fast as the server allows with N subscribers: mutations/s, deliveries/s.
    Throughput(ThroughputParams),
    /// Fan-out with one extra subscriber that stops reading, against a baseline run: the
    /// others' p99 and the server's memory over time.
    SlowConsumer(SlowConsumerParams),
    /// C idle subscribed connections: server memory per connection (VmRSS from /proc).
    Idle(IdleParams),
    /// Create/update latency and GetWorkItems time at growing project sizes.
    Growth(GrowthParams),
    /// C clients connected idle, then all resuming E events at once (Subscribe with a cursor),
    /// again and again: a concurrent writer's latency in both phases, every replay checked by
    /// seq.
    ResumeStorm(ResumeStormParams),
    /// Several servers on one database (`--url WRITER,VICTIM,FALLBACK`): N subscribers on the
    /// victim, which is killed mid-run; each moves to the fallback and resumes from its cursor:
    /// time from the kill until it is back and caught up, lost and out-of-order events.
    Failover(failover::FailoverParams),
    /// U users on one board saying where they are and beating every 15 s, idle (optionally
    /// with a few moving their cursor): presence messages per user and in total, server CPU.
    Presence(presence::PresenceParams),
}

/// Runs one scenario against `env.target`.
pub async fn run(env: &Env, scenario: &Scenario) -> anyhow::Result<Report> {
    match scenario {
        Scenario::Fanout(p) => scenarios::fanout(env, p).await,
        Scenario::Throughput(p) => scenarios::throughput(env, p).await,
        Scenario::SlowConsumer(p) => scenarios::slow_consumer(env, p).await,
        Scenario::Idle(p) => scenarios::idle(env, p).await,
        Scenario::Growth(p) => scenarios::growth(env, p).await,
        Scenario::ResumeStorm(p) => scenarios::resume_storm(env, p).await,
        Scenario::Failover(p) => failover::failover(env, p).await,
        Scenario::Presence(p) => presence::presence(env, p).await,
    }
}
