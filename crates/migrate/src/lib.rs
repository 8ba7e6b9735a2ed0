//! The migration orchestrator.
//!
//! A [`Migration`] is a state machine that moves one binding through its
//! phases — *prepare*, *quiesce*, *move*, *release*, *complete* — asking a
//! [`Plane`] (the dataplane, or a model of it in tests) to act, and never
//! blocking: [`Migration::step`] is polled, records the time every phase
//! begins, and abandons a migration whose blackout outgrows its budget. No
//! phase before the switch-over waits on the plane longer than the
//! migration's deadline, whatever goes wrong in the fabric. Until the
//! switch-over a migration can be abandoned, by the budget, the deadline or
//! on request, and the plane rolls back to the source with nothing lost;
//! after it, the binding is committed to the destination (as a hypervisor's
//! live migration is once the destination runs).
//!
//! [`Orchestrator`] runs a schedule of migrations one after another as an
//! [`lcore::Task`], over any [`Fabric`]: the plane over the in-process
//! fabric is `assembly::FabricPlane`; a plane over node processes speaks to
//! them over the control plane. The state machine is the same for both.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod orchestrator;

pub use error::PlaneError;
pub use orchestrator::{Fabric, Orchestrator, Schedule};

pub use rings::pause::IdMode;

/// How long a phase before the switch-over may wait on the plane unless
/// told otherwise: a hundred times the drain budget of a pause point, far
/// beyond any wait a working fabric makes.
pub const DEFAULT_DEADLINE: u64 = 100_000_000;

/// The phases of a migration, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The destination's routes and VDI are made; both instantiations
    /// operate (claims 1–4).
    Prepare,
    /// The source stops issuing; the pause points close, draining
    /// completions first when IDs differ (claims 13, 14).
    Quiesce,
    /// The VM's state moves; the VDIs serve what they support (claim 18).
    Move,
    /// Routes are re-pointed and held traffic is released in order
    /// (claim 12).
    Release,
    /// Completion is indicated to the destination; the VDI passes through
    /// again (claims 8, 9).
    Complete,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 5] = [
        Phase::Prepare,
        Phase::Quiesce,
        Phase::Move,
        Phase::Release,
        Phase::Complete,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Quiesce => "quiesce",
            Phase::Move => "move",
            Phase::Release => "release",
            Phase::Complete => "complete",
        }
    }

    /// Whether a migration in this phase can still be abandoned where it
    /// is. Past the switch-over what was released cannot be taken back: an
    /// abort there migrates the binding back instead.
    pub fn abortable(self) -> bool {
        self <= Phase::Move
    }
}

/// The two kinds of migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationKind {
    /// A VM's binding moves to another host's domain; the function stays.
    Vm,
    /// The function's state moves to another function of the device; the
    /// host binding stays.
    Endpoint,
}

/// What to migrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Which kind of migration.
    pub kind: MigrationKind,
    /// The binding (index in the topology).
    pub binding: usize,
    /// The host it leaves (VM migration), or the function (endpoint
    /// migration: 0 for the PF, N for VF N).
    pub from: usize,
    /// The host it goes to, or the function.
    pub to: usize,
    /// How origin and destination identify requests.
    pub id_mode: IdMode,
}

impl Plan {
    /// The same move the other way.
    pub fn reversed(self) -> Plan {
        Plan {
            from: self.to,
            to: self.from,
            ..self
        }
    }
}

/// Why a migration was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// The blackout so far exceeded the budget before the switch-over.
    Budget {
        /// Nanoseconds paused by then.
        paused_ns: u64,
    },
    /// A phase waited on the plane longer than the deadline (something in
    /// the fabric did not answer: a pause point that never closed, a VM or
    /// a function's state never handed over).
    Deadline {
        /// What the phase was waiting for.
        waiting_for: &'static str,
        /// Nanoseconds it waited.
        waited_ns: u64,
    },
    /// Asked for (fault injection, or an operator).
    Requested,
    /// Requests in flight did not complete within the drain budget.
    DrainTimeout,
    /// The plane could not do what a phase needs.
    Plane(PlaneError),
}

/// How a migration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The binding runs at the destination.
    Completed,
    /// Rolled back to the source, in this phase, for this reason.
    Aborted {
        /// The phase it was in.
        phase: Phase,
        /// Why.
        reason: AbortReason,
    },
}

/// The timestamped record of one migration (nanoseconds on the clock the
/// migration was stepped with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What moved.
    pub plan: Plan,
    /// When each phase began (`None`: never reached).
    pub phases: [Option<u64>; 5],
    /// When the pause points closed.
    pub closed: Option<u64>,
    /// When the last held TLP was released (or the roll-back finished).
    pub reopened: Option<u64>,
    /// When it finished.
    pub finished: Option<u64>,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
}

impl Record {
    fn new(plan: Plan) -> Record {
        Record {
            plan,
            phases: [None; 5],
            closed: None,
            reopened: None,
            finished: None,
            outcome: None,
        }
    }

    /// Nanoseconds from each phase's start to the next's (or to the end).
    pub fn phase_durations(&self) -> [Option<u64>; 5] {
        let mut out = [None; 5];
        for (i, start) in self.phases.iter().enumerate() {
            let end = self.phases[i + 1..]
                .iter()
                .flatten()
                .next()
                .copied()
                .or(self.finished);
            if let (Some(s), Some(e)) = (start, end) {
                out[i] = Some(e.saturating_sub(*s));
            }
        }
        out
    }

    /// The migration's blackout: pause closed to the last held TLP
    /// released.
    pub fn blackout(&self) -> Option<u64> {
        Some(self.reopened?.saturating_sub(self.closed?))
    }
}

/// What the orchestrator asks of the dataplane. Every call returns at
/// once; the `*ed` queries are polled until they hold.
pub trait Plane {
    /// Builds the destination's routes and instantiation; both operate
    /// from now on.
    fn prepare(&mut self, plan: &Plan, now: u64) -> Result<(), PlaneError>;
    /// Whether the destination is ready to take over: its routes in use and
    /// its host done enumerating its instantiation.
    fn prepared(&mut self, _plan: &Plan) -> bool {
        true
    }
    /// Stops the source issuing and starts closing the pause points.
    fn quiesce(&mut self, plan: &Plan, now: u64);
    /// Whether every pause point of the binding has closed.
    fn closed(&mut self, plan: &Plan) -> bool;
    /// Whether the close followed a complete drain (different IDs): when a
    /// drain's budget runs out, completions still to come would return to
    /// the source's ID after the VM left, so the migration is abandoned.
    fn drained(&mut self, plan: &Plan) -> bool;
    /// Asks the source for the VM's state, once everything that passed the
    /// pause points has reached it.
    fn hand_over(&mut self, plan: &Plan, now: u64);
    /// Whether the state is here and every request the source sent has
    /// reached the pause points.
    fn handed(&mut self, plan: &Plan) -> bool;
    /// Re-points routes and translations at the destination, then releases
    /// what is held and starts the VM there.
    fn switch_over(&mut self, plan: &Plan, now: u64);
    /// Whether everything held has been released.
    fn released(&mut self, plan: &Plan) -> bool;
    /// Indicates completion to the destination; the VDI passes through.
    fn complete(&mut self, plan: &Plan, now: u64);
    /// Undoes what phase `phase` and those before it did.
    fn roll_back(&mut self, plan: &Plan, phase: Phase, now: u64);
    /// Whether the roll-back has finished (nothing held any more).
    fn rolled_back(&mut self, plan: &Plan) -> bool;
    /// Whether `plan` may start now (its destination is free of what an
    /// earlier migration left in flight toward it).
    fn ready(&self, _plan: &Plan) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    In(Phase),
    RollingBack(Phase),
    /// Aborted past the switch-over: migrating back.
    Returning,
    Finished,
}

/// One migration in progress.
#[derive(Debug)]
pub struct Migration {
    step: Step,
    record: Record,
    budget: u64,
    deadline: u64,
    /// When it was first stepped (waiting to start counts too).
    created: Option<u64>,
    abort_in: Option<Phase>,
    started: bool,
    /// The plane was asked to prepare (and did).
    preparing: bool,
    /// The migration back, after an abort past the switch-over.
    back: Option<Box<Migration>>,
}

impl Migration {
    /// A migration of `plan` whose blackout may last `budget_ns` at most.
    pub fn new(plan: Plan, budget_ns: u64) -> Migration {
        Migration {
            step: Step::In(Phase::Prepare),
            record: Record::new(plan),
            budget: budget_ns,
            deadline: DEFAULT_DEADLINE,
            created: None,
            abort_in: None,
            started: false,
            preparing: false,
            back: None,
        }
    }

    /// No phase before the switch-over waits on the plane longer than
    /// `deadline_ns` (default [`DEFAULT_DEADLINE`]): past it the migration
    /// is rolled back (or, not yet started, given up).
    pub fn with_deadline(mut self, deadline_ns: u64) -> Migration {
        self.deadline = deadline_ns;
        self
    }

    /// Abandons the migration when it reaches `phase` (fault injection).
    /// Up to [`Phase::Move`] it rolls back from there; in
    /// [`Phase::Release`] or [`Phase::Complete`] it finishes releasing
    /// (nothing released can be taken back) and migrates the binding back.
    pub fn abort_in(mut self, phase: Phase) -> Migration {
        self.abort_in = Some(phase);
        self
    }

    /// Its record so far.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The phase it is in (`None` once finished or rolling back).
    pub fn phase(&self) -> Option<Phase> {
        match self.step {
            Step::In(p) => Some(p),
            _ => None,
        }
    }

    /// Whether it has ended, either way.
    pub fn finished(&self) -> bool {
        self.step == Step::Finished
    }

    fn enter(&mut self, phase: Phase, now: u64) {
        self.step = Step::In(phase);
        self.record.phases[phase as usize] = Some(now);
    }

    fn abort(&mut self, plane: &mut dyn Plane, phase: Phase, reason: AbortReason, now: u64) {
        plane.roll_back(&self.record.plan, phase, now);
        self.record.outcome = Some(Outcome::Aborted { phase, reason });
        self.step = Step::RollingBack(phase);
    }

    /// Whether a wait that began at `since` has outlasted the deadline.
    fn overdue(&self, since: Option<u64>, now: u64) -> Option<u64> {
        let waited = now.saturating_sub(since?);
        (waited > self.deadline).then_some(waited)
    }

    /// Rolls back from `phase` if it has waited on the plane (for
    /// `waiting_for`) past the deadline.
    fn abort_if_overdue(
        &mut self,
        plane: &mut dyn Plane,
        phase: Phase,
        waiting_for: &'static str,
        now: u64,
    ) {
        if let Some(waited_ns) = self.overdue(self.record.phases[phase as usize], now) {
            let reason = AbortReason::Deadline {
                waiting_for,
                waited_ns,
            };
            self.abort(plane, phase, reason, now);
        }
    }

    /// Advances as far as the plane allows now.
    pub fn step(&mut self, plane: &mut dyn Plane, now: u64) {
        let plan = self.record.plan;
        let created = *self.created.get_or_insert(now);
        loop {
            let before = self.step;
            match self.step {
                Step::Finished => return,
                Step::In(Phase::Prepare) => {
                    if !self.started {
                        if !plane.ready(&plan) {
                            // Nothing is paused yet: a migration that cannot
                            // start is given up, not rolled back.
                            if let Some(waited) = self.overdue(Some(created), now) {
                                self.record.outcome = Some(Outcome::Aborted {
                                    phase: Phase::Prepare,
                                    reason: AbortReason::Deadline {
                                        waiting_for: "the destination to be ready",
                                        waited_ns: waited,
                                    },
                                });
                                self.record.finished = Some(now);
                                self.step = Step::Finished;
                            }
                            return;
                        }
                        self.started = true;
                        self.enter(Phase::Prepare, now);
                    }
                    if self.preparing {
                        if plane.prepared(&plan) {
                            // Quiescing starts at the next step, so the time
                            // preparing took shows as the prepare phase's.
                            self.step = Step::In(Phase::Quiesce);
                            return;
                        }
                        let waiting_for = "the destination to prepare";
                        self.abort_if_overdue(plane, Phase::Prepare, waiting_for, now);
                    } else if self.abort_in == Some(Phase::Prepare) {
                        self.abort(plane, Phase::Prepare, AbortReason::Requested, now);
                    } else if let Err(e) = plane.prepare(&plan, now) {
                        self.abort(plane, Phase::Prepare, AbortReason::Plane(e), now);
                    } else {
                        self.preparing = true;
                        continue;
                    }
                }
                Step::In(Phase::Quiesce) => {
                    if self.record.phases[Phase::Quiesce as usize].is_none() {
                        self.enter(Phase::Quiesce, now);
                        plane.quiesce(&plan, now);
                    }
                    if plane.closed(&plan) {
                        self.record.closed = Some(now);
                        if self.abort_in == Some(Phase::Quiesce) {
                            self.abort(plane, Phase::Quiesce, AbortReason::Requested, now);
                        } else if !plane.drained(&plan) {
                            self.abort(plane, Phase::Quiesce, AbortReason::DrainTimeout, now);
                        } else {
                            self.enter(Phase::Move, now);
                            plane.hand_over(&plan, now);
                        }
                    } else {
                        self.abort_if_overdue(
                            plane,
                            Phase::Quiesce,
                            "the pause points to close",
                            now,
                        );
                    }
                }
                Step::In(Phase::Move) => {
                    let paused = now.saturating_sub(self.record.closed.unwrap_or(now));
                    if !plane.handed(&plan) {
                        // Held traffic waits for the hand-over: the budget
                        // and the deadline bound that wait too.
                        if paused > self.budget {
                            let reason = AbortReason::Budget { paused_ns: paused };
                            self.abort(plane, Phase::Move, reason, now);
                        } else {
                            self.abort_if_overdue(plane, Phase::Move, "the hand-over", now);
                        }
                    } else if self.abort_in == Some(Phase::Move) {
                        self.abort(plane, Phase::Move, AbortReason::Requested, now);
                    } else if paused > self.budget {
                        let reason = AbortReason::Budget { paused_ns: paused };
                        self.abort(plane, Phase::Move, reason, now);
                    } else {
                        self.enter(Phase::Release, now);
                        plane.switch_over(&plan, now);
                    }
                }
                Step::In(Phase::Release) => {
                    if plane.released(&plan) {
                        self.record.reopened = Some(now);
                        self.enter(Phase::Complete, now);
                        plane.complete(&plan, now);
                        match self.abort_in {
                            Some(phase @ (Phase::Release | Phase::Complete)) => {
                                self.record.outcome = Some(Outcome::Aborted {
                                    phase,
                                    reason: AbortReason::Requested,
                                });
                                self.step = Step::Returning;
                            }
                            _ => {
                                self.record.outcome = Some(Outcome::Completed);
                                self.record.finished = Some(now);
                                self.step = Step::Finished;
                            }
                        }
                    }
                }
                Step::Returning => {
                    // Back to the source with no blackout budget: a binding
                    // left at the destination would not be rolled back. A
                    // return that is itself abandoned (a drain that ran
                    // out) is tried again.
                    let deadline = self.deadline;
                    let back = self.back.get_or_insert_with(|| {
                        Box::new(Migration::new(plan.reversed(), u64::MAX).with_deadline(deadline))
                    });
                    back.step(plane, now);
                    if back.finished() {
                        if back.record.outcome == Some(Outcome::Completed) {
                            self.record.reopened = back.record.reopened;
                            self.record.finished = Some(now);
                            self.step = Step::Finished;
                        } else {
                            self.back = None;
                        }
                    }
                    return;
                }
                Step::In(Phase::Complete) => self.step = Step::Finished,
                Step::RollingBack(_) => {
                    if plane.rolled_back(&plan) {
                        if self.record.closed.is_some() {
                            self.record.reopened = Some(now);
                        }
                        self.record.finished = Some(now);
                        self.step = Step::Finished;
                    }
                }
            }
            if self.step == before {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane that answers each query after a fixed number of asks, and
    /// logs what it was told.
    #[derive(Default)]
    struct Scripted {
        log: Vec<String>,
        asks: u32,
        fail_prepare: bool,
        drain_expires: bool,
        /// The (from, to) of every plan prepared.
        prepared: Vec<(usize, usize)>,
        /// Plans back toward 0 not ready for this many asks.
        back_unready: std::cell::Cell<u32>,
        /// A query that never holds (a fabric that stopped answering).
        never: Option<&'static str>,
    }

    impl Scripted {
        fn after(&mut self, n: u32, what: &str) -> bool {
            if self.never == Some(what) {
                return false;
            }
            self.asks += 1;
            let ok = self.asks > n;
            if ok {
                self.asks = 0;
                self.log.push(what.into());
            }
            ok
        }
    }

    impl Plane for Scripted {
        fn prepare(&mut self, plan: &Plan, _: u64) -> Result<(), PlaneError> {
            self.log.push("prepare".into());
            self.prepared.push((plan.from, plan.to));
            if self.fail_prepare {
                return Err(PlaneError::NoWindow {
                    host: "b".into(),
                    binding: plan.binding,
                });
            }
            Ok(())
        }
        fn prepared(&mut self, _: &Plan) -> bool {
            self.after(0, "prepared")
        }
        fn quiesce(&mut self, _: &Plan, _: u64) {
            self.log.push("quiesce".into());
        }
        fn closed(&mut self, _: &Plan) -> bool {
            self.after(2, "closed")
        }
        fn drained(&mut self, _: &Plan) -> bool {
            !self.drain_expires
        }
        fn hand_over(&mut self, _: &Plan, _: u64) {
            self.log.push("hand_over".into());
        }
        fn handed(&mut self, _: &Plan) -> bool {
            self.after(1, "handed")
        }
        fn switch_over(&mut self, _: &Plan, _: u64) {
            self.log.push("switch_over".into());
        }
        fn released(&mut self, _: &Plan) -> bool {
            self.after(1, "released")
        }
        fn complete(&mut self, _: &Plan, _: u64) {
            self.log.push("complete".into());
        }
        fn roll_back(&mut self, _: &Plan, phase: Phase, _: u64) {
            self.log.push(format!("roll_back {}", phase.name()));
        }
        fn rolled_back(&mut self, _: &Plan) -> bool {
            self.after(0, "rolled_back")
        }
        fn ready(&self, plan: &Plan) -> bool {
            if self.never == Some("ready") {
                return false;
            }
            let left = self.back_unready.get();
            if plan.to == 0 && left > 0 {
                self.back_unready.set(left - 1);
                return false;
            }
            true
        }
    }

    const PLAN: Plan = Plan {
        kind: MigrationKind::Vm,
        binding: 0,
        from: 0,
        to: 1,
        id_mode: IdMode::Different,
    };

    fn aborted_on_request(phase: Phase) -> Option<Outcome> {
        Some(Outcome::Aborted {
            phase,
            reason: AbortReason::Requested,
        })
    }

    fn run(m: &mut Migration, plane: &mut Scripted, step_ns: u64) -> u64 {
        let mut now = 1000;
        while !m.finished() {
            m.step(plane, now);
            now += step_ns;
            assert!(now < 1_000_000, "stuck");
        }
        now
    }

    #[test]
    fn phases_run_in_order_with_their_times() {
        let mut plane = Scripted::default();
        let mut m = Migration::new(PLAN, 1_000_000);
        run(&mut m, &mut plane, 10);
        assert_eq!(
            plane.log,
            [
                "prepare",
                "prepared",
                "quiesce",
                "closed",
                "hand_over",
                "handed",
                "switch_over",
                "released",
                "complete"
            ]
        );
        let r = m.record();
        assert_eq!(r.outcome, Some(Outcome::Completed));
        assert_eq!(r.phases[0], Some(1000));
        // Quiescing starts a step after preparing; closed on the third ask,
        // handed on the second ask of move, released on the second.
        assert_eq!(r.phases[Phase::Quiesce as usize], Some(1010));
        assert_eq!(r.closed, Some(1030));
        assert_eq!(r.phases[Phase::Release as usize], Some(1040));
        assert_eq!(r.reopened, Some(1050));
        assert_eq!(r.blackout(), Some(20));
        let d = r.phase_durations();
        assert_eq!(d[Phase::Prepare as usize], Some(10));
        assert_eq!(d[Phase::Quiesce as usize], Some(20));
        assert_eq!(d[Phase::Complete as usize], Some(0));
    }

    #[test]
    fn an_abort_in_each_abortable_phase_rolls_back_from_there() {
        for phase in [Phase::Prepare, Phase::Quiesce, Phase::Move] {
            let mut plane = Scripted::default();
            let mut m = Migration::new(PLAN, u64::MAX).abort_in(phase);
            run(&mut m, &mut plane, 10);
            assert_eq!(m.record().outcome, aborted_on_request(phase));
            let expected = format!("roll_back {}", phase.name());
            assert!(plane.log.contains(&expected), "{:?}", plane.log);
            assert!(!plane.log.iter().any(|l| l == "switch_over"), "{phase:?}");
            assert_eq!(plane.log.last().unwrap(), "rolled_back");
        }
    }

    #[test]
    fn an_abort_past_the_switch_over_migrates_the_binding_back() {
        for phase in [Phase::Release, Phase::Complete] {
            let mut plane = Scripted {
                back_unready: std::cell::Cell::new(3),
                ..Scripted::default()
            };
            let mut m = Migration::new(PLAN, u64::MAX).abort_in(phase);
            run(&mut m, &mut plane, 10);
            assert_eq!(m.record().outcome, aborted_on_request(phase));
            // Released in full, then the whole way back once the source was
            // ready to take it; nothing rolled back in place.
            assert_eq!(plane.prepared, [(0, 1), (1, 0)], "{phase:?}");
            assert_eq!(plane.back_unready.get(), 0);
            let count = |what: &str| plane.log.iter().filter(|l| *l == what).count();
            assert_eq!((count("switch_over"), count("complete")), (2, 2));
            assert!(!plane.log.iter().any(|l| l.starts_with("roll_back")));
            let r = m.record();
            assert!(r.reopened.unwrap() > r.phases[Phase::Complete as usize].unwrap());
            assert!(r.finished >= r.reopened);
        }
    }

    #[test]
    fn the_budget_is_decided_at_the_switch_over() {
        let mut plane = Scripted::default();
        // Closed at 1030, handed at 1040: 10 ns paused, over a 5 ns budget.
        let mut m = Migration::new(PLAN, 5);
        run(&mut m, &mut plane, 10);
        assert_eq!(
            m.record().outcome,
            Some(Outcome::Aborted {
                phase: Phase::Move,
                reason: AbortReason::Budget { paused_ns: 10 }
            })
        );
        let mut m = Migration::new(PLAN, 10);
        run(&mut m, &mut Scripted::default(), 10);
        assert_eq!(m.record().outcome, Some(Outcome::Completed));
    }

    #[test]
    fn no_phase_before_the_switch_over_waits_past_the_deadline() {
        for (never, phase, waiting_for) in [
            ("prepared", Phase::Prepare, "the destination to prepare"),
            ("closed", Phase::Quiesce, "the pause points to close"),
            ("handed", Phase::Move, "the hand-over"),
        ] {
            let mut plane = Scripted {
                never: Some(never),
                ..Scripted::default()
            };
            let mut m = Migration::new(PLAN, u64::MAX).with_deadline(1_000);
            let end = run(&mut m, &mut plane, 10);
            match &m.record().outcome {
                Some(Outcome::Aborted {
                    phase: p,
                    reason:
                        AbortReason::Deadline {
                            waiting_for: w,
                            waited_ns,
                        },
                }) => {
                    assert_eq!((*p, *w), (phase, waiting_for));
                    assert!((1_000..1_100).contains(waited_ns), "{waited_ns}");
                }
                other => panic!("{never}: {other:?}"),
            }
            // Rolled back from where it was stuck, never switched over.
            assert!(plane.log.contains(&format!("roll_back {}", phase.name())));
            assert!(!plane.log.iter().any(|l| l == "switch_over"));
            assert_eq!(plane.log.last().unwrap(), "rolled_back");
            assert!(end < 3_000, "gave up at {end}");
        }
    }

    #[test]
    fn the_budget_bounds_a_hand_over_that_never_comes() {
        let mut plane = Scripted {
            never: Some("handed"),
            ..Scripted::default()
        };
        // Closed at 1030; nothing hands over. A 500 ns budget ends the wait
        // long before the 1 s deadline would.
        let mut m = Migration::new(PLAN, 500);
        run(&mut m, &mut plane, 10);
        match m.record().outcome {
            Some(Outcome::Aborted {
                phase: Phase::Move,
                reason: AbortReason::Budget { paused_ns },
            }) => assert!((500..520).contains(&paused_ns), "{paused_ns}"),
            ref other => panic!("{other:?}"),
        }
        let r = m.record();
        assert!(r.blackout().unwrap() < 600, "{r:?}");
    }

    #[test]
    fn a_migration_that_cannot_start_is_given_up_at_the_deadline() {
        let mut plane = Scripted {
            never: Some("ready"),
            ..Scripted::default()
        };
        let mut m = Migration::new(PLAN, u64::MAX).with_deadline(1_000);
        run(&mut m, &mut plane, 10);
        assert!(matches!(
            m.record().outcome,
            Some(Outcome::Aborted {
                phase: Phase::Prepare,
                reason: AbortReason::Deadline { .. }
            })
        ));
        // Nothing was done to the fabric.
        assert!(plane.log.is_empty(), "{:?}", plane.log);
    }

    #[test]
    fn a_drain_that_runs_out_of_time_abandons_the_migration() {
        let mut plane = Scripted {
            drain_expires: true,
            ..Scripted::default()
        };
        let mut m = Migration::new(PLAN, u64::MAX);
        run(&mut m, &mut plane, 10);
        assert_eq!(
            m.record().outcome,
            Some(Outcome::Aborted {
                phase: Phase::Quiesce,
                reason: AbortReason::DrainTimeout
            })
        );
        assert!(!plane.log.iter().any(|l| l == "hand_over"));
    }

    #[test]
    fn a_plane_that_cannot_prepare_leaves_the_source_alone() {
        let mut plane = Scripted {
            fail_prepare: true,
            ..Scripted::default()
        };
        let mut m = Migration::new(PLAN, u64::MAX);
        run(&mut m, &mut plane, 10);
        match &m.record().outcome {
            Some(Outcome::Aborted {
                phase: Phase::Prepare,
                reason: AbortReason::Plane(e),
            }) => assert!(matches!(e, PlaneError::NoWindow { binding: 0, .. }), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(!plane.log.iter().any(|l| l == "quiesce"));
        assert_eq!(m.record().blackout(), None);
    }
}
