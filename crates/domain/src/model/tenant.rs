//! Tenants (organisations, "labs"), their slugs, and the memberships that give users a role in
//! them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{TenantId, UserId};

/// Why a tenant slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantSlugError {
    /// Fewer than 3 or more than 63 characters.
    #[error("must be 3 to 63 characters long")]
    Length,
    /// A character outside `[a-z0-9-]`.
    #[error("may contain only lower-case letters, digits and '-'")]
    Characters,
    /// It reads as a UUID, which would be taken for a tenant id.
    #[error("must not look like a UUID")]
    LooksLikeId,
}

/// A tenant's URL-safe unique name: `[a-z0-9-]{3,63}`.
///
/// Upper-case input is refused rather than folded, so that what a caller sent is what is
/// stored and matched. Anything that parses as a UUID (hyphenated or plain hex) is refused
/// too, since [`TenantRef::parse`] would take it for a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Validates a slug (surrounding white space is trimmed).
    ///
    /// # Errors
    /// [`TenantSlugError`] says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, TenantSlugError> {
        let slug = raw.trim();
        if !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(TenantSlugError::Characters);
        }
        if !(3..=63).contains(&slug.len()) {
            return Err(TenantSlugError::Length);
        }
        if uuid::Uuid::parse_str(slug).is_ok() {
            return Err(TenantSlugError::LooksLikeId);
        }
        Ok(Self(slug.to_owned()))
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a caller names a tenant: by id or by slug (login's `tenant`, `?tenant=` filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    /// By id.
    Id(TenantId),
    /// By slug.
    Slug(TenantSlug),
}

impl TenantRef {
    /// A UUID is taken as an id, anything else must be a valid slug.
    ///
    /// # Errors
    /// [`TenantSlugError`] when it is neither.
    pub fn parse(raw: &str) -> Result<Self, TenantSlugError> {
        match raw.trim().parse::<TenantId>() {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => TenantSlug::parse(raw).map(Self::Slug),
        }
    }
}

/// A user's role inside one tenant, from the most to the least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantRole {
    /// Manages the tenant and all its members.
    Admin,
    /// Manages members with role `member` or `viewer`.
    Moderator,
    /// Reads the tenant and its member list.
    Member,
    /// Reads the tenant only.
    Viewer,
}

impl TenantRole {
    /// Every role, most powerful first.
    pub const ALL: [Self; 4] = [Self::Admin, Self::Moderator, Self::Member, Self::Viewer];

    /// The role's wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Moderator => "moderator",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// The role's rank: higher is more powerful (viewer 0 .. admin 3).
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::Admin => 3,
            Self::Moderator => 2,
            Self::Member => 1,
            Self::Viewer => 0,
        }
    }

    /// The more powerful of the two.
    #[must_use]
    pub const fn max_rank(self, other: Self) -> Self {
        if self.rank() >= other.rank() {
            self
        } else {
            other
        }
    }

    /// Whether this role is at least as powerful as `other`.
    #[must_use]
    pub const fn at_least(self, other: Self) -> bool {
        self.rank() >= other.rank()
    }
}

impl fmt::Display for TenantRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown tenant role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: admin, moderator, member, viewer")]
pub struct TenantRoleError;

impl FromStr for TenantRole {
    type Err = TenantRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(TenantRoleError)
    }
}

/// Optimistic-concurrency version of a tenant row; exposed as its ETag.
pub type TenantVersion = i64;

/// A tenant: one organisation served by this UMS.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Identifier (UUID v7).
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique URL-safe name.
    pub slug: TenantSlug,
    /// Free text, possibly empty.
    pub description: String,
    /// The organisation's internet domain, possibly empty.
    pub domain: String,
    /// Free-form settings (a JSON object).
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Whether members may log in scoped to it.
    pub is_active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: TenantVersion,
}

/// A user's membership of a tenant: one role per (tenant, user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The member.
    pub user_id: UserId,
    /// Their role in it.
    pub role: TenantRole,
    /// When they joined.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words_of_3_to_63() {
        for good in ["abc", "lab-42", "a-b", &"x".repeat(63)] {
            assert!(TenantSlug::parse(good).is_ok(), "{good}");
        }
        assert_eq!(TenantSlug::parse("ab"), Err(TenantSlugError::Length));
        assert_eq!(
            TenantSlug::parse(&"x".repeat(64)),
            Err(TenantSlugError::Length)
        );
        for bad in ["Lab", "la_b", "lab 1", "läb", "lab/1", ""] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            TenantSlug::parse(" lab ").map(|s| s.0),
            Ok("lab".to_owned())
        );
    }

    #[test]
    fn tenant_refs_are_ids_or_slugs() {
        let id = "0192f0c1-2b3c-7d4e-8f50-617283940a1b";
        assert!(matches!(TenantRef::parse(id), Ok(TenantRef::Id(_))));
        assert!(matches!(TenantRef::parse("acme"), Ok(TenantRef::Slug(_))));
        assert!(TenantRef::parse("Not A Slug").is_err());
    }

    #[test]
    fn roles_round_trip_and_are_ranked() {
        for role in TenantRole::ALL {
            assert_eq!(role.as_str().parse::<TenantRole>(), Ok(role));
        }
        assert_eq!("owner".parse::<TenantRole>(), Err(TenantRoleError));
        let ranks: Vec<u8> = TenantRole::ALL.iter().map(|r| r.rank()).collect();
        assert_eq!(ranks, vec![3, 2, 1, 0]);
        assert!(TenantRole::Admin.at_least(TenantRole::Admin));
        assert!(!TenantRole::Viewer.at_least(TenantRole::Member));
    }
}
