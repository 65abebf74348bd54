//! A vCPU's run-state accounting (`vcpu_runstate_info`): the time it spent running,
//! runnable, blocked and offline, and the guest's copy of it
//! (`VCPUOP_register_runstate_memory_area`), rewritten at each change of state as Xen's
//! `update_runstate_area`.

use xen_abi::vcpu::{VcpuRunstateInfo, RUNSTATE_offline, XEN_RUNSTATE_UPDATE};

#[derive(Clone, Copy, Debug)]
pub struct Runstate {
    pub info: VcpuRunstateInfo,
    /// Guest virtual address of the guest's copy (in its kernel address space), if any.
    pub area: Option<u64>,
}

impl Runstate {
    /// A vCPU made at `now`: offline until it is brought up.
    pub fn new(now: u64) -> Self {
        let info = VcpuRunstateInfo { state: RUNSTATE_offline, state_entry_time: now, ..Default::default() };
        Runstate { info, area: None }
    }

    /// Enters `state` (a `RUNSTATE_*`) at `now`; the time since the last change is
    /// counted to the state left. Whether the state changed.
    pub fn enter(&mut self, state: i32, now: u64) -> bool {
        if self.info.state == state {
            return false;
        }
        let left = self.info.state as usize;
        let spent = now.saturating_sub(self.info.state_entry_time);
        if let Some(t) = self.info.time.get_mut(left) {
            *t = t.saturating_add(spent);
        }
        self.info.state = state;
        self.info.state_entry_time = now;
        true
    }

    /// `vcpu_runstate_get`: the current state's time counted up to `now`.
    pub fn snapshot(&self, now: u64) -> VcpuRunstateInfo {
        let mut r = self.info;
        if let Some(t) = r.time.get_mut(r.state as usize) {
            *t = t.saturating_add(now.saturating_sub(r.state_entry_time));
        }
        r
    }

    /// The words to write into the guest's copy, in order: with `update_flag`
    /// (`VMASST_TYPE_runstate_update_flag`) first the entry time marked
    /// `XEN_RUNSTATE_UPDATE`, then the record so marked, then the entry time unmarked,
    /// so a guest reading meanwhile sees the mark and retries.
    pub fn guest_writes(&self, update_flag: bool) -> impl Iterator<Item = GuestWrite> {
        let marked = VcpuRunstateInfo { state_entry_time: self.info.state_entry_time | XEN_RUNSTATE_UPDATE, ..self.info };
        let entry = core::mem::offset_of!(VcpuRunstateInfo, state_entry_time) as u64;
        let steps = if update_flag {
            [
                Some(GuestWrite::EntryTime(entry, marked.state_entry_time)),
                Some(GuestWrite::Record(marked)),
                Some(GuestWrite::EntryTime(entry, self.info.state_entry_time)),
            ]
        } else {
            [Some(GuestWrite::Record(self.info)), None, None]
        };
        steps.into_iter().flatten()
    }
}

/// One write into the guest's runstate area.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuestWrite {
    /// The `state_entry_time` word at this offset.
    EntryTime(u64, u64),
    Record(VcpuRunstateInfo),
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::vcpu::{RUNSTATE_blocked, RUNSTATE_runnable, RUNSTATE_running};

    #[test]
    fn time_goes_to_the_state_left() {
        let mut r = Runstate::new(100);
        assert!(r.enter(RUNSTATE_runnable, 150));
        assert!(r.enter(RUNSTATE_running, 170));
        assert!(!r.enter(RUNSTATE_running, 180));
        assert!(r.enter(RUNSTATE_blocked, 200));
        assert_eq!(r.info.time, [30, 20, 0, 50]);
        assert_eq!(r.info.state, RUNSTATE_blocked);
        assert_eq!(r.info.state_entry_time, 200);
        let s = r.snapshot(260);
        assert_eq!(s.time, [30, 20, 60, 50]);
        assert_eq!(r.info.time[2], 0, "a snapshot does not change the record");
    }

    #[test]
    fn update_flag_brackets_the_record() {
        let mut r = Runstate::new(7);
        r.enter(RUNSTATE_running, 9);
        let w: alloc::vec::Vec<_> = r.guest_writes(true).collect();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], GuestWrite::EntryTime(8, 9 | XEN_RUNSTATE_UPDATE));
        assert!(matches!(w[1], GuestWrite::Record(i) if i.state_entry_time == 9 | XEN_RUNSTATE_UPDATE));
        assert_eq!(w[2], GuestWrite::EntryTime(8, 9));
        let plain: alloc::vec::Vec<_> = r.guest_writes(false).collect();
        assert_eq!(plain, [GuestWrite::Record(r.info)]);
    }
}
