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
    movq $boot_stack_top, %rsp
    movq %rsi, %rdi
    call pv_main
1:  ud2
    jmp 1b

    /* The hypervisor fills this page with one 32-byte stub per hypercall. */
    .section .data.hypercall_page, "aw"
    .balign 4096
    .global hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .section .bss
    .balign 16
boot_stack:
    .skip 64 * 1024
boot_stack_top:
