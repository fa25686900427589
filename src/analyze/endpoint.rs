//! Endpoint identity of a request: service + method + route.
//!
//! The route is `http.route` when the instrumentation sets it (Django's form gets a leading `/`
//! and loses its regex anchors); otherwise a path from the span name or `url.path` /
//! `http.target` with numeric, UUID and hex id segments folded to `{id}`, so that endpoints do
//! not explode in number.

use std::sync::Arc;

use crate::model::Span;

/// Identity of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct EndpointKey {
    /// `service.name` of the root span's resource.
    pub service: Arc<str>,
    /// HTTP method, or empty for non-HTTP requests (jobs, consumers).
    pub method: Arc<str>,
    /// Route template, normalized path, or the root span's name.
    pub route: Arc<str>,
}

impl EndpointKey {
    /// `METHOD route`, or just the route for non-HTTP requests.
    pub fn label(&self) -> String {
        if self.method.is_empty() { self.route.to_string() } else { format!("{} {}", self.method, self.route) }
    }
}

/// Longest route kept; longer ones are cut (they are almost always unnormalized junk).
const MAX_ROUTE_CHARS: usize = 200;

const HTTP_METHODS: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"];

/// The endpoint a request root belongs to.
pub fn endpoint_of(root: &Span) -> EndpointKey {
    let http = root.http.as_deref();
    let name_parts = root.name.split_once(' ');
    let name_method = match name_parts {
        Some((m, _)) if HTTP_METHODS.contains(&m) => Some(m),
        None if HTTP_METHODS.contains(&&*root.name) => Some(&*root.name),
        _ => None,
    };
    let method = http.and_then(|h| h.method.as_deref()).or(name_method).unwrap_or_default().to_ascii_uppercase();

    let route = if let Some(route) = http.and_then(|h| h.route.as_deref()) {
        normalize_route_template(route)
    } else if let Some((_, path)) = name_parts.filter(|(m, p)| HTTP_METHODS.contains(m) && p.starts_with('/')) {
        normalize_path(path)
    } else if let Some(target) = http.and_then(|h| h.target.as_deref()) {
        normalize_path(target)
    } else if let Some(url) = http.and_then(|h| h.url.as_deref()) {
        normalize_path(path_of_url(url))
    } else {
        root.name.to_string()
    };
    EndpointKey {
        service: Arc::clone(&root.service.name),
        method: Arc::from(method),
        route: Arc::from(truncate(route)),
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ROUTE_CHARS {
        let mut cut = MAX_ROUTE_CHARS;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `http.route` as shown: a leading `/`, no regex anchors (`^books/$` -> `/books/`).
pub fn normalize_route_template(route: &str) -> String {
    let route = route.trim();
    let route = route.strip_prefix('^').unwrap_or(route);
    let route = route.strip_suffix('$').unwrap_or(route);
    if route.starts_with('/') { route.to_string() } else { format!("/{route}") }
}

fn path_of_url(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// A concrete path with its id segments folded to `{id}` and its query string cut off.
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_id_segment(segment) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    if out.is_empty() { "/".to_string() } else { out }
}

fn is_id_segment(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let all_digits = segment.bytes().all(|b| b.is_ascii_digit());
    let is_uuid = segment.len() == 36
        && segment.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let is_hex_id = segment.len() >= 8
        && segment.bytes().all(|b| b.is_ascii_hexdigit())
        && segment.bytes().any(|b| b.is_ascii_digit());
    all_digits || is_uuid || is_hex_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpAttrs, Service, SpanId, SpanKind, TraceId};
    use rstest::rstest;

    fn root(name: &str, http: Option<HttpAttrs>) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            parent_is_remote: false,
            service: Arc::new(Service { name: Arc::from("shop"), language: None }),
            name: name.into(),
            kind: SpanKind::Server,
            start_ns: 0,
            end_ns: 1,
            is_error: false,
            http: http.map(Box::new),
            db: None,
            extra: None,
        }
    }

    #[rstest]
    #[case("/users/123", "/users/{id}")]
    #[case("/users/123/orders/9?page=2", "/users/{id}/orders/{id}")]
    #[case("/u/9f1c6c1e-8a55-4b57-9d7c-3b4b1d6c0e11", "/u/{id}")]
    #[case("/blobs/deadbeef42", "/blobs/{id}")]
    #[case("/about", "/about")]
    #[case("/v1/items", "/v1/items")]
    #[case("/cafebabe", "/cafebabe")]
    #[case("", "/")]
    fn paths_fold_id_segments(#[case] path: &str, #[case] expected: &str) {
        assert_eq!(normalize_path(path), expected);
    }

    #[rstest]
    #[case("books/", "/books/")]
    #[case("books/<int:pk>/", "/books/<int:pk>/")]
    #[case("^traced/$", "/traced/")]
    #[case("/users/:id", "/users/:id")]
    fn route_templates_get_a_leading_slash(#[case] route: &str, #[case] expected: &str) {
        assert_eq!(normalize_route_template(route), expected);
    }

    #[test]
    fn route_attribute_wins() {
        let key = endpoint_of(&root(
            "GET books/",
            Some(HttpAttrs {
                method: Some("GET".into()),
                route: Some("books/".into()),
                target: Some("/books/".into()),
                ..Default::default()
            }),
        ));
        assert_eq!((&*key.method, &*key.route), ("GET", "/books/"));
        assert_eq!(key.label(), "GET /books/");
    }

    #[test]
    fn without_route_the_target_is_normalized() {
        let key = endpoint_of(&root(
            "GET",
            Some(HttpAttrs { method: Some("get".into()), target: Some("/users/42?x=1".into()), ..Default::default() }),
        ));
        assert_eq!((&*key.method, &*key.route), ("GET", "/users/{id}"));
    }

    #[test]
    fn span_name_with_path_is_used_when_no_attributes() {
        let key = endpoint_of(&root("POST /orders/77", None));
        assert_eq!((&*key.method, &*key.route), ("POST", "/orders/{id}"));
    }

    #[test]
    fn non_http_root_uses_its_name() {
        let key = endpoint_of(&root("process_invoices", None));
        assert_eq!((&*key.method, &*key.route), ("", "process_invoices"));
        assert_eq!(key.label(), "process_invoices");
    }
}
