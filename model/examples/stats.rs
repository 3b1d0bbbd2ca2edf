use ebbtide_model::checker::{DrainModel, ModelConfig};
use stateright::Model;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher, DefaultHasher};
fn h<T: Hash>(t: &T) -> u64 { let mut s = DefaultHasher::new(); t.hash(&mut s); s.finish() }
fn main() {
    let gc = std::env::var("GC").map_or(true, |v| v != "0"); let env = |k: &str, d: u8| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let cfg = ModelConfig { nodes: env("N", 2), work: env("W", 1), node_crashes: env("K", 0), failovers: env("F", 0), losses: Some(env("L", 0)), gc, ..Default::default() };
    let limit: usize = std::env::var("LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    let m = DrainModel::new(cfg);
    let init = m.init_states().pop().unwrap();
    let mut seen = HashSet::new();
    let mut q = VecDeque::new();
    seen.insert(h(&init)); q.push_back(init);
    let mut proj_actors = HashSet::new();
    let mut proj_actors_hist = HashSet::new();
    let mut proj_no_net = HashSet::new();
    let mut proj_no_timers_net = HashSet::new();
    let mut netsizes = std::collections::BTreeMap::new();
    let mut noops = std::collections::BTreeMap::new();
    let mut kinds = std::collections::BTreeMap::new();
    let mut phases = std::collections::BTreeMap::new();
    let mut agents = HashSet::new(); let mut coords = HashSet::new();
    let mut coords_noid = HashSet::new(); let mut coords_nofresh = HashSet::new(); let mut coords_both = HashSet::new(); let mut coords_min = HashSet::new();
    let re_id = regex::Regex::new(r"id: \d+").unwrap(); let re_fresh = regex::Regex::new(r"fresh: \w+").unwrap(); let re_last = regex::Regex::new(r"last_id: \d+").unwrap(); let re_req = regex::Regex::new(r"requested: (None|Some\([^)]*\))").unwrap();
    while let Some(s) = q.pop_front() {
        if seen.len() > limit { break; }
        proj_actors.insert(h(&s.actor_states));
        proj_actors_hist.insert(h(&(&s.actor_states, &s.history)));
        proj_no_net.insert(h(&(&s.actor_states, &s.history, &s.timers_set)));
        proj_no_timers_net.insert(h(&(&s.actor_states, &s.network)));
        for a in s.actor_states.iter() { agents.insert(h(&a.agent)); if let Some(c) = &a.coordinator { coords.insert(h(&**c)); let d = format!("{:?}", c); coords_noid.insert(h(&re_id.replace_all(&d, "id: _").to_string())); coords_nofresh.insert(h(&re_fresh.replace_all(&d, "fresh: _").to_string())); let both = re_fresh.replace_all(&re_id.replace_all(&d, "id: _"), "fresh: _").to_string(); coords_both.insert(h(&both)); let nolast = re_last.replace_all(&re_req.replace_all(&both, "requested: _"), "last_id: _").to_string(); coords_min.insert(h(&nolast)); } }
        *netsizes.entry(s.network.len()).or_insert(0u64) += 1;
        let hh = &s.history;
        *phases.entry((hh.requested, hh.zero, hh.crashes, hh.failovers, hh.exits)).or_insert(0u64) += 1;
        {
            let mut acts = Vec::new();
            m.actions(&s, &mut acts);
            let mut noop = 0; let mut total = 0;
            for a in acts { if let ebbtide_model::checker::Action::Deliver{ref msg, ..} = a { total += 1; let k = format!("{:?}", msg).split(|c: char| c == '{' || c == '(').take(2).collect::<Vec<_>>().join("/"); if m.next_state(&s, a.clone()).map_or(true, |n| n == s) { noop += 1; *kinds.entry(k).or_insert(0u64) += 1; } } }
            *noops.entry((total, noop)).or_insert(0u64) += 1;
        }
        let mut acts = Vec::new();
        m.actions(&s, &mut acts);
        for a in acts { if let Some(n) = m.next_state(&s, a) { if seen.insert(h(&n)) { q.push_back(n); } } }
    }
    println!("unique {}  actors {}  actors+hist {}  actors+hist+timers {}  actors+net {}", seen.len(), proj_actors.len(), proj_actors_hist.len(), proj_no_net.len(), proj_no_timers_net.len());
    println!("net sizes {:?}", netsizes);
    println!("distinct agents {} coordinators {} noid {} nofresh {} both {} min {}", agents.len(), coords.len(), coords_noid.len(), coords_nofresh.len(), coords_both.len(), coords_min.len());
    let mut tot=0u64; let mut no=0u64; let mut n=0u64;
    for ((t,o),c) in &noops { tot += *t as u64 * c; no += *o as u64 * c; n += c; }
    println!("{:#?}", kinds);
    println!("(requested, zero, crashes, failovers, exits) -> states");
    for (k, v) in &phases { println!("  {:?} {}", k, v); }
    println!("avg deliverable {:.1} avg noop {:.1}", tot as f64 / n as f64, no as f64 / n as f64);
}
#[allow(dead_code)]
fn noop_stats() {}
