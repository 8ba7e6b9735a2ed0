//! The fabric manager's service: registrations, reports, and the fabric's
//! state computed from them.

use crate::pb::fabric_manager_server::{FabricManager, FabricManagerServer};
use crate::pb::{
    BindingStatus, LinkStatus, NodeReport, NodeStatus, RegisterReply, RegisterRequest, ReportReply,
    StatusReply, StatusRequest,
};
use crate::{ControlError, MISSED_BEFORE_DOWN};
use fabric::Topology;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// What the manager runs with.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// The fabric.
    pub topology: Topology,
    /// Where to listen (`HOST:PORT`; port 0 picks one).
    pub listen: String,
    /// How often nodes report.
    pub heartbeat: Duration,
}

/// What the manager knows of one node.
#[derive(Debug, Default)]
struct NodeEntry {
    pid: u32,
    session: u64,
    /// Its last two reports, newest last, with when they came.
    reports: VecDeque<(Instant, NodeReport)>,
}

/// The manager's state: the topology and what the nodes told it.
#[derive(Debug)]
pub(crate) struct State {
    topology: Topology,
    digest: u64,
    heartbeat: Duration,
    started: Instant,
    nodes: Vec<NodeEntry>,
}

impl State {
    pub(crate) fn new(topology: Topology, heartbeat: Duration, now: Instant) -> State {
        State {
            digest: crate::topology_digest(&topology),
            nodes: topology
                .nodes
                .iter()
                .map(|_| NodeEntry::default())
                .collect(),
            topology,
            heartbeat,
            started: now,
        }
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.topology.nodes.iter().position(|n| n.name == name)
    }

    pub(crate) fn register(&mut self, r: &RegisterRequest) -> Result<RegisterReply, Status> {
        let Some(i) = self.node_index(&r.node) else {
            let names: Vec<&str> = self
                .topology
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            return Err(Status::not_found(format!(
                "the topology has no node {:?} (it has {})",
                r.node,
                names.join(", ")
            )));
        };
        if r.topology_digest != self.digest {
            return Err(Status::failed_precondition(format!(
                "node {}'s topology differs from the manager's (digest {:016x}, the manager's {:016x}): start both with the same file",
                r.node, r.topology_digest, self.digest
            )));
        }
        let entry = &mut self.nodes[i];
        if entry.session != r.session {
            // A new process: what the old one reported says nothing of it.
            entry.reports.clear();
        }
        entry.pid = r.pid;
        entry.session = r.session;
        Ok(RegisterReply {
            heartbeat_ms: self.heartbeat.as_millis().clamp(1, u32::MAX as u128) as u32,
        })
    }

    pub(crate) fn report(&mut self, r: NodeReport, now: Instant) -> ReportReply {
        let Some(i) = self.node_index(&r.node) else {
            return ReportReply { known: false };
        };
        let entry = &mut self.nodes[i];
        if entry.session != r.session || entry.session == 0 {
            return ReportReply { known: false };
        }
        if entry.reports.len() == 2 {
            entry.reports.pop_front();
        }
        entry.reports.push_back((now, r));
        ReportReply { known: true }
    }

    fn up(&self, node: usize, now: Instant) -> bool {
        let limit = self.heartbeat * MISSED_BEFORE_DOWN;
        self.nodes[node]
            .reports
            .back()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) <= limit)
    }

    /// Link `link`'s end at `node`: its last two reports' counters.
    fn link_ends(&self, node: usize, link: &str) -> Vec<&crate::pb::LinkReport> {
        self.nodes[node]
            .reports
            .iter()
            .filter_map(|(_, r)| r.links.iter().find(|l| l.link == link))
            .collect()
    }

    fn link_state(&self, i: usize, now: Instant) -> (&'static str, [u64; 3]) {
        let (a, b) = &self.topology.links[i];
        let name = format!("link{i}");
        let mut sums = [0; 3];
        let mut receiving = true;
        let mut declared_down = false;
        for node in [a.node, b.node] {
            let ends = self.link_ends(node, &name);
            if let Some(last) = ends.last() {
                sums[0] += last.frames_replayed;
                sums[1] += last.replay_timeouts;
                sums[2] += last.frames_malformed;
                declared_down |= last.down;
            }
            receiving &= match ends.as_slice() {
                [before, after] => after.frames_received > before.frames_received,
                _ => false,
            };
        }
        let state = if !self.up(a.node, now) || !self.up(b.node, now) || declared_down {
            "down"
        } else if receiving {
            "up"
        } else {
            "silent"
        };
        (state, sums)
    }

    /// The nodes and links from node `from` to node `to`, fewest hops.
    fn path(&self, from: usize, to: usize) -> Option<(Vec<usize>, Vec<usize>)> {
        let n = self.topology.nodes.len();
        let mut came: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut queue = VecDeque::from([from]);
        seen[from] = true;
        while let Some(at) = queue.pop_front() {
            if at == to {
                let (mut nodes, mut links) = (vec![to], Vec::new());
                let mut cur = to;
                while let Some((prev, link)) = came[cur] {
                    nodes.push(prev);
                    links.push(link);
                    cur = prev;
                }
                return Some((nodes, links));
            }
            for (i, (a, b)) in self.topology.links.iter().enumerate() {
                let next = if a.node == at {
                    b.node
                } else if b.node == at {
                    a.node
                } else {
                    continue;
                };
                if !seen[next] {
                    seen[next] = true;
                    came[next] = Some((at, i));
                    queue.push_back(next);
                }
            }
        }
        None
    }

    pub(crate) fn status(&self, now: Instant) -> StatusReply {
        let t = &self.topology;
        let nodes = t
            .nodes
            .iter()
            .zip(&self.nodes)
            .enumerate()
            .map(|(i, (node, e))| {
                let last = e.reports.back();
                NodeStatus {
                    name: node.name.clone(),
                    state: match last {
                        None => "unregistered",
                        Some(_) if self.up(i, now) => "up",
                        Some(_) => "down",
                    }
                    .into(),
                    last_report_ms: last.map_or(0, |(at, _)| {
                        now.saturating_duration_since(*at).as_millis() as u64
                    }),
                    pid: e.pid,
                    tlps_in: last.map_or(0, |(_, r)| r.tlps_in),
                    tlps_out: last.map_or(0, |(_, r)| r.tlps_out),
                    tlps_refused: last.map_or(0, |(_, r)| r.tlps_refused),
                }
            })
            .collect();
        let link_states: Vec<_> = (0..t.links.len())
            .map(|i| self.link_state(i, now))
            .collect();
        let links = t
            .links
            .iter()
            .zip(&link_states)
            .enumerate()
            .map(|(i, ((a, b), (state, sums)))| LinkStatus {
                name: format!("link{i}"),
                a: format!("{}:{}", t.nodes[a.node].name, a.port),
                b: format!("{}:{}", t.nodes[b.node].name, b.port),
                state: (*state).into(),
                frames_replayed: sums[0],
                replay_timeouts: sums[1],
                frames_malformed: sums[2],
            })
            .collect();
        let bindings = t
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let host = &t.hosts[b.host];
                let end = &t.endpoints[b.endpoint];
                let reported = self.nodes[host.attach.node]
                    .reports
                    .back()
                    .and_then(|(_, r)| r.bindings.iter().find(|r| r.binding == i as u32));
                let unreachable = match self.path(host.attach.node, end.attach.node) {
                    None => "no path between its host's node and its device's".to_string(),
                    Some((path_nodes, path_links)) => {
                        let node_down = path_nodes
                            .iter()
                            .rev()
                            .find(|&&n| !self.up(n, now))
                            .map(|&n| format!("node {} is not up", t.nodes[n].name));
                        let link_down = path_links
                            .iter()
                            .rev()
                            .find(|&&l| link_states[l].0 != "up")
                            .map(|&l| format!("link{l} is {}", link_states[l].0));
                        node_down.or(link_down).unwrap_or_default()
                    }
                };
                BindingStatus {
                    index: i as u32,
                    host: host.name.clone(),
                    function: match b.function {
                        0 => format!("{}.pf", end.name),
                        f => format!("{}.vf{f}", end.name),
                    },
                    id_mode: b.id_mode.name().into(),
                    requests_sent: reported.map_or(0, |r| r.requests_sent),
                    completion_timeouts: reported.map_or(0, |r| r.completion_timeouts),
                    unreachable,
                }
            })
            .collect();
        StatusReply {
            nodes,
            links,
            bindings,
            uptime_ms: now.saturating_duration_since(self.started).as_millis() as u64,
        }
    }
}

#[derive(Debug, Clone)]
struct Service(Arc<Mutex<State>>);

impl Service {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[tonic::async_trait]
impl FabricManager for Service {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterReply>, Status> {
        self.state().register(request.get_ref()).map(Response::new)
    }

    async fn report(&self, request: Request<NodeReport>) -> Result<Response<ReportReply>, Status> {
        Ok(Response::new(
            self.state().report(request.into_inner(), Instant::now()),
        ))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        Ok(Response::new(self.state().status(Instant::now())))
    }
}

/// A manager serving on a thread of its own until dropped.
#[derive(Debug)]
pub struct Manager {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Manager {
    /// Listens on `config.listen` and serves from a thread of its own.
    pub fn start(config: ManagerConfig) -> Result<Manager, ControlError> {
        let listen_error = |source| ControlError::Listen {
            addr: config.listen.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&config.listen).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let runtime = crate::runtime()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(listen_error)?
        };
        let state = Arc::new(Mutex::new(State::new(
            config.topology,
            config.heartbeat,
            Instant::now(),
        )));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("manager".into())
            .spawn(move || {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let serve = tonic::transport::Server::builder()
                    .add_service(FabricManagerServer::new(Service(state)))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    });
                if let Err(e) = runtime.block_on(serve) {
                    eprintln!("manager: {}", crate::source_chain(&e));
                }
            })
            .map_err(ControlError::Runtime)?;
        Ok(Manager {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{BindingReport, LinkReport};

    fn topology() -> Topology {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/default.toml");
        Topology::load(&path).expect("the default topology")
    }

    fn register(s: &mut State, node: &str, session: u64) -> Result<RegisterReply, Status> {
        let digest = s.digest;
        s.register(&RegisterRequest {
            node: node.into(),
            topology_digest: digest,
            pid: 1,
            session,
        })
    }

    fn report(node: &str, session: u64, received: u64, timeouts: u64) -> NodeReport {
        NodeReport {
            node: node.into(),
            session,
            links: vec![LinkReport {
                link: "link0".into(),
                frames_received: received,
                frames_replayed: 2,
                ..LinkReport::default()
            }],
            bindings: vec![BindingReport {
                binding: 0,
                requests_sent: 10,
                received: 5,
                completion_timeouts: timeouts,
            }],
            ..NodeReport::default()
        }
    }

    #[test]
    fn nodes_are_up_while_they_report_and_down_after_three_missed() {
        let t0 = Instant::now();
        let hb = Duration::from_millis(100);
        let mut s = State::new(topology(), hb, t0);
        let state = |s: &State, at| {
            let st = s.status(at);
            (st.nodes[0].state.clone(), st.nodes[1].state.clone())
        };
        assert_eq!(
            state(&s, t0),
            ("unregistered".into(), "unregistered".into())
        );
        register(&mut s, "sw0", 7).unwrap();
        register(&mut s, "sw1", 9).unwrap();
        assert!(s.report(report("sw0", 7, 100, 0), t0).known);
        assert!(s.report(report("sw1", 9, 100, 0), t0).known);
        assert_eq!(state(&s, t0 + hb * 3), ("up".into(), "up".into()));
        assert_eq!(
            state(&s, t0 + hb * 3 + hb / 10),
            ("down".into(), "down".into())
        );
        // A report from a process the manager does not know (it restarted,
        // or the node did): register again.
        assert!(!s.report(report("sw0", 8, 100, 0), t0).known);
        assert!(!s.report(report("sw9", 7, 100, 0), t0).known);
    }

    /// Both nodes registered (sessions 1 and 2) and reported once at `t0`,
    /// heartbeat `hb`.
    fn both_reported_once() -> (State, Instant, Duration) {
        let t0 = Instant::now();
        let hb = Duration::from_millis(100);
        let mut s = State::new(topology(), hb, t0);
        register(&mut s, "sw0", 1).unwrap();
        register(&mut s, "sw1", 2).unwrap();
        s.report(report("sw0", 1, 100, 0), t0);
        s.report(report("sw1", 2, 100, 0), t0);
        (s, t0, hb)
    }

    #[test]
    fn a_link_is_up_while_both_ends_receive() {
        let (mut s, t0, hb) = both_reported_once();
        // One report each: nothing to compare yet.
        assert_eq!(s.status(t0).links[0].state, "silent");
        s.report(report("sw0", 1, 200, 0), t0 + hb);
        s.report(report("sw1", 2, 150, 0), t0 + hb);
        let st = s.status(t0 + hb);
        assert_eq!(st.links[0].state, "up");
        assert_eq!(st.links[0].frames_replayed, 4);
        assert_eq!(st.links[0].a, "sw0:0");
        assert!(
            st.bindings[0].unreachable.is_empty(),
            "{:?}",
            st.bindings[0]
        );
        // sw0's end stops receiving (a cable pulled, say).
        s.report(report("sw0", 1, 200, 0), t0 + hb * 2);
        s.report(report("sw1", 2, 250, 0), t0 + hb * 2);
        let st = s.status(t0 + hb * 2);
        assert_eq!(st.links[0].state, "silent");
        assert_eq!(st.bindings[0].unreachable, "link0 is silent");
        // sw0 declares it down (silent past `down_after_ns`).
        let mut r = report("sw0", 1, 200, 0);
        r.links[0].down = true;
        s.report(r, t0 + hb * 3);
        s.report(report("sw1", 2, 350, 0), t0 + hb * 3);
        let st = s.status(t0 + hb * 3);
        assert_eq!(st.links[0].state, "down");
        assert_eq!(st.bindings[0].unreachable, "link0 is down");
    }

    #[test]
    fn a_binding_behind_a_node_that_is_down_says_so() {
        let (mut s, t0, hb) = both_reported_once();
        // sw1 (the device's node) stops; sw0 goes on reporting timeouts.
        let later = t0 + hb * 10;
        s.report(report("sw0", 1, 100, 3), later);
        let st = s.status(later);
        assert_eq!(st.nodes[1].state, "down");
        assert_eq!(st.links[0].state, "down");
        let b = &st.bindings[0];
        assert_eq!(
            (b.host.as_str(), b.function.as_str()),
            ("host-a", "nic0.vf1")
        );
        assert_eq!(b.completion_timeouts, 3);
        assert_eq!(b.unreachable, "node sw1 is not up");
    }

    #[test]
    fn registrations_of_unknown_nodes_and_other_topologies_are_refused() {
        let mut s = State::new(topology(), DEFAULT, Instant::now());
        let e = register(&mut s, "sw7", 1).unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(
            e.message().contains("no node \"sw7\" (it has sw0, sw1)"),
            "{e}"
        );
        let e = s
            .register(&RegisterRequest {
                node: "sw0".into(),
                topology_digest: 1,
                pid: 1,
                session: 1,
            })
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("differs from the manager's"), "{e}");
    }

    const DEFAULT: Duration = crate::DEFAULT_HEARTBEAT;
}
