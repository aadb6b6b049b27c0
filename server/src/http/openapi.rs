//! The published OpenAPI document: poem-openapi's output, finished in the
//! few places its derive macros cannot express.

use poem::http::Method;
use serde_json::{Value, json};

/// Finishes the generated document:
/// - public operations say so with `security: []` instead of saying nothing;
/// - media types are plain `application/json` (the charset is implied by RFC 8259);
/// - refresh and logout accept an empty body (the cookie channel; the
///   route table says which operations read the cookie);
/// - a session's `user_agent` is required and nullable, as it is sent;
/// - request schemas state the rules the domain enforces.
pub fn finish(generated: &str) -> String {
    let mut doc: Value = serde_json::from_str(generated).expect("poem-openapi emits valid JSON");
    let routes = super::routes::table();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, operations) in paths.iter_mut() {
            let Some(operations) = operations.as_object_mut() else {
                continue;
            };
            for (method, operation) in operations.iter_mut() {
                if operation.get("security").is_none() {
                    operation["security"] = json!([]);
                }
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes());
                if method.is_ok_and(|m| routes.body_is_optional(path, &m))
                    && let Some(body) = operation.get_mut("requestBody")
                {
                    body["required"] = json!(false);
                }
            }
        }
    }
    normalize_media_types(&mut doc);
    constrain_request_bodies(&mut doc);
    // A session's user agent is always present, null when none was sent.
    let session = &mut doc["components"]["schemas"]["Session"];
    if let Some(required) = session["required"].as_array_mut()
        && !required.contains(&json!("user_agent"))
    {
        required.push(json!("user_agent"));
    }
    session["properties"]["user_agent"]["nullable"] = json!(true);
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// The request rules the domain enforces, stated in the schemas so that
/// generated clients and fuzzers know them: no unknown fields; optional
/// fields may be `null`
/// (the same as absent); a new password is 8..=128 characters (JSON Schema
/// counts code points, as the server does); an email has one `@` and a
/// domain of dot-separated labels, without spaces or control characters.
fn constrain_request_bodies(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for name in [
        "RegisterRequest",
        "LoginRequest",
        "RefreshRequest",
        "LogoutRequest",
    ] {
        let schema = &mut schemas[name];
        // Unknown fields are refused (a 422), so a misspelt field can never
        // silently fall back to a default or to the cookie.
        schema["additionalProperties"] = json!(false);
        let required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object_mut() {
            for (field, property) in properties.iter_mut() {
                if !required.contains(&json!(field)) {
                    property["nullable"] = json!(true);
                }
            }
        }
    }
    let register = &mut schemas["RegisterRequest"]["properties"];
    register["password"]["minLength"] = json!(crate::domain::password::MIN_LEN);
    register["password"]["maxLength"] = json!(crate::domain::password::MAX_LEN);
    register["email"]["maxLength"] = json!(crate::domain::email::MAX_LEN);
    register["email"]["pattern"] = json!(crate::domain::email::PATTERN);
}

fn normalize_media_types(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(content) = map.get_mut("content").and_then(Value::as_object_mut) {
                let renamed: Vec<(String, Value)> = std::mem::take(content)
                    .into_iter()
                    .map(|(k, v)| {
                        let k = if k.starts_with("application/json;") {
                            "application/json".to_owned()
                        } else {
                            k
                        };
                        (k, v)
                    })
                    .collect();
                content.extend(renamed);
            }
            for v in map.values_mut() {
                normalize_media_types(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_media_types),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_json::from_str(&crate::http::openapi_document()).unwrap()
    }

    #[test]
    fn every_operation_declares_its_security_and_an_operation_id() {
        let doc = document();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["security"].is_array(), "{method} {path}");
                assert!(op["operationId"].is_string(), "{method} {path}");
                assert!(op["summary"].is_string(), "{method} {path}");
                assert!(op["description"].is_string(), "{method} {path}");
            }
        }
    }

    #[test]
    fn protected_operations_document_the_401_challenge() {
        let doc = document();
        let me = &doc["paths"]["/auth/me"]["get"];
        assert_eq!(me["security"], json!([{"accessToken": []}]));
        assert!(me["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
        let problem = &me["responses"]["401"]["content"]["application/problem+json"];
        assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    }

    #[test]
    fn refresh_takes_the_token_from_the_cookie_or_an_optional_body() {
        let doc = document();
        let refresh = &doc["paths"]["/auth/refresh"]["post"];
        assert_eq!(refresh["security"], json!([{"refreshCookie": []}, {}]));
        assert_eq!(refresh["requestBody"]["required"], false);
        assert!(refresh["requestBody"]["content"]["application/json"].is_object());
        assert!(refresh["responses"]["429"]["headers"]["Retry-After"].is_object());
    }

    #[test]
    fn a_sessions_user_agent_is_required_and_nullable() {
        let doc = document();
        let session = &doc["components"]["schemas"]["Session"];
        assert!(
            session["required"]
                .as_array()
                .unwrap()
                .contains(&json!("user_agent"))
        );
        assert_eq!(session["properties"]["user_agent"]["nullable"], true);
    }

    #[test]
    fn only_access_token_401s_document_a_challenge() {
        let doc = document();
        let login = &doc["paths"]["/auth/login"]["post"]["responses"]["401"];
        assert!(login.get("headers").is_none());
        let sessions = &doc["paths"]["/auth/sessions"]["get"]["responses"]["401"];
        assert!(sessions["headers"]["WWW-Authenticate"].is_object());
    }

    #[test]
    fn request_schemas_state_the_domain_rules() {
        let doc = document();
        let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"];
        assert_eq!(register["password"]["minLength"], 8);
        assert_eq!(register["password"]["maxLength"], 128);
        assert!(register["email"]["pattern"].is_string());
        let refresh = &doc["components"]["schemas"]["RefreshRequest"];
        assert_eq!(refresh["properties"]["refresh_token"]["nullable"], true);
        assert_eq!(refresh["additionalProperties"], false);
    }

    #[test]
    fn every_problem_code_is_listed() {
        let doc = document();
        let codes = doc["components"]["schemas"]["ProblemCode"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        for code in [
            "refresh_token_reused",
            "origin_not_allowed",
            "payload_too_large",
        ] {
            assert!(codes.contains(&json!(code)), "{code}");
        }
    }
}
