//! Who is asking: bearer tokens (JWT, HS256 with a shared secret or RS256 with a public key)
//! carrying the member id (`sub`) and a role.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Network staff: register members, assign coaches, schedule cafés and ideation days,
    /// publish charters, make doetanks public; sees informal doetanks.
    Facilitator,
    /// An innovator: works in doetanks, raises challenges, records lessons.
    Member,
    /// Reads the whole public log and exports it; changes nothing.
    Researcher,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Facilitator, Role::Member, Role::Researcher];

    /// The name used in tokens and in event metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Facilitator => "facilitator",
            Role::Member => "member",
            Role::Researcher => "researcher",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use facilitator, member or researcher"))
    }
}

/// How far ahead of this server's clock a token's issuer's may be.
const ISSUER_CLOCK_SKEW_SECONDS: i64 = 60;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// The person (or nobody) behind a request or a WebSocket connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Viewer {
    pub subject: Option<String>,
    pub member_id: Option<Uuid>,
    pub role: Option<Role>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Viewer {
    pub fn anonymous() -> Self {
        Viewer::default()
    }

    pub fn is_facilitator(&self) -> bool {
        self.role == Some(Role::Facilitator)
    }

    /// What event metadata records as the actor.
    pub fn actor(&self) -> String {
        match (&self.role, &self.subject) {
            (Some(role), Some(sub)) => format!("{}:{sub}", role.as_str()),
            _ => "anonymous".into(),
        }
    }

    pub fn require_signed_in(&self) -> Result<&Self, AppError> {
        match self.role {
            None => Err(AppError::Unauthenticated("sign in with a bearer token to change anything".into())),
            Some(Role::Researcher) => {
                Err(AppError::Forbidden("researchers read; they do not change the network".into()))
            }
            Some(_) => Ok(self),
        }
    }

    /// The log is for signed-in readers (researchers above all); anonymous visitors read the
    /// public read models only.
    pub fn require_reader(&self) -> Result<(), AppError> {
        match self.role {
            None => Err(AppError::Unauthenticated("the event log is for signed-in readers".into())),
            Some(_) => Ok(()),
        }
    }

    pub fn require_facilitator(&self) -> Result<(), AppError> {
        self.require_signed_in()?;
        if self.is_facilitator() {
            Ok(())
        } else {
            Err(AppError::Forbidden("only facilitators may do this".into()))
        }
    }

    /// The signed-in member themself, or a facilitator acting for them.
    pub fn require_self_or_facilitator(&self, member_id: Uuid) -> Result<(), AppError> {
        self.require_signed_in()?;
        if self.is_facilitator() || self.member_id == Some(member_id) {
            Ok(())
        } else {
            Err(AppError::Forbidden("members may do this only for themselves".into()))
        }
    }
}

#[derive(Clone)]
pub struct Auth {
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    algorithm: Algorithm,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({:?})", self.algorithm)
    }
}

impl Auth {
    /// HS256 with a shared secret: the server can mint tokens too.
    pub fn hs256(secret: &[u8]) -> Self {
        Auth {
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: DecodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        }
    }

    /// RS256 with a PEM public key: the server verifies tokens an identity provider minted.
    pub fn rs256(public_key_pem: &[u8]) -> Result<Self, AppError> {
        let decoding = DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| AppError::bad_input("jwtPublicKey", e.to_string()))?;
        Ok(Auth { encoding: None, decoding, algorithm: Algorithm::RS256 })
    }

    pub fn mint(&self, subject: &str, role: Role, ttl: chrono::Duration) -> Result<String, AppError> {
        if subject.trim().is_empty() {
            return Err(AppError::bad_input(
                "member",
                "a token names someone: the subject must not be empty",
            ));
        }
        if role == Role::Member && Uuid::parse_str(subject).is_err() {
            return Err(AppError::bad_input("member", "a member token's subject is the member id (a UUID)"));
        }
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| AppError::bad_input("jwt", "an RS256 server cannot mint tokens"))?;
        let now = Utc::now().timestamp();
        let claims = Claims { sub: subject.to_string(), role, iat: now, exp: now + ttl.num_seconds() };
        encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| AppError::bad_input("jwt", e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, AppError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        // A token that says it is good only from a later time is not good now (RFC 7519,
        // 4.1.5); until the thirty-first session `nbf` was not looked at.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            // In words a client can act on: jsonwebtoken's own are its enum's names
            // ("InvalidToken"), which told a playground user nothing until the thirty-second
            // session.
            AppError::Unauthenticated(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                    "the token is not valid: it is no JWT (three base64url parts joined by dots)".into()
                }
                ErrorKind::InvalidSignature => {
                    "the token is not valid: its signature is not this server's (another secret or key signed it)"
                        .into()
                }
                ErrorKind::InvalidAlgorithm => format!(
                    "the token is not valid: it is signed with another algorithm than this server's {:?}",
                    self.algorithm
                ),
                ErrorKind::MissingRequiredClaim(claim) => format!("the token is not valid: it has no `{claim}` claim"),
                ErrorKind::Json(e) => format!("the token is not valid: its claims do not fit ({e})"),
                _ => format!("the token is not valid: {e}"),
            })
        })?;
        let claims = data.claims;
        // Issued later than now, past a minute's difference between clocks: whoever minted it
        // has a clock that is wrong, or it was made to outlive its stated life.
        if claims.iat > Utc::now().timestamp() + ISSUER_CLOCK_SKEW_SECONDS {
            return Err(AppError::Unauthenticated("the token was issued in the future (iat)".into()));
        }
        if claims.sub.trim().is_empty() {
            return Err(AppError::Unauthenticated(
                "the token names no one: its subject (sub) is empty".into(),
            ));
        }
        let member_id = Uuid::parse_str(&claims.sub).ok();
        if claims.role == Role::Member && member_id.is_none() {
            return Err(AppError::Unauthenticated("a member token's subject must be a member id".into()));
        }
        Ok(Viewer {
            subject: Some(claims.sub),
            member_id,
            role: Some(claims.role),
            expires_at: Utc.timestamp_opt(claims.exp, 0).single(),
        })
    }

    /// Reads `Bearer <token>` (an absent header is an anonymous viewer).
    pub fn viewer_from_header(&self, header: Option<&str>) -> Result<Viewer, AppError> {
        match header {
            None => Ok(Viewer::anonymous()),
            Some(value) => match bearer_token(value) {
                Some(token) => self.verify(token),
                None => Err(AppError::Unauthenticated("use the Authorization: Bearer <token> scheme".into())),
            },
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in either case), trimmed.
pub fn bearer_token(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// The fewest bytes an HS256 secret may have: the hash's size (RFC 7518, 3.2, "MUST").
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses an HS256 secret shorter than [`MIN_SECRET_BYTES`]: anyone who guesses the secret
/// mints any token, a facilitator's too; until the thirty-first session an empty one
/// (`DOETANK_JWT_SECRET=` set to nothing, say) was taken. The refusal does not repeat it.
pub fn check_secret(text: &str) -> Result<(), String> {
    if text.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "an HS256 secret has at least {MIN_SECRET_BYTES} bytes (RFC 7518, 3.2); this one has {}: \
             make one with `openssl rand -base64 32`",
            text.len()
        ));
    }
    Ok(())
}

/// Parses durations like `30m`, `1h`, `7d`, `90s`: more than nothing (a token that dies as it
/// is minted is of no use) and at most a year (a longer one is a key that never dies). Until the
/// thirtieth session `0m` minted a dead token and `999999999999d` panicked.
pub fn parse_ttl(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let refused = || format!("{text:?} is not a duration from 1s to 366d, like 30m, 1h or 7d");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| refused())?;
    let ttl = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" | "" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(refused)?;
    if ttl <= chrono::Duration::zero() || ttl > chrono::Duration::days(366) {
        return Err(refused());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn a_token_lives_from_a_second_to_a_year() {
        assert_eq!(parse_ttl("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_ttl("2"), Ok(chrono::Duration::hours(2)));
        assert_eq!(parse_ttl("366d"), Ok(chrono::Duration::days(366)));
        for refused in ["0m", "367d", "999999999999d", "99999999999999999999s", "1w", "m", "-1h"] {
            assert!(parse_ttl(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_secret_is_as_long_as_the_hash() {
        assert!(super::check_secret("").is_err());
        assert!(super::check_secret("s3cret").is_err());
        assert!(super::check_secret(&"x".repeat(31)).is_err());
        assert!(super::check_secret(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn a_token_names_someone() {
        let auth = super::Auth::hs256(b"secret");
        let hour = chrono::Duration::hours(1);
        assert!(auth.mint(" ", super::Role::Facilitator, hour).is_err());
        let minted = auth.mint("staff", super::Role::Facilitator, hour).expect("minted");
        assert_eq!(auth.verify(&minted).expect("verified").subject.as_deref(), Some("staff"));
    }

    #[test]
    fn a_refused_token_is_told_why_in_words() {
        let auth = super::Auth::hs256(b"secret");
        let hour = chrono::Duration::hours(1);
        let other = super::Auth::hs256(b"another secret").mint("staff", super::Role::Facilitator, hour);
        let said = |token: &str| match auth.verify(token) {
            Err(crate::error::AppError::Unauthenticated(message)) => message,
            other => panic!("{token}: {other:?}"),
        };
        assert!(said("not-a-token").contains("it is no JWT"), "{}", said("not-a-token"));
        assert!(said(&other.expect("minted")).contains("its signature is not this server's"));
        assert!(!said("a.b.c").contains("Base64"), "{}", said("a.b.c"));
    }
}
