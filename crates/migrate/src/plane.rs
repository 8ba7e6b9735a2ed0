//! The plane over the in-process fabric: the gates where endpoints attach,
//! every node's route tables, and the host models that run the VMs.

use crate::{Phase, Plan, Plane};
use fabric::routing::epoch::Publisher;
use fabric::topology::Window;
use fabric::{NodeTables, Topology};
use lcore::gate::STATE_CLOSED;
use lcore::{GateCommand, GateStatus};
use rings::pause::IdMode;
use rings::spsc::{Consumer, Producer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tlp::Bdf;
use traffic::{HostCommand, Vm};
use vdi::CompletionSignal;

/// Why the plane could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneError(pub String);

impl std::fmt::Display for PlaneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlaneError {}

/// The control side of one endpoint's gate.
#[derive(Debug)]
pub struct GateHandle {
    /// Commands to the gate.
    pub commands: Producer<GateCommand>,
    /// What the gate publishes.
    pub status: Arc<GateStatus>,
}

/// The control side of one host model.
#[derive(Debug)]
pub struct HostHandle {
    /// Commands to the host.
    pub commands: Producer<HostCommand>,
    /// VMs it hands over.
    pub handed: Consumer<Box<Vm>>,
}

/// What a migration in progress has set up.
#[derive(Debug)]
struct Work {
    destination: Topology,
    tables: Vec<Option<NodeTables>>,
    vm: Option<Box<Vm>>,
    /// The gate's count of finished pauses when this one began.
    reopened: u64,
    bar: u64,
    released: bool,
}

/// A [`Plane`] over the in-process fabric.
#[derive(Debug)]
pub struct FabricPlane {
    original: Topology,
    topology: Topology,
    publishers: Vec<Publisher<NodeTables>>,
    /// Per endpoint.
    gates: Vec<Option<GateHandle>>,
    /// Per host.
    hosts: Vec<HostHandle>,
    signal: CompletionSignal,
    work: Option<Work>,
}

/// The VM of binding `i` is the one whose writes are stream `2i + 1`.
pub fn vm_stream(binding: usize) -> u32 {
    (binding as u32).wrapping_mul(2).wrapping_add(1)
}

fn fabric_requester(bus: u8) -> Bdf {
    Bdf((bus as u16) << 8)
}

impl FabricPlane {
    /// A plane over `topology` (the routes the publishers' readers hold
    /// now), one gate handle per endpoint (`None`: its functions do not
    /// migrate) and one host handle per host. Completion is indicated with
    /// `signal`.
    pub fn new(
        topology: Topology,
        publishers: Vec<Publisher<NodeTables>>,
        gates: Vec<Option<GateHandle>>,
        hosts: Vec<HostHandle>,
        signal: CompletionSignal,
    ) -> FabricPlane {
        FabricPlane {
            original: topology.clone(),
            topology,
            publishers,
            gates,
            hosts,
            signal,
            work: None,
        }
    }

    /// The topology as it is now (bindings where migrations left them).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    fn gate(&self, plan: &Plan) -> Option<(&GateHandle, usize)> {
        let b = self.topology.bindings.get(plan.binding)?;
        let gate = self.gates.get(b.endpoint)?.as_ref()?;
        Some((gate, b.function as usize))
    }

    fn send_gate(&mut self, plan: &Plan, command: impl FnOnce(usize) -> GateCommand) {
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return;
        };
        let f = b.function as usize;
        if let Some(Some(g)) = self.gates.get_mut(b.endpoint) {
            // The ring holds far more than the few commands of one
            // migration; a full ring would mean the node core is gone.
            let _ = g.commands.push(command(f));
        }
    }

    fn send_host(&mut self, host: usize, command: HostCommand) {
        if let Some(h) = self.hosts.get_mut(host) {
            let _ = h.commands.push(command);
        }
    }

    fn reopened(&self, plan: &Plan) -> u64 {
        self.gate(plan)
            .and_then(|(g, f)| {
                g.status
                    .binding(f)
                    .map(|s| s.reopened.load(Ordering::Acquire))
            })
            .unwrap_or(0)
    }

    /// A window for the function in `host`'s domain: where the binding sat
    /// first, else the next free one of its size.
    fn free_bar(&self, binding: usize, host: usize) -> Option<Window> {
        let first = self.original.bindings[binding].bar;
        let h = &self.topology.hosts[host];
        let taken = |w: &Window| {
            let overlaps = |o: &Window| w.base < o.base + o.size && o.base < w.base + w.size;
            self.topology
                .bindings
                .iter()
                .enumerate()
                .any(|(i, b)| i != binding && b.host == host && overlaps(&b.bar))
                || h.dma.iter().any(overlaps)
        };
        (0..256u64)
            .map(|k| Window {
                base: first.base + k * first.size,
                size: first.size,
            })
            .find(|w| w.base + w.size <= 1 << 32 && !taken(w))
    }

    fn free_id(&self, binding: usize, host: usize) -> Option<Bdf> {
        let first = self.original.bindings[binding].host_id;
        (0..256u16)
            .map(|k| Bdf(first.0.wrapping_add(k)))
            .find(|id| {
                !self
                    .topology
                    .bindings
                    .iter()
                    .enumerate()
                    .any(|(i, b)| i != binding && b.host == host && b.host_id == *id)
            })
    }
}

impl Plane for FabricPlane {
    fn prepare(&mut self, plan: &Plan, _now: u64) -> Result<(), PlaneError> {
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return Err(PlaneError(format!("no binding {}", plan.binding)));
        };
        if b.host != plan.from || plan.to >= self.topology.hosts.len() || plan.to == plan.from {
            return Err(PlaneError(format!(
                "binding {} is on host {}, cannot move it from {} to {}",
                plan.binding, b.host, plan.from, plan.to
            )));
        }
        if self.gate(plan).is_none() {
            return Err(PlaneError(format!(
                "binding {}'s endpoint has no pause point",
                plan.binding
            )));
        }
        let bar = self.free_bar(plan.binding, plan.to).ok_or_else(|| {
            PlaneError(format!(
                "host {} has no free window for binding {}",
                self.topology.hosts[plan.to].name, plan.binding
            ))
        })?;
        let id = self.free_id(plan.binding, plan.to).ok_or_else(|| {
            PlaneError(format!(
                "host {} has no free ID for binding {}",
                self.topology.hosts[plan.to].name, plan.binding
            ))
        })?;
        let mut destination = self.topology.clone();
        let moved = &mut destination.bindings[plan.binding];
        moved.host = plan.to;
        moved.bar = bar;
        moved.host_id = id;
        // Built now, off the blackout: the switch-over only publishes them.
        let tables = (0..destination.nodes.len())
            .map(|n| Some(NodeTables::build(&destination, n)))
            .collect();
        let reopened = self.reopened(plan);
        let destination_bus = self.topology.hosts[plan.to].fabric_bus;
        self.send_gate(plan, |binding| GateCommand::Prepare {
            binding,
            destination_bus,
        });
        self.work = Some(Work {
            destination,
            tables,
            vm: None,
            reopened,
            bar: bar.base,
            released: false,
        });
        Ok(())
    }

    fn quiesce(&mut self, plan: &Plan, _now: u64) {
        let stream = vm_stream(plan.binding);
        self.send_host(plan.from, HostCommand::Detach { stream });
        let mode = plan.id_mode;
        self.send_gate(plan, |binding| GateCommand::Pause { binding, mode });
    }

    fn closed(&mut self, plan: &Plan) -> bool {
        self.gate(plan)
            .and_then(|(g, f)| g.status.binding(f))
            .is_some_and(|s| s.state.load(Ordering::Acquire) == STATE_CLOSED)
    }

    fn drained(&mut self, plan: &Plan) -> bool {
        !self
            .gate(plan)
            .and_then(|(g, f)| g.status.binding(f))
            .is_some_and(|s| s.drain_expired.load(Ordering::Acquire))
    }

    fn hand_over(&mut self, plan: &Plan, _now: u64) {
        // The point is closed: nothing more passes toward the source, so
        // this is all the source has to receive before its VM can leave.
        let after_received = self
            .gate(plan)
            .and_then(|(g, f)| g.status.binding(f))
            .map_or(0, |s| s.up_passed.load(Ordering::Acquire));
        let stream = vm_stream(plan.binding);
        self.send_host(
            plan.from,
            HostCommand::Handover {
                stream,
                after_received,
            },
        );
    }

    fn handed(&mut self, plan: &Plan) -> bool {
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        if work.vm.is_none() {
            if let Some(h) = self.hosts.get_mut(plan.from) {
                work.vm = h.handed.pop();
            }
        }
        let Some(vm) = &work.vm else {
            return false;
        };

        // Every request the source sent has reached the pause point, so
        // none can arrive after the destination's.
        let sent = vm.requests_sent;
        let f = self.topology.bindings[plan.binding].function as usize;
        let endpoint = self.topology.bindings[plan.binding].endpoint;
        self.gates
            .get(endpoint)
            .and_then(Option::as_ref)
            .and_then(|g| g.status.binding(f))
            .is_some_and(|s| s.down_requests.load(Ordering::Acquire) >= sent)
    }

    fn switch_over(&mut self, _plan: &Plan, _now: u64) {
        self.publish();
    }

    fn released(&mut self, plan: &Plan) -> bool {
        let Some(work) = self.work.as_ref() else {
            return false;
        };
        if !work.released {
            // Every node routes with the destination's tables before
            // anything is released or the VM starts there.
            if !self.publish() || !self.publishers.iter().all(Publisher::adopted) {
                return false;
            }
            let Some(mut work) = self.work.take() else {
                return false;
            };
            let from = &self.topology.hosts[plan.from];
            let to = &self.topology.hosts[plan.to];
            let requester = (plan.id_mode == IdMode::Different).then(|| {
                (
                    fabric_requester(from.fabric_bus),
                    fabric_requester(to.fabric_bus),
                )
            });
            self.send_gate(plan, |binding| GateCommand::Release { binding, requester });
            if let Some(vm) = work.vm.take() {
                let bar = work.bar;
                self.send_host(plan.to, HostCommand::Attach { vm, bar });
            }
            self.topology = std::mem::replace(&mut work.destination, self.original.clone());
            work.released = true;
            self.work = Some(work);
        }
        let baseline = self.work.as_ref().map_or(0, |w| w.reopened);
        self.reopened(plan) > baseline
    }

    fn complete(&mut self, plan: &Plan, _now: u64) {
        let signal = self.signal;
        self.send_gate(plan, |binding| GateCommand::Complete { binding, signal });
        self.work = None;
    }

    fn roll_back(&mut self, plan: &Plan, phase: Phase, _now: u64) {
        self.send_gate(plan, |binding| GateCommand::Abort { binding });
        let stream = vm_stream(plan.binding);
        match phase {
            Phase::Prepare => {}
            Phase::Quiesce => self.send_host(plan.from, HostCommand::Resume { stream }),
            _ => {
                let vm = self.work.as_mut().and_then(|w| w.vm.take());
                match vm {
                    Some(vm) => {
                        let bar = self.topology.bindings[plan.binding].bar.base;
                        self.send_host(plan.from, HostCommand::Attach { vm, bar });
                    }
                    None => self.send_host(plan.from, HostCommand::Resume { stream }),
                }
            }
        }
        if phase == Phase::Prepare {
            self.work = None;
        }
    }

    fn rolled_back(&mut self, plan: &Plan) -> bool {
        let Some(work) = &self.work else {
            return true;
        };
        let done = self.reopened(plan) > work.reopened;
        if done {
            self.work = None;
        }
        done
    }
}

impl FabricPlane {
    /// Publishes the tables the migration built to the nodes that have not
    /// taken them yet; true once every node has been sent its set.
    fn publish(&mut self) -> bool {
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        let mut all = true;
        for (p, slot) in self.publishers.iter_mut().zip(work.tables.iter_mut()) {
            if let Some(tables) = slot.take() {
                if let Err(back) = p.publish(tables) {
                    *slot = Some(back);
                    all = false;
                }
            }
        }
        all
    }
}
