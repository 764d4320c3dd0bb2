//! `[headers]`: the security headers stamped on every response. Each can be
//! changed or suppressed with an empty value; HSTS has its own switch.

use http::{HeaderName, HeaderValue, header};

use super::reader::Reader;
use super::setting::Setting;

/// The security headers stamped on every response, already rendered.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let hsts = r.flag(
            Setting::new("headers.hsts", "PALISADE_HSTS", "true")
                .help("Send `Strict-Transport-Security`."),
        )?;
        let max_age: u32 = r.int(
            Setting::new("headers.hsts_max_age", "PALISADE_HSTS_MAX_AGE", "63072000")
                .range(0, 1 << 31)
                .help("HSTS `max-age` in seconds."),
        )?;
        let include_subdomains = r.flag(
            Setting::new(
                "headers.hsts_include_subdomains",
                "PALISADE_HSTS_INCLUDE_SUBDOMAINS",
                "true",
            )
            .help("HSTS `includeSubDomains`."),
        )?;
        let preload = r.flag(
            Setting::new("headers.hsts_preload", "PALISADE_HSTS_PRELOAD", "false")
                .help("HSTS `preload` (only once the domain is on the preload list)."),
        )?;
        let mut headers = Vec::new();
        if hsts {
            let mut value = format!("max-age={max_age}");
            if include_subdomains {
                value.push_str("; includeSubDomains");
            }
            if preload {
                value.push_str("; preload");
            }
            if let Some(Some(value)) = r.check("headers.hsts", header_value(&value)) {
                headers.push((header::STRICT_TRANSPORT_SECURITY, value));
            }
        }
        for (name, setting) in [
            (
                header::CONTENT_SECURITY_POLICY,
                Setting::new(
                    "headers.content_security_policy",
                    "PALISADE_CONTENT_SECURITY_POLICY",
                    "default-src 'none'; frame-ancestors 'none'",
                )
                .help("`Content-Security-Policy` of API responses (empty: not sent)."),
            ),
            (
                header::X_FRAME_OPTIONS,
                Setting::new("headers.frame_options", "PALISADE_FRAME_OPTIONS", "DENY")
                    .help("`X-Frame-Options` (empty: not sent)."),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                Setting::new(
                    "headers.content_type_options",
                    "PALISADE_CONTENT_TYPE_OPTIONS",
                    "nosniff",
                )
                .help("`X-Content-Type-Options` (empty: not sent)."),
            ),
            (
                header::REFERRER_POLICY,
                Setting::new(
                    "headers.referrer_policy",
                    "PALISADE_REFERRER_POLICY",
                    "strict-origin-when-cross-origin",
                )
                .help("`Referrer-Policy` (empty: not sent)."),
            ),
            (
                HeaderName::from_static("permissions-policy"),
                Setting::new(
                    "headers.permissions_policy",
                    "PALISADE_PERMISSIONS_POLICY",
                    "camera=(), microphone=(), geolocation=()",
                )
                .help("`Permissions-Policy` (empty: not sent)."),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                Setting::new(
                    "headers.cross_origin_opener_policy",
                    "PALISADE_CROSS_ORIGIN_OPENER_POLICY",
                    "same-origin",
                )
                .help("`Cross-Origin-Opener-Policy` (empty: not sent)."),
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                Setting::new(
                    "headers.cross_origin_resource_policy",
                    "PALISADE_CROSS_ORIGIN_RESOURCE_POLICY",
                    "same-origin",
                )
                .help("`Cross-Origin-Resource-Policy` (empty: not sent)."),
            ),
            (
                header::X_XSS_PROTECTION,
                Setting::new("headers.xss_protection", "PALISADE_XSS_PROTECTION", "0")
                    .help("`X-XSS-Protection` (`0` disables the legacy filter; empty: not sent)."),
            ),
            (
                header::CACHE_CONTROL,
                Setting::new(
                    "headers.cache_control",
                    "PALISADE_CACHE_CONTROL",
                    "no-store",
                )
                .help("`Cache-Control` for responses that set none (empty: not sent)."),
            ),
        ] {
            if let Some(value) = r.parse(setting, header_value)? {
                headers.push((name, value));
            }
        }
        Some(Self { headers })
    }
}

/// A header value; empty means "do not send the header".
fn header_value(text: &str) -> Result<Option<HeaderValue>, String> {
    match text.trim() {
        "" => Ok(None),
        text => HeaderValue::from_str(text)
            .map(Some)
            .map_err(|_| format!("{text:?} is not a valid header value")),
    }
}
