// hako's syscall-program runner for aarch64: ffi/spawn_x86_64.S's semantics, op for op (see that
// file for the program's layout, and ffi/_op_layout.ts, the table ffi/_op_layout.inc is generated
// from). ffi/spawn.ts embeds the assembled bytes as RUNNER_AARCH64_HEX; `bash tools/assemble.sh
// ffi/spawn_aarch64.S` regenerates them and tests/spawn_test.ts checks they match.
//
// It is the `fn` glibc's clone(fn, stack, CLONE_VM | ..., program) calls in the new child (x0: the
// program), on a stack of its own. Linux's aarch64 syscall ABI: `svc #0`, the number in x8, the
// arguments in x0-x5, the result in x0; every other register is kept, so the runner's state lives
// in x19-x23 across calls (and across clone: the child gets the parent's registers, its own sp).
//
// What was run where: tests/spawn_aarch64_test.ts runs this code under qemu-user (qemu-aarch64-
// static) in a static harness (tests/fixtures/runner_harness.c); it was never run on aarch64
// hardware, nor its clone with namespaces, mount or pivot_root (see README.md).

        .include "_op_layout.inc"

        // a 32-bit constant into a register, whatever its bits
        .macro  mov32 reg, value
        movz    \reg, #((\value) & 0xffff)
        movk    \reg, #(((\value) >> 16) & 0xffff), lsl #16
        .endm

        .text
        .globl hako_run_program
hako_run_program:
        mov     x19, x0                         // the program
        ldr     x20, [x19, #HDR_COUNT]          // op count
        mov     x21, #0                         // op index
        add     x22, x19, #HDR_BYTES            // first op
.Lloop:
        cmp     x21, x20
        b.hs    .Ldone
        mov     x9, #OP_BYTES
        madd    x23, x21, x9, x22               // x23: this op
        ldr     x8, [x23, #OP_NR]
        cmn     x8, #(-OP_JUMP)
        b.eq    .Ljump
        cmn     x8, #(-OP_CLONE)
        b.eq    .Lclone
        cmn     x8, #(-OP_REMOUNT_READONLY)
        b.eq    .Lremount
        ldp     x0, x1, [x23, #OP_A0]
        ldp     x2, x3, [x23, #OP_A2]
        ldp     x4, x5, [x23, #OP_A4]
        ldr     x9, [x23, #OP_INDIRECT]
        tst     x9, #IND_A0
        b.eq    1f
        ldr     x0, [x0]
1:      tst     x9, #IND_A1
        b.eq    1f
        ldr     x1, [x1]
1:      tst     x9, #IND_A2
        b.eq    1f
        ldr     x2, [x2]
1:      tst     x9, #IND_A3
        b.eq    1f
        ldr     x3, [x3]
1:      tst     x9, #IND_A4
        b.eq    1f
        ldr     x4, [x4]
1:      tst     x9, #IND_A5
        b.eq    1f
        ldr     x5, [x5]
1:      svc     #0
.Lresult:                                       // x0: the result, x23: the op
        cmn     x0, #4095                       // -4095..-1: an errno
        b.hs    .Lerror
        ldr     x9, [x23, #OP_STORE]
        cbz     x9, 1f
        str     x0, [x9]
1:      ldr     x9, [x23, #OP_EXPECT]
        cmn     x9, #(-ANY_RESULT)
        b.eq    .Lnext
        cmp     x0, x9
        b.eq    .Lnext
        mov     x0, #0                          // an unexpected result: errno 0
        b       .Lfail
.Lnext:
        add     x21, x21, #1
        b       .Lloop
.Ljump:
        ldr     x21, [x23, #OP_A0]
        b       .Lloop
.Lclone:                                        // clone(a0, a1, NULL, 0, NULL): the child on its own stack
        ldp     x0, x1, [x23, #OP_A0]           // (aarch64's order: flags, newsp, parent_tid, tls, child_tid)
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #NR_AARCH64_CLONE
        svc     #0
        cbnz    x0, 1f
        ldr     x21, [x23, #OP_A2]              // the child (x19-x23 are kept by clone)
        b       .Lloop
1:      cmn     x0, #4095
        b.hs    .Lerror
        ldr     x9, [x23, #OP_A3]
        cbz     x9, .Lnext
        str     w0, [x9]                        // the pid, as a u32
        b       .Lnext
.Lerror:
        neg     x0, x0                          // the errno
        ldr     x9, [x23, #OP_ON_ERR_A]
        cmp     w0, w9
        b.eq    1f
        ldr     x9, [x23, #OP_ON_ERR_B]
        cmp     w0, w9
        b.ne    .Lfail
1:      lsr     x21, x9, #32
        b       .Lloop
.Lfail:                                         // w0: errno, x21: op index
        sub     sp, sp, #16
        mov32   w9, ERR_MAGIC                   // "ERR!"
        str     w9, [sp]
        str     w21, [sp, #REC_OP]
        str     w0, [sp, #REC_ERRNO]
        ldr     x0, [x19, #HDR_REPORT_FD]       // write(report_fd, record, 12)
        mov     x1, sp
        mov     x2, #REC_BYTES
        mov     x8, #NR_AARCH64_WRITE
        svc     #0
        mov     x0, #FAILED_EXIT                // exit_group(126)
        mov     x8, #NR_AARCH64_EXIT_GROUP
        svc     #0
        brk     #0
.Ldone:
        mov     x0, #0                          // exit_group(0)
        mov     x8, #NR_AARCH64_EXIT_GROUP
        svc     #0
        brk     #0
.Lremount:                                      // statfs(a0), then mount(NULL, a0, NULL, flags, NULL)
        sub     sp, sp, #STATFS_STACK           // struct statfs (120 bytes)
        ldr     x0, [x23, #OP_A0]
        mov     x1, sp
        mov     x8, #NR_AARCH64_STATFS
        svc     #0
        ldr     x9, [sp, #STATFS_F_FLAGS]       // f_flags
        add     sp, sp, #STATFS_STACK
        cmn     x0, #4095
        b.hs    .Lerror
        ldr     x3, [x23, #OP_A1]               // base flags
        mov32   x10, ST_SAME_AS_MS              // ST_ and MS_ agree: RDONLY NOSUID NODEV NOEXEC NOATIME NODIRATIME
        and     x10, x9, x10
        orr     x3, x3, x10
        tst     x9, #ST_RELATIME
        b.eq    1f
        orr     x3, x3, #MS_RELATIME
1:      tst     x9, #ST_NOSYMFOLLOW
        b.eq    1f
        orr     x3, x3, #MS_NOSYMFOLLOW
1:      mov32   x10, MS_ATIME_ANY               // no MS_NOATIME or MS_RELATIME: MS_STRICTATIME
        tst     x3, x10
        b.ne    1f
        mov32   x10, MS_STRICTATIME
        orr     x3, x3, x10
1:      mov     x0, #0
        ldr     x1, [x23, #OP_A0]
        mov     x2, #0
        mov     x4, #0
        mov     x8, #NR_AARCH64_MOUNT
        svc     #0
        b       .Lresult
