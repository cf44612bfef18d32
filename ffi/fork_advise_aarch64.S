// The fork-safety pass of ffi/fork.ts in machine code, for aarch64: the same two entries as
// ffi/fork_advise_x86_64.S (read it for why). `bash tools/assemble.sh ffi/fork_advise_aarch64.S`
// prints the bytes ffi/fork.ts embeds (FORK_ADVISE_AARCH64_HEX); tests/fork_test.ts checks they
// match. Run under qemu-user only, never on aarch64 hardware so far.
//
// The spans table lies 64 KiB after the code (aarch64 kernels may use 4, 16 or 64 KiB pages: the
// code's page, made read+execute, never holds it): u64 count, then count × (u64 address, u64 length).
// entry 0   void prepare(void)
// entry 16  i64 advise_clone(i64 flags, i64 clone)

        .text

        .set TABLE, 65536
        .set SYS_MADVISE, 233
        .set SYS_CLONE, 220
        .set MADV_DOFORK, 11
        .set EINVAL, 22

.Lstart:
prepare:
        b       advise

        .org 16
advise_clone:
        stp     x29, x30, [sp, -32]!
        stp     x0, x1, [sp, 16]
        bl      advise
        ldp     x9, x10, [sp, 16]       // flags, clone
        ldp     x29, x30, [sp], 32
        cbz     x10, 1f
        mov     x0, x9
        mov     x1, xzr
        mov     x2, xzr
        mov     x3, xzr
        mov     x4, xzr
        mov     x8, SYS_CLONE
        svc     0                       // the child returns from here too, with x0 0
1:      ret

// i64 advise(void): clobbers only x0-x2, x8-x11 (the kernel keeps every other register).
advise:
        adr     x9, .Lstart + TABLE
        ldr     x10, [x9], 8            // count
        mov     x11, xzr                // the result
2:      cbz     x10, 4f
        ldp     x0, x1, [x9], 16
        mov     x2, MADV_DOFORK
        mov     x8, SYS_MADVISE
        svc     0
        cmn     x0, EINVAL
        b.ne    3f
        mov     x11, x0
3:      sub     x10, x10, 1
        b       2b
4:      mov     x0, x11
        ret
