//! Requester, completer and target IDs: bus, device and function.

use core::fmt;
use core::str::FromStr;

/// A PCIe ID (Requester ID, Completer ID, configuration target): bus\[15:8\],
/// device\[7:3\], function\[2:0\].
///
/// With ARI the device and function fields form one 8-bit function number; the
/// raw 16-bit value is kept exactly either way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bdf(pub u16);

impl Bdf {
    /// Builds an ID from its parts; `device` is masked to 5 bits and `function` to 3.
    pub const fn new(bus: u8, device: u8, function: u8) -> Bdf {
        Bdf(((bus as u16) << 8) | (((device & 0x1f) as u16) << 3) | (function & 0x7) as u16)
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The device number (0..=31).
    pub const fn device(self) -> u8 {
        ((self.0 >> 3) & 0x1f) as u8
    }

    /// The function number (0..=7).
    pub const fn function(self) -> u8 {
        (self.0 & 0x7) as u8
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus(),
            self.device(),
            self.function()
        )
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a `BB:DD.F` string did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BdfParseError {
    /// Not of the form `BB:DD.F`.
    Form,
    /// The bus is not a hex number up to `ff`.
    Bus,
    /// The device is not a hex number up to `1f`.
    Device,
    /// The function is not a digit up to 7.
    Function,
}

impl fmt::Display for BdfParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            BdfParseError::Form => "expected bus:device.function in hex, like 01:00.0",
            BdfParseError::Bus => "bus must be hex 00..ff",
            BdfParseError::Device => "device must be hex 00..1f",
            BdfParseError::Function => "function must be 0..7",
        };
        f.write_str(what)
    }
}

impl std::error::Error for BdfParseError {}

impl FromStr for Bdf {
    type Err = BdfParseError;

    fn from_str(s: &str) -> Result<Bdf, BdfParseError> {
        let (bus, rest) = s.split_once(':').ok_or(BdfParseError::Form)?;
        let (dev, func) = rest.split_once('.').ok_or(BdfParseError::Form)?;
        let bus = u8::from_str_radix(bus, 16).map_err(|_| BdfParseError::Bus)?;
        let dev = u8::from_str_radix(dev, 16).map_err(|_| BdfParseError::Device)?;
        let func = u8::from_str_radix(func, 16).map_err(|_| BdfParseError::Function)?;
        if dev > 0x1f {
            return Err(BdfParseError::Device);
        }
        if func > 7 {
            return Err(BdfParseError::Function);
        }
        Ok(Bdf::new(bus, dev, func))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_text() {
        let id = Bdf::new(0x3a, 0x1f, 7);
        assert_eq!(id.0, 0x3aff);
        assert_eq!(id.to_string(), "3a:1f.7");
        assert_eq!("3a:1f.7".parse::<Bdf>(), Ok(id));
        assert_eq!("01:00.0".parse::<Bdf>(), Ok(Bdf(0x0100)));
    }

    #[test]
    fn bad_text() {
        assert_eq!("0100".parse::<Bdf>(), Err(BdfParseError::Form));
        assert_eq!("100:00.0".parse::<Bdf>(), Err(BdfParseError::Bus));
        assert_eq!("01:20.0".parse::<Bdf>(), Err(BdfParseError::Device));
        assert_eq!("01:00.8".parse::<Bdf>(), Err(BdfParseError::Function));
    }
}
