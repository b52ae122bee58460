//! The audit log over HTTP (SEC2, S3, S4): verification and inclusion proofs for
//! auditors, the practice's events for auditors and privacy officers, a person's
//! own access report and accounting of disclosures, and disclosures recorded by
//! the practice. Every one of these reads is itself an audit event.
//!
//! [`AuditServiceError`] is mapped to HTTP here and nowhere else. A failure to
//! write the audit event is 503 and no data is returned (fail closed).

use audit::AuditServiceError;
use audit::event::{ActorKind, SealedEvent};
use audit::ports::EventCursor;
use audit::service::{AccessEntry, DisclosureEntry, InclusionProof};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use kernel::{Disclosure, OrganisationId, Purpose, Role, UserId};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::SessionAuth;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

impl From<AuditServiceError> for ApiError {
    fn from(err: AuditServiceError) -> Self {
        match err {
            AuditServiceError::Forbidden(reason) => {
                Self::new(ProblemKind::Forbidden, format!("Not permitted: {reason}"))
            }
            AuditServiceError::NotFound => Self::new(
                ProblemKind::NotFound,
                "No such audit event in your practice.",
            ),
            AuditServiceError::Unavailable(source) => {
                tracing::error!(error = %source, "audit log unavailable");
                Self::Unavailable(Json(Problem::new(
                    ProblemKind::Unavailable,
                    "The audit log is temporarily unavailable; nothing was read or changed.",
                )))
            }
        }
    }
}

impl From<kernel::AuditError> for ApiError {
    fn from(err: kernel::AuditError) -> Self {
        AuditServiceError::from(err).into()
    }
}

/// The audit operations.
#[derive(Debug)]
pub struct AuditApi {
    state: AppState,
}

impl AuditApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Where verification found the log broken.
#[derive(Debug, Object)]
pub struct AuditBreak {
    /// The chain, when the break is in one.
    pub chain_id: Option<Uuid>,
    /// The event's sequence number, when the break is at one.
    pub sequence: Option<u64>,
    /// The checkpoint involved, if any.
    pub checkpoint_id: Option<Uuid>,
    /// What is wrong: `sequence_gap`, `broken_link`, `hash_mismatch`,
    /// `actor_commitment`, `subject_commitment`, `unannounced_pseudonym`,
    /// `unsigned_pruning`, `bad_signature`, `missing_events`,
    /// `checkpoint_mismatch`, `missing_chain` or `chain_row_mismatch`.
    pub problem: String,
}

/// The result of verifying every chain and checkpoint.
#[derive(Debug, Object)]
pub struct AuditVerification {
    /// Whether everything verified.
    pub intact: bool,
    /// Chains checked.
    pub chains: u64,
    /// Events checked.
    pub events: u64,
    /// Events blanked by retention (their links still checked).
    pub pruned: u64,
    /// Events where an erased person's id is a pseudonym.
    pub pseudonymised: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// The first break; absent when intact.
    #[oai(skip_serializing_if_is_none)]
    pub first_break: Option<AuditBreak>,
    /// The ids (hex) of the keys checkpoints were verified under.
    pub trusted_key_ids: Vec<String>,
}

/// Who acted.
#[derive(Debug, Object)]
pub struct AuditActor {
    /// `member`, `operator`, `system`, `anonymous` or `api_key`.
    pub kind: String,
    /// The person; absent for no person, or one since erased.
    pub user_id: Option<Uuid>,
    /// For `api_key`: the practice API key that acted.
    pub api_key_id: Option<Uuid>,
    /// Whether the person was erased (their id is now a pseudonym).
    pub erased: bool,
    /// The roles acted with.
    pub roles: Vec<String>,
    /// For `system`: the component.
    pub component: Option<String>,
    /// The client address.
    pub client_address: Option<String>,
}

/// One audit event.
#[derive(Debug, Object)]
pub struct AuditEventView {
    /// The chain holding it.
    pub chain_id: Uuid,
    /// Its position in the chain.
    pub sequence: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: AuditActor,
    /// The practice acted in.
    pub organisation_id: Option<Uuid>,
    /// `read`, `list`, `create`, `update`, `delete`, `export`, `disclose`, `erase`,
    /// `restrict` or `verify`.
    pub action: String,
    /// The kind of record.
    pub resource_kind: String,
    /// The record's id.
    pub resource_id: Uuid,
    /// Whose data it was; absent for none, or one since erased.
    pub subject_id: Option<Uuid>,
    /// Whether the subject was erased.
    pub subject_erased: bool,
    /// Why (purpose of use).
    pub purpose: String,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// Why it was denied.
    pub denied_reason: Option<String>,
    /// The request it belongs to.
    pub request_id: Uuid,
    /// Its hash (hex): the RFC 6962 leaf hash.
    pub hash: String,
}

impl From<&SealedEvent> for AuditEventView {
    fn from(e: &SealedEvent) -> Self {
        Self {
            chain_id: e.chain,
            sequence: e.sequence,
            at: e.at,
            actor: AuditActor {
                kind: e.actor.kind.as_str().to_owned(),
                user_id: e.actor.id.filter(|_| e.actor.kind != ActorKind::ApiKey),
                api_key_id: e.actor.id.filter(|_| e.actor.kind == ActorKind::ApiKey),
                erased: e.actor.pseudonym.is_some(),
                roles: e.roles().iter().map(|r| r.as_str().to_owned()).collect(),
                component: e.actor.component.clone(),
                client_address: e.actor.client_address.clone(),
            },
            organisation_id: e.organisation,
            action: e.action.clone(),
            resource_kind: e.resource_kind.clone(),
            resource_id: e.resource_id,
            subject_id: e.subject.as_ref().and_then(|s| s.id),
            subject_erased: e.subject.as_ref().is_some_and(|s| s.pseudonym.is_some()),
            purpose: e.purpose.clone(),
            outcome: if e.denied.is_some() {
                "denied"
            } else {
                "allowed"
            }
            .to_owned(),
            denied_reason: e.denied.clone(),
            request_id: e.request_id,
            hash: e.hash.to_hex(),
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Object)]
pub struct AuditEventPage {
    /// The events on this page.
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// One chain's head as a checkpoint names it.
#[derive(Debug, Object)]
pub struct CheckpointHead {
    /// The chain.
    pub chain_id: Uuid,
    /// Its number of events.
    pub size: u64,
    /// The last event's hash (hex).
    pub head: String,
    /// The RFC 6962 Merkle root over its events (hex).
    pub root: String,
    /// Events up to this sequence number were blanked by retention.
    pub pruned_through: u64,
}

/// A signed checkpoint.
#[derive(Debug, Object)]
pub struct CheckpointView {
    /// Its id.
    pub id: Uuid,
    /// When it was signed.
    pub at: DateTime<Utc>,
    /// The chain whose writer signed it.
    pub writer_chain_id: Uuid,
    /// The signing key's id (hex).
    pub key_id: String,
    /// Every chain's head.
    pub heads: Vec<CheckpointHead>,
    /// The exact bytes signed (base64); `docs/audit.md` gives their layout.
    pub signed_bytes: String,
    /// The Ed25519 signature (base64).
    pub signature: String,
}

/// An RFC 6962 inclusion proof: hash `encoding` as a leaf, fold in `path`, and
/// compare with the root the checkpoint signed for the chain at `tree_size`.
#[derive(Debug, Object)]
pub struct AuditInclusionProof {
    /// The event.
    pub event: AuditEventView,
    /// Its canonical encoding (base64); the leaf hash is SHA-256(0x00 || encoding).
    pub encoding: String,
    /// The leaf's index: sequence − 1.
    pub leaf_index: u64,
    /// The size of the tree the checkpoint signed.
    pub tree_size: u64,
    /// The audit path, bottom up (hex).
    pub path: Vec<String>,
    /// The checkpoint.
    pub checkpoint: CheckpointView,
    /// The Ed25519 public key (base64) that verifies the checkpoint: compare it with
    /// the one you were given out of band.
    pub signing_public_key: String,
}

/// An actor whose recent accesses look unusual.
#[derive(Debug, Object)]
pub struct AccessAlertView {
    /// `repeated_denials` (many refused accesses) or `broad_access` (many
    /// different people's data).
    pub kind: String,
    /// `member`, `operator` or `api_key`.
    pub actor_kind: String,
    /// The person or API key.
    pub actor_id: Uuid,
    /// How many denials, or how many different people.
    pub count: u64,
    /// The threshold it reached.
    pub threshold: u64,
    /// The first event counted.
    pub first_at: DateTime<Utc>,
    /// The last event counted.
    pub last_at: DateTime<Utc>,
}

/// Unusual access in the window, most striking first.
#[derive(Debug, Object)]
pub struct AccessAlerts {
    /// The start of the window.
    pub since: DateTime<Utc>,
    /// The alerts.
    pub items: Vec<AccessAlertView>,
}

/// Who accessed your data.
#[derive(Debug, Object)]
pub struct AccessReportEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Their name; absent for the system, or a person since erased.
    pub name: Option<String>,
    /// Their account.
    pub user_id: Option<Uuid>,
    /// `member`, `operator`, `system`, `anonymous` or `api_key` (an integration of
    /// the practice).
    pub actor_kind: String,
    /// The roles they acted with.
    pub roles: Vec<String>,
    /// The practice.
    pub organisation_id: Option<Uuid>,
    /// What they did.
    pub action: String,
    /// To what kind of record.
    pub record_kind: String,
    /// Why (purpose of use).
    pub purpose: String,
    /// `allowed` or `denied`.
    pub outcome: String,
}

/// A page of your access report, newest first.
#[derive(Debug, Object)]
pub struct AccessReportPage {
    /// The entries.
    pub items: Vec<AccessReportEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// The purpose of a disclosure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DisclosurePurpose {
    /// Required by law (subpoena, reporting duty).
    Legal,
    /// Treatment by another provider.
    Treatment,
    /// Payment.
    Payment,
    /// Health-care operations.
    Operations,
    /// Research.
    Research,
    /// Sharing with a named third party under an authorisation.
    ThirdPartySharing,
}

impl From<DisclosurePurpose> for Purpose {
    fn from(p: DisclosurePurpose) -> Self {
        match p {
            DisclosurePurpose::Legal => Self::Legal,
            DisclosurePurpose::Treatment => Self::Treatment,
            DisclosurePurpose::Payment => Self::Payment,
            DisclosurePurpose::Operations => Self::Operations,
            DisclosurePurpose::Research => Self::Research,
            DisclosurePurpose::ThirdPartySharing => Self::ThirdPartySharing,
        }
    }
}

/// A disclosure to record.
#[derive(Debug, Object)]
pub struct NewDisclosure {
    /// Who received the data.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub recipient: String,
    /// What data was disclosed.
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub description: String,
    /// The legal basis, e.g. `45 CFR 164.512(f)(1)`.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub legal_basis: String,
    /// The purpose.
    pub purpose: DisclosurePurpose,
    /// When the data was disclosed (not in the future).
    pub disclosed_at: DateTime<Utc>,
}

/// One entry of an accounting of disclosures.
#[derive(Debug, Object)]
pub struct DisclosureView {
    /// Who received the data.
    pub recipient: String,
    /// What data was disclosed.
    pub description: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The purpose.
    pub purpose: String,
    /// When it was disclosed.
    pub disclosed_at: DateTime<Utc>,
    /// The practice that disclosed.
    pub organisation_id: Uuid,
    /// Its audit event's chain.
    pub chain_id: Uuid,
    /// Its audit event's sequence number.
    pub sequence: u64,
}

impl From<DisclosureEntry> for DisclosureView {
    fn from(d: DisclosureEntry) -> Self {
        Self {
            recipient: d.detail.recipient,
            description: d.detail.description,
            legal_basis: d.detail.legal_basis,
            purpose: d.purpose,
            disclosed_at: d.detail.disclosed_at,
            organisation_id: d.organisation.as_uuid(),
            chain_id: d.chain,
            sequence: d.sequence,
        }
    }
}

/// The accounting of disclosures over the last six years, oldest first.
#[derive(Debug, Object)]
pub struct DisclosureReport {
    /// The disclosures.
    pub items: Vec<DisclosureView>,
}

/// Where a recorded disclosure sits in the log.
#[derive(Debug, Object)]
pub struct RecordedDisclosure {
    /// Its audit event's chain.
    pub chain_id: Uuid,
    /// Its audit event's sequence number.
    pub sequence: u64,
}

const CURSOR_PREFIX: &str = "e1";

/// A cursor naming its list (`list`) and the last event's position.
fn cursor_for(list: Uuid, at: &EventCursor) -> String {
    format!(
        "{CURSOR_PREFIX}{}{:016x}{}{:016x}",
        list.simple(),
        at.at.timestamp_micros(),
        at.chain.simple(),
        at.sequence
    )
}

fn parse_cursor(list: Uuid, cursor: Option<&str>) -> Result<Option<EventCursor>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ProblemKind::BadRequest,
            "The parameter `cursor` is malformed or belongs to another list.",
        )
    };
    let rest = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    if rest.len() != 32 + 16 + 32 + 16 || !rest.is_ascii() {
        return Err(bad());
    }
    let owner = Uuid::try_parse(&rest[..32]).map_err(|_| bad())?;
    let micros = u64::from_str_radix(&rest[32..48], 16).map_err(|_| bad())?;
    let chain = Uuid::try_parse(&rest[48..80]).map_err(|_| bad())?;
    let sequence = u64::from_str_radix(&rest[80..], 16).map_err(|_| bad())?;
    let at = i64::try_from(micros)
        .ok()
        .and_then(|m| Utc.timestamp_micros(m).single())
        .ok_or_else(bad)?;
    if owner != list {
        return Err(bad());
    }
    Ok(Some(EventCursor {
        at,
        chain,
        sequence,
    }))
}

fn checkpoint_view(cp: &audit::Checkpoint) -> CheckpointView {
    CheckpointView {
        id: cp.id,
        at: cp.at,
        writer_chain_id: cp.writer,
        key_id: cp.key_id.to_hex(),
        heads: cp
            .heads
            .iter()
            .map(|h| CheckpointHead {
                chain_id: h.chain,
                size: h.size,
                head: h.head.to_hex(),
                root: h.root.to_hex(),
                pruned_through: h.pruned_through,
            })
            .collect(),
        signed_bytes: STANDARD.encode(cp.signed_bytes()),
        signature: STANDARD.encode(&cp.signature),
    }
}

/// Roles that may read the accounting of disclosures for a client.
const DISCLOSURE_READERS: [Role; 1] = [Role::PrivacyOfficer];
/// Roles that may record a disclosure for a client.
const DISCLOSURE_WRITERS: [Role; 3] = [Role::PrivacyOfficer, Role::Provider, Role::OrgAdmin];

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Audit")]
impl AuditApi {
    /// Verify every chain and signed checkpoint of the audit log (auditors). Reports
    /// the first broken link, if any.
    #[oai(
        path = "/audit/verification",
        method = "get",
        operation_id = "verifyAuditLog"
    )]
    async fn verify(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<AuditVerification>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let report = self.state.audit().verify(&ctx).await?;
        Ok(Found::Ok(Json(AuditVerification {
            intact: report.is_intact(),
            chains: report.chains,
            events: report.events,
            pruned: report.pruned,
            pseudonymised: report.pseudonymised,
            checkpoints: report.checkpoints,
            first_break: report.first_break.map(|b| AuditBreak {
                chain_id: b.chain,
                sequence: b.sequence,
                checkpoint_id: b.checkpoint,
                problem: b.problem.as_str().to_owned(),
            }),
            trusted_key_ids: self
                .state
                .audit()
                .trusted_keys()
                .iter()
                .map(|k| k.id().to_hex())
                .collect(),
        })))
    }

    /// An RFC 6962 inclusion proof of one of your practice's events against the
    /// newest signed checkpoint (auditors). Checkable without the rest of the log.
    #[oai(
        path = "/audit/chains/:chain_id/events/:sequence/inclusion-proof",
        method = "get",
        operation_id = "getAuditInclusionProof"
    )]
    async fn inclusion_proof(
        &self,
        req: &Request,
        auth: SessionAuth,
        chain_id: Path<Uuid>,
        /// The event's sequence number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "9007199254740991")))]
        sequence: Path<u64>,
    ) -> Result<Found<AuditInclusionProof>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let proof: InclusionProof = self
            .state
            .audit()
            .inclusion_proof(&ctx, chain_id.0, sequence.0)
            .await?;
        let key = self
            .state
            .audit()
            .trusted_keys()
            .iter()
            .find(|k| k.id() == proof.checkpoint.key_id)
            .map(|k| STANDARD.encode(k.as_bytes()))
            .unwrap_or_default();
        Ok(Found::Ok(Json(AuditInclusionProof {
            event: (&proof.event).into(),
            encoding: STANDARD.encode(&proof.encoding),
            leaf_index: proof.leaf_index,
            tree_size: proof.tree_size,
            path: proof.path.iter().map(audit::Hash::to_hex).collect(),
            checkpoint: checkpoint_view(&proof.checkpoint),
            signing_public_key: key,
        })))
    }

    /// The practice's audit events, newest first (auditors, privacy officers).
    #[oai(
        path = "/organisations/:organisation_id/audit-events",
        method = "get",
        operation_id = "listAuditEvents"
    )]
    async fn list_events(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// Only the events of this request (the `X-Request-Id` of its response).
        request_id: Query<Option<Uuid>>,
        /// 1 to 500, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<AuditEventPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let after = parse_cursor(organisation_id.0, cursor.0.as_deref())?;
        let page = self
            .state
            .audit()
            .organisation_events(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                request_id.0,
                after,
                limit.0.unwrap_or(100),
            )
            .await?;
        Ok(Found::Ok(Json(AuditEventPage {
            items: page.events.iter().map(Into::into).collect(),
            next_cursor: page.next.map(|c| cursor_for(organisation_id.0, &c)),
        })))
    }

    /// Actors of the practice whose accesses in the last `hours` (default 24) look
    /// unusual: at least `max_denials` refusals, or the data of at least
    /// `max_subjects` different people (auditors, privacy officers).
    #[oai(
        path = "/organisations/:organisation_id/access-alerts",
        method = "get",
        operation_id = "listAccessAlerts"
    )]
    async fn access_alerts(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// The window, in hours: 1 to 720, default 24.
        #[oai(validator(minimum(value = "1"), maximum(value = "720")))]
        hours: Query<Option<u32>>,
        /// Denials that raise an alert: 1 to 10000, default 5.
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        max_denials: Query<Option<u64>>,
        /// Different people whose data raises an alert: 1 to 100000, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
        max_subjects: Query<Option<u64>>,
    ) -> Result<Found<AccessAlerts>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let defaults = audit::service::AlertThresholds::default();
        let since = ctx.at() - chrono::TimeDelta::hours(i64::from(hours.0.unwrap_or(24)));
        let alerts = self
            .state
            .audit()
            .access_alerts(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                since,
                audit::service::AlertThresholds {
                    denials: max_denials.0.unwrap_or(defaults.denials),
                    subjects: max_subjects.0.unwrap_or(defaults.subjects),
                },
            )
            .await?;
        Ok(Found::Ok(Json(AccessAlerts {
            since,
            items: alerts
                .into_iter()
                .map(|a| AccessAlertView {
                    kind: a.kind.as_str().to_owned(),
                    actor_kind: a.actor_kind.to_owned(),
                    actor_id: a.actor,
                    count: a.count,
                    threshold: a.threshold,
                    first_at: a.first_at,
                    last_at: a.last_at,
                })
                .collect(),
        })))
    }

    /// Who accessed your data, when, and why: people by name and role, newest
    /// first, over the last six years.
    #[oai(
        path = "/me/access-report",
        method = "get",
        operation_id = "getMyAccessReport"
    )]
    async fn access_report(
        &self,
        req: &Request,
        auth: SessionAuth,
        /// 1 to 500, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<AccessReportPage>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let (me, _) = self.state.identity().me(&ctx).await?;
        let list = me.subject.as_uuid();
        let after = parse_cursor(list, cursor.0.as_deref())?;
        let (entries, next) = self
            .state
            .audit()
            .access_report(&ctx, me.subject, after, limit.0.unwrap_or(100))
            .await?;
        let people: Vec<UserId> = entries.iter().filter_map(|e| e.actor).collect();
        let names = self.state.identity().names(&people).await?;
        let name_of = |id: Option<UserId>| {
            id.and_then(|id| names.iter().find(|(n, _)| *n == id))
                .map(|(_, name)| name.as_str().to_owned())
        };
        let items = entries
            .into_iter()
            .map(|e: AccessEntry| AccessReportEntry {
                at: e.at,
                name: name_of(e.actor),
                user_id: e.actor.map(|u| u.as_uuid()),
                actor_kind: e.actor_kind.to_owned(),
                roles: e.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                organisation_id: e.organisation.map(|o| o.as_uuid()),
                action: e.action,
                record_kind: e.resource_kind,
                purpose: e.purpose,
                outcome: if e.denied.is_some() {
                    "denied"
                } else {
                    "allowed"
                }
                .to_owned(),
            })
            .collect();
        Ok(Found::Ok(Json(AccessReportPage {
            items,
            next_cursor: next.map(|c| cursor_for(list, &c)),
        })))
    }

    /// The accounting of disclosures of your data (HIPAA §164.528): six years,
    /// oldest first.
    #[oai(
        path = "/me/disclosures",
        method = "get",
        operation_id = "listMyDisclosures"
    )]
    async fn my_disclosures(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<DisclosureReport>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let (me, _) = self.state.identity().me(&ctx).await?;
        let entries = self
            .state
            .audit()
            .disclosures(&ctx, me.subject, None)
            .await?;
        Ok(Found::Ok(Json(DisclosureReport {
            items: entries.into_iter().map(Into::into).collect(),
        })))
    }

    /// The accounting of disclosures of a client's data by this practice, six
    /// years, oldest first (privacy officer).
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/disclosures",
        method = "get",
        operation_id = "listClientDisclosures"
    )]
    async fn client_disclosures(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Found<DisclosureReport>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let subject = self
            .state
            .identity()
            .client_subject(
                &ctx,
                organisation,
                UserId::from_uuid(user_id.0),
                &DISCLOSURE_READERS,
            )
            .await?;
        let entries = self
            .state
            .audit()
            .disclosures(&ctx, subject, Some(organisation))
            .await?;
        Ok(Found::Ok(Json(DisclosureReport {
            items: entries.into_iter().map(Into::into).collect(),
        })))
    }

    /// Record a disclosure of a client's data outside the care relationship
    /// (privacy officer, provider, org_admin): recipient, description, purpose,
    /// legal basis and date. It enters the audit log and the client's accounting.
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/disclosures",
        method = "post",
        operation_id = "recordDisclosure"
    )]
    async fn record_disclosure(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<NewDisclosure>,
    ) -> Result<Created<RecordedDisclosure>, ApiError> {
        let b = body.0;
        let ctx = auth.context(&self.state, req, b.purpose.into());
        if b.disclosed_at > ctx.at() {
            return Err(ApiError::new(
                ProblemKind::Unprocessable,
                "`disclosed_at` is in the future: record a disclosure once it has happened.",
            ));
        }
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let subject = self
            .state
            .identity()
            .client_subject(
                &ctx,
                organisation,
                UserId::from_uuid(user_id.0),
                &DISCLOSURE_WRITERS,
            )
            .await?;
        let (chain, sequence) = self
            .state
            .audit()
            .record_disclosure(
                &ctx,
                organisation,
                subject,
                Disclosure {
                    recipient: b.recipient,
                    description: b.description,
                    legal_basis: b.legal_basis,
                    disclosed_at: b.disclosed_at,
                },
            )
            .await?;
        Ok(Created::Created(Json(RecordedDisclosure {
            chain_id: chain,
            sequence,
        })))
    }
}
