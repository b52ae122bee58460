//! `cargo xtask seed`: fills a database with demo practices, people and clinical
//! records at a chosen scale, written exactly as the server writes them.
//!
//! The seed builds the real application in-process ([`server::App`] from a
//! [`server::Config`] with the same database, data folder and environment as a
//! server started with defaults, migrating first), and goes through its services
//! with member contexts, so every row is what the API would have written: sealed
//! with the right keys, audited, and found through the same indexes.
//!
//! Per practice (`--clients-per-practice` clients each; `--size` clients in all):
//! - its owner (`org_admin` and `provider`), email verified, and one more provider
//!   per [`CLIENTS_PER_PROVIDER`] clients, added by the owner and activated;
//! - each client created by their provider (`createClient`): the sealed account
//!   with its date of birth, the provider's S6 attestation in the client's consent
//!   ledger (as `createClient` records it, so the consent gate allows treatment),
//!   and the provider on the client's care team; the account is then activated;
//! - per client, `--records` conditions, medications and allergies in turn, a
//!   treatment plan, a home-exercise program whose items come from the shared
//!   exercise library, two appointments with their provider (weekday slots in
//!   order, so no provider is ever double-booked), and a message each way.
//!
//! Billing ([`crate::seed_billing`]): plans and tax rates, and per practice a
//! billing account, a card, a subscription and six months of invoice history.
//!
//! The shared library's exercises are added once, as the platform operator
//! (there is no operator account: the author id is nil, as the API records for an
//! operator without one), and reused by later runs.
//!
//! Passwords: every seeded account gets the same demo password, printed once. It
//! is hashed once with the configured iterations, and the PHC string is stored
//! through the identity repository for each account (the practice owner's
//! `create_practice`, activation's `activate`), the two places where the service
//! would otherwise hash it again; the security events and notices the service
//! writes around them are written too. Emails carry a tag of the run, so seeding
//! twice adds a second set rather than failing.
//!
//! A progress bar is shown from 1,000 clients up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use clap::Parser;
use clinical::model::{AppointmentDetails, ExerciseTemplate, PageRequest, RecordBody, RecordKind};
use clinical::service::NewAppointment;
use clinical::{Text, TimeZone};
use consent::ledger::Channel;
use crypto::password::PasswordConfig;
use crypto::{BlindIndexer, IssuedToken, MasterKey, PasswordHasher, TokenHash};
use identity::model::{
    AccountStatus, Membership, Notice, NoticeKind, OneTimeToken, Organisation, SecurityEvent,
    SecurityEventKind, TokenPurpose, User,
};
use identity::ports::{
    IdentityRepository, NewPractice, Notifier, PeopleRepository, SecurityEventLog,
};
use identity::service::members::{Enrolled, NewClient, NewPerson};
use identity::values::{
    DataRegion, Email, MarketingMode, NewPassword, OrganisationName, PersonName, Phone, Profession,
};
use indicatif::{ProgressBar, ProgressStyle};
use kernel::{
    Actor, ClientInfo, Clock, OrganisationId, Purpose, RequestContext, RequestId, Role, RoleSet,
    Sensitive, SubjectId, SystemClock, UserId,
};
use serde_json::{Value, json};
use server::state::AppState;
use server::{App, Config};
use store::{OutboxNotifier, SeaOrmIdentityRepository, SeaOrmSecurityEventLog};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Seed options.
#[derive(Debug, Parser)]
pub struct Args {
    /// How many clients to create, spread over practices of `--clients-per-practice`.
    #[arg(long, default_value_t = 100)]
    size: u64,
    /// Clients per practice.
    #[arg(long, default_value_t = 200)]
    clients_per_practice: u64,
    /// Health records per client: conditions, medications and allergies in turn
    /// (besides a treatment plan, an exercise program, two appointments and two
    /// messages each).
    #[arg(long, default_value_t = 10)]
    records: u32,
    /// The database (migrated first if needed).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://custodia.db")]
    database_url: String,
    /// The server's data folder: its development master key and audit signing key
    /// when none is configured (created if missing, as the server would).
    #[arg(long, env = "CUSTODIA_DATA_DIR", default_value = "custodia-data")]
    data_dir: PathBuf,
    /// The master key (base64); by default the development key in `--data-dir`,
    /// so the server started with defaults can read what was seeded.
    #[arg(long, env = "CUSTODIA_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    /// Clients seeded at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

const PROGRESS_FROM: u64 = 1_000;
/// One provider per this many clients (the owner is the first).
const CLIENTS_PER_PROVIDER: u64 = 50;
/// The password of every seeded account.
const DEMO_PASSWORD: &str = "custodia demo 2026 password";
const USER_AGENT: &str = "cargo xtask seed";
/// Appointment slots per working day (on the hour from 09:00 New York time).
const SLOTS_PER_DAY: u32 = 8;
const APPOINTMENTS_PER_CLIENT: u32 = 2;

/// Seeds the database.
pub async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let mut argv = vec![
        "custodia".to_owned(),
        "--database-url".to_owned(),
        args.database_url.clone(),
        "--data-dir".to_owned(),
        args.data_dir.display().to_string(),
        "--migrate".to_owned(),
        "always".to_owned(),
    ];
    if let Some(key) = &args.master_key {
        argv.extend(["--master-key".to_owned(), key.clone()]);
    }
    let config = Config::try_from_args(argv).map_err(|e| e.to_string())?;
    let app = App::build(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let state = app.state().clone();
    let master = master_key(&config)?;
    if config.master_key.is_none() {
        println!(
            "seed: using the development master key in {} (as the server does without one)",
            config.data_dir.display()
        );
    }
    let db = state.database().clone();
    let keyring = state.keyring().clone();
    let ports = Ports {
        accounts: SeaOrmIdentityRepository::new(
            db.clone(),
            keyring.clone(),
            BlindIndexer::new(&master),
        ),
        events: SeaOrmSecurityEventLog::new(db.clone()),
        outbox: OutboxNotifier::new(db, keyring),
        password_hash: hash_demo_password(&config).await?,
        tag: Uuid::now_v7().simple().to_string()[24..].to_owned(),
    };
    let ports = Arc::new(ports);

    let per_practice = args.clients_per_practice.max(1);
    let practices = args.size.div_ceil(per_practice).max(1);
    let bar = progress(args.size)?;
    let mut library = Vec::new();
    let mut providers = 0;
    let mut first_login = None;
    let mut created = 0;
    crate::seed_billing::catalogue(&state).await?;
    let mut billed = Vec::new();
    for p in 0..practices {
        let in_this = per_practice.min(args.size - created);
        let practice = seed_practice(&state, &ports, p, in_this).await?;
        billed.push((practice.organisation, practice.providers[0].0, p, in_this));
        if library.is_empty() {
            library = shared_library(&state, &practice).await?;
        }
        if first_login.is_none() {
            first_login = Some(practice.providers[0].1.clone());
        }
        providers += practice.providers.len() as u64;
        let practice = Arc::new(practice);
        let library = Arc::new(library.clone());
        let mut tasks = JoinSet::new();
        for n in 0..in_this {
            if tasks.len() >= args.concurrency.max(1) {
                join_one(&mut tasks, &bar).await?;
            }
            let (state, ports, practice, library) = (
                state.clone(),
                ports.clone(),
                practice.clone(),
                library.clone(),
            );
            let records = args.records;
            tasks.spawn(async move {
                seed_client(&state, &ports, &practice, &library, n, records).await
            });
        }
        while !tasks.is_empty() {
            join_one(&mut tasks, &bar).await?;
        }
        created += in_this;
    }
    bar.finish_and_clear();
    for (organisation, owner, index, clients) in &billed {
        crate::seed_billing::practice(
            &state,
            *organisation,
            *owner,
            *index,
            &practice_name(*index),
            *clients,
        )
        .await?;
    }
    let billing_runs = crate::seed_billing::history(&state).await?;
    // Sign what this process appended to the audit log, as the server does at
    // shutdown, so nothing seeded stays unanchored.
    state
        .audit()
        .log()
        .checkpoint()
        .await
        .map_err(|e| format!("audit checkpoint: {e}"))?;
    drop(app);
    state.database().clone().close().await;

    println!(
        "seed: {practices} practices, {} providers, {created} clients, {} health records, \
         {created} treatment plans and exercise programs, {} appointments, {} messages \
         in {:.1} s",
        providers,
        created * u64::from(args.records),
        created * u64::from(APPOINTMENTS_PER_CLIENT),
        created * 2,
        started.elapsed().as_secs_f64()
    );
    println!(
        "seed: {} subscriptions with {} months of invoice history ({billing_runs} renewals and \
         dunning attempts)",
        billed.len(),
        crate::seed_billing::HISTORY_MONTHS
    );
    if let Some(email) = first_login {
        println!(
            "seed: every seeded account's password is {DEMO_PASSWORD:?}; e.g. sign in as {email}"
        );
    }
    Ok(())
}

/// The identity adapters the seed writes precomputed password hashes through,
/// and what every account shares.
struct Ports {
    accounts: SeaOrmIdentityRepository,
    events: SeaOrmSecurityEventLog,
    outbox: OutboxNotifier,
    /// The demo password's PHC string, hashed once.
    password_hash: String,
    /// Distinguishes this run's emails from an earlier run's.
    tag: String,
}

/// A seeded practice: its id and providers (id, email, roles), the owner first.
struct Practice {
    organisation: OrganisationId,
    providers: Vec<(UserId, String, RoleSet)>,
    index: u64,
}

fn progress(size: u64) -> Result<ProgressBar, String> {
    if size < PROGRESS_FROM {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} clients ({per_sec}, eta {eta})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.set_message("seeding");
    Ok(bar)
}

async fn join_one(
    tasks: &mut JoinSet<Result<(), String>>,
    bar: &ProgressBar,
) -> Result<(), String> {
    if let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
        bar.inc(1);
    }
    Ok(())
}

/// The master key the server would use: configured, or the development key
/// [`App::build`] has just loaded or created in the data folder.
fn master_key(config: &Config) -> Result<MasterKey, String> {
    if let Some(encoded) = &config.master_key {
        return MasterKey::from_base64(encoded.expose()).map_err(|e| e.to_string());
    }
    let path = config.data_dir.join("dev-master-key");
    let encoded = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    MasterKey::from_base64(encoded.trim()).map_err(|e| e.to_string())
}

/// The demo password's hash, with the configured iterations, computed once.
async fn hash_demo_password(config: &Config) -> Result<String, String> {
    let password =
        NewPassword::parse(Sensitive::new(DEMO_PASSWORD.to_owned())).map_err(|e| e.to_string())?;
    let hasher = PasswordHasher::new(PasswordConfig {
        iterations: config.password_iterations.get(),
        allow_insecure_for_tests: config.insecure_fast_password_hashing,
    })
    .map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || hasher.hash(password.as_sensitive()))
        .await
        .map_err(|e| e.to_string())?
        .map(|h| h.to_phc_string())
        .map_err(|e| e.to_string())
}

fn client_info() -> ClientInfo {
    ClientInfo::new(None, Some(USER_AGENT))
}

/// A request of `user` with `roles` in `organisation`, made now.
fn member(
    user: UserId,
    roles: RoleSet,
    organisation: OrganisationId,
    purpose: Purpose,
) -> RequestContext {
    RequestContext::new(
        Actor::Member { user, roles },
        Some(organisation),
        purpose,
        RequestId::new(),
        client_info(),
        SystemClock.now(),
    )
}

fn anonymous() -> RequestContext {
    RequestContext::new(
        Actor::Anonymous,
        None,
        Purpose::Operations,
        RequestId::new(),
        client_info(),
        SystemClock.now(),
    )
}

impl Ports {
    async fn security_event(&self, user: UserId, kind: SecurityEventKind) -> Result<(), String> {
        self.events
            .record(&SecurityEvent {
                id: Uuid::now_v7(),
                user: Some(user),
                kind,
                at: SystemClock.now(),
                client_address: None,
                user_agent: Some(USER_AGENT.to_owned()),
                country: None,
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Activates an account created for its owner (a provider added by the owner,
    /// or a client) with the demo password, as `activateAccount` would with the
    /// token from its email.
    async fn activate(&self, user: UserId) -> Result<(), String> {
        let token = self
            .outbox
            .latest_secret(user, "activate_account")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no activation notice in the outbox")?;
        self.accounts
            .activate(
                &TokenHash::of_presented(token.expose()),
                &self.password_hash,
                SystemClock.now(),
            )
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("activation refused: {e:?}"))?;
        self.security_event(user, SecurityEventKind::AccountActivated)
            .await
    }
}

/// A practice and its owner, as `signUp` stores them, with the demo password's
/// hash; then the email verified through the service; then its other providers.
async fn seed_practice(
    state: &AppState,
    ports: &Ports,
    index: u64,
    clients: u64,
) -> Result<Practice, String> {
    let invalid = |e: identity::values::InvalidValue| e.to_string();
    let now = SystemClock.now();
    let tag = &ports.tag;
    let email = format!("owner-{index}-{tag}@example.com");
    let organisation = Organisation {
        id: OrganisationId::new(),
        name: OrganisationName::parse(&practice_name(index)).map_err(invalid)?,
        region: DataRegion::parse("us").map_err(invalid)?,
        marketing_mode: MarketingMode::default(),
        require_mfa: false,
        created_at: now,
    };
    let user = User {
        id: UserId::new(),
        subject: SubjectId::new(),
        home_organisation: organisation.id,
        name: PersonName::parse(&person_name(index * 7 + 3)).map_err(invalid)?,
        email: Email::parse(&email).map_err(invalid)?,
        phone: Some(Phone::parse(&phone(index)).map_err(invalid)?),
        profession: Some(Profession::parse("Physiotherapist").map_err(invalid)?),
        status: AccountStatus::PendingVerification,
        email_verified_at: None,
        created_at: now,
    };
    let memberships = [Role::OrgAdmin, Role::Provider]
        .into_iter()
        .map(|role| Membership {
            user: user.id,
            organisation: organisation.id,
            role,
            created_at: now,
        })
        .collect();
    let (token, hash) = IssuedToken::generate()
        .map_err(|e| e.to_string())?
        .into_parts();
    state
        .keyring()
        .organisation_key(organisation.id)
        .await
        .map_err(|e| e.to_string())?;
    ports
        .accounts
        .create_practice(&NewPractice {
            organisation: organisation.clone(),
            user: user.clone(),
            password_hash: ports.password_hash.clone(),
            memberships,
            verification: OneTimeToken {
                hash,
                purpose: TokenPurpose::VerifyEmail,
                user: user.id,
                expires_at: now + state.identity().config().verification_ttl,
            },
        })
        .await
        .map_err(|e| e.to_string())?;
    ports
        .security_event(user.id, SecurityEventKind::AccountCreated)
        .await?;
    ports
        .outbox
        .send(&Notice {
            user: user.id,
            kind: NoticeKind::VerifyEmail {
                token: token.clone(),
            },
            at: now,
        })
        .await
        .map_err(|e| e.to_string())?;
    state
        .identity()
        .verify_email(&anonymous(), &token)
        .await
        .map_err(|e| format!("verifying the owner's email: {e}"))?;

    let owner_roles = RoleSet::only(Role::OrgAdmin).with(Role::Provider);
    let mut providers = vec![(user.id, email, owner_roles)];
    let wanted = clients.div_ceil(CLIENTS_PER_PROVIDER).max(1);
    for k in 1..wanted {
        let email = format!("provider-{index}-{k}-{tag}@example.com");
        let ctx = member(user.id, owner_roles, organisation.id, Purpose::Operations);
        let enrolled = state
            .identity()
            .add_member(
                &ctx,
                organisation.id,
                NewPerson {
                    name: person_name(index * 7 + k * 11),
                    email: email.clone(),
                    phone: Some(phone(index * 100 + k)),
                },
                Role::Provider,
            )
            .await
            .map_err(|e| format!("adding a provider: {e}"))?;
        let Enrolled::Created(provider) = enrolled else {
            return Err("a provider's email was taken".to_owned());
        };
        ports.activate(provider.id).await?;
        providers.push((provider.id, email, RoleSet::only(Role::Provider)));
    }
    Ok(Practice {
        organisation: organisation.id,
        providers,
        index,
    })
}

/// The shared library's exercises: [`EXERCISES`], found by name among those a
/// practice sees, the missing ones added as the platform operator.
async fn shared_library(
    state: &AppState,
    practice: &Practice,
) -> Result<Vec<(Uuid, String)>, String> {
    let (owner, _, roles) = &practice.providers[0];
    let mut shared = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let ctx = member(*owner, *roles, practice.organisation, Purpose::Operations);
        let found = state
            .clinical()
            .templates(&ctx, practice.organisation, page)
            .await
            .map_err(|e| format!("listing exercises: {e}"))?;
        shared.extend(
            found
                .items
                .iter()
                .filter(|t| t.organisation.is_none())
                .map(|t| (t.id, t.name.as_str().to_owned())),
        );
        match found.next {
            Some(next) => {
                page = PageRequest {
                    after: Some(next),
                    limit: 100,
                }
            }
            None => break,
        }
    }
    let operator = RequestContext::new(
        Actor::PlatformOperator {
            user: UserId::from_uuid(Uuid::nil()),
        },
        None,
        Purpose::Operations,
        RequestId::new(),
        client_info(),
        SystemClock.now(),
    );
    let mut library = Vec::new();
    for (name, instructions, region, equipment) in EXERCISES {
        if let Some(found) = shared.iter().find(|(_, n)| n == name) {
            library.push(found.clone());
            continue;
        }
        let template = ExerciseTemplate {
            id: Uuid::now_v7(),
            organisation: None,
            name: text(name)?,
            instructions: text(instructions)?,
            body_region: text(region)?,
            equipment: equipment
                .iter()
                .map(|e| text(e))
                .collect::<Result<_, _>>()?,
            media: None,
            created_at: operator.at(),
            created_by: UserId::from_uuid(Uuid::nil()),
        };
        let added = state
            .clinical()
            .add_shared_template(&operator, template)
            .await
            .map_err(|e| format!("adding a shared exercise: {e}"))?;
        library.push((added.id, name.to_owned()));
    }
    Ok(library)
}

/// One client of `practice`, number `n`: created by their provider with the
/// attestation and care-team membership `createClient` records, activated, and
/// given their records, appointments and messages.
async fn seed_client(
    state: &AppState,
    ports: &Ports,
    practice: &Practice,
    library: &[(Uuid, String)],
    n: u64,
    records: u32,
) -> Result<(), String> {
    let organisation = practice.organisation;
    let providers = practice.providers.len() as u64;
    let (provider, _, roles) =
        practice.providers[usize::try_from(n % providers).map_err(|e| e.to_string())?];
    // The client's place among their provider's clients: their appointment slots.
    let position = n / providers;
    let as_provider = |purpose| member(provider, roles, organisation, purpose);
    let seq = practice.index * 100_000 + n;

    // createClient: the account, then the attestation, then the care team.
    let enrolled = state
        .identity()
        .create_client(
            &as_provider(Purpose::Operations),
            organisation,
            NewClient {
                name: person_name(seq),
                email: format!("client-{}-{n}-{}@example.com", practice.index, ports.tag),
                phone: Some(phone(seq + 1_000_000)),
                date_of_birth: birth_date(seq)?,
            },
        )
        .await
        .map_err(|e| format!("creating a client: {e}"))?;
    let Enrolled::Created(client) = enrolled else {
        return Err("a client's email was taken".to_owned());
    };
    let ctx = as_provider(Purpose::Treatment);
    let child = state
        .identity()
        .is_child(client.id, ctx.at().date_naive())
        .await
        .map_err(|e| e.to_string())?;
    state
        .consent()
        .register(client.subject, Some(organisation), child)
        .await
        .map_err(|e| e.to_string())?;
    state
        .consent()
        .attest(
            &ctx,
            client.subject,
            provider,
            Channel::Paper,
            Some(format!("intake form {seq}")),
            ctx.at() - Duration::days(1),
        )
        .await
        .map_err(|e| format!("recording the attestation: {e}"))?;
    state
        .clinical()
        .enrol(&as_provider(Purpose::Treatment), organisation, client.id)
        .await
        .map_err(|e| format!("joining the care team: {e}"))?;
    ports.activate(client.id).await?;

    let write = |body: RecordBody, ctx: RequestContext| async move {
        state
            .clinical()
            .create_record(&ctx, organisation, client.id, body)
            .await
            .map(drop)
            .map_err(|e| format!("writing a record: {e}"))
    };
    let today = SystemClock.now().date_naive();
    for r in 0..records {
        let pick = (seq as usize).wrapping_add(r as usize);
        let (kind, content) = match r % 3 {
            0 => (RecordKind::Condition, condition(pick, today)),
            1 => (RecordKind::Medication, medication(pick)),
            _ => (RecordKind::Allergy, allergy(pick)),
        };
        write(body(kind, content)?, as_provider(Purpose::Treatment)).await?;
    }
    write(
        body(RecordKind::TreatmentPlan, treatment_plan(seq as usize))?,
        as_provider(Purpose::Treatment),
    )
    .await?;
    write(
        body(RecordKind::Program, program(library, seq as usize, today))?,
        as_provider(Purpose::Treatment),
    )
    .await?;
    for k in 0..APPOINTMENTS_PER_CLIENT {
        let slot =
            u32::try_from(position).map_err(|e| e.to_string())? * APPOINTMENTS_PER_CLIENT + k;
        let starts_at = slot_start(today, slot)?;
        let details = AppointmentDetails {
            time_zone: TimeZone::parse("America/New_York").map_err(|e| e.to_string())?,
            location: Some(text("Clinic, room 2")?),
            telehealth_url: None,
            reason: Some(text(if k == 0 { "Assessment" } else { "Follow-up" })?),
        };
        state
            .clinical()
            .book(
                &as_provider(Purpose::Treatment),
                organisation,
                client.id,
                NewAppointment {
                    provider,
                    starts_at,
                    ends_at: starts_at + Duration::minutes(45),
                    details,
                },
            )
            .await
            .map_err(|e| format!("booking an appointment: {e}"))?;
    }
    write(
        message("Welcome to the practice. Your home program is ready in the app.")?,
        as_provider(Purpose::Treatment),
    )
    .await?;
    write(
        message("Thank you, I will start the exercises tomorrow.")?,
        member(
            client.id,
            RoleSet::only(Role::Client),
            organisation,
            Purpose::SubjectRequest,
        ),
    )
    .await?;
    Ok(())
}

/// Text through the domain's own parser.
fn text<const MAX: usize>(s: &str) -> Result<Text<MAX>, String> {
    Text::parse(s).map_err(|e| e.to_string())
}

/// A body through the domain's own parser, as the API builds one.
pub(crate) fn body(kind: RecordKind, content: Value) -> Result<RecordBody, String> {
    RecordBody::from_json(kind, content)
        .map_err(|e| format!("a seeded {} body: {e}", kind.as_str()))
}

/// A message; the service sets its sender.
fn message(text: &str) -> Result<RecordBody, String> {
    body(
        RecordKind::Message,
        json!({ "sender": Uuid::nil(), "text": text }),
    )
}

/// The start of appointment slot `slot` of a provider: working days from the
/// Monday after `today`, [`SLOTS_PER_DAY`] slots a day on the hour from 14:00 UTC
/// (09:00 in New York in winter), 45 minutes each, so slots never overlap.
fn slot_start(today: NaiveDate, slot: u32) -> Result<DateTime<Utc>, String> {
    let days_to_monday = 7 - today.weekday().num_days_from_monday();
    let monday = today + Duration::days(i64::from(days_to_monday));
    debug_assert_eq!(monday.weekday(), Weekday::Mon);
    let working_day = slot / SLOTS_PER_DAY;
    let day = monday + Duration::days(i64::from(working_day / 5 * 7 + working_day % 5));
    let hour = 14 + slot % SLOTS_PER_DAY;
    day.and_hms_opt(hour, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| "an appointment slot out of range".to_owned())
}

const FIRST_NAMES: [&str; 16] = [
    "Amelia", "Noah", "Olivia", "Liam", "Maya", "Ethan", "Sofia", "Lucas", "Ava", "Mateo", "Chloe",
    "Kenji", "Zara", "Omar", "Ingrid", "Tomas",
];
const LAST_NAMES: [&str; 16] = [
    "Garcia",
    "Nguyen",
    "Smith",
    "Okafor",
    "Kowalski",
    "Rossi",
    "Haddad",
    "Johansson",
    "Patel",
    "Kim",
    "Murphy",
    "Silva",
    "Novak",
    "Fischer",
    "Tanaka",
    "Dubois",
];

pub(crate) fn person_name(n: u64) -> String {
    let n = n as usize;
    format!(
        "{} {}",
        FIRST_NAMES[n % FIRST_NAMES.len()],
        LAST_NAMES[(n / FIRST_NAMES.len() + n * 7) % LAST_NAMES.len()]
    )
}

fn practice_name(n: u64) -> String {
    let towns = [
        "Riverside",
        "Hillcrest",
        "Lakeview",
        "Oakwood",
        "Harbor",
        "Maple",
    ];
    format!(
        "{} Physiotherapy {}",
        towns[n as usize % towns.len()],
        n / towns.len() as u64 + 1
    )
}

/// A North American number in the 555-01xx fictional range.
pub(crate) fn phone(n: u64) -> String {
    format!("+1555{:07}", 100 + n % 9_999_900)
}

/// An adult's birth date, between 1945 and 2004.
pub(crate) fn birth_date(n: u64) -> Result<NaiveDate, String> {
    let year = 1945 + i32::try_from(n % 60).map_err(|e| e.to_string())?;
    let ordinal = 1 + u32::try_from(n * 37 % 365).map_err(|e| e.to_string())?;
    NaiveDate::from_yo_opt(year, ordinal).ok_or_else(|| "a birth date out of range".to_owned())
}

const CONDITIONS: [(&str, &str); 8] = [
    ("M54.5", "Low back pain"),
    ("M75.1", "Rotator cuff syndrome of the right shoulder"),
    ("M17.1", "Primary osteoarthritis of the knee"),
    ("S93.4", "Sprain of the left ankle"),
    ("M79.1", "Myalgia"),
    ("M54.2", "Cervicalgia"),
    ("M76.6", "Achilles tendinitis"),
    ("G56.0", "Carpal tunnel syndrome"),
];
const MEDICATIONS: [(&str, &str, &str); 6] = [
    ("Ibuprofen", "400 mg", "three times daily with food"),
    ("Paracetamol", "1 g", "up to four times daily"),
    ("Naproxen", "250 mg", "twice daily"),
    ("Diclofenac gel", "2 g", "apply four times daily"),
    ("Cyclobenzaprine", "5 mg", "at night"),
    ("Omeprazole", "20 mg", "once daily"),
];
const ALLERGIES: [(&str, &str, &str); 5] = [
    ("Penicillin", "Rash", "moderate"),
    ("Latex", "Contact dermatitis", "mild"),
    ("Codeine", "Nausea and vomiting", "moderate"),
    ("Adhesive tape", "Skin irritation", "mild"),
    ("Sulfonamides", "Hives", "severe"),
];
/// The shared library: name, instructions, body region, equipment.
const EXERCISES: [(&str, &str, &str, &[&str]); 4] = [
    (
        "Glute bridge",
        "Lie on your back, knees bent. Lift your hips until your body is straight from shoulders to knees, hold, and lower slowly.",
        "hip",
        &["mat"],
    ),
    (
        "Clamshell",
        "Lie on your side, knees bent. Keeping your feet together, lift the top knee without rolling your pelvis back.",
        "hip",
        &["mat", "resistance band"],
    ),
    (
        "Wall slide",
        "Stand with your back to a wall, arms raised. Slide your arms up and down, keeping contact with the wall.",
        "shoulder",
        &[],
    ),
    (
        "Calf raise",
        "Stand on the edge of a step. Rise onto your toes, then lower your heels below the step slowly.",
        "ankle",
        &["step"],
    ),
];

pub(crate) fn condition(n: usize, today: NaiveDate) -> Value {
    let (code, text) = CONDITIONS[n % CONDITIONS.len()];
    let onset = today - Duration::days(30 + (n % 700) as i64);
    json!({
        "text": text,
        "code": { "system": "icd-10", "code": code },
        "status": if n.is_multiple_of(4) { "resolved" } else { "active" },
        "onset": onset,
    })
}

pub(crate) fn medication(n: usize) -> Value {
    let (name, dose, frequency) = MEDICATIONS[n % MEDICATIONS.len()];
    json!({ "name": name, "dose": dose, "frequency": frequency, "status": "active" })
}

pub(crate) fn allergy(n: usize) -> Value {
    let (substance, reaction, severity) = ALLERGIES[n % ALLERGIES.len()];
    json!({ "substance": substance, "reaction": reaction, "severity": severity, "status": "active" })
}

fn treatment_plan(n: usize) -> Value {
    let goals = [
        "Walk 5 km without pain",
        "Return to running",
        "Lift the arm overhead without pain",
        "Sleep through the night",
    ];
    json!({
        "title": "Six-week rehabilitation plan",
        "goals": [goals[n % goals.len()], goals[(n + 1) % goals.len()]],
        "interventions": ["Manual therapy weekly", "Home exercise program", "Education on posture"],
        "status": "active",
    })
}

fn program(library: &[(Uuid, String)], n: usize, today: NaiveDate) -> Value {
    let items: Vec<Value> = (0..3)
        .map(|i| {
            let (id, name) = &library[(n + i) % library.len()];
            json!({
                "exercise": id,
                "name": name,
                "prescription": { "sets": 3, "repetitions": 10 + 2 * i, "hold_seconds": if i == 0 { 5 } else { 0 }, "per_week": 5 },
                "notes": "Stop if the pain goes above 5 out of 10.",
            })
        })
        .collect();
    json!({
        "title": "Home exercise program",
        "items": items,
        "starts_on": today,
        "ends_on": today + Duration::weeks(6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity::values::DateOfBirth;

    #[test]
    fn a_providers_slots_are_weekday_hours_that_never_overlap() {
        for today in [
            NaiveDate::from_ymd_opt(2026, 11, 24).expect("date"),
            NaiveDate::from_ymd_opt(2026, 11, 29).expect("a Sunday"),
            NaiveDate::from_ymd_opt(2026, 11, 30).expect("a Monday"),
        ] {
            let mut previous_end: Option<DateTime<Utc>> = None;
            for slot in 0..500 {
                let start = slot_start(today, slot).expect("in range");
                assert!(
                    start.date_naive() > today,
                    "slot {slot} is not in the future"
                );
                assert!(
                    !matches!(start.weekday(), Weekday::Sat | Weekday::Sun),
                    "slot {slot} falls on a weekend"
                );
                let end = start + Duration::minutes(45);
                if let Some(previous) = previous_end {
                    assert!(start >= previous, "slot {slot} overlaps the one before");
                }
                previous_end = Some(end);
            }
        }
    }

    #[test]
    fn generated_people_pass_the_identity_parsers_as_adults() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        for n in (0..5_000).chain([99_999, 100_000, 4_999_999]) {
            PersonName::parse(&person_name(n)).expect("a valid name");
            Phone::parse(&phone(n + 1_000_000)).expect("a valid phone");
            OrganisationName::parse(&practice_name(n)).expect("a valid practice name");
            let born = DateOfBirth::parse(birth_date(n).expect("a date"), today)
                .expect("a valid birth date");
            assert!(born.age_on(today) >= 18, "client {n} is not an adult");
        }
    }

    #[test]
    fn every_generated_body_passes_the_domain_rules() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let library: Vec<(Uuid, String)> = EXERCISES
            .iter()
            .map(|(name, ..)| (Uuid::now_v7(), (*name).to_owned()))
            .collect();
        for n in 0..40 {
            for (kind, content) in [
                (RecordKind::Condition, condition(n, today)),
                (RecordKind::Medication, medication(n)),
                (RecordKind::Allergy, allergy(n)),
                (RecordKind::TreatmentPlan, treatment_plan(n)),
                (RecordKind::Program, program(&library, n, today)),
            ] {
                let parsed = body(kind, content).expect("parses");
                assert_eq!(parsed.kind(), kind);
                parsed
                    .check(today)
                    .expect("passes the rules spanning fields");
            }
        }
        message("Hello").expect("a message parses");
    }
}
