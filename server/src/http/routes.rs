//! The one route table: every path and method the server answers, read once
//! from poem-openapi's metadata of the API (`OpenApi::meta()`) plus the few
//! routes outside it. Metrics labels, `Allow` on a 405, the web app's
//! API-path test and the optional request bodies of the document all derive
//! from it, so a new operation needs no list kept by hand.

use std::sync::OnceLock;

use poem::http::Method;
use poem_openapi::registry::MetaOperation;
use poem_openapi::{ApiExtractor as _, OpenApi as _};

use super::Apis;
use super::security::RefreshCookieScheme;

/// Who answers under a route's first path segment when nothing matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The API's own namespace: an unknown path beside it is a 404 problem.
    Api,
    /// A page for people (the API reference, the web app).
    Page,
}

/// The routes outside the OpenAPI document (mounted in `http::app`).
const EXTRA_ROUTES: [(&str, Method, Kind); 4] = [
    ("/openapi.json", Method::GET, Kind::Api),
    ("/metrics", Method::GET, Kind::Api),
    ("/docs", Method::GET, Kind::Page),
    // The web app's entry; its other paths are its own (the fallback).
    ("/", Method::GET, Kind::Page),
];

/// The label of every path that matches no route.
pub const OTHER: &str = "other";

#[derive(Debug)]
pub struct Route {
    /// The path template, as in the OpenAPI document (`/auth/sessions/{id}`).
    pub template: String,
    /// Split at `/`; `None` for a parameter.
    segments: Vec<Option<String>>,
    pub kind: Kind,
    /// Sorted, without duplicates.
    pub methods: Vec<Method>,
    /// The `Allow` header of a 405 (RFC 9110 §10.2.1), e.g. `DELETE, GET`.
    pub allow: String,
    /// The methods whose request body may be omitted.
    optional_bodies: Vec<Method>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let mut wanted = path.split('/');
        self.segments
            .iter()
            .all(|segment| match (segment, wanted.next()) {
                (_, None) => false,
                (None, Some(value)) => !value.is_empty(),
                (Some(literal), Some(value)) => literal == value,
            })
            && wanted.next().is_none()
    }
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// The first path segments of the API's routes (`auth`, `.well-known`, ...).
    api_namespaces: Vec<String>,
}

/// The table, built on first use and kept for the life of the process.
pub fn table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(RouteTable::build)
}

/// The request body of an operation that takes its refresh token from the
/// cookie may be omitted: a browser's refresh or logout is a bare POST.
fn body_is_optional(operation: &MetaOperation) -> bool {
    let cookie = RefreshCookieScheme::security_schemes();
    operation.request.is_some()
        && operation
            .security
            .iter()
            .any(|alternative| alternative.keys().any(|name| cookie.contains(name)))
}

impl RouteTable {
    fn build() -> Self {
        let mut routes: Vec<Route> = Vec::new();
        let mut add = |template: &str, method: Method, kind: Kind, optional_body: bool| {
            let index = match routes.iter().position(|r| r.template == template) {
                Some(index) => index,
                None => {
                    routes.push(Route {
                        template: template.to_owned(),
                        segments: template
                            .split('/')
                            .map(|s| {
                                (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned())
                            })
                            .collect(),
                        kind,
                        methods: Vec::new(),
                        allow: String::new(),
                        optional_bodies: Vec::new(),
                    });
                    routes.len() - 1
                }
            };
            let route = &mut routes[index];
            if optional_body {
                route.optional_bodies.push(method.clone());
            }
            route.methods.push(method);
        };
        for api in Apis::meta() {
            for path in api.paths {
                for operation in &path.operations {
                    add(
                        &path.path,
                        operation.method.clone(),
                        Kind::Api,
                        body_is_optional(operation),
                    );
                }
            }
        }
        for (template, method, kind) in EXTRA_ROUTES {
            add(template, method, kind, false);
        }
        for route in &mut routes {
            route.methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            route.methods.dedup();
            route.allow = route
                .methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
        }
        let mut api_namespaces: Vec<String> = routes
            .iter()
            .filter(|r| r.kind == Kind::Api)
            .filter_map(|r| first_segment(&r.template))
            .map(str::to_owned)
            .collect();
        api_namespaces.sort();
        api_namespaces.dedup();
        Self {
            routes,
            api_namespaces,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route a request path matches, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|route| route.matches(path))
    }

    /// The metrics label of a path: its route's template, so that ids never
    /// become labels, or [`OTHER`].
    pub fn label(&self, path: &str) -> &str {
        self.find(path).map_or(OTHER, |route| &route.template)
    }

    /// The `Allow` value for a path, `None` when no route matches it.
    pub fn allow(&self, path: &str) -> Option<&str> {
        self.find(path).map(|route| route.allow.as_str())
    }

    /// True for paths in the API's namespaces (`/auth/...`, `/.well-known/...`,
    /// `/healthz`, ...): an unknown one is a 404 problem, never the web app.
    pub fn is_api(&self, path: &str) -> bool {
        first_segment(path).is_some_and(|first| self.api_namespaces.iter().any(|n| n == first))
    }

    /// True when the operation `method` on `template` may omit its body.
    pub fn body_is_optional(&self, template: &str, method: &Method) -> bool {
        self.routes
            .iter()
            .any(|r| r.template == template && r.optional_bodies.contains(method))
    }
}

/// `auth` for `/auth/login`; `None` for `/` (or a path without a leading `/`).
fn first_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let first = rest.split('/').next().unwrap_or_default();
    (!first.is_empty()).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the published document, as (method, template).
    fn documented_operations() -> Vec<(Method, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(&crate::http::openapi_document()).unwrap();
        let mut operations = Vec::new();
        for (template, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                operations.push((method, template.clone()));
            }
        }
        operations
    }

    /// A concrete path for a template: every parameter gets a value.
    fn example_path(template: &str) -> String {
        template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "6a1f0e2d-0000-4000-8000-000000000000"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn the_table_covers_every_documented_operation_and_the_extra_routes() {
        let table = table();
        let operations = documented_operations();
        assert!(operations.len() >= 12, "{operations:?}");
        for (method, template) in &operations {
            let route = table.find(&example_path(template)).expect(template);
            assert_eq!(&route.template, template);
            assert!(route.methods.contains(method), "{method} {template}");
            assert_eq!(route.kind, Kind::Api, "{template}");
            assert!(table.is_api(&example_path(template)), "{template}");
        }
        for (template, method, _) in EXTRA_ROUTES {
            assert!(table.find(template).unwrap().methods.contains(&method));
        }
        let listed: usize = table.routes().iter().map(|r| r.methods.len()).sum();
        assert_eq!(listed, operations.len() + EXTRA_ROUTES.len());
    }

    #[test]
    fn metrics_labels_are_templates_and_never_carry_ids() {
        let table = table();
        for (_, template) in documented_operations() {
            let path = example_path(&template);
            assert_eq!(table.label(&path), template);
            assert!(!table.label(&path).contains("6a1f0e2d"), "{path}");
        }
        assert_eq!(
            table.label("/auth/sessions/6a1f0e2d"),
            "/auth/sessions/{id}"
        );
        assert_eq!(table.label("/auth/login"), "/auth/login");
        assert_eq!(table.label("/"), "/");
        for unknown in [
            "/anything/else",
            "/auth/sessions/6a1f0e2d/extra",
            "/auth/sessions/",
            "/auth/login/6a1f0e2d",
            "/assets/index-6a1f0e2d.js",
            "",
        ] {
            assert_eq!(table.label(unknown), OTHER, "{unknown}");
        }
    }

    #[test]
    fn api_namespaces_come_from_the_api_routes_and_leave_the_rest_to_the_web_app() {
        let table = table();
        for api in [
            "/auth",
            "/auth/",
            "/auth/unknown",
            "/.well-known/unknown",
            "/healthz",
            "/readyz",
            "/openapi.json",
            "/metrics",
        ] {
            assert!(table.is_api(api), "{api}");
        }
        for page in [
            "/",
            "/docs",
            "/sessions",
            "/login",
            "/assets/app.js",
            "/authx",
        ] {
            assert!(!table.is_api(page), "{page}");
        }
    }

    #[test]
    fn only_operations_that_read_the_refresh_cookie_may_omit_their_body() {
        let table = table();
        let optional: Vec<&str> = table
            .routes()
            .iter()
            .filter(|r| table.body_is_optional(&r.template, &Method::POST))
            .map(|r| r.template.as_str())
            .collect();
        assert_eq!(optional, ["/auth/refresh", "/auth/logout"]);
    }
}
