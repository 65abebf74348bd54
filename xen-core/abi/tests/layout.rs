//! Checks every `#[repr(C)]` type and every constant of `xen-abi` against the real
//! Xen 4.17 C headers (`/usr/include/xen`, Debian `libxen-dev`).
//!
//! `layout_matches_c_headers` generates a C probe that `#include`s the headers and
//! prints `sizeof`/`_Alignof` of every struct in [`STRUCTS`], `offsetof`/`sizeof` of
//! every listed field, and the value of every constant in [`CONSTS`]; it compiles the
//! probe with the system C compiler (`$CC`, default `cc`), runs it and compares. All
//! mismatches are reported together.
//!
//! `layout_table_covers_every_repr_c_struct` scans `src/**/*.rs` and checks that every
//! `#[repr(C...)]` struct, and each of its fields not named `_pad*`, is in the table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_abi::*;

const XEN_INCLUDE_DIR: &str = "/usr/include/xen";

struct FieldRow {
    rust: &'static str,
    c: &'static str,
    offset: usize,
    size: usize,
}

struct StructRow {
    /// `module::Type`
    rust: &'static str,
    /// A C type name (`struct start_info`, or `__typeof__(...)` for anonymous members).
    c: &'static str,
    size: usize,
    align: usize,
    fields: Vec<FieldRow>,
}

/// Size of a field's type, inferred from a (never called) accessor.
fn field_size<T, F>(_: fn(&T) -> F) -> usize {
    size_of::<F>()
}

macro_rules! c_name {
    ($f:ident) => {
        stringify!($f)
    };
    ($f:ident, $c:literal) => {
        $c
    };
}

/// `module::Type => "C type" { rust_field [=> "c.field.expr"], ... }`; a field without
/// `=> "..."` has the same name in C.
macro_rules! layout_table {
    ($( $m:ident :: $ty:ident => $c:literal { $( $f:ident $(=> $cf:literal)? ),* $(,)? } ),* $(,)?) => {
        fn structs() -> Vec<StructRow> {
            vec![$(
                StructRow {
                    rust: concat!(stringify!($m), "::", stringify!($ty)),
                    c: $c,
                    size: size_of::<$m::$ty>(),
                    align: align_of::<$m::$ty>(),
                    fields: vec![$(
                        FieldRow {
                            rust: stringify!($f),
                            c: c_name!($f $(, $cf)?),
                            offset: offset_of!($m::$ty, $f),
                            size: field_size(|s: &$m::$ty| s.$f),
                        },
                    )*],
                },
            )*]
        }
    };
}

/// The value of a Rust constant, for comparison with C.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i128),
    Str(String),
}

trait ConstValue {
    fn value(&self) -> Value;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ConstValue for $t {
            fn value(&self) -> Value {
                Value::Int(*self as i128)
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64);

impl ConstValue for DomId {
    fn value(&self) -> Value {
        Value::Int(self.0 as i128)
    }
}

impl ConstValue for Errno {
    fn value(&self) -> Value {
        Value::Int(self.0 as i128)
    }
}

impl ConstValue for &str {
    fn value(&self) -> Value {
        Value::Str((*self).to_owned())
    }
}

struct ConstRow {
    rust: String,
    c: String,
    value: Value,
}

/// `module::{ NAME [=> "C expression"], ... }`; a name without `=> "..."` is spelled
/// the same in C.
macro_rules! const_table {
    ($( $m:ident :: { $( $name:ident $(=> $c:literal)? ),* $(,)? } ),* $(,)?) => {
        fn consts() -> Vec<ConstRow> {
            let mut v = vec![$($(
                ConstRow {
                    rust: concat!(stringify!($m), "::", stringify!($name)).to_owned(),
                    c: c_name!($name $(, $c)?).to_owned(),
                    value: ConstValue::value(&$m::$name),
                },
            )*)*];
            extra_consts(&mut v);
            v
        }
    };
}

layout_table! {
    // ------------------------------------------------------------ xen.h
    xen::MmuUpdate => "struct mmu_update" { ptr, val },
    xen::MmuextOp => "struct mmuext_op" { cmd, arg1, arg2 },
    xen::MulticallEntry => "struct multicall_entry" { op, result, args },
    xen::VcpuTimeInfo => "struct vcpu_time_info" {
        version, pad0, tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift, flags, pad1,
    },
    xen::ArchVcpuInfo => "struct arch_vcpu_info" { cr2, pad },
    xen::VcpuInfo => "struct vcpu_info" {
        evtchn_upcall_pending, evtchn_upcall_mask, evtchn_pending_sel, arch, time,
    },
    xen::ArchSharedInfo => "struct arch_shared_info" {
        max_pfn, pfn_to_mfn_frame_list_list, nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation,
    },
    xen::SharedInfo => "struct shared_info" {
        vcpu_info, evtchn_pending, evtchn_mask, wc_version, wc_sec, wc_nsec, wc_sec_hi, arch,
    },
    xen::StartInfo => "struct start_info" {
        magic, nr_pages, shared_info, flags, store_mfn, store_evtchn,
        console_mfn => "console.domU.mfn",
        console_evtchn => "console.domU.evtchn",
        pt_base, nr_pt_frames, mfn_list, mod_start, mod_len, cmd_line, first_p2m_pfn,
        nr_p2m_frames,
    },
    xen::XenMultibootModList => "struct xen_multiboot_mod_list" { mod_start, mod_end, cmdline, pad },
    // ------------------------------------------------------------ arch-x86
    arch_x86_64::TrapInfo => "struct trap_info" { vector, flags, cs, address },
    arch_x86_64::IretContext => "struct iret_context" {
        rax, r11, rcx, flags, rip, cs, rflags, rsp, ss,
    },
    arch_x86_64::CpuUserRegs => "struct cpu_user_regs" {
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, error_code,
        entry_vector, rip, cs, saved_upcall_mask, rflags, rsp, ss, es, ds, fs, gs,
    },
    arch_x86_64::VcpuGuestContext => "struct vcpu_guest_context" {
        fpu_ctxt, flags, user_regs, trap_ctxt, ldt_base, ldt_ents, gdt_frames, gdt_ents,
        kernel_ss, kernel_sp, ctrlreg, debugreg, event_callback_eip, failsafe_callback_eip,
        syscall_callback_eip, vm_assist, fs_base, gs_base_kernel, gs_base_user,
    },
    // ------------------------------------------------------------ callback.h
    callback::CallbackRegister => "struct callback_register" { type_ => "type", flags, address },
    callback::CallbackUnregister => "struct callback_unregister" { type_ => "type", _unused },
    // ------------------------------------------------------------ vcpu.h
    vcpu::VcpuRunstateInfo => "struct vcpu_runstate_info" { state, state_entry_time, time },
    vcpu::VcpuRegisterRunstateMemoryArea => "struct vcpu_register_runstate_memory_area" { addr },
    vcpu::VcpuSetPeriodicTimer => "struct vcpu_set_periodic_timer" { period_ns },
    vcpu::VcpuSetSingleshotTimer => "struct vcpu_set_singleshot_timer" { timeout_abs_ns, flags },
    vcpu::VcpuRegisterVcpuInfo => "struct vcpu_register_vcpu_info" { mfn, offset, rsvd },
    vcpu::VcpuGetPhysid => "struct vcpu_get_physid" { phys_id },
    vcpu::VcpuRegisterTimeMemoryArea => "struct vcpu_register_time_memory_area" { addr },
    // ------------------------------------------------------------ sched.h
    physdev::PhysdevSetIopl => "struct physdev_set_iopl" { iopl },
    physdev::PhysdevSetIobitmap => "struct physdev_set_iobitmap" { bitmap, nr_ports },
    sched::SchedShutdown => "struct sched_shutdown" { reason },
    sched::SchedPoll => "struct sched_poll" { ports, nr_ports, timeout },
    sched::SchedRemoteShutdown => "struct sched_remote_shutdown" { domain_id, reason },
    sched::SchedWatchdog => "struct sched_watchdog" { id, timeout },
    sched::SchedPinOverride => "struct sched_pin_override" { pcpu },
    // ------------------------------------------------------------ memory.h
    memory::XenMemoryReservation => "struct xen_memory_reservation" {
        extent_start, nr_extents, extent_order, mem_flags, domid,
    },
    memory::XenMemoryExchange => "struct xen_memory_exchange" { in_ => "in", out, nr_exchanged },
    memory::XenMemoryDomain => "struct xen_memory_domain" { domid },
    memory::XenMachphysMfnList => "struct xen_machphys_mfn_list" {
        max_extents, extent_start, nr_extents,
    },
    memory::XenMachphysMapping => "struct xen_machphys_mapping" { v_start, v_end, max_mfn },
    memory::XenAddToPhysmap => "struct xen_add_to_physmap" { domid, size, space, idx, gpfn },
    memory::XenAddToPhysmapBatch => "struct xen_add_to_physmap_batch" {
        domid, space, size, foreign_domid => "u.foreign_domid", idxs, gpfns, errs,
    },
    memory::XenRemoveFromPhysmap => "struct xen_remove_from_physmap" { domid, gpfn },
    memory::XenMemoryMap => "struct xen_memory_map" { nr_entries, buffer },
    memory::XenForeignMemoryMap => "struct xen_foreign_memory_map" { domid, map },
    memory::XenPodTarget => "struct xen_pod_target" {
        target_pages, tot_pages, pod_cache_pages, pod_entries, domid,
    },
    memory::XenMemAcquireResource => "struct xen_mem_acquire_resource" {
        domid, type_ => "type", id, nr_frames, pad, frame, frame_list,
    },
    memory::XenVmemrange => "struct xen_vmemrange" { start, end, flags, nid },
    memory::XenVnumaTopologyInfo => "struct xen_vnuma_topology_info" {
        domid, pad, nr_vnodes, nr_vcpus, nr_vmemranges, vdistance, vcpu_to_vnode, vmemrange,
    },
    memory::E820Entry => "struct abi_probe_e820entry" { addr, size, type_ => "type" },
    // ------------------------------------------------------------ event_channel.h
    event_channel::EvtchnAllocUnbound => "struct evtchn_alloc_unbound" { dom, remote_dom, port },
    event_channel::EvtchnBindInterdomain => "struct evtchn_bind_interdomain" {
        remote_dom, remote_port, local_port,
    },
    event_channel::EvtchnBindVirq => "struct evtchn_bind_virq" { virq, vcpu, port },
    event_channel::EvtchnBindPirq => "struct evtchn_bind_pirq" { pirq, flags, port },
    event_channel::EvtchnBindIpi => "struct evtchn_bind_ipi" { vcpu, port },
    event_channel::EvtchnClose => "struct evtchn_close" { port },
    event_channel::EvtchnSend => "struct evtchn_send" { port },
    event_channel::EvtchnStatus => "struct evtchn_status" { dom, port, status, vcpu, u },
    event_channel::EvtchnBindVcpu => "struct evtchn_bind_vcpu" { port, vcpu },
    event_channel::EvtchnUnmask => "struct evtchn_unmask" { port },
    event_channel::EvtchnReset => "struct evtchn_reset" { dom },
    event_channel::EvtchnInitControl => "struct evtchn_init_control" {
        control_gfn, offset, vcpu, link_bits,
    },
    event_channel::EvtchnExpandArray => "struct evtchn_expand_array" { array_gfn },
    event_channel::EvtchnSetPriority => "struct evtchn_set_priority" { port, priority },
    event_channel::EvtchnOp => "struct evtchn_op" { cmd, u },
    event_channel::EvtchnFifoControlBlock => "struct evtchn_fifo_control_block" {
        ready, _rsvd, head,
    },
    // ------------------------------------------------------------ grant_table.h
    grant_table::GrantEntryV1 => "struct grant_entry_v1" { flags, domid, frame },
    grant_table::GrantEntryHeader => "struct grant_entry_header" { flags, domid },
    grant_table::GnttabMapGrantRef => "struct gnttab_map_grant_ref" {
        host_addr, flags, ref_ => "ref", dom, status, handle, dev_bus_addr,
    },
    grant_table::GnttabUnmapGrantRef => "struct gnttab_unmap_grant_ref" {
        host_addr, dev_bus_addr, handle, status,
    },
    grant_table::GnttabSetupTable => "struct gnttab_setup_table" {
        dom, nr_frames, status, frame_list,
    },
    grant_table::GnttabDumpTable => "struct gnttab_dump_table" { dom, status },
    grant_table::GnttabTransfer => "struct gnttab_transfer" { mfn, domid, ref_ => "ref", status },
    grant_table::GnttabCopyPtr => "struct gnttab_copy_ptr" { u, domid, offset },
    grant_table::GnttabCopy => "struct gnttab_copy" { source, dest, len, flags, status },
    grant_table::GnttabQuerySize => "struct gnttab_query_size" {
        dom, nr_frames, max_nr_frames, status,
    },
    grant_table::GnttabUnmapAndReplace => "struct gnttab_unmap_and_replace" {
        host_addr, new_addr, handle, status,
    },
    grant_table::GnttabSetVersion => "struct gnttab_set_version" { version },
    grant_table::GnttabGetStatusFrames => "struct gnttab_get_status_frames" {
        nr_frames, dom, status, frame_list,
    },
    grant_table::GnttabGetVersion => "struct gnttab_get_version" { dom, pad, version },
    grant_table::GnttabSwapGrantRef => "struct gnttab_swap_grant_ref" { ref_a, ref_b, status },
    grant_table::GnttabCacheFlush => "struct gnttab_cache_flush" { a, offset, length, op },
    // ------------------------------------------------------------ domctl.h
    domctl::XenDomctl => "struct xen_domctl" { cmd, interface_version, domain, u },
    domctl::XenArchDomainconfig => "struct xen_arch_domainconfig" { emulation_flags, misc_flags },
    domctl::XenDomctlCreatedomain => "struct xen_domctl_createdomain" {
        ssidref, handle, flags, iommu_opts, max_vcpus, max_evtchn_port, max_grant_frames,
        max_maptrack_frames, grant_opts, vmtrace_size, cpupool_id, arch,
    },
    domctl::XenDomctlGetdomaininfo => "struct xen_domctl_getdomaininfo" {
        domain, pad1, flags, tot_pages, max_pages, outstanding_pages, shr_pages, paged_pages,
        shared_info_frame, cpu_time, nr_online_vcpus, max_vcpu_id, ssidref, handle, cpupool,
        gpaddr_bits, pad2, arch_config,
    },
    domctl::XenDomctlMaxMem => "struct xen_domctl_max_mem" { max_memkb },
    domctl::XenDomctlVcpucontext => "struct xen_domctl_vcpucontext" { vcpu, ctxt },
    domctl::XenDomctlGetvcpuinfo => "struct xen_domctl_getvcpuinfo" {
        vcpu, online, blocked, running, cpu_time, cpu,
    },
    domctl::XenDomctlMaxVcpus => "struct xen_domctl_max_vcpus" { max },
    domctl::XenDomctlSetdomainhandle => "struct xen_domctl_setdomainhandle" { handle },
    domctl::XenDomctlHypercallInit => "struct xen_domctl_hypercall_init" { gmfn },
    domctl::XenDomctlSettimeoffset => "struct xen_domctl_settimeoffset" { time_offset_seconds },
    domctl::XenDomctlAddressSize => "struct xen_domctl_address_size" { size },
    domctl::XenDomctlSchedCredit => "struct xen_domctl_sched_credit" { weight, cap },
    domctl::XenDomctlSchedulerOp => "struct xen_domctl_scheduler_op" { sched_id, cmd, u },
    domctl::XenctlBitmap => "struct xenctl_bitmap" { bitmap, nr_bits },
    domctl::XenDomctlVcpuaffinity => "struct xen_domctl_vcpuaffinity" {
        vcpu, flags, cpumap_hard, cpumap_soft,
    },
    domctl::XenCpuidLeaf => "xen_cpuid_leaf_t" { leaf, subleaf, a, b, c, d },
    domctl::XenMsrEntry => "xen_msr_entry_t" { idx, flags, val },
    domctl::XenDomctlCpuPolicy => "struct xen_domctl_cpu_policy" {
        nr_leaves, nr_msrs, leaves, msrs, err_leaf, err_subleaf, err_msr,
    },
    domctl::XenDomctlNodeaffinity => "struct xen_domctl_nodeaffinity" { nodemap },
    domctl::XenDomctlTscInfo => "struct xen_domctl_tsc_info" {
        tsc_mode, gtsc_khz, incarnation, pad, elapsed_nsec,
    },
    // ------------------------------------------------------------ sysctl.h
    sysctl::XenSysctl => "struct xen_sysctl" { cmd, interface_version, u },
    sysctl::XenSysctlReadconsole => "struct xen_sysctl_readconsole" {
        clear, incremental, pad0, pad1, index, buffer, count,
    },
    sysctl::XenSysctlPhysinfo => "struct xen_sysctl_physinfo" {
        threads_per_core, cores_per_socket, nr_cpus, max_cpu_id, nr_nodes, max_node_id,
        cpu_khz, capabilities, arch_capabilities, pad, total_pages, free_pages, scrub_pages,
        outstanding_pages, max_mfn, hw_cap,
    },
    sysctl::XenSysctlGetdomaininfolist => "struct xen_sysctl_getdomaininfolist" {
        first_domain, max_domains, buffer, num_domains,
    },
    sysctl::XenSysctlSchedId => "struct xen_sysctl_sched_id" { sched_id },
    sysctl::XenSysctlCreditSchedule => "struct xen_sysctl_credit_schedule" {
        tslice_ms, ratelimit_us, vcpu_migr_delay_us,
    },
    sysctl::XenSysctlCredit2Schedule => "struct xen_sysctl_credit2_schedule" { ratelimit_us },
    sysctl::XenSysctlSchedulerOp => "struct xen_sysctl_scheduler_op" { cpupool_id, sched_id, cmd, u },
    sysctl::XenSysctlCpupoolOp => "struct xen_sysctl_cpupool_op" {
        op, cpupool_id, sched_id, domid, cpu, n_dom, cpumap,
    },
    sysctl::XenSysctlCputopo => "struct xen_sysctl_cputopo" { core, socket, node },
    sysctl::XenSysctlCputopoinfo => "struct xen_sysctl_cputopoinfo" { num_cpus, cputopo },
    sysctl::XenSysctlMeminfo => "struct xen_sysctl_meminfo" { memsize, memfree },
    sysctl::XenSysctlCpuFeatureset => "struct xen_sysctl_cpu_featureset" {
        index, nr_features, features,
    },
    sysctl::XenSysctlCpuPolicy => "struct xen_sysctl_cpu_policy" {
        index, nr_leaves, nr_msrs, _rsvd, leaves, msrs,
    },
    sysctl::XenSysctlNumainfo => "struct xen_sysctl_numainfo" { num_nodes, meminfo, distance },
    // ------------------------------------------------------------ version.h
    version::XenCompileInfo => "struct xen_compile_info" {
        compiler, compile_by, compile_domain, compile_date,
    },
    version::XenPlatformParameters => "struct xen_platform_parameters" { virt_start },
    version::XenFeatureInfo => "struct xen_feature_info" { submap_idx, submap },
    version::XenBuildId => "struct xen_build_id" { len },
    // ------------------------------------------------------------ io/console.h
    console::XenconsInterface => "struct xencons_interface" {
        in_ => "in", out, in_cons, in_prod, out_cons, out_prod,
    },
    // ------------------------------------------------------------ io/xs_wire.h
    xenstore::XsdSockmsg => "struct xsd_sockmsg" { type_ => "type", req_id, tx_id, len },
    xenstore::XenstoreDomainInterface => "struct xenstore_domain_interface" {
        req, rsp, req_cons, req_prod, rsp_cons, rsp_prod, server_features, connection, error,
    },
    // ------------------------------------------------------------ io/netif.h
    netif::NetifTxRequest => "struct netif_tx_request" { gref, offset, flags, id, size },
    netif::NetifTxResponse => "struct netif_tx_response" { id, status },
    netif::NetifRxRequest => "struct netif_rx_request" { id, pad, gref },
    netif::NetifRxResponse => "struct netif_rx_response" { id, offset, flags, status },
    netif::NetifExtraInfo => "struct netif_extra_info" { type_ => "type", flags, u },
    netif::XenNetifCtrlRequest => "struct xen_netif_ctrl_request" { id, type_ => "type", data },
    netif::XenNetifCtrlResponse => "struct xen_netif_ctrl_response" {
        id, type_ => "type", status, data,
    },
    netif::XenNetifGref => "struct xen_netif_gref" { ref_ => "ref", flags, status },
    // ------------------------------------------------------------ io/blkif.h
    blkif::BlkifRequestSegment => "struct blkif_request_segment" { gref, first_sect, last_sect },
    blkif::BlkifRequest => "struct blkif_request" {
        operation, nr_segments, handle, id, sector_number, seg,
    },
    blkif::BlkifResponse => "struct blkif_response" { id, operation, status },
    blkif::BlkifRequestDiscard => "struct blkif_request_discard" {
        operation, flag, handle, id, sector_number, nr_sectors,
    },
    blkif::BlkifRequestIndirect => "struct blkif_request_indirect" {
        operation, indirect_op, nr_segments, id, sector_number, handle, indirect_grefs,
    },
}

const_table! {
    hypercall::{
        HYPERVISOR_set_trap_table => "__HYPERVISOR_set_trap_table",
        HYPERVISOR_mmu_update => "__HYPERVISOR_mmu_update",
        HYPERVISOR_set_gdt => "__HYPERVISOR_set_gdt",
        HYPERVISOR_stack_switch => "__HYPERVISOR_stack_switch",
        HYPERVISOR_set_callbacks => "__HYPERVISOR_set_callbacks",
        HYPERVISOR_fpu_taskswitch => "__HYPERVISOR_fpu_taskswitch",
        HYPERVISOR_sched_op_compat => "__HYPERVISOR_sched_op_compat",
        HYPERVISOR_platform_op => "__HYPERVISOR_platform_op",
        HYPERVISOR_set_debugreg => "__HYPERVISOR_set_debugreg",
        HYPERVISOR_get_debugreg => "__HYPERVISOR_get_debugreg",
        HYPERVISOR_update_descriptor => "__HYPERVISOR_update_descriptor",
        HYPERVISOR_memory_op => "__HYPERVISOR_memory_op",
        HYPERVISOR_multicall => "__HYPERVISOR_multicall",
        HYPERVISOR_update_va_mapping => "__HYPERVISOR_update_va_mapping",
        HYPERVISOR_set_timer_op => "__HYPERVISOR_set_timer_op",
        HYPERVISOR_event_channel_op_compat => "__HYPERVISOR_event_channel_op_compat",
        HYPERVISOR_xen_version => "__HYPERVISOR_xen_version",
        HYPERVISOR_console_io => "__HYPERVISOR_console_io",
        HYPERVISOR_physdev_op_compat => "__HYPERVISOR_physdev_op_compat",
        HYPERVISOR_grant_table_op => "__HYPERVISOR_grant_table_op",
        HYPERVISOR_vm_assist => "__HYPERVISOR_vm_assist",
        HYPERVISOR_update_va_mapping_otherdomain => "__HYPERVISOR_update_va_mapping_otherdomain",
        HYPERVISOR_iret => "__HYPERVISOR_iret",
        HYPERVISOR_vcpu_op => "__HYPERVISOR_vcpu_op",
        HYPERVISOR_set_segment_base => "__HYPERVISOR_set_segment_base",
        HYPERVISOR_mmuext_op => "__HYPERVISOR_mmuext_op",
        HYPERVISOR_xsm_op => "__HYPERVISOR_xsm_op",
        HYPERVISOR_nmi_op => "__HYPERVISOR_nmi_op",
        HYPERVISOR_sched_op => "__HYPERVISOR_sched_op",
        HYPERVISOR_callback_op => "__HYPERVISOR_callback_op",
        HYPERVISOR_xenoprof_op => "__HYPERVISOR_xenoprof_op",
        HYPERVISOR_event_channel_op => "__HYPERVISOR_event_channel_op",
        HYPERVISOR_physdev_op => "__HYPERVISOR_physdev_op",
        HYPERVISOR_hvm_op => "__HYPERVISOR_hvm_op",
        HYPERVISOR_sysctl => "__HYPERVISOR_sysctl",
        HYPERVISOR_domctl => "__HYPERVISOR_domctl",
        HYPERVISOR_kexec_op => "__HYPERVISOR_kexec_op",
        HYPERVISOR_tmem_op => "__HYPERVISOR_tmem_op",
        HYPERVISOR_argo_op => "__HYPERVISOR_argo_op",
        HYPERVISOR_xenpmu_op => "__HYPERVISOR_xenpmu_op",
        HYPERVISOR_dm_op => "__HYPERVISOR_dm_op",
        HYPERVISOR_hypfs_op => "__HYPERVISOR_hypfs_op",
        HYPERVISOR_arch_0 => "__HYPERVISOR_arch_0",
        HYPERVISOR_arch_1 => "__HYPERVISOR_arch_1",
        HYPERVISOR_arch_2 => "__HYPERVISOR_arch_2",
        HYPERVISOR_arch_3 => "__HYPERVISOR_arch_3",
        HYPERVISOR_arch_4 => "__HYPERVISOR_arch_4",
        HYPERVISOR_arch_5 => "__HYPERVISOR_arch_5",
        HYPERVISOR_arch_6 => "__HYPERVISOR_arch_6",
        HYPERVISOR_arch_7 => "__HYPERVISOR_arch_7",
    },
    // Not checked (not visible without __XEN__, or commented out in the 4.17 headers):
    // errno::EINTR, errno::ERESTART, domctl::XEN_DOMCTL_soft_reset_cont,
    // features::XENFEAT_grant_map_identity.
    errno::{
        EPERM => "XEN_EPERM", ENOENT => "XEN_ENOENT", ESRCH => "XEN_ESRCH", EIO => "XEN_EIO",
        ENXIO => "XEN_ENXIO", E2BIG => "XEN_E2BIG", ENOEXEC => "XEN_ENOEXEC",
        EBADF => "XEN_EBADF", ECHILD => "XEN_ECHILD", EAGAIN => "XEN_EAGAIN",
        EWOULDBLOCK => "XEN_EWOULDBLOCK", ENOMEM => "XEN_ENOMEM", EACCES => "XEN_EACCES",
        EFAULT => "XEN_EFAULT", EBUSY => "XEN_EBUSY", EEXIST => "XEN_EEXIST",
        EXDEV => "XEN_EXDEV", ENODEV => "XEN_ENODEV", ENOTDIR => "XEN_ENOTDIR",
        EISDIR => "XEN_EISDIR", EINVAL => "XEN_EINVAL", ENFILE => "XEN_ENFILE",
        EMFILE => "XEN_EMFILE", ENOSPC => "XEN_ENOSPC", EROFS => "XEN_EROFS",
        EMLINK => "XEN_EMLINK", EDOM => "XEN_EDOM", ERANGE => "XEN_ERANGE",
        EDEADLK => "XEN_EDEADLK", EDEADLOCK => "XEN_EDEADLOCK",
        ENAMETOOLONG => "XEN_ENAMETOOLONG", ENOLCK => "XEN_ENOLCK", ENOSYS => "XEN_ENOSYS",
        ENOTEMPTY => "XEN_ENOTEMPTY", ENODATA => "XEN_ENODATA", ETIME => "XEN_ETIME",
        EBADMSG => "XEN_EBADMSG", EOVERFLOW => "XEN_EOVERFLOW", EILSEQ => "XEN_EILSEQ",
        ENOTSOCK => "XEN_ENOTSOCK", EMSGSIZE => "XEN_EMSGSIZE",
        EOPNOTSUPP => "XEN_EOPNOTSUPP", EADDRINUSE => "XEN_EADDRINUSE",
        EADDRNOTAVAIL => "XEN_EADDRNOTAVAIL", ENOBUFS => "XEN_ENOBUFS",
        EISCONN => "XEN_EISCONN", ENOTCONN => "XEN_ENOTCONN", ETIMEDOUT => "XEN_ETIMEDOUT",
        ECONNREFUSED => "XEN_ECONNREFUSED",
    },
    xen::{
        VIRQ_TIMER, VIRQ_DEBUG, VIRQ_CONSOLE, VIRQ_DOM_EXC, VIRQ_TBUF, VIRQ_DEBUGGER,
        VIRQ_XENOPROF, VIRQ_CON_RING, VIRQ_PCPU_STATE, VIRQ_MEM_EVENT, VIRQ_ARGO, VIRQ_ENOMEM,
        VIRQ_XENPMU, VIRQ_ARCH_0, VIRQ_ARCH_1, VIRQ_ARCH_2, VIRQ_ARCH_3, VIRQ_ARCH_4,
        VIRQ_ARCH_5, VIRQ_ARCH_6, VIRQ_ARCH_7, NR_VIRQS,
        MMU_NORMAL_PT_UPDATE, MMU_MACHPHYS_UPDATE, MMU_PT_UPDATE_PRESERVE_AD,
        MMU_PT_UPDATE_NO_TRANSLATE,
        MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE,
        MMUEXT_UNPIN_TABLE, MMUEXT_NEW_BASEPTR, MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL,
        MMUEXT_TLB_FLUSH_MULTI, MMUEXT_INVLPG_MULTI, MMUEXT_TLB_FLUSH_ALL, MMUEXT_INVLPG_ALL,
        MMUEXT_FLUSH_CACHE, MMUEXT_SET_LDT, MMUEXT_NEW_USER_BASEPTR, MMUEXT_CLEAR_PAGE,
        MMUEXT_COPY_PAGE, MMUEXT_FLUSH_CACHE_GLOBAL, MMUEXT_MARK_SUPER, MMUEXT_UNMARK_SUPER,
        UVMF_NONE, UVMF_TLB_FLUSH, UVMF_INVLPG, UVMF_FLUSHTYPE_MASK, UVMF_MULTI, UVMF_LOCAL,
        UVMF_ALL,
        CONSOLEIO_write, CONSOLEIO_read,
        VMASST_CMD_enable, VMASST_CMD_disable, VMASST_TYPE_4gb_segments,
        VMASST_TYPE_4gb_segments_notify, VMASST_TYPE_writable_pagetables,
        VMASST_TYPE_pae_extended_cr3, VMASST_TYPE_architectural_iopl,
        VMASST_TYPE_runstate_update_flag, VMASST_TYPE_m2p_strict,
        DOMID_FIRST_RESERVED, DOMID_SELF, DOMID_IO, DOMID_XEN, DOMID_COW, DOMID_INVALID,
        DOMID_IDLE, DOMID_MASK,
        XEN_PVCLOCK_TSC_STABLE_BIT, XEN_PVCLOCK_GUEST_STOPPED,
        XEN_LEGACY_MAX_VCPUS,
        EVTCHN_WORDS => "sizeof(((struct shared_info *)0)->evtchn_pending) / sizeof(xen_ulong_t)",
        MAX_GUEST_CMDLINE,
        SIF_PRIVILEGED, SIF_INITDOMAIN, SIF_MULTIBOOT_MOD, SIF_MOD_START_PFN,
        SIF_VIRT_P2M_4TOOLS, SIF_PM_MASK,
    },
    arch_x86_64::{
        FLAT_RING3_CS32, FLAT_RING3_CS64, FLAT_RING3_DS32, FLAT_RING3_DS64, FLAT_RING3_SS32,
        FLAT_RING3_SS64, FLAT_KERNEL_DS64, FLAT_KERNEL_DS32, FLAT_KERNEL_DS, FLAT_KERNEL_CS64,
        FLAT_KERNEL_CS32, FLAT_KERNEL_CS, FLAT_KERNEL_SS64, FLAT_KERNEL_SS32, FLAT_KERNEL_SS,
        FLAT_USER_DS64, FLAT_USER_DS32, FLAT_USER_DS, FLAT_USER_CS64, FLAT_USER_CS32,
        FLAT_USER_CS, FLAT_USER_SS64, FLAT_USER_SS32, FLAT_USER_SS,
        FIRST_RESERVED_GDT_PAGE, FIRST_RESERVED_GDT_BYTE, FIRST_RESERVED_GDT_ENTRY,
        HYPERVISOR_VIRT_START, HYPERVISOR_VIRT_END, MACH2PHYS_VIRT_START, MACH2PHYS_VIRT_END,
        MACH2PHYS_NR_ENTRIES,
        SEGBASE_FS, SEGBASE_GS_USER, SEGBASE_GS_KERNEL, SEGBASE_GS_USER_SEL,
        _VGCF_i387_valid, VGCF_i387_valid, VGCF_I387_VALID, _VGCF_in_kernel, VGCF_in_kernel,
        VGCF_IN_KERNEL, _VGCF_failsafe_disables_events, VGCF_failsafe_disables_events,
        _VGCF_syscall_disables_events, VGCF_syscall_disables_events, _VGCF_online,
        VGCF_online, _VGCF_in_syscall, VGCF_in_syscall, VGCF_IN_SYSCALL,
    },
    callback::{
        CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_syscall,
        CALLBACKTYPE_sysenter_deprecated, CALLBACKTYPE_nmi, CALLBACKTYPE_sysenter,
        CALLBACKTYPE_syscall32, _CALLBACKF_mask_events, CALLBACKF_mask_events,
        CALLBACKOP_register, CALLBACKOP_unregister,
    },
    vcpu::{
        VCPUOP_initialise, VCPUOP_up, VCPUOP_down, VCPUOP_is_up, VCPUOP_get_runstate_info,
        VCPUOP_register_runstate_memory_area, VCPUOP_set_periodic_timer,
        VCPUOP_stop_periodic_timer, VCPUOP_set_singleshot_timer, VCPUOP_stop_singleshot_timer,
        VCPUOP_register_vcpu_info, VCPUOP_send_nmi, VCPUOP_get_physid,
        VCPUOP_register_vcpu_time_memory_area,
        RUNSTATE_running, RUNSTATE_runnable, RUNSTATE_blocked, RUNSTATE_offline,
        XEN_RUNSTATE_UPDATE, _VCPU_SSHOTTMR_future, VCPU_SSHOTTMR_future,
    },
    physdev::{PHYSDEVOP_set_iopl, PHYSDEVOP_set_iobitmap},
    sched::{
        SCHEDOP_yield, SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_poll, SCHEDOP_remote_shutdown,
        SCHEDOP_shutdown_code, SCHEDOP_watchdog, SCHEDOP_pin_override,
        SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend, SHUTDOWN_crash,
        SHUTDOWN_watchdog, SHUTDOWN_soft_reset, SHUTDOWN_MAX,
    },
    memory::{
        XENMEM_increase_reservation, XENMEM_decrease_reservation, XENMEM_maximum_ram_page,
        XENMEM_current_reservation, XENMEM_maximum_reservation, XENMEM_machphys_mfn_list,
        XENMEM_populate_physmap, XENMEM_add_to_physmap, XENMEM_memory_map,
        XENMEM_machine_memory_map, XENMEM_exchange, XENMEM_machphys_mapping,
        XENMEM_set_memory_map, XENMEM_maximum_gpfn, XENMEM_remove_from_physmap,
        XENMEM_set_pod_target, XENMEM_get_pod_target, XENMEM_get_sharing_freed_pages,
        XENMEM_get_sharing_shared_pages, XENMEM_paging_op, XENMEM_access_op,
        XENMEM_sharing_op, XENMEM_add_to_physmap_batch, XENMEM_claim_pages,
        XENMEM_machphys_compat_mfn_list, XENMEM_get_vnumainfo,
        XENMEM_reserved_device_memory_map, XENMEM_acquire_resource,
        XENMEMF_populate_on_demand, XENMEMF_exact_node_request, XENMEMF_vnode,
        XENMAPSPACE_shared_info, XENMAPSPACE_grant_table, XENMAPSPACE_gmfn,
        XENMAPSPACE_gmfn_range, XENMAPSPACE_gmfn_foreign, XENMAPSPACE_dev_mmio,
        XENMAPIDX_grant_table_status,
        XENMEM_resource_ioreq_server, XENMEM_resource_grant_table,
        XENMEM_resource_vmtrace_buf, XENMEM_resource_grant_table_id_shared,
        XENMEM_resource_grant_table_id_status,
    },
    event_channel::{
        EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_bind_pirq, EVTCHNOP_close,
        EVTCHNOP_send, EVTCHNOP_status, EVTCHNOP_alloc_unbound, EVTCHNOP_bind_ipi,
        EVTCHNOP_bind_vcpu, EVTCHNOP_unmask, EVTCHNOP_reset, EVTCHNOP_init_control,
        EVTCHNOP_expand_array, EVTCHNOP_set_priority,
        EVTCHNSTAT_closed, EVTCHNSTAT_unbound, EVTCHNSTAT_interdomain, EVTCHNSTAT_pirq,
        EVTCHNSTAT_virq, EVTCHNSTAT_ipi, BIND_PIRQ__WILL_SHARE, EVTCHN_2L_NR_CHANNELS,
        EVTCHN_FIFO_PRIORITY_MAX, EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHN_FIFO_PRIORITY_MIN,
        EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_PENDING, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_LINKED,
        EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINK_BITS, EVTCHN_FIFO_LINK_MASK,
        EVTCHN_FIFO_NR_CHANNELS,
    },
    grant_table::{
        GNTTAB_NR_RESERVED_ENTRIES, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE,
        GTF_invalid, GTF_permit_access, GTF_accept_transfer, GTF_transitive, GTF_type_mask,
        _GTF_readonly, GTF_readonly, _GTF_reading, GTF_reading, _GTF_writing, GTF_writing,
        _GTF_PWT, GTF_PWT, _GTF_PCD, GTF_PCD, _GTF_PAT, GTF_PAT, _GTF_sub_page, GTF_sub_page,
        _GTF_transfer_committed, GTF_transfer_committed, _GTF_transfer_completed,
        GTF_transfer_completed,
        GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref, GNTTABOP_setup_table,
        GNTTABOP_dump_table, GNTTABOP_transfer, GNTTABOP_copy, GNTTABOP_query_size,
        GNTTABOP_unmap_and_replace, GNTTABOP_set_version, GNTTABOP_get_status_frames,
        GNTTABOP_get_version, GNTTABOP_swap_grant_ref, GNTTABOP_cache_flush,
        _GNTMAP_device_map, GNTMAP_device_map, _GNTMAP_host_map, GNTMAP_host_map,
        _GNTMAP_readonly, GNTMAP_readonly, _GNTMAP_application_map, GNTMAP_application_map,
        _GNTMAP_contains_pte, GNTMAP_contains_pte, _GNTMAP_guest_avail0,
        GNTMAP_guest_avail_mask,
        _GNTCOPY_source_gref, GNTCOPY_source_gref, _GNTCOPY_dest_gref, GNTCOPY_dest_gref,
        GNTTAB_CACHE_CLEAN, GNTTAB_CACHE_INVAL, GNTTAB_CACHE_SOURCE_GREF,
        GNTST_okay, GNTST_general_error, GNTST_bad_domain, GNTST_bad_gntref,
        GNTST_bad_handle, GNTST_bad_virt_addr, GNTST_bad_dev_addr, GNTST_no_device_space,
        GNTST_permission_denied, GNTST_bad_page, GNTST_bad_copy_arg, GNTST_address_too_big,
        GNTST_eagain, GNTST_no_space,
    },
    domctl::{
        XEN_DOMCTL_INTERFACE_VERSION,
        XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain, XEN_DOMCTL_pausedomain,
        XEN_DOMCTL_unpausedomain, XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_setvcpuaffinity,
        XEN_DOMCTL_shadow_op, XEN_DOMCTL_max_mem, XEN_DOMCTL_setvcpucontext,
        XEN_DOMCTL_getvcpucontext, XEN_DOMCTL_getvcpuinfo, XEN_DOMCTL_max_vcpus,
        XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setdomainhandle, XEN_DOMCTL_setdebugging,
        XEN_DOMCTL_irq_permission, XEN_DOMCTL_iomem_permission,
        XEN_DOMCTL_ioport_permission, XEN_DOMCTL_hypercall_init,
        XEN_DOMCTL_settimeoffset, XEN_DOMCTL_getvcpuaffinity, XEN_DOMCTL_real_mode_area,
        XEN_DOMCTL_resumedomain, XEN_DOMCTL_sendtrigger, XEN_DOMCTL_subscribe,
        XEN_DOMCTL_gethvmcontext, XEN_DOMCTL_sethvmcontext, XEN_DOMCTL_set_address_size,
        XEN_DOMCTL_get_address_size, XEN_DOMCTL_assign_device, XEN_DOMCTL_bind_pt_irq,
        XEN_DOMCTL_memory_mapping, XEN_DOMCTL_ioport_mapping, XEN_DOMCTL_set_ext_vcpucontext,
        XEN_DOMCTL_get_ext_vcpucontext, XEN_DOMCTL_set_opt_feature,
        XEN_DOMCTL_test_assign_device, XEN_DOMCTL_set_target, XEN_DOMCTL_deassign_device,
        XEN_DOMCTL_unbind_pt_irq, XEN_DOMCTL_get_device_group, XEN_DOMCTL_debug_op,
        XEN_DOMCTL_gethvmcontext_partial, XEN_DOMCTL_vm_event_op, XEN_DOMCTL_mem_sharing_op,
        XEN_DOMCTL_gettscinfo, XEN_DOMCTL_settscinfo, XEN_DOMCTL_getpageframeinfo3,
        XEN_DOMCTL_setvcpuextstate, XEN_DOMCTL_getvcpuextstate,
        XEN_DOMCTL_set_access_required, XEN_DOMCTL_audit_p2m, XEN_DOMCTL_set_virq_handler,
        XEN_DOMCTL_set_broken_page_p2m, XEN_DOMCTL_setnodeaffinity,
        XEN_DOMCTL_getnodeaffinity, XEN_DOMCTL_cacheflush, XEN_DOMCTL_get_vcpu_msrs,
        XEN_DOMCTL_set_vcpu_msrs, XEN_DOMCTL_setvnumainfo, XEN_DOMCTL_psr_cmt_op,
        XEN_DOMCTL_monitor_op, XEN_DOMCTL_psr_alloc, XEN_DOMCTL_soft_reset,
        XEN_DOMCTL_vuart_op, XEN_DOMCTL_get_cpu_policy, XEN_DOMCTL_set_cpu_policy,
        XEN_DOMCTL_vmtrace_op, XEN_DOMCTL_get_paging_mempool_size,
        XEN_DOMCTL_set_paging_mempool_size, XEN_DOMCTL_gdbsx_guestmemio,
        XEN_DOMCTL_gdbsx_pausevcpu, XEN_DOMCTL_gdbsx_unpausevcpu, XEN_DOMCTL_gdbsx_domstatus,
        XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_CDF_hap, XEN_DOMCTL_CDF_s3_integrity,
        XEN_DOMCTL_CDF_oos_off, XEN_DOMCTL_CDF_xs_domain, XEN_DOMCTL_CDF_iommu,
        XEN_DOMCTL_CDF_nested_virt, XEN_DOMCTL_CDF_vpmu, XEN_DOMCTL_CDF_MAX,
        XEN_DOMCTL_IOMMU_no_sharept, XEN_DOMCTL_GRANT_version_mask,
        XEN_X86_EMU_PIT, XEN_X86_MSR_RELAXED,
        XEN_DOMINF_dying, XEN_DOMINF_hvm_guest, XEN_DOMINF_shutdown, XEN_DOMINF_paused,
        XEN_DOMINF_blocked, XEN_DOMINF_running, XEN_DOMINF_debugged, XEN_DOMINF_xs_domain,
        XEN_DOMINF_hap, XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift,
        XEN_INVALID_MAX_VCPU_ID,
        XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2, XEN_SCHEDULER_ARINC653,
        XEN_SCHEDULER_RTDS, XEN_SCHEDULER_NULL,
        XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_SCHEDOP_getinfo,
        XEN_DOMCTL_SCHEDOP_putvcpuinfo, XEN_DOMCTL_SCHEDOP_getvcpuinfo,
        XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XEN_VCPUAFFINITY_FORCE,
        XEN_DOMCTL_PAYLOAD_SIZE => "sizeof(((struct xen_domctl *)0)->u)",
    },
    sysctl::{
        XEN_SYSCTL_INTERFACE_VERSION,
        XEN_SYSCTL_readconsole, XEN_SYSCTL_tbuf_op, XEN_SYSCTL_physinfo, XEN_SYSCTL_sched_id,
        XEN_SYSCTL_perfc_op, XEN_SYSCTL_getdomaininfolist, XEN_SYSCTL_debug_keys,
        XEN_SYSCTL_getcpuinfo, XEN_SYSCTL_availheap, XEN_SYSCTL_get_pmstat,
        XEN_SYSCTL_cpu_hotplug, XEN_SYSCTL_pm_op, XEN_SYSCTL_page_offline_op,
        XEN_SYSCTL_lockprof_op, XEN_SYSCTL_cputopoinfo, XEN_SYSCTL_numainfo,
        XEN_SYSCTL_cpupool_op, XEN_SYSCTL_scheduler_op, XEN_SYSCTL_coverage_op,
        XEN_SYSCTL_psr_cmt_op, XEN_SYSCTL_pcitopoinfo, XEN_SYSCTL_psr_alloc,
        XEN_SYSCTL_get_cpu_levelling_caps, XEN_SYSCTL_get_cpu_featureset,
        XEN_SYSCTL_livepatch_op, XEN_SYSCTL_get_cpu_policy,
        XEN_SYSCTL_PHYSCAP_hvm, XEN_SYSCTL_PHYSCAP_pv, XEN_SYSCTL_PHYSCAP_directio,
        XEN_SYSCTL_PHYSCAP_hap, XEN_SYSCTL_PHYSCAP_shadow,
        XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share, XEN_SYSCTL_PHYSCAP_vmtrace,
        XEN_SYSCTL_PHYSCAP_vpmu, XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_gnttab_v2,
        XEN_SYSCTL_PAYLOAD_SIZE => "sizeof(((struct xen_sysctl *)0)->u)",
        XEN_SYSCTL_CPUPOOL_OP_CREATE, XEN_SYSCTL_CPUPOOL_OP_DESTROY, XEN_SYSCTL_CPUPOOL_OP_INFO,
        XEN_SYSCTL_CPUPOOL_OP_ADDCPU, XEN_SYSCTL_CPUPOOL_OP_RMCPU,
        XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN, XEN_SYSCTL_CPUPOOL_OP_FREEINFO,
        XEN_SYSCTL_CPUPOOL_PAR_ANY,
        XEN_SYSCTL_SCHEDOP_putinfo, XEN_SYSCTL_SCHEDOP_getinfo,
        XEN_SYSCTL_SCHED_RATELIMIT_MAX, XEN_SYSCTL_SCHED_RATELIMIT_MIN,
        XEN_SYSCTL_CSCHED_TSLICE_MAX, XEN_SYSCTL_CSCHED_TSLICE_MIN,
        XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US,
        XEN_INVALID_NODE_ID, XEN_INVALID_MEM_SZ, XEN_INVALID_NODE_DIST,
        XEN_SYSCTL_cpu_featureset_raw, XEN_SYSCTL_cpu_featureset_host,
        XEN_SYSCTL_cpu_featureset_pv, XEN_SYSCTL_cpu_featureset_hvm,
        XEN_SYSCTL_cpu_featureset_pv_max, XEN_SYSCTL_cpu_featureset_hvm_max,
        XEN_SYSCTL_cpu_policy_raw, XEN_SYSCTL_cpu_policy_host, XEN_SYSCTL_cpu_policy_pv_max,
        XEN_SYSCTL_cpu_policy_hvm_max, XEN_SYSCTL_cpu_policy_pv_default,
        XEN_SYSCTL_cpu_policy_hvm_default,
    },
    version::{
        XENVER_version, XENVER_extraversion, XENVER_compile_info, XENVER_capabilities,
        XENVER_changeset, XENVER_platform_parameters, XENVER_get_features, XENVER_pagesize,
        XENVER_guest_handle, XENVER_commandline, XENVER_build_id,
        XEN_EXTRAVERSION_LEN, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN,
        XEN_COMMANDLINE_LEN => "sizeof(xen_commandline_t)",
        XEN_DOMAIN_HANDLE_LEN => "sizeof(xen_domain_handle_t)",
    },
    features::{
        XENFEAT_writable_page_tables, XENFEAT_writable_descriptor_tables,
        XENFEAT_auto_translated_physmap, XENFEAT_supervisor_mode_kernel,
        XENFEAT_pae_pgdir_above_4gb, XENFEAT_mmu_pt_update_preserve_ad,
        XENFEAT_highmem_assist, XENFEAT_gnttab_map_avail_bits, XENFEAT_hvm_callback_vector,
        XENFEAT_hvm_safe_pvclock, XENFEAT_hvm_pirqs, XENFEAT_dom0,
        XENFEAT_memory_op_vnode_supported,
        XENFEAT_ARM_SMCCC_supported, XENFEAT_linux_rsdp_unrestricted,
        XENFEAT_not_direct_mapped, XENFEAT_direct_mapped, XENFEAT_NR_SUBMAPS,
    },
    elfnote::{
        XEN_ELFNOTE_INFO, XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_VIRT_BASE,
        XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_XEN_VERSION, XEN_ELFNOTE_GUEST_OS,
        XEN_ELFNOTE_GUEST_VERSION, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_PAE_MODE,
        XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_BSD_SYMTAB, XEN_ELFNOTE_HV_START_LOW,
        XEN_ELFNOTE_L1_MFN_VALID, XEN_ELFNOTE_SUSPEND_CANCEL, XEN_ELFNOTE_INIT_P2M,
        XEN_ELFNOTE_MOD_START_PFN, XEN_ELFNOTE_SUPPORTED_FEATURES, XEN_ELFNOTE_PHYS32_ENTRY,
        XEN_ELFNOTE_MAX, XEN_ELFNOTE_CRASH_INFO, XEN_ELFNOTE_CRASH_REGS,
        XEN_ELFNOTE_DUMPCORE_NONE, XEN_ELFNOTE_DUMPCORE_HEADER,
        XEN_ELFNOTE_DUMPCORE_XEN_VERSION, XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION,
    },
    console::{
        XENCONS_IN_SIZE => "sizeof(((struct xencons_interface *)0)->in)",
        XENCONS_OUT_SIZE => "sizeof(((struct xencons_interface *)0)->out)",
    },
    xenstore::{
        XS_CONTROL, XS_DEBUG, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH,
        XS_TRANSACTION_START, XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE,
        XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR,
        XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET, XS_RESET_WATCHES,
        XS_DIRECTORY_PART, XS_TYPE_COUNT, XS_INVALID,
        XS_WRITE_NONE, XS_WRITE_CREATE, XS_WRITE_CREATE_EXCL, XS_WATCH_PATH, XS_WATCH_TOKEN,
        XENSTORE_RING_SIZE, XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX,
        XENSTORE_REL_PATH_MAX, XENSTORE_SERVER_FEATURE_RECONNECTION,
        XENSTORE_SERVER_FEATURE_ERROR, XENSTORE_CONNECTED, XENSTORE_RECONNECT,
        XENSTORE_ERROR_NONE, XENSTORE_ERROR_COMM, XENSTORE_ERROR_RINGIDX,
        XENSTORE_ERROR_PROTO,
    },
    netif::{
        XEN_NETIF_NR_SLOTS_MIN, XEN_NETIF_MAX_TX_SIZE,
        _NETTXF_csum_blank, NETTXF_csum_blank, _NETTXF_data_validated, NETTXF_data_validated,
        _NETTXF_more_data, NETTXF_more_data, _NETTXF_extra_info, NETTXF_extra_info,
        _NETRXF_data_validated, NETRXF_data_validated, _NETRXF_csum_blank, NETRXF_csum_blank,
        _NETRXF_more_data, NETRXF_more_data, _NETRXF_extra_info, NETRXF_extra_info,
        _NETRXF_gso_prefix, NETRXF_gso_prefix,
        XEN_NETIF_EXTRA_TYPE_NONE, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
        XEN_NETIF_EXTRA_TYPE_MCAST_DEL, XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_TYPE_MAX,
        _XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_FLAG_MORE,
        XEN_NETIF_GSO_TYPE_NONE, XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV6,
        NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETIF_RSP_NULL,
        XEN_NETIF_CTRL_TYPE_INVALID, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS,
        XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY,
        XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE,
        XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
        XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING,
        XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING, XEN_NETIF_CTRL_STATUS_SUCCESS,
        XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
        XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW,
    },
    blkif::{
        BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
        BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE,
        BLKIF_OP_RESERVED_1, BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT,
        BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BLKIF_DISCARD_SECURE,
        VDISK_CDROM, VDISK_REMOVABLE, VDISK_READONLY,
        BLKIF_SEGS_PER_INDIRECT_FRAME =>
            "(1 << XEN_PAGE_SHIFT) / sizeof(struct blkif_request_segment)",
        BLKIF_RING_ENTRY_SIZE => "sizeof(union blkif_sring_entry)",
    },
    types::{ PAGE_SHIFT => "XEN_PAGE_SHIFT", PAGE_SIZE => "1 << XEN_PAGE_SHIFT" },
}

/// Table-driven constants: the `xsd_errors[]` and `GNTTABOP_error_msgs` tables and the
/// `Errno`/`DomId` associated constants.
/// One row per named flag of `F`, compared with the C expression `c_names` gives it.
fn typed_flags<F>(push: &mut impl FnMut(String, String, Value), rust_ty: &str, c_names: &[(&str, &str)])
where
    F: bitflags::Flags,
    F::Bits: Into<i128>,
{
    for flag in F::FLAGS {
        let name = flag.name();
        let c = c_names
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{rust_ty}::{name} has no C name in the layout test's table"))
            .1;
        push(format!("{rust_ty}::{name}"), c.into(), Value::Int(flag.value().bits().into()));
    }
    assert_eq!(F::FLAGS.len(), c_names.len(), "{rust_ty}: the table names flags the type lacks");
}

fn extra_consts(v: &mut Vec<ConstRow>) {
    let mut push = |rust: String, c: String, value: Value| v.push(ConstRow { rust, c, value });
    push(
        "xenstore::XSD_ERRORS.len()".into(),
        "sizeof(xsd_errors) / sizeof(xsd_errors[0])".into(),
        Value::Int(xenstore::XSD_ERRORS.len() as i128),
    );
    for (i, (e, name)) in xenstore::XSD_ERRORS.iter().enumerate() {
        push(
            format!("xenstore::XSD_ERRORS[{i}].0"),
            format!("xsd_errors[{i}].errnum"),
            e.value(),
        );
        push(
            format!("xenstore::XSD_ERRORS[{i}].1"),
            format!("xsd_errors[{i}].errstring"),
            name.value(),
        );
    }
    push(
        "grant_table::GNTTABOP_ERROR_MSGS.len()".into(),
        "sizeof(abi_probe_gnttab_msgs) / sizeof(abi_probe_gnttab_msgs[0])".into(),
        Value::Int(grant_table::GNTTABOP_ERROR_MSGS.len() as i128),
    );
    for (i, msg) in grant_table::GNTTABOP_ERROR_MSGS.iter().enumerate() {
        push(
            format!("grant_table::GNTTABOP_ERROR_MSGS[{i}]"),
            format!("abi_probe_gnttab_msgs[{i}]"),
            msg.value(),
        );
    }
    for (rust, c, d) in [
        (
            "DomId::FIRST_RESERVED",
            "DOMID_FIRST_RESERVED",
            DomId::FIRST_RESERVED,
        ),
        ("DomId::SELF", "DOMID_SELF", DomId::SELF),
        ("DomId::IO", "DOMID_IO", DomId::IO),
        ("DomId::XEN", "DOMID_XEN", DomId::XEN),
        ("DomId::COW", "DOMID_COW", DomId::COW),
        ("DomId::INVALID", "DOMID_INVALID", DomId::INVALID),
        ("DomId::IDLE", "DOMID_IDLE", DomId::IDLE),
    ] {
        push(format!("types::{rust}"), c.into(), d.value());
    }
    for (rust, c, e) in [
        ("Errno::EPERM", "XEN_EPERM", Errno::EPERM),
        ("Errno::ENOENT", "XEN_ENOENT", Errno::ENOENT),
        ("Errno::EAGAIN", "XEN_EAGAIN", Errno::EAGAIN),
        ("Errno::EINVAL", "XEN_EINVAL", Errno::EINVAL),
        ("Errno::ENOSYS", "XEN_ENOSYS", Errno::ENOSYS),
        ("Errno::ETIME", "XEN_ETIME", Errno::ETIME),
        ("Errno::EOPNOTSUPP", "XEN_EOPNOTSUPP", Errno::EOPNOTSUPP),
        (
            "Errno::ECONNREFUSED",
            "XEN_ECONNREFUSED",
            Errno::ECONNREFUSED,
        ),
    ] {
        push(format!("errno::{rust}"), c.into(), e.value());
    }
    // Every flag of the `bitflags` types against its C macro: the table names a C
    // expression for each flag, and a flag without one fails the test.
    typed_flags::<grant_table::GntMap>(&mut push, "grant_table::GntMap", &[
        ("DEVICE_MAP", "GNTMAP_device_map"),
        ("HOST_MAP", "GNTMAP_host_map"),
        ("READONLY", "GNTMAP_readonly"),
        ("APPLICATION_MAP", "GNTMAP_application_map"),
        ("CONTAINS_PTE", "GNTMAP_contains_pte"),
        ("GUEST_AVAIL_MASK", "GNTMAP_guest_avail_mask"),
    ]);
    typed_flags::<grant_table::Gtf>(&mut push, "grant_table::Gtf", &[
        ("TYPE_MASK", "GTF_type_mask"),
        ("READONLY", "GTF_readonly"),
        ("READING", "GTF_reading"),
        ("WRITING", "GTF_writing"),
        ("PWT", "GTF_PWT"),
        ("PCD", "GTF_PCD"),
        ("PAT", "GTF_PAT"),
        ("SUB_PAGE", "GTF_sub_page"),
    ]);
    typed_flags::<arch_x86_64::Vgcf>(&mut push, "arch_x86_64::Vgcf", &[
        ("I387_VALID", "VGCF_i387_valid"),
        ("IN_KERNEL", "VGCF_in_kernel"),
        ("FAILSAFE_DISABLES_EVENTS", "VGCF_failsafe_disables_events"),
        ("SYSCALL_DISABLES_EVENTS", "VGCF_syscall_disables_events"),
        ("ONLINE", "VGCF_online"),
        ("IN_SYSCALL", "VGCF_in_syscall"),
    ]);
    typed_flags::<xen::Sif>(&mut push, "xen::Sif", &[
        ("PRIVILEGED", "SIF_PRIVILEGED"),
        ("INITDOMAIN", "SIF_INITDOMAIN"),
        ("MULTIBOOT_MOD", "SIF_MULTIBOOT_MOD"),
        ("MOD_START_PFN", "SIF_MOD_START_PFN"),
        ("VIRT_P2M_4TOOLS", "SIF_VIRT_P2M_4TOOLS"),
        ("PM_MASK", "SIF_PM_MASK"),
    ]);
    // XENFEAT_grant_map_identity is only in a comment of the 4.17 header: its bit is
    // compared as the literal the comment gives.
    typed_flags::<features::XenFeatures>(&mut push, "features::XenFeatures", &[
        ("WRITABLE_PAGE_TABLES", "1u << XENFEAT_writable_page_tables"),
        ("WRITABLE_DESCRIPTOR_TABLES", "1u << XENFEAT_writable_descriptor_tables"),
        ("AUTO_TRANSLATED_PHYSMAP", "1u << XENFEAT_auto_translated_physmap"),
        ("SUPERVISOR_MODE_KERNEL", "1u << XENFEAT_supervisor_mode_kernel"),
        ("PAE_PGDIR_ABOVE_4GB", "1u << XENFEAT_pae_pgdir_above_4gb"),
        ("MMU_PT_UPDATE_PRESERVE_AD", "1u << XENFEAT_mmu_pt_update_preserve_ad"),
        ("HIGHMEM_ASSIST", "1u << XENFEAT_highmem_assist"),
        ("GNTTAB_MAP_AVAIL_BITS", "1u << XENFEAT_gnttab_map_avail_bits"),
        ("HVM_CALLBACK_VECTOR", "1u << XENFEAT_hvm_callback_vector"),
        ("HVM_SAFE_PVCLOCK", "1u << XENFEAT_hvm_safe_pvclock"),
        ("HVM_PIRQS", "1u << XENFEAT_hvm_pirqs"),
        ("DOM0", "1u << XENFEAT_dom0"),
        ("GRANT_MAP_IDENTITY", "1u << 12"),
        ("MEMORY_OP_VNODE_SUPPORTED", "1u << XENFEAT_memory_op_vnode_supported"),
        ("ARM_SMCCC_SUPPORTED", "1u << XENFEAT_ARM_SMCCC_supported"),
        ("LINUX_RSDP_UNRESTRICTED", "1u << XENFEAT_linux_rsdp_unrestricted"),
        ("NOT_DIRECT_MAPPED", "1u << XENFEAT_not_direct_mapped"),
        ("DIRECT_MAPPED", "1u << XENFEAT_direct_mapped"),
    ]);
    // Every feature's value through the compiler (the header's enum).
    for feat in cpufeatureset::FEATURES {
        push(
            format!("cpufeatureset::{}.value", feat.name),
            format!("XEN_X86_FEATURE_{}", feat.name),
            Value::Int(feat.value as i128),
        );
    }
    for &h in hypercall::Hypercall::ALL {
        push(
            format!("hypercall::Hypercall::{h:?}"),
            format!("__HYPERVISOR_{}", h.name()),
            Value::Int(h.number() as i128),
        );
    }
    for &t in xenstore::XsType::ALL {
        push(
            format!("xenstore::XsType::{t:?}"),
            t.name().into(),
            Value::Int(t as i128),
        );
    }
    for s in xenbus::XenbusState::ALL {
        push(
            format!("xenbus::XenbusState::{s:?}"),
            format!("XenbusState{}", s.name()),
            Value::Int(s as i128),
        );
    }
}

const PROBE_HEADERS: &[&str] = &[
    "xen/arch-x86/cpufeatureset.h",
    "xen/xen.h",
    "xen/callback.h",
    "xen/vcpu.h",
    "xen/sched.h",
    "xen/physdev.h",
    "xen/memory.h",
    "xen/event_channel.h",
    "xen/grant_table.h",
    "xen/domctl.h",
    "xen/sysctl.h",
    "xen/version.h",
    "xen/features.h",
    "xen/elfnote.h",
    "xen/errno.h",
    "xen/io/console.h",
    "xen/io/xs_wire.h",
    "xen/io/netif.h",
    "xen/io/xenbus.h",
    "xen/io/blkif.h",
];

/// Escapes a Rust string for a C string literal.
fn c_string_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut b = [0; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    write!(out, "\\{byte:03o}").unwrap();
                }
            }
        }
    }
    out.push('"');
    out
}

fn probe_source(structs: &[StructRow], consts: &[ConstRow]) -> String {
    let mut src = String::new();
    src.push_str("/* Generated by xen-core/abi/tests/layout.rs. */\n");
    src.push_str(
        "#include <stdint.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n",
    );
    // libc's errno values are what `xsd_errors[]` is built from (x86-64 Linux == Xen).
    src.push_str("#include <errno.h>\n");
    for h in PROBE_HEADERS {
        writeln!(src, "#include <{h}>").unwrap();
    }
    src.push_str(
        "\n/* Not declared by the 4.17 headers: the packed BIOS E820 entry. */\n\
         struct abi_probe_e820entry { uint64_t addr; uint64_t size; uint32_t type; } __attribute__((packed));\n\
         static const char *abi_probe_gnttab_msgs[] = GNTTABOP_error_msgs;\n\
         static void abi_probe_int(int i, __int128 v) {\n\
         \x20   unsigned long long m = (unsigned long long)(v < 0 ? -v : v);\n\
         \x20   printf(\"C %d %s%llu\\n\", i, v < 0 ? \"-\" : \"\", m);\n\
         }\n\
         static void abi_probe_str(int i, const char *s, const char *want) {\n\
         \x20   printf(\"Q %d %d %s\\n\", i, strcmp(s, want) == 0, s);\n\
         }\n\n\
         int main(void)\n{\n",
    );
    for (i, s) in structs.iter().enumerate() {
        writeln!(
            src,
            "    printf(\"S {i} %zu %zu\\n\", sizeof({t}), _Alignof({t}));",
            t = s.c
        )
        .unwrap();
        for (j, f) in s.fields.iter().enumerate() {
            writeln!(
                src,
                "    printf(\"F {i} {j} %zu %zu\\n\", offsetof({t}, {f}), sizeof((({t} *)0)->{f}));",
                t = s.c,
                f = f.c
            )
            .unwrap();
        }
    }
    for (i, c) in consts.iter().enumerate() {
        match &c.value {
            Value::Int(_) => writeln!(src, "    abi_probe_int({i}, (__int128)({}));", c.c).unwrap(),
            Value::Str(s) => writeln!(
                src,
                "    abi_probe_str({i}, {}, {});",
                c.c,
                c_string_literal(s)
            )
            .unwrap(),
        }
    }
    src.push_str("    return 0;\n}\n");
    src
}

fn compile_and_run(src: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("xen-abi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&c_file, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-D__XEN_TOOLS__", "-o"])
        .arg(&exe)
        .arg(&c_file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{cc}`: {e} (install gcc or set $CC)")
        });
    assert!(
        out.status.success(),
        "the C probe {} failed to compile (a C type or field name in tests/layout.rs is wrong?):\n{}",
        c_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the C probe");
    assert!(
        run.status.success(),
        "the C probe failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(run.stdout).expect("probe output is UTF-8")
}

#[test]
fn layout_matches_c_headers() {
    if !Path::new(XEN_INCLUDE_DIR).join("xen.h").is_file() {
        panic!(
            "{XEN_INCLUDE_DIR}/xen.h not found: install libxen-dev (apt-get install libxen-dev)"
        );
    }
    let structs = structs();
    let consts = consts();
    let output = compile_and_run(&probe_source(&structs, &consts));

    let mut mismatches = Vec::new();
    let mut seen_structs = BTreeSet::new();
    let mut seen_fields = BTreeSet::new();
    let mut seen_consts = BTreeSet::new();
    let num = |s: &str| -> usize {
        s.parse()
            .unwrap_or_else(|_| panic!("bad probe output {s:?}"))
    };
    for line in output.lines() {
        let mut parts = line.splitn(4, ' ');
        let kind = parts.next().unwrap();
        match kind {
            "S" => {
                let (i, size, align) = (
                    num(parts.next().unwrap()),
                    num(parts.next().unwrap()),
                    parts.next().unwrap(),
                );
                let align = num(align);
                let s = &structs[i];
                seen_structs.insert(i);
                if s.size != size {
                    mismatches.push(format!(
                        "{} (`{}`): size: Rust {} != C {}",
                        s.rust, s.c, s.size, size
                    ));
                }
                if s.align != align {
                    mismatches.push(format!(
                        "{} (`{}`): alignment: Rust {} != C {}",
                        s.rust, s.c, s.align, align
                    ));
                }
            }
            "F" => {
                let rest: Vec<usize> = line.split(' ').skip(1).map(num).collect();
                let (i, j, off, size) = (rest[0], rest[1], rest[2], rest[3]);
                let s = &structs[i];
                let f = &s.fields[j];
                seen_fields.insert((i, j));
                if f.offset != off {
                    mismatches.push(format!(
                        "{}.{} (C `{}`.{}): offset: Rust {} != C {}",
                        s.rust, f.rust, s.c, f.c, f.offset, off
                    ));
                }
                if f.size != size {
                    mismatches.push(format!(
                        "{}.{} (C `{}`.{}): size: Rust {} != C {}",
                        s.rust, f.rust, s.c, f.c, f.size, size
                    ));
                }
            }
            "C" => {
                let i = num(parts.next().unwrap());
                let text = parts.next().unwrap();
                let c_val: i128 = text
                    .parse()
                    .unwrap_or_else(|_| panic!("bad probe output {line:?}"));
                let c = &consts[i];
                seen_consts.insert(i);
                if c.value != Value::Int(c_val) {
                    mismatches.push(format!(
                        "constant {} (C `{}`): Rust {:?} != C {}",
                        c.rust, c.c, c.value, c_val
                    ));
                }
            }
            "Q" => {
                let i = num(parts.next().unwrap());
                let equal = parts.next().unwrap() == "1";
                let text = parts.next().unwrap_or("");
                let c = &consts[i];
                seen_consts.insert(i);
                if !equal {
                    mismatches.push(format!(
                        "constant {} (C `{}`): Rust {:?} != C {:?}",
                        c.rust, c.c, c.value, text
                    ));
                }
            }
            _ => panic!("unexpected probe output line {line:?}"),
        }
    }
    let n_fields: usize = structs.iter().map(|s| s.fields.len()).sum();
    assert_eq!(
        seen_structs.len(),
        structs.len(),
        "the probe did not report every struct"
    );
    assert_eq!(
        seen_fields.len(),
        n_fields,
        "the probe did not report every field"
    );
    assert_eq!(
        seen_consts.len(),
        consts.len(),
        "the probe did not report every constant"
    );

    println!(
        "checked {} structs, {} fields and {} constants against {XEN_INCLUDE_DIR}",
        structs.len(),
        n_fields,
        consts.len()
    );
    if !mismatches.is_empty() {
        panic!(
            "{} ABI mismatch(es) between xen-abi and the Xen C headers:\n  {}",
            mismatches.len(),
            mismatches.join("\n  ")
        );
    }
}

/// Index of the first line at or after `k` that is neither a comment nor part of an
/// attribute (attributes may span lines, e.g. rustfmt's wrapped `#[derive(...)]`).
fn skip_attributes_and_comments(lines: &[&str], mut k: usize) -> usize {
    while k < lines.len() {
        if lines[k].starts_with("//") {
            k += 1;
        } else if lines[k].starts_with("#[") {
            let mut depth = 0i32;
            loop {
                for ch in lines[k].chars() {
                    match ch {
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        _ => {}
                    }
                }
                k += 1;
                if depth <= 0 || k >= lines.len() {
                    break;
                }
            }
        } else {
            break;
        }
    }
    k
}

/// `#[repr(C...)]` structs found in the crate source: `module::Name` -> non-pad fields.
fn scan_repr_c_structs() -> BTreeMap<String, Vec<String>> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();

    let mut found = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut module: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|m| m == "mod" || m == "lib") {
            module.pop();
        }
        let module = module.join("::");
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].starts_with("#[repr(C") {
                i += 1;
                continue;
            }
            // Skip further (possibly multi-line) attributes and comments up to the item.
            let mut k = skip_attributes_and_comments(&lines, i);
            let item = lines.get(k).copied().unwrap_or("");
            let rest = item
                .strip_prefix("pub struct ")
                .or_else(|| item.strip_prefix("struct "))
                .unwrap_or_else(|| {
                    panic!(
                        "{}:{}: #[repr(C)] on something other than a braced struct: {item:?}",
                        file.display(),
                        k + 1
                    )
                });
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                rest[name.len()..].trim_start().starts_with('{'),
                "{}:{}: cannot parse struct header {item:?} (use `pub struct Name {{`)",
                file.display(),
                k + 1
            );
            let mut fields = Vec::new();
            k += 1;
            while k < lines.len() && !lines[k].starts_with('}') {
                let next = skip_attributes_and_comments(&lines, k);
                if next != k {
                    k = next;
                    continue;
                }
                let l = lines[k];
                if !l.is_empty() {
                    let decl = l.strip_prefix("pub ").unwrap_or(l);
                    let field = decl.split(':').next().unwrap().trim();
                    assert!(
                        !field.is_empty() && field.chars().all(|c| c.is_alphanumeric() || c == '_'),
                        "{}:{}: cannot parse field line {l:?} (one `name: Type,` per line)",
                        file.display(),
                        k + 1
                    );
                    if !field.starts_with("_pad") {
                        fields.push(field.to_owned());
                    }
                }
                k += 1;
            }
            let key = if module.is_empty() {
                name
            } else {
                format!("{module}::{name}")
            };
            assert!(
                found.insert(key.clone(), fields).is_none(),
                "duplicate struct {key}"
            );
            i = k;
        }
    }
    found
}

#[test]
fn layout_table_covers_every_repr_c_struct() {
    let table: BTreeMap<String, BTreeSet<&str>> = structs()
        .iter()
        .map(|s| {
            (
                s.rust.replace(' ', ""),
                s.fields.iter().map(|f| f.rust).collect(),
            )
        })
        .collect();
    let found = scan_repr_c_structs();
    assert!(
        found.len() > 50,
        "the source scan found only {} structs",
        found.len()
    );

    let mut problems = Vec::new();
    for (name, fields) in &found {
        match table.get(name) {
            None => problems.push(format!(
                "{name}: #[repr(C)] struct missing from the layout table"
            )),
            Some(listed) => {
                for f in fields {
                    if !listed.contains(f.as_str()) {
                        problems.push(format!("{name}.{f}: field missing from the layout table"));
                    }
                }
            }
        }
    }
    for name in table.keys() {
        if !found.contains_key(name) {
            problems.push(format!(
                "{name}: in the layout table but not found by the source scan"
            ));
        }
    }
    println!("{} #[repr(C)] structs in src/, all checked", found.len());
    assert!(
        problems.is_empty(),
        "layout table incomplete:\n  {}",
        problems.join("\n  ")
    );
}

/// The policy annotations are comments, invisible to the compiler: read them from the
/// header's text. Every `XEN_CPUFEATURE(NAME, w*32+b) /*attrs ...` line must be in
/// `cpufeatureset::FEATURES` with the same value and annotation, in the same order, and
/// the table must hold nothing else.
#[test]
fn cpufeatureset_annotations_match_header() {
    let path = Path::new(XEN_INCLUDE_DIR).join("arch-x86/cpufeatureset.h");
    let Ok(text) = std::fs::read_to_string(&path) else {
        panic!("{} is missing (install libxen-dev)", path.display());
    };
    let mut header = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("XEN_CPUFEATURE(")) {
        let (args, rest) = line["XEN_CPUFEATURE(".len()..].split_once(')').expect("closing parenthesis");
        let (name, value) = args.split_once(',').expect("name, value");
        let (word, bit) = value.trim().split_once("*32+").expect("w*32+b");
        let value = word.trim().parse::<u32>().unwrap() * 32 + bit.trim().parse::<u32>().unwrap();
        let comment = rest.trim_start().strip_prefix("/*").expect("annotation comment");
        let attrs = comment.split(' ').next().unwrap_or("");
        header.push((name.trim().to_owned(), value, attrs.to_owned()));
    }
    assert!(header.len() > 200, "only {} features parsed from {}", header.len(), path.display());
    let ours: Vec<_> = cpufeatureset::FEATURES
        .iter()
        .map(|f| (f.name.to_owned(), f.value, f.attrs.to_owned()))
        .collect();
    let mut diff = Vec::new();
    for (i, h) in header.iter().enumerate() {
        match ours.get(i) {
            Some(o) if o == h => {}
            o => diff.push(format!("header {h:?}, table {o:?}")),
        }
    }
    for o in ours.iter().skip(header.len()) {
        diff.push(format!("only in the table: {o:?}"));
    }
    assert!(diff.is_empty(), "cpufeatureset.rs differs from the header:\n{}", diff.join("\n"));
}
