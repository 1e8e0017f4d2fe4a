//! A server whose disk fills up (`scripts/attack.sh` puts its data directory on a small tmpfs):
//! writes until they fail, then checks that every acknowledged write can be read back and that
//! no event number was given to two events.
use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use pm_shared::proto::{self, Payload};
use prost::Message as _;

use super::http::{ask, collect, Identity, Rest};
use super::{attack, refused, succeeded, Attack, Verdict};
use crate::net::{self, ConnOptions, Target};

const USER: &str = "0000000d-0000-4000-8000-00000000d15c";

pub fn attacks(target: &Target) -> Vec<Attack<'_>> {
    vec![attack(
        "2. a full disk loses acknowledged writes and reuses event numbers",
        fill(target),
    )]
}

async fn fill(target: &Target) -> Result<Verdict> {
    let project = net::create_project(target, "attack disk").await?;
    let mut writer = net::connect(target, USER, ConnOptions::default()).await?;
    let mut watcher = net::connect(target, USER, ConnOptions::default()).await?;
    net::subscribe(&mut watcher, &project).await?;
    let mut acked = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut n = 0;
    while errors.len() < 30 && n < 20_000 {
        n += 1;
        let request = Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: proto::WorkItemType::Task as i32,
            title: format!("filler {n}"),
            description: Some(format!("{n:06} {}", "x".repeat(7_000))),
            project_id: project.clone(),
            ..Default::default()
        });
        let answer = ask(&mut writer, request).await?;
        match answer.payload {
            Some(Payload::WorkItemCreated(c)) => {
                if let Some(item) = c.work_item {
                    acked.push(item.id);
                }
            }
            Some(Payload::Error(e)) => errors.push(e.code),
            _ => {}
        }
    }
    anyhow::ensure!(!errors.is_empty(), "the disk never filled ({n} writes)");
    let rest = Rest::new(target, Identity::Named(USER.into()))?;
    let (ready, _) = rest.get("/ready").await?;
    let mut lost = 0;
    for id in &acked {
        let (status, _) = rest.get(&format!("/api/v1/work-items/{id}")).await?;
        if status != 200 {
            lost += 1;
        }
    }
    let events = collect(&mut watcher, Duration::from_millis(500)).await;
    let mut numbered: HashMap<(String, u64), Vec<u8>> = HashMap::new();
    let mut reused = 0;
    for e in events.iter().filter(|e| e.seq > 0) {
        let body = e.payload.as_ref().map(|p| {
            proto::WebSocketMessage {
                payload: Some(p.clone()),
                ..Default::default()
            }
            .encode_to_vec()
        });
        let body = body.unwrap_or_default();
        if let Some(before) = numbered.insert((e.epoch.clone(), e.seq), body.clone()) {
            if before != body {
                reused += 1;
            }
        }
    }
    let _ = writer.close(None).await;
    let full = errors.iter().filter(|c| *c == "STORAGE_FULL").count();
    if lost > 0 || reused > 0 || ready == 200 {
        return succeeded(format!(
            "{} acknowledged, {lost} of them lost; {reused} seqs sent for two events; /ready {ready}",
            acked.len()
        ));
    }
    refused(format!(
        "{} writes acknowledged and all stored; {} refused ({full} STORAGE_FULL); no seq reused; /ready {ready}",
        acked.len(),
        errors.len()
    ))
}
