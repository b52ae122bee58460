//! The tamper test: a log written by three concurrent writers (with checkpoints,
//! an erasure and retention pruning) verifies; then 1,000 random mutations (edit,
//! delete, reorder, insert, truncate, forged erasure or pruning, forged checkpoint),
//! each applied to a fresh copy, are every one detected. Mutations come in two
//! strengths: a naive edit, and an attacker who recomputes every hash after the
//! edit and rewrites the chain's row, whom only the signed checkpoints stop.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use audit::event::SealedEvent;
use audit::memory::{Memory, MemoryRepository};
use audit::merkle::Frontier;
use audit::ports::{ChainState, Erasure};
use audit::verify::{Report, verify_repository};
use audit::{AuditLog, Hash, LogConfig, SigningKey, VerifyingKey};
use chrono::{TimeDelta, TimeZone, Utc};
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, AuditSink, ClientInfo, Clock, ManualClock,
    OrganisationId, Purpose, RequestContext, RequestId, ResourceRef, Role, RoleSet, SubjectId,
    UserId,
};
use uuid::Uuid;

/// splitmix64: deterministic, so a failure names its seed and mutation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn event(at: chrono::DateTime<Utc>, user: UserId, subject: SubjectId, n: u64) -> AuditEvent {
    let ctx = RequestContext::new(
        Actor::Member {
            user,
            roles: RoleSet::only(Role::Provider),
        },
        Some(OrganisationId::new()),
        Purpose::Treatment,
        RequestId::new(),
        ClientInfo::default(),
        at,
    );
    let outcome = if n.is_multiple_of(7) {
        AuditOutcome::Denied {
            reason: "not_on_care_team",
        }
    } else {
        AuditOutcome::Allowed
    };
    let mut e = AuditEvent::new(
        &ctx,
        AuditAction::Read,
        ResourceRef::new("condition", Uuid::now_v7()),
        Some(subject),
        outcome,
    );
    e.client_address = Some(IpAddr::from([192, 0, 2, (n % 200) as u8]));
    e
}

/// Three writers, 450 events, checkpoints every 40, one erasure, pruning of the
/// oldest events, and a final checkpoint.
async fn written_log() -> (Arc<MemoryRepository>, VerifyingKey, Hash) {
    let repository = Arc::new(MemoryRepository::new());
    let start = Utc
        .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let clock = Arc::new(ManualClock::new(start));
    let key = SigningKey::from_seed(&[42; 32]).expect("seed");
    let public = key.verifying_key();
    let config = LogConfig {
        checkpoint_every_events: 40,
        checkpoint_every: Duration::from_secs(3600),
        ..LogConfig::default()
    };
    let mut writers = Vec::new();
    for _ in 0..3 {
        let key = SigningKey::from_seed(&[42; 32]).expect("seed");
        writers.push(
            AuditLog::start(repository.clone(), key, clock.clone(), config.clone())
                .await
                .expect("start"),
        );
    }
    let erased_user = UserId::new();
    let erased_subject = SubjectId::new();
    let mut tasks = Vec::new();
    for n in 0..450_u64 {
        let writer = writers[(n % 3) as usize].clone();
        let at = start + TimeDelta::seconds(i64::try_from(n).unwrap_or(0));
        let (user, subject) = if n % 10 == 3 {
            (erased_user, erased_subject)
        } else {
            (UserId::new(), SubjectId::new())
        };
        tasks.push(tokio::spawn(async move {
            writer.record(event(at, user, subject, n)).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("durable");
    }
    clock.advance(TimeDelta::days(1));
    let pseudonym = Hash::of(&[b"pseudonym of the erased person"]);
    let ctx = RequestContext::system("data-rights", Purpose::SubjectRequest, clock.now());
    writers[1]
        .erase(
            AuditEvent::new(
                &ctx,
                AuditAction::Erase,
                ResourceRef::new("subject", Uuid::nil()),
                None,
                AuditOutcome::Allowed,
            ),
            Erasure {
                subject: erased_subject.as_uuid(),
                user: Some(erased_user.as_uuid()),
                pseudonym,
            },
        )
        .await
        .expect("erase");
    writers[2]
        .prune(start + TimeDelta::seconds(30))
        .await
        .expect("prune");
    writers[0].checkpoint().await.expect("checkpoint");
    (repository, public, pseudonym)
}

async fn verify(memory: Memory, key: &VerifyingKey) -> Report {
    let repository = MemoryRepository::from_memory(memory);
    verify_repository(&repository, std::slice::from_ref(key))
        .await
        .expect("reads")
}

/// Recomputes the hashes of `chain` from `from` on, and rewrites its row: what an
/// attacker with write access does to hide an edit from the links.
fn rehash_forward(memory: &mut Memory, chain: Uuid, from: u64) {
    let mut frontier = Frontier::new();
    let mut prev = Hash::ZERO;
    let keys: Vec<(Uuid, u64)> = memory
        .events
        .range((chain, 1)..=(chain, u64::MAX))
        .map(|(k, _)| *k)
        .collect();
    for key in keys {
        let Some(event) = memory.events.get_mut(&key) else {
            continue;
        };
        if key.1 >= from && !event.pruned {
            event.prev_hash = prev;
            event.hash = event.compute_hash();
        }
        frontier.push(event.hash);
        prev = event.hash;
    }
    if let Some(row) = memory.chains.get_mut(&chain) {
        row.frontier = frontier;
        row.head = prev;
    }
}

fn renumber(memory: &mut Memory, chain: Uuid) {
    let events: Vec<SealedEvent> = memory
        .events
        .range((chain, 0)..=(chain, u64::MAX))
        .map(|(_, e)| e.clone())
        .collect();
    memory.events.retain(|(c, _), _| *c != chain);
    for (i, mut event) in events.into_iter().enumerate() {
        event.sequence = i as u64 + 1;
        memory.events.insert((chain, event.sequence), event);
    }
}

/// Applies mutation number `kind` somewhere random; returns its name.
fn mutate(memory: &mut Memory, rng: &mut Rng, kind: usize) -> &'static str {
    let keys: Vec<(Uuid, u64)> = memory.events.keys().copied().collect();
    let content: Vec<(Uuid, u64)> = memory
        .events
        .iter()
        .filter(|(_, e)| !e.pruned)
        .map(|(k, _)| *k)
        .collect();
    let strong = rng.next().is_multiple_of(2);
    match kind {
        0 => {
            let key = content[rng.below(content.len())];
            let event = memory.events.get_mut(&key).expect("present");
            let field = edit(event, rng);
            // Recomputing the hashes would undo an edit of the hashes themselves.
            if strong && !matches!(field, "edit link" | "edit hash") {
                rehash_forward(memory, key.0, key.1);
            }
            field
        }
        1 => {
            let key = keys[rng.below(keys.len())];
            memory.events.remove(&key);
            if strong {
                renumber(memory, key.0);
                rehash_forward(memory, key.0, key.1);
            }
            "delete"
        }
        2 => {
            let key = keys[rng.below(keys.len() - 1)];
            let next = memory
                .events
                .range((key.0, key.1 + 1)..=(key.0, u64::MAX))
                .next()
                .map(|(k, _)| *k);
            let Some(next) = next else {
                // The last event of a chain: swap with its predecessor instead.
                let prev = (key.0, key.1 - 1);
                swap(memory, prev, key);
                return "reorder";
            };
            swap(memory, key, next);
            if strong {
                rehash_forward(memory, key.0, key.1);
            }
            "reorder"
        }
        3 => {
            let key = content[rng.below(content.len())];
            let mut forged = memory.events[&key].clone();
            forged.request_id = Uuid::now_v7();
            forged.sequence = key.1;
            forged.hash = forged.compute_hash();
            let later: Vec<SealedEvent> = memory
                .events
                .range((key.0, key.1)..=(key.0, u64::MAX))
                .map(|(_, e)| e.clone())
                .collect();
            for e in &later {
                memory.events.remove(&(e.chain, e.sequence));
            }
            memory.events.insert(key, forged);
            for mut e in later {
                e.sequence += 1;
                memory.events.insert((e.chain, e.sequence), e);
            }
            if strong {
                rehash_forward(memory, key.0, key.1);
            }
            "insert"
        }
        4 => {
            let key = keys[rng.below(keys.len())];
            memory.events.retain(|(c, s), _| *c != key.0 || *s < key.1);
            if strong {
                rehash_forward(memory, key.0, key.1);
            }
            "truncate"
        }
        5 => {
            let key = content[rng.below(content.len())];
            let event = memory.events.get_mut(&key).expect("present");
            if let Some(subject) = event.subject.as_mut() {
                subject.id = None;
                subject.pseudonym = Some(Hash::of(&[&rng.next().to_be_bytes()]));
            } else {
                event.actor.id = None;
                event.actor.client_address = None;
                event.actor.pseudonym = Some(Hash::of(&[&rng.next().to_be_bytes()]));
            }
            "forged erasure"
        }
        6 => {
            let key = content[rng.below(content.len())];
            let event = memory.events.get_mut(&key).expect("present");
            event.pruned = true;
            event.subject = None;
            event.actor.id = None;
            "forged pruning"
        }
        _ => {
            let i = rng.below(memory.checkpoints.len());
            let checkpoint = &mut memory.checkpoints[i];
            let j = rng.below(checkpoint.heads.len());
            match rng.below(3) {
                0 => checkpoint.heads[j].size += 1,
                1 => checkpoint.heads[j].root = Hash::of(&[b"forged root"]),
                _ => checkpoint.heads[j].pruned_through += 1000,
            }
            "forged checkpoint"
        }
    }
}

fn swap(memory: &mut Memory, a: (Uuid, u64), b: (Uuid, u64)) {
    let (Some(mut x), Some(mut y)) = (memory.events.remove(&a), memory.events.remove(&b)) else {
        return;
    };
    std::mem::swap(&mut x.sequence, &mut y.sequence);
    memory.events.insert(b, x);
    memory.events.insert(a, y);
}

/// Changes one field of `event` to a different value; returns the field's name.
fn edit(event: &mut SealedEvent, rng: &mut Rng) -> &'static str {
    match rng.below(14) {
        0 => {
            event.at += TimeDelta::microseconds(1);
            "edit at"
        }
        1 => {
            event.action = if event.action == "read" {
                "list"
            } else {
                "read"
            }
            .into();
            "edit action"
        }
        2 => {
            event.purpose.push('x');
            "edit purpose"
        }
        3 => {
            event.resource_id = Uuid::now_v7();
            "edit resource"
        }
        4 => {
            event.organisation = Some(Uuid::now_v7());
            "edit organisation"
        }
        5 => {
            event.denied = if event.denied.is_some() {
                None
            } else {
                Some("x".into())
            };
            "edit outcome"
        }
        6 => {
            event.request_id = Uuid::now_v7();
            "edit request"
        }
        7 => {
            event.actor.roles ^= 0b10;
            "edit roles"
        }
        8 => {
            event.actor.id = Some(Uuid::now_v7());
            event.actor.pseudonym = None;
            "edit actor"
        }
        9 => {
            event.actor.client_address = Some("203.0.113.9".into());
            event.actor.pseudonym = None;
            "edit address"
        }
        10 => {
            if let Some(subject) = event.subject.as_mut() {
                subject.id = Some(Uuid::now_v7());
                subject.pseudonym = None;
            } else {
                event.subject = Some(audit::event::StoredSubject {
                    id: Some(Uuid::now_v7()),
                    pseudonym: None,
                    commitment: Hash::ZERO,
                });
            }
            "edit subject"
        }
        11 => {
            event.resource_kind.push('s');
            "edit resource kind"
        }
        12 => {
            event.prev_hash = Hash::of(&[b"elsewhere"]);
            "edit link"
        }
        _ => {
            event.hash = Hash::of(&[b"elsewhere"]);
            "edit hash"
        }
    }
}

#[tokio::test]
async fn every_one_of_a_thousand_random_mutations_is_detected() {
    let (repository, key, _) = written_log().await;
    let pristine = repository.memory().clone();
    let report = verify(pristine.clone(), &key).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.chains, 3);
    assert_eq!(report.events, 451);
    assert!(report.pruned > 0 && report.pseudonymised > 0, "{report:?}");
    assert!(report.checkpoints > 3, "{report:?}");

    let mut rng = Rng(0x00C0_FFEE);
    let mut undetected = Vec::new();
    for i in 0..1000 {
        let mut copy = pristine.clone();
        let kind = i % 8;
        let name = mutate(&mut copy, &mut rng, kind);
        let report = verify(copy, &key).await;
        if report.is_intact() {
            undetected.push(format!("mutation {i}: {name}"));
        }
    }
    assert!(undetected.is_empty(), "undetected: {undetected:#?}");
}

#[tokio::test]
async fn an_honest_log_still_verifies_after_erasure_and_pruning_but_not_under_another_key() {
    let (repository, _, pseudonym) = written_log().await;
    let memory = repository.memory().clone();
    let erased = memory
        .events
        .values()
        .filter(|e| e.subject.as_ref().and_then(|s| s.pseudonym) == Some(pseudonym))
        .count();
    assert!(erased > 0);
    assert!(memory.events.values().all(|e| e.actor.pseudonym.is_none()
        || (e.actor.id.is_none() && e.actor.client_address.is_none())));
    let other = SigningKey::from_seed(&[1; 32])
        .expect("seed")
        .verifying_key();
    let report = verify(memory, &other).await;
    assert_eq!(
        report.first_break.map(|b| b.problem),
        Some(audit::verify::Problem::BadSignature)
    );
}

#[tokio::test]
async fn a_failed_commit_fails_the_caller_and_the_chain_continues_after_it() {
    let repository = Arc::new(MemoryRepository::new());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let key = SigningKey::from_seed(&[9; 32]).expect("seed");
    let public = key.verifying_key();
    let log = AuditLog::start(repository.clone(), key, clock.clone(), LogConfig::default())
        .await
        .expect("start");
    let at = clock.now();
    let first = log
        .record(event(at, UserId::new(), SubjectId::new(), 1))
        .await
        .expect("durable");
    assert_eq!(first.sequence, 1);
    repository.memory().failing = true;
    assert!(
        log.record(event(at, UserId::new(), SubjectId::new(), 2))
            .await
            .is_err()
    );
    repository.memory().failing = false;
    let third = log
        .record(event(at, UserId::new(), SubjectId::new(), 3))
        .await
        .expect("durable");
    assert_eq!(
        third.sequence, 2,
        "the failed event took no place in the chain"
    );
    log.checkpoint().await.expect("checkpoint");
    let memory = repository.memory().clone();
    let report = verify(memory, &public).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 2);
    assert_eq!(
        repository
            .memory()
            .chains
            .get(&log.chain())
            .map(ChainState::as_head)
            .map(|h| h.size),
        Some(2)
    );
}

#[tokio::test]
async fn concurrent_events_share_commits() {
    let repository = Arc::new(MemoryRepository::new());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let key = SigningKey::from_seed(&[9; 32]).expect("seed");
    let log = AuditLog::start(repository.clone(), key, clock.clone(), LogConfig::default())
        .await
        .expect("start");
    let at = clock.now();
    let tasks: Vec<_> = (0..500)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move {
                log.record(event(at, UserId::new(), SubjectId::new(), n))
                    .await
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for task in tasks {
        sequences.push(task.await.expect("join").expect("durable").sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=500).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_log_verifies_while_writers_keep_appending() {
    let repository = Arc::new(MemoryRepository::new());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let key = SigningKey::from_seed(&[5; 32]).expect("seed");
    let public = key.verifying_key();
    let config = LogConfig {
        checkpoint_every_events: 50,
        ..LogConfig::default()
    };
    let log = AuditLog::start(repository.clone(), key, clock.clone(), config)
        .await
        .expect("start");
    let at = clock.now();
    for n in 0..120 {
        log.record(event(at, UserId::new(), SubjectId::new(), n))
            .await
            .expect("durable");
    }
    // What `verify_repository` sees when writers append while it runs: it read
    // the checkpoints and chain heads (as of 120 events), then more events landed
    // before it read the events. Rebuild that view: the rows and checkpoints as
    // they were, the events as they are now.
    let (chains_then, checkpoints_then) = {
        let memory = repository.memory();
        (memory.chains.clone(), memory.checkpoints.clone())
    };
    for n in 0..80 {
        log.record(event(at, UserId::new(), SubjectId::new(), n))
            .await
            .expect("durable");
    }
    let mut torn = repository.memory().clone();
    torn.chains = chains_then;
    torn.checkpoints = checkpoints_then;
    assert_eq!(torn.events.len(), 200);
    let report = verify(torn, &public).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 120, "verified as of the heads it read");
    let memory = repository.memory().clone();
    let full = verify(memory, &public).await;
    assert!(full.is_intact(), "{full:?}");
    assert_eq!(full.events, 200);
}

/// A process that stops before appending anything still signs its (empty) head, as
/// the server does at shutdown: such a chain verifies (the crash test found that it
/// did not).
#[tokio::test]
async fn a_chain_checkpointed_while_empty_verifies() {
    let repository = Arc::new(MemoryRepository::new());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let key = SigningKey::from_seed(&[5; 32]).expect("seed");
    let public = key.verifying_key();
    let busy = AuditLog::start(
        repository.clone(),
        SigningKey::from_seed(&[5; 32]).expect("seed"),
        clock.clone(),
        LogConfig::default(),
    )
    .await
    .expect("start");
    for n in 0..3 {
        busy.record(event(clock.now(), UserId::new(), SubjectId::new(), n))
            .await
            .expect("durable");
    }
    let idle = AuditLog::start(repository.clone(), key, clock.clone(), LogConfig::default())
        .await
        .expect("start");
    idle.checkpoint().await.expect("checkpoint");
    busy.checkpoint().await.expect("checkpoint");
    let memory = repository.memory().clone();
    let report = verify(memory, &public).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.chains, report.events), (2, 3));
}
