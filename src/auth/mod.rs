//! Authentication: password hashing, access tokens, refresh tokens, the
//! `AuthUser` and `RequireRole` extractors, failed-login back-off, the
//! audit trail, and the narrow states ([`Authn`], [`AuthState`]) that the
//! extractors and the account features take instead of the whole
//! application state.

pub mod api_key;
pub mod audit;
pub mod backoff;
pub mod extractor;
pub mod factor;
pub mod hashing;
pub mod jwt;
pub mod mfa;
pub mod notices;
pub mod reauth;
pub mod refresh;
pub mod roles;
pub mod signing;
pub mod state;
pub mod throttle;

pub use extractor::{AuthUser, EnrollingUser};
pub use roles::{AdminUser, RequireRole};
pub use state::{AuthState, Authn};
