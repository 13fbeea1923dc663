//! Cookie mode: the refresh token in an `HttpOnly` cookie instead of the JSON body.
//!
//! The cookie is read from the raw `Cookie` header rather than declared as an OpenAPI
//! cookie parameter: generated clients (progenitor) refuse cookie parameters, and JSON
//! clients never send it.

use poem::Request;
use poem::http::header;

/// `__Secure-`: browsers accept the cookie only with `Secure` from a secure origin.
pub const NAME: &str = "__Secure-refresh_token";
/// Covers `/token/refresh` and `/token/revoke`, and nothing else: the cookie is never
/// sent with ordinary API calls.
pub const PATH: &str = "/token";
/// The header a cookie-authenticated request proves its origin with.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// `Set-Cookie` for a refresh token valid `max_age` seconds.
pub fn set(token: &str, max_age: i64) -> String {
    format!(
        "{NAME}={token}; HttpOnly; Secure; SameSite=Strict; Path={PATH}; Max-Age={}",
        max_age.max(0)
    )
}

/// `Set-Cookie` that deletes the cookie (same name, path and attributes).
pub fn clear() -> String {
    format!("{NAME}=; HttpOnly; Secure; SameSite=Strict; Path={PATH}; Max-Age=0")
}

/// The refresh token from the request's `Cookie` header(s), if there is a non-empty one.
pub fn read(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == NAME && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The `X-CSRF-Token` header, if present and readable.
pub fn csrf_header(req: &Request) -> Option<&str> {
    req.header(CSRF_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&str]) -> Request {
        let mut builder = Request::builder();
        for value in values {
            builder = builder.header(header::COOKIE, *value);
        }
        builder.finish()
    }

    #[test]
    fn set_and_clear_carry_every_attribute() {
        assert_eq!(
            set("abc.def", 604_800),
            "__Secure-refresh_token=abc.def; HttpOnly; Secure; SameSite=Strict; Path=/token; Max-Age=604800"
        );
        assert_eq!(
            clear(),
            "__Secure-refresh_token=; HttpOnly; Secure; SameSite=Strict; Path=/token; Max-Age=0"
        );
    }

    #[test]
    fn read_finds_the_cookie_among_others_and_headers() {
        assert_eq!(
            read(&with_cookies(&["a=1; __Secure-refresh_token=tok; b=2"])),
            Some("tok".into())
        );
        assert_eq!(
            read(&with_cookies(&["a=1", "__Secure-refresh_token=tok"])),
            Some("tok".into())
        );
        assert_eq!(read(&with_cookies(&["refresh_token=tok"])), None);
        assert_eq!(read(&with_cookies(&["__Secure-refresh_token="])), None);
        assert_eq!(read(&with_cookies(&[])), None);
    }
}
