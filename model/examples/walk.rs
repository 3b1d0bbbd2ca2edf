use ebbtide_model::checker::{DrainModel, ModelConfig};
use stateright::Model;
fn main() {
    let cfg = ModelConfig { nodes: 2, work: 1, node_crashes: 0, failovers: 0, ..Default::default() };
    let m = DrainModel::new(cfg);
    let mut s = m.init_states().pop().unwrap();
    let mut seed: u64 = 12345;
    for i in 0..3000 {
        let mut acts = Vec::new();
        m.actions(&s, &mut acts);
        let nexts: Vec<_> = acts.into_iter().filter_map(|a| m.next_state(&s, a.clone()).map(|n| (a, n))).collect();
        if nexts.is_empty() { println!("stuck at {i}"); break; }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let (a, n) = &nexts[(seed >> 33) as usize % nexts.len()];
        if i > 2980 { println!("{i}: {}", m.format_action(a)); }
        s = n.clone();
    }
    println!("{:#?}", s);
}
