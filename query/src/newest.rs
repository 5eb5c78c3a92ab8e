//! The newest `limit` documents matching a query, without visiting every match.
//!
//! Auditors want the latest hits first. Ordering by time needs each match's time, so a
//! common word (`etc`, `systemctl`) would cost a visit to millions of documents. Instead,
//! each segment is cut into blocks of [`BLOCK`] documents whose newest time is known (a scan
//! of the time column, once per segment per process, cached: segments never change). The
//! search visits blocks from the newest down and stops as soon as it holds `limit` hits
//! newer than every block left — exact, since a block cannot hold anything newer than its
//! newest time. Documents are added roughly in time order, so the newest blocks usually
//! hold the answer.
//!
//! A query whose matches are rare but costly to find (a substring made of common trigrams)
//! would pay a fresh postings seek per block; after [`BLOCK_VISITS`] blocks the search goes
//! on with one forward pass per remaining segment (newest segments first, skipping those
//! older than the hits held), which is what a plain scan costs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DateTime, DocAddress, DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use crate::error::Result;

/// Documents per block (the unit of "skip what is older").
pub(crate) const BLOCK: u32 = 4096;
/// Blocks visited one by one before falling back to whole-segment passes.
pub(crate) const BLOCK_VISITS: usize = 16;

/// Newest time per block of every segment seen, shared by the searches of one process.
#[derive(Default)]
pub(crate) struct BlockTimes {
    cache: Mutex<HashMap<SegmentId, Arc<Vec<DateTime>>>>,
}

impl BlockTimes {
    fn of(&self, reader: &SegmentReader, times: &Column<DateTime>) -> Arc<Vec<DateTime>> {
        let id = reader.segment_id();
        if let Some(hit) = self.cache.lock().expect("block cache lock").get(&id) {
            return hit.clone();
        }
        let max_doc = reader.max_doc();
        let mut maxima = Vec::with_capacity(max_doc.div_ceil(BLOCK) as usize);
        let mut docs = Vec::with_capacity(BLOCK as usize);
        let mut values = vec![None; BLOCK as usize];
        for start in (0..max_doc).step_by(BLOCK as usize) {
            docs.clear();
            docs.extend(start..(start + BLOCK).min(max_doc));
            times.first_vals(&docs, &mut values[..docs.len()]);
            let max = values[..docs.len()].iter().flatten().max().copied().unwrap_or(DateTime::MIN);
            maxima.push(max);
        }
        let maxima = Arc::new(maxima);
        let mut cache = self.cache.lock().expect("block cache lock");
        // Forget segments that merges have removed (bounded memory for long-lived searchers).
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(id, maxima.clone());
        maxima
    }
}

/// The best `limit` (time, address) pairs so far: a min-heap whose top is the one to beat.
struct Best {
    limit: usize,
    heap: BinaryHeap<Reverse<(DateTime, DocAddress)>>,
}

impl Best {
    fn offer(&mut self, t: DateTime, addr: DocAddress) {
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((t, addr)));
        } else if self.heap.peek().is_some_and(|Reverse(worst)| (t, addr) > *worst) {
            self.heap.pop();
            self.heap.push(Reverse((t, addr)));
        }
    }

    /// Whether nothing at most `max` can get in.
    fn closed_to(&self, max: DateTime) -> bool {
        self.heap.len() == self.limit && self.heap.peek().is_some_and(|Reverse((worst, _))| max < *worst)
    }
}

/// The `limit` newest matches of `query`, newest first, with their times.
pub(crate) fn newest(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
    blocks: &BlockTimes,
) -> Result<Vec<(DateTime, DocAddress)>> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut best = Best { limit, heap: BinaryHeap::with_capacity(limit + 1) };
    let mut columns = Vec::new();
    let mut units = Vec::new(); // (newest time, segment, block)
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let times = reader.fast_fields().date("time")?;
        let maxima = blocks.of(reader, &times);
        units.extend(maxima.iter().enumerate().map(|(b, &max)| (max, ord as u32, b as u32)));
        columns.push((times, maxima));
    }
    units.sort_unstable_by(|a, b| b.cmp(a));

    // Phase 1: block by block, newest first.
    let mut visited: HashSet<(u32, u32)> = HashSet::new();
    for &(max, ord, block) in units.iter().take(BLOCK_VISITS) {
        if best.closed_to(max) {
            return Ok(finish(best));
        }
        let reader = searcher.segment_reader(ord);
        visit_block(&*weight, reader, ord, block, &columns[ord as usize].0, &mut best)?;
        visited.insert((ord, block));
    }
    if units.len() <= BLOCK_VISITS || units.get(BLOCK_VISITS).is_some_and(|&(max, _, _)| best.closed_to(max)) {
        return Ok(finish(best));
    }

    // Phase 2: one pass per segment, newest segments first.
    let mut segments: Vec<(DateTime, u32)> = columns
        .iter()
        .enumerate()
        .map(|(ord, (_, maxima))| (maxima.iter().copied().max().unwrap_or(DateTime::MIN), ord as u32))
        .collect();
    segments.sort_unstable_by(|a, b| b.cmp(a));
    let mut values = Vec::new();
    for (max, ord) in segments {
        if best.closed_to(max) {
            break;
        }
        let reader = searcher.segment_reader(ord);
        let alive = reader.alive_bitset();
        let times = &columns[ord as usize].0;
        weight.for_each_no_score(reader, &mut |docs: &[DocId]| {
            values.clear();
            values.resize(docs.len(), None);
            times.first_vals(docs, &mut values);
            for (&doc, t) in docs.iter().zip(&values) {
                let Some(t) = *t else { continue };
                if alive.is_some_and(|a| !a.is_alive(doc)) || visited.contains(&(ord, doc / BLOCK)) {
                    continue;
                }
                best.offer(t, DocAddress::new(ord, doc));
            }
        })?;
    }
    Ok(finish(best))
}

fn visit_block(
    weight: &dyn Weight,
    reader: &SegmentReader,
    ord: u32,
    block: u32,
    times: &Column<DateTime>,
    best: &mut Best,
) -> Result<()> {
    let start = block * BLOCK;
    let end = (start + BLOCK).min(reader.max_doc());
    let alive = reader.alive_bitset();
    let mut scorer = weight.scorer(reader, 1.0)?;
    let mut doc = scorer.doc();
    if doc < start {
        doc = scorer.seek(start);
    }
    while doc != TERMINATED && doc < end {
        if alive.is_none_or(|a| a.is_alive(doc))
            && let Some(t) = times.first(doc)
        {
            best.offer(t, DocAddress::new(ord, doc));
        }
        doc = scorer.advance();
    }
    Ok(())
}

fn finish(best: Best) -> Vec<(DateTime, DocAddress)> {
    let mut out: Vec<(DateTime, DocAddress)> = best.heap.into_iter().map(|Reverse(x)| x).collect();
    out.sort_by(|a, b| b.cmp(a));
    out
}
