//! The agent a node process runs beside its cores: registers with the
//! manager and reports the node's counters every heartbeat, on a thread of
//! its own. A manager that is away costs the node nothing but reports: the
//! agent retries, and registers again when one answers.

use crate::pb::{NodeReport, RegisterRequest};
use crate::ControlError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Reads the node's counters into a report (node name and session are
/// filled in by the agent).
pub type Sample = Box<dyn FnMut() -> NodeReport + Send>;

/// Who the agent reports for, and to whom.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The manager's `HOST:PORT`.
    pub manager: String,
    /// The node's name in the topology.
    pub node: String,
    /// [`crate::topology_digest`] of the topology the node loaded.
    pub digest: u64,
    /// How often to report until the manager says.
    pub heartbeat: Duration,
}

/// What the agent has seen, for the node's own report.
#[derive(Debug, Default, Clone)]
pub struct AgentLog {
    /// Registrations the manager accepted.
    pub registered: u64,
    /// Reports it took.
    pub reports: u64,
    /// Why the manager refused the node, if it did (the agent then stops).
    pub refused: Option<String>,
    /// Connections lost or never made.
    pub unreachable: u64,
}

/// A running agent; stopped when dropped.
#[derive(Debug)]
pub struct Agent {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<AgentLog>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// Starts reporting what `sample` reads, as `config` says.
    pub fn spawn(config: AgentConfig, sample: Sample) -> Result<Agent, ControlError> {
        crate::uri(&config.manager)?;
        let runtime = crate::runtime()?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(AgentLog::default()));
        let thread = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::Builder::new()
                .name("agent".into())
                .spawn(move || runtime.block_on(run(config, sample, stop, log)))
                .map_err(ControlError::Runtime)?
        };
        Ok(Agent {
            stop,
            log,
            thread: Some(thread),
        })
    }

    /// What it has seen so far.
    pub fn log(&self) -> AgentLog {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A number for this process's session: the manager tells a restarted
/// node from the process it knew.
fn session() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 40)) | 1
}

/// Sleeps `d`, or less if told to stop.
async fn nap(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let now = left.min(step);
        tokio::time::sleep(now).await;
        left -= now;
    }
}

async fn run(
    config: AgentConfig,
    mut sample: Sample,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<AgentLog>>,
) {
    let note = |f: &mut dyn FnMut(&mut AgentLog)| {
        f(&mut log.lock().unwrap_or_else(PoisonError::into_inner));
    };
    let session = session();
    let mut heartbeat = config.heartbeat;
    let mut client = None;
    let mut registered = false;
    // Said once per outage, not at every retry.
    let mut said_unreachable = false;
    while !stop.load(Ordering::Relaxed) {
        if client.is_none() {
            match crate::connect(&config.manager, Duration::from_secs(1)).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    note(&mut |l| l.unreachable += 1);
                    if !said_unreachable {
                        eprintln!("node {}: {e}; retrying, forwarding meanwhile", config.node);
                        said_unreachable = true;
                    }
                    nap(heartbeat, &stop).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else {
            continue;
        };
        if !registered {
            let request = RegisterRequest {
                node: config.node.clone(),
                topology_digest: config.digest,
                pid: std::process::id(),
                session,
            };
            match c.register(request).await {
                Ok(reply) => {
                    registered = true;
                    let ms = reply.get_ref().heartbeat_ms.max(1);
                    heartbeat = Duration::from_millis(u64::from(ms));
                    note(&mut |l| l.registered += 1);
                    if said_unreachable {
                        eprintln!("node {}: registered with {}", config.node, config.manager);
                    }
                    said_unreachable = false;
                }
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::NotFound | tonic::Code::FailedPrecondition
                    ) =>
                {
                    let why = format!(
                        "the manager at {} refused node {}: {}",
                        config.manager,
                        config.node,
                        s.message()
                    );
                    // Recorded only: the node says it, and stops.
                    note(&mut |l| l.refused = Some(why.clone()));
                    return;
                }
                Err(_) => {
                    client = None;
                    note(&mut |l| l.unreachable += 1);
                    nap(heartbeat, &stop).await;
                    continue;
                }
            }
        }
        let mut report = sample();
        report.node = config.node.clone();
        report.session = session;
        match c.report(report).await {
            Ok(reply) if reply.get_ref().known => note(&mut |l| l.reports += 1),
            // The manager restarted: it learns the node again.
            Ok(_) => registered = false,
            Err(_) => {
                client = None;
                registered = false;
                note(&mut |l| l.unreachable += 1);
            }
        }
        nap(heartbeat, &stop).await;
    }
}
