//! Runs a schedule of migrations, one at a time, as a task beside the
//! traffic models.

use crate::{Migration, MigrationKind, Outcome, Phase, Plan, Plane, Record};
use fabric::Topology;
use lcore::Task;
use rings::pause::IdMode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// When and how migrations run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// VM migrations to perform, back and forth between hosts.
    pub vm_migrations: u64,
    /// Endpoint migrations to perform, each binding's function to a free
    /// function of its device; they alternate with VM migrations.
    pub endpoint_migrations: u64,
    /// The first starts at this time (nanoseconds).
    pub start: u64,
    /// Then one every this many nanoseconds (or as soon as the previous
    /// one ends, if it takes longer).
    pub interval: u64,
    /// The blackout a migration may have; beyond it, before the
    /// switch-over, it is abandoned.
    pub budget: u64,
    /// The longest any phase before the switch-over waits on the fabric
    /// (nanoseconds); beyond it the migration is abandoned.
    pub deadline: u64,
    /// Abandon migration `k` in phase `p` when `abort(k)` says so (fault
    /// injection).
    pub abort: Option<fn(u64) -> Option<Phase>>,
    /// No migration starts once this is requested (a run stopped early);
    /// one under way finishes. A scenario stops its hosts and devices with
    /// the same flag.
    pub stop: lcore::Stop,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            vm_migrations: 0,
            endpoint_migrations: 0,
            start: 0,
            interval: 1_000_000,
            budget: 50_000_000,
            deadline: crate::DEFAULT_DEADLINE,
            abort: None,
            stop: lcore::Stop::default(),
        }
    }
}

/// A plane over a whole fabric, as the orchestrator drives it: besides a
/// migration's steps, the fabric as migrations have left it, from which it
/// chooses the next.
pub trait Fabric: Plane {
    /// The topology as it is now (bindings where migrations left them).
    fn topology(&self) -> &Topology;
    /// Whether function `function` of endpoint `endpoint` can take a
    /// binding's state: nothing routed to it for a binding that left can
    /// still arrive.
    fn function_settled(&self, _endpoint: usize, _function: usize) -> bool {
        true
    }
    /// What a migration in progress is waiting for, in words (for a report
    /// of one that did not finish).
    fn waiting_for(&self, _plan: &Plan) -> String {
        String::new()
    }
}

/// The orchestrator task: migrates the bindings in turn, each to the next
/// host, and keeps the record of every migration.
#[derive(Debug)]
pub struct Orchestrator<P> {
    plane: P,
    schedule: Schedule,
    current: Option<Migration>,
    started: u64,
    /// Started of each kind: VM, endpoint.
    started_by_kind: [u64; 2],
    skipped: u64,
    records: Vec<Record>,
    progress: Arc<AtomicU64>,
}

/// What the orchestrator can start next.
enum Next {
    Plan(Plan),
    /// Not now: wait for the fabric.
    Later,
    /// Nothing, ever: counted as skipped.
    Nothing,
}

impl<P: Fabric> Orchestrator<P> {
    /// An orchestrator over `plane`.
    pub fn new(plane: P, schedule: Schedule) -> Orchestrator<P> {
        Orchestrator {
            plane,
            schedule,
            current: None,
            started: 0,
            started_by_kind: [0; 2],
            skipped: 0,
            records: Vec::new(),
            progress: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Migrations finished so far, readable from another thread.
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    /// The record of every finished migration.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Whether every scheduled migration has finished.
    pub fn done(&self) -> bool {
        self.current.is_none() && self.started >= self.total()
    }

    /// The plane (and the topology as the migrations left it).
    pub fn plane(&self) -> &P {
        &self.plane
    }

    /// The migration in progress, if one is: its record and phase (`None`:
    /// rolling back).
    pub fn in_progress(&self) -> Option<(&Record, Option<Phase>)> {
        self.current.as_ref().map(|m| (m.record(), m.phase()))
    }

    /// Completed and abandoned counts.
    pub fn counts(&self) -> (u64, u64) {
        let completed = self
            .records
            .iter()
            .filter(|r| r.outcome == Some(Outcome::Completed))
            .count() as u64;
        (completed, self.records.len() as u64 - completed)
    }

    fn total(&self) -> u64 {
        self.schedule.vm_migrations + self.schedule.endpoint_migrations
    }

    /// Scheduled migrations there was nothing to do for (a single host, or
    /// no free function to move to).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Counts of completed migrations: VM, endpoint.
    pub fn completed_by_kind(&self) -> (u64, u64) {
        let count = |kind| {
            self.records
                .iter()
                .filter(|r| r.plan.kind == kind && r.outcome == Some(Outcome::Completed))
                .count() as u64
        };
        (count(MigrationKind::Vm), count(MigrationKind::Endpoint))
    }

    fn next_kind(&self) -> MigrationKind {
        let [vm, ep] = self.started_by_kind;
        let vm_left = vm < self.schedule.vm_migrations;
        let ep_left = ep < self.schedule.endpoint_migrations;
        if vm_left && (!ep_left || vm <= ep) {
            MigrationKind::Vm
        } else {
            MigrationKind::Endpoint
        }
    }

    fn next_plan(&self) -> Next {
        let kind = self.next_kind();
        let t = self.plane.topology();
        if t.bindings.is_empty() {
            return Next::Nothing;
        }
        let n = self.started_by_kind[kind as usize];
        let binding = (n % t.bindings.len() as u64) as usize;
        let b = &t.bindings[binding];
        // The pause must match how the fabric identifies the binding's
        // requests: a common ID follows the binding, different IDs do not.
        let id_mode = match b.id_mode {
            fabric::IdMode::Different => IdMode::Different,
            fabric::IdMode::Common => IdMode::Common,
        };
        if kind == MigrationKind::Endpoint {
            let end = &t.endpoints[b.endpoint];
            let bound = |f: u8| {
                t.bindings
                    .iter()
                    .any(|o| o.endpoint == b.endpoint && o.function == f)
            };
            // A free virtual function first, else the physical function; a
            // function just left may still be receiving what was routed to
            // it, and waits until the fabric has none of that left.
            let free = |f: &u8| !bound(*f);
            let settled = |f: &u8| self.plane.function_settled(b.endpoint, *f as usize);
            let to = match (1..=end.vfs).chain([0]).filter(free).find(settled) {
                Some(to) => to,
                None if (1..=end.vfs).chain([0]).any(|f| free(&f)) => {
                    return Next::Later;
                }
                None => return Next::Nothing,
            };
            return Next::Plan(Plan {
                kind,
                binding,
                from: b.function as usize,
                to: to as usize,
                id_mode,
            });
        }
        if t.hosts.len() < 2 {
            return Next::Nothing;
        }
        Next::Plan(Plan {
            kind,
            binding,
            from: b.host,
            to: (b.host + 1) % t.hosts.len(),
            id_mode,
        })
    }
}

impl<P: Fabric + Send> Task for Orchestrator<P> {
    fn name(&self) -> &str {
        "orchestrator"
    }

    fn poll(&mut self, now: u64) -> usize {
        if self.current.is_none() && self.started < self.total() && !self.schedule.stop.requested()
        {
            let due = self.schedule.start + self.started * self.schedule.interval;
            if now >= due {
                let plan = match self.next_plan() {
                    Next::Plan(plan) => plan,
                    Next::Later => return 0,
                    Next::Nothing => {
                        // Nothing to move this way (no second host, no free
                        // function): counted as skipped.
                        let kind = self.next_kind();
                        self.started += 1;
                        self.started_by_kind[kind as usize] += 1;
                        self.skipped += 1;
                        return 0;
                    }
                };
                let mut m = Migration::new(plan, self.schedule.budget)
                    .with_deadline(self.schedule.deadline);
                if let Some(phase) = self.schedule.abort.and_then(|f| f(self.started)) {
                    m = m.abort_in(phase);
                }
                self.started += 1;
                self.started_by_kind[plan.kind as usize] += 1;
                self.current = Some(m);
            }
        }
        let Some(m) = self.current.as_mut() else {
            return 0;
        };
        m.step(&mut self.plane, now);
        if m.finished() {
            if let Some(m) = self.current.take() {
                self.records.push(m.record().clone());
            }
            self.progress.fetch_add(1, Ordering::Relaxed);
            return 1;
        }
        0
    }
}
