/* Exception, interrupt and SYSCALL entry. Every entry builds the same frame on the
 * hypervisor stack — Xen's cpu_user_regs order: r15 ... rdi, error_code:entry_vector,
 * then the hardware frame rip, cs, rflags, rsp, ss — calls Rust with a pointer to it, and
 * returns with iretq from whatever the handler left in the frame. */

    .macro push_gprs
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %rcx
    pushq %rax
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    .endm

    .macro pop_gprs
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rax
    popq %rcx
    popq %rdx
    popq %rsi
    popq %rdi
    .endm

    /* Vectors without a CPU error code push a zero so the frame has one shape. */
    .macro vector_noerr n
    .balign 16
vector_\n:
    pushq $0
    movl $\n, 4(%rsp)
    jmp trap_common
    .endm

    .macro vector_err n
    .balign 16
vector_\n:
    movl $\n, 4(%rsp)
    jmp trap_common
    .endm

    .text
trap_common:
    cld
    push_gprs
    movq %rsp, %rdi
    movabsq $handle_trap, %rax
    call *%rax
    .global return_to_frame
return_to_frame:
    pop_gprs
    addq $8, %rsp          /* error_code:entry_vector */
    .global iretq_to_frame
iretq_to_frame:            /* a fault here is the guest's (handle_trap) */
    iretq

/* SYSCALL from ring 3: a hypercall from the guest kernel, or a system call from guest
 * user mode to bounce to the guest kernel. RSP is still the guest's and no register is
 * free: each CPU's LSTAR names its own stub, which switches to that CPU's stack through
 * its own RIP-relative slots; then the hardware-style frame is built by hand and the
 * exit is through iretq like every other entry. */
    .macro syscall_stub n
syscall_entry_\n:
    movq %rsp, syscall_guest_rsp_\n(%rip)
    movq syscall_stack_top_\n(%rip), %rsp
    pushq $0xe02b                       /* ss: FLAT_RING3_SS64 */
    pushq syscall_guest_rsp_\n(%rip)     /* rsp */
    jmp syscall_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7
    syscall_stub \n
    .endr

syscall_common:
    pushq %r11                          /* rflags */
    pushq $0xe033                       /* cs: FLAT_RING3_CS64 */
    pushq %rcx                          /* rip */
    pushq $0
    movl $0x100, 4(%rsp)                /* entry_vector 0x100: SYSCALL */
    cld
    push_gprs
    movq %rsp, %rdi
    movabsq $handle_syscall, %rax
    call *%rax
    jmp return_to_frame

    .data
    .balign 8
    .irp n, 0,1,2,3,4,5,6,7
syscall_guest_rsp_\n: .quad 0
syscall_stack_top_\n: .quad 0
    .endr

    .section .rodata
    .balign 8
    /* By CPU index: each CPU's SYSCALL stub, and the slot holding its stack top. */
    .global syscall_entries, syscall_stack_slots
syscall_entries:
    .irp n, 0,1,2,3,4,5,6,7
    .quad syscall_entry_\n
    .endr
syscall_stack_slots:
    .irp n, 0,1,2,3,4,5,6,7
    .quad syscall_stack_top_\n
    .endr

    .text
    .balign 16
    .global vector_table
    vector_noerr 0
    vector_noerr 1
    vector_noerr 2
    vector_noerr 3
    vector_noerr 4
    vector_noerr 5
    vector_noerr 6
    vector_noerr 7
    vector_err 8
    vector_noerr 9
    vector_err 10
    vector_err 11
    vector_err 12
    vector_err 13
    vector_err 14
    vector_noerr 15
    vector_noerr 16
    vector_err 17
    vector_noerr 18
    vector_noerr 19
    vector_noerr 20
    vector_err 21
    vector_noerr 22
    vector_noerr 23
    vector_noerr 24
    vector_noerr 25
    vector_noerr 26
    vector_noerr 27
    vector_noerr 28
    vector_err 29
    vector_err 30
    vector_noerr 31
    vector_noerr 32
    vector_noerr 0xf0
    vector_noerr 0xf1
    vector_noerr 0xf2
    vector_noerr 0xff

    .section .rodata
    .balign 8
vector_table:
    .quad vector_0, vector_1, vector_2, vector_3, vector_4, vector_5, vector_6, vector_7
    .quad vector_8, vector_9, vector_10, vector_11, vector_12, vector_13, vector_14, vector_15
    .quad vector_16, vector_17, vector_18, vector_19, vector_20, vector_21, vector_22, vector_23
    .quad vector_24, vector_25, vector_26, vector_27, vector_28, vector_29, vector_30, vector_31
    .global vector_spurious_table
vector_spurious_table:
    .quad vector_32, vector_0xf0, vector_0xff, vector_0xf1, vector_0xf2
