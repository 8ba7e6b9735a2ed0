//! A VDI of the shipped "nic" template (an 82576 physical function) serving
//! TLPs: configuration requests, register reads and writes by access class,
//! MSI-X, generated messages, snapshots, and syncing with a device.

use std::path::Path;
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, Body, CplStatus, Kind, MsgRouting, Repr, Tlp};
use vdi::msix::Raised;
use vdi::sync::{write_back, SyncPlan};
use vdi::{CompletionSignal, Mode, SnapshotError, Template, Vdi, Verdict};

const FUNCTION: Bdf = Bdf::new(0x40, 0, 1);
const HOST: Bdf = Bdf::new(0xff, 0, 0);
const BAR0: u64 = 0x8002_0000;
const BAR3: u64 = 0x8010_0000;

fn template() -> Template {
    static TEMPLATE: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/templates/nic.toml"
    ));
    TEMPLATE
        .get_or_init(|| Template::load(path).unwrap())
        .clone()
}

fn config(kind: Kind, target: Bdf, register: u16, be: u8, data: &[u8]) -> Vec<u8> {
    let mut repr = Repr::new(kind, MsgRouting::Local, data);
    repr.requester = HOST;
    repr.tag = 0x21;
    if let Body::Config {
        target: t,
        register: r,
        first_be,
        ..
    } = &mut repr.body
    {
        *t = target;
        *r = register;
        *first_be = be;
    }
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

fn mrd(address: u64, dws: u16) -> Vec<u8> {
    let mut b = vec![0u8; 32];
    let n = memory_read(&mut b, HOST, 7, MemAccess::dwords(address, dws)).unwrap();
    b.truncate(n);
    b
}

fn mwr(address: u64, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = memory_write(
        &mut b,
        HOST,
        0,
        MemAccess::dwords(address, data.len() as u16 / 4),
        data,
    )
    .unwrap();
    b.truncate(n);
    b
}

/// A VDI with BAR 0 and BAR 3 programmed and memory decoding on, as a host
/// leaves it after enumeration, in the given mode.
fn programmed(mode: Mode) -> Vdi {
    let mut v = Vdi::new(&template(), FUNCTION);
    v.set_mode(Mode::Shadow);
    let mut out = [0u8; 64];
    for (reg, value) in [(0x10u16, BAR0 as u32), (0x1c, BAR3 as u32), (0x04, 0x0006)] {
        let t = config(Kind::CfgWr0, FUNCTION, reg, 0xf, &value.to_le_bytes());
        assert_eq!(v.serve(&t, &mut out), Verdict::Completed(12));
    }
    v.set_mode(mode);
    v
}

/// Serves `t` and returns the completion the VDI wrote.
fn cpl(v: &mut Vdi, t: &[u8]) -> Tlp<Vec<u8>> {
    let mut out = [0u8; 64];
    match v.serve(t, &mut out) {
        Verdict::Completed(n) if n > 0 => Tlp::new_checked(out[..n].to_vec()).unwrap(),
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[test]
fn configuration_requests_complete_from_the_shadow() {
    let mut v = Vdi::new(&template(), FUNCTION);
    let mut out = [0u8; 64];
    let read = config(Kind::CfgRd0, FUNCTION, 0, 0xf, &[]);
    assert_eq!(
        v.serve(&read, &mut out),
        Verdict::PassThrough,
        "not in the path yet"
    );
    v.set_mode(Mode::Migrating);
    let c = cpl(&mut v, &read);
    assert_eq!(c.kind(), Some(Kind::CplD));
    assert_eq!(
        (c.completer_id(), c.requester_id(), c.tag()),
        (FUNCTION, HOST, 0x21)
    );
    assert_eq!(
        (c.status(), c.byte_count(), c.lower_address()),
        (CplStatus::Sc, 4, 0)
    );
    assert_eq!(c.payload(), [0x86, 0x80, 0xc9, 0x10]);
    // A write with only byte 0 enabled changes only byte 0 of Command.
    let w = config(
        Kind::CfgWr0,
        FUNCTION,
        0x04,
        0b0001,
        &[0x00, 0xff, 0xff, 0xff],
    );
    let c = cpl(&mut v, &w);
    assert_eq!((c.kind(), c.status()), (Some(Kind::Cpl), CplStatus::Sc));
    assert_eq!(v.config().word(0x04), 0x0400);
    // Another function's ID: Unsupported Request.
    let other = config(Kind::CfgRd0, Bdf::new(0x40, 0, 2), 0, 0xf, &[]);
    assert_eq!(cpl(&mut v, &other).status(), CplStatus::Ur);
    let s = v.stats();
    assert_eq!(
        (
            s.config_reads,
            s.config_writes,
            s.unsupported,
            s.passed_through
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn registers_are_served_or_held_by_access_class() {
    let mut v = programmed(Mode::Migrating);
    let mut out = [0u8; 64];
    // Shadowable: read its reset value, write, read back.
    let c = cpl(&mut v, &mrd(BAR0, 1));
    assert_eq!(c.payload(), 0x0010_0241u32.to_le_bytes());
    assert_eq!(
        v.serve(&mwr(BAR0, &0x0400_0000u32.to_le_bytes()), &mut out),
        Verdict::Completed(0)
    );
    let c = cpl(&mut v, &mrd(BAR0, 1));
    assert_eq!(c.payload(), 0x0400_0000u32.to_le_bytes());
    // An 8-byte register read as two DWs.
    v.serve(&mwr(BAR0 + 0xc000, &[1, 2, 3, 4, 5, 6, 7, 8]), &mut out);
    let c = cpl(&mut v, &mrd(BAR0 + 0xc000, 2));
    assert_eq!(
        (c.payload(), c.byte_count()),
        (&[1, 2, 3, 4, 5, 6, 7, 8][..], 8)
    );
    // Read-only: the write is accepted and ignored.
    v.serve(&mwr(BAR0 + 8, &[0; 4]), &mut out);
    assert_eq!(
        cpl(&mut v, &mrd(BAR0 + 8, 1)).payload(),
        0x0008_0783u32.to_le_bytes()
    );
    // Write-1-to-clear.
    v.serve(&mwr(BAR0 + 0x5810, &[0x05, 0, 0, 0]), &mut out);
    assert_eq!(
        cpl(&mut v, &mrd(BAR0 + 0x5810, 1)).payload(),
        [0x0a, 0, 0, 0]
    );
    // Side effects need the device: held while migrating.
    assert_eq!(
        v.serve(&mrd(BAR0 + 0x1500, 1), &mut out),
        Verdict::Hold,
        "ICR clears on read"
    );
    assert_eq!(
        v.serve(&mwr(BAR0 + 0xc018, &[1, 0, 0, 0]), &mut out),
        Verdict::Hold,
        "RDT is a doorbell"
    );
    assert!(
        matches!(
            v.serve(&mrd(BAR0 + 0xc018, 1), &mut out),
            Verdict::Completed(_)
        ),
        "reading a doorbell is served"
    );
    // A byte no register describes: the device decides.
    assert_eq!(v.serve(&mrd(BAR0 + 0x4, 1), &mut out), Verdict::Hold);
    // Beside the migration, the same go through instead of waiting.
    v.set_mode(Mode::Shadow);
    assert_eq!(
        v.serve(&mrd(BAR0 + 0x1500, 1), &mut out),
        Verdict::PassThrough
    );
    // Outside every BAR: Unsupported Request for a read, a counted drop for a write.
    let c = cpl(&mut v, &mrd(0x9000_0000, 1));
    assert_eq!(
        (c.status(), c.tag(), c.completer_id()),
        (CplStatus::Ur, 7, FUNCTION)
    );
    assert_eq!(
        v.serve(&mwr(0x9000_0000, &[0; 4]), &mut out),
        Verdict::Completed(0)
    );
    let s = v.stats();
    assert_eq!((s.held, s.passed_through, s.unsupported), (3, 1, 2));
}

#[test]
fn memory_decoding_follows_the_command_register() {
    let mut v = programmed(Mode::Migrating);
    let mut out = [0u8; 64];
    v.serve(
        &config(Kind::CfgWr0, FUNCTION, 0x04, 0xf, &[0, 0, 0, 0]),
        &mut out,
    );
    assert_eq!(cpl(&mut v, &mrd(BAR0, 1)).status(), CplStatus::Ur);
}

fn enable_msix(v: &mut Vdi, out: &mut [u8]) {
    // Message Control is the upper half of the DW at 0x70: set Enable.
    let t = config(Kind::CfgWr0, FUNCTION, 0x70, 0b1000, &[0, 0, 0, 0x80]);
    v.serve(&t, out);
    v.refresh_interrupts();
}

#[test]
fn msix_interrupts_are_real_memory_writes_and_pend_while_masked() {
    let mut v = programmed(Mode::Migrating);
    let mut out = [0u8; 64];
    // The host programs vector 2 (address, data) through BAR 3, unmasked.
    let entry = BAR3 + 2 * 16;
    let mut e = Vec::new();
    e.extend_from_slice(&0xfee0_1000u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&0x0000_4062u32.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes()); // still masked
    assert_eq!(v.serve(&mwr(entry, &e), &mut out), Verdict::Completed(0));
    // The dump has MSI-X enabled; with Enable clear nothing is raised.
    v.serve(
        &config(Kind::CfgWr0, FUNCTION, 0x70, 0b1000, &[0; 4]),
        &mut out,
    );
    assert_eq!(v.raise_interrupt(2), Raised::Dropped, "MSI-X disabled");
    enable_msix(&mut v, &mut out);
    assert_eq!(v.raise_interrupt(2), Raised::Pending);
    // The PBA reads the pending bit.
    let c = cpl(&mut v, &mrd(BAR3 + 0x2000, 1));
    assert_eq!(c.payload(), [0b100, 0, 0, 0]);
    assert_eq!(v.poll_upstream(&mut out), None);
    // Unmasking delivers it: a memory write to the programmed address.
    v.serve(&mwr(entry + 12, &[0; 4]), &mut out);
    let n = v.poll_upstream(&mut out).unwrap();
    let w = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(
        (w.kind(), w.address(), w.requester_id()),
        (Some(Kind::MWr), 0xfee0_1000, FUNCTION)
    );
    assert_eq!(w.payload(), 0x4062u32.to_le_bytes());
    assert_eq!(v.poll_upstream(&mut out), None, "delivered once");
    assert!(!v.msix().unwrap().is_pending(2));
    // Raised unmasked: delivered at once.
    assert!(matches!(v.raise_interrupt(2), Raised::Deliver { .. }));
    assert!(v.poll_upstream(&mut out).is_some());
    assert_eq!(v.stats().interrupts, 2);
}

#[test]
fn messages_and_the_completion_signal_go_upstream() {
    let mut v = programmed(Mode::Migrating);
    let mut out = [0u8; 64];
    v.send_message(0x18); // PM_PME
    let n = v.poll_upstream(&mut out).unwrap();
    let m = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(
        (m.kind(), m.requester_id(), m.message_code().byte()),
        (Some(Kind::Msg), FUNCTION, 0x18)
    );
    v.complete_migration(CompletionSignal::VendorMessage {
        vendor_id: 0x8086,
        word: 0xc0ffee,
    });
    assert_eq!(v.mode(), Mode::PassThrough, "pass-through from now on");
    let n = v.poll_upstream(&mut out).unwrap();
    let m = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(m.message_code().byte(), 0x7f);
    assert_eq!(
        &m.message_fields()[2..8],
        &[0x80, 0x86, 0x00, 0xc0, 0xff, 0xee]
    );
    assert_eq!(v.serve(&mrd(BAR0, 1), &mut out), Verdict::PassThrough);
}

#[test]
fn snapshots_restore_into_another_instantiation_and_are_checked() {
    let mut source = programmed(Mode::Shadow);
    let mut out = [0u8; 64];
    source.serve(&mwr(BAR0 + 0x5400, &[0xde, 0xad, 0xbe, 0xef]), &mut out);
    source.serve(&mwr(BAR3 + 16, &[0x00, 0x10, 0xe0, 0xfe]), &mut out);
    enable_msix(&mut source, &mut out);
    source.raise_interrupt(0);
    let snap = source.snapshot();

    // The destination instantiation lives beside the source (claim 1).
    let mut dest = Vdi::new(&template(), Bdf::new(0x40, 0, 2));
    dest.restore(&snap).unwrap();
    assert_eq!(dest.config().bytes(), source.config().bytes());
    assert_eq!(dest.registers().values(), source.registers().values());
    assert_eq!(dest.msix().unwrap().table(), source.msix().unwrap().table());
    assert!(dest.msix().unwrap().is_pending(0));
    // Both operate at once and independently (claims 2-4).
    dest.set_mode(Mode::Migrating);
    let dest_id = dest.function();
    let read = |v: &mut Vdi, out: &mut [u8]| match v.serve(&mrd(BAR0 + 0x5400, 1), out) {
        Verdict::Completed(n) => Tlp::new_checked(&out[..n]).unwrap().payload().to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(read(&mut dest, &mut out), [0xde, 0xad, 0xbe, 0xef]);
    source.serve(&mwr(BAR0 + 0x5400, &[1, 1, 1, 1]), &mut out);
    assert_eq!(read(&mut dest, &mut out), [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(read(&mut source, &mut out), [1, 1, 1, 1]);
    let c = cpl(&mut dest, &config(Kind::CfgRd0, dest_id, 0, 0xf, &[]));
    assert_eq!(c.completer_id(), dest_id);

    // Damage, versions and other devices are refused, and change nothing.
    let mut bad = snap.clone();
    bad[100] ^= 1;
    assert_eq!(dest.restore(&bad), Err(SnapshotError::Checksum));
    let mut newer = snap.clone();
    newer[8] = 9;
    assert!(matches!(
        dest.restore(&newer),
        Err(SnapshotError::Version { found: 9, .. })
    ));
    assert_eq!(dest.restore(&snap[..5]), Err(SnapshotError::NotASnapshot));
    let mut other = template();
    other.config.set_raw(2, &[0x00, 0x10]);
    let mut foreign = Vdi::new(&other, FUNCTION);
    assert!(matches!(
        foreign.restore(&snap),
        Err(SnapshotError::Device { .. })
    ));
}

#[test]
fn a_sync_reads_the_device_and_a_write_back_restores_it() {
    // The "physical function" is modelled by another VDI answering reads.
    let mut device = programmed(Mode::Shadow);
    let mut out = [0u8; 64];
    device.serve(&mwr(BAR0 + 0x100, &[0x02, 0x80, 0, 0]), &mut out); // RCTL
    device.serve(&mwr(BAR0 + 0xe000, &[9; 8]), &mut out); // TDBAL0
    device.serve(
        &mwr(
            BAR3 + 16,
            &[
                0x00, 0x20, 0xe0, 0xfe, 0, 0, 0, 0, 0x41, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        &mut out,
    );
    let mut shadow = programmed(Mode::Shadow);
    let (mut plan, reads) = SyncPlan::read_from_device(&shadow, HOST, FUNCTION, 0x100);
    assert!(reads.len() > 20, "{} reads", reads.len());
    for r in &reads {
        let n = match device.serve(r, &mut out) {
            Verdict::Completed(n) => n,
            other => panic!("{other:?}"),
        };
        assert!(plan.absorb(&mut shadow, &out[..n]));
    }
    assert_eq!(plan.outstanding(), 0);
    assert_eq!(shadow.registers().values(), device.registers().values());
    assert_eq!(shadow.config().bytes(), device.config().bytes());
    assert_eq!(
        shadow.msix().unwrap().table(),
        device.msix().unwrap().table()
    );

    // The shadow changes while the function moves; writing back brings a
    // fresh device to the same state.
    shadow.serve(&mwr(BAR0 + 0x5404, &[0x11, 0x22, 0, 0x80]), &mut out);
    let mut fresh = Vdi::new(&template(), FUNCTION);
    fresh.set_mode(Mode::Shadow);
    let writes = write_back(&shadow, HOST, FUNCTION, 0);
    let last_config = writes
        .iter()
        .rposition(|w| Tlp::new_checked(&w[..]).unwrap().kind() == Some(Kind::CfgWr0))
        .unwrap();
    assert_eq!(
        Tlp::new_checked(&writes[last_config][..])
            .unwrap()
            .register(),
        0x04,
        "Command last"
    );
    for w in &writes {
        assert!(matches!(fresh.serve(w, &mut out), Verdict::Completed(_)));
    }
    assert_eq!(fresh.registers().values(), shadow.registers().values());
    assert_eq!(fresh.config().word(0x04), shadow.config().word(0x04));
    assert_eq!(fresh.config().bar_address(0), Some(BAR0));
    assert_eq!(
        fresh.msix().unwrap().table(),
        shadow.msix().unwrap().table()
    );
}

#[test]
fn narrow_registers_are_read_and_written_by_their_bytes() {
    use vdi::registers::{Access, Register, RegisterFile};
    let mut t = template();
    let reg = |name: &str, offset: u32, width: u8, reset: u64, access: Access| Register {
        name: name.into(),
        bar: 0,
        offset,
        width,
        reset,
        access,
    };
    t.registers = RegisterFile::new(vec![
        reg("LO", 0x100, 2, 0x1111, Access::Shadowable),
        reg("B2", 0x102, 1, 0x22, Access::Shadowable),
        reg("CAUSE", 0x103, 1, 0x33, Access::ReadSideEffect),
    ])
    .unwrap();
    let mut v = Vdi::new(&t, FUNCTION);
    v.set_mode(Mode::Shadow);
    let mut out = [0u8; 64];
    for (reg, value) in [(0x10u16, BAR0 as u32), (0x04, 0x0006)] {
        v.serve(
            &config(Kind::CfgWr0, FUNCTION, reg, 0xf, &value.to_le_bytes()),
            &mut out,
        );
    }
    v.set_mode(Mode::Migrating);
    let read = |be: u8| {
        let mut b = vec![0u8; 32];
        let access = MemAccess {
            address: BAR0 + 0x100,
            length_dw: 1,
            first_be: be,
            last_be: 0,
        };
        let n = memory_read(&mut b, HOST, 3, access).unwrap();
        b.truncate(n);
        b
    };
    // Only byte 2 asked for: one 1-byte register, served, neighbours filled in.
    let c = cpl(&mut v, &read(0b0100));
    assert_eq!(c.payload()[2], 0x22);
    assert_eq!((c.byte_count(), c.lower_address()), (1, 2));
    // Bytes 0-2 span two shadowable registers: served.
    assert_eq!(
        cpl(&mut v, &read(0b0111)).payload()[..3],
        [0x11, 0x11, 0x22]
    );
    // Byte 3 has a read side effect: held.
    assert_eq!(v.serve(&read(0b1000), &mut out), Verdict::Hold);
    assert_eq!(v.serve(&read(0b1111), &mut out), Verdict::Hold);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes, and real requests with a byte scrambled, in every
        /// mode: the VDI answers without panicking, and what it writes is a
        /// valid completion.
        #[test]
        fn serving_anything(
            bytes in proptest::collection::vec(any::<u8>(), 0..48),
            flip in any::<(usize, u8)>(),
            which in 0usize..4,
            out_len in 0usize..80,
        ) {
            let mut v = programmed(Mode::Migrating);
            let mut requests = vec![
                bytes,
                mrd(BAR0 + 0x5400, 2),
                mwr(BAR3, &[1, 2, 3, 4]),
                config(Kind::CfgWr0, FUNCTION, 0x70, 0b1100, &[0, 0, 0xff, 0xff]),
            ];
            let mut t = requests.swap_remove(which);
            if !t.is_empty() {
                let i = flip.0 % t.len();
                t[i] ^= flip.1;
            }
            let mut out = vec![0u8; out_len];
            for mode in [Mode::Migrating, Mode::Shadow, Mode::PassThrough] {
                v.set_mode(mode);
                if let Verdict::Completed(n) = v.serve(&t, &mut out) {
                    if n > 0 {
                        prop_assert!(Tlp::new_checked(&out[..n]).is_ok());
                    }
                }
            }
            let mut up = [0u8; 64];
            while v.poll_upstream(&mut up).is_some() {}
        }
    }
}

#[test]
fn writes_seen_on_their_way_to_the_device_keep_the_registers_the_devices() {
    let mut v = Vdi::new(&template(), FUNCTION);
    // Placed as the fabric places it, 32-bit, memory decoding on.
    v.place_bar(0, BAR0);
    assert_eq!(v.config().bar_address(0), Some(BAR0));
    assert!(v.config().memory_enabled());
    assert_eq!(v.register_span(0), 0xe01c, "TDT0 ends the register block");
    assert_eq!(v.register_span(4), 0);
    // In pass-through, writes reach the device; the VDI notes each as the
    // device will hold it.
    let seen = [
        (0x00018u64, 0x1234_5678u32), // CTRL_EXT, shadowable
        (0x0e018, 77),                // TDT0, a doorbell: keeps the tail
        (0x05810, 0b0101),            // WUS, write 1 to clear
        (0x00008, 0),                 // STATUS, read-only: no change
        (0x01504, 0x4),               // ICS, a doorbell too
    ];
    for (offset, value) in seen {
        v.observe(&mwr(BAR0 + offset, &value.to_le_bytes()));
    }
    v.observe(&mwr(BAR0 + 0x10000, &[9; 4])); // no register there
    assert_eq!(v.stats().observed_register_writes, 5);
    v.set_mode(Mode::Migrating);
    let mut read = |offset: u64| {
        let t = mrd(BAR0 + offset, 1);
        let mut out = [0u8; 64];
        match v.serve(&t, &mut out) {
            Verdict::Completed(n) => {
                let c = Tlp::new_checked(&out[..n]).unwrap();
                assert_eq!(c.status(), CplStatus::Sc);
                Some(u32::from_le_bytes(c.payload()[..4].try_into().unwrap()))
            }
            _ => None,
        }
    };
    assert_eq!(read(0x18), Some(0x1234_5678));
    assert_eq!(read(0xe018), Some(77));
    assert_eq!(
        read(0x5810),
        Some(0b1010),
        "reset 0xf, bits 0 and 2 cleared"
    );
    assert_eq!(read(0x8), Some(0x0008_0783), "the template's reset value");
    assert_eq!(read(0x1500), None, "ICR clears on read: the device's");
}

#[test]
fn state_moved_from_another_function_keeps_this_ones_bars() {
    let mut source = Vdi::new(&template(), FUNCTION);
    source.place_bar(0, BAR0);
    source.observe(&mwr(BAR0 + 0x18, &0x55u32.to_le_bytes()));
    let mut dest = Vdi::new(&template(), Bdf::new(0x40, 0, 3));
    dest.place_bar(0, BAR0 + 0x4_0000);
    dest.restore_moved(&source.snapshot()).unwrap();
    assert_eq!(dest.config().bar_address(0), Some(BAR0 + 0x4_0000));
    assert!(dest.decodes(BAR0 + 0x4_0018) && !dest.decodes(BAR0 + 0x18));
    let ctrl_ext = dest
        .registers()
        .registers()
        .iter()
        .position(|r| r.name == "CTRL_EXT");
    assert_eq!(dest.registers().value(ctrl_ext.unwrap()), Some(0x55));
    // Within one process the state is taken without a snapshot, the same.
    let mut direct = Vdi::new(&template(), Bdf::new(0x40, 0, 3));
    direct.place_bar(0, BAR0 + 0x4_0000);
    direct.take_state_of(&source).unwrap();
    assert_eq!(direct.snapshot(), dest.snapshot());
    let mut another_device = template();
    another_device.config.set_raw(0, &[0xf4, 0x1a, 0x41, 0x10]);
    let other = Vdi::new(&another_device, FUNCTION);
    assert!(matches!(
        direct.take_state_of(&other),
        Err(SnapshotError::Device { .. })
    ));
    // A plain restore (the same function elsewhere) takes the BARs too.
    dest.restore(&source.snapshot()).unwrap();
    assert_eq!(dest.config().bar_address(0), Some(BAR0));
}

/// A fabric that shows the function through one window moves its MSI-X
/// table there: the capability says where, writes passing to the device
/// program it, and the vector raised from it is the programmed write.
#[test]
fn a_relocated_msix_table_is_programmed_through_its_new_place() {
    let mut v = programmed(Mode::Shadow);
    let mut out = [0u8; 64];
    assert!(
        !v.relocate_msix(0, 0xf004, 0xf800),
        "table not 8-byte aligned"
    );
    assert!(
        !v.relocate_msix(0, 0xf000, 0xf010),
        "table and array overlap"
    );
    assert!(v.relocate_msix(0, 0xf000, 0xf800));
    let table = cpl(&mut v, &config(Kind::CfgRd0, FUNCTION, 0x74, 0xf, &[]));
    assert_eq!(table.payload(), 0xf000u32.to_le_bytes(), "Table Offset/BIR");
    let pba = cpl(&mut v, &config(Kind::CfgRd0, FUNCTION, 0x78, 0xf, &[]));
    assert_eq!(pba.payload(), 0xf800u32.to_le_bytes(), "PBA Offset/BIR");
    v.set_mode(Mode::PassThrough);
    // The host programs vector 1 in BAR 0 while the device serves it: the
    // VDI sees the write on its way.
    let mut e = Vec::new();
    e.extend_from_slice(&0xfee0_2000u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&0x8000_0003u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    v.observe(&mwr(BAR0 + 0xf000 + 16, &e));
    v.observe(&config(
        Kind::CfgWr0,
        FUNCTION,
        0x70,
        0b1000,
        &[0, 0, 0, 0x80],
    ));
    assert_eq!(
        v.raise_interrupt(1),
        Raised::Deliver {
            address: 0xfee0_2000,
            data: 0x8000_0003
        }
    );
    let n = v.poll_upstream(&mut out).unwrap();
    let w = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(
        (w.address(), w.payload()),
        (0xfee0_2000, &0x8000_0003u32.to_le_bytes()[..])
    );
    // BAR 3 holds no table any more.
    v.observe(&mwr(BAR3 + 16, &[0xff; 16]));
    assert_eq!(v.msix().unwrap().table()[1][0], 0xfee0_2000);
}

#[test]
fn held_interrupts_pend_merge_and_go_once_when_released() {
    let mut v = programmed(Mode::Migrating);
    let mut out = [0u8; 64];
    // Vectors 0 (unmasked) and 1 (masked by the host) programmed.
    for (k, control) in [(0u32, 0u32), (1, 1)] {
        let mut e = Vec::new();
        e.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&(0x40 + k).to_le_bytes());
        e.extend_from_slice(&control.to_le_bytes());
        v.serve(&mwr(BAR3 + 16 * k as u64, &e), &mut out);
    }
    enable_msix(&mut v, &mut out);
    // A memory write is known as an interrupt by its address and data.
    assert_eq!(v.interrupt_vector(0xfee0_0000, 0x40), Some(0));
    assert_eq!(v.interrupt_vector(0xfee0_0000, 0x41), Some(1));
    assert_eq!(v.interrupt_vector(0xfee0_0000, 0x42), None);
    assert_eq!(v.interrupt_vector(0xfee0_1000, 0x40), None);
    while v.poll_upstream(&mut out).is_some() {}
    v.hold_interrupts();
    assert!(v.take_held_interrupt(0));
    assert!(v.take_held_interrupt(0));
    assert!(v.take_held_interrupt(1));
    assert_eq!(v.poll_upstream(&mut out), None, "nothing while held");
    assert!(v.msix().unwrap().is_pending(0));
    // The host sees no Function Mask set meanwhile.
    let control = cpl(&mut v, &config(Kind::CfgRd0, FUNCTION, 0x70, 0xf, &[])).payload()[3];
    assert_eq!(control & 0x40, 0);
    // Released: vector 0 once (the two raises merged); vector 1 stays
    // pending behind the host's own mask until it unmasks it.
    assert_eq!(v.release_interrupts(), 1);
    let n = v.poll_upstream(&mut out).unwrap();
    let w = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(
        (w.address(), w.payload()),
        (0xfee0_0000, &0x40u32.to_le_bytes()[..])
    );
    assert_eq!(v.poll_upstream(&mut out), None);
    assert!(v.msix().unwrap().is_pending(1));
    assert_eq!(v.release_interrupts(), 0, "released once");
    v.serve(&mwr(BAR3 + 16 + 12, &[0; 4]), &mut out);
    let n = v.poll_upstream(&mut out).unwrap();
    assert_eq!(
        Tlp::new_checked(&out[..n]).unwrap().payload(),
        0x41u32.to_le_bytes()
    );
    assert_eq!(v.stats().interrupts_held, 3);
}

#[test]
fn a_spare_takes_a_vdi_s_whole_state_in_place() {
    let mut source = Vdi::new(&template(), FUNCTION);
    let mut spare = source.spare();
    let mut out = [0u8; 64];
    source.serve(&mwr(BAR0 + 0x5400, &[0xde, 0xad, 0xbe, 0xef]), &mut out);
    source.serve(&mwr(BAR3 + 16, &[0x00, 0x10, 0xe0, 0xfe]), &mut out);
    enable_msix(&mut source, &mut out);
    source.raise_interrupt(0);
    source.set_mode(Mode::Migrating);
    spare.copy_from(&source);
    // Everything the source holds, down to its statistics, as a clone has
    // it.
    assert_eq!(format!("{spare:?}"), format!("{:?}", source.clone()));
    // And it goes its own way after.
    source.set_mode(Mode::PassThrough);
    assert_eq!(spare.mode(), Mode::Migrating);
    // A VDI of another layout (its MSI-X table moved) is cloned instead.
    let mut moved = Vdi::new(&template(), FUNCTION);
    assert!(moved.relocate_msix(3, 0x100, 0x800));
    spare.copy_from(&moved);
    assert_eq!(format!("{spare:?}"), format!("{moved:?}"));
}
