//! Segment descriptors a PV guest supplies (GDT frames, `update_descriptor`).

const SEG_P: u64 = 1 << 47;
const SEG_S: u64 = 1 << 44;
const SEG_DPL_SHIFT: u32 = 45;
const SEG_TYPE_SHIFT: u32 = 40;

/// Xen's `check_descriptor` for a 64-bit PV guest: not-present and type-0 descriptors
/// are harmless; code/data descriptors get DPL 3; every other system descriptor (call
/// gates included: there is no call-gate emulation) is refused.
pub fn check_descriptor(desc: u64) -> Option<u64> {
    if desc & SEG_P == 0 {
        return Some(desc);
    }
    if desc & SEG_S != 0 {
        return Some(desc | (3 << SEG_DPL_SHIFT));
    }
    ((desc >> SEG_TYPE_SHIFT) & 0xf == 0).then_some(desc)
}

#[cfg(test)]
mod tests {
    use super::check_descriptor;

    #[test]
    fn descriptor_rules() {
        let user_code = 0x00af_fa00_0000_ffff; // 64-bit code, DPL 3
        assert_eq!(check_descriptor(user_code), Some(user_code));
        let kernel_code = 0x00af_9a00_0000_ffff; // DPL 0 is raised to 3
        assert_eq!(check_descriptor(kernel_code), Some(user_code));
        assert_eq!(check_descriptor(0), Some(0));
        let not_present_gate = 0x0000_0c00_0000_0000;
        assert_eq!(check_descriptor(not_present_gate), Some(not_present_gate));
        let call_gate = 0x0000_ec00_0000_0000;
        assert_eq!(check_descriptor(call_gate), None);
        let tss = 0x0000_8900_0000_0067;
        assert_eq!(check_descriptor(tss), None);
    }
}
