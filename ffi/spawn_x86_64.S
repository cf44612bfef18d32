# hako's syscall-program runner for x86-64 (see ffi/spawn.ts, which embeds the assembled bytes;
# `bash tools/assemble.sh` regenerates them and tests/spawn_test.ts checks they match).
#
# It is the `fn` that glibc's clone(fn, stack, CLONE_VM | ..., program) calls in the new child,
# on a stack of its own: the child shares the runtime's memory, so it runs no JavaScript and
# touches nothing but its stack and the program's scratch slots. It runs the program's ops in
# order and ends in execve (or exit_group when it runs off the end).
#
# Program: u64 count, i64 report_fd, then `count` ops of 12 u64 each:
#   +0  nr        syscall number; -2 = remount read-only keeping flags (a0 path, a1 base
#                 MS_* flags), -3 = jump to op a0, -4 = clone (a0 flags, a1 the new child's
#                 stack top): the child goes on at op a2, the parent stores the child's pid at
#                 a3 (unless 0) and goes on with the next op
#   +8  a0 … +48 a5
#   +56 store     address where the result is stored (0: not stored)
#   +64 expect    the result required (-1: any non-negative result)
#   +72 on_err_a  low 32 bits an errno, high 32 bits the op to go to when the call fails with it
#   +80 on_err_b  a second such rule (errno 0: none)
#   +88 indirect  bit i set: argument i is the address of a u64 holding the value
# A failing op writes { u32 "ERR!", u32 op index, u32 errno (0: unexpected result) } to report_fd
# and exits with 126.

        .intel_syntax noprefix
        .text
        .globl hako_run_program
hako_run_program:
        mov     r12, rdi                # the program
        mov     r13, [r12]              # op count
        xor     r14d, r14d              # op index
        lea     r15, [r12 + 16]         # first op
.Lloop:
        cmp     r14, r13
        jae     .Ldone
        imul    rbx, r14, 96
        add     rbx, r15                # rbx: this op
        mov     rax, [rbx]
        cmp     rax, -3
        je      .Ljump
        cmp     rax, -4
        je      .Lclone
        cmp     rax, -2
        je      .Lremount
        mov     rdi, [rbx + 8]
        mov     rsi, [rbx + 16]
        mov     rdx, [rbx + 24]
        mov     r10, [rbx + 32]
        mov     r8, [rbx + 40]
        mov     r9, [rbx + 48]
        mov     rcx, [rbx + 88]
        test    cl, 1
        jz      1f
        mov     rdi, [rdi]
1:      test    cl, 2
        jz      1f
        mov     rsi, [rsi]
1:      test    cl, 4
        jz      1f
        mov     rdx, [rdx]
1:      test    cl, 8
        jz      1f
        mov     r10, [r10]
1:      test    cl, 16
        jz      1f
        mov     r8, [r8]
1:      test    cl, 32
        jz      1f
        mov     r9, [r9]
1:      syscall
.Lresult:                               # rax: the result, rbx: the op
        cmp     rax, -4095
        jae     .Lerror
        mov     rcx, [rbx + 56]
        test    rcx, rcx
        jz      1f
        mov     [rcx], rax
1:      mov     rcx, [rbx + 64]
        cmp     rcx, -1
        je      .Lnext
        cmp     rax, rcx
        je      .Lnext
        xor     eax, eax                # an unexpected result: errno 0
        jmp     .Lfail
.Lnext:
        inc     r14
        jmp     .Lloop
.Ljump:
        mov     r14, [rbx + 8]
        jmp     .Lloop
.Lclone:                                # clone(a0, a1, NULL, NULL, 0): the child on its own stack
        mov     eax, 56
        mov     rdi, [rbx + 8]
        mov     rsi, [rbx + 16]
        xor     edx, edx
        xor     r10d, r10d
        xor     r8d, r8d
        syscall
        test    rax, rax
        jnz     1f
        mov     r14, [rbx + 24]         # the child (rbx, r12-r15 are kept by clone)
        jmp     .Lloop
1:      cmp     rax, -4095
        jae     .Lerror
        mov     rcx, [rbx + 32]
        test    rcx, rcx
        jz      .Lnext
        mov     [rcx], eax              # the pid, as a u32
        jmp     .Lnext
.Lerror:
        neg     rax                     # the errno
        mov     rcx, [rbx + 72]
        cmp     eax, ecx
        je      1f
        mov     rcx, [rbx + 80]
        cmp     eax, ecx
        jne     .Lfail
1:      shr     rcx, 32
        mov     r14, rcx
        jmp     .Lloop
.Lfail:                                 # eax: errno, r14: op index
        sub     rsp, 16
        mov     dword ptr [rsp], 0x21525245     # "ERR!"
        mov     [rsp + 4], r14d
        mov     [rsp + 8], eax
        mov     eax, 1                  # write(report_fd, record, 12)
        mov     rdi, [r12 + 8]
        mov     rsi, rsp
        mov     edx, 12
        syscall
        mov     eax, 231                # exit_group(126)
        mov     edi, 126
        syscall
        hlt
.Ldone:
        mov     eax, 231                # exit_group(0)
        xor     edi, edi
        syscall
        hlt
.Lremount:                              # statfs(a0), then mount(NULL, a0, NULL, flags, NULL)
        sub     rsp, 128                # struct statfs (120 bytes)
        mov     eax, 137
        mov     rdi, [rbx + 8]
        mov     rsi, rsp
        syscall
        mov     rcx, [rsp + 80]         # f_flags
        add     rsp, 128
        cmp     rax, -4095
        jae     .Lerror
        mov     r10, [rbx + 16]         # base flags
        mov     rdx, rcx
        and     rdx, 0xc0f              # ST_ and MS_ agree: RDONLY NOSUID NODEV NOEXEC NOATIME NODIRATIME
        or      r10, rdx
        test    rcx, 0x1000             # ST_RELATIME
        jz      1f
        or      r10, 0x200000           # MS_RELATIME
1:      test    rcx, 0x2000             # ST_NOSYMFOLLOW
        jz      1f
        or      r10, 0x100              # MS_NOSYMFOLLOW
1:      test    r10, 0x200400           # no MS_NOATIME or MS_RELATIME: MS_STRICTATIME
        jnz     1f
        or      r10, 0x1000000
1:      mov     eax, 165
        xor     edi, edi
        mov     rsi, [rbx + 8]
        xor     edx, edx
        xor     r8d, r8d
        syscall
        jmp     .Lresult
