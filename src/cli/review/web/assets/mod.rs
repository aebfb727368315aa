//! The web console's page, script and style, embedded in the binary (the page fetches nothing from the
//! network), and the one place in each page where its session secret goes.

use axum::http::header;
use axum::response::IntoResponse;

pub(super) const INDEX_HTML: &str = include_str!("index.html");
pub(super) const ADMIN_HTML: &str = include_str!("admin.html");
pub(super) const CONSOLE_CSS: &str = include_str!("console.css");
pub(super) const REVIEW_JS: &str = include_str!("review.js");
pub(super) const ADMIN_JS: &str = include_str!("admin.js");

/// Where the page finds its session secret (an empty `content` in the embedded HTML).
pub(super) const SESSION_META: &str = r#"<meta name="idgate-session" content="">"#;
pub(super) fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_pages_have_one_place_for_their_session() {
        for page in [INDEX_HTML, ADMIN_HTML] {
            assert_eq!(page.matches(SESSION_META).count(), 1);
        }
    }
}
