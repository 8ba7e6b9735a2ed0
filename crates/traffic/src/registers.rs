//! The BAR registers both models use: a few of a NIC's (the 82576 of
//! `configs/templates/nic.toml`, which gives the VDI the same offsets, reset
//! values and access classes), one or more of each access class, so that a
//! VDI standing in for a paused function has real work: some reads it may
//! answer, some it must hold for the device.
//!
//! They sit in the first [`REGISTER_BLOCK`] bytes of the function's BAR;
//! the host's data region starts after them.

/// Bytes at the start of a BAR the register block takes.
pub const REGISTER_BLOCK: u64 = 0x1_0000;

/// Extended device control: plain storage (`shadowable`).
pub const CTRL_EXT: u32 = 0x0_0018;
/// Device status: read-only.
pub const STATUS: u32 = 0x0_0008;
/// What [`STATUS`] reads (the template's reset value).
pub const STATUS_VALUE: u32 = 0x0008_0783;
/// Interrupt cause: reading returns the causes and clears them
/// (`read_side_effect`: only the device may answer).
pub const ICR: u32 = 0x0_1500;
/// Interrupt cause set: writing sets causes in [`ICR`] (a `doorbell`).
pub const ICS: u32 = 0x0_1504;
/// Wake-up status: write 1 to clear (`w1c`).
pub const WUS: u32 = 0x0_5810;
/// What [`WUS`] holds after reset.
pub const WUS_RESET: u32 = 0xf;
/// Transmit descriptor tail: a `doorbell` that reads back what was written.
pub const TDT0: u32 = 0x0_e018;

/// A function's registers on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registers {
    ctrl_ext: u32,
    icr: u32,
    wus: u32,
    tdt: u32,
    /// Doorbell writes (ICS and TDT0) the function acted on.
    pub(crate) doorbells: u64,
}

impl Default for Registers {
    fn default() -> Self {
        Registers {
            ctrl_ext: 0,
            icr: 0,
            wus: WUS_RESET,
            tdt: 0,
            doorbells: 0,
        }
    }
}

impl Registers {
    /// A read of the DW at `offset`, with its side effects.
    pub(crate) fn read(&mut self, offset: u32) -> u32 {
        match offset {
            CTRL_EXT => self.ctrl_ext,
            STATUS => STATUS_VALUE,
            ICR => std::mem::take(&mut self.icr),
            ICS => 0,
            WUS => self.wus,
            TDT0 => self.tdt,
            _ => 0,
        }
    }

    /// A write of `value` to the DW at `offset`, with its effects.
    pub(crate) fn write(&mut self, offset: u32, value: u32) {
        match offset {
            CTRL_EXT => self.ctrl_ext = value,
            ICS => {
                self.icr |= value;
                self.doorbells += 1;
            }
            WUS => self.wus &= !value,
            TDT0 => {
                self.tdt = value;
                self.doorbells += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_behaves_as_named() {
        let mut r = Registers::default();
        r.write(CTRL_EXT, 7);
        assert_eq!(r.read(CTRL_EXT), 7);
        r.write(STATUS, 0);
        assert_eq!(r.read(STATUS), STATUS_VALUE, "read-only");
        r.write(ICS, 0b100);
        r.write(ICS, 0b001);
        assert_eq!(r.read(ICR), 0b101);
        assert_eq!(r.read(ICR), 0, "reading cleared it");
        r.write(WUS, 0b0110);
        assert_eq!(r.read(WUS), 0b1001, "write 1 to clear");
        r.write(TDT0, 42);
        assert_eq!(r.read(TDT0), 42);
        assert_eq!(r.doorbells, 3);
    }
}
