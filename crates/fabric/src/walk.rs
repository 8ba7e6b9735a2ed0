//! The whole fabric's tables in one place, and a walk that follows one TLP
//! from the host or endpoint that sends it, node by node, to where it leaves
//! the fabric. No links, no cores: the walk is for tests, tools and checking
//! a topology's routes; the dataplane calls [`NodeTables::forward`] itself.

use crate::node::{Action, NodeState, NodeTables, PortKind, Refusal};
use crate::topology::Topology;

/// Something attached to the fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attachment {
    /// A host (index into [`Topology::hosts`]).
    Host(usize),
    /// An endpoint device (index into [`Topology::endpoints`]).
    Endpoint(usize),
}

/// Where a TLP ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It left the fabric toward `to`, as these bytes, after `hops` nodes.
    Delivered {
        /// The receiver.
        to: Attachment,
        /// The TLP as it arrives (translated).
        bytes: Vec<u8>,
        /// Nodes it crossed.
        hops: usize,
    },
    /// It was refused and a completion went back to the sender.
    Replied {
        /// The sender, which receives the completion.
        to: Attachment,
        /// The completion as it arrives.
        bytes: Vec<u8>,
        /// Why.
        refusal: Refusal,
    },
    /// It was refused and dropped at `node`.
    Dropped {
        /// Where.
        node: usize,
        /// Why.
        refusal: Refusal,
    },
    /// It terminated at `node`.
    Local {
        /// Where.
        node: usize,
    },
    /// It was broadcast; each copy's fate.
    Broadcast(Vec<Outcome>),
}

/// Every node's tables and per-node state.
#[derive(Debug, Clone)]
pub struct Fabric {
    /// The topology the tables were built from.
    pub topology: Topology,
    /// Per node.
    pub tables: Vec<NodeTables>,
    /// Per node.
    pub states: Vec<NodeState>,
}

impl Fabric {
    /// Builds every node's tables.
    pub fn new(topology: Topology) -> Fabric {
        let tables = NodeTables::build_all(&topology);
        let states = topology
            .nodes
            .iter()
            .map(|n| NodeState::new(n.ports))
            .collect();
        Fabric {
            topology,
            tables,
            states,
        }
    }

    /// Sends `tlp` in from `from` and follows it out of the fabric.
    pub fn send(&mut self, from: Attachment, tlp: &[u8]) -> Outcome {
        let port = match from {
            Attachment::Host(h) => self.topology.hosts[h].attach,
            Attachment::Endpoint(e) => self.topology.endpoints[e].attach,
        };
        self.walk(port.node, port.port, tlp.to_vec(), 0, 0)
    }

    fn walk(
        &mut self,
        mut node: usize,
        mut ingress: u16,
        mut bytes: Vec<u8>,
        mut hops: usize,
        depth: usize,
    ) -> Outcome {
        let mut reply = [0u8; 16];
        loop {
            hops += 1;
            if hops > 2 * self.tables.len() + 1 || depth > 4 {
                return Outcome::Dropped {
                    node,
                    refusal: Refusal::NoRoute,
                };
            }
            let tables = &self.tables[node];
            let action = tables.forward(ingress, &mut bytes, &mut reply, &mut self.states[node], 0);
            let (egress, out) = match action {
                Action::Forward(egress) => (egress, bytes.clone()),
                Action::Reply { len, refusal } => match tables.ports()[ingress as usize] {
                    PortKind::Host(h) => {
                        return Outcome::Replied {
                            to: Attachment::Host(h),
                            bytes: reply[..len].to_vec(),
                            refusal,
                        }
                    }
                    PortKind::Endpoint(e) => {
                        return Outcome::Replied {
                            to: Attachment::Endpoint(e),
                            bytes: reply[..len].to_vec(),
                            refusal,
                        }
                    }
                    _ => (ingress, reply[..len].to_vec()),
                },
                Action::Drop(refusal) => return Outcome::Dropped { node, refusal },
                Action::Local => return Outcome::Local { node },
                Action::Broadcast(ports) => {
                    let ports = ports.to_vec();
                    let mut copies = Vec::new();
                    for p in ports {
                        match self.leave(node, p, bytes.clone(), hops, depth) {
                            Outcome::Broadcast(more) => copies.extend(more),
                            one => copies.push(one),
                        }
                    }
                    return Outcome::Broadcast(copies);
                }
            };
            match self.tables[node].ports()[egress as usize] {
                PortKind::Link { peer } => {
                    ingress = self.peer_port(node, egress);
                    node = peer;
                    bytes = out;
                }
                _ => return self.leave(node, egress, out, hops, depth),
            }
        }
    }

    /// A TLP leaving `node` through `port`.
    fn leave(
        &mut self,
        node: usize,
        port: u16,
        bytes: Vec<u8>,
        hops: usize,
        depth: usize,
    ) -> Outcome {
        match self.tables[node].ports()[port as usize] {
            PortKind::Host(h) => Outcome::Delivered {
                to: Attachment::Host(h),
                bytes,
                hops,
            },
            PortKind::Endpoint(e) => Outcome::Delivered {
                to: Attachment::Endpoint(e),
                bytes,
                hops,
            },
            PortKind::Link { peer } => {
                let ingress = self.peer_port(node, port);
                self.walk(peer, ingress, bytes, hops, depth + 1)
            }
            PortKind::Unused => Outcome::Dropped {
                node,
                refusal: Refusal::NoRoute,
            },
        }
    }

    fn peer_port(&self, node: usize, port: u16) -> u16 {
        self.topology
            .links
            .iter()
            .find_map(|(a, b)| {
                if a.node == node && a.port == port {
                    Some(b.port)
                } else if b.node == node && b.port == port {
                    Some(a.port)
                } else {
                    None
                }
            })
            .unwrap_or(u16::MAX)
    }
}
