//! The one error type of the server. Every failure a client can cause maps to a reference error
//! code; everything else is INTERNAL_ERROR with the details kept in the server log.
use pm_shared::domain::{RuleError, RuleKind};
use pm_shared::proto;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A value or business rule: VALIDATION_ERROR (HTTP 400).
    #[error("Validation failed: {message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// A length or format check, or an undecodable frame: INVALID_MESSAGE (HTTP 400).
    #[error("Invalid message: {0}")]
    InvalidMessage(String),
    /// A unique value already taken (e.g. a project key): VALIDATION_ERROR on WS, 409 on REST.
    #[error("Validation failed: {message}")]
    Duplicate { field: String, message: String },
    #[error("Resource not found: {0}")]
    NotFound(String),
    #[error("Unauthorized: {0}")]
    Unauthorized(String),
    /// Optimistic concurrency: the caller's expected_version is stale.
    #[error("Conflict: resource was modified (current version: {current_version})")]
    VersionConflict { current_version: i64 },
    /// A state rule, e.g. a completed sprint is immutable.
    #[error("Conflict: {0}")]
    Conflict(String),
    #[error("Cannot delete: {0}")]
    DeleteBlocked(String),
    /// The client sends faster than its rate limit allows.
    #[error("Rate limit exceeded: {0}")]
    RateLimited(String),
    /// The request waited too long for its turn; nothing was written.
    #[error("Request timed out. Please try again.")]
    Timeout,
    /// The database could not grow (disk or quota full). Nothing of the request was written.
    #[error(
        "Storage full: the server could not save this change and wrote nothing. Try again later."
    )]
    StorageFull,
    /// The database cannot be reached (PostgreSQL is down or the network to it is): nothing
    /// was written; the server reconnects by itself.
    #[error("The database cannot be reached: nothing was written. Try again shortly.")]
    Unavailable,
    /// Anything the client did not cause. The message sent is generic; the cause is logged.
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        AppError::NotFound(format!("{what} {id} not found"))
    }

    /// The reference's error code string.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation { .. } | AppError::Duplicate { .. } => "VALIDATION_ERROR",
            AppError::InvalidMessage(_) => "INVALID_MESSAGE",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::VersionConflict { .. } | AppError::Conflict(_) => "CONFLICT",
            AppError::DeleteBlocked(_) => "DELETE_BLOCKED",
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::Timeout => "TIMEOUT",
            AppError::StorageFull => "STORAGE_FULL",
            AppError::Unavailable => "DATABASE_UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn field(&self) -> Option<String> {
        match self {
            AppError::Validation { field, .. } => field.clone(),
            AppError::Duplicate { field, .. } => Some(field.clone()),
            _ => None,
        }
    }

    pub fn to_proto(&self) -> proto::Error {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        proto::Error {
            code: self.code().to_string(),
            message: self.to_string(),
            field: self.field(),
        }
    }
}

impl From<RuleError> for AppError {
    fn from(e: RuleError) -> Self {
        match e.kind {
            RuleKind::Format => AppError::InvalidMessage(e.message),
            RuleKind::Value => AppError::Validation {
                field: Some(e.field.to_string()),
                message: e.message,
            },
        }
    }
}

/// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL: i32 = 13;

/// Whether a database error says the disk (or the database's size limit) is full.
pub fn is_storage_full(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE class 53, insufficient resources: disk_full.
        return pg.code() == PG_DISK_FULL;
    }
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == SQLITE_FULL)
}

/// PostgreSQL's SQLSTATE for a full disk.
const PG_DISK_FULL: &str = "53100";
/// PostgreSQL's SQLSTATE for text its encoding cannot hold: in UTF-8 databases, the NUL
/// character, which SQLite stores and PostgreSQL refuses in any text.
const PG_UNTRANSLATABLE: &str = "22021";

/// Whether a database error says the database could not be reached or went away (a
/// PostgreSQL server that stopped, a network cut), rather than refusing a statement.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08, connection exception; 57P01-57P03, the server shutting down or
        // starting up.
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| pg.code().starts_with("08") || pg.code().starts_with("57P")),
        _ => false,
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if is_storage_full(&e) {
            tracing::error!(error = %e, "the database is full");
            return AppError::StorageFull;
        }
        if is_unreachable(&e) {
            tracing::error!(error = %e, "the database cannot be reached");
            return AppError::Unavailable;
        }
        if let sqlx::Error::Database(db) = &e {
            if db.code().as_deref() == Some(PG_UNTRANSLATABLE) {
                return AppError::Validation {
                    field: None,
                    // Says what to fix without naming the database (an error never reads
                    // like a leaked SQL message).
                    message: "text may not contain the NUL character (U+0000): this server's \
                              database cannot store it"
                        .into(),
                };
            }
        }
        AppError::Internal(e.into())
    }
}

impl AppError {
    /// The database failed (as opposed to the request being refused): the connection that ran
    /// it may be in any state.
    pub fn is_database_failure(&self) -> bool {
        matches!(
            self,
            AppError::Internal(_) | AppError::StorageFull | AppError::Unavailable
        )
    }
}

impl From<prost::DecodeError> for AppError {
    fn from(e: prost::DecodeError) -> Self {
        AppError::Internal(e.into())
    }
}
