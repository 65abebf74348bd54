/* Where an application processor starts (smp.rs copies these bytes to TRAMPOLINE_PADDR,
 * 0x8000, and points the SIPI there): real mode -> protected mode -> long mode on the
 * boot page tables (which map the first 4 GiB at 0 as well), then a jump to the
 * hypervisor's `ap_start64` on the stack the boot CPU wrote into the slots below. Every
 * address inside is its offset from `ap_trampoline` plus 0x8000, so the code runs where
 * it is copied. */

    .set TRAMP, 0x8000

    .section .rodata
    .balign 16
    .global ap_trampoline, ap_trampoline_end
ap_trampoline:
    .code16
    jmp 1f
    .balign 8
    /* Slots the boot CPU fills before each SIPI (offsets 8, 16, 24, 32). */
tramp_cr3:   .quad 0
tramp_stack: .quad 0
tramp_entry: .quad 0
tramp_cpu:   .quad 0
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff      /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff      /* 0x10: data */
    .quad 0x00af9a000000ffff      /* 0x18: 64-bit code */
tramp_gdt_ptr:
    .word 31
    .long tramp_gdt - ap_trampoline + TRAMP

1:  cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl tramp_gdt_ptr - ap_trampoline + TRAMP
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(2f - ap_trampoline + TRAMP)

    .code32
2:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5), %eax           /* PAE */
    movl %eax, %cr4
    movl tramp_cr3 - ap_trampoline + TRAMP, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx        /* EFER: LME, NXE (the real tables use NX), SCE */
    rdmsr
    orl $((1 << 8) | (1 << 11) | (1 << 0)), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax         /* PG | WP | PE */
    movl %eax, %cr0
    ljmpl $0x18, $(3f - ap_trampoline + TRAMP)

    .code64
3:  movq tramp_stack - ap_trampoline + TRAMP, %rsp
    movq tramp_cpu - ap_trampoline + TRAMP, %rdi
    movq tramp_entry - ap_trampoline + TRAMP, %rax
    xorl %ebp, %ebp
    call *%rax
4:  cli
    hlt
    jmp 4b
    .fill 256 - (. - ap_trampoline), 1, 0xcc
ap_trampoline_end:
