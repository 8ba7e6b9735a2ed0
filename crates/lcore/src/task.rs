//! Tasks and the cores that poll them.
//!
//! A [`Task`] does one round of work per [`Task::poll`] and says how much
//! it did; a core polls its tasks in a fixed order, forever, until told to
//! stop. [`Deterministic`] runs tasks on the calling thread with a virtual
//! clock, so a run is the same every time; [`Cores`] runs them on threads
//! pinned to cores. A polling core always looks busy to the OS, so each
//! core counts its busy polls (some task did work) and idle polls instead.

use rings::spsc::{self, Producer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A unit of polled work.
pub trait Task: Send {
    /// A name for reports.
    fn name(&self) -> &str;
    /// Does one round of work at time `now` (nanoseconds, real or virtual);
    /// returns how many items (TLPs, frames) it handled: 0 is an idle poll.
    fn poll(&mut self, now: u64) -> usize;
}

impl<T: Task + ?Sized> Task for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    #[inline]
    fn poll(&mut self, now: u64) -> usize {
        (**self).poll(now)
    }
}

/// What one core did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Rounds in which some task did work.
    pub busy_polls: u64,
    /// Rounds in which no task did.
    pub idle_polls: u64,
    /// Items handled.
    pub items: u64,
    /// Rounds that took longer than each of [`ROUND_THRESHOLDS_NS`] (a
    /// round is every task's poll, and anything that kept the core from
    /// them: the OS or the hypervisor taking the CPU shows up here too).
    pub rounds_over: [u64; ROUND_THRESHOLDS_NS.len()],
    /// The longest round, in nanoseconds.
    pub longest_round_ns: u64,
}

/// Round lengths [`CoreStats::rounds_over`] counts: 10, 20, 50 (the
/// shortest completion timeout PCIe allows), 100 and 1,000 µs.
pub const ROUND_THRESHOLDS_NS: [u64; 5] = [10_000, 20_000, 50_000, 100_000, 1_000_000];

/// Counts a round of `ns` nanoseconds.
fn count_round(ns: u64, over: &mut [u64; ROUND_THRESHOLDS_NS.len()], longest: &mut u64) {
    if ns < ROUND_THRESHOLDS_NS[0] {
        return;
    }
    *longest = (*longest).max(ns);
    for (count, threshold) in over.iter_mut().zip(ROUND_THRESHOLDS_NS) {
        *count += u64::from(ns > threshold);
    }
}

impl CoreStats {
    /// The share of rounds that did work (0 when nothing ran).
    pub fn busy_fraction(&self) -> f64 {
        let all = self.busy_polls + self.idle_polls;
        if all == 0 {
            0.0
        } else {
            self.busy_polls as f64 / all as f64
        }
    }
}

/// Runs tasks on the calling thread in a fixed order with a virtual clock
/// that advances `tick` nanoseconds per round: the same inputs give the same
/// run, which is what end-to-end tests need. `T` is the tasks' type: an
/// enum of the kinds a caller reads back keeps them typed.
pub struct Deterministic<T = Box<dyn Task>> {
    tasks: Vec<T>,
    now: u64,
    tick: u64,
    stats: CoreStats,
}

impl<T: Task> std::fmt::Debug for Deterministic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deterministic")
            .field(
                "tasks",
                &self
                    .tasks
                    .iter()
                    .map(|t| t.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("now", &self.now)
            .finish()
    }
}

impl<T: Task> Deterministic<T> {
    /// A runner whose clock starts at 0 and advances `tick` per round.
    pub fn new(tick: u64) -> Deterministic<T> {
        Deterministic {
            tasks: Vec::new(),
            now: 0,
            tick,
            stats: CoreStats::default(),
        }
    }

    /// Adds a task after the others.
    pub fn add(&mut self, task: T) {
        self.tasks.push(task);
    }

    /// The virtual time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// What the rounds so far did.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// One round: every task polled once, in order; then the clock advances.
    pub fn round(&mut self) -> usize {
        let now = self.now;
        let done: usize = self.tasks.iter_mut().map(|t| t.poll(now)).sum();
        if done > 0 {
            self.stats.busy_polls += 1;
        } else {
            self.stats.idle_polls += 1;
        }
        self.stats.items += done as u64;
        self.now += self.tick;
        done
    }

    /// Rounds until `done` says so or `max_rounds` have run; returns whether
    /// `done` said so.
    pub fn run_until(
        &mut self,
        max_rounds: u64,
        mut done: impl FnMut(&Deterministic<T>) -> bool,
    ) -> bool {
        for _ in 0..max_rounds {
            if done(self) {
                return true;
            }
            self.round();
        }
        done(self)
    }

    /// The tasks, to read their state.
    pub fn tasks(&self) -> &[T] {
        &self.tasks
    }

    /// Applies a change between rounds, as a core's control ring would.
    pub fn control(&mut self, change: Control<T>) {
        change(&mut self.tasks);
    }

    /// Takes the tasks back.
    pub fn into_tasks(self) -> Vec<T> {
        self.tasks
    }
}

/// The tasks of one core.
pub type Tasks<T = Box<dyn Task>> = Vec<T>;

/// Counters a core publishes while it runs.
#[derive(Debug, Default)]
struct Published {
    busy: AtomicU64,
    idle: AtomicU64,
    items: AtomicU64,
    rounds_over: [AtomicU64; ROUND_THRESHOLDS_NS.len()],
    longest_round_ns: AtomicU64,
    /// Set when the core has left its loop.
    stopped: AtomicBool,
}

/// One core's work: which CPU to pin to (`None`: unpinned) and its tasks.
pub struct CoreSpec<T = Box<dyn Task>> {
    /// The CPU (an index into `core_affinity::get_core_ids`).
    pub cpu: Option<usize>,
    /// The tasks it polls, in order.
    pub tasks: Vec<T>,
}

impl<T> std::fmt::Debug for CoreSpec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreSpec")
            .field("cpu", &self.cpu)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// A core that did not leave its loop in time when told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    /// Its index in the specs given to [`Cores::start`].
    pub core: usize,
}

/// A change for a core to apply between rounds, with its tasks in hand
/// (swap a task's tables, pause or release, switch a VDI's mode).
pub type Control<T = Box<dyn Task>> = Box<dyn FnOnce(&mut Tasks<T>) + Send>;

/// Poll-mode cores on threads, pinned where asked; they hand their tasks
/// back, of their own type `T`, when stopped.
pub struct Cores<T = Box<dyn Task>> {
    controls: Vec<Producer<Control<T>>>,
    stop: Arc<AtomicBool>,
    published: Vec<Arc<Published>>,
    handles: Vec<Option<std::thread::JoinHandle<Tasks<T>>>>,
    started: Instant,
}

impl<T> std::fmt::Debug for Cores<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cores")
            .field("cores", &self.handles.len())
            .finish()
    }
}

impl<T: Task + 'static> Cores<T> {
    /// Starts one thread per spec. A pin that fails (no such CPU, or the OS
    /// refuses) leaves that thread unpinned rather than failing the start.
    pub fn start(specs: Vec<CoreSpec<T>>) -> Cores<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        let started = Instant::now();
        let mut published = Vec::new();
        let mut handles = Vec::new();
        let mut controls = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let (control_tx, mut control_rx) = spsc::ring::<Control<T>>(64);
            controls.push(control_tx);
            let p = Arc::new(Published::default());
            published.push(p.clone());
            let stop = stop.clone();
            let cpu = spec.cpu.and_then(|c| ids.get(c).copied());
            let mut tasks = spec.tasks;
            let handle = std::thread::Builder::new()
                .name(format!("lcore-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        core_affinity::set_for_current(cpu);
                    }
                    let (mut busy, mut idle, mut items) = (0u64, 0u64, 0u64);
                    let mut over = [0u64; ROUND_THRESHOLDS_NS.len()];
                    let mut longest = 0u64;
                    let mut round = 0u64;
                    let mut last = started.elapsed().as_nanos() as u64;
                    let publish =
                        |busy, idle, items, over: &[u64; ROUND_THRESHOLDS_NS.len()], longest| {
                            p.busy.store(busy, Ordering::Relaxed);
                            p.idle.store(idle, Ordering::Relaxed);
                            p.items.store(items, Ordering::Relaxed);
                            for (to, from) in p.rounds_over.iter().zip(over) {
                                to.store(*from, Ordering::Relaxed);
                            }
                            p.longest_round_ns.store(longest, Ordering::Relaxed);
                        };
                    while !stop.load(Ordering::Relaxed) {
                        // Control changes apply between rounds, never inside one.
                        while let Some(change) = control_rx.pop() {
                            change(&mut tasks);
                        }
                        let now = started.elapsed().as_nanos() as u64;
                        count_round(now.saturating_sub(last), &mut over, &mut longest);
                        last = now;
                        let done: usize = tasks.iter_mut().map(|t| t.poll(now)).sum();
                        if done > 0 {
                            busy += 1;
                        } else {
                            idle += 1;
                        }
                        items += done as u64;
                        round += 1;
                        // Publish now and then, not every round.
                        if round.is_multiple_of(1024) {
                            publish(busy, idle, items, &over, longest);
                        }
                    }
                    publish(busy, idle, items, &over, longest);
                    p.stopped.store(true, Ordering::Release);
                    tasks
                })
                .ok();
            handles.push(handle);
        }
        Cores {
            controls,
            stop,
            published,
            handles,
            started,
        }
    }

    /// Sends a change to core `core`, applied before its next round; gives
    /// it back if that core's control ring is full or there is no such core.
    pub fn control(&mut self, core: usize, change: Control<T>) -> Result<(), Control<T>> {
        match self.controls.get_mut(core) {
            Some(ring) => ring.push(change),
            None => Err(change),
        }
    }

    /// What each core has done so far (updated every 1024 rounds).
    pub fn stats(&self) -> Vec<CoreStats> {
        self.published
            .iter()
            .map(|p| CoreStats {
                busy_polls: p.busy.load(Ordering::Relaxed),
                idle_polls: p.idle.load(Ordering::Relaxed),
                items: p.items.load(Ordering::Relaxed),
                rounds_over: std::array::from_fn(|i| p.rounds_over[i].load(Ordering::Relaxed)),
                longest_round_ns: p.longest_round_ns.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Time since the cores started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Tells every core to stop and waits up to `patience` for each; gives
    /// back every core's tasks, or the first core that is stuck.
    pub fn stop(mut self, patience: Duration) -> Result<Vec<Tasks<T>>, Stuck> {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + patience;
        let mut out = Vec::new();
        for (core, (handle, p)) in self.handles.iter_mut().zip(&self.published).enumerate() {
            while !p.stopped.load(Ordering::Acquire) {
                if Instant::now() >= deadline {
                    return Err(Stuck { core });
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            match handle.take().map(|h| h.join()) {
                Some(Ok(tasks)) => out.push(tasks),
                _ => out.push(Vec::new()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter {
        left: usize,
        seen: Vec<u64>,
    }

    impl Task for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn poll(&mut self, now: u64) -> usize {
            if self.left == 0 {
                return 0;
            }
            self.left -= 1;
            self.seen.push(now);
            1
        }
    }

    #[test]
    fn deterministic_runs_repeat() {
        let run = || {
            let mut d = Deterministic::new(10);
            d.add(Box::new(Counter {
                left: 3,
                seen: Vec::new(),
            }));
            d.run_until(100, |d| d.stats().items == 3);
            (d.now(), d.stats())
        };
        assert_eq!(run(), run());
        let (now, stats) = run();
        assert_eq!((now, stats.busy_polls, stats.idle_polls), (30, 3, 0));
    }

    #[test]
    fn cores_run_tasks_and_give_them_back() {
        let cores = Cores::start(vec![CoreSpec {
            cpu: Some(0),
            tasks: vec![Counter {
                left: 1000,
                seen: Vec::new(),
            }],
        }]);
        let t0 = Instant::now();
        while cores.stats()[0].items < 1000 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let tasks = cores.stop(Duration::from_secs(5)).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].len(), 1);
        // Handed back with their type: their state reads without a cast.
        assert_eq!(tasks[0][0].left, 0);
    }

    #[test]
    fn control_changes_apply_between_rounds() {
        let mut cores = Cores::start(vec![CoreSpec {
            cpu: None,
            tasks: vec![Box::new(Counter {
                left: 0,
                seen: Vec::new(),
            }) as Box<dyn Task>],
        }]);
        let (tx, rx) = std::sync::mpsc::channel();
        let change: Control = Box::new(move |tasks: &mut Tasks| {
            tx.send(tasks.len()).unwrap();
        });
        assert!(cores.control(0, change).is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        assert!(
            cores.control(7, Box::new(|_: &mut Tasks| {})).is_err(),
            "no such core"
        );
        cores.stop(Duration::from_secs(5)).unwrap();
    }

    /// Sleeps 2 ms in its first poll, then does nothing.
    struct SlowOnce(bool);

    impl Task for SlowOnce {
        fn name(&self) -> &str {
            "slow once"
        }
        fn poll(&mut self, _: u64) -> usize {
            if !self.0 {
                self.0 = true;
                std::thread::sleep(Duration::from_millis(2));
            }
            0
        }
    }

    #[test]
    fn a_long_round_is_counted_against_every_threshold_it_passes() {
        let cores = Cores::start(vec![CoreSpec {
            cpu: None,
            tasks: vec![Box::new(SlowOnce(false))],
        }]);
        let t0 = Instant::now();
        while cores.stats()[0].longest_round_ns == 0 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let s = cores.stats()[0];
        cores.stop(Duration::from_secs(5)).unwrap();
        assert!(s.longest_round_ns >= 2_000_000, "{s:?}");
        // The sleep passes every threshold; the OS may add rounds of its own.
        assert!(s.rounds_over.iter().all(|&n| n >= 1), "{s:?}");
        assert!(s.rounds_over.windows(2).all(|w| w[0] >= w[1]), "{s:?}");
    }

    #[test]
    fn rounds_are_counted_by_the_thresholds_they_pass() {
        let (mut over, mut longest) = ([0; ROUND_THRESHOLDS_NS.len()], 0);
        for ns in [5_000, 10_000, 10_001, 60_000, 2_000_000] {
            count_round(ns, &mut over, &mut longest);
        }
        assert_eq!(over, [3, 2, 2, 1, 1]);
        assert_eq!(longest, 2_000_000);
    }

    struct Stubborn;

    impl Task for Stubborn {
        fn name(&self) -> &str {
            "stubborn"
        }
        fn poll(&mut self, _: u64) -> usize {
            std::thread::sleep(Duration::from_millis(300));
            0
        }
    }

    #[test]
    fn a_stuck_core_is_reported_not_waited_on() {
        let cores = Cores::start(vec![CoreSpec {
            cpu: None,
            tasks: vec![Box::new(Stubborn)],
        }]);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(
            cores.stop(Duration::from_millis(20)).err(),
            Some(Stuck { core: 0 })
        );
    }
}
