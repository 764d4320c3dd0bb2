//! The gateway's route table against Palisade's own routes: exact
//! patterns an own route makes unreachable (refused at start-up and by
//! `check-config`), and prefixes that also cover own routes (a warning).

use crate::settings::{RoutePattern, Settings};

/// Whether a route template (`/users/{user_id}`) matches `path`.
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// The paths of `own` (`"METHOD /path"`).
fn own_paths(own: &[String]) -> Vec<&str> {
    let mut paths: Vec<&str> = own
        .iter()
        .filter_map(|k| k.split_once(' ').map(|(_, p)| p))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// Exact gateway patterns that Palisade's own routes answer: they can
/// never be forwarded.
pub fn gateway_shadowed(settings: &Settings) -> Vec<String> {
    let own = super::mounted_route_keys(settings);
    let paths = own_paths(&own);
    settings
        .gateway
        .routes
        .iter()
        .filter_map(|r| match &r.pattern {
            RoutePattern::Exact(p) => paths
                .iter()
                .find(|own| template_matches(own, p))
                .map(|own| format!("gateway.routes: {p} is Palisade's own route {own}, which always answers first: the pattern can never match")),
            RoutePattern::Prefix(_) => None,
        })
        .collect()
}

/// Prefix patterns that cover some of Palisade's own routes: allowed
/// (the own routes answer first), but worth a look.
pub fn gateway_overlaps(settings: &Settings) -> Vec<String> {
    let own = super::mounted_route_keys(settings);
    let paths = own_paths(&own);
    settings
        .gateway
        .routes
        .iter()
        .filter_map(|r| match &r.pattern {
            RoutePattern::Prefix(_) => {
                let covered: Vec<&str> = paths
                    .iter()
                    .copied()
                    .filter(|own| r.pattern.matches(own))
                    .collect();
                (!covered.is_empty()).then(|| {
                    format!(
                        "gateway.routes: {} also covers Palisade's own {}, which answer first and are not forwarded",
                        r.pattern.to_text(),
                        covered.join(", ")
                    )
                })
            }
            RoutePattern::Exact(_) => None,
        })
        .collect()
}
