//! Who may use the page: whoever holds the token `streams ui` printed, from a page served by
//! this server, reaching it by its loopback address.
//!
//! Every request is checked, in this order:
//! - `Host` must be `127.0.0.1:PORT` or `localhost:PORT`: a page of another site whose name an
//!   attacker points at 127.0.0.1 (DNS rebinding) sends its own name and is refused;
//! - `Origin`, when sent, must be this server (`http://127.0.0.1:PORT`, `http://localhost:PORT`):
//!   a foreign page's requests are refused even when the browser would send the cookie;
//! - the token: in the query of the first load (`?token=`; the answer sets a cookie and sends
//!   the browser on without it, so it does not stay in the address bar), then in the cookie or
//!   the `X-Streams-Token` header. Changes (`POST`) need the header: a cookie alone never
//!   changes anything.
//!
//! The token is 256 random bits from the operating system, compared in constant time.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use axum::middleware::Next;

/// The header a page's script sends the token in.
pub const TOKEN_HEADER: &str = "x-streams-token";

/// What the server needs to tell a request from the page from anything else.
#[derive(Clone, Debug)]
pub struct Gate {
    pub token: String,
    pub port: u16,
}

impl Gate {
    /// The cookie's name: one per port, so two `streams ui` servers (each on its own port, which
    /// cookies do not tell apart) do not overwrite each other's.
    pub fn cookie_name(&self) -> String {
        format!("streams_ui_{}", self.port)
    }

    fn hosts(&self) -> [String; 2] {
        [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ]
    }
}

/// A new token: 32 bytes from the operating system's generator, as hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in a time that does not depend on where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a request is refused, or `Ok(Some(token))` for a first load that gave its token in the
/// query (the answer then sets the cookie).
fn check(gate: &Gate, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Verdict {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header_str(header::HOST.as_str()) {
        Some(host) if gate.hosts().iter().any(|h| h == host) => {}
        _ => {
            return Verdict::Refused(
                StatusCode::FORBIDDEN,
                "refused: this server answers only to its loopback address (Host)",
            );
        }
    }
    if let Some(origin) = header_str(header::ORIGIN.as_str())
        && !gate.hosts().iter().any(|h| origin == format!("http://{h}"))
    {
        return Verdict::Refused(
            StatusCode::FORBIDDEN,
            "refused: requests from another site's page are not accepted (Origin)",
        );
    }
    // Fetch metadata, where the browser sends it: another site's request, whatever it claims.
    if header_str("sec-fetch-site").is_some_and(|s| s == "cross-site") {
        return Verdict::Refused(
            StatusCode::FORBIDDEN,
            "refused: requests from another site's page are not accepted",
        );
    }
    let from_header = header_str(TOKEN_HEADER);
    let from_query = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_string)
    });
    let cookie_name = gate.cookie_name();
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == cookie_name)
        .map(|(_, value)| value.to_string());
    let given = if *method == Method::GET || *method == Method::HEAD {
        from_header
            .map(str::to_string)
            .or_else(|| from_query.clone())
            .or(from_cookie)
    } else {
        from_header.map(str::to_string)
    };
    match given {
        None if *method != Method::GET && *method != Method::HEAD => Verdict::Refused(
            StatusCode::UNAUTHORIZED,
            "refused: a change needs the token in the X-Streams-Token header",
        ),
        None => Verdict::Refused(
            StatusCode::UNAUTHORIZED,
            "refused: open the address `streams ui` printed (it holds the token)",
        ),
        Some(token) if !same(&token, &gate.token) => Verdict::Refused(
            StatusCode::FORBIDDEN,
            "refused: wrong token; open the address `streams ui` printed",
        ),
        Some(_) if from_query.is_some() => Verdict::FirstLoad,
        Some(_) => Verdict::Allowed,
    }
}

enum Verdict {
    Allowed,
    /// The token came in the query: set the cookie and load the page again without it.
    FirstLoad,
    Refused(StatusCode, &'static str),
}

/// The middleware every route goes through.
pub async fn guard(
    axum::extract::State(gate): axum::extract::State<Gate>,
    request: Request<Body>,
    next: Next,
) -> Response<Body> {
    match check(&gate, request.method(), request.uri(), request.headers()) {
        Verdict::Allowed => {
            let mut response = next.run(request).await;
            secure_headers(response.headers_mut());
            response
        }
        Verdict::FirstLoad => {
            let path = request.uri().path().to_string();
            let mut response = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, path)
                .header(
                    header::SET_COOKIE,
                    format!(
                        "{}={}; Path=/; HttpOnly; SameSite=Strict",
                        gate.cookie_name(),
                        gate.token
                    ),
                )
                .body(Body::empty())
                .unwrap_or_default();
            secure_headers(response.headers_mut());
            response
        }
        Verdict::Refused(status, why) => {
            let mut response = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from(format!("{why}\n")))
                .unwrap_or_default();
            secure_headers(response.headers_mut());
            response
        }
    }
}

/// What every answer carries: nothing loads from elsewhere, nothing frames the page, nothing is
/// cached or sent on as a referrer (the first address holds the token).
fn secure_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "cache-control", "no-store");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate {
            token: "abc123".into(),
            port: 4000,
        }
    }

    fn verdict(method: Method, uri: &str, headers: &[(&str, &str)]) -> Result<bool, StatusCode> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match check(&gate(), &method, &uri.parse().unwrap(), &map) {
            Verdict::Allowed => Ok(false),
            Verdict::FirstLoad => Ok(true),
            Verdict::Refused(status, _) => Err(status),
        }
    }

    #[test]
    fn the_token_opens_the_page_and_nothing_else_does() {
        let host = ("host", "127.0.0.1:4000");
        assert_eq!(verdict(Method::GET, "/?token=abc123", &[host]), Ok(true));
        assert_eq!(
            verdict(
                Method::GET,
                "/",
                &[host, ("cookie", "a=b; streams_ui_4000=abc123")]
            ),
            Ok(false)
        );
        assert_eq!(
            verdict(Method::GET, "/", &[host]),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            verdict(Method::GET, "/?token=abc124", &[host]),
            Err(StatusCode::FORBIDDEN)
        );
        // Another server's cookie is not this one's.
        assert_eq!(
            verdict(
                Method::GET,
                "/",
                &[host, ("cookie", "streams_ui_4001=abc123")]
            ),
            Err(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn a_change_needs_the_header_not_the_cookie() {
        let host = ("host", "localhost:4000");
        assert_eq!(
            verdict(
                Method::POST,
                "/api/action",
                &[host, ("cookie", "streams_ui_4000=abc123")]
            ),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            verdict(
                Method::POST,
                "/api/action",
                &[
                    host,
                    ("x-streams-token", "abc123"),
                    ("origin", "http://localhost:4000")
                ]
            ),
            Ok(false)
        );
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused() {
        let token = ("x-streams-token", "abc123");
        assert_eq!(
            verdict(Method::GET, "/", &[("host", "evil.example:4000"), token]),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            verdict(Method::GET, "/", &[("host", "127.0.0.1:4001"), token]),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            verdict(
                Method::POST,
                "/api/action",
                &[
                    ("host", "127.0.0.1:4000"),
                    ("origin", "http://evil.example"),
                    token
                ]
            ),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            verdict(
                Method::GET,
                "/",
                &[
                    ("host", "127.0.0.1:4000"),
                    ("sec-fetch-site", "cross-site"),
                    token
                ]
            ),
            Err(StatusCode::FORBIDDEN)
        );
    }
}
