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

/// How the gateway's patterns meet Palisade's own routes.
#[derive(Debug, Default)]
pub struct Conflicts {
    /// Exact patterns an own route answers: they can never be forwarded
    /// (refused).
    pub unreachable: Vec<String>,
    /// Prefixes that also cover own routes: allowed (the own routes answer
    /// first), but worth a look (warnings).
    pub covering: Vec<String>,
}

/// The conflicts of `settings`' gateway table with the routes it mounts.
pub fn gateway_conflicts(settings: &Settings) -> Conflicts {
    let own = super::mounted_route_keys(settings);
    let paths = own_paths(&own);
    let mut out = Conflicts::default();
    for route in &settings.gateway.routes {
        match &route.pattern {
            RoutePattern::Exact(p) => {
                if let Some(own) = paths.iter().find(|own| template_matches(own, p)) {
                    out.unreachable.push(format!("gateway.routes: {p} is Palisade's own route {own}, which always answers first: the pattern can never match"));
                }
            }
            RoutePattern::Prefix(_) => {
                let covered: Vec<&str> = paths
                    .iter()
                    .copied()
                    .filter(|own| route.pattern.matches(own))
                    .collect();
                if !covered.is_empty() {
                    out.covering.push(format!(
                        "gateway.routes: {} also covers Palisade's own {}, which answer first and are not forwarded",
                        route.pattern.to_text(),
                        covered.join(", ")
                    ));
                }
            }
        }
    }
    out
}
