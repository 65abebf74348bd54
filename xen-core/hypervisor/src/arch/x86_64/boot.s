/* Multiboot (v1) entry: QEMU's -kernel loader enters here in 32-bit protected mode
 * with paging off, eax = 0x2BADB002 and ebx = the multiboot information block.
 * We identity-map the first 4 GiB with 2 MiB pages, enter long mode and call
 * kmain(magic, info). */

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00010003     /* page-align modules, memory info, address fields */

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header       /* header_addr */
    .long __image_start   /* load_addr */
    .long __load_end      /* load_end_addr */
    .long __bss_end       /* bss_end_addr */
    .long _start32        /* entry_addr */

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

    /* Zero PML4, PDPT and the four page directories. */
    movl $boot_pml4, %edi
    movl $(6 * 4096 / 4), %ecx
    xorl %eax, %eax
    rep stosl

    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4

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
    ljmp $0x08, $start64

no_long_mode:
    /* Say so on COM1 (no init needed for QEMU's UART) and stop. */
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
start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    movl boot_mb_magic, %edi
    movl boot_mb_info, %esi
    call kmain
5:  cli
    hlt
    jmp 5b

    .section .rodata
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

    .section .data
    .balign 4
boot_mb_magic: .long 0
boot_mb_info:  .long 0

    .section .bss
    .balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4 * 4096
    .balign 16
boot_stack: .skip 64 * 1024
boot_stack_top:
