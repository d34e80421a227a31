//! The review side of the store: accounts, sessions and sign-in throttling,
//! the review queue, claims, draft versions made by people (edits and
//! re-checks after corrections), approvals with their letters, and the
//! audit trail a caseworker or auditor reads.
//!
//! The SQL is written once for both databases (SQLite accepts `$1`
//! placeholders too) and instantiated for each adapter by `review_store!`;
//! only the transaction start, the audit append, timestamp encoding and
//! error mapping differ per dialect. Decisions that must happen once (an
//! approval, a claim) are compare-and-set updates, so double clicks and
//! concurrent requests cannot both win.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

/// What an account may do. Stored as its lower-case English id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reviews cases, corrects classifications, edits and decides drafts.
    Caseworker,
    /// Manages procedure schemas; may also take over a claimed case.
    Admin,
    /// Reads and exports the audit log; changes nothing.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "caseworker" => Some(Role::Caseworker),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    /// The German name shown in the UI.
    pub fn label_de(self) -> &'static str {
        match self {
            Role::Caseworker => "Sachbearbeitung",
            Role::Admin => "Administration",
            Role::Auditor => "Prüfung (Revision)",
        }
    }
}

/// A local account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub tenant: String,
    pub role: Role,
    /// Argon2id PHC string; never shown or logged.
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Browser sessions carry a CSRF token; API tokens are sent as bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Browser,
    Api,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Api => "api",
        }
    }
}

/// A session or API token as stored (the token itself only as its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub kind: SessionKind,
    pub csrf_token: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the session was last used before this request (idle timeout).
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// Which cases an account sees: those of its tenant. A case whose bundle
/// named no tenant belongs to the configured default tenant.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub default_tenant: &'a str,
}

/// Who a queue filter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Nobody,
    User(String),
}

/// Which review states a queue filter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Waiting for a decision (`pending_review`).
    Open,
    /// Decided: approved, rejected or closed as complete.
    Decided,
    All,
}

/// Sort keys of the review queue (whitelisted: they become SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueSort {
    Received,
    Updated,
    Procedure,
    Verdict,
    Assignee,
}

/// A review-queue query.
#[derive(Debug, Clone)]
pub struct QueueQuery {
    pub procedure: Option<String>,
    pub verdict: Option<String>,
    pub status: StatusFilter,
    pub assignee: AssigneeFilter,
    /// Only cases received at least this long ago.
    pub received_before: Option<DateTime<Utc>>,
    /// Only cases received at most this long ago.
    pub received_after: Option<DateTime<Utc>>,
    /// A case id, bundle id, or part of a name or address in the manifest
    /// (case-insensitive), as a caseworker searches for an applicant.
    pub search: Option<String>,
    pub sort: QueueSort,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

impl Default for QueueQuery {
    fn default() -> Self {
        QueueQuery {
            procedure: None,
            verdict: None,
            status: StatusFilter::Open,
            assignee: AssigneeFilter::Anyone,
            received_before: None,
            received_after: None,
            search: None,
            sort: QueueSort::Received,
            descending: false,
            limit: 50,
            offset: 0,
        }
    }
}

/// One line of the review queue.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueRow {
    pub case_id: String,
    pub procedure: String,
    pub tenant: Option<String>,
    pub verdict: String,
    pub review_status: String,
    pub assignee: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub draft_id: Option<i64>,
    pub draft_version: Option<i64>,
    pub draft_kind: Option<String>,
    /// The applicant's name from the newest bundle (read after the page).
    #[sqlx(skip)]
    pub applicant: Option<String>,
}

/// A page of the review queue with the number of all matching cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub total: i64,
}

/// A case's own row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CaseRecord {
    pub case_id: String,
    pub procedure: String,
    pub tenant: Option<String>,
    pub verdict: String,
    pub review_status: String,
    pub schema_version: String,
    pub assignee: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One draft version with who made and who decided it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DraftRecord {
    pub draft_id: i64,
    pub bundle_id: String,
    pub version: i64,
    pub kind: String,
    /// The editable text (the letter body).
    pub text: String,
    /// The structured draft (`domain::draft::Draft`).
    pub body: Value,
    /// The check report the draft was made from.
    pub report: Option<Value>,
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
}

/// A bundle of a case.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct BundleRecord {
    pub bundle_id: String,
    pub received_at: DateTime<Utc>,
    pub verdict: String,
    pub schema_version: String,
}

/// An uploaded document of a case (metadata only).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DocumentRecord {
    pub bundle_id: String,
    pub document_id: String,
    pub filename: String,
    pub media_type: String,
    pub sha256: String,
    pub declared_type: Option<String>,
    /// Whether the bytes are stored (for page images).
    pub has_content: bool,
}

/// A correction as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CorrectionRecord {
    pub id: i64,
    pub bundle_id: String,
    pub document_id: String,
    pub first_page: i64,
    pub doc_type: String,
    pub previous_type: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// An approved letter's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct LetterRecord {
    pub draft_id: i64,
    pub sha256: String,
    pub approved_by: String,
    pub created_at: DateTime<Utc>,
}

/// Everything the case view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDetail {
    pub case: CaseRecord,
    /// Newest first.
    pub drafts: Vec<DraftRecord>,
    /// In arrival order.
    pub bundles: Vec<BundleRecord>,
    /// In arrival order, manifest order within a bundle.
    pub documents: Vec<DocumentRecord>,
    /// In the order they were made (and are applied).
    pub corrections: Vec<CorrectionRecord>,
    pub letters: Vec<LetterRecord>,
}

impl CaseDetail {
    /// The draft waiting for review, if any.
    pub fn pending_draft(&self) -> Option<&DraftRecord> {
        self.drafts.iter().find(|d| d.status == super::common::PENDING_REVIEW)
    }
}

/// What a claim did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    Claimed,
    AlreadyYours,
    /// Someone else works on it; `take_over` was not asked for.
    HeldBy { username: String },
}

/// Why a new draft version is made by a person.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftChange {
    /// The caseworker edited the text; `diff` is the line diff.
    Edit { diff: String },
    /// A correction re-ran the check.
    Correction { bundle_id: String, document_id: String, first_page: u32, doc_type: String, previous_type: String },
}

/// A new draft version made by a person. It replaces the pending draft
/// `replaces` — only if that is still the pending one (compare-and-set).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDraftVersion {
    pub case_id: String,
    pub replaces: i64,
    pub actor: String,
    pub kind: String,
    pub text: String,
    pub body: Value,
    pub report: Value,
    /// The re-checked bundle verdict (unchanged for an edit).
    pub verdict: String,
    pub schema_version: String,
    pub change: DraftChange,
}

/// How a draft is decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Approve a letter; the rendered PDF and its hash are stored with it.
    Approve { pdf: Vec<u8>, sha256: String },
    /// Reject, with the reason the caseworker gave.
    Reject { reason: String },
    /// Close a complete (or clarified) case as „vollständig“.
    CloseComplete,
}

impl Decision {
    fn draft_status(&self) -> &'static str {
        match self {
            Decision::Approve { .. } | Decision::CloseComplete => "approved",
            Decision::Reject { .. } => "rejected",
        }
    }

    fn case_status(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approved",
            Decision::Reject { .. } => "rejected",
            Decision::CloseComplete => "closed_complete",
        }
    }

    fn audit_action(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "draft_approved",
            Decision::Reject { .. } => "draft_rejected",
            Decision::CloseComplete => "case_closed_complete",
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "letter.approved",
            Decision::Reject { .. } => "draft.rejected",
            Decision::CloseComplete => "case.closed_complete",
        }
    }
}

/// What happened to a decision or an edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// Done now, by this request.
    Done { draft_id: i64 },
    /// The draft was decided before (a double click, or a colleague): nothing changed.
    AlreadyDecided { status: String },
    /// The draft is no longer the current one (edited or superseded meanwhile): nothing changed.
    Stale { current_draft_id: Option<i64> },
    /// The case is claimed by someone else: nothing changed.
    NotAssignee { assignee: Option<String> },
}

/// An audit entry as read back (with its attachments' text, if kept).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub bundle_id: Option<String>,
    pub schema_version: Option<String>,
    pub detail: Value,
    pub hash: String,
}

/// Sign-in throttling state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Capability: the review side of the store (see the module doc).
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Creates an account; an existing username is a `Conflict`.
    async fn add_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Sets a new password hash and ends the account's sessions.
    async fn set_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Disables or enables an account; disabling ends its sessions.
    async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), StoreError>;

    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The live session of a token hash (not expired, account enabled), and
    /// marks it seen now.
    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// The throttling state of a sign-in key (account or client address).
    async fn throttle_state(&self, key: &str) -> Result<ThrottleState, StoreError>;
    /// Counts a failed sign-in: failures within `window` of the first one
    /// add up; at `max_failures` the key is locked for `lock_for`, doubling
    /// with every further failure.
    async fn register_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        max_failures: i64,
        lock_for: chrono::Duration,
    ) -> Result<ThrottleState, StoreError>;
    async fn clear_failures(&self, key: &str) -> Result<(), StoreError>;

    async fn review_queue(&self, scope: Scope<'_>, query: &QueueQuery) -> Result<QueuePage, StoreError>;
    /// A case of the scope's tenant; `None` for unknown cases and for other
    /// tenants' cases alike (which must not learn that the case exists).
    async fn case_detail(&self, scope: Scope<'_>, case_id: &str) -> Result<Option<CaseDetail>, StoreError>;
    /// The corrections of a case in the order they were made (and are
    /// applied). Not scoped: the worker re-checks late bundles with them.
    async fn case_corrections(&self, case_id: &str) -> Result<Vec<CorrectionRecord>, StoreError>;
    async fn claim_case(
        &self,
        scope: Scope<'_>,
        case_id: &str,
        username: &str,
        take_over: bool,
    ) -> Result<ClaimOutcome, StoreError>;
    async fn release_case(&self, scope: Scope<'_>, case_id: &str, username: &str) -> Result<bool, StoreError>;
    /// Stores a new draft version made by a person, superseding the pending
    /// draft `replaces` only if it is still pending and the actor holds the
    /// claim. A correction is recorded with it in the same transaction.
    async fn save_draft_version(&self, scope: Scope<'_>, version: &NewDraftVersion) -> Result<DecisionOutcome, StoreError>;
    /// Decides the pending draft `draft_id` once: approve (with the letter),
    /// reject, or close as complete; writes the audit entry and the outbox
    /// event in the same transaction.
    async fn decide(
        &self,
        scope: Scope<'_>,
        case_id: &str,
        draft_id: i64,
        actor: &str,
        decision: &Decision,
    ) -> Result<DecisionOutcome, StoreError>;
    /// The approved letter of a draft of this case.
    async fn letter_pdf(&self, scope: Scope<'_>, case_id: &str, draft_id: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The bytes of an upload of this case.
    async fn document_content(&self, scope: Scope<'_>, case_id: &str, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The audit entries of a case, oldest first, and the attachments they
    /// refer to (by hash) that are still kept.
    async fn case_audit(&self, scope: Scope<'_>, case_id: &str) -> Result<(Vec<AuditRecord>, Vec<(String, String)>), StoreError>;
    /// Appends an entry that concerns no recorded bundle (sign-ins, exports,
    /// claims); `attachment` is kept beside the chain and referred to by hash.
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        case_id: Option<&str>,
        detail: Value,
        attachment: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// The SHA-256 (hex) of a text, as audit entries refer to attachments.
pub fn attachment_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Rows as read; turned into `User` with a parsed role.
#[derive(sqlx::FromRow)]
struct UserRow {
    username: String,
    display_name: String,
    tenant: String,
    role: String,
    password_hash: String,
    disabled: bool,
    created_at: DateTime<Utc>,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        let role = Role::parse(&self.role).ok_or_else(|| StoreError::Other(format!("unknown role {:?}", self.role)))?;
        Ok(User {
            username: self.username,
            display_name: self.display_name,
            tenant: self.tenant,
            role,
            password_hash: self.password_hash,
            disabled: self.disabled,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    kind: String,
    csrf_token: String,
    label: Option<String>,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    username: String,
    display_name: String,
    tenant: String,
    role: String,
    password_hash: String,
    disabled: bool,
    user_created_at: DateTime<Utc>,
}

impl SessionRow {
    fn into_session(self) -> Result<Session, StoreError> {
        let user = UserRow {
            username: self.username,
            display_name: self.display_name,
            tenant: self.tenant,
            role: self.role,
            password_hash: self.password_hash,
            disabled: self.disabled,
            created_at: self.user_created_at,
        }
        .into_user()?;
        Ok(Session {
            token_hash: self.token_hash,
            kind: if self.kind == "api" { SessionKind::Api } else { SessionKind::Browser },
            csrf_token: self.csrf_token,
            label: self.label,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            user,
        })
    }
}

/// The `ORDER BY` of a queue query. Only whitelisted columns reach SQL.
fn order_by(query: &QueueQuery) -> String {
    let dir = if query.descending { "DESC" } else { "ASC" };
    let key = match query.sort {
        QueueSort::Received => "c.received_at",
        QueueSort::Updated => "c.updated_at",
        QueueSort::Procedure => "c.procedure",
        QueueSort::Verdict => "c.verdict",
        QueueSort::Assignee => "c.assignee",
    };
    format!("ORDER BY {key} {dir}, c.case_id {dir}")
}

/// A value bound into a queue query.
enum QueueParam {
    Text(String),
    Time(DateTime<Utc>),
}

/// The `WHERE` clause of a queue query with only the filters in use, and
/// its parameters in placeholder order. Built per query rather than with
/// `$n IS NULL OR …` so that PostgreSQL plans each shape with its indexes
/// (the queue stays fast with many cases). Only fixed fragments reach SQL.
fn queue_filter(scope: Scope<'_>, q: &QueueQuery) -> (String, Vec<QueueParam>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let next = |p: QueueParam, params: &mut Vec<QueueParam>| {
        params.push(p);
        format!("${}", params.len())
    };
    let t = next(QueueParam::Text(scope.tenant.to_string()), &mut params);
    conditions.push(if scope.tenant == scope.default_tenant { format!("(c.tenant = {t} OR c.tenant IS NULL)") } else { format!("c.tenant = {t}") });
    if let Some(p) = &q.procedure {
        conditions.push(format!("c.procedure = {}", next(QueueParam::Text(p.clone()), &mut params)));
    }
    if let Some(v) = &q.verdict {
        conditions.push(format!("c.verdict = {}", next(QueueParam::Text(v.clone()), &mut params)));
    }
    match q.status {
        StatusFilter::Open => conditions.push("c.review_status = 'pending_review'".into()),
        StatusFilter::Decided => conditions.push("c.review_status IN ('approved', 'rejected', 'closed_complete')".into()),
        StatusFilter::All => {}
    }
    match &q.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Nobody => conditions.push("c.assignee IS NULL".into()),
        AssigneeFilter::User(u) => conditions.push(format!("c.assignee = {}", next(QueueParam::Text(u.clone()), &mut params))),
    }
    if let Some(t) = q.received_before {
        conditions.push(format!("c.received_at <= {}", next(QueueParam::Time(t), &mut params)));
    }
    if let Some(t) = q.received_after {
        conditions.push(format!("c.received_at >= {}", next(QueueParam::Time(t), &mut params)));
    }
    if let Some(term) = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let exact = next(QueueParam::Text(term.to_string()), &mut params);
        // LIKE wildcards in the term are literal; the manifest is searched
        // as text, which covers names and addresses in every procedure.
        let escaped: String = term.to_lowercase().chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
        let like = next(QueueParam::Text(format!("%{escaped}%")), &mut params);
        conditions.push(format!(
            "(c.case_id = {exact} OR EXISTS (SELECT 1 FROM bundles s WHERE s.case_id = c.case_id
                AND (s.bundle_id = {exact} OR LOWER(CAST(s.manifest AS TEXT)) LIKE {like} ESCAPE '\\')))"
        ));
    }
    (format!("WHERE {}", conditions.join(" AND ")), params)
}

/// "Given Family" from a stored manifest's applicant, control characters removed.
fn applicant_name(manifest: &Value) -> Option<String> {
    let a = manifest.get("applicant")?;
    let part = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let name = crate::domain::draft::clean(&format!("{} {}", part("given_name"), part("family_name")));
    (!name.is_empty()).then_some(name)
}

/// The audit detail of a decision: ids, versions and hashes, no personal data.
fn decision_detail(case_id: &str, draft_id: i64, version: i64, decision: &Decision, documents: &[(String, String)]) -> Value {
    let docs: Vec<Value> = documents.iter().map(|(id, sha)| serde_json::json!({"document_id": id, "sha256": sha})).collect();
    let mut detail = serde_json::json!({
        "case_id": case_id,
        "draft_id": draft_id,
        "draft_version": version,
        "documents": docs,
    });
    match decision {
        Decision::Approve { sha256, .. } => detail["letter_sha256"] = Value::String(sha256.clone()),
        Decision::Reject { reason } => detail["reason_sha256"] = Value::String(attachment_hash(reason)),
        Decision::CloseComplete => {}
    }
    detail
}

/// Implements `ReviewStore` for one adapter. `$begin` starts a write
/// transaction, `$append` appends to the audit chain inside it, `$ts`
/// encodes a timestamp for binding, `$map_err` classifies errors.
macro_rules! review_store {
    ($store:ty, conn = $conn:ty, begin = $begin:literal, append = $append:path, ts = $ts:path, map_err = $map_err:path) => {
        impl $store {
            /// Keeps an audit attachment (once per content).
            async fn insert_attachment(conn: &mut $conn, text: &str, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO audit_attachments (sha256, content, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(attachment_hash(text))
                .bind(text)
                .bind($ts(at))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// The draft of a case waiting for review, if any.
            async fn pending_draft_id(conn: &mut $conn, case_id: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::query_scalar("SELECT draft_id FROM drafts WHERE case_id = $1 AND status = 'pending_review'")
                    .bind(case_id)
                    .fetch_optional(&mut *conn)
                    .await
            }

            /// Writes an outbox event in the caller's transaction.
            async fn insert_event(conn: &mut $conn, event: &super::common::NewEvent, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
                sqlx::query("INSERT INTO outbox (event_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&event.event_id)
                    .bind(event.event_type)
                    .bind(&event.payload)
                    .bind($ts(at))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl $crate::store::review::ReviewStore for $store {
            async fn add_user(&self, user: &User) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO users (username, display_name, tenant, role, password_hash, disabled, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&user.username)
                .bind(&user.display_name)
                .bind(&user.tenant)
                .bind(user.role.as_str())
                .bind(&user.password_hash)
                .bind(user.disabled)
                .bind($ts(user.created_at))
                .execute(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(())
            }

            async fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(
                    "SELECT username, display_name, tenant, role, password_hash, disabled, created_at
                       FROM users WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err($map_err)?;
                row.map(UserRow::into_user).transpose()
            }

            async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                let rows: Vec<UserRow> = sqlx::query_as(
                    "SELECT username, display_name, tenant, role, password_hash, disabled, created_at
                       FROM users ORDER BY tenant, username",
                )
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                rows.into_iter().map(UserRow::into_user).collect()
            }

            async fn set_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let n = sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                    .bind(username)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("user {username}")));
                }
                sqlx::query("DELETE FROM sessions WHERE username = $1").bind(username).execute(&mut *tx).await.map_err($map_err)?;
                tx.commit().await.map_err($map_err)
            }

            async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let n = sqlx::query("UPDATE users SET disabled = $2 WHERE username = $1")
                    .bind(username)
                    .bind(disabled)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("user {username}")));
                }
                if disabled {
                    sqlx::query("DELETE FROM sessions WHERE username = $1").bind(username).execute(&mut *tx).await.map_err($map_err)?;
                }
                tx.commit().await.map_err($map_err)
            }

            async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, username, kind, csrf_token, label, created_at, last_seen_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
                )
                .bind(&s.token_hash)
                .bind(&s.user.username)
                .bind(s.kind.as_str())
                .bind(&s.csrf_token)
                .bind(&s.label)
                .bind($ts(s.created_at))
                .bind($ts(s.expires_at))
                .execute(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(())
            }

            async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
                let row: Option<SessionRow> = sqlx::query_as(
                    "SELECT s.token_hash, s.kind, s.csrf_token, s.label, s.created_at, s.last_seen_at, s.expires_at,
                            u.username, u.display_name, u.tenant, u.role, u.password_hash, u.disabled,
                            u.created_at AS user_created_at
                       FROM sessions s JOIN users u ON u.username = s.username
                      WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled",
                )
                .bind(token_hash)
                .bind($ts(now))
                .fetch_optional(&self.pool)
                .await
                .map_err($map_err)?;
                let Some(row) = row else { return Ok(None) };
                // Best effort: a failed touch must not fail the request.
                let _ = sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind($ts(now))
                    .execute(&self.pool)
                    .await;
                row.into_session().map(Some)
            }

            async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await.map_err($map_err)?;
                Ok(())
            }

            async fn throttle_state(&self, key: &str) -> Result<ThrottleState, StoreError> {
                let row: Option<(i64, Option<DateTime<Utc>>)> =
                    sqlx::query_as("SELECT failures, locked_until FROM login_throttle WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($map_err)?;
                Ok(row.map(|(failures, locked_until)| ThrottleState { failures, locked_until }).unwrap_or(ThrottleState { failures: 0, locked_until: None }))
            }

            async fn register_failure(
                &self,
                key: &str,
                now: DateTime<Utc>,
                window: chrono::Duration,
                max_failures: i64,
                lock_for: chrono::Duration,
            ) -> Result<ThrottleState, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let row: Option<(i64, DateTime<Utc>)> =
                    sqlx::query_as("SELECT failures, window_start FROM login_throttle WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($map_err)?;
                let (failures, window_start) = match row {
                    Some((f, start)) if now - start <= window => (f + 1, start),
                    _ => (1, now),
                };
                let locked_until = (failures >= max_failures).then(|| {
                    let extra = u32::try_from((failures - max_failures).min(10)).unwrap_or(10);
                    now + lock_for * 2i32.pow(extra)
                });
                sqlx::query(
                    "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key) DO UPDATE SET failures = $2, window_start = $3, locked_until = $4",
                )
                .bind(key)
                .bind(failures)
                .bind($ts(window_start))
                .bind(locked_until.map($ts))
                .execute(&mut *tx)
                .await
                .map_err($map_err)?;
                tx.commit().await.map_err($map_err)?;
                Ok(ThrottleState { failures, locked_until })
            }

            async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&self.pool).await.map_err($map_err)?;
                Ok(())
            }

            async fn review_queue(&self, scope: Scope<'_>, q: &QueueQuery) -> Result<QueuePage, StoreError> {
                let (filter, params) = queue_filter(scope, q);
                let n = params.len();
                // The page is cut from `cases` first and only its rows are
                // joined with their pending draft (at most one per case, a
                // unique index): joining first made PostgreSQL hash-join every
                // pending draft of the store (28 ms against 5 ms with 10 000).
                let order = order_by(q);
                let select = format!(
                    "SELECT c.case_id, c.procedure, c.tenant, c.verdict, c.review_status, c.assignee,
                            c.received_at, c.updated_at,
                            d.draft_id, d.version AS draft_version, d.kind AS draft_kind
                       FROM (SELECT * FROM cases c {filter} {order} LIMIT ${} OFFSET ${}) c
                       LEFT JOIN drafts d ON d.case_id = c.case_id AND d.status = 'pending_review'
                      {order}",
                    n + 1,
                    n + 2
                );
                let mut rows_query = sqlx::query_as::<_, QueueRow>(sqlx::AssertSqlSafe(select));
                let count = format!("SELECT COUNT(*) FROM cases c {filter}");
                let mut count_query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count));
                for p in &params {
                    (rows_query, count_query) = match p {
                        QueueParam::Text(t) => (rows_query.bind(t.clone()), count_query.bind(t.clone())),
                        QueueParam::Time(at) => (rows_query.bind($ts(*at)), count_query.bind($ts(*at))),
                    };
                }
                let mut rows = rows_query.bind(q.limit).bind(q.offset).fetch_all(&self.pool).await.map_err($map_err)?;
                let total = count_query.fetch_one(&self.pool).await.map_err($map_err)?;
                if !rows.is_empty() {
                    // The applicants' names: one query for the whole page.
                    let marks: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT case_id, manifest FROM bundles WHERE case_id IN ({}) ORDER BY received_at, recorded_at, bundle_id",
                        marks.join(", ")
                    );
                    let mut names = sqlx::query_as::<_, (String, Value)>(sqlx::AssertSqlSafe(sql));
                    for r in &rows {
                        names = names.bind(r.case_id.clone());
                    }
                    let manifests = names.fetch_all(&self.pool).await.map_err($map_err)?;
                    for r in &mut rows {
                        r.applicant = manifests.iter().rev().find(|(c, _)| *c == r.case_id).and_then(|(_, m)| applicant_name(m));
                    }
                }
                Ok(QueuePage { rows, total })
            }

            async fn case_detail(&self, scope: Scope<'_>, case_id: &str) -> Result<Option<CaseDetail>, StoreError> {
                let case: Option<CaseRecord> = sqlx::query_as(
                    "SELECT case_id, procedure, tenant, verdict, review_status, schema_version, assignee,
                            claimed_at, received_at, created_at, updated_at
                       FROM cases WHERE case_id = $1 AND COALESCE(tenant, $2) = $3",
                )
                .bind(case_id)
                .bind(scope.default_tenant)
                .bind(scope.tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err($map_err)?;
                let Some(case) = case else { return Ok(None) };
                let drafts: Vec<DraftRecord> = sqlx::query_as(
                    "SELECT draft_id, bundle_id, version, kind, text, body, report, status, created_by, created_at,
                            decided_by, decided_at, decision_note
                       FROM drafts WHERE case_id = $1 ORDER BY version DESC",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                let bundles: Vec<BundleRecord> = sqlx::query_as(
                    "SELECT bundle_id, received_at, verdict, schema_version FROM bundles
                      WHERE case_id = $1 ORDER BY received_at, recorded_at, bundle_id",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                let documents: Vec<DocumentRecord> = sqlx::query_as(
                    "SELECT d.bundle_id, d.document_id, d.filename, d.media_type, d.sha256, d.declared_type,
                            EXISTS (SELECT 1 FROM document_contents x WHERE x.sha256 = d.sha256) AS has_content
                       FROM documents d JOIN bundles b ON b.bundle_id = d.bundle_id
                      WHERE b.case_id = $1
                      ORDER BY b.received_at, b.recorded_at, b.bundle_id, d.position",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                let corrections = self.case_corrections(case_id).await?;
                let letters: Vec<LetterRecord> = sqlx::query_as(
                    "SELECT draft_id, sha256, approved_by, created_at FROM letters WHERE case_id = $1 ORDER BY draft_id",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(Some(CaseDetail { case, drafts, bundles, documents, corrections, letters }))
            }

            async fn case_corrections(&self, case_id: &str) -> Result<Vec<CorrectionRecord>, StoreError> {
                sqlx::query_as(
                    "SELECT id, bundle_id, document_id, first_page, doc_type, previous_type, username, created_at
                       FROM corrections WHERE case_id = $1 ORDER BY id",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)
            }

            async fn claim_case(&self, scope: Scope<'_>, case_id: &str, username: &str, take_over: bool) -> Result<ClaimOutcome, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let current: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT assignee FROM cases WHERE case_id = $1 AND COALESCE(tenant, $2) = $3")
                        .bind(case_id)
                        .bind(scope.default_tenant)
                        .bind(scope.tenant)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($map_err)?;
                let Some((current,)) = current else {
                    return Err(StoreError::NotFound(format!("case {case_id}")));
                };
                if current.as_deref() == Some(username) {
                    return Ok(ClaimOutcome::AlreadyYours);
                }
                if let Some(holder) = current.as_ref().filter(|_| !take_over) {
                    return Ok(ClaimOutcome::HeldBy { username: holder.clone() });
                }
                let now = super::common::now();
                // Compare-and-set on the assignee seen above: of two claims at
                // once, one updates the row and the other finds it changed.
                let n = sqlx::query(
                    "UPDATE cases SET assignee = $2, claimed_at = $3
                      WHERE case_id = $1 AND (assignee IS NULL AND CAST($4 AS TEXT) IS NULL OR assignee = $4)",
                )
                .bind(case_id)
                .bind(username)
                .bind($ts(now))
                .bind(&current)
                .execute(&mut *tx)
                .await
                .map_err($map_err)?
                .rows_affected();
                if n == 0 {
                    let holder: Option<String> = sqlx::query_scalar("SELECT assignee FROM cases WHERE case_id = $1")
                        .bind(case_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err($map_err)?;
                    return Ok(ClaimOutcome::HeldBy { username: holder.unwrap_or_default() });
                }
                let detail = serde_json::json!({"case_id": case_id, "taken_over_from": current});
                $append(&mut tx, super::common::audit_entry(username, "case_claimed", Some(case_id), None, None, detail, now))
                    .await
                    .map_err($map_err)?;
                tx.commit().await.map_err($map_err)?;
                Ok(ClaimOutcome::Claimed)
            }

            async fn release_case(&self, scope: Scope<'_>, case_id: &str, username: &str) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let n = sqlx::query(
                    "UPDATE cases SET assignee = NULL, claimed_at = NULL
                      WHERE case_id = $1 AND assignee = $2 AND COALESCE(tenant, $3) = $4",
                )
                .bind(case_id)
                .bind(username)
                .bind(scope.default_tenant)
                .bind(scope.tenant)
                .execute(&mut *tx)
                .await
                .map_err($map_err)?
                .rows_affected();
                if n == 1 {
                    let now = super::common::now();
                    $append(&mut tx, super::common::audit_entry(username, "case_released", Some(case_id), None, None, serde_json::json!({"case_id": case_id}), now))
                        .await
                        .map_err($map_err)?;
                }
                tx.commit().await.map_err($map_err)?;
                Ok(n == 1)
            }

            async fn save_draft_version(&self, scope: Scope<'_>, v: &NewDraftVersion) -> Result<DecisionOutcome, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let case: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT assignee FROM cases WHERE case_id = $1 AND COALESCE(tenant, $2) = $3")
                        .bind(&v.case_id)
                        .bind(scope.default_tenant)
                        .bind(scope.tenant)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($map_err)?;
                let Some((assignee,)) = case else {
                    return Err(StoreError::NotFound(format!("case {}", v.case_id)));
                };
                if assignee.as_deref() != Some(v.actor.as_str()) {
                    return Ok(DecisionOutcome::NotAssignee { assignee });
                }
                let replaced: Option<(String, i64)> = sqlx::query_as(
                    "UPDATE drafts SET status = 'superseded'
                      WHERE draft_id = $1 AND case_id = $2 AND status = 'pending_review'
                      RETURNING bundle_id, version",
                )
                .bind(v.replaces)
                .bind(&v.case_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err($map_err)?;
                let Some((bundle_id, old_version)) = replaced else {
                    let current = Self::pending_draft_id(&mut tx, &v.case_id).await.map_err($map_err)?;
                    return Ok(DecisionOutcome::Stale { current_draft_id: current });
                };
                let now = super::common::now();
                let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM drafts WHERE case_id = $1")
                    .bind(&v.case_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($map_err)?;
                let draft_id: i64 = sqlx::query_scalar(
                    "INSERT INTO drafts (case_id, bundle_id, version, kind, text, body, report, status, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending_review', $8, $9)
                     RETURNING draft_id",
                )
                .bind(&v.case_id)
                .bind(&bundle_id)
                .bind(version)
                .bind(&v.kind)
                .bind(&v.text)
                .bind(&v.body)
                .bind(&v.report)
                .bind(&v.actor)
                .bind($ts(now))
                .fetch_one(&mut *tx)
                .await
                .map_err($map_err)?;
                sqlx::query("UPDATE cases SET verdict = $2, schema_version = $3, review_status = 'pending_review', updated_at = $4 WHERE case_id = $1")
                    .bind(&v.case_id)
                    .bind(&v.verdict)
                    .bind(&v.schema_version)
                    .bind($ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err($map_err)?;
                let (action, mut detail, attachment) = match &v.change {
                    DraftChange::Edit { diff } => (
                        "draft_edited",
                        serde_json::json!({"diff_sha256": attachment_hash(diff), "diff_lines": diff.lines().count()}),
                        Some(diff.as_str()),
                    ),
                    DraftChange::Correction { bundle_id: corrected_bundle, document_id, first_page, doc_type, previous_type } => {
                        sqlx::query(
                            "INSERT INTO corrections (case_id, bundle_id, document_id, first_page, doc_type, previous_type, username, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&v.case_id)
                        .bind(corrected_bundle)
                        .bind(document_id)
                        .bind(i64::from(*first_page))
                        .bind(doc_type)
                        .bind(previous_type)
                        .bind(&v.actor)
                        .bind($ts(now))
                        .execute(&mut *tx)
                        .await
                        .map_err($map_err)?;
                        (
                            "segment_corrected",
                            serde_json::json!({"bundle_id": corrected_bundle, "document_id": document_id, "first_page": first_page, "doc_type": doc_type, "previous_type": previous_type, "verdict": v.verdict}),
                            None,
                        )
                    }
                };
                detail["case_id"] = Value::String(v.case_id.clone());
                detail["draft_id"] = Value::from(draft_id);
                detail["draft_version"] = Value::from(version);
                detail["replaced_draft_id"] = Value::from(v.replaces);
                detail["replaced_version"] = Value::from(old_version);
                if let Some(text) = attachment {
                    Self::insert_attachment(&mut tx, text, now).await.map_err($map_err)?;
                }
                $append(&mut tx, super::common::audit_entry(&v.actor, action, Some(&v.case_id), None, Some(&v.schema_version), detail, now))
                    .await
                    .map_err($map_err)?;
                let event = super::common::draft_ready_event(&v.case_id, &bundle_id, draft_id, version, &v.kind);
                Self::insert_event(&mut tx, &event, now).await.map_err($map_err)?;
                tx.commit().await.map_err($map_err)?;
                Ok(DecisionOutcome::Done { draft_id })
            }

            async fn decide(&self, scope: Scope<'_>, case_id: &str, draft_id: i64, actor: &str, decision: &Decision) -> Result<DecisionOutcome, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let case: Option<(Option<String>, String, Option<String>, String)> = sqlx::query_as(
                    "SELECT assignee, procedure, tenant, schema_version FROM cases WHERE case_id = $1 AND COALESCE(tenant, $2) = $3",
                )
                .bind(case_id)
                .bind(scope.default_tenant)
                .bind(scope.tenant)
                .fetch_optional(&mut *tx)
                .await
                .map_err($map_err)?;
                let Some((assignee, procedure, tenant, schema_version)) = case else {
                    return Err(StoreError::NotFound(format!("case {case_id}")));
                };
                if assignee.as_deref() != Some(actor) {
                    return Ok(DecisionOutcome::NotAssignee { assignee });
                }
                let now = super::common::now();
                let note = match decision {
                    Decision::Reject { reason } => Some(reason.as_str()),
                    _ => None,
                };
                // The compare-and-set: only the pending draft can be decided,
                // and only once. A second click finds it decided already.
                let decided: Option<(i64, String)> = sqlx::query_as(
                    "UPDATE drafts SET status = $3, decided_by = $4, decided_at = $5, decision_note = $6
                      WHERE draft_id = $1 AND case_id = $2 AND status = 'pending_review'
                      RETURNING version, kind",
                )
                .bind(draft_id)
                .bind(case_id)
                .bind(decision.draft_status())
                .bind(actor)
                .bind($ts(now))
                .bind(note)
                .fetch_optional(&mut *tx)
                .await
                .map_err($map_err)?;
                let Some((version, kind)) = decided else {
                    let status: Option<String> = sqlx::query_scalar("SELECT status FROM drafts WHERE draft_id = $1 AND case_id = $2")
                        .bind(draft_id)
                        .bind(case_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($map_err)?;
                    return Ok(match status.as_deref() {
                        Some("approved") | Some("rejected") => DecisionOutcome::AlreadyDecided { status: status.unwrap_or_default() },
                        _ => DecisionOutcome::Stale { current_draft_id: Self::pending_draft_id(&mut tx, case_id).await.map_err($map_err)? },
                    });
                };
                // Dropping the transaction undoes the update above.
                match decision {
                    Decision::Approve { .. } if kind != "letter" => {
                        return Err(StoreError::Conflict(format!("draft {draft_id} is a {kind}, not a letter to send")));
                    }
                    Decision::CloseComplete if kind == "letter" => {
                        return Err(StoreError::Conflict(format!("draft {draft_id} requests documents; it cannot close the case as complete")));
                    }
                    _ => {}
                }
                if let Decision::Approve { pdf, sha256 } = decision {
                    sqlx::query(
                        "INSERT INTO letters (draft_id, case_id, pdf, sha256, approved_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(draft_id)
                    .bind(case_id)
                    .bind(pdf)
                    .bind(sha256)
                    .bind(actor)
                    .bind($ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err($map_err)?;
                }
                if let Decision::Reject { reason } = decision {
                    Self::insert_attachment(&mut tx, reason, now).await.map_err($map_err)?;
                }
                sqlx::query("UPDATE cases SET review_status = $2, updated_at = $3 WHERE case_id = $1")
                    .bind(case_id)
                    .bind(decision.case_status())
                    .bind($ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err($map_err)?;
                let documents: Vec<(String, String)> = sqlx::query_as(
                    "SELECT d.bundle_id || '/' || d.document_id, d.sha256 FROM documents d JOIN bundles b ON b.bundle_id = d.bundle_id
                      WHERE b.case_id = $1 ORDER BY b.received_at, b.recorded_at, b.bundle_id, d.position",
                )
                .bind(case_id)
                .fetch_all(&mut *tx)
                .await
                .map_err($map_err)?;
                let detail = decision_detail(case_id, draft_id, version, decision, &documents);
                $append(&mut tx, super::common::audit_entry(actor, decision.audit_action(), Some(case_id), None, Some(&schema_version), detail, now))
                    .await
                    .map_err($map_err)?;
                let event = super::common::decision_event(decision.event_type(), case_id, &procedure, tenant.as_deref(), draft_id, version, match decision {
                    Decision::Approve { sha256, .. } => Some(sha256.as_str()),
                    _ => None,
                }, now);
                Self::insert_event(&mut tx, &event, now).await.map_err($map_err)?;
                tx.commit().await.map_err($map_err)?;
                Ok(DecisionOutcome::Done { draft_id })
            }

            async fn letter_pdf(&self, scope: Scope<'_>, case_id: &str, draft_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
                sqlx::query_scalar(
                    "SELECT l.pdf FROM letters l JOIN cases c ON c.case_id = l.case_id
                      WHERE l.draft_id = $1 AND l.case_id = $2 AND COALESCE(c.tenant, $3) = $4",
                )
                .bind(draft_id)
                .bind(case_id)
                .bind(scope.default_tenant)
                .bind(scope.tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err($map_err)
            }

            async fn document_content(&self, scope: Scope<'_>, case_id: &str, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
                sqlx::query_scalar(
                    "SELECT x.content FROM document_contents x
                      WHERE x.sha256 = $1 AND EXISTS (
                            SELECT 1 FROM documents d JOIN bundles b ON b.bundle_id = d.bundle_id
                              JOIN cases c ON c.case_id = b.case_id
                             WHERE d.sha256 = x.sha256 AND c.case_id = $2 AND COALESCE(c.tenant, $3) = $4)",
                )
                .bind(sha256)
                .bind(case_id)
                .bind(scope.default_tenant)
                .bind(scope.tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err($map_err)
            }

            async fn case_audit(&self, scope: Scope<'_>, case_id: &str) -> Result<(Vec<AuditRecord>, Vec<(String, String)>), StoreError> {
                let visible: Option<String> = sqlx::query_scalar("SELECT case_id FROM cases WHERE case_id = $1 AND COALESCE(tenant, $2) = $3")
                    .bind(case_id)
                    .bind(scope.default_tenant)
                    .bind(scope.tenant)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_err)?;
                if visible.is_none() {
                    return Err(StoreError::NotFound(format!("case {case_id}")));
                }
                let entries: Vec<AuditRecord> = sqlx::query_as(
                    "SELECT id, at, actor, action, case_id, bundle_id, schema_version, detail, hash
                       FROM audit_log WHERE case_id = $1 ORDER BY id",
                )
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err($map_err)?;
                let mut attachments = Vec::new();
                for e in &entries {
                    for key in ["diff_sha256", "reason_sha256"] {
                        if let Some(h) = e.detail.get(key).and_then(Value::as_str) {
                            let text: Option<String> = sqlx::query_scalar("SELECT content FROM audit_attachments WHERE sha256 = $1")
                                .bind(h)
                                .fetch_optional(&self.pool)
                                .await
                                .map_err($map_err)?;
                            if let Some(t) = text {
                                attachments.push((h.to_string(), t));
                            }
                        }
                    }
                }
                Ok((entries, attachments))
            }

            async fn append_audit(&self, actor: &str, action: &str, case_id: Option<&str>, detail: Value, attachment: Option<&str>) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err($map_err)?;
                let now = super::common::now();
                if let Some(text) = attachment {
                    Self::insert_attachment(&mut tx, text, now).await.map_err($map_err)?;
                }
                $append(&mut tx, super::common::audit_entry(actor, action, case_id, None, None, detail, now)).await.map_err($map_err)?;
                tx.commit().await.map_err($map_err)
            }
        }
    };
}

/// PostgreSQL binds timestamps as they are.
fn pg_ts(at: DateTime<Utc>) -> DateTime<Utc> {
    at
}

review_store!(
    super::sqlite::SqliteStore,
    conn = sqlx::SqliteConnection,
    begin = "BEGIN IMMEDIATE",
    append = super::sqlite::append_audit,
    ts = super::sqlite::ts,
    map_err = super::sqlite::map_err
);
review_store!(
    super::postgres::PostgresStore,
    conn = sqlx::PgConnection,
    begin = "BEGIN",
    append = super::postgres::append_audit,
    ts = pg_ts,
    map_err = super::postgres::map_err
);
