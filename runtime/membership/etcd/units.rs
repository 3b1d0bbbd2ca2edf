//! Desired work units under `/<cluster>/work/`, and the paged prefix read the member
//! snapshot shares.

use super::super::MembershipError;
use super::shared::Shared;
use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Keys per page of a prefix read: each request and answer stays small (a few hundred
/// KiB at most) however many keys the prefix holds.
pub(super) const PAGE: i64 = 1_000;

/// Units per `add_units` transaction. Each unit is a nested transaction ("create the
/// key if it does not exist") of one compare and one put, so its outcome can be told
/// apart. etcd limits a transaction to `--max-txn-ops` (default 128) operations per
/// branch, and a nested transaction gets only what its parent's branch leaves over:
/// `n` units use `n` of the outer branch and need 1 more inside, so `n` must stay under
/// 128. 64 leaves room for a cluster configured with half the default.
pub(super) const UNITS_PER_TXN: usize = 64;

/// What one paged prefix read cost.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PrefixRead {
    /// The revision every page was read at.
    pub revision: i64,
    /// Range requests sent.
    pub pages: u64,
}

/// A page whose range still holds more keys than this narrows the next page's range
/// (see [`read_prefix`]): walking this many keys costs etcd about a millisecond.
const NARROW_ABOVE: i64 = 4 * PAGE;

/// Calls `each` with every key-value under `prefix`, `PAGE` at a time, all read at the
/// revision of the first page (one consistent view, as if read at once). Answers that
/// revision and the number of pages.
///
/// # Why each page asks for a narrow range
///
/// etcd (3.4, and 3.5 for the count) answers a range request with a limit by walking its
/// index over the *whole* range, to the end key, before it cuts the answer to the limit.
/// Asking `[last key read, end of prefix)` each time therefore costs each page a walk
/// over every key not yet read: the whole read is quadratic. At 100,000 units a page
/// cost 11 ms and the read 1.1 s; at a million, about 0.1 s a page and 100 s for the
/// read, too long for a coordinator that takes over.
///
/// So a page asks only for a window: the keys that share the first `depth` bytes of the
/// key it starts from. The answer's `count` says how many keys the window still holds;
/// above [`NARROW_ABOVE`] the next page's window is one byte longer (a smaller part of
/// the key space). A window read to its end is followed by the next one at the same
/// depth, and an empty one by a wider one, so that a sparse part of the key space costs
/// few requests. Whatever the windows, the pages read `[prefix, from)` completely and
/// the next one starts at `from`: no key is skipped or read twice, only the walks get
/// short. The first page, over the whole prefix, walks it once.
pub(super) async fn read_prefix(
    shared: &Shared,
    prefix: &str,
    keys_only: bool,
    mut each: impl FnMut(KeyValue),
) -> Result<PrefixRead, MembershipError> {
    let base = prefix.len();
    let end = prefix_end(prefix.as_bytes());
    let mut from = prefix.as_bytes().to_vec();
    // The window: the keys that start with `from[..depth]` (`base`: the whole prefix).
    let mut depth = base;
    let mut revision = 0;
    let mut pages = 0;
    loop {
        let hi = window_end(&from, depth, base, &end);
        let mut options = GetOptions::new().with_range(hi.clone()).with_limit(PAGE);
        if keys_only {
            options = options.with_keys_only();
        }
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let mut kv = shared.client.kv_client();
        let mut page = shared
            .rpc(
                &format!("read {prefix}"),
                kv.get(from.clone(), Some(options)),
            )
            .await?;
        pages += 1;
        if revision == 0 {
            revision = page.header().map(|h| h.revision()).unwrap_or_default();
        }
        let (more, count) = (page.more(), page.count());
        let kvs = page.take_kvs();
        let last = kvs.last().map(|kv| kv.key().to_vec());
        kvs.into_iter().for_each(&mut each);
        match (more, last) {
            (true, Some(mut key)) => {
                key.push(0); // the smallest key after the last one read
                from = key;
                if count > NARROW_ABOVE && from.len() > depth {
                    depth += 1;
                }
            }
            _ => {
                // The window is read to its end.
                if hi >= end {
                    return Ok(PrefixRead { revision, pages });
                }
                from = hi;
                if count == 0 {
                    depth = depth.saturating_sub(1).max(base);
                }
            }
        }
    }
}

/// The end of the window that starts at `from`: the first key after every key that
/// shares `from`'s first `depth` bytes, or `end` (that of the whole prefix, whose
/// length is `base`) when the window is the whole prefix.
fn window_end(from: &[u8], depth: usize, base: usize, end: &[u8]) -> Vec<u8> {
    let depth = depth.min(from.len());
    if depth <= base {
        return end.to_vec();
    }
    let e = prefix_end(&from[..depth]);
    if e == [0] || e.as_slice() > end {
        end.to_vec()
    } else {
        e
    }
}

/// The end of the key range of every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // all keys
}

/// What this handle's reads of the desired units cost, summed over every `units`
/// call that completed. Each call reads etcd afresh (nothing is cached between calls),
/// so a coordinator that starts shows one more load here, and as many more pages as
/// the prefix holds: the proof that a new coordinator really re-read the units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitReads {
    /// Complete reads of the desired units.
    pub loads: u64,
    /// Range requests those reads sent (`PAGE` keys each at most).
    pub pages: u64,
    /// Units they returned.
    pub units: u64,
    /// Key bytes they returned (the values are empty); each key is
    /// `/<cluster>/work/<unit>`, so this is close to the replies' payload.
    pub key_bytes: u64,
    /// Wall time they took.
    pub time: Duration,
}

/// Every desired unit's name.
pub(super) async fn units(shared: &Shared) -> Result<Vec<String>, MembershipError> {
    let prefix = shared.keys.work_prefix();
    let mut units = Vec::new();
    let mut key_bytes = 0u64;
    let t0 = Instant::now();
    let read = read_prefix(shared, &prefix, true, |kv| {
        key_bytes += kv.key().len() as u64;
        match std::str::from_utf8(kv.key()) {
            Ok(key) => units.push(key[prefix.len()..].to_string()),
            Err(_) => tracing::warn!(key = ?kv.key(), "skipping a work unit key that is not UTF-8"),
        }
    })
    .await?;
    let time = t0.elapsed();
    {
        let mut total = shared.unit_reads();
        total.loads += 1;
        total.pages += read.pages;
        total.units += units.len() as u64;
        total.key_bytes += key_bytes;
        total.time += time;
    }
    tracing::info!(
        units = units.len(),
        pages = read.pages,
        key_bytes,
        revision = read.revision,
        ms = time.as_millis() as u64,
        "read the desired units from etcd"
    );
    Ok(units)
}

/// Adds the units that do not exist yet; answers how many did not.
pub(super) async fn add_units(shared: &Shared, units: &[String]) -> Result<usize, MembershipError> {
    if let Some(bad) = units.iter().find(|u| u.is_empty()) {
        return Err(MembershipError::Failed(format!(
            "a work unit name must not be empty (got {bad:?})"
        )));
    }
    // etcd refuses a transaction that writes one key twice; a duplicate is one unit anyway.
    let unique: Vec<&String> = units.iter().collect::<BTreeSet<_>>().into_iter().collect();
    let mut added = 0;
    for batch in unique.chunks(UNITS_PER_TXN) {
        let ops: Vec<TxnOp> = batch
            .iter()
            .map(|unit| {
                let key = shared.keys.unit(unit);
                TxnOp::txn(
                    Txn::new()
                        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key, "", None)]),
                )
            })
            .collect();
        let mut kv = shared.client.kv_client();
        let answer = shared
            .rpc("add work units", kv.txn(Txn::new().and_then(ops)))
            .await?;
        added += answer
            .op_responses()
            .iter()
            .filter(|r| matches!(r, TxnOpResponse::Txn(t) if t.succeeded()))
            .count();
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::{prefix_end, window_end};

    #[test]
    fn a_window_ends_after_the_keys_that_share_its_first_bytes() {
        let end = prefix_end(b"/c/work/");
        // The whole prefix, at the prefix's own depth.
        assert_eq!(window_end(b"/c/work/w0", 8, 8, &end), end);
        assert_eq!(window_end(b"/c/work/w0", 9, 8, &end), b"/c/work/x".to_vec());
        assert_eq!(
            window_end(b"/c/work/w0", 10, 8, &end),
            b"/c/work/w1".to_vec()
        );
        // Deeper than the key: the key itself is the window's common part.
        assert_eq!(
            window_end(b"/c/work/w0", 12, 8, &end),
            b"/c/work/w1".to_vec()
        );
        // Never past the prefix's end.
        assert_eq!(window_end(b"/c/work/\xff", 9, 8, &end), end);
    }

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/c/work/"), b"/c/work0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
