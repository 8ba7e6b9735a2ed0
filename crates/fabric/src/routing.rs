//! Lookup structures of the forwarding path and how new ones are published.
//!
//! - [`AddressTable`]: non-overlapping address windows, found by a branch-free
//!   binary search over their bases (padded to a power of two; unrolled over
//!   a fixed-size array for up to 16 windows).
//! - [`IdTable`]: a flat table over all 65536 IDs; a lookup is one load.
//! - [`epoch`]: route changes are built aside and swapped in by the reading
//!   core between bursts, RCU style; the hot path takes no lock.

use crate::topology::Window;

/// Non-overlapping address windows, each with a value.
#[derive(Debug, Clone)]
pub struct AddressTable<V> {
    /// The windows sorted by base, padded to a power of two with copies of
    /// the last, so the search is a fixed number of halvings and one that
    /// ends on a copy finds the window it copies.
    slots: Box<[Slot<V>]>,
    /// The slots' bases alone, which a search of more than 16 slots halves
    /// over: it touches a third of the cache lines the slots fill.
    bases: Box<[u64]>,
    /// Windows in the table (before the padding).
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot<V> {
    base: u64,
    /// The last address (inclusive).
    last: u64,
    value: V,
}

/// Two windows given to [`AddressTable::new`] overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// One window.
    pub a: Window,
    /// The window it overlaps.
    pub b: Window,
}

impl<V: Copy> AddressTable<V> {
    /// A table of `entries`; empty windows are left out.
    pub fn new(entries: impl IntoIterator<Item = (Window, V)>) -> Result<Self, Overlap> {
        let mut entries: Vec<(Window, V)> =
            entries.into_iter().filter(|(w, _)| w.size > 0).collect();
        entries.sort_by_key(|(w, _)| w.base);
        for pair in entries.windows(2) {
            let (a, b) = (pair[0].0, pair[1].0);
            if a.base.saturating_add(a.size) > b.base {
                return Err(Overlap { a, b });
            }
        }
        let padded = entries.len().next_power_of_two();
        let mut bases: Vec<u64> = entries.iter().map(|(w, _)| w.base).collect();
        let mut slots: Vec<Slot<V>> = entries
            .iter()
            .map(|&(w, value)| Slot {
                base: w.base,
                last: w.base + (w.size - 1),
                value,
            })
            .collect();
        if let (Some(&base), Some(&slot)) = (bases.last(), slots.last()) {
            bases.resize(padded, base);
            slots.resize(padded, slot);
        }
        Ok(AddressTable {
            bases: bases.into(),
            slots: slots.into(),
            len: entries.len(),
        })
    }

    /// The value of the window holding `address`.
    // Always inlined: called, it returned its value through memory, and
    // the call cost as many instructions as the search.
    #[inline(always)]
    pub fn lookup(&self, address: u64) -> Option<V> {
        let slot = self.search(address)?;
        (slot.base <= address && address <= slot.last).then_some(slot.value)
    }

    /// The last slot whose base is at or below `address` (the first if
    /// none is), or `None` if the table is empty.
    #[inline(always)]
    fn search(&self, address: u64) -> Option<&Slot<V>> {
        let slots = &self.slots[..];
        // Tables of a few windows (most nodes' are) search a fixed-size
        // array: the halvings unroll and no index is checked at run time.
        Some(match slots.len() {
            0 => return None,
            1 => &slots[0],
            2 => search_fixed::<V, 2>(slots.try_into().ok()?, address),
            4 => search_fixed::<V, 4>(slots.try_into().ok()?, address),
            8 => search_fixed::<V, 8>(slots.try_into().ok()?, address),
            16 => search_fixed::<V, 16>(slots.try_into().ok()?, address),
            n => {
                let bases = &self.bases[..];
                let mut i = 0;
                let mut half = n / 2;
                while half > 0 {
                    let mid = i + half;
                    i = core::hint::select_unpredictable(bases[mid] <= address, mid, i);
                    half /= 2;
                }
                slots.get(i)?
            }
        })
    }

    /// The window holding `address` and its value.
    pub fn find(&self, address: u64) -> Option<(Window, V)> {
        let slot = self.search(address)?;
        (slot.base <= address && address <= slot.last).then(|| {
            let size = slot.last - slot.base + 1;
            (
                Window {
                    base: slot.base,
                    size,
                },
                slot.value,
            )
        })
    }

    /// Windows in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no windows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Branch-free halving over `N` (a power of two) sorted slots: the steps do
/// not depend on the data, only the index does, so lookups of a burst
/// overlap in the pipeline.
#[inline(always)]
fn search_fixed<V, const N: usize>(slots: &[Slot<V>; N], address: u64) -> &Slot<V> {
    let mut i = 0;
    let mut half = N / 2;
    while half > 0 {
        // `i` is a multiple of `2 * half` below `N`, so `i + half < N`; the
        // mask says so to the compiler.
        let mid = (i + half) & (N - 1);
        i = core::hint::select_unpredictable(slots[mid].base <= address, mid, i);
        half /= 2;
    }
    &slots[i & (N - 1)]
}

/// A value per 16-bit ID (bus/device/function), `None` where unset.
///
/// Two levels, like a page table: a page of 256 values per bus that has an
/// ID set, and one shared empty page for every other bus. A flat table of
/// all 65,536 IDs is 256 KiB to zero for every table set a migration builds
/// (several per node), and spreads the few IDs a fabric uses over as many
/// cache lines; this one is a few KiB.
#[derive(Debug, Clone)]
pub struct IdTable {
    /// Per bus, the index of its page in `pages`; 0 is the empty page.
    /// Every entry indexes in bounds: `set` pushes a page before pointing
    /// a bus at it, and pages are never removed.
    bus: Box<[u16; 256]>,
    /// Value + 1 per device/function; 0 is unset. Page 0 stays all zero.
    pages: Vec<[u32; 256]>,
}

impl Default for IdTable {
    fn default() -> Self {
        IdTable {
            bus: Box::new([0; 256]),
            pages: vec![[0; 256]],
        }
    }
}

impl IdTable {
    /// Sets the value of an ID.
    pub fn set(&mut self, id: tlp::Bdf, value: u16) {
        let bus = (id.0 >> 8) as usize;
        if self.bus[bus] == 0 {
            // At most 256 pages past the empty one: fits a u16.
            self.bus[bus] = self.pages.len() as u16;
            self.pages.push([0; 256]);
        }
        self.pages[self.bus[bus] as usize][(id.0 & 0xff) as usize] = value as u32 + 1;
    }

    /// The value of an ID.
    #[inline]
    pub fn get(&self, id: tlp::Bdf) -> Option<u16> {
        let page = self.bus[(id.0 >> 8) as usize] as usize;
        let v = self
            .pages
            .get(page)
            .map_or(0, |p| p[(id.0 & 0xff) as usize]);
        (v != 0).then(|| (v - 1) as u16)
    }

    /// IDs set.
    pub fn len(&self) -> usize {
        self.pages.iter().flatten().filter(|&&v| v != 0).count()
    }

    /// Whether no ID is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub mod epoch {
    //! Publishing new tables to a polling core without locks (RCU style).
    //!
    //! The control plane builds a whole new table set and [`Publisher::publish`]es
    //! it through an SPSC ring. The polling core calls [`Reader::refresh`]
    //! between bursts: if something new arrived it swaps its `Arc`, so every
    //! TLP of a burst sees one table set, and a burst never waits. The
    //! publisher keeps its own reference to every set it published until the
    //! reader holds it no longer ([`Publisher::collect`]), so the polling core
    //! only ever decrements a count and never frees memory.

    use rings::spsc::{self, Consumer, Producer};
    use std::sync::Arc;

    /// The control plane's end.
    #[derive(Debug)]
    pub struct Publisher<T> {
        outgoing: Producer<Arc<T>>,
        published: Vec<Arc<T>>,
        epoch: u64,
    }

    /// The polling core's end.
    #[derive(Debug)]
    pub struct Reader<T> {
        current: Arc<T>,
        incoming: Consumer<Arc<T>>,
        epoch: u64,
    }

    /// A publisher and reader starting at `initial` (epoch 0).
    pub fn channel<T>(initial: T) -> (Publisher<T>, Reader<T>) {
        let (outgoing, incoming) = spsc::ring(4);
        let current = Arc::new(initial);
        (
            Publisher {
                outgoing,
                published: vec![current.clone()],
                epoch: 0,
            },
            Reader {
                current,
                incoming,
                epoch: 0,
            },
        )
    }

    impl<T> Publisher<T> {
        /// Sends a new table set; it is in use after the reader's next
        /// refresh. Gives it back if the reader has not taken the last few.
        pub fn publish(&mut self, tables: T) -> Result<u64, T> {
            self.collect();
            let tables = Arc::new(tables);
            match self.outgoing.push(tables.clone()) {
                Ok(()) => {
                    self.published.push(tables);
                    self.epoch += 1;
                    Ok(self.epoch)
                }
                Err(t) => {
                    drop(t);
                    // Only this function holds it now.
                    Err(Arc::into_inner(tables).expect("sole reference"))
                }
            }
        }

        /// Frees table sets the reader no longer holds; returns how many
        /// are still alive (the one in use included).
        pub fn collect(&mut self) -> usize {
            let newest = self.published.len().saturating_sub(1);
            let mut i = 0;
            self.published.retain(|t| {
                let keep = i == newest || Arc::strong_count(t) > 1;
                i += 1;
                keep
            });
            self.published.len()
        }

        /// Epoch of the last set published.
        pub fn epoch(&self) -> u64 {
            self.epoch
        }

        /// Whether the reader has taken the newest set: no older one is
        /// still held by anyone but this publisher.
        pub fn adopted(&self) -> bool {
            let n = self.published.len();
            self.published[..n.saturating_sub(1)]
                .iter()
                .all(|t| Arc::strong_count(t) == 1)
        }
    }

    impl<T> Reader<T> {
        /// The tables in use.
        #[inline]
        pub fn get(&self) -> &T {
            &self.current
        }

        /// Takes the newest published set, if any; call between bursts.
        /// Returns whether the tables changed.
        #[inline]
        pub fn refresh(&mut self) -> bool {
            let mut changed = false;
            while let Some(next) = self.incoming.pop() {
                // The publisher still holds the old set: this only decrements.
                self.current = next;
                self.epoch += 1;
                changed = true;
            }
            changed
        }

        /// How many sets this reader has taken.
        pub fn epoch(&self) -> u64 {
            self.epoch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(base: u64, size: u64) -> Window {
        Window { base, size }
    }

    #[test]
    fn finds_windows_and_misses_gaps() {
        let t = AddressTable::new([(w(0x1000, 0x1000), 1u16), (w(0x4000, 0x10), 2)]).unwrap();
        assert_eq!(t.lookup(0xfff), None);
        assert_eq!(t.lookup(0x1000), Some(1));
        assert_eq!(t.lookup(0x1fff), Some(1));
        assert_eq!(t.lookup(0x2000), None);
        assert_eq!(t.lookup(0x400f), Some(2));
        assert_eq!(t.lookup(0x4010), None);
        assert_eq!(t.lookup(u64::MAX), None);
        assert_eq!(t.find(0x1234), Some((w(0x1000, 0x1000), 1)));
        let top = AddressTable::new([(w(u64::MAX - 0xff, 0x100), 9u8)]).unwrap();
        assert_eq!(top.lookup(u64::MAX), Some(9));
        let empty = AddressTable::<u8>::new([]).unwrap();
        assert_eq!(empty.lookup(0), None);
    }

    #[test]
    fn overlaps_are_refused() {
        let e = AddressTable::new([(w(0x1000, 0x1001), 1u8), (w(0x2000, 0x10), 2)]).unwrap_err();
        assert_eq!(e.b, w(0x2000, 0x10));
    }

    #[test]
    fn id_table_sets_and_gets() {
        let mut t = IdTable::default();
        t.set(tlp::Bdf(0xffff), 7);
        t.set(tlp::Bdf(0), 0);
        assert_eq!(t.get(tlp::Bdf(0xffff)), Some(7));
        assert_eq!(t.get(tlp::Bdf(0)), Some(0));
        assert_eq!(t.get(tlp::Bdf(1)), None);
        assert_eq!(t.len(), 2);
        // A value set again replaces, on a bus that already has its page.
        t.set(tlp::Bdf(0xff01), 3);
        t.set(tlp::Bdf(0xffff), 65535);
        assert_eq!(t.get(tlp::Bdf(0xff01)), Some(3));
        assert_eq!(t.get(tlp::Bdf(0xffff)), Some(65535));
        assert_eq!(t.get(tlp::Bdf(0xfe00)), None);
        assert_eq!(t.len(), 3);
    }

    proptest! {
        /// The table agrees with a map, whatever IDs are set in any order.
        #[test]
        fn id_table_agrees_with_a_map(
            sets in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..400),
            probes in proptest::collection::vec(any::<u16>(), 64),
        ) {
            let mut t = IdTable::default();
            let mut m = std::collections::HashMap::new();
            for (id, v) in &sets {
                t.set(tlp::Bdf(*id), *v);
                m.insert(*id, *v);
            }
            prop_assert_eq!(t.len(), m.len());
            for id in probes.iter().chain(m.keys()) {
                prop_assert_eq!(t.get(tlp::Bdf(*id)), m.get(id).copied());
            }
        }
    }

    proptest! {
        /// The search agrees with a linear scan, for any number of windows
        /// (often few: tables of up to 16 slots take their own path).
        #[test]
        fn agrees_with_a_linear_scan(
            gaps in prop_oneof![
                proptest::collection::vec((1u64..0x1000, 1u64..0x1000), 0..20),
                proptest::collection::vec((1u64..0x1000, 1u64..0x1000), 0..600),
            ],
            probes in proptest::collection::vec(any::<u64>(), 64),
        ) {
            let mut at = 0u64;
            let mut windows = Vec::new();
            for (i, (gap, size)) in gaps.iter().enumerate() {
                at += gap;
                windows.push((w(at, *size), i));
                at += size;
            }
            let t = AddressTable::new(windows.clone()).unwrap();
            let scan = |a: u64| windows.iter().find(|(w, _)| w.base <= a && a < w.base + w.size).map(|x| x.1);
            for p in probes.iter().map(|p| p % (at + 0x2000)) {
                prop_assert_eq!(t.lookup(p), scan(p));
            }
            for (win, i) in &windows {
                prop_assert_eq!(t.lookup(win.base), Some(*i));
                prop_assert_eq!(t.lookup(win.base + win.size - 1), Some(*i));
                prop_assert_eq!(t.find(win.base + win.size / 2), Some((*win, *i)));
            }
            prop_assert_eq!(t.len(), windows.len());
        }
    }

    #[test]
    fn readers_swap_between_bursts_and_publishers_reclaim() {
        let (mut p, mut r) = epoch::channel(1u32);
        assert_eq!(*r.get(), 1);
        assert_eq!(p.publish(2), Ok(1));
        assert_eq!(*r.get(), 1, "nothing changes until the reader refreshes");
        assert!(r.refresh());
        assert_eq!((*r.get(), r.epoch()), (2, 1));
        assert!(!r.refresh());
        assert_eq!(p.collect(), 1, "set 1 is no longer held by the reader");
        // A reader that never refreshes: the ring fills and publish hands back.
        for i in 3..7 {
            assert!(p.publish(i).is_ok());
        }
        assert_eq!(p.publish(99), Err(99));
        assert!(r.refresh());
        assert_eq!(*r.get(), 6);
        assert_eq!(p.collect(), 1);
    }
}
