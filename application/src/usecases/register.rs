//! Register: create a user with a policy-checked password and an optional E.164 phone.

use std::sync::Arc;

use domain::{NewPassword, PhoneNumber, User, UserId, Username};
use tracing::instrument;

use super::{Field, store_failures};
use crate::Ports;
use crate::ports::{
    Clock, HashError, IdGenerator, InsertUserError, PasswordHasher, UserRepository,
};

pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    pub phone: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("username already taken")]
    UsernameTaken,
    #[error("too many concurrent password hashes")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("registration failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RegisterError);

impl RegisterError {
    fn invalid(field: Field, err: impl std::fmt::Display) -> Self {
        RegisterError::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

pub struct Register {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register").finish_non_exhaustive()
    }
}

impl Register {
    pub fn new(ports: &Ports) -> Self {
        Self {
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
        }
    }

    /// # Errors
    /// See [`RegisterError`]. Validation happens before any work or store access.
    #[instrument(name = "register", skip_all, fields(username = %request.username))]
    pub async fn execute(&self, request: RegisterRequest) -> Result<User, RegisterError> {
        let username = Username::parse(&request.username)
            .map_err(|e| RegisterError::invalid(Field::Username, e))?;
        let password = NewPassword::parse(request.password)
            .map_err(|e| RegisterError::invalid(Field::Password, e))?;
        let phone = request
            .phone
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()
            .map_err(|e| RegisterError::invalid(Field::Phone, e))?;
        let password_hash = self
            .hasher
            .hash(password.as_input())
            .await
            .map_err(|e| match e {
                HashError::Overloaded => RegisterError::Overloaded,
                HashError::Unexpected(e) => RegisterError::Unexpected(e),
            })?;
        let user = User {
            id: UserId::from_uuid(self.ids.new_uuid()),
            username,
            password_hash,
            phone,
            created_at: self.clock.now(),
        };
        match self.users.insert(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "user registered");
                Ok(user)
            }
            Err(InsertUserError::UsernameTaken) => Err(RegisterError::UsernameTaken),
            Err(InsertUserError::Store(e)) => Err(e.into()),
        }
    }
}
