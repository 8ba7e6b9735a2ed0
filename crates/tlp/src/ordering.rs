//! Transaction ordering: may a later TLP pass an earlier one in the same
//! stream?

use crate::bdf::Bdf;
use crate::classify::FlowClass;
use crate::kind::{Attr, Kind};
use crate::packet::Tlp;
use crate::repr::{Body, Repr};

/// The answer of [`may_pass`] for one cell of the ordering table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Passing {
    /// "No": the later TLP must not pass the earlier one.
    MustNotPass,
    /// "Y/N": the later TLP may pass; there is no requirement either way.
    MayPass,
    /// "Yes": the later TLP must be allowed to pass, or the fabric can deadlock.
    MustBeAllowed,
}

/// The fields ordering depends on, taken from one TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderInfo {
    /// Flow-control class.
    pub flow: FlowClass,
    /// Traffic class: ordering holds only within one TC.
    pub tc: u8,
    /// Relaxed ordering and ID-based ordering bits.
    pub attr: Attr,
    /// Requester ID (of a completion: the requester it returns to).
    pub requester: Bdf,
    /// Completer ID of a completion (unused for requests).
    pub completer: Bdf,
    /// Tag (with the requester, the Transaction ID).
    pub tag: u16,
}

impl OrderInfo {
    /// From a view.
    pub fn of_tlp<T: AsRef<[u8]>>(tlp: &Tlp<T>) -> OrderInfo {
        let kind = tlp.kind().unwrap_or(Kind::MRd);
        let flow = FlowClass::of(kind);
        OrderInfo {
            flow,
            tc: tlp.tc(),
            attr: tlp.attr(),
            requester: tlp.requester_id(),
            completer: if flow == FlowClass::Completion {
                tlp.completer_id()
            } else {
                Bdf(0)
            },
            tag: tlp.tag(),
        }
    }

    /// From a repr.
    pub fn of_repr(repr: &Repr<'_>) -> OrderInfo {
        OrderInfo {
            flow: FlowClass::of(repr.kind()),
            tc: repr.tc,
            attr: repr.attr,
            requester: repr.requester,
            completer: match repr.body {
                Body::Completion { completer, .. } => completer,
                _ => Bdf(0),
            },
            tag: repr.tag,
        }
    }
}

/// Whether `later` may pass `earlier`, both in one stream (one link direction),
/// per the Ordering Rules Summary, PCIe Base Specification 4.0 §2.4.1,
/// Table 2-40. Rows are the later TLP, columns the earlier one:
///
/// | later \ earlier        | Posted (col 2)   | Non-posted (3, 4) | Completion (5)   |
/// |------------------------|------------------|-------------------|------------------|
/// | Posted (A)             | a) No  b) Y/N    | Yes               | a) Y/N           |
/// | Non-posted (B, C)      | a) No  b) Y/N    | Y/N               | Y/N              |
/// | Completion (D)         | a) No  b) Y/N    | Yes               | a) Y/N  b) No    |
///
/// - A2b: a posted request with RO set may pass a posted request; one with IDO
///   set may pass a posted request from a different Requester ID.
/// - B2b/C2b: a non-posted request with IDO set may pass a posted request from
///   a different Requester ID (RO gives no such permission).
/// - D2b: a completion with RO set may pass a posted request; one with IDO set
///   may pass a posted request whose Requester ID differs from its Completer ID.
/// - D5a/D5b: completions may pass each other unless they share a Transaction
///   ID (Requester ID + Tag): the parts of one split completion stay in order.
/// - A5b (a PCI Express to PCI/PCI-X bridge must let posted pass completions)
///   does not apply to a fabric of PCI Express switches; A5 is Y/N here.
///
/// TLPs of different traffic classes have no ordering relationship (§2.4.2):
/// `MayPass`.
pub fn may_pass(later: &OrderInfo, earlier: &OrderInfo) -> Passing {
    use FlowClass::*;
    if later.tc != earlier.tc {
        return Passing::MayPass;
    }
    let ro = later.attr.relaxed_ordering();
    let ido = later.attr.id_based_ordering();
    match (later.flow, earlier.flow) {
        (Posted, Posted) => {
            if ro || (ido && later.requester != earlier.requester) {
                Passing::MayPass
            } else {
                Passing::MustNotPass
            }
        }
        (Posted, NonPosted) => Passing::MustBeAllowed,
        (Posted, Completion) => Passing::MayPass,
        (NonPosted, Posted) => {
            if ido && later.requester != earlier.requester {
                Passing::MayPass
            } else {
                Passing::MustNotPass
            }
        }
        (NonPosted, NonPosted) | (NonPosted, Completion) => Passing::MayPass,
        (Completion, Posted) => {
            if ro || (ido && later.completer != earlier.requester) {
                Passing::MayPass
            } else {
                Passing::MustNotPass
            }
        }
        (Completion, NonPosted) => Passing::MustBeAllowed,
        (Completion, Completion) => {
            if later.requester == earlier.requester && later.tag == earlier.tag {
                Passing::MustNotPass
            } else {
                Passing::MayPass
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(flow: FlowClass, attr: u8, requester: u16, completer: u16, tag: u16) -> OrderInfo {
        OrderInfo {
            flow,
            tc: 0,
            attr: Attr(attr),
            requester: Bdf(requester),
            completer: Bdf(completer),
            tag,
        }
    }

    const P: FlowClass = FlowClass::Posted;
    const NP: FlowClass = FlowClass::NonPosted;
    const C: FlowClass = FlowClass::Completion;
    const RO: u8 = Attr::RELAXED_ORDERING;
    const IDO: u8 = Attr::ID_BASED_ORDERING;

    #[test]
    fn table_cells_without_attributes() {
        use Passing::*;
        let p = info(P, 0, 1, 0, 0);
        let np = info(NP, 0, 1, 0, 1);
        let c = info(C, 0, 1, 2, 3);
        assert_eq!(may_pass(&p, &p), MustNotPass); // A2a
        assert_eq!(may_pass(&p, &np), MustBeAllowed); // A3, A4
        assert_eq!(may_pass(&p, &c), MayPass); // A5
        assert_eq!(may_pass(&np, &p), MustNotPass); // B2a, C2a
        assert_eq!(may_pass(&np, &np), MayPass); // B3, B4, C3, C4
        assert_eq!(may_pass(&np, &c), MayPass); // B5, C5
        assert_eq!(may_pass(&c, &p), MustNotPass); // D2a
        assert_eq!(may_pass(&c, &np), MustBeAllowed); // D3, D4
        assert_eq!(may_pass(&c, &info(C, 0, 1, 2, 4)), MayPass); // D5a
        assert_eq!(may_pass(&c, &info(C, 0, 1, 2, 3)), MustNotPass); // D5b
    }

    #[test]
    fn relaxed_ordering() {
        let p = info(P, 0, 1, 0, 0);
        assert_eq!(may_pass(&info(P, RO, 1, 0, 0), &p), Passing::MayPass); // A2b
        assert_eq!(may_pass(&info(C, RO, 1, 2, 0), &p), Passing::MayPass); // D2b
        assert_eq!(may_pass(&info(NP, RO, 1, 0, 0), &p), Passing::MustNotPass); // RO does not free reads
                                                                                // RO on the earlier TLP gives the later one nothing.
        assert_eq!(may_pass(&p, &info(P, RO, 1, 0, 0)), Passing::MustNotPass);
    }

    #[test]
    fn id_based_ordering() {
        let p_from_1 = info(P, 0, 1, 0, 0);
        assert_eq!(
            may_pass(&info(P, IDO, 2, 0, 0), &p_from_1),
            Passing::MayPass
        );
        assert_eq!(
            may_pass(&info(P, IDO, 1, 0, 0), &p_from_1),
            Passing::MustNotPass
        );
        assert_eq!(
            may_pass(&info(NP, IDO, 2, 0, 0), &p_from_1),
            Passing::MayPass
        );
        assert_eq!(
            may_pass(&info(NP, IDO, 1, 0, 0), &p_from_1),
            Passing::MustNotPass
        );
        // A completion is compared by its Completer ID against the write's Requester ID.
        assert_eq!(
            may_pass(&info(C, IDO, 1, 2, 0), &p_from_1),
            Passing::MayPass
        );
        assert_eq!(
            may_pass(&info(C, IDO, 2, 1, 0), &p_from_1),
            Passing::MustNotPass
        );
    }

    #[test]
    fn different_traffic_classes_are_unordered() {
        let p0 = info(P, 0, 1, 0, 0);
        let mut p1 = p0;
        p1.tc = 1;
        assert_eq!(may_pass(&p1, &p0), Passing::MayPass);
    }
}
