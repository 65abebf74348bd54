/* Xen ELF notes, the entry point and the hypercall page.
 *
 * Xen enters _start in ring 3 (kernel mode of a 64-bit PV guest) with rsi = the virtual
 * address of start_info, rsp = a boot stack inside the initial mapping and events masked. */

    .set VIRT_BASE, 0xffffffff80000000

    .macro xen_note_str type, text
    .balign 4
    .long 4
    .long 2f - 1f
    .long \type
    .asciz "Xen"
1:  .asciz "\text"
2:  .balign 4
    .endm

    .macro xen_note_quad type, value
    .balign 4
    .long 4
    .long 8
    .long \type
    .asciz "Xen"
    .quad \value
    .endm

    .section .note.Xen, "a", @note
    xen_note_str  6, "pv-guest"                 /* XEN_ELFNOTE_GUEST_OS */
    xen_note_str  7, "0.1"                      /* XEN_ELFNOTE_GUEST_VERSION */
    xen_note_str  5, "xen-3.0"                  /* XEN_ELFNOTE_XEN_VERSION */
    xen_note_str  8, "generic"                  /* XEN_ELFNOTE_LOADER */
    xen_note_quad 3, VIRT_BASE                  /* XEN_ELFNOTE_VIRT_BASE */
    xen_note_quad 4, VIRT_BASE                  /* XEN_ELFNOTE_PADDR_OFFSET */
    xen_note_quad 1, _start                     /* XEN_ELFNOTE_ENTRY */
    xen_note_quad 2, hypercall_page             /* XEN_ELFNOTE_HYPERCALL_PAGE */
    xen_note_str 10, "!writable_page_tables"    /* XEN_ELFNOTE_FEATURES */

    .section .text.head, "ax"
    .global _start
_start:
    cld
    movq %rsp, boot_initial_rsp(%rip)   /* top of Xen's boot stack: ends the initial layout */
    movq $boot_stack_top, %rsp
    movq %rsi, %rdi
    call pv_main
1:  ud2
    jmp 1b

/* A secondary vCPU starts here (VCPUOP_initialise's user_regs): rsp = the top of its
 * own stack (16-byte aligned), rdi = its vCPU id, events masked. */
    .global secondary_entry
secondary_entry:
    cld
    call pv_secondary
1:  ud2
    jmp 1b

/* ---------------------------------------------------------------- traps and callbacks
 *
 * Xen bounces an exception, event upcall or failsafe callback onto the kernel stack as
 * (low to high) rcx, r11, [error code], rip, cs, rflags, rsp, ss: the hardware frame
 * with rcx and r11 below it (Xen returns with sysret when it can). Every entry pops
 * those two back into their registers, pushes a uniform (error code, vector) pair and
 * saves all general registers: a `TrapFrame` (traps.rs), passed to `pv_trap`. The way
 * out is the `iret` hypercall: Xen takes iret_context (rax, r11, rcx, flags, rip, cs,
 * rflags, rsp, ss) from the stack, restores every register and the event mask. */

    .macro trap_entry vec, has_err
    .global trap_entry_\vec
trap_entry_\vec:
    popq %rcx
    popq %r11
    .if \has_err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp trap_common
    .endm

    .section .text
    trap_entry 0, 0     /* #DE */
    trap_entry 1, 0     /* #DB */
    trap_entry 2, 0     /* NMI */
    trap_entry 3, 0     /* #BP */
    trap_entry 4, 0     /* #OF */
    trap_entry 5, 0     /* #BR */
    trap_entry 6, 0     /* #UD */
    trap_entry 7, 0     /* #NM */
    trap_entry 8, 1     /* #DF */
    trap_entry 9, 0     /* coprocessor segment overrun */
    trap_entry 10, 1    /* #TS */
    trap_entry 11, 1    /* #NP */
    trap_entry 12, 1    /* #SS */
    trap_entry 13, 1    /* #GP */
    trap_entry 14, 1    /* #PF */
    trap_entry 15, 0    /* reserved */
    trap_entry 16, 0    /* #MF */
    trap_entry 17, 1    /* #AC */
    trap_entry 18, 0    /* #MC */
    trap_entry 19, 0    /* #XM */

    /* Event upcall: the frame of an exception without error code. */
    .global hypervisor_callback
hypervisor_callback:
    popq %rcx
    popq %r11
    pushq $0
    pushq $256
    jmp trap_common

    /* Failsafe callback: rcx, r11, ds, es, fs, gs, then the iret frame. The segment
     * values that failed to load are dropped (64-bit data segments stay NULL). */
    .global failsafe_callback
failsafe_callback:
    popq %rcx
    popq %r11
    addq $32, %rsp
    pushq $0
    pushq $257
    jmp trap_common

trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %rsp, %rbx             /* callee-saved: the frame */
    andq $-16, %rsp
    call pv_trap
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp              /* vector, error code */
    pushq $0                    /* iret_context.flags: not VGCF_in_syscall */
    testb $1, pv_iret_via_syscall(%rip)
    jnz 1f
    jmp hypercall_page + 23 * 32 /* the page's iret stub pushes rcx, r11, rax */
1:  pushq %rcx                  /* what post-XSA-466 Linux does inline */
    pushq %r11
    pushq %rax
    movl $23, %eax
    syscall
    ud2                         /* iret never returns here */

/* ---------------------------------------------------------------- fault probes
 *
 * Each probe runs one instruction that may fault and returns 0 in rax if it did not.
 * The exception table maps the faulting rip to a fixup rip; the trap handler resumes
 * there with rax = vector + 1. */

    .macro extable fault, fixup
    .pushsection .ex_table, "a"
    .balign 8
    .quad \fault, \fixup
    .popsection
    .endm

    .global probe_ud2
probe_ud2:
    xorl %eax, %eax
1:  ud2
2:  ret
    extable 1b, 2b

    .global probe_int3
probe_int3:
    xorl %eax, %eax
    int3
1:  ret
    extable 1b, 1b              /* #BP is a trap: rip is already past int3 */

    .global probe_hlt
probe_hlt:
    xorl %eax, %eax
1:  hlt
2:  ret
    extable 1b, 2b

    .global probe_div0
probe_div0:
    xorl %eax, %eax
    xorl %edx, %edx
    xorl %ecx, %ecx
1:  divl %ecx
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_wrmsr(msr: u32, value: u64) */
    .global probe_wrmsr
probe_wrmsr:
    movl %edi, %ecx
    movq %rsi, %rax
    movq %rsi, %rdx
    shrq $32, %rdx
1:  wrmsr
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_xsetbv(index: u32, value: u64) */
    .global probe_xsetbv
probe_xsetbv:
    movl %edi, %ecx
    movq %rsi, %rax
    movq %rsi, %rdx
    shrq $32, %rdx
1:  xsetbv
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_xgetbv(index: u32, out: *mut u64) */
    .global probe_xgetbv
probe_xgetbv:
    movl %edi, %ecx
1:  xgetbv
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, (%rsi)
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_ymm_copy(src: *const [u8; 32], dst: *mut [u8; 32]): through %ymm1 */
    .global probe_ymm_copy
probe_ymm_copy:
    xorl %eax, %eax
1:  vmovdqu (%rdi), %ymm1
    vmovdqu %ymm1, (%rsi)
    vzeroupper
2:  ret
    extable 1b, 2b

    /* probe_rdmsr(msr: u32, out: *mut u64) */
    .global probe_rdmsr
probe_rdmsr:
    movl %edi, %ecx
1:  rdmsr
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, (%rsi)
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_inb(port: u16): in %dx, %al (its value is dropped) */
    .global probe_inb
probe_inb:
    movl %edi, %edx
    xorl %eax, %eax
1:  inb %dx, %al
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_read(addr: *const u64, out: *mut u64) */
    .global probe_read
probe_read:
1:  movq (%rdi), %rax
    movq %rax, (%rsi)
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_fs_read(sel: u16, addr: u64, out: *mut u64): loads %fs with sel, reads
     * %fs:(addr) (the new FS base plus addr), and loads %fs with the null selector */
    .global probe_fs_read
probe_fs_read:
    xorl %eax, %eax
1:  movw %di, %fs
3:  movq %fs:(%rsi), %rcx
    movq %rcx, (%rdx)
2:  xorl %ecx, %ecx
    movw %cx, %fs               /* null again: nothing to reload after a context switch */
    ret
    extable 1b, 2b
    extable 3b, 2b

    /* probe_lsl(sel: u16, out: *mut [u32; 2]): the segment limit lsl reads for sel, and
     * ZF (1: the descriptor was usable) */
    .global probe_lsl
probe_lsl:
    xorl %eax, %eax
    xorl %ecx, %ecx
    xorl %r8d, %r8d
1:  lsll %edi, %ecx
    setz %r8b
    movl %ecx, (%rsi)
    movl %r8d, 4(%rsi)
2:  ret
    extable 1b, 2b

    /* probe_write(addr: *mut u64, value: u64) */
    .global probe_write
probe_write:
1:  movq %rsi, (%rdi)
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* probe_gs_read(out: *mut u64): the u64 at %gs:0 (the kernel GS base) */
    .global probe_gs_read
probe_gs_read:
1:  movq %gs:0, %rax
    movq %rax, (%rdi)
    xorl %eax, %eax
2:  ret
    extable 1b, 2b

    /* The hypervisor fills this page with one 32-byte stub per hypercall. */
    .section .data.hypercall_page, "aw"
    .balign 4096
    .global hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .section .data
    .balign 8
    .global boot_initial_rsp
boot_initial_rsp:
    .quad 0

    .section .bss
    .balign 16
    .balign 4096
    .global boot_stack
boot_stack:
    .skip 256 * 1024
boot_stack_top:

    /* The secondary vCPUs' stacks (smp.rs: AP_STACK_SIZE each, MAX_VCPUS - 1 of them). */
    .balign 4096
    .global ap_stacks
ap_stacks:
    .skip 128 * 1024
    .global ap_stacks_end
ap_stacks_end:
