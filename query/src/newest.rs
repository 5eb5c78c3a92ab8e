//! The newest `limit` documents matching a query, without visiting every match.
//!
//! Auditors want the latest hits first. Ordering by time needs each match's time, so a
//! common word (`etc`, `systemctl`) would cost a visit to millions of documents. But
//! documents are added in time order (sessions in start order, live sessions as they
//! happen), so each index segment covers a stretch of time: segments are visited newest
//! first (by the largest time they hold, a column statistic), and a segment whose newest
//! document is older than the `limit`-th best hit so far is skipped without being read.
//! The result is exact: a skipped segment cannot hold a better hit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tantivy::query::{EnableScoring, Query};
use tantivy::{DateTime, DocAddress, DocId, Searcher};

use crate::error::Result;

/// The `limit` newest matches of `query`, newest first, with their times.
pub(crate) fn newest(searcher: &Searcher, query: &dyn Query, limit: usize) -> Result<Vec<(DateTime, DocAddress)>> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut segments = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let times = reader.fast_fields().date("time")?;
        segments.push((times.max_value(), ord as u32, times));
    }
    segments.sort_by_key(|(max, ord, _)| Reverse((*max, *ord)));
    // A min-heap of the best `limit` so far: its top is the one to beat.
    let mut best: BinaryHeap<Reverse<(DateTime, DocAddress)>> = BinaryHeap::with_capacity(limit + 1);
    let mut values = Vec::new();
    for (max, ord, times) in segments {
        if best.len() == limit && best.peek().is_some_and(|Reverse((t, _))| max < *t) {
            break; // this segment and every later one are older than all we keep
        }
        let reader = searcher.segment_reader(ord);
        let alive = reader.alive_bitset();
        weight.for_each_no_score(reader, &mut |docs: &[DocId]| {
            values.clear();
            values.resize(docs.len(), None);
            times.first_vals(docs, &mut values);
            for (&doc, t) in docs.iter().zip(&values) {
                let Some(t) = *t else { continue };
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                if best.len() < limit {
                    best.push(Reverse((t, DocAddress::new(ord, doc))));
                } else if best.peek().is_some_and(|Reverse((worst, _))| t > *worst) {
                    best.pop();
                    best.push(Reverse((t, DocAddress::new(ord, doc))));
                }
            }
        })?;
    }
    let mut out: Vec<(DateTime, DocAddress)> = best.into_iter().map(|Reverse(x)| x).collect();
    out.sort_by(|a, b| b.cmp(a));
    Ok(out)
}
