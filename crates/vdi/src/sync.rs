//! Moving state between a VDI and a physical function through TLPs.
//!
//! [`SyncPlan::read_from_device`] lists the configuration and memory reads
//! that fetch a function's state (every configuration DW with a writable bit,
//! every register the VDI may serve), each with its own tag;
//! [`SyncPlan::absorb`] stores a completion's data where its request came
//! from. [`write_back`] lists the writes that bring a physical function to
//! the VDI's shadow before pass-through: configuration first (BARs before
//! the Command register, so decoding is enabled last), then the shadowable
//! registers and the MSI-X table. Pending MSI-X bits are not written back:
//! the array is read-only to software, so the VDI delivers what it holds
//! pending itself.

use crate::registers::Access;
use crate::Vdi;
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, Kind, Tlp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Config(u16),
    Register(usize),
    MsixEntry(usize),
}

/// Outstanding reads of a sync, by tag.
#[derive(Debug, Clone, Default)]
pub struct SyncPlan {
    targets: Vec<(u16, Target)>,
    /// Completions absorbed.
    pub absorbed: usize,
}

fn config_request(
    kind: Kind,
    requester: Bdf,
    tag: u16,
    target: Bdf,
    register: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut b = [0u8; 16];
    // A configuration request of one DW always fits 16 bytes.
    match tlp::build::config_request(&mut b, kind, requester, tag, target, register, data) {
        Ok(n) => b[..n].to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The DW offsets of configuration space software can change.
fn writable_dwords(vdi: &Vdi) -> Vec<u16> {
    let c = vdi.config();
    (0..c.len() as u16)
        .step_by(4)
        .filter(|&o| (0..4).any(|i| c.writable_mask(o + i) | c.clear_on_one_mask(o + i) != 0))
        .collect()
}

fn register_access(vdi: &Vdi, index: usize) -> Option<(u64, MemAccess)> {
    let r = &vdi.registers().registers()[index];
    let base = vdi.config().bar_address(r.bar as usize)?;
    let address = base + r.offset as u64;
    let within = (r.offset % 4) as u8;
    let access = match r.width {
        8 => MemAccess::dwords(address, 2),
        4 => MemAccess::dwords(address, 1),
        w => MemAccess {
            address: address & !3,
            length_dw: 1,
            first_be: ((1u8 << w) - 1) << within,
            last_be: 0,
        },
    };
    Some((address, access))
}

impl SyncPlan {
    /// The reads that fetch `vdi`'s state from the physical function
    /// `device` (its BARs at the addresses the VDI's own BARs hold), tags
    /// from `first_tag` on.
    pub fn read_from_device(
        vdi: &Vdi,
        requester: Bdf,
        device: Bdf,
        first_tag: u16,
    ) -> (SyncPlan, Vec<Vec<u8>>) {
        let mut plan = SyncPlan::default();
        let mut requests = Vec::new();
        let mut tag = first_tag;
        for offset in writable_dwords(vdi) {
            requests.push(config_request(
                Kind::CfgRd0,
                requester,
                tag,
                device,
                offset,
                &[],
            ));
            plan.targets.push((tag, Target::Config(offset)));
            tag = (tag + 1) & 0x3ff;
        }
        for (i, r) in vdi.registers().registers().iter().enumerate() {
            if !r.access.read_served() {
                continue;
            }
            let Some((_, access)) = register_access(vdi, i) else {
                continue;
            };
            let mut b = [0u8; 24];
            if let Ok(n) = memory_read(&mut b, requester, tag, access) {
                requests.push(b[..n].to_vec());
                plan.targets.push((tag, Target::Register(i)));
                tag = (tag + 1) & 0x3ff;
            }
        }
        for (i, address) in msix_entries(vdi) {
            let mut b = [0u8; 24];
            if let Ok(n) = memory_read(&mut b, requester, tag, MemAccess::dwords(address, 4)) {
                requests.push(b[..n].to_vec());
                plan.targets.push((tag, Target::MsixEntry(i)));
                tag = (tag + 1) & 0x3ff;
            }
        }
        (plan, requests)
    }

    /// Reads still unanswered.
    pub fn outstanding(&self) -> usize {
        self.targets.len()
    }

    /// Stores a completion of one of the plan's reads in `vdi`; false if it
    /// is not one (wrong tag, not a successful completion with data).
    pub fn absorb(&mut self, vdi: &mut Vdi, completion: &[u8]) -> bool {
        let Ok(t) = Tlp::new_checked(completion) else {
            return false;
        };
        if t.kind() != Some(Kind::CplD) || t.status() != tlp::CplStatus::Sc {
            return false;
        }
        let Some(i) = self.targets.iter().position(|(tag, _)| *tag == t.tag()) else {
            return false;
        };
        let (_, target) = self.targets.swap_remove(i);
        let data = t.payload();
        match target {
            Target::Config(offset) => {
                if data.len() >= 4 {
                    vdi.config_mut().set_raw(offset, &data[..4]);
                }
            }
            Target::Register(index) => {
                let r = &vdi.registers().registers()[index];
                let within = (r.offset % 4) as usize;
                let mut v = [0u8; 8];
                let n = (r.width as usize).min(data.len().saturating_sub(within));
                v[..n].copy_from_slice(&data[within..within + n]);
                vdi.registers_mut().set_value(index, u64::from_le_bytes(v));
            }
            Target::MsixEntry(i) => {
                if data.len() >= 16 {
                    let w = |k: usize| {
                        u32::from_le_bytes([
                            data[4 * k],
                            data[4 * k + 1],
                            data[4 * k + 2],
                            data[4 * k + 3],
                        ])
                    };
                    if let Some(m) = vdi.msix_mut() {
                        m.set_entry(i, [w(0), w(1), w(2), w(3)]);
                    }
                }
            }
        }
        self.absorbed += 1;
        true
    }
}

/// Each MSI-X table entry with its address (the table's BAR must be memory
/// and programmed).
fn msix_entries(vdi: &Vdi) -> Vec<(usize, u64)> {
    let Some(m) = vdi.msix() else {
        return Vec::new();
    };
    let info = m.info();
    let Some(base) = vdi.config().bar_address(info.table_bir as usize) else {
        return Vec::new();
    };
    (0..m.table().len())
        .map(|i| (i, base + info.table_offset as u64 + 16 * i as u64))
        .collect()
}

/// The writes that bring the physical function `device` to `vdi`'s shadowed
/// state: configuration (Command last), then shadowable registers.
pub fn write_back(vdi: &Vdi, requester: Bdf, device: Bdf, first_tag: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut tag = first_tag;
    let mut offsets = writable_dwords(vdi);
    // The Command register (Memory Space Enable) goes last.
    offsets.sort_by_key(|&o| (o == crate::config::reg::COMMAND, o));
    for offset in offsets {
        let data = vdi.config().read(offset);
        out.push(config_request(
            Kind::CfgWr0,
            requester,
            tag,
            device,
            offset,
            &data,
        ));
        tag = (tag + 1) & 0x3ff;
    }
    for (i, r) in vdi.registers().registers().iter().enumerate() {
        if r.access != Access::Shadowable {
            continue;
        }
        let Some((_, access)) = register_access(vdi, i) else {
            continue;
        };
        let value = vdi.registers().value(i).unwrap_or(0).to_le_bytes();
        let within = (r.offset % 4) as usize;
        let mut payload = [0u8; 8];
        let dws = access.length_dw as usize;
        payload[within..within + r.width as usize].copy_from_slice(&value[..r.width as usize]);
        let mut b = [0u8; 32];
        if let Ok(n) = memory_write(&mut b, requester, 0, access, &payload[..4 * dws]) {
            out.push(b[..n].to_vec());
        }
    }
    if let Some(m) = vdi.msix() {
        for (i, address) in msix_entries(vdi) {
            let mut payload = [0u8; 16];
            for (k, w) in m.table()[i].iter().enumerate() {
                payload[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
            }
            let mut b = [0u8; 40];
            if let Ok(n) = memory_write(
                &mut b,
                requester,
                0,
                MemAccess::dwords(address, 4),
                &payload,
            ) {
                out.push(b[..n].to_vec());
            }
        }
    }
    out
}
