//! The domains one hypercall works on, however it reached them: the domain table under
//! its write side, or the domains an entry on the read side locked (`pv::local`).

use crate::pv::domain::Domain;
use crate::pv::sched::Domains;

/// The domains a hypercall reaches: the caller's and those it names, all of them (the
/// write side: `Domains`) or the ones the call locked (`pv::local`).
pub trait DomainSet {
    /// The caller's id.
    fn me(&self) -> u16;
    /// The caller.
    fn cur(&mut self) -> &mut Domain;
    /// Domain `id`, if it is alive.
    fn get_mut(&mut self, id: u16) -> Option<&mut Domain>;
    fn get(&mut self, id: u16) -> Option<&Domain> {
        self.get_mut(id).map(|d| &*d)
    }
    /// Whether this call can reach domain `id` (or knows it does not exist).
    fn reachable(&self, id: u16) -> bool;
    /// `Errno::ERESTART` (never shown to a guest: the call is made again on the write
    /// side) if `id` is a domain this call did not lock; to be asked before anything
    /// is changed.
    fn reach(&self, id: u16) -> Result<(), xen_abi::errno::Errno> {
        if self.reachable(id) {
            Ok(())
        } else {
            Err(xen_abi::errno::Errno::ERESTART)
        }
    }
    /// The caller and domain `other` (None if it is not alive; `other` may be the
    /// caller, then only the first is given).
    fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>);
    fn current_id(&self) -> u16 {
        self.me()
    }
}

impl DomainSet for Domains {
    fn me(&self) -> u16 {
        Domains::current_id(self)
    }
    fn cur(&mut self) -> &mut Domain {
        Domains::cur(self)
    }
    fn get_mut(&mut self, id: u16) -> Option<&mut Domain> {
        Domains::get_mut(self, id)
    }
    fn reachable(&self, _: u16) -> bool {
        true
    }
    fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>) {
        Domains::pair(self, other)
    }
}
