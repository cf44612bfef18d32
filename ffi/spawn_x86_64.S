# hako's syscall-program runner for x86-64 (see ffi/spawn.ts, which embeds the assembled bytes;
# `bash tools/assemble.sh` regenerates them and tests/spawn_test.ts checks they match).
#
# It is the `fn` that glibc's clone(fn, stack, CLONE_VM | ..., program) calls in the new child,
# on a stack of its own: the child shares the runtime's memory, so it runs no JavaScript and
# touches nothing but its stack and the program's scratch slots. It runs the program's ops in
# order and ends in execve (or exit_group when it runs off the end).
#
# The layout's constants (HDR_*, OP_*, …) come from ffi/_op_layout.inc, which tools/gen_op_layout.ts
# generates from ffi/_op_layout.ts, the table the TypeScript encoder uses too.
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

        .include "_op_layout.inc"
        .intel_syntax noprefix
        .text
        .globl hako_run_program
hako_run_program:
        mov     r12, rdi                # the program
        mov     r13, [r12 + HDR_COUNT]  # op count
        xor     r14d, r14d              # op index
        lea     r15, [r12 + HDR_BYTES]  # first op
.Lloop:
        cmp     r14, r13
        jae     .Ldone
        imul    rbx, r14, OP_BYTES
        add     rbx, r15                # rbx: this op
        mov     rax, [rbx + OP_NR]
        cmp     rax, OP_JUMP
        je      .Ljump
        cmp     rax, OP_CLONE
        je      .Lclone
        cmp     rax, OP_REMOUNT_READONLY
        je      .Lremount
        mov     rdi, [rbx + OP_A0]
        mov     rsi, [rbx + OP_A1]
        mov     rdx, [rbx + OP_A2]
        mov     r10, [rbx + OP_A3]
        mov     r8, [rbx + OP_A4]
        mov     r9, [rbx + OP_A5]
        mov     rcx, [rbx + OP_INDIRECT]
        test    cl, IND_A0
        jz      1f
        mov     rdi, [rdi]
1:      test    cl, IND_A1
        jz      1f
        mov     rsi, [rsi]
1:      test    cl, IND_A2
        jz      1f
        mov     rdx, [rdx]
1:      test    cl, IND_A3
        jz      1f
        mov     r10, [r10]
1:      test    cl, IND_A4
        jz      1f
        mov     r8, [r8]
1:      test    cl, IND_A5
        jz      1f
        mov     r9, [r9]
1:      syscall
.Lresult:                               # rax: the result, rbx: the op
        cmp     rax, -4095
        jae     .Lerror
        mov     rcx, [rbx + OP_STORE]
        test    rcx, rcx
        jz      1f
        mov     [rcx], rax
1:      mov     rcx, [rbx + OP_EXPECT]
        cmp     rcx, ANY_RESULT
        je      .Lnext
        cmp     rax, rcx
        je      .Lnext
        xor     eax, eax                # an unexpected result: errno 0
        jmp     .Lfail
.Lnext:
        inc     r14
        jmp     .Lloop
.Ljump:
        mov     r14, [rbx + OP_A0]
        jmp     .Lloop
.Lclone:                                # clone(a0, a1, NULL, NULL, 0): the child on its own stack
        mov     eax, NR_X86_64_CLONE
        mov     rdi, [rbx + OP_A0]
        mov     rsi, [rbx + OP_A1]
        xor     edx, edx
        xor     r10d, r10d
        xor     r8d, r8d
        syscall
        test    rax, rax
        jnz     1f
        mov     r14, [rbx + OP_A2]         # the child (rbx, r12-r15 are kept by clone)
        jmp     .Lloop
1:      cmp     rax, -4095
        jae     .Lerror
        mov     rcx, [rbx + OP_A3]
        test    rcx, rcx
        jz      .Lnext
        mov     [rcx], eax              # the pid, as a u32
        jmp     .Lnext
.Lerror:
        neg     rax                     # the errno
        mov     rcx, [rbx + OP_ON_ERR_A]
        cmp     eax, ecx
        je      1f
        mov     rcx, [rbx + OP_ON_ERR_B]
        cmp     eax, ecx
        jne     .Lfail
1:      shr     rcx, 32
        mov     r14, rcx
        jmp     .Lloop
.Lfail:                                 # eax: errno, r14: op index
        sub     rsp, 16
        mov     dword ptr [rsp], ERR_MAGIC      # "ERR!"
        mov     [rsp + REC_OP], r14d
        mov     [rsp + REC_ERRNO], eax
        mov     eax, NR_X86_64_WRITE    # write(report_fd, record, 12)
        mov     rdi, [r12 + HDR_REPORT_FD]
        mov     rsi, rsp
        mov     edx, REC_BYTES
        syscall
        mov     eax, NR_X86_64_EXIT_GROUP # exit_group(126)
        mov     edi, FAILED_EXIT
        syscall
        hlt
.Ldone:
        mov     eax, NR_X86_64_EXIT_GROUP # exit_group(0)
        xor     edi, edi
        syscall
        hlt
.Lremount:                              # statfs(a0), then mount(NULL, a0, NULL, flags, NULL)
        sub     rsp, STATFS_STACK       # struct statfs (120 bytes)
        mov     eax, NR_X86_64_STATFS
        mov     rdi, [rbx + OP_A0]
        mov     rsi, rsp
        syscall
        mov     rcx, [rsp + STATFS_F_FLAGS]
        add     rsp, STATFS_STACK
        cmp     rax, -4095
        jae     .Lerror
        mov     r10, [rbx + OP_A1]      # base flags
        mov     rdx, rcx
        and     rdx, ST_SAME_AS_MS      # ST_ and MS_ agree: RDONLY NOSUID NODEV NOEXEC NOATIME NODIRATIME
        or      r10, rdx
        test    rcx, ST_RELATIME
        jz      1f
        or      r10, MS_RELATIME
1:      test    rcx, ST_NOSYMFOLLOW
        jz      1f
        or      r10, MS_NOSYMFOLLOW
1:      test    r10, MS_ATIME_ANY       # no MS_NOATIME or MS_RELATIME: MS_STRICTATIME
        jnz     1f
        or      r10, MS_STRICTATIME
1:      mov     eax, NR_X86_64_MOUNT
        xor     edi, edi
        mov     rsi, [rbx + OP_A0]
        xor     edx, edx
        xor     r8d, r8d
        syscall
        jmp     .Lresult
