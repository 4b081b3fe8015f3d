//! One module per endpoint group.

pub mod admin;
pub mod admin_sso;
pub mod factors;
pub mod identities;
pub mod invite;
pub mod logout;
pub mod meta;
pub mod otp;
pub mod reauthenticate;
pub mod recover;
pub mod resend;
pub mod signup;
pub mod sso;
pub mod token;
pub mod user;
pub mod verify;

use serde::Deserialize;

/// `?redirect_to=` of email flows.
#[derive(Debug, Default, Deserialize)]
pub struct RedirectQuery {
    /// Where the email link should lead.
    pub redirect_to: Option<String>,
}
