//! `cargo xtask bench consent`: how long does the consent gate take to answer, and
//! does it slow down as the number of people grows?
//!
//! Unless `--in-process` is given it re-runs itself built in release mode (`cargo
//! run --release -p xtask -- bench consent --in-process ...`), so the measured code
//! is optimised. Then, on one thread with a current-thread runtime:
//!
//! 1. for each `--subjects` size (default 10,000 and 1,000,000, in one run) a
//!    `consent::memory::MemoryRepository` is filled **through
//!    `consent::ConsentService`**, so each projection is built the real way (each
//!    event checked, chained and folded in by `SubjectState::append`): a privacy
//!    notice is published, practices are given settings (some non-default:
//!    opt-out marketing, analytics held to opt-in, GDPR or CCPA), and each subject
//!    is registered with their practice (some minors, a few with none) and given a
//!    history: the provider's attestation for most, research grants (by a guardian
//!    for some minors; some withdrawn), marketing grants and objections, a named
//!    third-party grant, a Global Privacy Control opt-out, a restriction of the
//!    health record for a few. The audit sink is real but only counts: this bench
//!    measures consent, not the audit log (`bench audit` does). Populations of up
//!    to 100,000 are then verified (every chain, every projection's head);
//! 2. a random stream of queries per size (treatment, research, marketing,
//!    analytics and third-party sharing, on the health record and other
//!    categories, for random subjects, 2 % of them unknown) is asked of
//!    `ConsentGate::decide` through `&dyn ConsentGate` on the service, the exact
//!    path clinical reads take, each call timed by an `Instant` around its `await`;
//! 3. the floor: the same stream through the same harness, answered by a
//!    `HashMap<SubjectId, _>` lookup of a small copied value. The gate's
//!    figures are reported as multiples of the floor's, because the machine is
//!    noisy;
//!
//! The timed calls of each size are split into `--rounds` chunks, and the chunks of
//! every size and of the floor alternate, each after a short untimed warm-up, so
//! drift in the machine's other load falls on every figure alike. Reported per
//! size: p50, p99, p99.9, max and calls/s of the gate and of the floor, the gate's
//! p99 as a multiple of the floor's, and the decisions' mix; across sizes, the p99
//! of the largest over the smallest (goal ≤ 1.5) and each p99 against the 50 µs
//! goal, with the floor's own p99 ratio across sizes beside it (how much of the
//! growth is the memory hierarchy's). Prints a table and writes every figure to
//! `target/bench/consent.json`.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clap::Parser;
use consent::ledger::{Authority, Channel, LedgerAction};
use consent::memory::{MemoryNotifier, MemoryRepository};
use consent::policy::{PRIVACY_NOTICE, PolicyVersion};
use consent::ports::PracticeSettings;
use consent::service::Change;
use consent::{ConsentService, MarketingMode, PracticePolicy};
use kernel::{
    Actor, AuditError, AuditEvent, AuditReceipt, AuditSink, ClientInfo, Clock, ConsentDecision,
    ConsentGate, ConsentQuery, DataCategory, OrganisationId, Purpose, Recipient, Regime,
    RequestContext, RequestId, Role, RoleSet, SubjectId, SystemClock, UserId,
};
use serde_json::{Value, json};

/// Options of `bench consent`.
#[derive(Debug, Parser)]
pub struct ConsentArgs {
    /// Numbers of subjects, each measured in the same run.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    subjects: Vec<usize>,
    /// Timed calls per size (for the gate, and as many for the floor).
    #[arg(long, default_value_t = 200_000)]
    calls: usize,
    /// Untimed calls per size, spread before the timed chunks.
    #[arg(long, default_value_t = 20_000)]
    warmup: usize,
    /// Chunks the timed calls are split into, alternating sizes and the floor.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Measure in this process instead of re-running the bench built in release mode.
    #[arg(long)]
    in_process: bool,
}

/// The gate's p99 should be at most this many microseconds...
const GOAL_P99_US: f64 = 50.0;
/// ...and at the largest size at most this multiple of its p99 at the smallest.
const GOAL_SCALING: f64 = 1.5;
/// Seed of the population and of the query streams, so runs are comparable.
const SEED: u64 = 0x00c0_05e7_be9c_4a11;
/// Subjects per practice.
const SUBJECTS_PER_PRACTICE: usize = 200;
/// Populations up to this size are verified (every chain, every projection's
/// head) before they are measured; the in-memory repository lists heads by
/// sorting every subject per page, too slow for a million.
const VERIFY_UP_TO: usize = 100_000;
/// The named third party some people agree to share with.
const THIRD_PARTY: &str = "Northwind Health Insurance";
/// One they did not name.
const OTHER_THIRD_PARTY: &str = "Contoso Research Labs";

/// Runs the bench: in release mode in a child process unless `--in-process`.
pub async fn run(args: ConsentArgs, root: &Path) -> Result<(), String> {
    if args.in_process {
        return measure_and_report(args, root);
    }
    crate::bench::rerun_in_release("consent", root)
}

fn measure_and_report(args: ConsentArgs, root: &Path) -> Result<(), String> {
    if cfg!(debug_assertions) {
        println!("bench: WARNING: measuring a debug build; figures are not representative");
    }
    if args.subjects.is_empty() || args.subjects.contains(&0) {
        return Err("--subjects needs one or more sizes above zero".to_owned());
    }
    let plan = Plan {
        sizes: args.subjects,
        calls: args.calls.max(1),
        warmup: args.warmup,
        rounds: args.rounds.clamp(1, args.calls.max(1)),
        progress: true,
    };
    // The calls are timed on a thread of their own, on a current-thread runtime:
    // nothing else is scheduled between a call and its timer. This blocks the
    // command's runtime while it runs, which has nothing else to do.
    let report = std::thread::spawn(move || measure(&plan))
        .join()
        .map_err(|_| "the measuring thread panicked".to_owned())??;

    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = out.join("consent.json");
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
    std::fs::write(&file, text + "\n").map_err(|e| e.to_string())?;
    println!();
    report.print();
    println!("wrote {}", file.display());
    Ok(())
}

/// What to measure.
#[derive(Debug, Clone)]
struct Plan {
    sizes: Vec<usize>,
    calls: usize,
    warmup: usize,
    rounds: usize,
    progress: bool,
}

/// Builds every population, then times the gate and the floor on each in
/// alternating chunks.
fn measure(plan: &Plan) -> Result<Report, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(measure_on(plan))
}

async fn measure_on(plan: &Plan) -> Result<Report, String> {
    let mut rng = Rng(SEED);
    let mut populations = Vec::new();
    for &size in &plan.sizes {
        if plan.progress {
            println!("bench: {size} subjects: building through ConsentService…");
        }
        let mut population = Population::build(size, &mut rng, plan.progress).await?;
        if plan.progress {
            println!(
                "bench: {size} subjects: {} events in {:.1} s",
                population.events, population.build_seconds
            );
        }
        if size <= VERIFY_UP_TO {
            let report = consent::service::verify_repository(population.repository.as_ref())
                .await
                .map_err(|e| format!("verifying the ledger: {e}"))?;
            if !report.is_intact() || report.events != population.events {
                return Err(format!(
                    "the ledger built for {size} subjects does not verify: {} events, {} \
                     breaks, {} projections out of step",
                    report.events,
                    report.breaks.len(),
                    report.projection_mismatches.len()
                ));
            }
            population.verified = true;
        }
        populations.push(population);
    }
    let at = SystemClock.now();
    let streams: Vec<(Vec<ConsentQuery>, Vec<ConsentQuery>)> = populations
        .iter()
        .map(|p| {
            (
                p.queries(plan.warmup.max(1), &mut rng, at),
                p.queries(plan.calls, &mut rng, at),
            )
        })
        .collect();

    let mut results: Vec<SizeResult> = populations.iter().map(|_| SizeResult::default()).collect();
    let chunk = plan.calls.div_ceil(plan.rounds);
    let warm = plan.warmup.div_ceil(plan.rounds);
    for round in 0..plan.rounds {
        if plan.progress {
            println!("bench: round {}/{}…", round + 1, plan.rounds);
        }
        let part =
            |per: usize, total: usize| (round * per).min(total)..((round + 1) * per).min(total);
        let (timed, warming) = (part(chunk, plan.calls), part(warm, plan.warmup));
        for ((population, (warmup, queries)), result) in
            populations.iter().zip(&streams).zip(&mut results)
        {
            let floor = &population.floor;
            let gate: &dyn ConsentGate = &population.service;
            for q in &warmup[warming.clone()] {
                black_box(floor_lookup(floor, q).await);
            }
            time_floor(floor, &queries[timed.clone()], &mut result.floor).await;
            for q in &warmup[warming.clone()] {
                black_box(gate.decide(q).await.ok());
            }
            time_gate(gate, &queries[timed.clone()], result).await;
        }
    }

    let sizes = populations
        .into_iter()
        .zip(results)
        .map(|(p, r)| SizeReport {
            subjects: p.subjects.len(),
            practices: p.practices,
            events: p.events,
            audit_events: p.audit.count(),
            build_seconds: p.build_seconds,
            verified: p.verified,
            floor: r.floor.finish(),
            gate: r.gate.finish(),
            outcomes: r.outcomes,
        })
        .collect();
    Ok(Report {
        calls: plan.calls,
        warmup: plan.warmup,
        rounds: plan.rounds,
        sizes,
    })
}

/// The floor: what any gate must at least do, look the subject up and hand back
/// a small value, through the same `async` call and timer.
async fn floor_lookup(floor: &HashMap<SubjectId, Brief>, query: &ConsentQuery) -> Option<Brief> {
    floor.get(&query.subject).copied()
}

async fn time_floor(
    floor: &HashMap<SubjectId, Brief>,
    queries: &[ConsentQuery],
    samples: &mut Samples,
) {
    samples.ns.reserve(queries.len());
    let started = Instant::now();
    for q in queries {
        let at = Instant::now();
        let answer = floor_lookup(floor, q).await;
        let took = at.elapsed();
        black_box(answer);
        samples.ns.push(nanos(took));
    }
    samples.seconds += started.elapsed().as_secs_f64();
}

async fn time_gate(gate: &dyn ConsentGate, queries: &[ConsentQuery], result: &mut SizeResult) {
    result.gate.ns.reserve(queries.len());
    let started = Instant::now();
    for q in queries {
        let at = Instant::now();
        let answer = gate.decide(q).await;
        let took = at.elapsed();
        result.gate.ns.push(nanos(took));
        result.outcomes.count(&answer);
    }
    result.gate.seconds += started.elapsed().as_secs_f64();
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// SplitMix64: a small, seeded, good-enough generator for choosing histories
/// and queries (nothing secret is drawn from it).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// The floor's value per subject: small, and copied out like the gate's answer.
#[derive(Debug, Clone, Copy)]
#[expect(
    dead_code,
    reason = "copied out and handed to black_box, never read: only the lookup matters"
)]
struct Brief {
    organisation: Option<OrganisationId>,
    minor: bool,
}

/// An audit sink that counts and keeps nothing: the bench measures consent.
#[derive(Debug)]
struct CountingSink {
    chain: uuid::Uuid,
    recorded: AtomicU64,
}

impl CountingSink {
    fn new() -> Self {
        Self {
            chain: uuid::Uuid::now_v7(),
            recorded: AtomicU64::new(0),
        }
    }

    fn count(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AuditSink for CountingSink {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        black_box(event);
        let sequence = self.recorded.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(AuditReceipt {
            chain: self.chain,
            sequence,
        })
    }
}

/// One population: the service over its repository, and the floor's map.
struct Population {
    service: ConsentService,
    repository: Arc<MemoryRepository>,
    audit: Arc<CountingSink>,
    subjects: Vec<SubjectId>,
    organisations: Vec<OrganisationId>,
    practices: usize,
    provider: UserId,
    floor: HashMap<SubjectId, Brief>,
    events: u64,
    build_seconds: f64,
    verified: bool,
}

impl std::fmt::Debug for Population {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Population")
            .field("subjects", &self.subjects.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

fn context(actor: Actor, organisation: Option<OrganisationId>, n: usize) -> RequestContext {
    let host = u8::try_from(n % 250 + 1).unwrap_or(1);
    RequestContext::new(
        actor,
        organisation,
        Purpose::Treatment,
        RequestId::new(),
        ClientInfo::new(
            Some(std::net::IpAddr::from([198, 51, 100, host])),
            Some("Mozilla/5.0 (consent bench)"),
        ),
        SystemClock.now(),
    )
}

/// A practice's settings: most keep the defaults, a few do not.
fn settings_of(practice: usize) -> Option<PracticeSettings> {
    let mut settings = PracticeSettings::default();
    match practice % 20 {
        1 => settings.policy.marketing = MarketingMode::OptOut,
        2 => {
            settings.policy = PracticePolicy {
                opt_in_required: [Purpose::Analytics].into_iter().collect(),
                ..PracticePolicy::default()
            };
        }
        3 => settings.regime = Regime::Gdpr,
        4 => {
            settings.regime = Regime::Ccpa;
            settings.policy.marketing = MarketingMode::OptOut;
        }
        _ => return None,
    }
    Some(settings)
}

impl Population {
    async fn build(size: usize, rng: &mut Rng, progress: bool) -> Result<Self, String> {
        let repository = Arc::new(MemoryRepository::new());
        let audit = Arc::new(CountingSink::new());
        let service = ConsentService::new(
            repository.clone(),
            Arc::new(MemoryNotifier::default()),
            audit.clone(),
        );
        let started = Instant::now();
        let fail = |what: &str, e: consent::ConsentServiceError| format!("{what}: {e}");
        let operator = context(
            Actor::PlatformOperator {
                user: UserId::new(),
            },
            None,
            0,
        );
        let notice = PolicyVersion::new(PRIVACY_NOTICE, "1", 0, "text", false, "", 0)
            .map_err(|e| e.to_string())?;
        service
            .publish(&operator, &notice)
            .await
            .map_err(|e| fail("publishing the privacy notice", e))?;

        let practices = size.div_ceil(SUBJECTS_PER_PRACTICE);
        let organisations: Vec<OrganisationId> =
            (0..practices).map(|_| OrganisationId::new()).collect();
        for (n, &org) in organisations.iter().enumerate() {
            if let Some(settings) = settings_of(n) {
                let admin = context(
                    Actor::Member {
                        user: UserId::new(),
                        roles: RoleSet::only(Role::OrgAdmin),
                    },
                    Some(org),
                    n,
                );
                service
                    .set_settings(&admin, org, &settings)
                    .await
                    .map_err(|e| fail("practice settings", e))?;
            }
        }

        let provider = UserId::new();
        let mut subjects = Vec::with_capacity(size);
        let mut floor = HashMap::with_capacity(size);
        let mut events = 0;
        for n in 0..size {
            let subject = SubjectId::new();
            // A few people have no practice (e.g. their account outlived it).
            let organisation = (!rng.chance(20)).then(|| organisations[rng.below(practices)]);
            let minor = rng.chance(50);
            service
                .register(subject, organisation, minor)
                .await
                .map_err(|e| fail("register", e))?;
            let clinic = context(
                Actor::Member {
                    user: provider,
                    roles: RoleSet::only(Role::Provider),
                },
                organisation,
                n,
            );
            let person = context(
                Actor::Member {
                    user: UserId::new(),
                    roles: RoleSet::only(Role::Client),
                },
                organisation,
                n,
            );
            events += history(&service, &clinic, &person, provider, subject, minor, rng)
                .await
                .map_err(|e| fail("history", e))?;
            subjects.push(subject);
            floor.insert(
                subject,
                Brief {
                    organisation,
                    minor,
                },
            );
            if progress && (n + 1) % 100_000 == 0 {
                println!(
                    "bench:   {} subjects, {events} events, {:.1} s",
                    n + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(Self {
            service,
            repository,
            audit,
            subjects,
            organisations,
            practices,
            provider,
            floor,
            events,
            build_seconds: started.elapsed().as_secs_f64(),
            verified: false,
        })
    }

    /// `count` queries: random purposes, recipients, categories and subjects, a few
    /// of whom are unknown to the consent context.
    fn queries(&self, count: usize, rng: &mut Rng, at: DateTime<Utc>) -> Vec<ConsentQuery> {
        const CLINICAL: [(DataCategory, u64); 5] = [
            (DataCategory::HealthRecord, 500),
            (DataCategory::Medications, 150),
            (DataCategory::TreatmentPlans, 150),
            (DataCategory::ExercisePrograms, 100),
            (DataCategory::Appointments, 100),
        ];
        let clinical = |rng: &mut Rng| {
            let mut pick = rng.next() % 1000;
            for (category, weight) in CLINICAL {
                if pick < weight {
                    return category;
                }
                pick -= weight;
            }
            DataCategory::HealthRecord
        };
        (0..count)
            .map(|_| {
                let subject = if rng.chance(20) {
                    SubjectId::new()
                } else {
                    self.subjects[rng.below(self.subjects.len())]
                };
                let (purpose, recipient, category) = match rng.next() % 100 {
                    0..40 => (
                        Purpose::Treatment,
                        Recipient::CareTeamMember {
                            user: self.provider,
                        },
                        clinical(rng),
                    ),
                    40..55 => (
                        Purpose::Research,
                        Recipient::Organisation {
                            organisation: self.organisations[rng.below(self.organisations.len())],
                        },
                        clinical(rng),
                    ),
                    55..70 => (
                        Purpose::MarketingEmail,
                        Recipient::Subject,
                        DataCategory::Contact,
                    ),
                    70..85 => (
                        Purpose::Analytics,
                        Recipient::SubProcessor {
                            name: "analytics".to_owned(),
                        },
                        DataCategory::UsageLogs,
                    ),
                    _ => (
                        Purpose::ThirdPartySharing,
                        Recipient::ThirdParty {
                            name: if rng.chance(700) {
                                THIRD_PARTY
                            } else {
                                OTHER_THIRD_PARTY
                            }
                            .to_owned(),
                        },
                        DataCategory::HealthRecord,
                    ),
                };
                ConsentQuery {
                    subject,
                    purpose,
                    recipient,
                    category,
                    at,
                }
            })
            .collect()
    }
}

/// One subject's history, recorded through the service; returns how many events.
async fn history(
    service: &ConsentService,
    clinic: &RequestContext,
    person: &RequestContext,
    provider: UserId,
    subject: SubjectId,
    minor: bool,
    rng: &mut Rng,
) -> Result<u64, consent::ConsentServiceError> {
    let mut events = 0;
    // Most clients' providers have attested (S6); the rest were just invited.
    if rng.chance(950) {
        let (channel, document) = if rng.chance(600) {
            (
                Channel::Paper,
                Some(format!("forms/{}.pdf", uuid::Uuid::now_v7())),
            )
        } else {
            (Channel::Verbal, None)
        };
        service
            .attest(clinic, subject, provider, channel, document, clinic.at())
            .await?;
        events += 1;
    }
    let authority = if minor && rng.chance(600) {
        Authority::Guardian(UserId::new())
    } else {
        Authority::Person
    };
    let change = |action, purpose: Option<Purpose>| Change {
        purpose,
        authority,
        ..Change::by_person(action, Channel::Web)
    };
    if rng.chance(200) {
        service
            .record(
                person,
                subject,
                &change(LedgerAction::Grant, Some(Purpose::Research)),
            )
            .await?;
        events += 1;
        if rng.chance(150) {
            service
                .record(
                    person,
                    subject,
                    &change(LedgerAction::Withdraw, Some(Purpose::Research)),
                )
                .await?;
            events += 1;
        }
    }
    match rng.next() % 100 {
        0..10 => {
            service
                .record(
                    person,
                    subject,
                    &change(LedgerAction::Grant, Some(Purpose::MarketingEmail)),
                )
                .await?;
            events += 1;
        }
        10..25 => {
            service
                .record(
                    person,
                    subject,
                    &change(LedgerAction::Object, Some(Purpose::MarketingEmail)),
                )
                .await?;
            events += 1;
        }
        _ => {}
    }
    if rng.chance(50) {
        let grant = Change {
            recipient: Some(THIRD_PARTY.to_owned()),
            ..change(LedgerAction::Grant, Some(Purpose::ThirdPartySharing))
        };
        service.record(person, subject, &grant).await?;
        events += 1;
    }
    if rng.chance(20)
        && service
            .global_privacy_control(person, subject)
            .await?
            .is_some()
    {
        events += 1;
    }
    if rng.chance(10) {
        let restrict = Change {
            category: Some(DataCategory::HealthRecord),
            ..change(LedgerAction::Restrict, None)
        };
        service.record(person, subject, &restrict).await?;
        events += 1;
    }
    Ok(events)
}

/// Latencies of one path at one size, in nanoseconds, and the time the timed
/// loops took.
#[derive(Debug, Default)]
struct Samples {
    ns: Vec<u64>,
    seconds: f64,
}

impl Samples {
    fn finish(mut self) -> Latency {
        self.ns.sort_unstable();
        let at = |q: f64| {
            if self.ns.is_empty() {
                return f64::NAN;
            }
            let index = ((self.ns.len() - 1) as f64 * q).round() as usize;
            self.ns[index.min(self.ns.len() - 1)] as f64 / 1000.0
        };
        Latency {
            calls: self.ns.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.ns.last().map_or(f64::NAN, |&n| n as f64 / 1000.0),
            per_second: if self.seconds > 0.0 {
                self.ns.len() as f64 / self.seconds
            } else {
                0.0
            },
        }
    }
}

/// The figures of one path at one size.
#[derive(Debug, Clone, Copy)]
struct Latency {
    calls: usize,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    per_second: f64,
}

impl Latency {
    fn to_json(self) -> Value {
        json!({
            "calls": self.calls,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "max_us": self.max_us,
            "calls_per_second": self.per_second,
        })
    }
}

/// How the gate answered.
#[derive(Debug, Default)]
struct Outcomes {
    allowed: u64,
    denied: BTreeMap<&'static str, u64>,
    errors: u64,
}

impl Outcomes {
    fn count(&mut self, answer: &Result<ConsentDecision, kernel::ConsentError>) {
        match answer {
            Ok(ConsentDecision::Allow { .. }) => self.allowed += 1,
            Ok(ConsentDecision::Deny { reason }) => {
                *self.denied.entry(reason.as_str()).or_default() += 1;
            }
            Err(_) => self.errors += 1,
        }
    }

    fn denied(&self) -> u64 {
        self.denied.values().sum()
    }

    fn total(&self) -> u64 {
        self.allowed + self.denied() + self.errors
    }
}

/// What is gathered per size while the rounds run.
#[derive(Debug, Default)]
struct SizeResult {
    floor: Samples,
    gate: Samples,
    outcomes: Outcomes,
}

/// Every figure of one size.
#[derive(Debug)]
struct SizeReport {
    subjects: usize,
    practices: usize,
    events: u64,
    audit_events: u64,
    build_seconds: f64,
    verified: bool,
    floor: Latency,
    gate: Latency,
    outcomes: Outcomes,
}

impl SizeReport {
    fn p99_over_floor(&self) -> f64 {
        self.gate.p99_us / self.floor.p99_us
    }

    fn to_json(&self) -> Value {
        let o = &self.outcomes;
        json!({
            "subjects": self.subjects,
            "practices": self.practices,
            "population": {
                "built_through": "consent::ConsentService over consent::memory::MemoryRepository",
                "ledger_events": self.events,
                "audit_events": self.audit_events,
                "seconds": self.build_seconds,
                "ledger_verified": if self.verified { json!(true) } else { json!("skipped (size)") },
            },
            "floor_hashmap_lookup": self.floor.to_json(),
            "consent_gate_decide": self.gate.to_json(),
            "decide_p50_over_floor_p50": self.gate.p50_us / self.floor.p50_us,
            "decide_p99_over_floor_p99": self.p99_over_floor(),
            "goal_p99_us": GOAL_P99_US,
            "goal_p99_met": self.gate.p99_us <= GOAL_P99_US,
            "decisions": {
                "allowed": o.allowed,
                "denied": o.denied(),
                "denied_by_reason": o.denied,
                "errors": o.errors,
            },
        })
    }
}

/// Every figure of the run.
#[derive(Debug)]
struct Report {
    calls: usize,
    warmup: usize,
    rounds: usize,
    sizes: Vec<SizeReport>,
}

impl Report {
    /// The largest size's p99 over the smallest's, for the gate and for the floor,
    /// with both sizes (`None` for a single size).
    fn scaling(&self) -> Option<(usize, usize, f64, f64)> {
        let small = self.sizes.iter().min_by_key(|s| s.subjects)?;
        let large = self.sizes.iter().max_by_key(|s| s.subjects)?;
        (large.subjects > small.subjects).then(|| {
            (
                small.subjects,
                large.subjects,
                large.gate.p99_us / small.gate.p99_us,
                large.floor.p99_us / small.floor.p99_us,
            )
        })
    }

    fn to_json(&self) -> Value {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let scaling = self
            .scaling()
            .map_or(Value::Null, |(small, large, ratio, floor)| {
                json!({
                    "smaller_subjects": small,
                    "larger_subjects": large,
                    "p99_ratio": ratio,
                    "floor_p99_ratio": floor,
                    "goal_p99_ratio": GOAL_SCALING,
                    "goal_met": ratio <= GOAL_SCALING,
                })
            });
        json!({
            "release_build": !cfg!(debug_assertions),
            "cores": cores,
            "timed_calls_per_size": self.calls,
            "warmup_calls_per_size": self.warmup,
            "rounds": self.rounds,
            "runtime": "tokio current-thread, one thread",
            "sizes": self.sizes.iter().map(SizeReport::to_json).collect::<Vec<_>>(),
            "scaling": scaling,
            "goal_p99_us": GOAL_P99_US,
            "goal_p99_met": self.sizes.iter().all(|s| s.gate.p99_us <= GOAL_P99_US),
        })
    }

    fn print(&self) {
        for s in &self.sizes {
            let o = &s.outcomes;
            let share = |n: u64| 100.0 * n as f64 / o.total().max(1) as f64;
            let reasons: Vec<String> = o
                .denied
                .iter()
                .map(|(reason, n)| format!("{reason} {:.1}%", share(*n)))
                .collect();
            println!(
                "{} subjects in {} practices: {} ledger events ({} audited) built through \
                 ConsentService in {:.1} s ({}); decisions: {:.1}% allowed, denied: {}; \
                 {} errors",
                s.subjects,
                s.practices,
                s.events,
                s.audit_events,
                s.build_seconds,
                if s.verified {
                    "ledger verified"
                } else {
                    "too large to verify here"
                },
                share(o.allowed),
                reasons.join(", "),
                o.errors
            );
        }
        println!();
        println!(
            "{:<22} {:>10} {:>9} {:>9} {:>9} {:>9} {:>12} {:>10}",
            "path (µs)", "subjects", "p50", "p99", "p99.9", "max", "calls/s", "p99/floor"
        );
        for s in &self.sizes {
            for (name, l, ratio) in [
                ("floor: HashMap lookup", &s.floor, "1.00".to_owned()),
                (
                    "ConsentGate::decide",
                    &s.gate,
                    format!("{:.2}", s.p99_over_floor()),
                ),
            ] {
                println!(
                    "{:<22} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.1} {:>12.0} {:>10}",
                    name, s.subjects, l.p50_us, l.p99_us, l.p999_us, l.max_us, l.per_second, ratio
                );
            }
        }
        println!();
        for s in &self.sizes {
            println!(
                "decide p99 at {} subjects: {:.3} µs = {:.1}x the floor's (goal ≤ {GOAL_P99_US} µs: {})",
                s.subjects,
                s.gate.p99_us,
                s.p99_over_floor(),
                met(s.gate.p99_us <= GOAL_P99_US)
            );
        }
        if let Some((small, large, ratio, floor)) = self.scaling() {
            println!(
                "decide p99 at {large} / p99 at {small}: {ratio:.2} (goal ≤ {GOAL_SCALING}: {}); \
                 the floor's: {floor:.2}",
                met(ratio <= GOAL_SCALING)
            );
        }
        println!(
            "({} timed calls per size and path in {} alternating rounds, after {} untimed)",
            self.calls, self.rounds, self.warmup
        );
    }
}

const fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "missed" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_times_every_call_of_every_size_and_path() {
        let plan = Plan {
            sizes: vec![100, 300],
            calls: 1_000,
            warmup: 100,
            rounds: 3,
            progress: false,
        };
        let report = measure(&plan).expect("the bench runs");
        assert_eq!(report.sizes.len(), 2);
        for s in &report.sizes {
            for l in [&s.floor, &s.gate] {
                assert_eq!(l.calls, 1_000, "every timed call is counted once");
                assert!(l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us);
                assert!(l.per_second > 0.0);
            }
            let o = &s.outcomes;
            assert_eq!(o.total(), 1_000);
            assert_eq!(o.errors, 0);
            assert!(o.allowed > 0, "{o:?}");
            assert!(
                o.denied.contains_key("service_authorisation_missing")
                    && o.denied.contains_key("consent_not_given"),
                "the mix reaches the attestation and opt-in checks: {o:?}"
            );
            assert!(s.verified, "every chain and projection was verified");
            assert!(s.events >= s.subjects as u64 / 2, "{s:?}");
            assert!(s.audit_events > s.events, "every change was audited: {s:?}");
        }
        let (small, large, _, _) = report.scaling().expect("two sizes");
        assert_eq!((small, large), (100, 300));
        let json = report.to_json();
        assert_eq!(json["sizes"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["sizes"][1]["consent_gate_decide"]["calls"], 1_000);
        assert_eq!(json["scaling"]["larger_subjects"], 300);
    }
}
