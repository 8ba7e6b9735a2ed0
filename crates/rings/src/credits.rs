//! PCIe flow-control credits (PCIe Base Specification 4.0 §2.6.1).
//!
//! A receiver advertises, per credit type, how many headers (one credit per
//! TLP) and how much data (one credit per 16 bytes) its buffers take; an
//! advertisement of 0 means infinite (§2.6.1.1: endpoints advertise infinite
//! completion credits, for instance). A transmitter consumes credits before it
//! sends and stops when a type runs out; the receiver returns credits when a
//! TLP leaves its buffer.
//!
//! This model keeps plain counters where the link protocol keeps modular
//! CREDITS_CONSUMED / CREDIT_LIMIT registers exchanged in UpdateFC DLLPs; the
//! gating decision (enough credits for this TLP, or wait) is the same.

use tlp::{Class, CreditType, FlowClass};

/// What one TLP costs: a header credit and its data credits, in its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// The flow-control class.
    pub flow: FlowClass,
    /// Data credits (16-byte units).
    pub data: u16,
}

impl Cost {
    /// The cost of a classified TLP.
    pub fn of(class: &Class) -> Cost {
        Cost {
            flow: class.flow,
            data: class.data_credits,
        }
    }
}

/// One receiver's advertisement: a limit per credit type, `None` for infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertisement {
    /// Indexed by [`CreditType::index`].
    pub limits: [Option<u32>; 6],
}

impl Advertisement {
    /// Every type infinite.
    pub const INFINITE: Advertisement = Advertisement { limits: [None; 6] };

    /// `headers` header credits and `data` data credits for each class.
    pub fn uniform(headers: u32, data: u32) -> Advertisement {
        let mut limits = [None; 6];
        for t in CreditType::ALL {
            limits[t.index()] = Some(if is_header(t) { headers } else { data });
        }
        Advertisement { limits }
    }

    /// Sets one type's limit (`None`: infinite).
    pub fn with(mut self, t: CreditType, limit: Option<u32>) -> Advertisement {
        self.limits[t.index()] = limit;
        self
    }
}

fn is_header(t: CreditType) -> bool {
    matches!(t, CreditType::PH | CreditType::NPH | CreditType::CplH)
}

/// A transmitter's view of one link direction's credits.
#[derive(Debug, Clone)]
pub struct CreditAccount {
    advertised: Advertisement,
    /// Credits the transmitter may still consume, per type (unused when infinite).
    available: [u32; 6],
}

impl CreditAccount {
    /// Starts with everything the receiver advertised.
    pub fn new(advertised: Advertisement) -> CreditAccount {
        let mut available = [0; 6];
        for (a, l) in available.iter_mut().zip(advertised.limits) {
            *a = l.unwrap_or(0);
        }
        CreditAccount {
            advertised,
            available,
        }
    }

    fn types(cost: Cost) -> (usize, usize) {
        (
            cost.flow.header_credit().index(),
            cost.flow.data_credit().index(),
        )
    }

    /// Whether `cost` could be consumed now.
    pub fn can_consume(&self, cost: Cost) -> bool {
        let (h, d) = Self::types(cost);
        let enough =
            |i: usize, n: u32| self.advertised.limits[i].is_none() || self.available[i] >= n;
        enough(h, 1) && enough(d, cost.data as u32)
    }

    /// Consumes the credits for one TLP, or returns `false` (and consumes
    /// nothing) if a type has too few: the transmitter must wait.
    pub fn try_consume(&mut self, cost: Cost) -> bool {
        if !self.can_consume(cost) {
            return false;
        }
        let (h, d) = Self::types(cost);
        if self.advertised.limits[h].is_some() {
            self.available[h] -= 1;
        }
        if self.advertised.limits[d].is_some() {
            self.available[d] -= cost.data as u32;
        }
        true
    }

    /// Returns the credits of a TLP that left the receiver's buffer.
    pub fn give_back(&mut self, cost: Cost) {
        let (h, d) = Self::types(cost);
        if let Some(limit) = self.advertised.limits[h] {
            self.available[h] = (self.available[h] + 1).min(limit);
        }
        if let Some(limit) = self.advertised.limits[d] {
            self.available[d] = (self.available[d] + cost.data as u32).min(limit);
        }
    }

    /// Credits available for a type; `None` when infinite.
    pub fn available(&self, t: CreditType) -> Option<u32> {
        self.advertised.limits[t.index()].map(|_| self.available[t.index()])
    }

    /// The advertisement this account started from.
    pub fn advertised(&self) -> Advertisement {
        self.advertised
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MWR_2: Cost = Cost {
        flow: FlowClass::Posted,
        data: 2,
    };
    const MRD: Cost = Cost {
        flow: FlowClass::NonPosted,
        data: 0,
    };

    #[test]
    fn consume_until_out_then_wait() {
        let mut a = CreditAccount::new(Advertisement::uniform(2, 3));
        assert!(a.try_consume(MWR_2));
        assert_eq!(a.available(CreditType::PH), Some(1));
        assert_eq!(a.available(CreditType::PD), Some(1));
        assert!(!a.try_consume(MWR_2), "one data credit left, two needed");
        assert_eq!(
            a.available(CreditType::PH),
            Some(1),
            "a refused TLP consumes nothing"
        );
        assert!(a.try_consume(MRD), "other classes are independent");
        a.give_back(MWR_2);
        assert!(a.try_consume(MWR_2));
    }

    #[test]
    fn infinite_credits_never_run_out() {
        let adv = Advertisement::uniform(1, 1)
            .with(CreditType::CplH, None)
            .with(CreditType::CplD, None);
        let mut a = CreditAccount::new(adv);
        let cpld = Cost {
            flow: FlowClass::Completion,
            data: 256,
        };
        for _ in 0..1000 {
            assert!(a.try_consume(cpld));
        }
        assert_eq!(a.available(CreditType::CplD), None);
    }

    #[test]
    fn costs_follow_classification() {
        let mwr = [0x40u8, 0, 0, 5, 0, 0, 0, 0xff, 0, 0, 0, 0];
        let class = tlp::classify(&mwr).unwrap();
        assert_eq!(
            Cost::of(&class),
            Cost {
                flow: FlowClass::Posted,
                data: 2
            }
        );
    }
}
