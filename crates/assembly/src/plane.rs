//! The plane over the in-process fabric: the gates where endpoints attach,
//! every node's route tables, and the host models that run the VMs.

use fabric::routing::epoch::Publisher;
use fabric::topology::Window;
use fabric::{NodeTables, Topology};
use lcore::gate::STATE_CLOSED;
use lcore::{GateCommand, GateStatus};
use migrate::{Fabric, MigrationKind, Phase, Plan, Plane, PlaneError};
use rings::pause::{Direction, IdMode};
use rings::spsc::{Consumer, Producer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tlp::Bdf;
use traffic::enumerate::Instantiation;
use traffic::{EndpointCommand, EnumerationStatus, HostCommand, Moved, Vm, VmCounters};
use vdi::CompletionSignal;

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
    /// Its enumerations' progress.
    pub enumerated: Arc<EnumerationStatus>,
}

/// The control side of one device model.
#[derive(Debug)]
pub struct DeviceHandle {
    /// Commands to the device.
    pub commands: Producer<EndpointCommand>,
    /// Its reports of functions' state moved.
    pub moved: Consumer<Moved>,
}

/// What a migration in progress has set up.
#[derive(Debug)]
struct Work {
    destination: Topology,
    tables: Vec<Option<NodeTables>>,
    /// VM migration: the tables in force while it prepares (the source's
    /// routes, and the destination host's to its instantiation), those not
    /// yet published.
    preparing: Vec<Option<NodeTables>>,
    /// VM migration: the destination host's count of enumerations when it
    /// was asked for one (`None`: not yet asked).
    enumerations: Option<u64>,
    vm: Option<Box<Vm>>,
    /// The gate's count of finished pauses when this one began.
    reopened: u64,
    bar: u64,
    released: bool,
    /// Endpoint migration: the device's report of the state moved.
    moved: Option<Moved>,
    /// Endpoint migration: the destination function's count of finished
    /// pauses when this one began.
    standby: u64,
    /// Endpoint migration rolled back from the move: the state is on its
    /// way back to the source function.
    returning: bool,
    /// VM migration: the source host has been asked for the VM.
    handover_asked: bool,
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
    /// Per endpoint.
    devices: Vec<Option<DeviceHandle>>,
    /// Per binding: what its VM has received, wherever it runs.
    vm_counters: Vec<Arc<VmCounters>>,
    /// Per binding: how its destination is told the migration completed.
    signals: Vec<CompletionSignal>,
    work: Option<Work>,
    /// Tables of the topology in force again after a migration that had
    /// published its preparing ones was abandoned, those not yet published.
    restore: Vec<Option<NodeTables>>,
    /// An abandoned VM migration's gate abort waits for its destination
    /// host to stop using its instantiation.
    abort_deferred: bool,
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
    /// now), one gate handle and one device handle per endpoint (`None`:
    /// its functions do not migrate), one host handle per host, and per
    /// binding its VM's published count of TLPs received and how its
    /// completion is indicated (`signals`).
    pub fn new(
        topology: Topology,
        publishers: Vec<Publisher<NodeTables>>,
        gates: Vec<Option<GateHandle>>,
        hosts: Vec<HostHandle>,
        devices: Vec<Option<DeviceHandle>>,
        vm_counters: Vec<Arc<VmCounters>>,
        signals: Vec<CompletionSignal>,
    ) -> FabricPlane {
        FabricPlane {
            original: topology.clone(),
            topology,
            publishers,
            gates,
            hosts,
            devices,
            vm_counters,
            signals,
            work: None,
            restore: Vec::new(),
            abort_deferred: false,
        }
    }

    /// The function the binding is on now (its index at the gate).
    fn function(&self, plan: &Plan) -> usize {
        self.topology
            .bindings
            .get(plan.binding)
            .map_or(0, |b| b.function as usize)
    }

    /// The published status of the binding's function now.
    fn status(&self, plan: &Plan) -> Option<&lcore::gate::BindingStatus> {
        self.status_of(plan, self.function(plan))
    }

    /// Sends the gate a command for the binding's function now.
    fn send_gate(&mut self, plan: &Plan, command: impl FnOnce(usize) -> GateCommand) {
        let command = command(self.function(plan));
        self.send_function(plan, command);
    }

    fn send_host(&mut self, host: usize, command: HostCommand) {
        if let Some(h) = self.hosts.get_mut(host) {
            let _ = h.commands.push(command);
        }
    }

    fn reopened(&self, plan: &Plan) -> u64 {
        self.function_reopened(plan, self.function(plan))
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
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_prepare(plan);
        }
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return Err(PlaneError::NoBinding(plan.binding));
        };
        if b.host != plan.from || plan.to >= self.topology.hosts.len() || plan.to == plan.from {
            return Err(PlaneError::NotOnHost {
                binding: plan.binding,
                on: b.host,
                from: plan.from,
                to: plan.to,
            });
        }
        if self.status(plan).is_none() {
            return Err(PlaneError::NoPausePoint(
                self.topology.endpoints[b.endpoint].name.clone(),
            ));
        }
        let bar = self
            .free_bar(plan.binding, plan.to)
            .ok_or_else(|| PlaneError::NoWindow {
                host: self.topology.hosts[plan.to].name.clone(),
                binding: plan.binding,
            })?;
        let id = self
            .free_id(plan.binding, plan.to)
            .ok_or_else(|| PlaneError::NoId {
                host: self.topology.hosts[plan.to].name.clone(),
                binding: plan.binding,
            })?;
        let mut destination = self.topology.clone();
        let moved = &mut destination.bindings[plan.binding];
        moved.host = plan.to;
        moved.bar = bar;
        moved.host_id = id;
        // Built now, off the blackout: the switch-over only publishes them.
        let tables = unpublished(NodeTables::build_all(&destination));
        let guest = &destination.bindings[plan.binding];
        let preparing = unpublished(NodeTables::build_all_preparing(&self.topology, guest));
        let reopened = self.reopened(plan);
        let destination_bus = self.topology.hosts[plan.to].fabric_bus;
        // The destination's instantiation is up before any route reaches it.
        self.send_gate(plan, |binding| GateCommand::Prepare {
            binding,
            destination_bus,
        });
        self.work = Some(Work {
            destination,
            tables,
            preparing,
            enumerations: None,
            vm: None,
            reopened,
            bar: bar.base,
            released: false,
            moved: None,
            standby: 0,
            returning: false,
            handover_asked: true,
        });
        Ok(())
    }

    fn prepared(&mut self, plan: &Plan) -> bool {
        if plan.kind == MigrationKind::Endpoint {
            return true;
        }
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        // The destination host's routes to its instantiation in use first.
        let all = publish_all(&mut self.publishers, &mut work.preparing);
        if !all || !self.publishers.iter().all(Publisher::adopted) {
            return false;
        }
        let Some(host) = self.hosts.get(plan.to) else {
            return true;
        };
        let done = host.enumerated.passes.load(Ordering::Acquire);
        match work.enumerations {
            Some(before) => done > before,
            None => {
                let b = &work.destination.bindings[plan.binding];
                let target = Instantiation {
                    id: b.host_id,
                    bar: b.bar.base,
                    registers: crate::has_registers(b.bar.size),
                };
                work.enumerations = Some(done);
                self.send_host(plan.to, HostCommand::Enumerate(target));
                false
            }
        }
    }

    fn quiesce(&mut self, plan: &Plan, _now: u64) {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_quiesce(plan);
        }
        let stream = vm_stream(plan.binding);
        self.send_host(plan.from, HostCommand::Detach { stream });
        let mode = plan.id_mode;
        // The VM is stopped: its requests in flight are all that comes.
        self.send_gate(plan, |binding| GateCommand::Pause {
            binding,
            mode,
            stopped: Some(Direction::Down),
        });
    }

    fn closed(&mut self, plan: &Plan) -> bool {
        // An endpoint migration's destination function stands by closed too.
        let standing_by = plan.kind == MigrationKind::Vm
            || self.function_state(plan, plan.to) == Some(STATE_CLOSED);
        if !standing_by {
            return false;
        }
        self.status(plan)
            .is_some_and(|s| s.state.load(Ordering::Acquire) == STATE_CLOSED)
    }

    fn drained(&mut self, plan: &Plan) -> bool {
        !self
            .status(plan)
            .is_some_and(|s| s.drain_expired.load(Ordering::Acquire))
    }

    fn hand_over(&mut self, plan: &Plan, _now: u64) {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_hand_over(plan);
        }
        // Asked for once the VM has stopped and its requests have all
        // reached the pause point (see `handed`).
        if let Some(w) = self.work.as_mut() {
            w.handover_asked = false;
        }
        // The destination stops using its instantiation: its last request
        // is answered there before the release (see `released`).
        self.send_host(plan.to, HostCommand::EndEnumeration);
    }

    fn handed(&mut self, plan: &Plan) -> bool {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_handed(plan);
        }
        if self.work.as_ref().is_some_and(|w| !w.handover_asked) {
            if !self.ask_for_vm(plan) {
                return false;
            }
            if let Some(w) = self.work.as_mut() {
                w.handover_asked = true;
            }
        }
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
        self.status(plan)
            .is_some_and(|s| s.down_requests.load(Ordering::Acquire) >= sent)
    }

    fn switch_over(&mut self, _plan: &Plan, _now: u64) {
        self.publish();
    }

    fn released(&mut self, plan: &Plan) -> bool {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_released(plan);
        }
        let Some(work) = self.work.as_ref() else {
            return false;
        };
        if !work.released {
            if !self.routes_switched() {
                return false;
            }
            let from = &self.topology.hosts[plan.from];
            let to = &self.topology.hosts[plan.to];
            let requester = (plan.id_mode == IdMode::Different).then(|| {
                (
                    fabric_requester(from.fabric_bus),
                    fabric_requester(to.fabric_bus),
                )
            });
            // The destination's instantiation goes with the release, so no
            // request of its enumeration may be left to reach the function
            // after it (it would count as the VM's).
            if self.enumerating(plan.to) {
                return false;
            }
            self.send_gate(plan, |binding| GateCommand::Release {
                binding,
                requester,
                retarget: None,
            });
            let attach = self.work.as_mut().and_then(|w| {
                let id = w.destination.bindings[plan.binding].host_id;
                Some((w.vm.take()?, w.bar, id))
            });
            if let Some((vm, bar, id)) = attach {
                self.send_host(plan.to, HostCommand::Attach { vm, bar, id });
            }
            self.commit_destination();
        }
        let baseline = self.work.as_ref().map_or(0, |w| w.reopened);
        self.reopened(plan) > baseline
    }

    fn complete(&mut self, plan: &Plan, _now: u64) {
        // A binding without its own signal (none in a topology the plane
        // was built from) is told with the default message.
        let signal =
            self.signals
                .get(plan.binding)
                .copied()
                .unwrap_or(CompletionSignal::VendorMessage {
                    vendor_id: crate::SIGNAL_VENDOR,
                    word: 1,
                });
        self.send_gate(plan, |binding| GateCommand::Complete { binding, signal });
        self.work = None;
    }

    fn roll_back(&mut self, plan: &Plan, phase: Phase, _now: u64) {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_roll_back(plan, phase);
        }
        // The destination's instantiation and the routes to it go with
        // the abort, once its host has stopped using them (see `released`):
        // a request still to come would be refused by the restored routes
        // and its host would wait for its completion until it timed out.
        self.send_host(plan.to, HostCommand::EndEnumeration);
        // Routes as they were, if the destination's reached the nodes.
        let published = self
            .work
            .as_ref()
            .is_some_and(|w| w.preparing.iter().any(Option::is_none));
        if published {
            self.restore = unpublished(NodeTables::build_all(&self.topology));
        }
        if self.enumerating(plan.to) {
            self.abort_deferred = true;
        } else {
            self.send_gate(plan, |binding| GateCommand::Abort { binding });
            self.publish_restore();
        }
        let stream = vm_stream(plan.binding);
        match phase {
            Phase::Prepare => {}
            Phase::Quiesce => self.send_host(plan.from, HostCommand::Resume { stream }),
            _ => {
                let vm = self.work.as_mut().and_then(|w| w.vm.take());
                match vm.or_else(|| self.hosts.get_mut(plan.from)?.handed.pop()) {
                    Some(vm) => self.attach_at_source(plan, vm),
                    // The hand-over, if it was asked for, is called off; a
                    // VM the host hands over all the same comes back in
                    // `rolled_back`.
                    None => self.send_host(plan.from, HostCommand::Resume { stream }),
                }
            }
        }
        if phase == Phase::Prepare {
            self.work = None;
        }
    }

    fn ready(&self, plan: &Plan) -> bool {
        // A function just left is not a destination until its redirect ends.
        plan.kind == MigrationKind::Vm
            || self
                .topology
                .bindings
                .get(plan.binding)
                .is_none_or(|b| self.function_settled(b.endpoint, plan.to))
    }

    fn rolled_back(&mut self, plan: &Plan) -> bool {
        if plan.kind == MigrationKind::Endpoint {
            return self.endpoint_rolled_back(plan);
        }
        if self.abort_deferred {
            if self.enumerating(plan.to) {
                return false;
            }
            self.send_gate(plan, |binding| GateCommand::Abort { binding });
            self.abort_deferred = false;
        }
        if !self.publish_restore() {
            return false;
        }
        // A VM handed over before the host was told the hand-over was off
        // goes back to it.
        if let Some(vm) = self.hosts.get_mut(plan.from).and_then(|h| h.handed.pop()) {
            self.attach_at_source(plan, vm);
        }
        let Some(work) = &self.work else {
            return true;
        };
        let running = self
            .vm_counters
            .get(plan.binding)
            .is_none_or(|c| !c.detached.load(Ordering::Acquire));
        let done = self.reopened(plan) > work.reopened && running;
        if done {
            self.work = None;
        }
        done
    }
}

impl FabricPlane {
    /// Gives a VM handed over for a migration that was abandoned back to
    /// the host it left, at the binding's window and ID there.
    fn attach_at_source(&mut self, plan: &Plan, vm: Box<Vm>) {
        let b = &self.topology.bindings[plan.binding];
        let (bar, id) = (b.bar.base, b.host_id);
        self.send_host(plan.from, HostCommand::Attach { vm, bar, id });
    }
}

impl FabricPlane {
    /// Whether every node routes with the destination's tables (published
    /// and taken), so that anything may be released or start there.
    fn routes_switched(&mut self) -> bool {
        self.publish() && self.publishers.iter().all(Publisher::adopted)
    }

    /// The destination's topology is the plane's from now on.
    fn commit_destination(&mut self) {
        if let Some(work) = self.work.as_mut() {
            self.topology = std::mem::replace(&mut work.destination, self.original.clone());
            work.released = true;
        }
    }

    /// Whether host `host` may still send to, or wait on, the
    /// instantiation it enumerates.
    fn enumerating(&self, host: usize) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|h| h.enumerated.busy.load(Ordering::Acquire))
    }

    /// Publishes the routes of an abandoned migration's source that have
    /// not been yet; true once every node uses them.
    fn publish_restore(&mut self) -> bool {
        publish_all(&mut self.publishers, &mut self.restore)
            && self.publishers.iter().all(Publisher::adopted)
    }

    /// Publishes the tables the migration built to the nodes that have not
    /// taken them yet; true once every node has been sent its set.
    fn publish(&mut self) -> bool {
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        publish_all(&mut self.publishers, &mut work.tables)
    }
}

/// Each node's tables, none published yet.
fn unpublished(tables: Vec<NodeTables>) -> Vec<Option<NodeTables>> {
    tables.into_iter().map(Some).collect()
}

/// Publishes each node's waiting set of tables (`slots`, one per node) that
/// its reader has room for; true once every one has been sent.
fn publish_all(publishers: &mut [Publisher<NodeTables>], slots: &mut [Option<NodeTables>]) -> bool {
    let mut all = true;
    for (p, slot) in publishers.iter_mut().zip(slots.iter_mut()) {
        if let Some(tables) = slot.take() {
            if let Err(back) = p.publish(tables) {
                *slot = Some(back);
                all = false;
            }
        }
    }
    all
}

/// Endpoint migrations: the binding's function changes, its host does not.
impl FabricPlane {
    fn status_of(&self, plan: &Plan, function: usize) -> Option<&lcore::gate::BindingStatus> {
        let b = self.topology.bindings.get(plan.binding)?;
        self.gates
            .get(b.endpoint)?
            .as_ref()?
            .status
            .binding(function)
    }

    fn function_state(&self, plan: &Plan, function: usize) -> Option<u8> {
        self.status_of(plan, function)
            .map(|s| s.state.load(Ordering::Acquire))
    }

    fn function_reopened(&self, plan: &Plan, function: usize) -> u64 {
        self.status_of(plan, function)
            .map_or(0, |s| s.reopened.load(Ordering::Acquire))
    }

    fn send_function(&mut self, plan: &Plan, command: GateCommand) {
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return;
        };
        if let Some(Some(g)) = self.gates.get_mut(b.endpoint) {
            let _ = g.commands.push(command);
        }
    }

    fn send_device(&mut self, plan: &Plan, command: EndpointCommand) {
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return;
        };
        if let Some(Some(d)) = self.devices.get_mut(b.endpoint) {
            let _ = d.commands.push(command);
        }
    }

    fn endpoint_prepare(&mut self, plan: &Plan) -> Result<(), PlaneError> {
        let Some(b) = self.topology.bindings.get(plan.binding) else {
            return Err(PlaneError::NoBinding(plan.binding));
        };
        let endpoint = &self.topology.endpoints[b.endpoint];
        let name = |f: usize| {
            format!(
                "{}.{}",
                endpoint.name,
                if f == 0 {
                    "pf".into()
                } else {
                    format!("vf{f}")
                }
            )
        };
        if b.function as usize != plan.from {
            return Err(PlaneError::NotOnFunction {
                binding: plan.binding,
                on: name(b.function as usize),
                from: name(plan.from),
            });
        }
        if plan.to > endpoint.vfs as usize || plan.to == plan.from {
            return Err(PlaneError::NoFunction {
                endpoint: endpoint.name.clone(),
                function: plan.to,
            });
        }
        if self
            .topology
            .bindings
            .iter()
            .any(|o| o.endpoint == b.endpoint && o.function as usize == plan.to)
        {
            return Err(PlaneError::Bound(name(plan.to)));
        }
        let (Some(Some(_)), Some(Some(_))) =
            (self.gates.get(b.endpoint), self.devices.get(b.endpoint))
        else {
            return Err(PlaneError::NoPausePoint(endpoint.name.clone()));
        };
        let mut destination = self.topology.clone();
        destination.bindings[plan.binding].function = plan.to as u8;
        let tables = unpublished(NodeTables::build_all(&destination));
        let reopened = self.function_reopened(plan, plan.from);
        let standby = self.function_reopened(plan, plan.to);
        self.send_function(
            plan,
            GateCommand::PrepareFunction {
                binding: plan.from,
                to: plan.to,
            },
        );
        self.work = Some(Work {
            destination,
            tables,
            preparing: Vec::new(),
            enumerations: None,
            vm: None,
            reopened,
            bar: 0,
            released: false,
            moved: None,
            standby,
            returning: false,
            handover_asked: true,
        });
        Ok(())
    }

    fn endpoint_quiesce(&mut self, plan: &Plan) {
        self.send_device(
            plan,
            EndpointCommand::Detach {
                function: plan.from as u8,
            },
        );
        let mode = plan.id_mode;
        self.send_function(
            plan,
            GateCommand::Pause {
                binding: plan.from,
                mode,
                // The function is stopped: its TLPs in flight are all that
                // comes from it.
                stopped: Some(Direction::Up),
            },
        );
        self.send_function(plan, GateCommand::Standby { binding: plan.to });
    }

    fn endpoint_hand_over(&mut self, plan: &Plan) {
        // Closed: nothing more passes toward the source function, so this is
        // all it must have received before its state can leave.
        let after_received = self
            .status_of(plan, plan.from)
            .map_or(0, |s| s.down_passed.load(Ordering::Acquire));
        self.send_device(
            plan,
            EndpointCommand::Move {
                from: plan.from as u8,
                to: plan.to as u8,
                after_received,
            },
        );
    }

    fn endpoint_handed(&mut self, plan: &Plan) -> bool {
        let endpoint = self.topology.bindings[plan.binding].endpoint;
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        if work.moved.is_none() {
            if let Some(Some(d)) = self.devices.get_mut(endpoint) {
                work.moved = d.moved.pop();
            }
        }
        let Some(moved) = work.moved else {
            return false;
        };
        // Everything the source function sent has reached the pause point,
        // and what passed it has reached the VM: translated on its way with
        // the source function's routes, it would find none after the
        // switch-over.
        let Some(s) = self.status_of(plan, plan.from) else {
            return false;
        };
        // Read in the order the gate counts: offered, then passed, then
        // what the VM received of it.
        if s.up_offered.load(Ordering::Acquire) < moved.sent {
            return false;
        }
        let passed = s.up_passed.load(Ordering::Acquire);
        self.vm_counters
            .get(plan.binding)
            .is_none_or(|c| c.received.load(Ordering::Acquire) >= passed)
    }

    fn endpoint_released(&mut self, plan: &Plan) -> bool {
        let Some(work) = self.work.as_ref() else {
            return false;
        };
        if !work.released {
            if !self.routes_switched() {
                return false;
            }
            self.send_function(
                plan,
                GateCommand::Release {
                    binding: plan.from,
                    requester: None,
                    retarget: Some(plan.to),
                },
            );
            self.send_function(
                plan,
                GateCommand::Release {
                    binding: plan.to,
                    requester: None,
                    retarget: None,
                },
            );
            self.send_device(
                plan,
                EndpointCommand::Resume {
                    function: plan.to as u8,
                },
            );
            // A request by the new routes ends the source's redirect.
            let host = self.topology.bindings[plan.binding].host;
            let stream = vm_stream(plan.binding);
            self.send_host(host, HostCommand::Probe { stream });
            self.commit_destination();
        }
        let Some(work) = self.work.as_ref() else {
            return false;
        };
        self.function_reopened(plan, plan.from) > work.reopened
            && self.function_reopened(plan, plan.to) > work.standby
    }

    fn endpoint_roll_back(&mut self, plan: &Plan, phase: Phase) {
        self.send_function(plan, GateCommand::Abort { binding: plan.from });
        self.send_function(plan, GateCommand::Abort { binding: plan.to });
        match phase {
            Phase::Prepare => self.work = None,
            Phase::Quiesce => self.send_device(
                plan,
                EndpointCommand::Resume {
                    function: plan.from as u8,
                },
            ),
            _ => {
                // The state moved to the destination function, or is about
                // to: back it goes, or it stays.
                self.send_device(
                    plan,
                    EndpointCommand::Return {
                        from: plan.from as u8,
                        to: plan.to as u8,
                    },
                );
                if let Some(w) = self.work.as_mut() {
                    w.returning = true;
                    w.moved = None;
                }
            }
        }
    }

    fn endpoint_rolled_back(&mut self, plan: &Plan) -> bool {
        let endpoint = self.topology.bindings[plan.binding].endpoint;
        let Some(work) = self.work.as_mut() else {
            return true;
        };
        if work.returning {
            // The report of the move undone, if it was made, comes first.
            let mut back = false;
            if let Some(Some(d)) = self.devices.get_mut(endpoint) {
                while let Some(m) = d.moved.pop() {
                    back |= m.to as usize == plan.from;
                }
            }
            if !back {
                return false;
            }
            work.returning = false;
            self.send_device(
                plan,
                EndpointCommand::Resume {
                    function: plan.from as u8,
                },
            );
        }
        let Some(work) = self.work.as_ref() else {
            return true;
        };
        let done = self.function_reopened(plan, plan.from) > work.reopened
            && self.function_reopened(plan, plan.to) > work.standby;
        if done {
            self.work = None;
        }
        done
    }
}

impl Fabric for FabricPlane {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    /// None of a previous binding's TLPs, routed to the function before
    /// that binding moved on, can still arrive.
    fn function_settled(&self, endpoint: usize, function: usize) -> bool {
        let status = self
            .gates
            .get(endpoint)
            .and_then(Option::as_ref)
            .and_then(|g| g.status.binding(function));
        !status.is_some_and(|s| s.redirect_pending.load(Ordering::Acquire))
    }

    fn waiting_for(&self, plan: &Plan) -> String {
        let f = self.function(plan);
        let counts = |f: usize| {
            self.status_of(plan, f).map_or("no gate".to_string(), |s| {
                format!(
                    "function {f}: state {}, {} requests in, {} passed down, {} offered up, {} passed up, {} held",
                    s.state.load(Ordering::Acquire),
                    s.down_requests.load(Ordering::Acquire),
                    s.down_passed.load(Ordering::Acquire),
                    s.up_offered.load(Ordering::Acquire),
                    s.up_passed.load(Ordering::Acquire),
                    s.held.load(Ordering::Acquire),
                )
            })
        };
        let (received, sent, stopped) =
            self.vm_counters
                .get(plan.binding)
                .map_or((0, 0, false), |c| {
                    (
                        c.received.load(Ordering::Acquire),
                        c.sent.load(Ordering::Acquire),
                        c.detached.load(Ordering::Acquire),
                    )
                });
        let work = self.work.as_ref();
        let vm = work
            .and_then(|w| w.vm.as_ref())
            .map_or("not handed over".to_string(), |vm| {
                format!("handed over, {} requests sent", vm.requests_sent)
            });
        let moved = work
            .and_then(|w| w.moved)
            .map_or("not moved".to_string(), |m| {
                format!("moved, {} sent", m.sent)
            });
        format!(
            "{}; VM {vm}, {received} received, {sent} sent{}; device state {moved}",
            counts(f),
            if stopped { ", stopped" } else { "" }
        )
    }
}

impl FabricPlane {
    /// Asks the source host for the VM once it has stopped and every
    /// request it sent has reached the closed pause point: then nothing
    /// more passes toward the source (the VDI's answers to its
    /// configuration reads included), and that count is all the VM must
    /// receive before it leaves.
    fn ask_for_vm(&mut self, plan: &Plan) -> bool {
        let Some(c) = self.vm_counters.get(plan.binding) else {
            return false;
        };
        let Some(s) = self.status(plan) else {
            return false;
        };
        let stopped = c.detached.load(Ordering::Acquire);
        let sent = c.sent.load(Ordering::Acquire);
        if !stopped || s.down_requests.load(Ordering::Acquire) < sent {
            return false;
        }
        let after_received = s.up_passed.load(Ordering::Acquire);
        let stream = vm_stream(plan.binding);
        self.send_host(
            plan.from,
            HostCommand::Handover {
                stream,
                after_received,
            },
        );
        true
    }
}
