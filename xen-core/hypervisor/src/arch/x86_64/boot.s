/* Multiboot (v1) entry: QEMU's -kernel loader enters here in 32-bit protected mode with
 * paging off, eax = 0x2BADB002 and ebx = the multiboot information block.
 *
 * Early page tables map the first 4 GiB three times with 2 MiB pages: identity (so this
 * code keeps running after paging is on), at the direct map (L4 slot 262) and at
 * XEN_VIRT_START (slot 261, where the rest of the image is linked). kmain builds the real
 * tables and drops the identity map. */

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00010003     /* page-align modules, memory info, address fields */
    .set XEN_VIRT_START, 0xffff82d040000000

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header           /* header_addr */
    .long __image_start_phys  /* load_addr */
    .long __load_end_phys     /* load_end_addr */
    .long __bss_end_phys      /* bss_end_addr */
    .long _start32            /* entry_addr */

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    movl %eax, boot_mb_magic
    movl %ebx, boot_mb_info
    movl $boot_stack_top, %esp

    /* Long mode is required: CPUID 0x80000001 EDX bit 29. */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc no_long_mode

    /* Zero PML4, PDPT, high PDPT and the four page directories. */
    movl $boot_pml4, %edi
    movl $(7 * 4096 / 4), %ecx
    xorl %eax, %eax
    rep stosl

    /* PML4[0] and PML4[262] -> boot_pdpt (identity and direct map). */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl %eax, boot_pml4 + 262 * 8
    /* PML4[261] -> boot_pdpt_high; its entry for XEN_VIRT_START -> the first PD. */
    movl $boot_pdpt_high, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4 + 261 * 8
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt_high + ((XEN_VIRT_START >> 30) & 0x1ff) * 8

    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $12, %eax
    addl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt(, %ecx, 8)
    incl %ecx
    cmpl $4, %ecx
    jb 1b

    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax               /* present, writable, 2 MiB */
    movl %eax, boot_pd(, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jb 2b

    movl %cr4, %eax
    orl $(1 << 5), %eax           /* PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx        /* EFER */
    rdmsr
    orl $(1 << 8), %eax           /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax         /* PG | WP | PE */
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $start64_low

no_long_mode:
    /* Say so on COM1 (QEMU's UART needs no setup) and stop. */
    movl $no_lm_msg, %esi
3:  lodsb
    testb %al, %al
    jz 4f
    movw $0x3f8, %dx
    outb %al, %dx
    jmp 3b
4:  hlt
    jmp 4b

    .code64
start64_low:
    movabsq $start64, %rax
    jmp *%rax

    .section .data.boot, "aw"
no_lm_msg:
    .asciz "xen-core: CPU has no long mode\n"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff      /* 0x08: 64-bit ring-0 code */
    .quad 0x00cf92000000ffff      /* 0x10: ring-0 data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
    .balign 4
    .global boot_mb_magic, boot_mb_info
boot_mb_magic: .long 0
boot_mb_info:  .long 0

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt:      .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096
boot_stack:     .skip 4096
boot_stack_top:

    /* From here on: linked at XEN_VIRT_START. */
    .text
start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $cpu0_stack_top, %rsp
    xorl %ebp, %ebp
    movl boot_mb_magic, %edi
    movl boot_mb_info, %esi
    movabsq $kmain, %rax
    call *%rax
5:  cli
    hlt
    jmp 5b

    .bss
    .balign 4096
    .global cpu0_stack_bottom, cpu0_stack_top
cpu0_stack_bottom:
    /* 256 KiB: kmain unpacks a compressed dom0 kernel here (xz4rust's decoder state
     * alone is about 32 KiB of locals, ~100 KiB of stack in all). */
    .skip 256 * 1024
cpu0_stack_top:
    /* Entries from guests (TSS.RSP0, SYSCALL) land on each CPU's stack (percpu.rs);
     * kmain's boot stack above is abandoned once the first guest runs. */
