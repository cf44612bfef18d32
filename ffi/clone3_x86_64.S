# clone3(2) for a native child, for x86-64 (see spawnProgramInto in ffi/spawn.ts, which embeds the
# assembled bytes as CLONE3_X86_64_HEX; `bash tools/assemble.sh ffi/clone3_x86_64.S` prints them and
# tests/spawn_test.ts checks they match).
#
# glibc exports no clone3 wrapper, and a raw clone3 made through the FFI would return, in a child
# that shares the runtime's memory, into the engine's frames on a stack of its own. This does what
# glibc's clone() does for its `fn`: in the child (the call's result 0, its stack pointer the
# stack's top that the kernel set) it calls fn(arg) — the native runner, which never returns (an
# execve or exit_group ends it; should it return, its result is the exit status).
#
# entry 0   i64 clone3_call(struct clone_args *args, u64 size, void (*fn)(void *), void *arg)
#           the raw result: the child's pid, or -errno (in the child it does not return)

        .intel_syntax noprefix
        .text

        .set SYS_CLONE3, 435
        .set SYS_EXIT, 60

        .globl hako_clone3
hako_clone3:
        mov     r8, rdx                 # fn (a system call keeps r8 and r9; it clobbers rcx, r11)
        mov     r9, rcx                 # arg
        mov     eax, SYS_CLONE3
        syscall
        test    rax, rax
        jnz     1f
        xor     ebp, ebp                # the child, on its own stack (16-byte aligned): fn(arg)
        mov     rdi, r9
        call    r8
        mov     edi, eax
        mov     eax, SYS_EXIT
        syscall
        hlt
1:      ret
