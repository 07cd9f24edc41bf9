//! [`Fanout`]: one producer, many readers, bounded in bytes and in count.
//!
//! Every ring that hands a stream to many readers is this one type: the registry's ring of
//! frames, and each output's ring of muxed chunks (FLV tags, RTP packets, TS and fMP4 chunks).
//! Items are pushed once and each reader gets a clone (a few reference-count increments for
//! `Bytes`-backed items), so memory does not grow with readers.
//!
//! ```text
//!  push(item, size, starts_gop) ─▶ [ head … last GOP start … tail ] ─▶ Reader::recv (each reader)
//!        evicts from the head while over max_bytes or max_items     new reader: header items,
//!                                                                    then from the last GOP start
//! ```
//!
//! Bounds: the ring holds at most [`FanoutLimits::max_bytes`] (the `size`s given to
//! [`Fanout::push`], plus a fixed overhead per item) and [`FanoutLimits::max_items`]; the
//! oldest items go first, whoever has not read them yet. The newest item always stays, so a
//! single item over the byte bound is still delivered.
//!
//! Start and lag policy: a new reader gets the header ([`Fanout::set_header`]: codec
//! configurations, an init segment) and then the ring from the last item pushed with
//! `starts_gop` (a keyframe), so it can decode at once; if that item was evicted it waits for the
//! next one, and gets the header then if it changed meanwhile. A reader whose next item was
//! evicted has lagged: it skips to the next GOP start (the header first again if it changed
//! meanwhile) and goes on, unless it lagged more than
//! [`FanoutLimits::max_lags`] times within [`FanoutLimits::lag_window`], when it ends with
//! [`Ended::TooSlow`]. A slow reader never holds the producer or other readers back, and never
//! holds bytes in the ring: it just loses its place.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Bytes counted for each item on top of its `size`, for the ring's own bookkeeping (so many
/// tiny items are bounded too).
pub const ITEM_OVERHEAD: usize = 64;

/// The bounds and lag policy of a [`Fanout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutLimits {
    /// Most bytes held (item sizes plus [`ITEM_OVERHEAD`] each). Default: 16 MiB, about three
    /// 2-second GOPs of a 20 Mbit/s stream.
    pub max_bytes: usize,
    /// Most items held. Default: 4096 (a 20-second GOP of 60 fps video with audio).
    pub max_items: usize,
    /// A reader that lags more than this many times within `lag_window` is dropped. Default: 5.
    pub max_lags: usize,
    /// The window over which lags are counted. Default: 30 s.
    pub lag_window: Duration,
    /// GOPs kept: a new reader starts at the newest GOP start and a reader keeping up is never
    /// more than a GOP behind, so older ones are evicted, down to `min_items`. Default: 2 (the
    /// GOP new readers start at and the one before it, for readers still finishing it); 0 keeps
    /// every GOP the other bounds allow.
    pub max_gops: usize,
    /// Items always kept whatever `max_gops` says, so a stream of many small GOPs (audio alone:
    /// every frame starts one) still gives a reader room to fall behind. Default: 256.
    pub min_items: usize,
}

impl Default for FanoutLimits {
    fn default() -> Self {
        FanoutLimits {
            max_bytes: 16 << 20,
            max_items: 4096,
            max_lags: 5,
            lag_window: Duration::from_secs(30),
            max_gops: 2,
            min_items: 256,
        }
    }
}

/// Why a reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// The producer closed the fan-out (the stream ended); everything before was delivered.
    #[error("the stream ended")]
    Closed,
    /// The reader fell behind too often and was dropped.
    #[error("the reader fell behind too often")]
    TooSlow,
}

/// The producer's handle. Cloning gives another handle on the same ring.
pub struct Fanout<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Fanout<T> {
    fn clone(&self) -> Self {
        Fanout {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<T> {
    // A std Mutex: held only to append, evict or clone out one item, never across an `.await`.
    ring: Mutex<Ring<T>>,
    notify: Notify,
    limits: FanoutLimits,
}

struct Ring<T> {
    items: VecDeque<Slot<T>>,
    /// Sequence number of `items[0]`.
    head: u64,
    bytes: usize,
    /// Sequence number of the newest GOP start still in the ring.
    gop_start: Option<u64>,
    /// Sequence numbers of every GOP start in the ring, oldest first (for `max_gops`).
    gop_starts: VecDeque<u64>,
    header: Vec<T>,
    /// Bumped by every [`Fanout::set_header`], so a reader resuming after a lag gets the
    /// header again only when it changed.
    header_generation: u64,
    closed: bool,
    readers: usize,
    evicted: u64,
}

struct Slot<T> {
    item: T,
    cost: usize,
    starts_gop: bool,
}

impl<T> Ring<T> {
    fn tail(&self) -> u64 {
        self.head + self.items.len() as u64
    }

    /// The first GOP start at or after `from`, if any is in the ring.
    fn next_gop_start(&self, from: u64) -> Option<u64> {
        let skip = usize::try_from(from.saturating_sub(self.head)).unwrap_or(usize::MAX);
        self.items
            .iter()
            .skip(skip)
            .position(|s| s.starts_gop)
            .map(|i| from.max(self.head) + i as u64)
    }
}

impl<T: Clone> Fanout<T> {
    /// An empty ring with `limits`.
    pub fn new(limits: FanoutLimits) -> Self {
        Fanout {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    items: VecDeque::new(),
                    head: 0,
                    bytes: 0,
                    gop_start: None,
                    gop_starts: VecDeque::new(),
                    header: Vec::new(),
                    header_generation: 0,
                    closed: false,
                    readers: 0,
                    evicted: 0,
                }),
                notify: Notify::new(),
                limits,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring<T>> {
        lock(&self.shared)
    }

    /// Appends `item` (`size` bytes of payload; `starts_gop` when a reader may start decoding
    /// at it) and wakes the readers. Items beyond the bounds are evicted from the head.
    pub fn push(&self, item: T, size: usize, starts_gop: bool) {
        self.push_held(item, size, starts_gop);
        self.wake();
    }

    /// Appends like [`Fanout::push`] but wakes no reader waiting in [`Reader::recv`] until the
    /// next [`Fanout::wake`] (or `push`, or `close`): a producer that merges writes wakes its
    /// readers once for several items. A reader that looks ([`Reader::try_recv`], a new
    /// reader's first items) sees the item at once.
    pub fn push_held(&self, item: T, size: usize, starts_gop: bool) {
        {
            let limits = self.shared.limits;
            let mut ring = self.lock();
            if ring.closed {
                return;
            }
            let cost = size.saturating_add(ITEM_OVERHEAD);
            let seq = ring.tail();
            ring.items.push_back(Slot {
                item,
                cost,
                starts_gop,
            });
            ring.bytes = ring.bytes.saturating_add(cost);
            if starts_gop {
                ring.gop_start = Some(seq);
                ring.gop_starts.push_back(seq);
            }
            loop {
                let over = ring.items.len() > 1
                    && (ring.bytes > limits.max_bytes || ring.items.len() > limits.max_items);
                // The oldest GOP start to keep: the `max_gops`-th newest.
                let keep_from = (ring.gop_starts.len().checked_sub(limits.max_gops))
                    .and_then(|i| ring.gop_starts.get(i).copied());
                let old_gop = keep_from.is_some_and(|keep| ring.head < keep)
                    && ring.items.len() > limits.min_items;
                if !(over || old_gop) {
                    break;
                }
                let Some(old) = ring.items.pop_front() else {
                    break;
                };
                if ring.gop_starts.front() == Some(&ring.head) {
                    ring.gop_starts.pop_front();
                }
                ring.bytes -= old.cost;
                ring.head += 1;
                ring.evicted += 1;
                if ring.gop_start.is_some_and(|g| g < ring.head) {
                    ring.gop_start = None;
                }
            }
        }
    }

    /// Wakes every reader waiting for an item: the ones [`Fanout::push_held`] appended.
    pub fn wake(&self) {
        self.shared.notify.notify_waiters();
    }

    /// Replaces what every new reader (and every reader resuming after a lag) gets before the
    /// ring's items: codec configurations, an init segment.
    pub fn set_header(&self, header: Vec<T>) {
        let mut ring = self.lock();
        ring.header = header;
        ring.header_generation += 1;
    }

    /// New readers wait for the next GOP start: what is in the ring cannot be decoded with the
    /// current configuration (a new sequence header arrived).
    pub fn reset_gop(&self) {
        self.lock().gop_start = None;
    }

    /// Ends the fan-out: readers get what is left, then [`Ended::Closed`]; pushes are ignored.
    pub fn close(&self) {
        self.lock().closed = true;
        self.shared.notify.notify_waiters();
    }

    /// Whether [`Fanout::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// A new reader: the header, then the ring from its last GOP start (or, if none is left,
    /// from the next one pushed).
    pub fn reader(&self) -> Reader<T> {
        let mut ring = self.lock();
        ring.readers += 1;
        let (next, skipping) = match ring.gop_start {
            Some(seq) => (seq, false),
            None => (ring.tail(), true),
        };
        let header: VecDeque<T> = ring.header.iter().cloned().collect();
        let header_generation = ring.header_generation;
        drop(ring);
        Reader {
            shared: Arc::clone(&self.shared),
            next,
            skipping,
            pending: header,
            header_generation,
            lags: LagTracker::new(self.shared.limits.max_lags, self.shared.limits.lag_window),
        }
    }

    /// A snapshot of the ring's occupancy.
    pub fn stats(&self) -> FanoutStats {
        let ring = self.lock();
        FanoutStats {
            items: ring.items.len(),
            bytes: ring.bytes,
            readers: ring.readers,
            evicted: ring.evicted,
        }
    }
}

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, Ring<T>> {
    // Every critical section leaves the ring consistent before it could panic (it only moves
    // items and counters), so a poisoned lock is safe to keep using.
    shared.ring.lock().unwrap_or_else(|e| e.into_inner())
}

/// How full a [`Fanout`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutStats {
    /// Items held.
    pub items: usize,
    /// Bytes held (sizes plus overhead).
    pub bytes: usize,
    /// Readers attached.
    pub readers: usize,
    /// Items evicted since the start.
    pub evicted: u64,
}

/// Readers of every [`Fanout`] of the process that fell behind (and skipped ahead).
static LAGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Readers of every [`Fanout`] of the process dropped for falling behind too often.
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the bounded rings of the whole process dropped since it started (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanoutDrops {
    /// Times a reader fell behind the ring and skipped to the next GOP start.
    pub lags: u64,
    /// Readers ended for falling behind too often.
    pub dropped_readers: u64,
}

/// The drops of every [`Fanout`] so far.
pub fn fanout_drops() -> FanoutDrops {
    FanoutDrops {
        lags: LAGS.load(std::sync::atomic::Ordering::Relaxed),
        dropped_readers: DROPPED.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// One reader's place in a [`Fanout`]. Dropping it detaches the reader.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
    /// Sequence number of the next ring item to deliver.
    next: u64,
    /// Waiting for a GOP start before delivering ring items.
    skipping: bool,
    /// Header items still to deliver.
    pending: VecDeque<T>,
    /// The generation of the header this reader was given.
    header_generation: u64,
    lags: LagTracker,
}

impl<T: Clone> Reader<T> {
    /// The next item, waiting for one if the reader is at the tail.
    pub async fn recv(&mut self) -> Result<T, Ended> {
        // Fast path: an item is ready (a viewer catching up, a burst), no waiter registered.
        if let Some(next) = self.try_recv() {
            return next;
        }
        let shared = Arc::clone(&self.shared);
        loop {
            let mut notified = pin!(shared.notify.notified());
            // Registered before looking, so a push between the look and the wait wakes us.
            notified.as_mut().enable();
            if let Some(next) = self.try_recv() {
                return next;
            }
            notified.await;
        }
    }

    /// The next item if one is ready now: `None` when the reader is at the tail of a live ring.
    pub fn try_recv(&mut self) -> Option<Result<T, Ended>> {
        if let Some(item) = self.pending.pop_front() {
            return Some(Ok(item));
        }
        let ring = lock(&self.shared);
        if self.next < ring.head {
            LAGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.lags.lagged() {
                DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    lags = self.lags.count(),
                    "reader dropped: fell behind too often"
                );
                // Park at the tail so later calls keep answering TooSlow without a search.
                self.next = u64::MAX;
                return Some(Err(Ended::TooSlow));
            }
            tracing::debug!(
                skipped = ring.head - self.next,
                "reader fell behind, skipping to the next GOP start"
            );
            self.next = ring.head;
            self.skipping = true;
        }
        if self.next == u64::MAX {
            return Some(Err(Ended::TooSlow));
        }
        if self.skipping {
            match ring.next_gop_start(self.next) {
                Some(seq) => {
                    self.next = seq;
                    self.skipping = false;
                    if self.header_generation != ring.header_generation {
                        // The header changed while the items that carried the change were
                        // skipped (or before this reader's first GOP start): it comes first.
                        self.header_generation = ring.header_generation;
                        self.pending = ring.header.iter().cloned().collect();
                        if let Some(item) = self.pending.pop_front() {
                            return Some(Ok(item));
                        }
                    }
                }
                None => {
                    self.next = ring.tail();
                    return ring.closed.then_some(Err(Ended::Closed));
                }
            }
        }
        let index = usize::try_from(self.next - ring.head).ok()?;
        match ring.items.get(index) {
            Some(slot) => {
                self.next += 1;
                Some(Ok(slot.item.clone()))
            }
            None if ring.closed => Some(Err(Ended::Closed)),
            None => None,
        }
    }

    /// The first of the items this reader will get next (header items, then the ring from its
    /// place) for which `f` answers `Some`, without consuming anything.
    pub fn upcoming<R>(&self, mut f: impl FnMut(&T) -> Option<R>) -> Option<R> {
        if let Some(found) = self.pending.iter().find_map(&mut f) {
            return Some(found);
        }
        let ring = lock(&self.shared);
        let from = usize::try_from(self.next.saturating_sub(ring.head)).ok()?;
        ring.items.iter().skip(from).find_map(|slot| f(&slot.item))
    }

    /// Items between this reader and the tail (0 when caught up).
    pub fn behind(&self) -> u64 {
        let ring = lock(&self.shared);
        ring.tail().saturating_sub(self.next.max(ring.head))
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        let mut ring = lock(&self.shared);
        ring.readers = ring.readers.saturating_sub(1);
    }
}

/// The lag policy: a reader that fell behind skips ahead, and one that does so more than `max`
/// times within `window` is dropped.
#[derive(Debug, Clone)]
pub struct LagTracker {
    lags: VecDeque<Instant>,
    max: usize,
    window: Duration,
}

impl LagTracker {
    /// A tracker dropping readers that lag more than `max` times within `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        LagTracker {
            lags: VecDeque::new(),
            max,
            window,
        }
    }

    /// Records one lag; true when the reader has now lagged too often and must be dropped.
    pub fn lagged(&mut self) -> bool {
        let now = Instant::now();
        while self
            .lags
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.lags.pop_front();
        }
        self.lags.push_back(now);
        self.lags.len() > self.max
    }

    /// Lags within the window.
    pub fn count(&self) -> usize {
        self.lags.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: usize, max_items: usize, max_lags: usize) -> FanoutLimits {
        FanoutLimits {
            max_bytes,
            max_items,
            max_lags,
            lag_window: Duration::from_secs(30),
            // These tests are about the other bounds.
            max_gops: usize::MAX,
            min_items: 0,
        }
    }

    #[test]
    fn old_gops_are_evicted_down_to_the_item_floor() {
        let f = Fanout::new(FanoutLimits {
            max_gops: 2,
            min_items: 3,
            ..FanoutLimits::default()
        });
        let mut keeping_up = f.reader();
        // GOPs of 4 items: 0-3, 4-7, 8-11.
        for i in 0..12u32 {
            f.push(i, 1, i % 4 == 0);
        }
        // Two GOPs are left; a new reader starts at the newest.
        assert_eq!(f.stats().items, 8);
        assert_eq!(f.stats().evicted, 4);
        assert_eq!(drain(&mut f.reader()), vec![8, 9, 10, 11]);
        // A reader that kept up until the first GOP left missed it and resumes at a GOP start.
        assert!(matches!(keeping_up.try_recv(), Some(Ok(4))));
        // Every item a GOP start (audio alone): the floor keeps three.
        let audio = Fanout::new(FanoutLimits {
            max_gops: 2,
            min_items: 3,
            ..FanoutLimits::default()
        });
        for i in 0..10u32 {
            audio.push(i, 1, true);
        }
        assert_eq!(audio.stats().items, 3);
        assert_eq!(drain(&mut audio.reader()), vec![9]);
    }

    fn drain(r: &mut Reader<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(Ok(v)) = r.try_recv() {
            out.push(v);
        }
        out
    }

    #[test]
    fn a_new_reader_starts_with_the_header_then_the_last_gop() {
        let f = Fanout::new(FanoutLimits::default());
        f.set_header(vec![100, 101]);
        for (v, key) in [(1, true), (2, false), (3, true), (4, false)] {
            f.push(v, 10, key);
        }
        let mut r = f.reader();
        assert_eq!(drain(&mut r), [100, 101, 3, 4]);
        f.push(5, 10, false);
        assert_eq!(drain(&mut r), [5]);
        assert_eq!(f.stats().readers, 1);
        drop(r);
        assert_eq!(f.stats().readers, 0);
    }

    #[test]
    fn without_a_gop_start_a_reader_waits_for_the_next_one() {
        let f = Fanout::new(FanoutLimits::default());
        f.push(1, 10, false);
        let mut r = f.reader();
        f.push(2, 10, false);
        assert_eq!(drain(&mut r), Vec::<u32>::new());
        f.push(3, 10, true);
        f.push(4, 10, false);
        assert_eq!(drain(&mut r), [3, 4]);
        // A configuration change: new readers wait for the next GOP start.
        f.reset_gop();
        let mut late = f.reader();
        f.push(5, 10, false);
        f.push(6, 10, true);
        assert_eq!(drain(&mut late), [6]);
        // A header set while a reader waits for its first GOP start comes before it.
        f.reset_gop();
        let mut early = f.reader();
        f.set_header(vec![100]);
        f.push(7, 10, false);
        assert_eq!(drain(&mut early), Vec::<u32>::new());
        f.push(8, 10, true);
        assert_eq!(drain(&mut early), [100, 8]);
    }

    #[test]
    fn bytes_and_count_are_bounded_whatever_the_readers_do() {
        let f = Fanout::new(limits(10 * (1000 + ITEM_OVERHEAD), 1000, 5));
        let _stalled = f.reader();
        for i in 0..1000 {
            f.push(i, 1000, i % 10 == 0);
        }
        let s = f.stats();
        assert_eq!(s.items, 10);
        assert!(s.bytes <= 10 * (1000 + ITEM_OVERHEAD), "{s:?}");
        assert_eq!(s.evicted, 990);
        let f = Fanout::new(limits(usize::MAX, 8, 5));
        for i in 0..100 {
            f.push(i, 0, false);
        }
        assert_eq!(f.stats().items, 8);
        // One item larger than the whole budget is still held (and delivered).
        let f = Fanout::new(limits(100, 8, 5));
        f.push(7, 1 << 20, true);
        assert_eq!(drain(&mut f.reader()), [7]);
    }

    #[test]
    fn a_lagging_reader_skips_to_a_gop_start_then_is_dropped() {
        let f = Fanout::new(limits(usize::MAX, 16, 2));
        f.set_header(vec![99]);
        let mut r = f.reader();
        assert_eq!(r.try_recv(), Some(Ok(99)));
        for i in 0..40 {
            f.push(i, 1, i == 0 || i == 30);
        }
        // Items 0..24 were evicted: the reader resumes at GOP start 30 (the header has not
        // changed, so it is not sent again).
        assert_eq!(drain(&mut r), [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
        // A header that changed while the reader was behind comes first after the skip.
        f.set_header(vec![98]);
        for i in 40..60 {
            f.push(i, 1, i == 50);
        }
        assert_eq!(drain(&mut r), [98, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59]);
        for i in 60..100 {
            f.push(i, 1, false);
        }
        assert_eq!(r.try_recv(), Some(Err(Ended::TooSlow)));
        assert_eq!(r.try_recv(), Some(Err(Ended::TooSlow)));
    }

    #[tokio::test]
    async fn readers_wake_on_push_and_end_after_the_rest_on_close() {
        let f = Fanout::new(FanoutLimits::default());
        let mut readers: Vec<Reader<u32>> = (0..3).map(|_| f.reader()).collect();
        let waiting = tokio::spawn(async move {
            let mut got = Vec::new();
            for r in &mut readers {
                got.push(r.recv().await);
            }
            got
        });
        tokio::task::yield_now().await;
        f.push(1, 1, true);
        let got = waiting.await.expect("task");
        assert_eq!(got, [Ok(1), Ok(1), Ok(1)]);
        let mut r = f.reader();
        f.push(2, 1, false);
        f.close();
        f.push(3, 1, false);
        assert_eq!(r.recv().await, Ok(1));
        assert_eq!(r.recv().await, Ok(2));
        assert_eq!(r.recv().await, Err(Ended::Closed));
        assert!(f.is_closed());
    }

    #[tokio::test]
    async fn held_items_wake_no_waiting_reader_until_wake() {
        let f = Arc::new(Fanout::new(FanoutLimits::default()));
        f.push(0, 1, true);
        let mut waiting = f.reader();
        assert_eq!(waiting.try_recv(), Some(Ok(0)));
        let woken = tokio::spawn(async move {
            let first = waiting.recv().await;
            // Whatever was held with it is there at once.
            (first, waiting.try_recv(), waiting.try_recv())
        });
        tokio::task::yield_now().await;
        f.push_held(1, 1, false);
        f.push_held(2, 1, false);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!woken.is_finished(), "a held push woke a waiting reader");
        // A reader that looks sees held items without a wake.
        let mut looking = f.reader();
        assert_eq!(looking.try_recv(), Some(Ok(0)));
        assert_eq!(looking.try_recv(), Some(Ok(1)));
        f.wake();
        let got = woken.await.expect("task");
        assert_eq!(got, (Ok(1), Some(Ok(2)), None));
    }
}
