# The fork-safety pass of ffi/fork.ts in machine code, for x86-64: every span of the address space
# marked MADV_DOFORK in the instant before the fork, with no JavaScript running between the two.
# `bash tools/assemble.sh ffi/fork_advise_x86_64.S` prints the bytes ffi/fork.ts embeds
# (FORK_ADVISE_X86_64_HEX); tests/fork_test.ts checks they match.
#
# The engines map new heap pages MADV_DONTFORK. A pass made from JavaScript leaves a window between
# its last madvise and the fork in which the engine may allocate, map a new page, and so leave the
# child a heap with a page missing: the child dies of SIGSEGV at its first allocation there. Here
# the pass runs inside glibc's fork() (the pthread_atfork prepare handler, entry 0) or right before
# a raw clone made by the same code (entry 16): nothing can allocate in between.
#
# The spans table lies 64 KiB after the code (ffi/fork.ts maps code and table together; 64 KiB is
# the largest page size, so the code's page, made read+execute, never holds the table):
#   u64 count, then count × (u64 address, u64 length)
#
# entry 0   void prepare(void)                 the pass (registered with __register_atfork)
# entry 16  i64 advise_clone(i64 flags, i64 clone)
#           the pass; then, when `clone` is not 0, clone(flags, 0, 0, 0, 0) and its raw result
#           (the child's pid, 0 in the child, -errno); otherwise the pass's result: 0, or -EINVAL
#           when a span met a VM_IO mapping (whose rest was then not advised: ffi/fork.ts
#           recomputes the spans).

        .intel_syntax noprefix
        .text

        .set TABLE, 65536
        .set SYS_MADVISE, 28
        .set SYS_CLONE, 56
        .set MADV_DOFORK, 11
        .set EINVAL, 22

.Lstart:
prepare:
        jmp     advise

        .org 16
advise_clone:
        push    rdi
        push    rsi
        call    advise
        pop     rsi
        pop     rdi
        test    rsi, rsi
        jz      1f
        mov     eax, SYS_CLONE
        xor     esi, esi
        xor     edx, edx
        xor     r10d, r10d
        xor     r8d, r8d
        syscall                         # the child returns from here too, with rax 0
1:      ret

# i64 advise(void): clobbers only caller-saved registers (rax, rcx, rdx, rsi, rdi, r8-r11).
advise:
        lea     r9, [rip + .Lstart + TABLE]
        mov     r8, [r9]                # count
        add     r9, 8
        xor     r10d, r10d              # the result
2:      test    r8, r8
        jz      4f
        mov     eax, SYS_MADVISE
        mov     rdi, [r9]
        mov     rsi, [r9 + 8]
        mov     edx, MADV_DOFORK
        syscall
        cmp     rax, -EINVAL
        jne     3f
        mov     r10, rax
3:      add     r9, 16
        dec     r8
        jmp     2b
4:      mov     rax, r10
        ret
