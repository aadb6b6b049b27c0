//! Rendering a recorded request as a curl command a person can paste into a shell.

/// Bodies longer than this are not written out inline.
const INLINE_BODY_LIMIT: usize = 4096;

/// Quotes `text` for a POSIX shell. Printable text uses single quotes; anything with control
/// characters uses bash's `$'…'` with escapes.
pub fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| !c.is_control()) {
        format!("'{}'", text.replace('\'', r"'\''"))
    } else {
        ansi_c_quote(text.as_bytes())
    }
}

fn ansi_c_quote(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

/// `curl -sS -i -X METHOD URL -H … --data-binary …`.
pub fn command(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> String {
    let mut parts = vec!["curl -sS -i".to_string()];
    if method != "GET" || body.is_some() {
        parts.push(format!("-X {method}"));
    }
    parts.push(shell_quote(url));
    for (name, value) in headers {
        parts.push(format!("-H {}", shell_quote(&format!("{name}: {value}"))));
    }
    if let Some(body) = body {
        if body.len() > INLINE_BODY_LIMIT {
            let all_same = body.iter().all(|b| *b == body[0]);
            if all_same && body[0].is_ascii_alphanumeric() {
                parts.push(format!(
                    "--data-binary @<(head -c {} /dev/zero | tr '\\0' '{}')",
                    body.len(),
                    body[0] as char
                ));
            } else {
                let head: String = String::from_utf8_lossy(&body[..200]).into_owned();
                parts.push(format!(
                    "--data-binary @body.bin  # a body of {} bytes starting {}",
                    body.len(),
                    shell_quote(&head)
                ));
            }
        } else {
            match std::str::from_utf8(body) {
                Ok(text) => parts.push(format!("--data-binary {}", shell_quote(text))),
                Err(_) => parts.push(format!("--data-binary {}", ansi_c_quote(body))),
            }
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_single_quotes_for_the_shell() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("plain"), "'plain'");
    }

    #[test]
    fn control_characters_use_ansi_c_quoting() {
        assert_eq!(shell_quote("a\nb'"), r"$'a\nb\''");
        assert_eq!(ansi_c_quote(&[0xff, b'x']), r"$'\xffx'");
    }

    #[test]
    fn renders_method_headers_and_body() {
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let cmd = command("POST", "http://h/auth/login", &headers, Some(br#"{"a":1}"#));
        assert_eq!(
            cmd,
            r#"curl -sS -i -X POST 'http://h/auth/login' -H 'Content-Type: application/json' --data-binary '{"a":1}'"#
        );
        assert_eq!(
            command("GET", "http://h/healthz", &[], None),
            "curl -sS -i 'http://h/healthz'"
        );
    }

    #[test]
    fn huge_uniform_bodies_are_generated_not_inlined() {
        let cmd = command("POST", "http://h/x", &[], Some(&[b'a'; 70_000]));
        assert!(
            cmd.contains("head -c 70000 /dev/zero | tr '\\0' 'a'"),
            "{cmd}"
        );
        assert!(cmd.len() < 200);
    }
}
